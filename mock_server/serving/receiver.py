"""A local endpoint that records the callbacks POSTed to it, and the serving loop it and the test servers share.
Nothing here needs the mock's app: the contract suite run against a server elsewhere (the live API) receives callbacks
without importing Flask, Pillow or PyAV."""

from __future__ import annotations

import json
import math
import selectors
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..routes.guard import bracketed


class ServingThread:
    """Serve a `socketserver` server (werkzeug's included) in a daemon thread until `stop()`, which returns at once.

    socketserver's own `serve_forever` notices `shutdown()` only at its next poll (every 0.5 s by default), a wait
    every test that starts a server would pay on teardown; this loop sleeps on the listening socket and on a socket
    pair that `stop()` writes to, so it wakes for a connection or for the stop, and never polls."""

    def __init__(self, server, name: str = "ivh-mock-serving"):
        self.server = server
        self._wake, self._waker = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self.server, selectors.EVENT_READ)
            selector.register(self._wake, selectors.EVENT_READ)
            while all(key.fileobj is not self._wake for key, _ in selector.select()):
                self.server._handle_request_noblock()  # accept one connection and hand it to its thread

    def pause(self) -> None:
        """Stop accepting connections but keep listening: new connections wait in the listen queue."""
        if self._thread.is_alive():
            self._waker.send(b"\0")
            self._thread.join()

    def stop(self) -> None:
        """Stop accepting connections and close the listening socket (requests under way finish in their threads)."""
        self.pause()
        self.server.server_close()
        self._wake.close()
        self._waker.close()


class CallbackReceiver:
    """A local HTTP endpoint that records the callbacks POSTed to `url`.

    `mode` makes it misbehave on purpose, to see how a sender copes: `ok` (200), `slow` (answers after `delay`
    seconds, or not at all should it be closed meanwhile), `redirect` (302), `garbage` (not HTTP at all)."""

    def __init__(self, mode: str = "ok", delay: float = 3.0, host: str = "127.0.0.1"):
        self.mode, self.delay = mode, delay
        self._received: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._closed = threading.Event()  # a slow answer under way ends at the close, its connection with it
        server = _ReceiverServer6 if ":" in host else _ReceiverServer
        self.server = server((host, 0), _handler(self))
        self.url = f"http://{bracketed(host)}:{self.server.server_port}/callback"
        self._serving = ServingThread(self.server, "ivh-callback-receiver")

    @property
    def received(self) -> list[dict[str, Any]]:
        """Every callback so far: `{"path", "headers", "body"}` (body parsed as JSON when it is JSON)."""
        with self._lock:
            return list(self._received)

    def wait_for(self, count: int = 1, timeout: float = 5.0) -> list[dict[str, Any]]:
        """Wait (in real time, briefly polling) until `count` callbacks have arrived; return them all."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a whole number of callbacks, 0 or more, got {count!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 <= timeout < math.inf:
            # a text had raised TypeError from inside the wait; NaN had waited no time, saying nothing
            raise ValueError(f"timeout must be a finite number of seconds, 0 or more, got {timeout!r}")
        deadline = time.monotonic() + timeout
        while len(self.received) < count:  # looked at once at least: a timeout of 0 asks what has arrived already
            if time.monotonic() >= deadline:
                raise AssertionError(f"expected {count} callback(s) within {timeout} s, got {len(self.received)}")
            time.sleep(0.01)
        return self.received

    def pause(self) -> None:
        """Stop accepting connections but keep listening (to test what a busy receiver's listen queue takes)."""
        self._serving.pause()

    def close(self) -> None:
        self._closed.set()  # a slow answer's thread and socket had lived on for its whole delay
        self._serving.stop()

    def __enter__(self) -> CallbackReceiver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _record(self, path: str, headers: dict[str, str], raw: bytes) -> None:
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        with self._lock:
            self._received.append({"path": path, "headers": headers, "body": body})


class QuietHTTPServer(ThreadingHTTPServer):
    """A threaded HTTP server that prints no traceback for a client that went away before its answer (a sender's
    deadline, which a `slow` receiver and tests provoke): socketserver printed one to stderr from the handler's
    thread, as late as the handler took (after the server was closed), into the output of whatever ran then."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class _ReceiverServer(QuietHTTPServer):
    # Several workers' callback pools connect at once: with socketserver's listen queue of 5, connections beyond it
    # waited for SYN retries (1 s, 3 s, ...) and a busy machine turned some into failed deliveries.
    request_queue_size = 1024
    daemon_threads = True


class _ReceiverServer6(_ReceiverServer):
    address_family = socket.AF_INET6


def _handler(receiver: CallbackReceiver):
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            receiver._record(self.path, dict(self.headers), raw)
            if receiver.mode == "slow" and receiver._closed.wait(receiver.delay):
                return  # closed meanwhile: no answer, as from a receiver that went away
            if receiver.mode == "garbage":
                self.wfile.write(b"\x00\xffthis is not HTTP\r\n\r\n")
                return
            self.send_response(302 if receiver.mode == "redirect" else 200)
            if receiver.mode == "redirect":
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    return Handler
