"""Serve a mock over HTTP with gunicorn: one master process, N worker processes, each with threads.

Every worker builds its own app (its own store connections, callback dispatcher and renderer) after the fork; they
share state only through the store and the data directory, so whichever worker answers, the answer is the same.
"""

from __future__ import annotations

from typing import Any, Callable

from gunicorn.app.base import BaseApplication


class Server(BaseApplication):
    """Serve the WSGI app `load()` builds (called once in each worker) on `bind`; `ready(port)` runs in the master
    once it listens."""

    def __init__(self, load: Callable[[], Any], bind: str, *, workers: int = 1, threads: int = 8,
                 ready: Callable[[int], None] | None = None):
        self._load = load
        self.options = {
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            "timeout": 120,  # a worker that stops answering its master for this long is restarted
            "graceful_timeout": 10,
            "keepalive": 5,
            "accesslog": None,
            "loglevel": "warning",
            "preload_app": False,  # each worker opens its own store connections and starts its own threads
            "when_ready": lambda server: ready(server.LISTENERS[0].sock.getsockname()[1]) if ready else None,
        }
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self._load()
