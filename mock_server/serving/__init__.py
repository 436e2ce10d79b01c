"""Serving: `ivh-mock serve` (worker processes running waitress), a mock in a thread for tests, the pytest plugin."""
