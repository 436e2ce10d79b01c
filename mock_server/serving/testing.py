"""Run the mock inside a test: on a loopback port in a thread, or in-process behind a requests adapter (a local
endpoint that records callbacks is receiver.py's, imported here too). The pytest plugin (`pytest_plugin.py`) is built
from these."""

from __future__ import annotations

import contextlib
import functools
import io
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, TypeVar, cast
from urllib.parse import quote, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from werkzeug.serving import WSGIRequestHandler, make_server

from ..app import create_app, stop_app
from ..clock import VirtualClock
from ..media_in.samples import SAMPLES
from ..routes import results
from ..routes.guard import bracketed, is_loopback
from ..store import MemoryStore, Store
from . import unread
from .receiver import CallbackReceiver, QuietHTTPServer, ServingThread  # noqa: F401 - importable from here too

if TYPE_CHECKING:
    from ivh_mock.client import Client


_Method = TypeVar("_Method", bound=Callable[..., Any])


def _while_serving(method: _Method) -> _Method:
    """A MockServer method that works only while the mock serves: a stopped one (a fixture kept past its test) had
    answered as if nothing were wrong, and the client it made met a refused connection saying nothing of why. The
    method keeps its signature for a type checker (each had become `(*Any, **Any) -> Any`)."""
    @functools.wraps(method)
    def checked(self: MockServer, *args: Any, **kwargs: Any) -> Any:
        if self._stopped:
            raise RuntimeError(f"this MockServer ({self.base_url}) is stopped: each serves until its stop (a "
                               f"fixture's, until the end of its test); use one that serves")
        return method(self, *args, **kwargs)
    return cast(_Method, checked)


