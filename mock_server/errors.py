"""Typed errors of the mock: each class carries one documented Header.Code, and one handler renders them all.

`spec/error-codes.yaml` names the class of every code the mock raises; a test keeps the two in step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ivh_mock.spec import Violation
from ivh_mock.spec.validation import summarize

if TYPE_CHECKING:
    from ivh_mock.spec import Spec


class ApiError(Exception):
    """An answer in the API's error envelope: `code` goes to Header.Code, the message to Header.Message."""

    code: int = -101000
    http_status: int = 200

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InternalError(ApiError):
    code = -101000
    http_status = 500


class ImageDownloadFailed(ApiError):
    code = -101002


class ParameterError(ApiError):
    code = 100001


class ParameterValueError(ApiError):
    code = 100002


class ParameterFormatError(ApiError):
    code = 100003


class Unauthorized(ApiError):
    code = 100005


class NoSuchRoute(ApiError):
    code = 100009
    http_status = 404


class RecordNotFound(ApiError):
    code = 110006


class QuotaExceeded(ApiError):
    code = 100008


class BalanceInsufficient(ApiError):
    code = 100013


class ConcurrencyNotPurchased(ApiError):
    code = 100014


class RateLimited(ApiError):
    code = 801004


ERROR_CLASSES: dict[int, type[ApiError]] = {
    cls.code: cls
    for cls in (InternalError, ImageDownloadFailed, ParameterError, ParameterValueError, ParameterFormatError, Unauthorized,
                NoSuchRoute, RecordNotFound, QuotaExceeded, BalanceInsufficient, ConcurrencyNotPurchased,
                RateLimited)
}


def body_past(limit: int) -> str:
    """What a request whose body is past `limit` bytes is told: by the API's routes, the control API's and the
    server that refuses one before the app sees it, alike."""
    return f"request body is larger than {limit} bytes"


def from_violations(violations: list[Violation]) -> ApiError:
    """Return the error for a failed validation: the first violation's code, every violation in the message."""
    return ERROR_CLASSES[violations[0].code](summarize(violations))


def refusal(spec: Spec, code: int, max_pending: int) -> ApiError:
    """Return the error answering a request refused with `code`, worded as the catalogue documents it (the FAQ's
    text where one is published; `max_pending` fills in the quota's limit)."""
    entry = spec.errors.header[code]
    message = entry["message"].format(limit=max_pending) if "message" in entry else entry["meaning"]
    return ERROR_CLASSES[code](message)
