"""dbpoollint: find and fix database connection-pool mistakes in Python services."""

__version__ = "0.4.0"
