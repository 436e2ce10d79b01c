"""What never reaches a recording: signatures, tokens, credentials in headers, and the query strings of URLs
(pre-signed media URLs carry credentials there)."""

from __future__ import annotations

import base64
import functools
import re
from typing import Any, Iterator
from urllib.parse import quote, unquote_plus

from ivh_mock.spec.urls import without_queries, without_query

REDACTED = "[redacted]"
# a query parameter, header or JSON key whose value is a secret (`key` alone, never TimbreKey or appkey, which are
# not: an account's appkey is how a recording tells its accounts apart)
_SECRET_WORDS = (r"signature|token|secret|passw|pwd|passphrase|passcode|credential|jwt|hmac|session[-_]?id|"
                 r"(?:api|access|private|session|subscription|auth|client|master|signing|encryption)[-_]?key")
# AuthKey, JSESSIONID, HmacSha256, ClientKey too; a name ending in `Pass` written in camel case (userPass, dbPass),
# not `bypass` or `compass`
_AUTH_HEADERS = r"authori[sz]ation|authentication"  # Authorisation and Authentication as well
# Azure's `sig`, an `X-Sign`, an `X-Session`; not `signal`, `design` or a bare `session` (`session=2` counts)
SENSITIVE_NAME = re.compile(rf"{_SECRET_WORDS}|{_AUTH_HEADERS}|cookie|^(?:key|pass|pw|sid|otp)$|"
                            r"(?:^|[-_])(?:auth|sig|sign)(?:$|[-_])|[-_]session$|(?-i:(?<=[a-z0-9])Pass$)",
                            re.IGNORECASE)
# `name=value`, `name: value` or JSON's `"name": value` inside any text (a URL, a form body, an error message echoing
# a query, a body recorded as text). The name is a whole run of name characters, taken at once (possessive: a long run
# is looked at once, not again from each of its characters, which took minutes for 256 KiB of `a-a-a-...`), and it is
# a secret's when `is_sensitive` says so. A form's bracketed names count (`user[password]=`, `user%5Bpassword%5D=`),
# and so do `=>` and `:=` (Ruby's, PHP's and Go's).
# A name starts where no name character is before it, or after an escape (`%3Fsig=`), or after a `%` that starts none.
_NAMED = re.compile(r"(?:(?<![a-z0-9_%-])|(?<=%[0-9a-f]{2})|(?<=%)(?![0-9a-f]{2}))"
                    r"([a-z0-9_-]++(?:(?:\[|%5B)[a-z0-9_-]*+(?:\]|%5D))*+)"
                    r"(\\?[\"']?\s*+(?:=>|:=|[=:：＝])\s*+)", re.IGNORECASE)  # full-width `：` and `＝` too (a
# Chinese message's `令牌：...`, `accesstoken：...`)
_INLINE_NAME = re.compile(r"(?:^|-)x-auth(?!or)|(?:^|[-_])key$", re.IGNORECASE)  # X-Authentication, license_key
# a header's whole value, to its line's end (or to a quote or a backslash: the end of a quoted or escaped text holding
# it): a cookie's every pair, an authorization of any scheme (`token ...`)
_HEADER_NAME = re.compile(rf"(?:{_AUTH_HEADERS}|cookie)$", re.IGNORECASE)  # (`\\nCookie:` in a repr reads nCookie)
_HEADER_VALUE = re.compile(r"[^\r\n\"\\]++")
# or a scheme's parameters, quoted ones too, whole (`Digest username="u", response="..."` mid-line)
_SCHEME = r"(?:bearer|basic|negotiate|ntlm)\s++[a-z0-9._~+/=-]++"  # a scheme's credentials (`Basic dXNl...`)
_PARAM = rf'[a-z0-9_-]++[ \t]*+=[ \t]*+(?:"[^"\\\r\n]*+"|[^\s,"\\]*?{_SCHEME}|[^\s,"\\]*+)'
_AUTH_PARAMS = re.compile(rf"[a-z0-9_-]++[ \t]++{_PARAM}(?:[ \t]*+,[ \t]*+{_PARAM})*+", re.IGNORECASE)
# the value after such a name: a quoted text whole, or to the end of a text cut inside it (quoted with escaped quotes
# too, as JSON inside a JSON string is: `{\"access_token\": \"...\"}`); a scheme's credentials whole
# (`Authorization: Basic dXNl...` in the middle of a line); a JSON array or object whole (_bracketed); or a plain run.
# And `Bearer value` anywhere.
_QUOTED = {quote: re.compile(rf"{quote}(?:[^{quote}\\]|\\.)*+(?:({quote})|\\?\Z)", re.DOTALL) for quote in "\"'"}
_ESCAPED_QUOTED = {quote: re.compile(rf'\\{quote}(?:[^\\]|\\[^{quote}])*+(?:(\\{quote})|\\?\Z)', re.DOTALL)
                   for quote in "\"'"}  # `\"...\"` and `\'...\'`
