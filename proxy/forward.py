"""One exchange through the proxy: forward the app's request unchanged, stream the upstream's answer back unchanged,
then check and record both. Checks and recording run after the answer is sent: they never delay it, only the
app's next request on the same connection.

The proxy never re-signs, never retries, never changes a body; the one exception is `callback_relay`, which the
user asks for: the submission's CallbackUrl is replaced by the proxy's own, and each callback is recorded and
forwarded to the app's URL.
"""

from __future__ import annotations

import codecs
import http.client
import json
import os
import re
import secrets
import sys
import threading
import time
import zlib
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Iterator, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

import requests
import urllib3
from urllib3.exceptions import HeaderParsingError
from urllib3.util import SKIP_HEADER
from urllib3.util.response import assert_header_parsing

from ivh_mock import spec as spec_module
from ivh_mock.spec import deadline, drift, jsontext
from ivh_mock.spec.deadline import named_ca_bundle
from ivh_mock.spec.urls import host_problem, quoted_queries_out
from ivh_mock.spec.validation import ecma_pattern

from . import redact
from .checks import ExchangeChecker, Finding, Lifecycle, task_of
from .recorder import Recorder

# Hop-by-hop headers (RFC 9110 7.6.1) belong to one connection; Host names the upstream, not the proxy.
HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
              "trailer", "transfer-encoding", "upgrade", "host", "expect"}  # Expect: the proxy already answered 100
END_TO_END = {"content-encoding", "content-type", "content-length"}  # an answer's, whatever its Connection names
CALLBACK_PREFIX = "/__proxy__/callback/"
APP_GONE = "the app took no more of the answer"  # how a record's error starts when the app, not the upstream, left
RECORDED_BODY_BYTES = 256 * 1024  # more of a body than this is passed through but not recorded
FORWARD_REFUSED = "a header cannot be forwarded"  # the proxy's own 400 (replayed as it was)
CHUNK = 64 * 1024
HURRY_SECONDS = 0.1  # how often a stop's wait for the exchanges under way looks whether it is to end at once


class Responder(Protocol):
    """Where the answer goes (the HTTP server's side of one request). `app_gone` once a write to the app failed."""

    app_gone: bool

    def start(self, status: int, reason: str, headers: list[tuple[str, str]], chunked: bool,
              codings: str = "") -> None:
        """Send the head; `chunked`: the body goes in chunks, after the transfer `codings` it is in (`gzip`), if
        any."""

    def write(self, data: bytes) -> None: ...

    def finish(self) -> None: ...

    def abort(self) -> None:
        """The answer was cut short: end the connection after what was sent, so the app sees it broken."""


