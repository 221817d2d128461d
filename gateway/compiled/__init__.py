"""Compiled execution: one SQL statement per root field builds that field's JSON answer."""