_SCHEME_VALUE = re.compile(_SCHEME, re.IGNORECASE)
# with a scheme's credentials it runs into (`x:abc?auth:Bearer xyz`)
_PLAIN_VALUE = re.compile(rf"[^&\s\"',;}}]*?{_SCHEME}|[^&\s\"',;}}]++", re.IGNORECASE)
# not basic: "a basic idea" is no secret; and after `bearer` a space, a colon, or a form's `+` (`Bearer+xyz`)
_BEARER = re.compile(r"\b(bearer(?:\s*+:\s*+|\s++|\+))[a-z0-9._~+/=-]{4,}+", re.IGNORECASE)
# and `Basic <credentials>` anywhere when they are what the scheme carries, `user:password` in Base64 (RFC 7617): "a
# basic idea" or "basic test" decode to no such thing
_BASIC = re.compile(r"\b(basic(?:\s*+:\s*+|\s++|\+))([a-z0-9+/]{4,}+={0,2})(?![a-z0-9+/=._~-])", re.IGNORECASE)


def _basic(match: re.Match) -> str:
    try:
        decoded = base64.b64decode(match.group(2), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):  # binascii.Error is a ValueError
        return match.group()
    return match.group(1) + REDACTED if ":" in decoded and decoded.isprintable() else match.group()


_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*+"?|[\[\]{}]', re.DOTALL)  # a JSON string (skipped whole), or a bracket
# a header line inside any text: its whole value (`Authorization: Basic dXNl...` holds a space)
HEADER_LINE = re.compile(rf"(?im)^([ \t]*(?:(?:proxy-)?(?:{_AUTH_HEADERS})|(?:set-)?cookie|x-auth[a-z0-9_-]*)"
                         r"[ \t]*:[ \t]*)[^\r\n]+")


# An XML element under a secret's name, its text whole (an object store's error quoted in a message:
# `<SignatureProvided>...</SignatureProvided>`); and secrets known by their shape, whatever names them: a JSON Web
# Token, a PEM private key (its Base64 body, which holds no `-`, taken in one pass, with its newlines written as JSON
# escapes `\n` too, once or more, and an encrypted one's header lines) or a PGP private key block.
_ELEMENT = re.compile(r"<([a-z][a-z0-9_.:-]{0,63}+)>([^<]++)</\1>", re.IGNORECASE)
_SHAPED = re.compile(r"\beyJ[a-z0-9_-]{4,}+\.eyJ[a-z0-9_-]{4,}+\.[a-z0-9_-]*+|"
                     r"-----BEGIN (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----"
                     r"(?:(?:proc-type|dek-info|version|comment|hash|charset):[^\\\r\n]*+|\\++[rn]|[a-z0-9+/=\s])*+"
                     r"(?:-----END (?:[A-Z0-9]{1,20} ){0,3}PRIVATE KEY(?: BLOCK)?-----)?",
                     re.IGNORECASE)


def _elements_and_shapes(value: str) -> str:
    if "<" in value:
        value = _ELEMENT.sub(lambda match: f"<{match.group(1)}>{REDACTED}</{match.group(1)}>"
                             if is_sensitive(match.group(1)) else match.group(), value)
    return _SHAPED.sub(REDACTED, value) if "eyJ" in value or "-----BEGIN" in value else value


def is_sensitive(name: str) -> bool:
    if len(name) <= _NAMES_KEPT_CHARS:  # the names an API's traffic uses, again and again: looked at once each
        return _known_name(name)
    return _is_sensitive(name)


def _is_sensitive(name: str) -> bool:
    return bool(SENSITIVE_NAME.search(name) or _INLINE_NAME.search(name))


_NAMES_KEPT_CHARS = 64
_known_name = functools.lru_cache(maxsize=4096)(_is_sensitive)


url = without_query  # a URL without its query, fragment and user info


def text(value: str) -> str:
    """Return `value` with every inline secret redacted and every URL's query string removed (in that order: a value
    that runs past its URL's end, `?token=Bearer xyz`, goes whole), in time linear in its length (redaction holds the
    proxy's interpreter: any slower, one long text stalled every exchange). Checked against the regex it replaced
    over generated texts: it keeps nothing that one redacted. URL-encoded text is looked at decoded as well. A text
    with nothing any of its rules looks for (no separator of a name and its value, no markup, escape, URL part,
    scheme name or shape of a key: most of an API's values, `Shared`, `female_1`, a task's id) is returned as it is
    after one search (the rules, one after another, had been a fifth of the recording proxy's time)."""
    if not _ANY_RULES_CLUE.search(value):
        return value
    return _redacted(value, ENCODINGS)