class MockServer:
    """A mock served on a free loopback port in a background thread, with a frozen virtual clock.

    Use as a context manager, or call `stop()`. The inspection methods return what the control API returns."""

    def __init__(self, config: Mapping[str, Any] | None = None, *, clock: VirtualClock | None = None,
                 store: Store | None = None, host: str = "127.0.0.1", scratch_in: str | os.PathLike[str] | None = None):
        self.clock = clock or VirtualClock(frozen=True)
        config = dict(config or {})
        if not is_loopback(host) and config.get("control_token") is None:
            config["control_token"] = secrets.token_urlsafe(18)  # beyond loopback it is never open, as with serve
        self.app = create_app(config, store=store or MemoryStore(), clock=self.clock, scratch_in=scratch_in)
        self.ctx = self.app.extensions["ivh_mock"]
        self._control = self.app.test_client()
        if self.ctx.config.control_token is not None:  # the inspection and control methods carry it
            self._control.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {self.ctx.config.control_token}"
        try:
            server = _server(host, self.app)
        except BaseException:  # the app's dispatcher thread and scratch folder go with it
            stop_app(self.app)
            raise
        self.base_url = f"http://{bracketed(host)}:{server.port}"
        self._serving = ServingThread(server, "ivh-mock-server")
        self._stopped = False

    @property
    def control_token(self) -> str | None:
        """The token the control API demands (Authorization: Bearer ...): the config's, or one made for a host beyond
        loopback; None on loopback without one."""
        return self.ctx.config.control_token

    # -- time -----------------------------------------------------------------------------------------------------
    @_while_serving
    def now(self) -> float:
        return self.clock.now()

    @_while_serving
    def advance(self, seconds: float) -> float:
        """Move the mock's clock forward (tasks progress, callbacks fall due) and return the new time; uploads to the
        caller's storage that fall due are made before it returns."""
        now = self.clock.advance(seconds)
        dispatcher = self.app.extensions["ivh_mock_dispatcher"]
        dispatcher.wake()
        dispatcher.settle()
        results.sweep(self.ctx)  # as a move through the control API sweeps: files expired now are gone now (D36)
        return now

    @_while_serving
    def client(self, appkey: str = "my-app", **options: Any) -> Client:
        """A `client.Client` of this mock (the default accesstoken) whose `wait()` moves the mock's clock instead of
        sleeping: with the clock frozen, a client that sleeps in real time waits for ever. `options` go to Client."""
        from ivh_mock.client import Client  # the one place the mock's package uses the client

        from ivh_mock.spec import deadline

        # the mock is on loopback: a proxy the environment names (HTTP_PROXY without NO_PROXY) must not carry it
        settings = {"clock": self.now, "sleep": self.advance, "monotonic": self.now,
                    "session": deadline.session(trust_env=False), **options}
        return Client(appkey, self.ctx.config.default_accesstoken, self.base_url, **settings)

    # -- media ----------------------------------------------------------------------------------------------------
    @_while_serving
    def sample(self, name: str) -> str:
        """Return the URL of a generated sample (photo.jpg, audio-5s.wav, ...: GET /__mock__/assets/samples)."""
        if name not in SAMPLES:
            raise ValueError(f"no sample {name!r}; the mock lists them at {self.base_url}/__mock__/assets/samples")
        return f"{self.base_url}/__mock__/assets/samples/{name}"

    @_while_serving
    def upload(self, data: bytes, name: str) -> str:
        """Keep `data` on the mock's asset host and return its URL (for a photo or audio of the test's own)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):  # text had been kept as its UTF-8 bytes, unsaid
            raise TypeError(f"upload takes the file's bytes, got {type(data).__name__}")
        response = self._control.post("/__mock__/assets", query_string={"name": name}, data=bytes(data),
                                      headers={"Content-Type": "application/octet-stream"})
        if response.status_code != 201:
            raise ValueError(response.get_json()["error"]["message"])
        return self.base_url + urlsplit(response.get_json()["Url"]).path

    # -- inspection and control (the control API's answers) -------------------------------------------------------
    @_while_serving
    def tasks(self, appkey: str | None = None) -> list[dict[str, Any]]:
        """Every task (of `appkey`), oldest first: not only the newest 500 the list route gives by default."""
        return self._get("/__mock__/tasks", appkey)["tasks"]

    @_while_serving
    def task(self, task_id: str) -> dict[str, Any]:
        """One task as the control API shows it, its callback deliveries included (waited for, as `callbacks`
        waits); ValueError for an id it does not know, as configure and reset raise (its answer had come back as the
        error's JSON, and `task(id)["status"]` raised a bare KeyError)."""
        self._delivered()
        return _answer(self._control.get(f"/__mock__/tasks/{quote(task_id, safe='')}"))

    @_while_serving
    def callbacks(self, appkey: str | None = None) -> list[dict[str, Any]]:
        """The callbacks delivered: the callbacks due are waited for (each at most the callback timeout), as their
        targets may already hold the body (a CallbackReceiver's `wait_for` returns) before the attempt is recorded,
        and one due since the clock moved may not be sent yet."""
        self._delivered()
        return self._get("/__mock__/callbacks", appkey)["callbacks"]

    def _delivered(self) -> None:
        self.app.extensions["ivh_mock_dispatcher"].delivered(self.ctx.config.callback_timeout_seconds + 1)

    @_while_serving
    def requests(self, appkey: str | None = None) -> list[dict[str, Any]]:
        """Every request the journal holds (of `appkey`; the journal's own bounds apply, see `journal_limit`)."""
        return self._get("/__mock__/requests", appkey)["requests"]

    @_while_serving
    def set_scenario(self, appkey: str, scenario: str) -> dict[str, Any]:
        """Make `scenario` the default of every task `appkey` submits."""
        return self.configure(appkey, scenario=scenario)

    @_while_serving
    def configure(self, appkey: str, **settings: Any) -> dict[str, Any]:
        """Change an account's settings (concurrency, hourly_package_seconds, max_pending, scenario, ...)."""
        return _answer(self._control.put(f"/__mock__/accounts/{quote(_named(appkey), safe='')}", json=settings))

    @_while_serving
    def reset(self, appkey: str | None = None) -> None:
        """Forget everything (the clock returns to real time, frozen as the fixture's starts), or one account."""
        _answer(self._control.post("/__mock__/reset", json={"appkey": appkey} if appkey is not None else {}))

    def _get(self, path: str, appkey: str | None) -> dict[str, Any]:
        # None reads every account's; "" had read every account's too, where reset("") is refused
        query = {"appkey": _named(appkey)} if appkey is not None else {}
        # every one: the list routes keep the newest 500 by default, and a test of 600 tasks saw 500
        return self._control.get(path, query_string={**query, "limit": sys.maxsize}).get_json()

    # -- lifetime -------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop serving (once: a second stop does nothing); first deliver the callbacks due by the mock's clock (each
        within the callback timeout): its store keeps nothing, so one due and not yet claimed (a test that ends right
        after `advance()`) was lost."""
        if self._stopped:
            return
        self._stopped = True
        try:
            self._serving.stop()
            # the requests under way end first (one whose client gave up goes on): one that wrote a file after its
            # scratch folder was removed made the folder again, left behind, a file in it
            self._serving.server.underway.wait(UNDERWAY_SECONDS)
            self.app.extensions["ivh_mock_dispatcher"].delivered(self.ctx.config.callback_timeout_seconds)
        finally:  # a wait cut short (a test's timeout that fires in its teardown) had left the mock's threads running
            stop_app(self.app)  # and its scratch folder in place to the end of the process, nobody to stop them

    def __enter__(self) -> MockServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def _named(appkey: Any) -> str:
    """An appkey a fixture puts in a URL: in one, None or 123 would name accounts "None", "123"."""
    if not isinstance(appkey, str) or not appkey:
        raise ValueError(f"appkey must be a non-empty string, got {appkey!r}")
    return appkey


def _answer(response) -> dict[str, Any]:
    """A control API answer's JSON; ValueError with its message when it refused."""
    if response.status_code != 200:
        raise ValueError(response.get_json()["error"]["message"])
    return response.get_json()


