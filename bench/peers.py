"""The servers the HTTP benchmark compares, each started as its own process on a free loopback port.

- ivh-mock itself (`ivh-mock serve`), with any store and worker count;
- the ceiling: a bare Flask endpoint under the same server (serving/server.py), worker and thread counts, answering the
  same paths with a fixed envelope and nothing else (`python -m bench.peers --port P --workers N`);
- Prism (`@stoplight/prism-cli` from npm) mocking spec/openapi.yaml, installed on first use under bench/.prism.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ivh_mock.mock_server.serving.testing import free_port, guard

ROOT = Path(__file__).resolve().parents[1]
PRISM_DIR = ROOT / "bench" / ".prism"
PRISM_VERSION = "5"
THREADS = 8  # threads per worker, for ivh-mock and the ceiling alike


def prism_binary() -> Path | None:
    """Return Prism's command, installing it from npm into bench/.prism on first use; None without npm."""
    binary = PRISM_DIR / "node_modules" / ".bin" / "prism"
    if binary.exists():
        return binary
    npm = shutil.which("npm")
    if npm is None:
        return None
    PRISM_DIR.mkdir(parents=True, exist_ok=True)
    subprocess.run([npm, "install", "--prefix", str(PRISM_DIR), "--no-audit", "--no-fund", "--loglevel", "error",
                    f"@stoplight/prism-cli@{PRISM_VERSION}"], check=True, timeout=900)
    return binary if binary.exists() else None


def prism_version() -> str:
    package = PRISM_DIR / "node_modules" / "@stoplight" / "prism-cli" / "package.json"
    return json.loads(package.read_text())["version"] if package.exists() else "not installed"


def wait_until_listening(port: int, process: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode} before listening")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"nothing listened on port {port} within {timeout} s")


@contextmanager
def started(command: list[str], port: int, folder: str = "") -> Iterator[subprocess.Popen]:
    """Start `command` in a process group of its own, wait until it listens on `port`, and stop it after the block
    (SIGTERM, then SIGKILL after 20 s), or have its guard kill it, and remove its `folder`, should the bench die
    first."""
    with guard(folder=folder) as watch:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                                   start_new_session=True)
        watch(process.pid)
        try:
            wait_until_listening(port, process)
            yield process
        finally:
            try:
                os.killpg(process.pid, 15)
                process.wait(timeout=20)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(process.pid, 9)
                process.wait()


def ivh_mock_command(port: int, workers: int, store: str, data_dir: str) -> list[str]:
    mock = Path(sys.executable).with_name("ivh-mock")
    return [str(mock), "serve", "--port", str(port), "--workers", str(workers), "--threads", str(THREADS),
            "--store", store, "--data-dir", data_dir]


def ceiling_command(port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "bench.peers", "--port", str(port), "--workers", str(workers)]


def prism_command(port: int) -> list[str]:
    binary = prism_binary()
    if binary is None:
        raise RuntimeError("Prism needs npm (Node.js) to install")
    return [str(binary), "mock", str(ROOT / "spec" / "openapi.yaml"), "-h", "127.0.0.1", "-p", str(port)]


@contextmanager
def ivh_mock_started(workers: int, store: str, port: int) -> Iterator[tuple[str, subprocess.Popen]]:
    """Serve ivh-mock with a fresh data directory (`store` may name `{data}` for a store inside it); yield its URL and
    its process, the leader of its process group."""
    with tempfile.TemporaryDirectory(prefix="ivh-bench-") as data:
        with started(ivh_mock_command(port, workers, store.format(data=data), data), port, data) as process:
            yield f"http://127.0.0.1:{port}", process


@contextmanager
def ivh_mock(workers: int, store: str) -> Iterator[str]:
    with ivh_mock_started(workers, store, free_port()) as (url, _):
        yield url


def ceiling_app():
    """The bare Flask endpoint: parse the JSON body, answer a fixed envelope with a fresh id."""
    from flask import Flask, jsonify, request

    from .load import PATHS

    app = Flask("ceiling")

    def answer():
        request.get_json(force=True)
        return jsonify({"Header": {"Code": 0, "Message": "", "RequestID": uuid.uuid4().hex},
                        "Payload": {"TaskId": uuid.uuid4().hex}})

    for operation_id, path in PATHS.items():  # the API's own paths, from the spec
        app.add_url_rule(path, operation_id, answer, methods=["POST"])
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="the benchmark's ceiling: a bare Flask endpoint, served as "
                                                 "the mock is")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    from ivh_mock.mock_server.serving.server import Server

    Server(ceiling_app, f"127.0.0.1:{args.port}", workers=args.workers, threads=THREADS).run()


if __name__ == "__main__":
    main()