# What some rule of `_redacted` needs in a text to change it: a name's separator (_NAMED, HEADER_LINE, _PART), an XML
# element (_ELEMENT), a key's shape (_SHAPED), a scheme named (_BEARER, _BASIC), a URL's query, fragment or user info
# (without_queries), an escape (_decoded). A test checks over generated texts that a text without one is unchanged.
_ANY_RULES_CLUE = re.compile(r"[:=：＝<%?#@]|eyJ|-----BEGIN|bearer|basic", re.IGNORECASE)


ENCODINGS = 2  # URL-encoded text is decoded this many times over at most (a URL inside a URL inside a form)
# a run of URL-encoded text (`=`, `&`: its own syntax; `/`, which quote() leaves as it is, inside it)
_ENCODED = re.compile(r"[a-z0-9%._~+/-]++", re.IGNORECASE)
_ESCAPE = re.compile(r"%[0-9a-f]{2}", re.IGNORECASE)


def _decoded(value: str, encodings: int) -> str:
    """`value` with each run of URL-encoded text that holds a secret once decoded (`next=%2Fcb%3Ftoken%3D...`, a URL
    in a form's field) replaced by its decoding redacted and encoded again."""
    def run(match: re.Match) -> str:
        encoded = match.group()
        if "%" not in encoded or not _ESCAPE.search(encoded):
            return encoded
        plain = unquote_plus(encoded)  # a form's `+` is a space (`password+%3D+...`)
        clean = _redacted(plain, encodings - 1)
        return encoded if clean == plain else quote(clean, safe="[]")

    return _ENCODED.sub(run, value) if encodings and "%" in value else value


# a multipart body's part under a secret's name (`Content-Disposition: form-data; name="password"`): the first line
# of its value, after the part's headers and the blank line that ends them
# (bounded: a part's head is a few short lines, and a text of many such lines is looked at from each in little time)
_PART = re.compile(r'(content-disposition:[^\r\n]{0,200}?\bname="([^"\r\n]{0,200}+)"[^\r\n]{0,300}+'
                   r'(?:\r?\n[^\r\n]{1,300}+){0,8}+\r?\n\r?\n)[^\r\n]*+', re.IGNORECASE)


def _redacted(value: str, encodings: int) -> str:
    value = HEADER_LINE.sub(lambda match: match.group(1) + REDACTED, _elements_and_shapes(value))
    if "name=" in value:
        value = _PART.sub(lambda match: match.group(1) + REDACTED if is_sensitive(match.group(2)) else match.group(),
                          value)
    kept, at = [], 0
    for match in _NAMED.finditer(value):
        if not is_sensitive(match.group(1)):
            continue
        start = match.end()
        if start >= at - 2:  # after the value just taken, or named inside it, which ended on its opening quote
            taken = _value(value, start, match.group(1))  # (`x="a?key": "b"`)
        else:  # or inside its scheme's credentials (`x=a?auth:Bearer b`); looked at for nothing more, as every
            scheme = _SCHEME_VALUE.match(value, start)  # name inside a long value is (`token=token=...`)
            taken = (scheme.end(), "", "") if scheme is not None else None
        if taken is None or taken[0] <= at:
            continue
        end, opening, closing = taken
        if start < at:  # the rest of its value, past the one just taken
            kept.append(REDACTED)
        else:
            kept += [value[at:start], opening, REDACTED, closing]
        at = end
    kept.append(value[at:])
    # then what is URL-encoded, decoded: after the text as written, whose secrets may be named inside a run of it and
    # follow it plainly (`...%3Fcredential: 'x'`, a name the decoding of a URL would take away with its query)
    plain = _BEARER.sub(lambda match: match.group(1) + REDACTED, "".join(kept))
    return _decoded(without_queries(_BASIC.sub(_basic, plain)), encodings)


def _value(value: str, start: int, name: str = "") -> tuple[int, str, str] | None:
    """Where the value at `start` ends, and the quotes to keep around its redaction; None when none is there."""
    escaped = value[start + 1:start + 2] if value.startswith("\\", start) else ""
    if _HEADER_NAME.search(name) and value[start + len(escaped):start + len(escaped) + 1] not in ('"', "'"):
        if value[start:start + 1] in ("[", "{"):  # a header dump's list of values (Go's http.Header), whole
            return _bracketed(value, start), "", ""
        ends = [found.end() for found in (_AUTH_PARAMS.match(value, start), _HEADER_VALUE.match(value, start)) if found]
        return (max(ends), "", "") if ends else None
    quoted = _ESCAPED_QUOTED.get(escaped) or _QUOTED.get(value[start:start + 1])
    if quoted is not None:
        found = quoted.match(value, start)  # always: at the latest, the text's end ends it
        opening = value[start:start + 1 + len(escaped)] if escaped in _ESCAPED_QUOTED else value[start]
        return found.end(), opening, opening if found.group(1) else ""
    if value[start:start + 1] in ("[", "{"):
        return _bracketed(value, start), "", ""
    found = _SCHEME_VALUE.match(value, start) or _PLAIN_VALUE.match(value, start)
    return (found.end(), "", "") if found is not None else None