class WSGIAdapter(BaseAdapter):
    """A requests transport that hands each request to a WSGI app in-process: no sockets, same bytes."""

    def __init__(self, app):
        super().__init__()
        self.client = app.test_client()

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        url = urlsplit(request.url)
        body = request.body.encode() if isinstance(request.body, str) else (request.body or b"")
        answer = self.client.open(url.path, method=request.method, query_string=url.query, data=body,
                                  headers=dict(request.headers), base_url=f"{url.scheme}://{url.netloc}")
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response.raw = io.BytesIO(answer.get_data())
        answer.close()  # a file's answer holds the file open until closed
        response.url, response.request, response.reason = request.url, request, answer.status
        response.encoding = answer.mimetype_params.get("charset")
        return response

    def close(self):
        pass


def in_process_session(app, base_url: str = "http://ivh-mock.localhost") -> requests.Session:
    """Return a requests session whose calls to `base_url` go straight into `app`. The default is a name under
    `localhost`, which the control API answers to; another name needs the mock's `allowed_hosts`."""
    session = requests.Session()
    session.mount(base_url, WSGIAdapter(app))
    return session


def _server(host: str, app) -> Any:
    """werkzeug's threaded server for `app` on a free port of `host`. The socket is made here: werkzeug's own prints
    why it could not listen to stderr and exits the process (SystemExit), where this raises OSError saying why."""
    try:
        listener = socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except OSError as error:
        # the system's words, without the socket module's "(while attempting...)"; a name that does not resolve has
        # getaddrinfo's errno (negative), which os.strerror calls "Unknown error -2": its own words are kept
        reason = (os.strerror(error.errno) if error.errno and error.errno > 0 else
                  (error.strerror or str(error)).split(" (while attempting")[0])
        raise OSError(error.errno, f"cannot listen on {host}: {reason}") from None
    with listener:  # werkzeug listens on a copy of it
        server = make_server(host, 0, app, threaded=True, request_handler=_QuietHandler, fd=listener.fileno())
    server.underway = _Underway()
    return server


UNDERWAY_SECONDS = 5.0  # the longest a stopping MockServer waits for the requests it is answering


class _Underway:
    """The requests a server is answering (each a block: `with underway:`), for a stop to wait for."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def __enter__(self) -> None:
        with self._changed:
            self._count += 1

    def __exit__(self, *raised: object) -> None:
        with self._changed:
            self._count -= 1
            self._changed.notify_all()

    def wait(self, seconds: float) -> bool:
        """Wait until none is under way, `seconds` at most; whether none is."""
        with self._changed:
            return self._changed.wait_for(lambda: self._count == 0, seconds)


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler without its line per request on stderr (outside pytest nothing captures it), nor one for
    each request it refuses itself (`code 414, message Request-URI Too Long`: the client has the answer). An error of
    the app's own is still logged: werkzeug's server logs it, not its handler."""

    def log_request(self, *args: Any) -> None:
        pass

    def log_error(self, *args: Any) -> None:
        pass

    # One Date: http.server's send_response gives every answer one, and an app's file answer (werkzeug's send_file)
    # has its own: result and asset URLs answered two (`Date: ..., ...` to a client that joins them). The server's
    # comes last now, when the app gave none (waitress, serving the mock, does the same).
    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self._dated = False

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "date":
            self._dated = True
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        if not getattr(self, "_dated", True):  # (an interim 100 Continue is sent without send_response)
            self.send_header("Date", self.date_time_string())
        super().end_headers()

    def run_wsgi(self) -> None:  # one request, read: its answer is counted under way until sent
        with self.server.underway:
            super().run_wsgi()

    def handle_expect_100(self) -> bool:
        return True  # werkzeug sends its own 100 Continue before it runs the app: http.server's made two

    def parse_request(self) -> bool:
        """http.server's reading of the head, which takes up to 100 lines of 64 KiB each, held to the served mock's
        bound on a whole head (HEADER_BYTES, D06): a test with a 40 KB header had passed here and met 431 there."""
        if not super().parse_request():
            return False
        size = len(self.raw_requestline) + sum(len(name) + len(value) + 4 for name, value in self.headers.items())
        if size + 2 > unread.HEADER_BYTES:
            self.send_error(431, explain=f"the request line and headers are larger than {unread.HEADER_BYTES} bytes")
            return False
        return True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's refusal of a request it cannot read (a request line past 65536 bytes: 414; a header line
        past it, or more than 100 headers: 431), in the format of the routes the request line names, as the served
        mock answers it (`unread.answer`); http.server's HTML for any other path."""
        line = getattr(self, "raw_requestline", b"")  # this request's: `path` may still be the one before's
        method, path, _ = unread.route_of(line, line.endswith(b"\n"))
        reason, long = self.responses.get(code, ("", ""))
        detail = f"the request line is longer than {len(line) - 1} bytes" if code == 414 else explain or message
        refusal = unread.answer(path, code, reason, detail or long)
        if refusal is None:
            return super().send_error(code, message, explain)
        status, kind, body = refusal
        self.send_response(status, "OK" if status == 200 else reason)
        self.send_header("Connection", "close")
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":  # (`command` is still unread when the line is too long)
            self.wfile.write(body)


