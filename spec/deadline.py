"""A wall-clock deadline for a whole HTTP exchange made with requests: connect, headers, body and redirects.

requests' timeouts bound each connect and each read, not the exchange: a peer that sends one byte every two seconds
never trips them. A session from `session()` hands every socket it opens or reuses to the deadline the calling
thread is `within`, and when the time is up a watchdog (one thread per process) shuts those sockets down: a blocked
read returns at once and the exchange fails, so no peer holds the caller's thread longer than the deadline. (A host
name that takes long to resolve is not covered: name lookups cannot be interrupted.) The mock's downloads and
callbacks use it, and so does the client for each call.
"""

from __future__ import annotations

import contextlib
import heapq
import http.client
import itertools
import os
import signal
import socket
import sys
import threading
import time
from typing import Any, Iterable, Iterator
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from requests.sessions import merge_setting
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.poolmanager import ProxyManager

# A request arriving at one of the project's servers (the mock's, the recording proxy's) may take REQUEST_SECONDS,
# and a second more for each MIN_RATE bytes it has sent, as Apache's mod_reqtimeout allows (D82): each byte had put
# off the idle timeout, and a head sent a byte every 20 s held its connection for days
REQUEST_SECONDS = 20
MIN_RATE = 500


def arrival_due(started: float, received: int) -> float:
    """When a request whose first byte came at `started` and which has sent `received` bytes is overdue (on the
    clock `started` was read from)."""
    return started + REQUEST_SECONDS + received / MIN_RATE

_local = threading.local()


class Deadline:
    """The end of an exchange: `left()` seconds remain; `expired` once the watchdog has shut its sockets down."""

    def __init__(self, seconds: float, outer: Deadline | None = None):
        now = time.monotonic()
        self.at, self.seconds = now + seconds, seconds
        if outer is not None and outer.at < self.at:  # within a block of its own: the sooner of the two ends both
            self.at, self.seconds = outer.at, round(outer.at - now, 3)  # what a message says it allowed
        self.outer = outer
        self.expired = False
        self.ended = False  # the exchange ended first: the watchdog forgets it
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def left(self) -> float:
        return self.at - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


class _Watchdog:
    """One thread per process that ends each deadline when its time comes. A timer thread per exchange cost about
    150 us of CPU to start, as much as a tenth of a client's call to a mock on loopback."""

    # past threading's bound (about 292 years) a wait overflows in the waiting thread: a far deadline is waited for
    # in steps
    LONGEST_WAIT = 3600.0

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._forked)

    def _reset(self) -> None:
        self._changed = threading.Condition(threading.Lock())
        self._due: list[tuple[float, int, Deadline]] = []  # a heap, soonest first; ended ones leave it lazily
        self._ended = 0
        self._numbers = itertools.count()  # ties in time keep their order and never compare two deadlines
        self._thread: threading.Thread | None = None

    def _forked(self) -> None:
        """A forked child has the lock's state but not the thread, nor the other threads' deadlines: it starts anew,
        keeping the deadlines its one thread was within when it forked."""
        self._reset()
        deadline = getattr(_local, "deadline", None)
        while deadline is not None:
            if not (deadline.ended or deadline.expired):
                self.add(deadline)
            deadline = deadline.outer

    def add(self, deadline: Deadline) -> None:
        with self._changed:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="ivh-deadlines", daemon=True)
                # made with the stop signals held, which it keeps: they go to the main thread, where a blocking read
                # ends at once to run the handler (one taken by this thread had left the read waiting for its
                # timeout, and its handler run inside a step the main thread held them back from, `signals_held`)
                with signals_held():
                    self._thread.start()
            heapq.heappush(self._due, (deadline.at, next(self._numbers), deadline))
            if self._due[0][2] is deadline:  # sooner than the one waited for
                self._changed.notify()

    def end(self, deadline: Deadline) -> None:
        with self._changed:
            deadline.ended = True
            if not deadline.expired:  # else the watchdog has taken it off the heap already
                self._ended += 1
            if self._ended > 64 and self._ended * 2 > len(self._due):  # most of the heap ended early: keep the rest
                self._due = [entry for entry in self._due if not entry[2].ended]
                heapq.heapify(self._due)
                self._ended = 0

    def _run(self) -> None:
        with self._changed:
            while True:
                while self._due and self._due[0][2].ended:
                    heapq.heappop(self._due)
                    self._ended -= 1
                if not self._due:
                    self._changed.wait()
                    continue
                left = self._due[0][0] - time.monotonic()
                if left > 0:
                    self._changed.wait(min(left, self.LONGEST_WAIT))
                    continue
                _, _, deadline = heapq.heappop(self._due)
                try:
                    deadline._expire()
                except Exception:  # never the end of the watchdog, which every later deadline needs
                    sys.excepthook(*sys.exc_info())


