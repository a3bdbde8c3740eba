"""Processors: serial lines to timestamped readings (parsing, MIC check, duplicate rule)."""
