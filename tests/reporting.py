"""Lines the test run prints at its end (counts that a closing note quotes)."""

from __future__ import annotations

SUMMARY: list[str] = []