class Proxy:
    """Forward to `upstream`, check against the spec, record into `recorder` (None: check only)."""

    def __init__(self, upstream: str, recorder: Recorder | None, *, checker: ExchangeChecker | None = None,
                 connect_timeout: float = 10.0, read_timeout: float = 30.0, callback_relay: bool = False,
                 public_url: str | None = None, warn=None, clock=time.time, allowed_hosts: Iterable[str] = ()):
        self.upstream = upstream.rstrip("/")
        self.shown = redact.url(self.upstream)  # as records and messages name it: without its user info
        self.recorder, self.checker = recorder, checker or ExchangeChecker()
        self.timeout = (connect_timeout, read_timeout)
        self.callback_relay, self.public_url = callback_relay, (public_url or "").rstrip("/")
        self.warn = warn if warn is not None else (lambda text: print(text, file=sys.stderr, flush=True))
        self.clock = clock
        # the names a request to a mock's control API through the proxy may be sent to (D57): its --host, its
        # --public-url's host and --allow-host; an address and localhost always
        self.allowed_hosts = (*allowed_hosts, urlsplit(self.public_url).hostname or "")
        self.lifecycle = Lifecycle(keep_polls=1)  # live warnings compare with the last poll only: memory stays flat
        self._lock = threading.Lock()
        self._seen: set[tuple] = set()  # findings already warned about (each is printed once)
        self._relays: dict[str, str] = {}  # callback token -> the app's own CallbackUrl
        self._local = threading.local()
        self._busy = 0  # exchanges under way (answered but perhaps not yet recorded)
        self._idle = threading.Condition()
        self._unrecorded = 0  # exchanges answered but not recorded since the recording last failed (0: it works)
        # the way out the environment names, as requests (and `ivh`) take it: HTTP(S)_PROXY unless NO_PROXY covers
        # the upstream, and REQUESTS_CA_BUNDLE or CURL_CA_BUNDLE to verify its certificate. Behind an egress proxy or
        # a TLS-inspecting one, the proxy could not reach the live API at all. Read once, as the proxy starts.
        self._proxies = requests.utils.get_environ_proxies(self.upstream)
        self._verify = environment_ca_bundle()

    def drain(self, timeout: float = 10.0, hurry: Callable[[], bool] = lambda: False) -> bool:
        """Wait until every exchange under way is answered and recorded, or `timeout` passes, or `hurry()` says to
        stop waiting (looked at every HURRY_SECONDS); tell whether every exchange was recorded."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0 or hurry():
                    return False
                self._idle.wait(min(left, HURRY_SECONDS))
            return True

    def _session(self) -> requests.Session:
        """A session per thread (connections kept alive), with none of requests' default headers."""
        session = getattr(self._local, "session", None)
        if session is None:
            # nothing of the environment's but the upstream's way out (no .netrc's credentials added, no proxy on the
            # way to the app's callback URL); an answer whose head the upstream cut short is no answer (IncompleteHead)
            session = deadline.session(trust_env=False)
            session.headers.clear()
            session.verify = self._verify
            self._local.session = session
        return session

    # -- one exchange ----------------------------------------------------------------------------------------
    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
               responder: Responder) -> None:
        """Answer one request: `target` is the path and query exactly as the app sent them."""
        with self._idle:
            self._busy += 1
        try:
            self._exchange(method, target, headers, body, responder)
        finally:
            with self._idle:
                self._busy -= 1
                self._idle.notify_all()

    def _exchange(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                  responder: Responder) -> None:
        started = self.clock()
        path = _target(target).path
        if self.callback_relay and path.startswith(CALLBACK_PREFIX):  # else it is the upstream's, as any path
            self._relay_callback(method, path[len(CALLBACK_PREFIX):], headers, body, responder, started)
            return
        rebound = _rebound(method, path, _header(headers, "host") or "", self.allowed_hosts)
        if rebound:  # the upstream sees the upstream's own Host from the proxy, and would have let it through; no
            _answer_own(responder, 403, "Forbidden", rebound)  # app's traffic, nothing the upstream did: not recorded
            return
        operation = self.checker.operation(method, path)
        forwarded = body
        if self.callback_relay and operation == "phototovideonotrain":
            forwarded = self._substitute_callback(body)
        # RFC 9110 7.6.1: the fields a Connection header names are hop-by-hop
        named = set(header_tokens(value for name, value in headers if name.lower() == "connection"))
        outgoing = _combined(headers, HOP_BY_HOP | named | {"content-length"})
        self._same_origin(headers, outgoing)
        for name in ("User-Agent", "Accept-Encoding"):  # add none of urllib3's own
            if not any(key.lower() == name.lower() for key in outgoing):
                outgoing[name] = SKIP_HEADER
        try:
            data = forwarded if forwarded or method not in ("GET", "HEAD") else None
            prepared = requests.Request(method, self.upstream + "/", headers=outgoing, data=data).prepare()
        except requests.RequestException as error:  # a header value requests will not send (InvalidHeader)
            # named, never quoted: requests' message quotes the value, a credential's as any other
            refused = f"{FORWARD_REFUSED}: {_unsendable(outgoing)}"
            _answer_own(responder, 400, "Bad Request", refused)
            self._record(started, operation, method, target, headers, body, None,
                         error=f"{type(error).__name__}: {refused}")
            return
        prepared.url = self.upstream + target  # as sent: requests would re-quote it
        try:
            answer = self._session().send(prepared, stream=True, timeout=self.timeout, allow_redirects=False,
                                          proxies=self._proxies)
        except requests.RequestException as error:
            status = 504 if isinstance(error, requests.Timeout) else 502
            # an answer whose head urllib3 or http.client refuses (two Content-Lengths that differ, a header line
            # past 64 KiB, over 100 header lines) came, but cannot be passed on: it was answered, all the same
            chain = _chain(error)
            what = ("broke off its answer's head" if any(isinstance(inner, deadline.IncompleteHead) for inner in chain)
                    else "answered with a head the proxy cannot read"
                    if isinstance(error, requests.exceptions.InvalidHeader) or any(
                        isinstance(inner, http.client.LineTooLong) and "header line" in str(inner)
                        or type(inner) is http.client.HTTPException  # http.client's "got more than 100 headers"
                        for inner in chain)  # (a status line past 64 KiB is none: no HTTP answer began)
                    else "did not answer")
            _answer_own(responder, status, "Bad Gateway" if status == 502 else "Gateway Timeout",
                        f"upstream {self.shown} {what}: {type(error).__name__} ({_cause(error)})")
            self._record(started, operation, method, target, headers, body, None, error=_failure(error))
            return
        if 100 <= answer.status_code < 200:  # http.client takes an interim answer (103 Early Hints) for the final
            answer.close()
            message = (f"upstream {self.shown} sent an interim answer, HTTP {answer.status_code}, which the proxy "
                       f"does not pass on")
            _answer_own(responder, 502, "Bad Gateway", message)
            self._record(started, operation, method, target, headers, body, None, error=message)
            return
        kept, broken, left = bytearray(), None, None
        answer_headers = list(answer.raw.headers.items())
        try:
            # a chunked answer is passed on in chunks of its own: a Content-Length beside it is not to be trusted
            # (RFC 9112 6.3), and passed on it would end the app's answer early and start the next one with the rest
            # (and the fields the answer's Connection header names are hop-by-hop as a request's are: RFC 9110 7.6.1)
            # (but for those that say what the body is: named, the app had got gzip with no Content-Encoding, where
            # the answer was judged decoded)
            hop = HOP_BY_HOP | set(header_tokens(value for name, value in answer_headers
                                                 if name.lower() == "connection")) - END_TO_END
            passed = [(name, value) for name, value in answer_headers if name.lower() not in hop
                      and not (answer.raw.chunked and name.lower() == "content-length")]
            has_length = any(name.lower() == "content-length" for name, _ in passed)
            bodiless = method == "HEAD" or answer.status_code in (204, 304)
            # a transfer coding besides chunked (`gzip, chunked`) stays named: urllib3 takes off the chunks alone, and
            # the app had got gzip under `chunked`, which no header said
            codings = ", ".join(_transfer_codings(answer_headers))
            left = _to_app(responder, lambda: responder.start(answer.status_code, answer.reason or "", passed, bool(
                codings) or not has_length and not bodiless, codings))
            for chunk in _pieces(answer.raw):
                if len(kept) <= RECORDED_BODY_BYTES:
                    kept += chunk[: RECORDED_BODY_BYTES + 1 - len(kept)]
                if left is None:
                    left = _to_app(responder, lambda: responder.write(chunk))
                elif len(kept) > RECORDED_BODY_BYTES:
                    break  # an app gone: the upstream's answer is read as far as it is recorded, for the record
            if left is None:
                left = _to_app(responder, responder.finish)
        except OSError as error:  # the upstream broke off mid-answer: record what was seen
            broken = f"the exchange broke off: {type(error).__name__}"
            responder.abort()
        except Exception as error:  # urllib3's own errors (protocol, decode) while streaming
            broken = f"the upstream's answer broke off: {type(error).__name__}"
            responder.abort()
        finally:
            answer.close()
        self._record(started, operation, method, target, headers, body,
                     (answer.status_code, answer_headers, bytes(kept)), error=broken, unparsed=_unparsed_head(answer),
                     app_left=left)

    def _same_origin(self, headers: list[tuple[str, str]], outgoing: dict[str, str]) -> None:
        """Host goes upstream as the upstream's own; an Origin naming the proxy (a page it served: the mock's
        dashboard opened through it) names the upstream with it, so that the page stays of the origin it writes to.
        The control API had refused every write of that dashboard as a foreign page's (D57); any other Origin goes
        as sent."""
        origin, host = _header(headers, "origin"), _header(headers, "host")
        name = next((key for key in outgoing if key.lower() == "origin"), None)  # (none when Connection named it)
        try:
            ours = bool(name and origin and host and urlsplit(origin).netloc.lower() == host.strip().lower())
        except ValueError:  # an Origin urlsplit cannot read (`http://[x`) names no page of the proxy's
            return
        if ours:
            upstream = urlsplit(self.upstream)
            outgoing[name] = f"{upstream.scheme}://{upstream.netloc.rpartition('@')[2]}"

    # -- checking and recording ----------------------------------------------------------------------------
    def _record(self, started: float, operation: str | None, method: str, target: str,
                headers: list[tuple[str, str]], body: bytes, answer: tuple[int, list, bytes] | None,
                error: str | None = None, unparsed: str | None = None, app_left: str | None = None) -> None:
        split = _target(target)
        query_pairs = parse_qsl(split.query, keep_blank_values=True)
        request_json, request_is_json = parsed_body(body)
        findings: list[Finding] = []
        record: dict[str, Any] = {
            "kind": "exchange", "t": started, "time": _iso(started),
            "elapsed_ms": round(1000 * (self.clock() - started)),
            "upstream": self.shown, "operation": operation,
            "request": {"method": method, "path": redact.text(split.path), "query": redact.query(query_pairs),
                        "headers": redact.headers(headers), **recorded_body(body, request_json, request_is_json),
                        "signals": _signals(split.query, query_pairs, started)},
        }
        if error is not None:
            record["error"] = error
        if app_left is not None:  # the upstream's answer is recorded whole all the same (a TaskId billed is followed)
            record["app_left"] = app_left
        if answer is not None and error is not None:  # cut short: its status and headers came, unchecked, and
            status, answer_headers, _ = answer  # a head that dropped its Content-Length may be why it broke off
            record["response"] = {"status": status, "headers": redact.headers(answer_headers)}
            findings += self._dropped(record["response"], unparsed, operation)
        if answer is not None and error is None:
            status, answer_headers, data = answer
            decoded, undecodable = _decoded(data, answer_headers)
            twice: list[str] = []  # the keys it gives twice in one object (of an answer that is JSON)
            answer_json, answer_is_json = parsed_body(decoded, twice) if undecodable is None else (None, False)
            twice = twice if answer_is_json else []
            # an answer giving a key twice is kept as text, as it came: as JSON it would hold one of the two; one
            # decoded is recorded decoded (a replay serves it so), its first 256 KiB of text where it is larger
            record["response"] = {"status": status, "headers": redact.headers(answer_headers),
                                  **recorded_body(decoded, answer_json, answer_is_json and not twice,
                                                  verbatim=bool(twice))}
            findings += self._dropped(record["response"], unparsed, operation)
            codings = _transfer_codings(answer_headers)
            if codings:  # RFC 9112 7.4: only one the request's TE header named (the app's names none the API needs)
                findings.append(Finding("transfer-coding", ", ".join(codings)[:60], f"the answer's Transfer-Encoding "
                                        f"names {', '.join(codings)[:60]} besides chunked: passed on as it came, which "
                                        f"few clients decode", operation))
            if twice:
                findings.append(Finding("duplicate-key", twice[0], f"the answer gives {', '.join(map(repr, twice[:5]))}"
                                        f" twice in one object: readers differ on which counts (most keep the last, "
                                        f"some the first, some refuse the answer)", operation))
            encoding = (_header(answer_headers, "content-encoding") or "identity").lower()
            if undecodable is not None:
                findings.append(Finding("content-encoding", encoding[:40], f"{undecodable}: an app's client cannot "
                                                                            f"read it", operation))
            unchecked = (f"the answer is encoded as {encoding[:40]!r}, which the proxy does not decode"
                         if encoding not in DECODED else  # brotli, zstd: no envelope it can read, none it can judge
                         undecodable if undecodable is not None else
                         f"the answer is larger than {RECORDED_BODY_BYTES // 1024} KiB"
                         if max(len(data), len(decoded)) > RECORDED_BODY_BYTES else None)  # only its start was kept
            if unchecked:
                record["response"]["unchecked"] = f"{unchecked}: it is not checked"
                if operation is not None:  # but its status needs no body (a 503 page had passed as conforming, and
                    findings += self.checker.status(operation, status)  # a brotli answer been not-an-envelope)
            elif operation is not None:
                verdict = self.checker.request(operation, dict(query_pairs), _header(headers, "content-type"),
                                               request_json, request_is_json)
                record["request"]["refused_by_spec"] = [redact.text(reason) for reason in verdict.reasons[:5]]
                findings += self.checker.answer(operation, status, answer_json, answer_is_json, verdict,
                                                _header(answer_headers, "content-type"),
                                                None if isinstance(answer_json, dict) else _not_an_envelope(decoded))
                self._follow(operation, request_json, answer_json, started)
        sent = redact.sent_secrets(query_pairs, headers, request_json)  # what the answer may echo, under any name
        findings = [replace(finding, subject=drift.scrubbed(finding.subject, sent),
                            detail=drift.scrubbed(finding.detail, sent)) for finding in findings]
        record["findings"] = [finding.as_dict() for finding in findings]
        self._warn(findings)
        self._write(drift.scrubbed(record, sent))

    @staticmethod
    def _dropped(response: dict[str, Any], unparsed: str | None, operation: str | None) -> list[Finding]:
        """Record what http.client dropped of the upstream's head, if anything, and say so: passed on without it,
        as the app's own client would drop it too."""
        if unparsed is None:
            return []
        shown = response["unparsed_head"] = redact.text(unparsed)[:UNPARSED_CHARS]  # a secret across the cut too
        return [Finding("malformed-header", "head", f"the upstream's head holds a line that is not `name: value`: it "
                                                    f"and every header after it were dropped ({shown!r})", operation)]

    def _write(self, record: dict[str, Any]) -> None:
        """Record, or say once that recording fails (a full disk, a directory gone) and again once it works: the
        exchange was answered either way, and the app's connection stays as it was."""
        if self.recorder is None:
            return
        try:
            self.recorder.write(record)
        except OSError as error:
            with self._lock:
                self._unrecorded += 1
                first = self._unrecorded == 1
            if first:
                self.warn(f"ivh-mock proxy: cannot record into {self.recorder.directory}: {error.strerror or error}; "
                          f"exchanges are passed on but not recorded until it can")
            return
        with self._lock:
            lost, self._unrecorded = self._unrecorded, 0
        if lost:
            self.warn(f"ivh-mock proxy: recording again into {self.recorder.directory}; {lost} exchange(s) were not "
                      f"recorded")

    def _follow(self, operation: str, request: Any, answer: Any, at: float) -> None:
        """Feed the lifecycle tracker, for live warnings (`ivh-mock drift` follows tasks from the recording)."""
        task_id, payload = task_of(operation, request, answer)
        if task_id is None:
            return
        found: list[Finding] = []
        with self._lock:
            if operation == "phototovideonotrain":
                self.lifecycle.submitted(task_id, at)
            else:
                found = self.lifecycle.observe(task_id, payload, at)
        self._warn(found)

    def _warn(self, findings: list[Finding]) -> None:
        for finding in findings:
            with self._lock:
                if finding.key in self._seen or len(self._seen) > 10_000:
                    continue
                self._seen.add(finding.key)
            self.warn(f"ivh-mock proxy: drift: {finding.kind}: {finding.detail}")

    # -- callbacks -----------------------------------------------------------------------------------------
    def _substitute_callback(self, body: bytes) -> bytes:
        parsed = json_body(body)
        try:
            original = parsed["Payload"]["CallbackUrl"]
        except (TypeError, KeyError):
            return body
        if not isinstance(original, str) or not original:
            return body
        if self.checker.spec.validate("phototovideonotrain", parsed):  # the spec refuses it: sent as the app sent it,
            return body  # the upstream's to refuse (a CallbackUrl of 1,200 characters, relayed, had been accepted)
        token = secrets.token_urlsafe(16)
        with self._lock:
            if len(self._relays) >= 100_000:
                self._relays.pop(next(iter(self._relays)))
            self._relays[token] = original
        parsed["Payload"]["CallbackUrl"] = f"{self.public_url}{CALLBACK_PREFIX}{token}"
        try:
            return json.dumps(parsed, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a JSON \\udfff escape gives one): no UTF-8 holds it
            return json.dumps(parsed).encode()  # so it goes on as it came, escaped

    def _relay_callback(self, method: str, token: str, headers: list[tuple[str, str]], body: bytes,
                        responder: Responder, started: float) -> None:
        with self._lock:
            app_url = self._relays.get(token)
        status, reason, reply, error = 404, "Not Found", b'{"error": {"message": "no such callback relay"}}', None
        if app_url is not None and method == "POST":
            content_type = _header(headers, "content-type") or "application/json"
            try:
                delivered = self._session().post(app_url, data=body, headers={"Content-Type": content_type},
                                                 timeout=self.timeout, allow_redirects=False)
                status, reason, reply = delivered.status_code, delivered.reason or "", delivered.content
            except requests.RequestException as failure:
                status, reason, reply, error = 502, "Bad Gateway", b"", _failure(failure, app_url)
        responder.start(status, reason, [("Content-Length", str(len(reply)))], False)
        responder.write(reply)
        responder.finish()
        if app_url is None or method != "POST":  # no callback the proxy relayed: nothing to check against the API's
            return
        parsed, is_json = parsed_body(body)
        findings = self.checker.callback(parsed if is_json else None)
        if is_json and isinstance(parsed, dict) and isinstance(parsed.get("Payload"), dict):
            with self._lock:
                findings += self.lifecycle.callback(parsed["Payload"], started)
        self._warn(findings)
        if self.recorder is not None:
            self._write({"kind": "callback", "t": started, "time": _iso(started), "upstream": self.shown,
                                 "operation": "callback", "relayed_to": redact.text(redact.url(app_url or "")),
                                 "request": {"method": method, "headers": redact.headers(headers),
                                             **recorded_body(body, parsed, is_json)},
                                 "response": {"status": status}, "error": error,
                                 "findings": [finding.as_dict() for finding in findings]})