def debian_command(command: str, package: str | None = None) -> str | None:
    """Return the path of `command`, installing its Debian package first when it is missing and this process may
    (root with apt-get); None when it is missing and cannot be installed."""
    found = shutil.which(command)
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, timeout=900, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", package or command], check=True, timeout=1800, env=env,
                   capture_output=True)
    return shutil.which(command)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


# Runs beside a server a process starts: should that process end without stopping it (SIGKILL, which it cannot catch:
# a test run killed at its time limit, a benchmark), the server would be left running (or paused, as the benchmark
# pauses them) for good; the guard then kills the server whose pid it was given (its process group, when its argument
# says "group").
GUARD = """
import os, shutil, signal, sys
print("ready", flush=True)
pid = sys.stdin.buffer.readline().strip()
if pid.isdigit() and not sys.stdin.buffer.read(1):  # its starter is gone (its end of the pipe closed) unannounced
    try:
        (os.killpg if sys.argv[1] == "group" else os.kill)(int(pid), signal.SIGKILL)  # a paused one too
    except ProcessLookupError:
        pass
    if sys.argv[2]:
        shutil.rmtree(sys.argv[2], ignore_errors=True)
"""


@contextlib.contextmanager
def guard(group: bool = True, folder: str = "") -> Iterator[Callable[[int], None]]:
    """A guard process, ready before the block (its start costs what the block measures nothing); the block calls
    the function it is given with the pid of the server to kill (with `group`, its process group) should this
    process die before the block ends, and stops that server within the block. The guard that kills it removes
    `folder` too (the server's scratch folder, which its starter, killed, could not)."""
    guarding = subprocess.Popen([sys.executable, "-c", GUARD, "group" if group else "process", folder],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                start_new_session=True)  # not paused with a server, nor sent a terminal's Ctrl-C
    guarding.stdout.readline()

    def watch(pid: int) -> None:
        guarding.stdin.write(f"{pid}\n".encode())
        guarding.stdin.flush()

    try:
        yield watch
    finally:
        with contextlib.suppress(BrokenPipeError):
            guarding.stdin.write(b"stopped")
            guarding.stdin.close()
        guarding.wait()


class RedisServer:
    """A throwaway redis-server on a free loopback port and a Unix socket, without persistence; `url` is its
    redis:// URL, `unix_url` its unix:// one. Should this process die without stopping it (a test run killed at its
    time limit), a guard process kills it.

    Installs Debian's redis-server first when it is missing (see `debian_command`)."""

    def __init__(self, host: str = "127.0.0.1"):
        binary = debian_command("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is missing and cannot be installed here: apt-get install redis-server")
        self.port = free_port(host)
        self._guard = contextlib.ExitStack()  # kills it should this process die without stopping it
        self._dir = tempfile.TemporaryDirectory(prefix="ivh-redis-")
        watch = self._guard.enter_context(guard(group=False, folder=self._dir.name))
        unix_socket = os.path.join(self._dir.name, "redis.sock")
        try:
            self.process = subprocess.Popen([binary, "--port", str(self.port), "--bind", host, "--save", "",
                                             "--appendonly", "no", "--dir", self._dir.name, "--protected-mode", "no",
                                             "--unixsocket", unix_socket, "--unixsocketperm", "700"],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except BaseException:
            self._guard.close()
            self._dir.cleanup()
            raise
        watch(self.process.pid)
        self.url = f"redis://{host}:{self.port}/0"
        self.unix_url = f"unix://{unix_socket}?db=0"
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection((host, self.port), timeout=1) as connection:
                    connection.sendall(b"PING\r\n")
                    if connection.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self._guard.close()
        self._dir.cleanup()

    def __enter__(self) -> RedisServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
