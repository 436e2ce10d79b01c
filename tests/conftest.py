"""Fixtures: a fresh mock per test (in-process and over real HTTP), a virtual clock, and a signed caller."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
import warnings
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Callable

import pytest
import requests
from bench.reliability import Trickler
from ivh_mock.contract_tests.target import Answer
from ivh_mock.mock_server import VirtualClock, create_app
from ivh_mock.mock_server.serving.testing import QuietHTTPServer, RedisServer, ServingThread, debian_command
from ivh_mock.mock_server.store import open_store
from ivh_mock.spec.signing import signed_query
from werkzeug.serving import make_server

from ivh_mock import spec as spec_module

from . import forked

ROOT_DIR = Path(__file__).resolve().parents[1]  # the checkout: the contract suite runs from it
T0 = 1_764_000_000.0  # 2025-11-24, a fixed start for the virtual clock
# Timing every test can compute with: 1 s in the queue, render 2 s + 0.25 x the video, 4 characters a second.
TIMING = {"queue_seconds": 1.0, "render_speed": 0.25, "render_startup_seconds": 2.0,
          "cjk_chars_per_second": 4.0, "latin_words_per_second": 2.5}
DEFAULT_TOKEN = "mock-accesstoken"

# The mock's generated samples (GET /__mock__/assets/samples); it reads its own asset URLs on any loopback port.
SAMPLES = "http://localhost/__mock__/assets/samples/"
PATHS = {op.operation_id: op.path for op in spec_module.load().operations.values()}

TEXT_PAYLOAD = {
    "RefPhotoUrl": SAMPLES + "photo.jpg",
    "DriverType": "Text",
    "InputSsml": 'Hello, I am the virtual <phoneme alphabet="py" ph="fu4">anchor</phoneme>',
    "SpeechParam": {"TimbreKey": "female_1", "Volume": 1, "Speed": 1.0},
}
AUDIO_PAYLOAD = {
    "RefPhotoUrl": SAMPLES + "photo.jpg",
    "DriverType": "OriginalVoice",
    "InputAudioUrl": SAMPLES + "audio-10s.mp3",
}


@dataclass
class Caller:
    """Signs and sends API calls, in-process (Flask test client) or over HTTP (requests)."""

    send: Any  # (path_and_query, data: bytes, headers) -> (status, json)
    clock: VirtualClock
    appkey: str = "test-app"
    accesstoken: str = DEFAULT_TOKEN

    def query(self, appkey: str | None = None, accesstoken: str | None = None, skew: float = 0) -> str:
        return signed_query(appkey or self.appkey, accesstoken or self.accesstoken, int(self.clock.now() + skew))

    def raw(self, operation_id: str, data: bytes, *, query: str | None = None,
            content_type: str = "application/json;charset=utf-8", scenario: str | None = None) -> Answer:
        headers = {"Content-Type": content_type} if content_type else {}
        if scenario is not None:
            headers["X-Mock-Scenario"] = scenario
        status, body = self.send(f"{PATHS[operation_id]}?{query if query is not None else self.query()}",
                                 data, headers)
        return Answer(status, body)

    def call(self, operation_id: str, payload: Any = None, *, header: Any = None, body: Any = None,
             **kwargs: Any) -> Answer:
        import json

        if body is None:
            body = {"Header": header if header is not None else {}, "Payload": payload}
        return self.raw(operation_id, json.dumps(body, ensure_ascii=False).encode(), **kwargs)


STORES = ("memory", "sqlite", "redis")


@pytest.hookimpl(trylast=True)  # after Hypothesis's own plugin has loaded a --hypothesis-profile
def pytest_configure(config):
    """This repository's own tests run under the contract suite's `ivh-ci` profile (fewer examples, no deadline on a
    loaded machine); the suite loads it only for its own modules."""
    if not config.getoption("hypothesis_profile", default=None):
        from hypothesis import settings

        settings.load_profile("ivh-ci")
    # The tests allocate quickly (Hypothesis above all): the collector's youngest generation, collected after every
    # 700 allocations by default, was 5 to 7% of a test process's CPU more than after every 20,000 (D65).
    gc.set_threshold(20_000, *gc.get_threshold()[1:])
    # A run started in the background (`nohup make test &`, a script's `&`) ignores SIGINT, and so does every process
    # it starts: the tests that press Ctrl-C in a server or a command they start then saw nothing happen and failed.
    # Their processes get the usual disposition back (Python's own handler here, the default in what it starts).
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which starts the workers
def pytest_sessionstart(session):
    """In the first `make test` of a fresh clone every worker compiled every test module and all it imports, the
    same work side by side in five processes: the workers took 23 to 25 s to collect on two cores, 8 to 9 s once it
    was compiled. Imported here first, once, before the workers start (18 to 20 s in all). The contract suite's
    modules too: what they import of Schemathesis (its OpenAPI loader, rewritten by pytest as a plugin's) is imported
    by no test of tests/, and the workers had compiled it side by side (4 to 5 s of CPU). A run that finds every test
    module compiled skips this.

    It keeps one core busy: a forked process takes the other end of the list meanwhile, the contract suite's modules
    and then this folder's from the last, and stops once this one has been through them all (a fresh clone's start
    to its collection in 9.6 s where one process took 11.5: means of five runs each).

    Hypothesis's text strategies are built from two tables of Unicode (the code points UTF-8 encodes, and each one's
    category), which it computes the first time (about 2 s of CPU) and keeps in .hypothesis. In a fresh clone every
    worker computed them side by side, and so did the contract suite's runs they started, until one of them had kept
    them. They are computed here first, once (a few milliseconds once kept)."""
    config = session.config
    if getattr(config, "workerinput", None) is not None or config.getoption("dist", "no") == "no":
        return
    from _pytest.assertion.rewrite import PYC_TAIL
    from _pytest.pathlib import import_path

    mine, suite = sorted(Path(__file__).parent.glob("test_*.py")), sorted(ROOT_DIR.glob("contract_tests/test_*.py"))
    if sys.dont_write_bytecode or all((path.parent / "__pycache__" / (path.stem + PYC_TAIL)).exists()
                                      for path in [*mine, *suite]):
        _unicode_tables()
        return

    def compiled(path: Path) -> None:
        try:
            import_path(path, mode=config.getoption("importmode"), root=config.rootpath,
                        consider_namespace_packages=config.getini("consider_namespace_packages"))
        except Exception:  # noqa: BLE001 - a module that cannot be imported is reported by the workers, as always
            pass

    done, told = os.pipe()
    helper = -1  # none where this process has threads, or cannot fork: the first process goes through them all
    if threading.active_count() == 1:
        with contextlib.suppress(OSError):
            helper = os.fork()
    if helper == 0:
        try:
            os.close(told)
            for path in suite:
                compiled(path)
            for path in reversed(mine):
                if select.select([done], [], [], 0)[0]:  # the pipe's end: the first process is through
                    break
                compiled(path)
        finally:
            os._exit(0)
    os.close(done)
    _unicode_tables()  # while the helper compiles
    for path in mine if helper > 0 else [*mine, *suite]:
        compiled(path)
    os.close(told)
    if helper > 0:
        os.waitpid(helper, 0)


def _unicode_tables() -> None:
    from hypothesis import strategies
    from hypothesis.errors import HypothesisSideeffectWarning

    with warnings.catch_warnings():  # Hypothesis warns of work done before its session starts: here on purpose
        warnings.simplefilter("ignore", HypothesisSideeffectWarning)
        strategies.text().validate()


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist's own hook, which reads the groups into the test ids
def pytest_collection_modifyitems(items):
    """Under `make test` (pytest-xdist, --dist loadgroup) the tests of a module that share a module-scoped fixture
    (a built wheel, a served mock, a browser) run on one worker, so it is built once, not once per worker; every other
    test goes to whichever worker is free. The longest work is handed out first (such modules, then the tests marked
    slow and the contract suite's own), so that no worker is still busy with it when the others have run out of
    tests."""
    grouped = set()
    for item in items:
        definitions = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        if any(fixture.scope == "module" for defs in definitions.values() for fixture in defs):
            item.add_marker(pytest.mark.xdist_group(item.module.__name__))
            grouped.add(item.nodeid)
    # a module's tests stay together (its fixture is built once even without xdist); the sort is stable. The contract
    # suite's own tests (Hypothesis's examples sent through the whole mock, its state machine 4 s alone) were handed
    # out last, after two thousand short ones: one worker ran the state machine while the others had finished.
    def weight(item):
        if item.nodeid in grouped:
            return 0
        return 1 if item.get_closest_marker("slow") or item.nodeid.startswith("contract_tests/") else 2

    items.sort(key=weight)


def pytest_collection_finish(session):
    """What collection built (every test module, its items, the libraries they import) lives to the end of the run:
    frozen, it is no longer walked by each of the collector's full passes while the tests run (in a worker of
    `make test`, a third less time collecting garbage). What a test leaves behind is collected as before."""
    gc.freeze()


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(fixturedef, request):
    """Fail a module fixture that another xdist worker of the same run already built: its module's tests were split
    over workers, so the grouping above stopped working (as it did once under a pytest that pytest-xdist did not
    support yet) and every such fixture is silently built once per worker."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    grouping = request.config.getoption("dist", None) == "loadgroup"  # other modes split modules by design
    if worker and grouping and fixturedef.scope == "module" and request.module.__name__.startswith("tests."):
        param = getattr(request, "param_index", 0)
        mark = request.config._tmp_path_factory.getbasetemp().parent / f"built-{request.module.__name__}-" \
                                                                            f"{fixturedef.argname}-{param}"
        try:
            with open(mark, "x", encoding="utf-8") as file:
                file.write(worker)
        except FileExistsError:
            builder = mark.read_text(encoding="utf-8")
            if builder != worker:
                pytest.fail(f"the module fixture {fixturedef.argname} of {request.module.__name__} was built on "
                            f"{builder} and again on {worker}: --dist loadgroup did not keep its tests together")
    return (yield)