def own_error(message: str) -> bytes:
    """The body of an answer of the proxy's own: {"error": {"message": ...}}, which no API answer looks like."""
    return json.dumps({"error": {"message": f"ivh-mock proxy: {message}"}}).encode()


def header_tokens(values: Iterable[str]) -> list[str]:
    """The elements of a comma-separated header list (Connection, Transfer-Encoding) over all its field lines,
    lowercased, without the optional whitespace around them (RFC 9110 5.6.1) and without empty ones."""
    return [token.strip(" \t").lower() for value in values for token in value.split(",") if token.strip(" \t")]


def environment_ca_bundle() -> str | bool:
    """The certificates the environment names to verify an upstream with (REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE, as
    requests reads them), or True for requests' own; ValueError for one that is not there (each exchange had failed
    with a traceback, its app's connection closed unanswered)."""
    named = named_ca_bundle()
    if named is None:
        return True
    name, path = named
    if not os.path.exists(path):
        raise ValueError(f"{name} names {path}, which is not there: no certificates to verify the upstream with (unset "
                         f"it for the usual ones)")
    return path


def _transfer_codings(headers: list[tuple[str, str]]) -> list[str]:
    """The transfer codings an answer names besides chunked (`gzip` of `Transfer-Encoding: gzip, chunked`)."""
    return [coding for coding in header_tokens(value for name, value in headers if name.lower() == "transfer-encoding")
            if coding != "chunked"]


