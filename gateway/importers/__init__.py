"""Importers that load rostering data from files into a source's Graph (OneRoster CSV)."""
