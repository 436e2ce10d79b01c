"""Typed errors of the client. API errors are grouped by the family `spec/error-codes.yaml` gives each Header.Code,
and carry the code, the message and the request id."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models import Progress

# What an error's text never carries, whoever wrote it (requests naming the URL it failed on, a gateway's page or a
# server's Message quoting the request line): a signed query's signature, with which anyone may call the API as the
# account for minutes, and a URL's user info (the password of the proxy HTTP_PROXY names).
_SIGNATURE = re.compile(r"(signature=)[^&\s'\"()<>]+", re.IGNORECASE)
_USER_INFO = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/?#\s@'\"<>]+@")


def redacted(text: str) -> str:
    """`text` without a signature's value or a URL's user info."""
    return _USER_INFO.sub(r"\1[redacted]@", _SIGNATURE.sub(r"\1[redacted]", text))


class IvhError(Exception):
    """Base of every error the client raises. Its text is `redacted`."""

    def __init__(self, *args: Any):
        super().__init__(*(redacted(arg) if isinstance(arg, str) else arg for arg in args))


class APIError(IvhError):
    """The API answered with a non-zero Header.Code (or pre-flight validation refused the request)."""

    family: str | None = None

    def __init__(self, code: int, message: str, request_id: str | None = None, *, http_status: int | None = None,
                 body: Any = None, preflight: bool = False, retry_after: float | None = None):
        self.code, self.message, self.request_id = code, redacted(message), request_id
        self.http_status, self.body, self.preflight = http_status, body, preflight
        self.retry_after = retry_after  # seconds the answer's Retry-After asked for, if it had one
        where = "refused before sending" if preflight else f"request {request_id}"
        super().__init__(f"{code}: {message} ({where})")


class AuthenticationError(APIError):
    family = "authentication"


class ParameterError(APIError):
    family = "parameter"


class QuotaExceededError(APIError):
    family = "quota"


class BalanceError(APIError):
    family = "balance"


class NotFoundError(APIError):
    family = "not_found"


class RateLimitedError(APIError):
    family = "rate_limited"


class ServerError(APIError):
    family = "server"


FAMILIES: dict[str, type[APIError]] = {
    cls.family: cls
    for cls in (AuthenticationError, ParameterError, QuotaExceededError, BalanceError, NotFoundError,
                RateLimitedError, ServerError)
}


class APIConnectionError(IvhError):
    """The server could not be reached, or the answer was not the API's envelope."""


class OutcomeUnknownError(APIConnectionError):
    """A submission reached the server (or may have), but no verdict of the API's came back: the connection broke,
    the answer timed out, or a gateway answered in its stead (a 5xx page). The task may have been accepted, and
    billed: check before submitting again. Raised only for submissions; a refused connection, or a gateway's 3xx or
    4xx, is a plain APIConnectionError (nothing was accepted)."""


class TaskFailedError(IvhError):
    """The task ended in FAIL."""

    def __init__(self, task_id: str, fail_code: int, fail_message: str, progress: Progress | None = None):
        self.task_id, self.fail_code, self.fail_message, self.progress = task_id, fail_code, fail_message, progress
        super().__init__(f"task {task_id} failed: {fail_code} {fail_message}")


class WaitTimeoutError(IvhError):
    """The task was not finished by the deadline."""

    def __init__(self, task_id: str, waited: float, last: Progress | None = None, failure: str | None = None):
        self.task_id, self.waited, self.last, self.failure = task_id, waited, last, failure
        status = f"; last status {last.status} at {last.progress}%" if last is not None else ""
        failed = f"; the last poll failed: {failure}" if failure else ""  # a server gone, not a task slow
        super().__init__(f"task {task_id} not finished after {waited:.1f} s{status}{failed}")


class CallbackError(IvhError, ValueError):
    """A callback body is not what the API documents; the message names the field and the rule."""


class DownloadError(IvhError):
    """A result file could not be downloaded (for example, retention ran out: 404)."""

    def __init__(self, url: str, status: int | None, reason: str):
        self.url, self.status = url, status
        super().__init__(f"cannot download {url}: {reason}" if url else f"cannot download: {reason}")