CONTROL_PREFIX = "/__mock__"  # a mock's control API (the upstream's, when it is a mock)
OPEN_TO_ALL = (f"{CONTROL_PREFIX}/assets/", f"{CONTROL_PREFIX}/ui/")  # files a mock serves any page (D57)


def _rebound(method: str, path: str, host: str, allowed: Iterable[str]) -> str | None:
    """Why a request to a mock's control API through the proxy may come from a page DNS-rebound to the proxy's
    address, or None: the mock refuses one sent to it by its Host, which the proxy replaces by the upstream's (and an
    Origin naming the proxy by the upstream's with it); so the proxy asks what the mock would have. The path is read
    as the mock routes it: percent-decoded (`/%5F%5Fmock%5F%5F/reset` had passed), its slashes merged."""
    routed = re.sub("/{2,}", "/", unquote(path))
    if not (routed == CONTROL_PREFIX or routed.startswith(CONTROL_PREFIX + "/")):
        return None
    if method in ("GET", "HEAD") and routed.startswith(OPEN_TO_ALL):
        return None
    if not host.strip(" \t"):
        return "the request has no Host header, which a request to the control API through the proxy needs"
    return host_problem(host.strip(" \t"), allowed, server="proxy")  # (its blanks about a value are none of it)


def _answer_own(responder: Responder, status: int, reason: str, message: str) -> None:
    text = own_error(message)
    responder.start(status, reason, [("Content-Type", "application/json"), ("Content-Length", str(len(text)))], False)
    responder.write(text)
    responder.finish()


