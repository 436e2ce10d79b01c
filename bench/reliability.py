"""How the served mock holds up against hostile and careless load, measured, and written to docs/reliability.md.

`python -m bench.reliability` starts `ivh-mock serve` as shipped (SQLite store, 1 worker x 8 threads, a fresh data
directory) and runs, one after the other:

- refused: unsigned requests with 1 MiB bodies, each under a new appkey (once they grew the journal without bound);
- media: distinct 9000 x 9000 px PNGs (300 KB each, 324 MB decoded), uploaded and submitted all at once;
- accounts: signed requests, each under a new appkey;
- slow sockets: connections that send a header byte now and then, that send nothing, that send a body byte now and
  then, and submissions whose photo host trickles, all held open while a client keeps calling the mock;
- oversized: a request line and headers past the server's limit.

Each reports the requests tried, the 5xx answers seen, the worker's resident memory (VmRSS before and after, VmHWM
its peak) read from /proc, and the data directory's size. BOUNDS states what must hold; tests/test_resources.py
runs the same functions with smaller counts and holds them to the same bounds.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from ivh_mock.spec.signing import signed_query

from ivh_mock import spec as spec_module

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "reliability.md"
RAW = ROOT / "docs" / "reliability.json"
MB = 1_048_576
PATHS = {op.operation_id: op.path for op in spec_module.load().operations.values()}
SAMPLE_PHOTO = "http://localhost/__mock__/assets/samples/photo.jpg"
TEXT = {"RefPhotoUrl": SAMPLE_PHOTO, "DriverType": "Text", "InputSsml": "Hello, I am the virtual anchor",
        "SpeechParam": {"TimbreKey": "female_1", "Speed": 1.0}}

# What must hold, whatever the load (MB of the worker's memory, of the data directory).
BOUNDS = {
    "memory_growth_mb": 128,  # VmRSS after a flood, less before
    "memory_peak_mb": 384,  # VmHWM during a flood (a 9000 px PNG decoded once took 334 MB; eight took 2 GB)
    "disk_growth_mb": 48,  # the data directory (the journal is capped at 16 MB of JSON, plus SQLite's log)
    "journal_page_mb": 2,  # GET /__mock__/requests?limit=100 (1 MiB bodies are kept as their first 16 KB)
    "server_errors": 0,  # 5xx answers
}


@dataclass
class Figures:
    name: str
    tried: int = 0
    server_errors: int = 0
    memory_before_mb: float = 0.0
    memory_after_mb: float = 0.0
    memory_peak_mb: float = 0.0
    disk_before_mb: float = 0.0
    disk_after_mb: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def memory_growth_mb(self) -> float:
        return self.memory_after_mb - self.memory_before_mb

    @property
    def disk_growth_mb(self) -> float:
        return self.disk_after_mb - self.disk_before_mb

    def problems(self) -> list[str]:
        """The bounds these figures break, each saying by how much."""
        found = []
        if self.server_errors > BOUNDS["server_errors"]:
            found.append(f"{self.name}: {self.server_errors} answers were 5xx")
        for name, value in [("memory_growth_mb", self.memory_growth_mb), ("memory_peak_mb", self.memory_peak_mb),
                            ("disk_growth_mb", self.disk_growth_mb),
                            ("journal_page_mb", self.notes.get("journal_page_mb", 0.0))]:
            if value > BOUNDS[name]:
                found.append(f"{self.name}: {name} {value:.1f} is over the bound {BOUNDS[name]}")
        return found


# -- the served mock ------------------------------------------------------------------------------------------------
class Served:
    """`ivh-mock serve` in a process group of its own on a free port; `worker()` is the pid of its first worker."""

    def __init__(self, data_dir: Path, *args: str):
        command = str(Path(sys.executable).with_name("ivh-mock"))
        self.data_dir = Path(data_dir)
        self.process = subprocess.Popen([command, "serve", "--port", "0", "--data-dir", str(data_dir), *args],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                        start_new_session=True)
        banner = self.process.stdout.readline()  # the banner's first line says where it listens
        match = re.search(r"listening on (http://\S+)", banner)
        if not match:
            self.stop()
            raise RuntimeError(f"ivh-mock serve did not start: {banner!r}")
        self.url = match.group(1)
        deadline = time.monotonic() + 30
        while True:  # the workers build their apps after the banner
            try:
                requests.get(f"{self.url}/__mock__/clock", timeout=5).raise_for_status()
                break
            except requests.RequestException:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def worker(self) -> int:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text().split()
        return int(children[0])

    def memory_mb(self, key: str = "VmRSS") -> float:
        status = Path(f"/proc/{self.worker()}/status").read_text()
        return int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) / 1024

    def disk_mb(self) -> float:
        return sum(path.stat().st_size for path in self.data_dir.rglob("*") if path.is_file()) / MB

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Served:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def huge_png(side: int, tag: str = "") -> bytes:
    """A grey side x side RGB PNG of a few hundred KB that decodes to 4 x side**2 bytes (324 MB at 9000 px); `tag`
    (kept in a text chunk) makes otherwise equal files distinct."""
    from ivh_mock.mock_server.media_in.samples import uniform_png  # the mock's own code, imported where it is used

    return uniform_png(side, side, b"\x80" * (3 * side), comment=tag or "untagged")


class Trickler:
    """A host that answers a byte at a time every `every` seconds for up to `seconds`: a path with `/headers` in it
    trickles its status line and headers, any other sends its headers at once and trickles the body."""

    def __init__(self, every: float = 0.2, seconds: float = 20.0):
        self.every, self.bytes = every, max(1, int(seconds / every))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection:
            request = connection.recv(65536)
            head = b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n"
            if b" /headers" not in request:
                connection.sendall(head)
                head = b""
            for byte in (head + bytes(100000))[:self.bytes]:
                if self._stop.wait(self.every):
                    return
                try:
                    connection.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self._stop.set()
        self._listener.close()


# -- the floods -----------------------------------------------------------------------------------------------------
def _signed(url: str, operation_id: str, appkey: str) -> str:
    return f"{url}{PATHS[operation_id]}?{signed_query(appkey, 'mock-accesstoken', int(time.time()))}"


def _measure(served: Served, name: str) -> Figures:
    return Figures(name, memory_before_mb=served.memory_mb(), disk_before_mb=served.disk_mb())


def _finish(served: Served, figures: Figures) -> Figures:
    figures.memory_after_mb = served.memory_mb()
    figures.memory_peak_mb = served.memory_mb("VmHWM")
    figures.disk_after_mb = served.disk_mb()
    return figures


def refused(served: Served, count: int) -> Figures:
    """`count` unsigned requests with a 1 MiB body, each under a new appkey: refused, journalled within the journal's
    bounds, and no account made."""
    figures = _measure(served, "refused")
    accounts = len(requests.get(f"{served.url}/__mock__/accounts", timeout=30).json()["accounts"])
    body = b'{"Header":{},"Payload":{"TaskId":"' + b"a" * (MB - 64) + b'"}}'
    path = PATHS["getprogress"]

    def one(n: int) -> int:
        with requests.post(f"{served.url}{path}?appkey=flood-{n}&timestamp=1&signature=bad", data=body, timeout=60,
                           headers={"Content-Type": "application/json"}) as response:
            return response.status_code

    with ThreadPoolExecutor(4) as pool:
        statuses = list(pool.map(one, range(count)))
    figures.tried, figures.server_errors = count, sum(status >= 500 for status in statuses)
    page = requests.get(f"{served.url}/__mock__/requests?limit=100", timeout=60)
    figures.notes["journal_page_mb"] = round(len(page.content) / MB, 2)
    figures.notes["accounts_made"] = len(requests.get(f"{served.url}/__mock__/accounts",
                                                      timeout=30).json()["accounts"]) - accounts
    return _finish(served, figures)


def media(served: Served, count: int = 8, side: int = 9000) -> Figures:
    """`count` distinct side x side PNGs uploaded and submitted at once: refused by their header, never decoded."""
    figures = _measure(served, "oversized media")
    photos = [huge_png(side, f"reliability-{n}-{time.monotonic_ns()}") for n in range(count)]

    def one(data: bytes) -> list[int]:
        upload = requests.post(f"{served.url}/__mock__/assets?name=big.png", data=data, timeout=120)
        answer = requests.post(_signed(served.url, "phototovideonotrain", "media-flood"), timeout=120,
                               json={"Header": {}, "Payload": {**TEXT, "RefPhotoUrl": upload.json()["Url"]}})
        return [upload.status_code, answer.status_code, answer.json()["Header"]["Code"]]

    with ThreadPoolExecutor(count * 2) as pool:
        answers = list(pool.map(one, photos * 2))  # each file twice: through the upload route, then the API
    figures.tried = 2 * len(answers)
    figures.server_errors = sum(status >= 500 for answer in answers for status in answer[:2])
    figures.notes["api_codes"] = sorted({answer[2] for answer in answers})
    figures.notes["photo_bytes"] = len(photos[0])
    return _finish(served, figures)


def accounts(served: Served, count: int) -> Figures:
    """`count` signed requests, each under a new appkey: each makes an account; the journal stays bounded."""
    figures = _measure(served, "many accounts")
    session = requests.Session()
    statuses = [session.post(_signed(served.url, "describetimbre", f"team-{n}"), timeout=30,
                             json={"Header": {}, "Payload": {}}).status_code for n in range(count)]
    figures.tried, figures.server_errors = count, sum(status >= 500 for status in statuses)
    poll = requests.get(f"{served.url}/__mock__/accounts?limit=50", timeout=60)  # what the dashboard asks for
    figures.notes["accounts"] = poll.json()["total"]
    figures.notes["dashboard_poll_kb"] = round(len(poll.content) / 1024, 1)
    figures.notes["first_shown"] = poll.json()["accounts"][0]["appkey"]
    return _finish(served, figures)


def slow_sockets(served: Served, dawdlers: int, seconds: float, stalled_downloads: int = 8) -> Figures:
    """Hold `dawdlers` connections dripping header bytes, as many idle ones, a quarter as many dripping a body, and
    `stalled_downloads` submissions whose photo host trickles, while a client calls the mock every 0.2 s for
    `seconds`: every call must be answered, within 3 s."""
    figures = _measure(served, "slow sockets")
    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    trickler = Trickler(every=0.5, seconds=seconds + 30)
    opened: list[socket.socket] = []
    stop = threading.Event()

    def drip(connection: socket.socket, data: bytes) -> None:
        for byte in data:
            if stop.wait(0.5):
                return
            try:
                connection.send(bytes([byte]))
            except OSError:
                return

    def connect(first: bytes, rest: bytes) -> None:
        connection = socket.create_connection((host, int(port)), timeout=5)
        opened.append(connection)
        if first:
            connection.sendall(first)
        if rest:
            threading.Thread(target=drip, args=(connection, rest), daemon=True).start()

    header = f"GET /__mock__/clock HTTP/1.1\r\nHost: {host}\r\nX-Slow: ".encode()
    body_head = (f"POST {PATHS['getprogress']}?appkey=a&timestamp=1&signature=x HTTP/1.1\r\nHost: {host}\r\n"
                 f"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n").encode()
    downloads: list[threading.Thread] = []
    try:
        for _ in range(dawdlers):
            connect(header[:10], header[10:] + b"x" * 1000)
            connect(b"", b"")
        for _ in range(max(1, dawdlers // 4)):
            connect(body_head, b"{" * 100000)
        for n in range(stalled_downloads):
            payload = {**TEXT, "RefPhotoUrl": f"{trickler.url}/photo-{n}.jpg"}
            thread = threading.Thread(target=lambda p=payload: _quietly(
                lambda: requests.post(_signed(served.url, "phototovideonotrain", "stalled"), json={
                    "Header": {}, "Payload": p}, timeout=60)), daemon=True)
            thread.start()
            downloads.append(thread)
        time.sleep(0.5)
        figures.tried, figures.server_errors, answered, slowest = _called_meanwhile(served, seconds, [
            lambda session: session.get(f"{served.url}/__mock__/clock", timeout=3),
            lambda session: session.post(_signed(served.url, "getprogress", "poller"), timeout=3,
                                         json={"Header": {}, "Payload": {"TaskId": "0" * 32}})])
        figures.notes.update(answered=answered, slowest_seconds=round(slowest, 2), open_sockets=len(opened),
                             stalled_downloads=stalled_downloads, seconds=seconds)
    finally:
        stop.set()
        for connection in opened:
            connection.close()
        trickler.close()
        for thread in downloads:
            thread.join(timeout=30)
    return _finish(served, figures)


def non_readers(served: Served, count: int, seconds: float, size_mb: int = 24) -> Figures:
    """`count` connections that ask for a `size_mb` MB upload, half of them for a range of it (`Range: bytes=0-`),
    with a small receive buffer, and read nothing, while a client calls the mock every 0.2 s for `seconds`: every
    call must be answered within 3 s, and no answer may cost the worker a copy of the file. Nine such range requests
    held every thread of a worker (werkzeug sent the range block by block, and waitress made each thread wait for its
    client), and each whole-file answer held a copy of the file in memory."""
    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    data = random.Random(size_mb).randbytes(size_mb * MB)  # incompressible, as a video is
    upload = requests.post(f"{served.url}/__mock__/assets?name=big.mp4", data=data, timeout=120)
    path = urlsplit(upload.json()["Url"]).path
    figures = _measure(served, "non-readers")  # once uploaded: what the readers cost, not what the upload did
    opened: list[socket.socket] = []
    try:
        for n in range(count):
            connection = socket.socket()
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            connection.connect((host, int(port)))
            ranged = b"Range: bytes=0-\r\n" if n % 2 else b""
            connection.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\n" + ranged + b"\r\n")
            opened.append(connection)
        time.sleep(1)
        figures.tried, figures.server_errors, answered, slowest = _called_meanwhile(served, seconds, [
            lambda session: session.get(f"{served.url}/__mock__/clock", timeout=3)])
        figures.notes.update(answered=answered, slowest_seconds=round(slowest, 2), open_sockets=len(opened),
                             file_mb=size_mb)
        return _finish(served, figures)  # while the sockets are still open: what their answers hold
    finally:
        for connection in opened:
            connection.close()


def _called_meanwhile(served: Served, seconds: float, calls: list[Any]) -> tuple[int, int, int, float]:
    """Make `calls` (each given a session) in turn every 0.2 s for `seconds`; return how many were due, how many
    answered 5xx, how many 200, and the slowest round in seconds (a call that fails ends its round)."""
    due, errors, answered, slowest = 0, 0, 0, 0.0
    session = requests.Session()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        due += len(calls)
        try:
            for call in calls:
                response = call(session)
                errors += response.status_code >= 500
                answered += response.status_code == 200
        except requests.RequestException:
            pass
        slowest = max(slowest, time.monotonic() - started)
        time.sleep(0.2)
    return due, errors, answered, slowest


def oversized(served: Served) -> Figures:
    """A request line of 100 KB and 40 KB of headers: refused by the server in plain text, never an HTML page."""
    figures = _measure(served, "oversized request")
    answers = [requests.get(f"{served.url}/__mock__/clock?x={'a' * 100_000}", timeout=30),
               requests.get(f"{served.url}/__mock__/clock", headers={"X-Big": "b" * 40_000}, timeout=30)]
    figures.tried = len(answers)
    figures.server_errors = sum(answer.status_code >= 500 for answer in answers)
    figures.notes["answers"] = [f"{answer.status_code} {answer.headers.get('Content-Type', '')}"
                                for answer in answers]
    return _finish(served, figures)


def hostile() -> dict[str, Any]:
    """Run the generated hostile-input suite (tests/test_hostile.py) when this checkout has it; return its tally."""
    suite = ROOT / "tests" / "test_hostile.py"
    if not suite.exists():
        return {"ran": False}
    result = subprocess.run([sys.executable, "-m", "pytest", str(suite), "-q", "-p", "no:cacheprovider"], cwd=ROOT,
                            capture_output=True, text=True, timeout=1800)
    tally = {word: int(count) for count, word in re.findall(r"(\d+) (passed|failed|errors?)", result.stdout)}
    return {"ran": True, "passed": tally.get("passed", 0), "failed": tally.get("failed", 0) + tally.get("error", 0)
            + tally.get("errors", 0)}


def _quietly(call: Any) -> None:
    try:
        call()
    except requests.RequestException:
        pass


# -- the report -----------------------------------------------------------------------------------------------------
def slow_clients_section() -> list[str]:
    """The slow-client figures for docs/benchmarks.md, from docs/reliability.json (none before its first run)."""
    if not RAW.exists():
        return []
    figures = next(r for r in json.loads(RAW.read_text())["floods"] if r["name"] == "slow sockets")
    slow = figures["notes"]
    return ["## Slow clients", "",
            f"`ivh-mock serve` (1 worker x 8 threads) with {slow['open_sockets']} connections held open for "
            f"{slow['seconds']:g} s (sending a header",
            "byte every 0.5 s, sending nothing, or sending a body a byte every 0.5 s) and "
            f"{slow['stalled_downloads']} submissions whose photo host",
            f"trickles: {slow['answered']} of {figures['tried']} calls made meanwhile answered, the slowest in "
            f"{slow['slowest_seconds']} s (`python -m bench.reliability`,",
            "docs/reliability.md). Under gunicorn's gthread worker, which served the mock before, 8 connections",
            "sending partial headers stopped it: no call answered (DECISIONS.md D56).", ""]


def run(refused_count: int = 300, accounts_count: int = 2000, dawdlers: int = 64, seconds: float = 20.0,
        data_dir: Path | None = None) -> list[Figures]:
    with tempfile.TemporaryDirectory(prefix="ivh-reliability-") as scratch:
        with Served(Path(data_dir or scratch) / "data") as served:
            return [slow_sockets(served, dawdlers, seconds), refused(served, refused_count), media(served),
                    accounts(served, accounts_count), oversized(served), non_readers(served, 20, seconds / 4)]


def render(results: list[dict[str, Any]], suite: dict[str, Any]) -> str:
    tried = sum(r["tried"] for r in results)
    errors = sum(r["server_errors"] for r in results)
    slow = next(r for r in results if r["name"] == "slow sockets")
    lines = [
        "# Reliability",
        "",
        "Produced by `python -m bench.reliability` (raw figures: `docs/reliability.json`; rebuild the page from them",
        "with `python -m bench.reliability --report-only`). The mock runs as shipped: `ivh-mock serve`, SQLite store,",
        "1 worker x 8 threads; memory is the worker's resident set read from `/proc` (VmRSS before and after a flood,",
        "VmHWM its peak since it started), disk the data directory. `tests/test_resources.py` runs the same floods,",
        "smaller, against the same bounds.",
        "",
        (f"The generated hostile-input suite (`tests/test_hostile.py`: every route, never a 5xx, always the route's "
         f"own error format) ran with it: {suite['passed']} tests passed, {suite['failed']} failed." if suite["ran"]
         else "The generated hostile-input suite (`tests/test_hostile.py`) was not in this checkout."),
        "",
        f"**{tried} requests tried, {errors} answered 5xx. {slow['notes']['open_sockets']} slow sockets and "
        f"{slow['notes']['stalled_downloads']} stalled downloads held open for {slow['notes']['seconds']:g} s: "
        f"{slow['notes']['answered']} of {slow['tried']} calls answered meanwhile, the slowest in "
        f"{slow['notes']['slowest_seconds']} s.**",
        "",
        "## Bounds",
        "",
        "| bound | value |",
        "|---|---|",
        f"| memory growth of a worker over a flood | at most {BOUNDS['memory_growth_mb']} MB |",
        f"| memory peak of a worker | at most {BOUNDS['memory_peak_mb']} MB |",
        f"| data directory growth over a flood | at most {BOUNDS['disk_growth_mb']} MB |",
        f"| `GET /__mock__/requests?limit=100` | at most {BOUNDS['journal_page_mb']} MB |",
        "| request journal, all appkeys | 10,000 entries and 16 MB of JSON; a body over 16 KB kept as its start |",
        "| uploads to the asset host | 1 GB in all; the least recently uploaded are deleted beyond it |",
        "| requests waiting on a download or a render, per worker | its threads less two; more are answered at once |",
        "| answers 5xx | none |",
        "",
        "## Figures",
        "",
        "| flood | requests | 5xx | memory before → after (peak), MB | data dir before → after, MB | notes |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        notes = ", ".join(f"{key}: {value}" for key, value in r["notes"].items())
        lines.append(f"| {r['name']} | {r['tried']} | {r['server_errors']} | {r['memory_before_mb']:.0f} → "
                     f"{r['memory_after_mb']:.0f} ({r['memory_peak_mb']:.0f}) | {r['disk_before_mb']:.1f} → "
                     f"{r['disk_after_mb']:.1f} | {notes} |")
    lines += [
        "",
        "The floods: **slow sockets**: connections sending a header byte every 0.5 s, as many sending nothing, a",
        "quarter as many sending a 100 KB body a byte every 0.5 s, and submissions whose photo host sends a byte every",
        "0.5 s, while a client calls `GET /__mock__/clock` and `getprogress` every 0.2 s (3 s timeout); **refused**:",
        "unsigned `getprogress` requests with 1 MiB bodies, each under a new appkey; **oversized media**: 8 distinct",
        "9000 x 9000 px PNGs uploaded and submitted at once, twice each; **many accounts**: signed `describetimbre`",
        "calls, each under a new appkey; **oversized request**: a 100 KB request line and 40 KB of headers;",
        "**non-readers**: connections asking for a 24 MB upload, half of them for a range of it, that read nothing,",
        "while a client calls `GET /__mock__/clock` every 0.2 s (3 s timeout).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="measure the served mock under hostile load; write "
                                                 "docs/reliability.md")
    parser.add_argument("--report-only", action="store_true", help="rebuild the page from docs/reliability.json")
    parser.add_argument("--refused", type=int, default=300)
    parser.add_argument("--accounts", type=int, default=2000)
    parser.add_argument("--dawdlers", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    if args.report_only:
        raw = json.loads(RAW.read_text())
    else:
        figures = run(args.refused, args.accounts, args.dawdlers, args.seconds)
        raw = {"floods": [{**asdict(f), "problems": f.problems()} for f in figures], "hostile": hostile()}
        RAW.write_text(json.dumps(raw, indent=1) + "\n")
    results = raw["floods"]
    OUT.write_text(render(results, raw["hostile"]))
    problems = [problem for r in results for problem in r["problems"]]
    if raw["hostile"].get("failed"):
        problems.append(f"tests/test_hostile.py: {raw['hostile']['failed']} tests failed")
    for problem in problems:
        print(f"bound broken: {problem}", file=sys.stderr)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