def pytest_generate_tests(metafunc):
    """Run the tests of modules marked `all_stores` once per store backend, or once per backend a test's `stores` mark
    names (a test of what only some backends do is not collected for the others, rather than skipped there)."""
    only = metafunc.definition.get_closest_marker("stores")
    if only is not None and not (only.args and set(only.args) <= set(STORES)
                                 and metafunc.definition.get_closest_marker("all_stores")):
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: a stores(...) mark names some of {STORES}, in a "
                                f"module marked all_stores; got stores{only.args!r}")
    if "store_spec" in metafunc.fixturenames and metafunc.definition.get_closest_marker("all_stores"):
        metafunc.parametrize("store_spec", only.args if only else STORES, indirect=True)


@pytest.fixture(scope="session")
def redis_server():
    """One redis-server per test process, on loopback; each test keeps its keys under a prefix of its own."""
    if debian_command("redis-server") is None:
        pytest.skip("the Redis store tests need Debian's redis-server; install it with: apt-get install redis-server")
    with RedisServer() as server:
        yield server


def redis_store(server: RedisServer, tag: str) -> str:
    """A Redis store setting on `server` under a prefix of its own (`tag` and a random part): the tests of a process
    share its one redis-server, each in its own keys."""
    return f"{server.url}?prefix={tag}{uuid.uuid4().hex[:12]}"


