"""A local HTTP endpoint that records callback POSTs, and can misbehave on purpose."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Receiver:
    """Serve on a free loopback port. `mode` is ok, slow, redirect or garbage."""

    def __init__(self, mode: str = "ok", delay: float = 3.0):
        self.mode, self.delay = mode, delay
        self.received: list[dict] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with receiver._lock:
                    receiver.received.append({"path": self.path, "headers": dict(self.headers),
                                              "body": json.loads(body)})
                if receiver.mode == "slow":
                    time.sleep(receiver.delay)
                if receiver.mode == "garbage":
                    self.wfile.write(b"\x00\xffthis is not HTTP\r\n\r\n")
                    return
                if receiver.mode == "redirect":
                    self.send_response(302)
                    self.send_header("Location", "http://127.0.0.1:9/elsewhere")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict]:
        """Wait until `count` callbacks have arrived (polling briefly), then return them all."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"expected {count} callbacks within {timeout} s, got {len(self.received)}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
