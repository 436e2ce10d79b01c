"""Read a request body into the API's `{Header, Payload}` envelope, and write answers in the same envelope.

Reading is defensive: any body, however malformed, becomes either a JSON value or a typed parameter error.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any

from ivh_mock.spec import mediatype
from ivh_mock.spec.jsontext import STRICT_NUMBERS, lone_surrogate, nests_deeper, quick_loads
from ivh_mock.spec.validation import cut

from ..errors import ApiError, ParameterError, ParameterFormatError

JSON_MIMETYPE = mediatype.JSON


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
            f"Content-Type must be application/json (charset=utf-8, or none), got {mimetype or 'none'!r}"
        )
    problem = charset_problem(charset)
    if problem:
        raise ParameterFormatError(problem)
    if not data.strip():
        raise ParameterError("request body is empty; expected a JSON object {\"Header\": {}, \"Payload\": {...}}")
    try:
        return parse_json(data, max_depth, object_pairs_hook=_interned_keys)
    except MalformedJson as error:
        raise ParameterFormatError(str(error)) from None


def charset_problem(charset: str | None) -> str | None:
    """Why a body sent with this Content-Type charset is not read (the API's and the control API's rule), or None."""
    if not mediatype.is_utf8(charset):
        return f"Content-Type charset must be utf-8, got {charset!r}"
    return None


def coding_problem(coding: str | None, body: str = "plain JSON") -> str | None:
    """Why a body sent with this Content-Encoding is not read (the API's, the control API's and the asset host's
    rule), or None: a gzip body had been read as text, and refused as "not valid UTF-8 (byte 0x8b at offset 1)"."""
    if coding is not None and coding.strip().lower() not in ("", "identity"):
        return f"Content-Encoding {cut(coding)!r} is not taken: send the body as {body}, uncompressed"
    return None


class MalformedJson(ValueError):
    """A body that is not strict UTF-8 JSON the mock can keep and answer with; the message says what is wrong."""


def parse_json(data: bytes, max_depth: int, object_pairs_hook=None) -> Any:
    """Decode `data` as strict JSON, or raise MalformedJson naming the problem: not UTF-8, not JSON, NaN or Infinity
    or a number out of a double's range, nesting deeper than `max_depth`, or a string holding a lone surrogate
    (`"\\udfff"`: JSON allows the escape, but no UTF-8 text, store, or JSON encoder downstream can hold it).

    Both the API and the control API read bodies with it, so nothing they keep (tasks, journal, accounts, clock) can
    hold a value that breaks a later answer."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedJson(
            f"request body is not valid UTF-8 (byte 0x{data[error.start]:02x} at offset {error.start})"
        ) from None
    if nests_deeper(text, max_depth):  # before decoding: the decoder recurses once per level
        raise MalformedJson(f"request body nests deeper than {max_depth} levels")
    try:  # orjson too keeps one copy of each short key for every body (see _interned_keys)
        return quick_loads(data)
    except ValueError:  # json reads it again, and names what is wrong
        pass
    try:
        value = json.loads(text, object_pairs_hook=object_pairs_hook, **STRICT_NUMBERS)
    except json.JSONDecodeError as error:
        raise MalformedJson(
            # json's own words for some end in "at" (`Invalid control character at`)
            f"request body is not valid JSON: {error.msg.removesuffix(' at')} at line {error.lineno} column "
            f"{error.colno}"
        ) from None
    except RecursionError:
        raise MalformedJson(f"request body nests deeper than {max_depth} levels") from None
    except ValueError as error:  # NaN, Infinity, 1e999, or an integer with more digits than Python converts
        raise MalformedJson(f"request body is not valid JSON: {error}") from None
    if _SURROGATE_ESCAPE.search(text):  # only an escape can put a surrogate in: decoded UTF-8 never holds one
        where = lone_surrogate(value)
        if where is not None:
            raise MalformedJson(f"request body is not valid Unicode: {where}")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


REQUEST_ID_KEY = "ivh_mock.request_id"  # the WSGI environ's key for the RequestID an API request is answered with


def longest_request_id(spec: Any) -> int:
    """The most characters a Header.RequestID may have (the spec's maxLength): one past it is never echoed."""
    return spec.resolve("#/components/schemas/RequestHeader")["properties"]["RequestID"]["maxLength"]


def request_id_of(body: Any, longest: int) -> str | None:
    """Return the caller's Header.RequestID when it sent a usable one: a text of 1 to `longest` characters (the spec's
    maxLength). A longer one is refused, and never echoed (D03)."""
    text = _text_at(body, "Header", "RequestID")
    return text if text and len(text) <= longest else None


def task_id_of(body: Any) -> str | None:
    """Return the Payload.TaskId the body names, if it names one as text."""
    return _text_at(body, "Payload", "TaskId")


def _text_at(body: Any, part: str, name: str) -> str | None:
    """The text at `part.name` of a body that may be any JSON value; None where there is no text."""
    section = body.get(part) if isinstance(body, dict) else None
    value = section.get(name) if isinstance(section, dict) else None
    return value if isinstance(value, str) else None


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
