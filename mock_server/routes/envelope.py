"""Read a request body into the API's `{Header, Payload}` envelope, and write answers in the same envelope.

Reading is defensive: any body, however malformed, becomes either a JSON value or a typed parameter error.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any

from ..errors import ApiError, ParameterError, ParameterFormatError

JSON_MIMETYPE = "application/json"


@dataclass(frozen=True)
class Body:
    """A parsed request body, or the error that stopped it being parsed (reported after authentication)."""

    value: Any = None
    error: ApiError | None = None


def read_body(mimetype: str, charset: str | None, data: bytes, max_depth: int) -> Body:
    """Parse raw request bytes as the API expects: UTF-8 JSON under `application/json`."""
    try:
        return Body(value=_parse(mimetype, charset, data, max_depth))
    except ApiError as error:
        return Body(error=error)


def _interned_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build an object whose keys are shared with every other body's: a stored task then holds one copy of each
    field name ("RefPhotoUrl", "SpeechParam", ...), not one per task."""
    return {sys.intern(key): value for key, value in pairs}


def _parse(mimetype: str, charset: str | None, data: bytes, max_depth: int) -> Any:
    if mimetype != JSON_MIMETYPE:
        raise ParameterFormatError(
            f"Content-Type must be application/json;charset=utf-8, got {mimetype or 'none'!r}"
        )
    if charset is not None and charset.lower().replace("-", "") != "utf8":
        raise ParameterFormatError(f"Content-Type charset must be utf-8, got {charset!r}")
    if not data.strip():
        raise ParameterError("request body is empty; expected a JSON object {\"Header\": {}, \"Payload\": {...}}")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ParameterFormatError(
            f"request body is not valid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None
    try:
        value = json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_interned_keys)
    except json.JSONDecodeError as error:
        raise ParameterFormatError(
            f"request body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}"
        ) from None
    except RecursionError:
        raise ParameterFormatError(f"request body nests deeper than {max_depth} levels") from None
    except ValueError as error:  # e.g. an integer with more digits than Python converts
        raise ParameterFormatError(f"request body is not valid JSON: {error}") from None
    if _depth_exceeds(value, max_depth):
        raise ParameterFormatError(f"request body nests deeper than {max_depth} levels")
    return value


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children)
    return False


def request_id_of(body: Any) -> str | None:
    """Return the caller's Header.RequestID when it sent a usable one."""
    if isinstance(body, dict) and isinstance(body.get("Header"), dict):
        request_id = body["Header"].get("RequestID")
        if isinstance(request_id, str) and request_id:
            return request_id
    return None


def envelope(code: int, message: str, request_id: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """Build a response body in the API's envelope."""
    return {
        "Header": {
            "Code": code,
            "DialogID": "",
            "Message": message,
            "RequestID": request_id,
            "SessionID": f"mock{request_id[:23]}",
        },
        "Payload": payload if payload is not None else {},
    }