def _to_app(responder: Responder, send: Callable[[], None]) -> str | None:
    """Send a part of the answer to the app; when the app takes no more of it, end its connection and say so
    (APP_GONE): the upstream's answer is then read on for the record (it had kept only the status, no TaskId)."""
    try:
        send()
        return None
    except OSError as error:
        if not responder.app_gone:  # not a write to the app that failed
            raise
        responder.abort()
        return f"{APP_GONE}: {type(error).__name__}"


def _combined(headers: list[tuple[str, str]], leave_out: set[str]) -> dict[str, str]:
    """The headers as one field each, repeated ones joined by commas in their order (RFC 9110 5.3, which allows
    this for a request's fields), less those named in `leave_out`: a dict would keep only a repeated field's last."""
    combined: dict[str, str] = {}
    names: dict[str, str] = {}  # lowercase name -> as the app first wrote it
    for name, value in headers:
        if name.lower() in leave_out:
            continue
        name = names.setdefault(name.lower(), name)
        joint = "; " if name.lower() == "cookie" else ", "  # a Cookie's pairs are joined as one Cookie writes them
        combined[name] = f"{combined[name]}{joint}{value}" if name in combined else value
    return combined


def _chain(error: BaseException) -> list[BaseException]:
    """`error` and the errors under it, outermost first (requests' error, urllib3's, http.client's or the socket's)."""
    chain = [error]
    while len(chain) < 10:
        current = chain[-1]
        candidates = (getattr(current, "reason", None), *current.args, current.__cause__, current.__context__)
        inner = next((found for found in candidates if isinstance(found, BaseException) and found not in chain), None)
        if inner is None:
            break
        chain.append(inner)
    return chain


