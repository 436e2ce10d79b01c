"""Typed errors of the mock: each class carries one documented Header.Code, and one handler renders them all.

`spec/error-codes.yaml` names the class of every code the mock raises; a test keeps the two in step.
"""

from __future__ import annotations

from spec import Violation
from spec.validation import summarize


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


def from_violations(violations: list[Violation]) -> ApiError:
    """Return the error for a failed validation: the first violation's code, every violation in the message."""
    return ERROR_CLASSES[violations[0].code](summarize(violations))
