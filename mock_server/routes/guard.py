"""Keep web pages the developer visits away from the control API (DECISIONS.md D57).

Loopback is not a wall: any page can make the browser POST to 127.0.0.1 (a "simple" cross-site request), and a page
on a name that DNS-rebinds to 127.0.0.1 can read the answers. Two checks stop both without touching tools that call
the control API directly: the `Host` must be one of the mock's own names, and a state-changing request that carries
an `Origin` (every browser sends one on a cross-origin POST or PUT) must come from the mock's own origin.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Iterable
from urllib.parse import urlsplit

from ivh_mock.spec.urls import host_name

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def is_loopback(host: str) -> bool:
    """Whether a host to listen on is loopback only (an address, or `localhost`)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def bracketed(host: str) -> str:
    """A host to listen on as a URL writes it: an IPv6 address in brackets (`http://[::1]:8080`)."""
    return f"[{host}]" if ":" in host else host


def host_url(environ: dict) -> str:
    """scheme://host the request was sent to, from its Host header as sent, the scheme's default port left out;
    ValueError naming the problem when there is none or it names no host (a name or an address, with an optional
    port). Media URLs are built from it and kept with each task: a request sent with `Host: [::1` or `Host: a b` had
    left URLs like `http:///broadcast/...` in its task for good, and one with no Host at all URLs on waitress's
    placeholder `waitress.invalid`; werkzeug reads a name with an underscore (a Compose service's) as no host (D75)."""
    if "HTTP_HOST" not in environ:
        raise ValueError(NO_HOST)
    sent = sent_host(environ)
    match = _HOST.fullmatch(sent)
    if match is None or int(match.group(1) or 0) > 65535 or not (
            _ipv6(host_name(sent)) if sent.startswith("[") else _labels_fit(host_name(sent))):
        raise ValueError(f"the Host header {sent[:100]!r} is not a host name (dot-separated labels of 1 to 63 "
                         f"characters) or address with an optional port (0 to 65535)")
    scheme, port = environ.get("wsgi.url_scheme", "http"), match.group(1)
    if port is None:
        return f"{scheme}://{sent}"
    # a port is written as the number it is (`h:00080` is port 80), and left out when empty or the scheme's default
    name, port = sent.rpartition(":")[0], port and str(int(port))
    return f"{scheme}://{name}" if port in ("", _DEFAULT_PORTS.get(scheme)) else f"{scheme}://{name}:{port}"


NO_HOST = ("the request has no Host header, which the mock needs whatever the HTTP version: the URLs it answers "
           "with are built from it")


def sent_host(environ: dict) -> str:
    """The request's Host header as sent ("" for none): werkzeug reads a name with an underscore (a Compose service's)
    as no host at all, and a request without one as on waitress's placeholder name, `waitress.invalid` (D75)."""
    return as_written(environ.get("HTTP_HOST", ""))


def as_written(value: str) -> str:
    """A header's value as its sender wrote it, to quote: WSGI hands it over read as Latin-1, so UTF-8 text
    (`exämple.com`) had been quoted as `exÃ¤mple.com`. A value that is no UTF-8 stays as it was read."""
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


def _labels_fit(name: str) -> bool:
    """Whether each label of a name (`a.b.`: a fully qualified one may end in a dot) holds 1 to 63 characters, as DNS
    (RFC 1035) and werkzeug's reading of a Host header want: `a..b` and `.` had been refused by werkzeug alone,
    in words that named no header."""
    return all(0 < len(label) <= 63 for label in name.removesuffix(".").split("."))


def _ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:  # `[1]`, `[:]`: brackets around no address
        return False
    return True


_DEFAULT_PORTS = {"http": "80", "https": "443"}
_HOST = re.compile(r"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_][A-Za-z0-9_.-]*)(?::([0-9]{0,5}))?")


def origin_problem(method: str, origin: str | None, own: Iterable[str]) -> str | None:
    """Say why a state-changing request was sent by a page of another site, or None. Requests without an Origin
    come from tools (curl, requests, the fixtures), which a page cannot drive."""
    if method in SAFE_METHODS or origin is None:
        return None
    if origin.lower().rstrip("/") in {_origin(url) for url in own if url}:
        return None
    return (f"the control API refuses {method} requests sent by a web page of another origin ({origin!r}); "
            "only the mock's own pages (the dashboard) and tools without an Origin header may change its state")


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()
