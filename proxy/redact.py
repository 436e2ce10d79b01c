"""What never reaches a recording: signatures, tokens, credentials in headers, and the query strings of URLs
(pre-signed media URLs carry credentials there)."""

from __future__ import annotations

import re
from typing import Any

from ivh_mock.spec.urls import without_queries, without_query

REDACTED = "[redacted]"
# a query parameter, header or JSON key whose value is a secret (`key` alone, never TimbreKey or appkey, which are
# not: an account's appkey is how a recording tells its accounts apart)
_SECRET_WORDS = r"signature|token|secret|passw|pwd|credential|(?:api|access|private|session|subscription)[-_]?key"
SENSITIVE_NAME = re.compile(rf"{_SECRET_WORDS}|authorization|cookie|^key$|(?:^|[-_])(?:auth|sig|sign)(?:$|[-_])",
                            re.IGNORECASE)  # Azure's `sig`, an `X-Sign`; not `signal` nor `design`
# `name=value`, `name: value` or JSON's `"name": "value"` inside any text (a URL, a form body, an error message
# echoing a query, a body recorded as text): a quoted value whole, or to the end of a text cut inside it; a scheme's
# credentials whole (`Authorization: Basic dXNl...` in the middle of a line); and `Bearer value`
_INLINE_NAMES = rf"[a-z0-9_-]*(?:{_SECRET_WORDS})[a-z0-9_-]*|key|(?:proxy-)?authorization|cookie|x-auth[a-z0-9_-]*"
_SCHEMES = r"bearer|basic|negotiate|ntlm"
INLINE_SECRET = re.compile(rf"(?i)\b((?:{_INLINE_NAMES})[\"']?\s*[=:]\s*)"
                           rf"(\"(?:[^\"\\]|\\.)*(?:\"|\\?\Z)|'(?:[^'\\]|\\.)*(?:'|\\?\Z)"
                           rf"|(?:{_SCHEMES})\s+[a-z0-9._~+/=-]+|[^&\s\"',;}}]+)"
                           r"|\b(bearer\s+)[a-z0-9._~+/=-]{4,}")  # not basic: "a basic idea" is no credential
# a header line inside any text: its whole value (`Authorization: Basic dXNl...` holds a space)
HEADER_LINE = re.compile(r"(?im)^([ \t]*(?:(?:proxy-)?authorization|(?:set-)?cookie|x-auth[a-z0-9_-]*)[ \t]*:[ \t]*)"
                         r"[^\r\n]+")


def is_sensitive(name: str) -> bool:
    return bool(SENSITIVE_NAME.search(name))


url = without_query  # a URL without its query, fragment and user info


def text(value: str) -> str:
    """Return `value` with every URL's query string removed and every inline secret redacted."""
    value = HEADER_LINE.sub(lambda match: match.group(1) + REDACTED, value)
    return INLINE_SECRET.sub(_redacted, without_queries(value))


def _redacted(match: re.Match) -> str:
    if match.group(3) is not None:  # Bearer
        return match.group(3) + REDACTED
    quote = match.group(2)[0] if match.group(2)[0] in "\"'" else ""
    return f"{match.group(1)}{quote}{REDACTED}{quote}"


def value(node: Any) -> Any:
    """Return a JSON value with secrets redacted: sensitive keys' values, URL query strings, inline secrets."""
    if isinstance(node, dict):
        return {key: REDACTED if is_sensitive(str(key)) and node[key] not in (None, "") else value(item)
                for key, item in node.items()}
    if isinstance(node, list):
        return [value(item) for item in node]
    if isinstance(node, str):
        return text(node)
    return node


def query(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Return query parameters (decoded pairs) with sensitive values redacted, in their order."""
    return [[name, REDACTED if is_sensitive(name) else text(item)] for name, item in pairs]


def headers(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Return header pairs with credential-like headers redacted."""
    return [[name, REDACTED if is_sensitive(name) or name.lower() == "proxy-authorization" else text(item)]
            for name, item in pairs]