def _cause(error: BaseException) -> str:
    """What lies under an error requests raised: the system's words for a socket's error ("Connection refused",
    "Connection reset by peer"), an answer http.client could not read (BadStatusLine: 'HTTP/1.1 abc'), a timeout,
    else the innermost error's kind."""
    chain = _chain(error)
    for found in chain[1:]:
        if isinstance(found, (http.client.HTTPException, urllib3.exceptions.InvalidHeader)):
            return f"{type(found).__name__}: {redact.text(str(found).strip())[:80]}"
        if isinstance(found, TimeoutError):
            return "timed out"
        if isinstance(found, OSError) and found.strerror:
            return found.strerror
    return type(chain[-1]).__name__


def _unsendable(headers: dict[str, str]) -> str:
    """Which header requests will not send, and why, in words that do not quote its value."""
    for name, value in headers.items():
        try:
            requests.utils.check_header_validity((name, value))
        except requests.RequestException:
            return (f"{name!r}: its name or value starts with whitespace or holds a reserved character or a line "
                    f"break")
    return "requests refused the headers"


def _failure(error: Exception, url: str = "") -> str:
    """Say what went wrong without the URL's credentials (an error's text may quote the request's URL, or only its
    path and query: `url: /cb?code=...`)."""
    return redact.text(quoted_queries_out(f"{type(error).__name__}: {error}", url))[:300]


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds")


