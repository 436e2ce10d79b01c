"""A wall-clock deadline for a whole HTTP exchange made with requests: connect, headers, body and redirects.

requests' timeouts bound each connect and each read, not the exchange: a peer that sends one byte every two seconds
never trips them. A session from `session()` hands every socket it opens or reuses to the deadline the calling
thread is `within`, and when the time is up a timer shuts those sockets down: a blocked read returns at once and the
exchange fails, so no peer holds the mock's thread longer than the deadline. (A host name that takes long to
resolve is not covered: name lookups cannot be interrupted.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Any, Callable, Iterator
from urllib.parse import urljoin, urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import LocationParseError

_local = threading.local()


class Deadline:
    """The end of an exchange: `left()` seconds remain; `expired` once the timer has shut its sockets down."""

    def __init__(self, seconds: float):
        self.at = time.monotonic() + seconds
        self.expired = False
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

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


@contextlib.contextmanager
def within(seconds: float) -> Iterator[Deadline]:
    """Run the block's exchanges (made with a `session()`) under one deadline of `seconds`."""
    deadline = Deadline(seconds)
    outer = getattr(_local, "deadline", None)
    _local.deadline = deadline
    deadline._timer.start()
    try:
        yield deadline
    finally:
        deadline._timer.cancel()
        _local.deadline = outer


def session(pool_size: int = 10) -> requests.Session:
    """A requests session whose sockets keep the deadline of the `within` block they are used in. It ignores the
    machine's proxy settings: the mock's downloads and callbacks go straight to their host."""
    adapter = _Adapter(pool_connections=pool_size, pool_maxsize=pool_size)
    result = requests.Session()
    result.trust_env = False
    result.mount("http://", adapter)
    result.mount("https://", adapter)
    return result


class Hop(Exception):
    """Why `followed` found no answer: `kind` is "scheme" (a hop's URL is not http or https), "host" (a hop's URL
    names a host or port that cannot be used), "location" (an answer redirected to a Location that cannot be
    parsed), "slow" (the deadline passed between hops) or "redirects" (more of them than allowed); `url` is the
    hop's (for "location", the one that answered with it), and `redirected` whether a redirect led to it."""

    def __init__(self, kind: str, url: str, redirected: bool):
        super().__init__(kind, url)
        self.kind, self.url, self.redirected = kind, url, redirected


@contextlib.contextmanager
def followed(send: Callable[[str, tuple[float, float]], requests.Response], url: str, redirects: int,
             connect_timeout: float, limit: Deadline) -> Iterator[tuple[str, requests.Response]]:
    """Send a request with `send(url, timeout)` (made with `allow_redirects=False`) and again to each redirect's
    Location, at most `redirects` times, within `limit` (a `within` block's deadline); the block gets the answer
    that is not a redirect, with the URL that gave it. Each hop is http or https, its connect takes at most
    `connect_timeout` and each read a little past the deadline, whose timer then ends the exchange; raise Hop when
    there is no answer to give."""
    for hop in range(redirects + 1):
        try:
            scheme = urlsplit(url).scheme
        except ValueError:  # e.g. an unclosed IPv6 bracket
            raise Hop("host", url, hop > 0) from None
        if scheme not in ("http", "https"):
            raise Hop("scheme", url, hop > 0)
        try:  # what requests refuses to send to: a port past 65535, a 300-character label (InvalidURL, a ValueError)
            requests.Request("GET", url).prepare()
        except (LocationParseError, ValueError):
            raise Hop("host", url, hop > 0) from None
        left = limit.left()
        if left <= 0:
            raise Hop("slow", url, hop > 0)
        try:
            response = send(url, (min(connect_timeout, left), left + 1))
        except (LocationParseError, requests.exceptions.InvalidURL):  # its own host, as urllib3 found connecting
            raise Hop("host", url, hop > 0) from None
        except requests.RequestException:  # an answer with a header it refuses (InvalidHeader is a ValueError too)
            raise
        except ValueError:  # the answer's Location, which requests reads even when not following it (`.next`)
            raise Hop("location", url, hop > 0) from None
        with response:
            if not response.is_redirect:
                yield url, response
                return
            location = response.headers["Location"]
        try:
            url = urljoin(url, location)
        except ValueError:
            raise Hop("location", url, hop > 0) from None
    raise Hop("redirects", url, True)


def nobody_waits() -> None:
    """`waiting` while no server of this process listens for it."""


# Told, in the waiting thread, each time a request starts to wait on something slow: the server that runs the
# request can then hand the requests queued behind it to another thread at once (serving/dispatch.py sets it).
waiting: Callable[[], None] = nobody_waits


class Waits(threading.BoundedSemaphore):
    """How many requests of a process may wait on something slow at once (a download, a render): the rest get an
    answer at once, so slow hosts never hold every thread of a worker."""

    def __init__(self, limit: int):
        super().__init__(limit)
        self.limit = limit


@contextlib.contextmanager
def holding(waits: Waits | None, refusal: Callable[[int], Exception]) -> Iterator[None]:
    """Hold one of `waits`' slots for the block, or raise `refusal(limit)` at once when every slot is taken (no slot
    is needed when `waits` is None)."""
    if waits is None:
        waiting()
        yield
        return
    if not waits.acquire(blocking=False):
        raise refusal(waits.limit)
    waiting()
    try:
        yield
    finally:
        waits.release()


def _shut(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


def _watch(sock: socket.socket | None) -> None:
    deadline = getattr(_local, "deadline", None)
    if deadline is not None:
        deadline.watch(sock)


class _Watched:
    """Hands each socket to the thread's deadline: a new one as soon as it is connected, a kept-alive one as it is
    reused."""

    sock: socket.socket | None

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


class _Adapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _HTTPPool, "https": _HTTPSPool}