def _bracketed(value: str, start: int) -> int:
    """Where the JSON array or object opening at `start` ends (past its closing bracket), or the text's end."""
    depth = 0
    for match in _BRACKETS.finditer(value, start):
        token = match.group()
        if token in "[{":
            depth += 1
        elif token in "]}":
            depth -= 1
            if depth == 0:
                return match.end()
    return len(value)


def value(node: Any) -> Any:
    """Return a JSON value with secrets redacted: sensitive keys' values, URL query strings, inline secrets."""
    if isinstance(node, dict):  # a key is text too (`{"https://cdn/x?sig=...": 1}`)
        return {text(key) if isinstance(key, str) else key:
                REDACTED if is_sensitive(str(key)) and node[key] not in (None, "") else value(item)
                for key, item in node.items()}
    if isinstance(node, list):
        return [value(item) for item in node]
    if isinstance(node, str):
        return text(node)
    return node


ECHO_CHARS = 8  # a sent secret is looked for in what came back from this length: a shorter one could be any word


def sent_secrets(query_pairs: list[tuple[str, str]], header_pairs: list[tuple[str, str]], body: Any = None) -> set[str]:
    """The secrets a request carried (the values of its sensitive query parameters, headers and JSON body fields; a
    Cookie's every value, an Authorization's sensitive parameters, `Signature=...` of a signed scheme), each also as
    a query writes it (its escapes in either case) and a header's without its scheme: an answer that echoes one
    (`signature mismatch, received ...`) is recorded without it (spec/drift.py's `scrubbed`). What names it there
    may be no name a redaction knows."""
    found = {item for name, item in query_pairs if is_sensitive(name)}
    for name, item in header_pairs:
        if is_sensitive(name) or name.lower() == "proxy-authorization":
            found.add(item)
            cookie = name.lower().endswith("cookie")
            found.update(part.group(2) for part in _HEADER_PARAM.finditer(item)
                         if cookie or is_sensitive(part.group(1)))
    found |= set(_sensitive_fields(body))
    return {form for item in found for form in _written(item) if len(form) >= ECHO_CHARS}


def _written(item: str) -> tuple[str, ...]:
    """`item` as an answer may echo it: as sent, as a query writes it (escapes in upper case, and in lower as some
    servers write them: `%2b`), as JSON inside a text writes it (`/` as `\\/`, as PHP's json_encode does; base64 and
    hex need no other JSON escape), and a header's value without its scheme."""
    quoted = quote(item, safe="")
    return item, item.replace(" ", "+"), quoted, _ESCAPE.sub(lambda match: match.group().lower(), quoted), \
        item.replace("/", "\\/"), item.split(" ", 1)[-1]


# a `name=value` inside a header's value: a cookie's pair, a signed scheme's parameter (`Signature=...`)
_HEADER_PARAM = re.compile(r"([a-z0-9_.-]++)[ \t]*+=[ \t]*+\"?([^\s\",;]++)", re.IGNORECASE)


def _sensitive_fields(node: Any, depth: int = 0) -> Iterator[str]:
    """The text values of a JSON value's sensitive fields, however deep (within reason)."""
    if depth > 64:
        return
    if isinstance(node, dict):
        for key, item in node.items():
            if isinstance(item, str) and is_sensitive(str(key)):
                yield item
            else:
                yield from _sensitive_fields(item, depth + 1)
    elif isinstance(node, list):
        for item in node:
            yield from _sensitive_fields(item, depth + 1)


def query(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Return query parameters (decoded pairs) with sensitive values redacted, in their order; a name is text too (a
    JWT given as a name, `token%3D...` decoded to `token=...`)."""
    return [[text(name), REDACTED if is_sensitive(name) else text(item)] for name, item in pairs]


HEADER_CHARS = 8192  # of a header's value, this much is recorded: 95 headers of 64 KB made a 10 MB record


def headers(pairs: list[tuple[str, str]]) -> list[list[str]]:
    """Return header pairs with credential-like headers redacted, each value cut to HEADER_CHARS."""
    return [[name, REDACTED if is_sensitive(name) or name.lower() == "proxy-authorization" else _cut(item)]
            for name, item in pairs]


def _cut(item: str) -> str:
    """Redacted whole, then cut: a secret across the cut had kept its first part (of a Basic credential, most of the
    password)."""
    clean = text(item)
    return clean if len(clean) <= HEADER_CHARS else f"{clean[:HEADER_CHARS]} [cut: {len(item)} characters]"
