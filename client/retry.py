"""The client's retry policy, in two small functions: whether to retry, and how long to wait first."""

from __future__ import annotations

import random
import ssl
import traceback

import requests
import urllib3

from .errors import APIError, RateLimitedError, ServerError

BASE_DELAY = 0.5
MAX_DELAY = 8.0
MAX_RETRY_AFTER = 60.0  # the longest Retry-After (seconds) a retry waits for


def should_retry(error: Exception, *, idempotent: bool) -> bool:
    """Tell whether a failed call may be sent again.

    A call that is not idempotent (a submission: a duplicate is a second paid video) is retried only when the
    request certainly never reached the server. Idempotent calls are retried on connection errors, 5xx answers,
    server-side codes and rate limits."""
    if isinstance(error, requests.RequestException) and never_sent(error):
        return True
    if not idempotent:
        return False
    if isinstance(error, (requests.ConnectionError, requests.Timeout, *BROKEN_OFF)):
        return True
    if isinstance(error, APIError):
        return isinstance(error, (ServerError, RateLimitedError)) or (error.http_status or 0) >= 500
    return False


def backoff(attempt: int, rng: random.Random | None = None, retry_after: float | None = None) -> float:
    """Seconds to wait before retry number `attempt` (1, 2, ...): 0.5 s doubling to at most 8 s, with up to 25 %
    jitter so that many clients do not retry in step; at least what the answer's Retry-After asked for."""
    delay = min(MAX_DELAY, BASE_DELAY * 2 ** min(attempt - 1, 64))  # 2**1025 had been no float (OverflowError)
    return max(delay * (1 + 0.25 * (rng or random).random()), retry_after or 0.0)


# an answer that broke off on its way (short of its Content-Length, a broken chunk or compression): a poll asked again
BROKEN_OFF = (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError)


def unreadable_answer(error: Exception) -> bool:
    """Whether `error` is an answer that came but whose head could not be read (two Content-Lengths that differ):
    urllib3's InvalidHeader under requests' own, which requests also raises, with no answer, for a header of the
    request it will not send."""
    inner = error.args[0] if isinstance(error, requests.exceptions.InvalidHeader) and error.args else None
    return isinstance(inner, urllib3.exceptions.InvalidHeader)


def never_sent(error: requests.RequestException) -> bool:
    """Whether the request certainly never reached the server: its connection was never made (refused, a name that
    does not resolve, a connect timeout, a TLS handshake that failed or timed out), or the proxy the environment names
    could not be reached or would not carry it (a proxy that took the request and lost the answer raises another
    error)."""
    if isinstance(error, (requests.ConnectTimeout, requests.exceptions.ProxyError)):
        return True
    if isinstance(error, requests.Timeout):  # urllib3 says a handshake's timeout as a read's: which it was, the
        return _timed_out_in_handshake(error)  # timeout it was raised from says by where it was raised
    if not isinstance(error, requests.ConnectionError):
        return False
    reason = error.args[0] if error.args else None
    cause = getattr(reason, "reason", reason)  # urllib3's NameResolutionError is a NewConnectionError too
    return isinstance(cause, urllib3.exceptions.NewConnectionError) or _handshake_failed(cause)


def _timed_out_in_handshake(error: BaseException) -> bool:
    """Whether the timeout `error` was raised from (its context, a few levels down) came in a TLS handshake: a
    server that took the connection and never answered the handshake had nothing of the request."""
    seen = error.__context__
    for _ in range(8):  # requests' Timeout, urllib3's ReadTimeoutError, then the socket's
        if seen is None:
            return False
        if isinstance(seen, TimeoutError):
            return _raised_in_handshake(seen)
        seen = seen.__context__
    return False


def _handshake_failed(cause: object) -> bool:
    """Whether `cause` (urllib3's SSLError) is a TLS handshake that failed: a certificate the client does not trust,
    a server that speaks no TLS on that port (an https URL to an http server). Nothing of the request is sent before
    the handshake ends; an SSL error after it (a broken record while the answer was read) may follow a request the
    server took. Which one it was, ssl's own error says by where it was raised."""
    original = cause.args[0] if isinstance(cause, urllib3.exceptions.SSLError) and cause.args else None
    if not isinstance(original, ssl.SSLError):
        return False
    if isinstance(original, ssl.SSLCertVerificationError):  # verified in the handshake, and only there
        return True
    return _raised_in_handshake(original)


def _raised_in_handshake(error: BaseException) -> bool:
    """Whether `error` was raised by ssl.SSLSocket.do_handshake itself."""
    frames = traceback.extract_tb(error.__traceback__)
    return bool(frames) and frames[-1].name == "do_handshake"
