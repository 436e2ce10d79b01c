"""Serving: `ivh-mock serve` (worker processes running waitress), a mock in a thread for tests, and the pytest plugin."""