@pytest.fixture
def store_spec(request, tmp_path) -> str:
    """The `store` setting of the mocks a test builds: memory unless the module runs over all stores."""
    kind = getattr(request, "param", "memory")
    if kind == "memory":
        yield "memory"
    elif kind == "sqlite":
        yield f"sqlite:{tmp_path / 'ivh-mock.sqlite3'}"
    else:
        spec = redis_store(request.getfixturevalue("redis_server"), "t")
        yield spec
        open_store(spec).reset()


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(start=T0)


@pytest.fixture
def app(clock, store_spec):
    """A fresh mock with TIMING, on the virtual clock; no callback dispatcher (the callback tests run their own)."""
    return create_app({**TIMING, "background": False, "store": store_spec}, clock=clock)


def answer_bodies(connection: socket.socket, count: int) -> list[bytes]:
    """The bodies of the next `count` answers on `connection` (each with a Content-Length)."""
    data, bodies = bytearray(), []
    while len(bodies) < count:
        head_end = data.find(b"\r\n\r\n")
        if head_end >= 0:
            length = int(re.search(rb"(?i)content-length: *(\d+)", bytes(data[:head_end])).group(1))
            if len(data) >= head_end + 4 + length:
                bodies.append(bytes(data[head_end + 4:head_end + 4 + length]))
                del data[:head_end + 4 + length]
                continue
        chunk = connection.recv(1 << 20)
        assert chunk, bytes(data[:200])
        data += chunk
    return bodies


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group `pgid` (a server's master and workers)."""
    members = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            state, _, group = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if int(group) == pgid and state != "Z":
            members.append(int(entry))
    return members


def close_waits(ports: set[int]) -> int:
    """How many TCP connections to `ports` (the far end's) are in CLOSE_WAIT: the far end closed, this one not yet.
    /proc/net/tcp lists every connection of the machine: only those made to these ports, the tests' own, count."""
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as lines:
            for line in list(lines)[1:]:
                fields = line.split()
                if fields[3] == "08" and int(fields[2].rsplit(":", 1)[1], 16) in ports:
                    count += 1
    return count


def until(condition, seconds: float = 10, then=None, pause: float = 0.002) -> None:
    """Wait until `condition()` holds, calling `then()` between looks `pause` s apart; fail the test after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        if then is not None:
            then()
        time.sleep(pause)


def locked_at_first(monkeypatch, store, method: str, times: int, when: Callable[[str], bool] = lambda task_id: True,
                    ) -> list[str]:
    """Make the store's `method` (one taking a task id or a record with one first) raise StoreBusy, as a database
    another program keeps locked does, for its first `times` calls whose task id `when` holds for, then work; return
    the task ids of the calls refused."""
    from ivh_mock.mock_server.store import StoreBusy

    real, refused = getattr(store, method), []

    def locked(first, *args):
        task_id = first if isinstance(first, str) else first.task_id
        if len(refused) < times and when(task_id):
            refused.append(task_id)
            raise StoreBusy("the store is locked by another program")
        return real(first, *args)

    monkeypatch.setattr(store, method, locked)
    return refused


def in_process(app, clock: VirtualClock, **identity: str) -> Caller:
    """Return a Caller that sends through Flask's test client (no sockets)."""
    client = app.test_client()

    def send(url, data, headers):
        response = client.post(url, data=data, headers=headers)
        return response.status_code, response.get_json()

    return Caller(send, clock, **identity)


@pytest.fixture
def api(app, clock) -> Caller:
    return in_process(app, clock)


@contextlib.contextmanager
def serving(app):
    """Serve `app` over real HTTP on a free loopback port; yield its base URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    serving_thread = ServingThread(server)
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        serving_thread.stop()


def accepting(listener: socket.socket, handle: Callable[[socket.socket], Any]) -> None:
    """Give each connection `listener` takes to `handle` (which owns it), on a thread of its own, until the listener
    is closed."""
    def accept() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:  # closed
                return
            handle(connection)

    threading.Thread(target=accept, daemon=True).start()


class RawServer:
    """A local server (a context manager) that reads each request whole, head and body, and answers it with `answer`
    as raw bytes: all at once or, with `every`, a byte every `every` seconds. Then it closes the connection or, with
    `hang`, keeps it open, sending nothing more, until the server is closed. `requests` counts the requests read."""

    def __init__(self, answer: bytes, *, every: float = 0.0, hang: bool = False):
        self.answer, self.every, self.hang, self.requests = answer, every, hang, 0
        self._stop = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        accepting(self._listener, lambda connection: threading.Thread(target=self._answer, args=(connection,),
                                                                      daemon=True).start())

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            try:
                head, body = self._read(connection)
            except (ConnectionError, EOFError):  # the client went before its request was whole: no answer is due
                return
            self.requests += 1
            pieces = [self.answer] if not self.every else [bytes([byte]) for byte in self.answer]
            for piece in pieces:
                if self.every and self._stop.wait(self.every):
                    return
                try:
                    connection.sendall(piece)
                except OSError:
                    return
            if self.hang:
                self._stop.wait(30)

    @staticmethod
    def _read(connection: socket.socket) -> tuple[bytes, bytes]:
        """A request's head and its whole body (unread, closing would reset the client)."""

        def more() -> bytes:
            chunk = connection.recv(65536)
            if not chunk:
                raise EOFError  # recv() would answer b"" for ever
            return chunk

        data = b""
        while b"\r\n\r\n" not in data:
            data += more()
        head, _, body = data.partition(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        while length and len(body) < int(length.group(1)):
            body += more()
        return head, body

    def close(self) -> None:
        self._stop.set()
        self._listener.close()

    def __enter__(self) -> RawServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class FixedAnswer(requests.adapters.BaseAdapter):
    """Answers every call with one status, body and headers, as a server that is not the API might."""

    def __init__(self, body: bytes, status: int = 200, headers: dict | None = None):
        super().__init__()
        self.body, self.status, self.headers, self.calls = body, status, headers or {}, 0

    def send(self, request, **kwargs):
        self.calls += 1
        response = requests.Response()
        response.status_code, response._content, response.request, response.url = (self.status, self.body, request,
                                                                                   request.url)
        response.headers.update(self.headers)
        response._content_consumed = True  # read already: what streaming it would give
        return response

    def close(self):
        pass


class Redirector:
    """An endpoint that answers every GET and PUT with a redirect to `target` (as S3 answers 307 for another region),
    written as given: werkzeug's own server would refuse to send a Location it cannot parse."""

    def __init__(self, target: str, status: int = 307):
        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self):  # noqa: N802 (http.server's naming)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_PUT  # noqa: N815

            def log_message(self, *args):
                pass

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hop"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def trickler():
    """A host that answers a byte every 0.2 s for up to 20 s: `/headers` trickles its status line and headers,
    anything else sends its headers at once and trickles the body."""
    host = Trickler()
    yield host.url
    host.close()


@pytest.fixture
def served(app):
    with serving(app) as url:
        yield url


@pytest.fixture
def http_api(served, clock) -> Caller:
    session = requests.Session()

    def send(url, data, headers):
        response = session.post(served + url, data=data, headers=headers, timeout=10)
        return response.status_code, response.json()

    return Caller(send, clock)


MOCK = str(Path(sys.executable).with_name("ivh-mock"))
BANNER_LINES = 7


class ServeProcess:
    """`ivh-mock serve` in a process group of its own (its master and workers), on a free port.

    Its output is read as it comes (`errors()` returns what it logged): a pipe nobody reads fills up, and a server
    logging into a full pipe stops answering, so a test that should fail would hang instead."""

    def __init__(self, data_dir, *args: str, cwd=None, env=None, command: str = MOCK):
        data = ["--data-dir", str(data_dir)] if data_dir is not None else []
        argv = ["serve", "--port", "0", *data, *args]
        if command == MOCK:  # this virtualenv's command, forked from a process that imported it (tests/forked.py)
            self.process = forked.mock(argv, cwd=cwd, env=env)
        else:
            self.process = subprocess.Popen([command, *argv], cwd=cwd, env=env, stdout=subprocess.PIPE,
                                            stderr=subprocess.PIPE, text=True, start_new_session=True)
        self.banner = "".join(self.process.stdout.readline() for _ in range(BANNER_LINES))
        match = re.search(r"listening on (http://\S+)", self.banner)
        if not match:
            self.kill()
            raise AssertionError(f"ivh-mock serve did not start: {self.banner!r} {self.process.stderr.read()}")
        self.url = match.group(1)
        self._logged: list[str] = []
        self._printed: list[str] = []  # what it printed after its banner's first BANNER_LINES lines
        self._readers = [threading.Thread(target=_drain, args=(stream, kept), daemon=True) for stream, kept in
                         ((self.process.stdout, self._printed), (self.process.stderr, self._logged))]
        for reader in self._readers:
            reader.start()

    def printed(self) -> str:
        """What the server wrote to stdout after the banner's first BANNER_LINES lines, so far."""
        return "".join(self._printed)

    def errors(self) -> str:
        """What the server wrote to stderr so far (all of it once the process has exited)."""
        if self.process.poll() is not None:
            for reader in self._readers:
                reader.join(timeout=10)
        return "".join(self._logged)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send `sig` to the master and every worker at once, as a crash or an OOM killer would."""
        with contextlib.suppress(ProcessLookupError):  # the group outlives its master should a worker linger
            os.killpg(self.process.pid, sig)
        self.process.wait(timeout=15)
        if sig == signal.SIGKILL:  # the group is gone: its pipes end, and are closed once read to their end (else
            for reader, stream in zip(self._readers, (self.process.stdout, self.process.stderr)):  # each was left
                reader.join(timeout=1)  # to the collector of whichever test came next, a ResourceWarning there)
                if not reader.is_alive():
                    stream.close()

    def stop(self) -> int:
        """Stop as an operator would (SIGTERM to the master) and return the exit status."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=15)

    def __enter__(self) -> ServeProcess:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()


def _drain(stream, kept: list[str]) -> None:
    for line in stream:
        kept.append(line)


# -- the contract suite in a process of its own ------------------------------------------------------------------------
def run_suite(url, report_dir, *extra, paths=("contract_tests",)):
    """Run the contract suite's `paths` against `url` in a pytest process of its own."""
    env = {**os.environ, "IVH_APPKEY": "contract-ci", "IVH_ACCESSTOKEN": DEFAULT_TOKEN}
    return forked.run([*paths, "-q", "-p", "no:cacheprovider", "-rs", "--ivh-base-url", url, "--ivh-report-dir",
                       str(report_dir), *extra], cwd=ROOT_DIR, env=env)


def assert_the_suite_passed(result, url, report_dir):
    """The whole suite ran, skipped nothing, and its drift report names `url` as a mock that agrees everywhere."""
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1]
    report = json.loads((report_dir / "drift-report.json").read_text())
    assert report["target"] == url and report["is_mock"]
    assert {row["verdict"] for row in report["probes"]} == {"agree"}
    assert (report_dir / "drift-report.md").read_text().count("| agree |") == len(report["probes"])
