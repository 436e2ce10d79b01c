"""Serving: `ivh-mock serve` (gunicorn workers), a mock in a thread for tests, and the pytest plugin."""