def _header(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((value for key, value in headers if key.lower() == name), None)


def _pieces(answer: Any) -> Iterator[bytes]:
    """The answer's body as it arrives: each chunk of a chunked one, else whatever the connection holds, up to CHUNK
    (urllib3's read(CHUNK) waits for all of CHUNK, holding back what arrived from an upstream that stops)."""
    if answer.chunked or not hasattr(answer, "read1"):  # urllib3 before 2.1 has no read1
        yield from answer.stream(CHUNK, decode_content=False)
        return
    while piece := answer.read1(CHUNK, decode_content=False):
        yield piece


_INFLATED = ("gzip", "x-gzip", "deflate")  # the Content-Encodings `_decoded` takes off
DECODED = ("identity", *_INFLATED)  # those an answer is checked under


def _decoded(data: bytes, headers: list[tuple[str, str]]) -> tuple[bytes, str | None]:
    """Return the body without its Content-Encoding (gzip, deflate), for checking and recording, and no more of it
    than a recorded body holds (a small answer may inflate to gigabytes), and None; passed through as sent. A body
    that does not inflate as its Content-Encoding says is returned as it came, with what is wrong with it: the app's
    client cannot read it either (it had been checked as the plain JSON it was, and found conforming)."""
    encoding = (_header(headers, "content-encoding") or "").lower()
    if encoding not in _INFLATED:
        return data, None
    # as urllib3 (the app's requests) reads them: gzip as gzip alone, member after member; deflate as zlib's stream,
    # else as one without zlib's header, one stream (it had been read either way, whatever the header said: the app
    # could not decode what the proxy judged conforming)
    for wbits in ((31,) if encoding != "deflate" else (15, -15)):
        try:
            return _inflated(data, wbits, members=encoding != "deflate"), None
        except zlib.error:
            continue
    return data, f"the answer's Content-Encoding is {encoding}, but its body does not inflate as {encoding}"


def _inflated(data: bytes, wbits: int, members: bool) -> bytes:
    """`data` inflated, up to the recorded cap; with `members`, member after member (gzip allows several one after
    another, and urllib3 reads them all: the first alone had been taken for the whole answer, and the answer for no
    envelope). What follows the first member and does not inflate is left out, as urllib3 leaves it."""
    inflated, rest, first = bytearray(), data, True
    while rest and len(inflated) <= RECORDED_BODY_BYTES:
        inflater = zlib.decompressobj(wbits=wbits)
        try:
            inflated += inflater.decompress(rest, RECORDED_BODY_BYTES + 1 - len(inflated))
        except zlib.error:
            if first:
                raise
            break
        if not (members and inflater.eof):  # one stream, cut short, or past the cap
            break
        rest, first = inflater.unused_data, False
    return bytes(inflated)


def parsed_body(data: bytes, duplicates: list[str] | None = None) -> tuple[Any, bool]:
    """A body's JSON value and True; (None, False) for one that is empty, not JSON, too deep or over the cap.
    `duplicates` gets the keys it gives twice in one object (jsontext.loads)."""
    if not data or len(data) > RECORDED_BODY_BYTES:
        return None, False
    value = json_body(data, duplicates)
    return (None, False) if value is NOT_JSON else (value, True)


def _unparsed_head(answer: requests.Response) -> str | None:
    """What of the upstream's head http.client could not read as header lines, if anything: from a line that is not
    `name: value` on, it drops the head's lines (a Content-Length among them) without a word."""
    message = getattr(getattr(answer.raw, "_original_response", None), "msg", None)  # urllib3 keeps http.client's
    try:
        assert_header_parsing(message)
    except HeaderParsingError:  # some of its defects drop nothing (a line that starts as a continuation)
        unparsed = message.get_payload()
        return unparsed if isinstance(unparsed, str) and unparsed else None
    except TypeError:  # no head as http.client reads it (urllib3 keeps it no more)
        pass
    return None


UNPARSED_CHARS = 1024  # of a head's dropped lines, this much is recorded
NOT_JSON = object()
JSON_DEPTH = 256  # a body nested deeper is passed on and recorded as text, never decoded (spec/jsontext.py)


def json_body(data: bytes, duplicates: list[str] | None = None) -> Any:
    """The JSON value of a body; NOT_JSON if it is not UTF-8 JSON, nests deeper than JSON_DEPTH, or holds a number
    no double holds (NaN, Infinity, 1e400: as the mock reads a request, and recorded as text, never as `Infinity`)."""
    try:
        return jsontext.loads(data.decode("utf-8"), JSON_DEPTH, strict=True, duplicates=duplicates)
    except ValueError:  # UnicodeDecodeError is one
        return NOT_JSON


def _not_an_envelope(data: bytes) -> tuple[str, str]:
    """Why an answer's body is no JSON object, as a finding's subject and words: each its own finding (one had stood
    for all of them, so the proxy said nothing of any but the first, and named none)."""
    if not data:
        return "empty", "it has no body"
    if data.startswith(codecs.BOM_UTF8):
        return "byte order mark", ("it begins with a UTF-8 byte order mark, which a JSON text must not (RFC 8259 8.1): "
                                   "many clients refuse it")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8", "it is not UTF-8 (RFC 8259 8.1)"
    try:
        value = jsontext.loads(text, JSON_DEPTH, strict=True)
    except json.JSONDecodeError as error:
        if text.lstrip().startswith("<"):
            return "markup", "it is markup (an HTML or XML page), not JSON"
        return "not JSON", f"it is not JSON ({error.msg} at character {error.pos})"
    except ValueError as error:  # JSON no strict reader takes
        nesting = "nests deeper" in str(error)
        return ("nesting" if nesting else "number"), (f"it {error}, which the proxy does not decode" if nesting else
                                                      f"it holds a number no double holds ({error})")
    kind = ("an array" if isinstance(value, list) else "a string" if isinstance(value, str) else "null"
            if value is None else "a boolean" if isinstance(value, bool) else "a number")
    return "not an object", f"it is JSON, but {kind}, not an object"


def recorded_body(data: bytes, parsed: Any, is_json: bool, *, verbatim: bool = False) -> dict[str, Any]:
    """Return the recorded form of a body: redacted JSON, or redacted text (`verbatim`: as it came, never read as
    JSON), never more than the cap."""
    if is_json:
        return {"body": redact.value(parsed), "body_format": "json"}
    if not data:
        return {"body": None, "body_format": "empty"}
    cut = len(data) > RECORDED_BODY_BYTES
    try:
        text = data[:RECORDED_BODY_BYTES].decode("utf-8", errors="strict" if not cut else "ignore")
    except UnicodeDecodeError:
        return {"body": None, "body_format": "binary", "body_bytes": len(data)}
    try:  # JSON but for a number no double holds (NaN, 1e400): redacted as JSON is, then written as text, where
        loose = jsontext.loads(text, JSON_DEPTH) if not (cut or verbatim) else NOT_JSON  # a strict reader takes it
    except ValueError:
        loose = NOT_JSON
    if loose is not NOT_JSON:
        return {"body": json.dumps(redact.value(loose), ensure_ascii=False), "body_format": "text"}
    return {"body": redact.text(text), "body_format": "text" + (" (cut)" if cut else "")}


_TIMESTAMP = ecma_pattern(spec_module.load().resolve("#/components/parameters/timestamp")["schema"]["pattern"])


def _signals(raw_query: str, pairs: list[tuple[str, str]], at: float) -> dict[str, Any]:
    """Facts about the request's credentials kept instead of the credentials: how far the timestamp is from this
    machine's clock, and whether the signature carried a raw '+' (not URL-encoded)."""
    values = dict(pairs)
    signals: dict[str, Any] = {}
    stamp = values.get("timestamp", "")
    if _TIMESTAMP.search(stamp):  # only one the spec takes (int() also takes `1_700_000_000`, and 10**400)
        signals["timestamp_skew_seconds"] = round(int(stamp) - at)
    raw_signature = next((part.split("=", 1)[1] for part in raw_query.split("&")
                          if part.startswith("signature=") and "=" in part), None)
    if raw_signature is not None:
        signals["signature_unencoded_plus"] = "+" in raw_signature
    return signals


def _target(target: str):
    """A request target split as a server reads it: `//v2/...` is a path (waitress, and the mock, read it so), where
    urlsplit takes `v2` for a host, and the exchange had been recorded as `/ivh/...`, no operation, never checked."""
    if target.startswith("//"):
        return urlsplit("/" + target.lstrip("/"))
    return urlsplit(target)