_watchdog = _Watchdog()


@contextlib.contextmanager
def signals_held(signals: Iterable[int] = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """Hold back `signals`, by default those that stop a command, in this thread within the block, a step that must
    not be cut in two; one that came meanwhile is raised after it. A thread started within keeps them held. (Where
    there are no signal masks, Windows, nothing is held.)"""
    if not hasattr(signal, "pthread_sigmask"):
        yield
        return
    held = signal.pthread_sigmask(signal.SIG_BLOCK, set(signals))
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@contextlib.contextmanager
def within(seconds: float) -> Iterator[Deadline]:
    """Run the block's exchanges (made with a `session()`) under one deadline of `seconds`."""
    outer = getattr(_local, "deadline", None)
    deadline = Deadline(seconds, outer)
    _local.deadline = deadline
    _watchdog.add(deadline)
    try:
        yield deadline
    finally:
        _watchdog.end(deadline)
        _local.deadline = outer


def session(pool_size: int = 10, *, trust_env: bool = False) -> requests.Session:
    """A requests session whose sockets keep the deadline of the `within` block they are used in. Without
    `trust_env` it ignores the machine's proxy settings: the mock's downloads and callbacks go straight to their
    host. With it, the environment is read once per host (_EnvironmentOnce)."""
    adapter = _Adapter(pool_connections=pool_size, pool_maxsize=pool_size)
    result = _EnvironmentOnce() if trust_env else requests.Session()
    result.trust_env = trust_env
    result.mount("http://", adapter)
    result.mount("https://", adapter)
    return result


def named_ca_bundle() -> tuple[str, str] | None:
    """The certificates the environment names to verify a server with, as (variable, path): REQUESTS_CA_BUNDLE, else
    CURL_CA_BUNDLE, as requests reads them; None when neither is set."""
    for name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        path = os.environ.get(name)
        if path:
            return name, path
    return None


def proxy_note(session: requests.Session, url: str, error: Exception) -> str:
    """What to add to the message of `error`, a call of `session` to `url` that failed before any answer came, when
    the environment sends that call through a proxy: which variable names it, and NO_PROXY to call the host
    directly. Empty when the session does not take its proxies from the environment, none is named for `url`
    (NO_PROXY taken into account), or `error` is not of the kind a proxy can cause. requests' own words ("Unable to
    connect to proxy", "Failed to parse: ...", "Missing dependencies for SOCKS support.") named neither."""
    kinds = (requests.ConnectionError, requests.Timeout, requests.exceptions.InvalidURL,
             requests.exceptions.InvalidSchema)  # a SOCKS proxy, without PySocks
    if not isinstance(error, kinds) or not session.trust_env or session.proxies:
        return ""
    try:
        proxies = requests.utils.get_environ_proxies(url)
        parts = urlsplit(url)
    except ValueError:
        return ""
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    proxy = proxies.get(f"{scheme}://{host}") or proxies.get(scheme) or proxies.get("all")
    if not proxy:
        return ""
    names = {name.lower(): name for name in os.environ}  # as urllib reads them: either case
    variable = next((names[key] for key in (f"{scheme}_proxy", "all_proxy") if key in names
                     and os.environ[names[key]] == proxy), f"{scheme.upper()}_PROXY")
    scheme_part, sep, rest = proxy.partition("://")  # shown without a user and password before its host
    shown = (scheme_part + sep + rest.rpartition("@")[2] if sep else proxy.rpartition("@")[2])[:100]
    return (f" (the call went through the proxy {shown!r} that {variable} names: set NO_PROXY={host} to call "
            f"{host} directly)")


class _EnvironmentOnce(requests.Session):
    """Takes what requests reads from the environment on every call (HTTP(S)_PROXY and NO_PROXY for the host called,
    REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE) once per host: requests walked the whole environment twice per call, about
    120 us, a tenth of a client's call to a mock on loopback. A variable changed after the session first called a
    host is not seen there (httpx, too, reads the environment once, as its client is made)."""

    HOSTS = 64  # hosts remembered; past them, the environment is read again

    def __init__(self) -> None:
        super().__init__()
        self._proxies: dict[tuple[str, str], dict[str, str]] = {}
        self._bundle = (named_ca_bundle() or (None, None))[1]

    def merge_environment_settings(self, url: str, proxies: Any, stream: Any, verify: Any, cert: Any) -> dict:
        if proxies or not self.trust_env:  # a call's own proxies (and their no_proxy): requests' way
            return super().merge_environment_settings(url, proxies, stream, verify, cert)
        host = tuple(urlsplit(url)[:2])
        found = self._proxies.get(host)
        if found is None:
            if len(self._proxies) >= self.HOSTS:
                self._proxies.clear()
            found = self._proxies[host] = requests.utils.get_environ_proxies(url)
        if verify is True or verify is None:
            verify = self._bundle or verify
        return {"proxies": merge_setting(dict(found), self.proxies), "stream": merge_setting(stream, self.stream),
                "verify": merge_setting(verify, self.verify), "cert": merge_setting(cert, self.cert)}


def _shut(sock: socket.socket) -> None:
    # TLS to a target inside TLS to an HTTPS proxy is urllib3's SSLTransport, which has no shutdown(): its socket does
    while not hasattr(sock, "shutdown") and hasattr(sock, "socket"):
        sock = sock.socket
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


class IncompleteHead(http.client.HTTPException):
    """An answer whose head the connection's end cut short: no blank line ended it."""


class _Lines:
    """The reader of an answer's head (`_WholeHead.begin`): hands each line on, and remembers whether the last one
    was the end of the stream."""

    def __init__(self, fp: Any):
        self._fp, self.lines, self.ended = fp, 0, False

    def readline(self, limit: int = -1) -> bytes:
        line = self._fp.readline(limit)
        self.lines += 1
        self.ended = not line
        return line

    def close(self) -> None:
        self._fp.close()


class _WholeHead(http.client.HTTPResponse):
    """http.client's answer, but one whose head ends with the connection instead of a blank line is refused
    (IncompleteHead, which requests raises as a ConnectionError): http.client read it as a whole head, so a server or
    proxy that broke off in the middle of its head had given a 200 with no body, and the recording proxy had passed
    that on to the app as the upstream's answer."""

    def begin(self) -> None:
        if self.headers is not None:
            return
        fp = self.fp
        lines = self.fp = _Lines(fp)  # only lines are read until the head ends
        try:
            super().begin()
        finally:
            if self.fp is lines:
                self.fp = fp
        if lines.ended:
            raise IncompleteHead(f"the connection ended after {lines.lines - 1} line(s), before the blank line")


class _Watched:
    """Hands each socket to the thread's deadline: a new one as soon as it is connected, a kept-alive one as it is
    reused. Its answers' heads must end as HTTP says (_WholeHead)."""

    sock: socket.socket | None
    response_class = _WholeHead

    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()  # type: ignore[misc]
        _watch(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watch(self.sock)
        return super().request(*args, **kwargs)  # type: ignore[misc]


class _HTTPConnection(_Watched, HTTPConnection):
    pass


class _HTTPSConnection(_Watched, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


# Named as urllib3's own: errors name the pool and connection classes ("HTTPConnectionPool(host=...): Max retries
# exceeded"), and these messages reach callback logs, FailMessages and the client's errors.
for _class, _name in ((_HTTPConnection, "HTTPConnection"), (_HTTPSConnection, "HTTPSConnection"),
                      (_HTTPPool, "HTTPConnectionPool"), (_HTTPSPool, "HTTPSConnectionPool")):
    _class.__name__ = _class.__qualname__ = _name


class _Adapter(HTTPAdapter):
    POOLS = {"http": _HTTPPool, "https": _HTTPSPool}

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self.POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # a call through an HTTP(S) proxy goes by a manager of its own, whose sockets no deadline saw: a trickling
        # proxy held the client's calls for ever (a SOCKS proxy's connections are its own kind: not watched)
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if isinstance(manager, ProxyManager):
            manager.pool_classes_by_scheme = self.POOLS
        return manager
