"""Where the client and the mock's own options point: an http or https URL with a host, and a port if any that is
one. Both refuse anything else with the same words."""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable
from urllib.parse import urlsplit, urlunsplit

from .validation import cut


def host_name(host: str) -> str:
    """Return the name part of a Host header ("example.test:8080" -> "example.test"; "[::1]:80" -> "::1")."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    name, colon, port = host.rpartition(":")
    return name if colon and port.isascii() and port.isdigit() else host


def host_problem(host: str, allowed: Iterable[str], server: str = "mock") -> str | None:
    """Say why a request to the control API with this Host header may come from a DNS-rebound page, or None when it
    is the `server`'s own (the mock's, or the recording proxy's in front of one): an IP address (a rebound page
    carries its own name, never an address), `localhost` or a name under it (RFC 6761), or a name in `allowed` (the
    bound host, --public-url's host, --allow-host; `*` allows any). DECISIONS.md D57."""
    name = host_name(host).lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
        return None
    except ValueError:
        pass
    names = {entry.lower().rstrip(".") for entry in allowed if entry}
    if name == "localhost" or name.endswith(".localhost") or name in names or "*" in names:
        return None
    return (f"the control API answers only requests to the {server}'s own host names, not {name!r} (a page on "
            f"another name could have rebound it to this address); start the {server} with --allow-host NAME to add "
            f"one")


def http_url_problem(url: str) -> str | None:
    """Why `url` is not an http or https URL with a host (and a port from 1 to 65535, if any), or None. The URL is
    quoted without its user info and query, which may be credentials (a usage error had printed them)."""
    shown = repr(without_query(url))
    blank = next((at for at, char in enumerate(url) if char <= " " or char == "\x7f"), None)
    if blank is not None:  # no URL holds one as it is ('http://a b' had passed); named by its place, as the URL is
        # quoted as urlsplit reads it, without the blanks about it (a leading space was nowhere to be seen)
        return (f"{shown} holds a space or a control character ({url[blank]!r} at character {blank + 1} of "
                f"{len(url)}); a URL writes them percent-encoded")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (a port past 65535, or not a number, raises ValueError here)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not host_name_ok(parts.hostname or "") \
            or parts.port == 0:  # no server listens on port 0: urllib3 read it as none, and connected to port 80
        return f"{shown} is not an http or https URL with a host (and a port from 1 to 65535, if any)"
    if parts.query or parts.fragment or url.endswith(("?", "#")):  # paths are added to it: they would land inside
        return f"{shown} has a query or a fragment; give the scheme, host, port and path only"
    # its path goes into the URLs made from it as written (--public-url into every MediaUrl): `%zz` or a raw `ü` there
    # made each of them a URL no client need read as meant
    bad = _NOT_IN_A_PATH.search(parts.path)
    if bad is not None:
        what = ("a '%' that starts no percent-escape (%XX)" if bad.group() == "%"
                else f"{bad.group()!r}, which a URL percent-encodes")
        return f"{shown} holds in its path {what}"
    return None


_NOT_IN_A_PATH = re.compile(r"%(?![0-9A-Fa-f]{2})|[^\x21-\x7e]|[\"<>\\^`{|}]")  # a bare '%', past ASCII, or
# one of the characters RFC 3986 keeps out of every URL (`\"`, `<`, ...)


def host_name_ok(host: str) -> bool:
    """Whether `host` (urlsplit's reading: no brackets, lower case) can be connected to: an IP address, or a name of
    labels of 1 to 63 letters, digits, `-` and `_` (a Compose service's), 253 in all (a trailing dot allowed).
    urllib3 refuses others (`a..b`) only as each call connects, and every call failed as if no server answered."""
    if ":" in host:  # an IPv6 address (urlsplit checked its brackets)
        return True
    name = host[:-1] if host.endswith(".") else host
    return 0 < len(name) <= 253 and all(0 < len(label) <= 63 and all(char.isalnum() or char in "-_" for char in label)
                                        for label in name.split("."))


def without_query(url: str) -> str:
    """`url` without what may carry a credential: its query and fragment (a pre-signed URL's signature) and its user
    info (`user:password@`). A URL that does not split (an unclosed IPv6 bracket) is cut at its first `?` or `#`."""
    if not any(mark in url for mark in "?#@"):  # nothing to take out: as written (urlunsplit had made
        return url  # `http:127.0.0.1:8080` of a usage error `http:///127.0.0.1:8080`)
    try:
        parts = urlsplit(url)  # the host as written (its port, an IPv6 literal's brackets): only the user info goes
        return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2], query="", fragment=""))
    except ValueError:
        return url.split("?", 1)[0].split("#", 1)[0]


URL_SHOWN = 200  # characters of a URL a message quotes (D04): the whole of any URL a real app sends


def shown_url(url: str) -> str:
    """`url` as a message quotes it: without what may carry a credential (`without_query`), and cut to URL_SHOWN
    characters, so that a huge input is never echoed (D04; a 2,000-character RefPhotoUrl had been quoted whole)."""
    return cut(without_query(url), URL_SHOWN)


def quoted_queries_out(text: str, *urls: str) -> str:
    """`text` (an error's) without the query of any of `urls` where it follows a `?`: urllib3 quotes the path and
    query a request failed on alone (`Max retries exceeded with url: /v.mp4?sign=...`), which no URL pattern finds."""
    for each in urls:
        try:
            query = urlsplit(each).query
        except ValueError:  # no URL urllib splits: nothing of it to look for
            continue
        if query:
            text = text.replace("?" + query, "?[redacted]")
    return text


def without_queries(text: str) -> str:
    """`text` with every URL in it passed through `without_query` (an error message, a body recorded as text)."""
    return URL_IN_TEXT.sub(_without_query_in_text, text)


def _without_query_in_text(match: re.Match) -> str:
    url = match.group()
    if not any(part in url for part in "?#@"):  # nothing to take out: left as written (urlunsplit would tidy it)
        return url
    if "\\/" in url:  # written in JSON with its slashes escaped (as PHP writes them)
        return without_query(url.replace("\\/", "/")).replace("/", "\\/")
    return without_query(url)


# a URL of any scheme (its name taken whole, from the start of a run: `a.a.a...` is looked at once), or scheme-relative
# (`//cdn.example/v.mp4?sig=...`, not a path's `a//b`), its slashes plain or escaped as JSON may write them
# (`https:\/\/cdn.example\/v.mp4?sig=...`), and `\uXXXX` escapes (`&` as Go's JSON writes it: \u0026)
URL_IN_TEXT = re.compile(r"(?:(?<![a-z0-9+.-])[a-z][a-z0-9+.-]*+:|(?<![\w:/.\\]))(?://|\\/\\/)"
                         r"(?:[^\s\"'<>\\]|\\/|\\u[0-9a-f]{4})++", re.IGNORECASE)
