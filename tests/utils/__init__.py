"""Helpers shared by the test packages (import as ``tests.utils.<module>``)."""
