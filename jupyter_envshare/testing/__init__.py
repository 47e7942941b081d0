"""Helpers that build real shared conda installations for tests and the demo."""
