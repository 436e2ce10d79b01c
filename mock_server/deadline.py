"""Deadlines and limits for the mock's slow work: HTTP exchanges under one wall-clock deadline (spec/deadline.py,
shared with the client), redirects followed within it, and the number of requests that may wait at once.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Callable, Iterator
from urllib.parse import urljoin, urlsplit

import requests
from urllib3.exceptions import LocationParseError, ProtocolError

from ivh_mock.spec.deadline import Deadline, session, within

__all__ = ["Deadline", "Hop", "Waits", "followed", "holding", "session", "waiting", "within"]


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
        for attempt in (1, 2):
            left = limit.left()
            if left <= 0:
                raise Hop("slow", url, hop > 0)
            try:
                response = send(url, (min(connect_timeout, left), left + 1))
                break
            except (LocationParseError, requests.exceptions.InvalidURL):  # its own host, as urllib3 found it
                raise Hop("host", url, hop > 0) from None
            except requests.RequestException as error:  # an answer with a header it refuses (InvalidHeader is a
                # ValueError too). A kept-alive connection the host closed as this request came: sent once more,
                # on a new connection, as any client does (not when the deadline itself shut it)
                if attempt == 1 and _dropped(error) and not limit.expired:
                    continue
                error.hop_url = url  # the hop that failed, a redirect's perhaps, for the message
                raise
            except ValueError:  # the answer's Location, which requests reads even when not following it (`.next`)
                raise Hop("location", url, hop > 0) from None
        with response:
            if not response.is_redirect:
                yield url, response
                return
            location = response.headers["Location"]
        try:  # sent as raw UTF-8, as some servers do, it reads as Latin-1: requests itself reads it again as UTF-8
            location = location.encode("latin-1").decode("utf-8")
        except UnicodeError:
            pass
        try:
            url = urljoin(url, location)
        except ValueError:
            raise Hop("location", url, hop > 0) from None
    raise Hop("redirects", url, True)


def _dropped(error: requests.RequestException) -> bool:
    """Whether the host closed the connection before any answer (urllib3's "Connection aborted")."""
    return isinstance(error, requests.ConnectionError) and bool(error.args) and isinstance(error.args[0],
                                                                                          ProtocolError)


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


# How long a request waits for a slot to come free before it is refused: a download from a host that answers takes
# milliseconds, and parallel submissions to a healthy host had been refused (-101002) for nothing. A request that
# finds every slot held by slow hosts is refused a quarter of a second later.
SLOT_WAIT_SECONDS = 0.25


@contextlib.contextmanager
def holding(waits: Waits | None, refusal: Callable[[int], Exception]) -> Iterator[None]:
    """Hold one of `waits`' slots for the block, or raise `refusal(limit)` when every slot stays taken for
    SLOT_WAIT_SECONDS (no slot is needed when `waits` is None)."""
    if waits is None:
        waiting()
        yield
        return
    if not waits.acquire(blocking=False):
        waiting()  # this thread waits: the requests queued behind it go to another
        if not waits.acquire(timeout=SLOT_WAIT_SECONDS):
            raise refusal(waits.limit)
    else:
        waiting()
    try:
        yield
    finally:
        waits.release()
