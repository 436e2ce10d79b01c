"""The answer to a request a server could not read (a head too large, a bad framing, a bare LF), in the format of
the routes its request line names: the API's envelope (100003, HTTP 200 as every refusal of the API's, D01), the
control API's `{"error": {"message"}}` or, for result URLs, an object store's XML. Both the served mock (waitress)
and the fixture server (werkzeug's) answer so; for any other path, the server's own answer stands."""

from __future__ import annotations

import json
from urllib.parse import unquote, urlsplit

from ivh_mock import spec as spec_module

from ..errors import ParameterFormatError
from ..routes import control, envelope, results
from ..store import new_id

_API_PATHS = frozenset(operation.path for operation in spec_module.load().operations.values())
HEADER_BYTES = 32_768  # a request line and headers together; more is answered 431 (D06), by either server


def route_of(line: bytes, whole: bool) -> tuple[str, str, str | None]:
    """The method, the path and the HTTP version ("1.0", "1.1" or None) of a request line (`whole` if it ended). A
    line cut short inside its target names a path only where its start says the route (the control API's, a result
    URL's); a target whose authority does not split (`http://[x/...`) names the path after it."""
    words = line.rstrip(b"\r\n").split(b" ")
    if len(words) < 2:
        return "", "", None
    target = words[1].decode("latin-1")
    try:  # a target's leading `//` is no host: waitress reads `//v2/...` as the API's path, as the app sees it
        path = unquote("/" + target.lstrip("/").partition("?")[0] if target.startswith("/") else urlsplit(target).path)
    except ValueError:  # an authority that does not split (`http://[::1/...`): the path starts at its first `/`
        rest = target.partition("://")[2]
        path = unquote("/" + rest.partition("/")[2].partition("?")[0]) if "/" in rest else ""
    if not (whole or len(words) > 2 or b"?" in words[1]) and not _by_start(path):
        path = ""
    version = words[2][5:].decode() if len(words) == 3 and words[2] in (b"HTTP/1.0", b"HTTP/1.1") else None
    return words[0].decode("latin-1"), path, version


def _by_start(path: str) -> bool:
    return path.startswith((control.PREFIX + "/", results.PREFIX))


def answer(path: str, status: int, reason: str, detail: str) -> tuple[int, str, bytes] | None:
    """(HTTP status, Content-Type, body) refusing a request to `path` the server could not read, in its routes'
    format; None when `path` is no route's of those."""
    control_path = control.is_control_path(path)
    if path not in _API_PATHS and not control_path and not path.startswith(results.PREFIX):
        return None
    # a body past the route's limit is refused in the words the route itself refuses it in (errors.body_past),
    # whichever of the two sees it first; any other refusal says the request could not be read, and why
    message = detail if status == 413 else f"the request could not be read: {reason} ({detail})"
    if path in _API_PATHS:
        body = json.dumps(envelope.envelope(ParameterFormatError.code, message, new_id()), ensure_ascii=False)
        return 200, "application/json", body.encode()
    if control_path:
        return status, "application/json", json.dumps({"error": {"message": message}}, ensure_ascii=False).encode()
    return status, "application/xml", results.error_document("InvalidRequest", message, path).encode()
