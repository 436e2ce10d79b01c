"""A Content-Type header read as RFC 9110 writes it (section 8.3.1): one media type, then `; name=value` parameters.
The mock reads a body by it and the proxy judges a request by it, so the two cannot disagree on a header."""

from __future__ import annotations

import functools
import re

JSON = "application/json"
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e\x80-\xff]|\\[\t\x20-\x7e\x80-\xff])*"'
_TYPE = re.compile(rf"[ \t]*({_TOKEN}/{_TOKEN})[ \t]*")
_PARAMETER = re.compile(rf";[ \t]*(?:({_TOKEN})[ \t]*=[ \t]*({_TOKEN}|{_QUOTED}))?[ \t]*")
_ESCAPED = re.compile(r"\\(.)")


@functools.lru_cache(maxsize=64)  # a client sends the same header on every request
def read(header: str) -> tuple[str, str | None]:
    """Return the media type (in lower case) and the charset (None when not given) of a Content-Type header.

    A header that is not one media type (two joined by a comma, as a server joins two Content-Type headers; words
    after a value) gives the whole header as its type, and a charset given more than once gives every value joined
    by "; ": neither can then pass for JSON in UTF-8. A lenient reading had taken the first value of either."""
    match = _TYPE.match(header)
    if match is None:
        return header.strip(), None
    charsets = []
    position = match.end()
    while position < len(header):
        parameter = _PARAMETER.match(header, position)
        if parameter is None:
            return header.strip(), None
        name, value = parameter.groups()
        if name is not None and name.lower() == "charset":
            charsets.append(_ESCAPED.sub(r"\1", value[1:-1]) if value.startswith('"') else value)
        position = parameter.end()
    return match.group(1).lower(), "; ".join(charsets) if charsets else None


def is_utf8(charset: str | None) -> bool:
    """Whether a body in this charset is read as JSON text: UTF-8, or no charset (JSON's own encoding)."""
    return charset is None or charset.lower() in ("utf-8", "utf8")


def is_json(header: str | None) -> bool:
    """Whether a Content-Type says JSON in UTF-8: `application/json` with no charset or a UTF-8 one."""
    mimetype, charset = read(header or "")
    return mimetype == JSON and is_utf8(charset)
