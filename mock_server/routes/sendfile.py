"""Files answered so that a client that reads slowly, or not at all, holds no thread of the worker's."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

from flask import Response, request, send_file
from werkzeug.exceptions import PreconditionFailed
from werkzeug.http import parse_range_header

# `bytes=-0`: the last no bytes of the file, a range RFC 9110 calls unsatisfiable (werkzeug reads it as no range)
_NO_BYTES = re.compile(r"bytes=[ \t]*-0+[ \t]*", re.ASCII)
_PAST_ANY_END = f"bytes={2**64 - 1}-"  # what werkzeug refuses (416), or ignores under an If-Range that differs
_CONDITIONS = ("HTTP_IF_NONE_MATCH", "HTTP_IF_MODIFIED_SINCE", "HTTP_IF_UNMODIFIED_SINCE")


def send(source: Any, **options: Any) -> Response:
    """`flask.send_file(source, conditional=True, ...)`, with a Range request's part sent as a whole file is.

    werkzeug answers a Range request (206) with an iterator over the file's blocks, which waitress copies into the
    connection's buffer; past 1 MB unsent, the request's thread waits for the client (D71), and nine clients that
    asked for a large file's range and read nothing held every thread of a worker. Under waitress the file itself,
    moved to the range's start, is sent as a whole file is: by the event loop as the client reads, never more than
    the Content-Length. Elsewhere (werkzeug's own server in the fixtures) the iterator stays.

    A Range header that is not one range of bytes (several ranges, another unit, none that parses) is ignored, as
    RFC 9110 allows and an object store does: the whole file is answered (200), where werkzeug answered 416. One that
    asks for the last zero bytes is unsatisfiable (416), as one starting past the file's end is; one that asks for
    more last bytes than the file holds gets the whole file as its range (206, RFC 9110 14.1.3; werkzeug: 416).
    If-Match and If-Unmodified-Since are judged first (412, as an object store answers them): werkzeug answered 412
    with the whole file as its body, and a Range request's 206 despite them; then If-None-Match and If-Modified-Since
    (304), and only then the Range. An If-Range that names a weak ETag (`W/"..."`) never matches (RFC 9110 13.1.5:
    it is compared strongly), so its Range is ignored: werkzeug had compared it weakly and answered 206."""
    if request.environ.get("HTTP_IF_RANGE", "").lstrip().startswith("W/"):
        request.environ.pop("HTTP_RANGE", None)
    asked = request.environ.get("HTTP_RANGE")
    if asked is not None and _NO_BYTES.fullmatch(asked):
        request.environ["HTTP_RANGE"] = _PAST_ANY_END  # send_file reads the request's environ
    elif asked is not None:
        ranges = parse_range_header(asked)
        if ranges is None or ranges.units != "bytes" or len(ranges.ranges) != 1:
            del request.environ["HTTP_RANGE"]
        elif ranges.ranges[0][1] is None and -ranges.ranges[0][0] > _size(source):  # werkzeug: 416
            request.environ["HTTP_RANGE"] = "bytes=0-"
    if_match = request.if_match  # judged here: werkzeug answers 412 to an If-Match that matches (`*`, say)
    request.environ.pop("HTTP_IF_MATCH", None)
    ranged = request.environ.get("HTTP_RANGE")
    if ranged is not None and (if_match or any(name in request.environ for name in _CONDITIONS)):
        # the conditions come before Range (RFC 9110 13.2.2), which werkzeug judged first: a range past the end was
        # a 416 despite a failed If-Match, and a range of a file the client holds a 206, not a 304
        del request.environ["HTTP_RANGE"]
        whole = send_file(io.BytesIO(source.getbuffer()) if isinstance(source, io.BytesIO) else source,
                          conditional=True, **options)
        _preconditions(whole, if_match)
        if whole.status_code == 304:
            return whole
        whole.close()
        request.environ["HTTP_RANGE"] = ranged
    response = send_file(source, conditional=True, **options)
    _preconditions(response, if_match)
    ranged = response.response
    inner, start = getattr(ranged, "iterable", None), getattr(ranged, "start_byte", None)
    # waitress's file wrapper: it sends from where its file stands, as many bytes as the Content-Length says
    if response.status_code == 206 and start is not None and hasattr(inner, "prepare") and hasattr(inner, "seek"):
        inner.seek(start)
        response.response = inner
    return response


def _size(source: Any) -> int:
    """The bytes of a file `send` answers: a path's, or an in-memory file's."""
    return source.getbuffer().nbytes if isinstance(source, io.BytesIO) else Path(source).stat().st_size


def _preconditions(response: Response, if_match: Any) -> None:
    """Refuse (412, the answer built for the request discarded) a request whose If-Match names no ETag of the file,
    or whose If-Unmodified-Since is before the file last changed (RFC 9110 13.2.2: they come before Range, which
    werkzeug honoured despite them, and it answered a failed If-Match with the whole file as the 412's body)."""
    etag, _ = response.get_etag()
    since, changed = request.if_unmodified_since, response.last_modified
    if if_match and not (if_match.star_tag or (etag and if_match.contains(etag))):
        why = "If-Match"
    elif since is not None and changed is not None and changed > since:
        why = "If-Unmodified-Since"
    else:
        return
    response.close()  # a file's answer holds the file open
    raise PreconditionFailed(f"At least one of the pre-conditions you specified did not hold ({why})")
