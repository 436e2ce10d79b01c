"""Download the files behind RefPhotoUrl and InputAudioUrl, as the service would, with hard limits.

http and https only, on every hop; at most `redirects` redirects; a connect timeout and a wall-clock deadline for
the whole download (connect, headers, body and redirects: `deadline.py`), so a host that sends a byte now and then
holds a submission no longer than the limit; the body is streamed and reading stops just past the profile's byte
limit. Files on the mock's own asset
host are read from disk instead of over HTTP (DECISIONS.md D46), so a mock with one worker never waits on itself.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import requests
from ivh_mock.spec.urls import shown_url as shown  # a URL in a message: its query and user info are secrets

from .. import deadline
from ..deadline import Waits

CHUNK = 65_536


class FetchFailed(Exception):
    """The URL gave no file; the message says why (unreachable, HTTP status, too many redirects, too slow)."""


class TooLarge(Exception):
    def __init__(self, limit: int):
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


@dataclass(frozen=True)
class Limits:
    connect_timeout: float = 3.0
    total_timeout: float = 15.0
    redirects: int = 3


class Fetcher:
    """Downloads within `limits`; each download takes one of the `waits` (shared with whatever else makes a
    request wait on something slow), and fails at once when none is free."""

    def __init__(self, limits: Limits, waits: Waits | None = None):
        self.limits = limits
        self._waits = waits
        # a session per download, with a connection of its own closed after it, as a callback's and an upload's are:
        # kept alive in a shared pool, one whose host then closed its end stayed in CLOSE_WAIT, a socket held for each
        # host (a test's media server); a test that must keep downloads off the network gives its own
        self.new_session: Callable[[], requests.Session] = lambda: deadline.session(pool_size=1)

    def fetch(self, url: str, max_bytes: int, local: Callable[[str], bytes | None] = lambda url: None, *,
              by: float | None = None) -> bytes:
        """Return the file at `url`; raise TooLarge past `max_bytes`, FetchFailed when there is no file.
        `local(url)` returns the bytes of a URL the mock itself serves, or None to fetch it over HTTP. With `by` (on
        time.monotonic), the download ends by then at the latest: a submission's downloads share the time limit."""
        own = local(url)
        if own is not None:
            if len(own) > max_bytes:
                raise TooLarge(max_bytes)
            return own
        with deadline.holding(self._waits, lambda limit: FetchFailed(
                f"{shown(url)} was not downloaded: {limit} requests are already waiting on downloads or renders, the "
                f"most this worker lets wait at once (so that slow hosts never hold every thread)")):
            return self._fetch(url, max_bytes, by)

    def _fetch(self, url: str, max_bytes: int, by: float | None = None) -> bytes:
        seconds = self.limits.total_timeout if by is None else min(self.limits.total_timeout, by - time.monotonic())
        if seconds <= 0:  # the submission's earlier download took the time
            raise FetchFailed(self._too_slow(url))
        with deadline.within(seconds) as limit, self.new_session() as session:
            try:
                data = self._download(session, url, max_bytes, limit)
            except requests.RequestException as exc:
                if limit.expired or limit.left() <= 0:
                    raise FetchFailed(self._too_slow(url)) from None
                failed = getattr(exc, "hop_url", url)  # the hop that failed: a redirect may have led there
                raise FetchFailed(f"{shown(failed)} could not be downloaded ({type(exc).__name__})") from None
            if limit.expired:  # the body ended because the deadline shut the connection
                raise FetchFailed(self._too_slow(url))
            return data

    def _download(self, session: requests.Session, url: str, max_bytes: int, limit: deadline.Deadline) -> bytes:
        def get(hop: str, timeout: tuple[float, float]) -> requests.Response:
            return session.get(hop, stream=True, allow_redirects=False, timeout=timeout)

        limits = self.limits
        try:
            with deadline.followed(get, url, limits.redirects, limits.connect_timeout, limit) as (hop, response):
                if response.status_code != 200:
                    raise FetchFailed(f"{shown(hop)} answered HTTP {response.status_code}")
                return _read(response, max_bytes)
        except deadline.Hop as hop:
            raise FetchFailed(self._hop_failed(hop)) from None

    def _hop_failed(self, hop: deadline.Hop) -> str:
        if hop.kind == "scheme":
            return f"{shown(hop.url)} is not an http or https URL"
        if hop.kind == "host":
            return f"{shown(hop.url)} is not a valid URL (its host cannot be parsed)"
        if hop.kind == "location":
            return f"{shown(hop.url)} redirected to a URL whose host cannot be parsed"
        if hop.kind == "slow":
            return self._too_slow(hop.url)
        return f"more than {self.limits.redirects} redirects"

    def _too_slow(self, url: str) -> str:
        return (f"{shown(url)} took longer than the download limit of {self.limits.total_timeout:g} s (a "
                f"submission's downloads together)")


def _read(response: requests.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:  # '²'.isdigit(); int() refuses it
        raise TooLarge(max_bytes)
    body = bytearray()
    for chunk in response.iter_content(CHUNK):
        body += chunk
        if len(body) > max_bytes:
            raise TooLarge(max_bytes)
    return bytes(body)
