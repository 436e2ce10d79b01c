"""The recording proxy: transparent, checked against the spec, recorded safely, reported, calibrated, replayed.

A deliberately wrong upstream (a small local server) answers what the spec forbids; the mock itself, as upstream,
must leave no finding at all.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
import time
from contextlib import redirect_stdout
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import quote, urlsplit

import hypothesis
import pytest
import requests
from hypothesis import strategies as st
from ivh_mock.mock_server import VirtualClock
from ivh_mock.mock_server.serving import cli
from ivh_mock.mock_server.serving.testing import CallbackReceiver, MockServer, QuietHTTPServer
from ivh_mock.proxy import Proxy, ProxyServer, Recorder, read_records
from ivh_mock.proxy import report as drift_report
from ivh_mock.proxy.recorder import recording_files
from ivh_mock.proxy.replay import ReplayIndex, ReplayMiddleware
from ivh_mock.proxy.server import _Responder
from ivh_mock.spec import drift
from ivh_mock.spec.signing import signed_query

from .conftest import PATHS, RawServer, run_suite, until

TOKEN = "mock-accesstoken"
SECRET_IN_URL = "s3cr3t-presigned-credential"
TASK = "feedfacefeedfacefeedfacefeedface"


# -- a deliberately wrong upstream ------------------------------------------------------------------------------
def _envelope(payload, code=0, extra_header=""):
    return ('{"Header": {"Code": %d, "Message": "", "RequestID": "r1", "DialogID": "", "SessionID": "s"%s},'
            '  "Payload": %s}' % (code, extra_header, payload)).encode()


# What the wrong upstream answers, in order, per path: odd spacing on purpose (the proxy must not re-serialise).
WRONG_ANSWERS = {
    PATHS["phototovideonotrain"]: [_envelope('{"TaskId": "%s", "Surprise": 1}' % TASK)],
    PATHS["getprogress"]: [
        _envelope('{"Status": "MAKING", "Progress": 40, "ArrayCount": 0, "Duration": 0, "MediaUrl": ""}'),
        _envelope('{"Status": "COMMIT", "Progress": 0, "ArrayCount": 0, "Duration": 0, "MediaUrl": ""}'),
        _envelope('{"Status": "QUEUED", "Progress": 0, "ArrayCount": 0, "Duration": 0, "MediaUrl": ""}'),
        _envelope('{"Status": "FAIL", "Progress": -1, "ArrayCount": 0, "Duration": 0, "MediaUrl": "", '
                  '"FailCode": 123456, "FailMessage": "odd"}'),
    ],
    PATHS["describetimbre"]: [_envelope("{}", code=999999)],
}


class WrongUpstream:
    """A local server that answers each path with the next of WRONG_ANSWERS (the last one again when used up); a
    submission is accepted whatever it says (so the spend guard stops later probes)."""

    def __init__(self):
        self.served = {path: 0 for path in WRONG_ANSWERS}
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                sent = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?")[0]
                if b"html-please" in sent:
                    return self._send(500, b"<html><body>gateway trouble</body></html>")
                if b'"PageSize": 7' in sent:  # refuse a valid request as if a field were missing
                    return self._send(200, _envelope("{}", code=100001))
                if path not in WRONG_ANSWERS:
                    return self._send(404, b'{"Header": {"Code": 100009, "Message": "no", "RequestID": "x"}, '
                                           b'"Payload": {}}')
                answers = WRONG_ANSWERS[path]
                body = answers[min(upstream.served[path], len(answers) - 1)]
                upstream.served[path] += 1
                self._send(200, body, chunked=path == PATHS["getprogress"])

            def do_GET(self):
                self._send(404, b"not here")

            def _send(self, status, body, chunked=False):
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("X-Upstream-Trace", "abc")
                self.send_header("Set-Cookie", "session=upstream-cookie-value")
                if chunked:  # stream it in two pieces: the proxy must pass a chunked answer through
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = len(body) // 2
                    for piece in (body[:half], body[half:]):
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = QuietHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def wrong_upstream():
    upstream = WrongUpstream()
    yield upstream
    upstream.close()


NOW = int(time.time())  # the wrong upstream checks no timestamp: one signature for the whole module


def _post(base, operation, body, *, appkey="my-app", token=TOKEN, now=NOW, headers=None):
    query = signed_query(appkey, token, int(now))
    return requests.post(f"{base}{PATHS[operation]}?{query}", data=json.dumps(body).encode(),
                         headers={"Content-Type": "application/json;charset=utf-8", **(headers or {})}, timeout=10)


def _drift(*args):
    out = io.StringIO()
    with redirect_stdout(out):
        status = cli.main(["drift", *map(str, args)])
    return status, out.getvalue()


TEXT = {"RefPhotoUrl": f"https://photos.example/me.jpg?accesstoken={SECRET_IN_URL}&x=1", "DriverType": "Text",
        "InputSsml": "Hello there, anchor", "SpeechParam": {"TimbreKey": "female_1", "Speed": 1.0}}


def test_the_proxy_reaches_its_upstream_the_way_the_environment_names(tmp_path, monkeypatch):
    """The proxy ignored HTTP(S)_PROXY and REQUESTS_CA_BUNDLE, which `ivh` and requests honour: behind an egress proxy,
    or one that inspects TLS, it could not reach the live API at all. NO_PROXY still sends an upstream it names
    straight there, and a relayed callback goes to the app directly."""
    envelope = json.dumps({"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {
        "Status": "COMMIT", "Progress": 0, "MediaUrl": "", "ArrayCount": 0, "Duration": 0}}).encode()
    egress = RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                       % (len(envelope), envelope))
    monkeypatch.setenv("HTTP_PROXY", egress.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "corporate.pem"))
    (tmp_path / "corporate.pem").write_text("certificates")
    with egress:
        outside = Proxy("http://api.example.invalid", None, warn=lambda text: None)
        assert outside._session().verify == str(tmp_path / "corporate.pem")
        with ProxyServer(outside, port=0) as proxy:
            answer = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
        assert answer.status_code == 200 and answer.json()["Payload"]["Status"] == "COMMIT" and egress.requests == 1
        free = socket.socket()
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
        free.close()
        with ProxyServer(Proxy(f"http://127.0.0.1:{port}", None, warn=lambda text: None), port=0) as proxy:
            refused = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
        assert refused.status_code == 502 and egress.requests == 1  # NO_PROXY: straight there, and refused
    # a bundle that is not there: each exchange had failed with a traceback, its connection closed unanswered
    (tmp_path / "corporate.pem").unlink()
    assert cli.main(["proxy", "--port", "0", "--record", str(tmp_path / "rec")]) == 2
    assert not (tmp_path / "rec").exists()
    with pytest.raises(ValueError, match="REQUESTS_CA_BUNDLE names .*corporate.pem, which is not there"):
        Proxy("https://api.example.invalid", None)


def test_a_wrong_upstream_passes_through_byte_for_byte_and_drift_names_each_problem(wrong_upstream, tmp_path):
    record = tmp_path / "rec"
    with ProxyServer(Proxy(wrong_upstream.url, Recorder(record), warn=lambda text: None), port=0) as proxy:
        sent = []
        answer = _post(proxy.url, "phototovideonotrain", {"Header": {}, "Payload": TEXT},
                       headers={"Authorization": "Bearer app-secret-bearer", "X-Accesstoken": TOKEN})
        sent.append(("phototovideonotrain", answer))
        for _ in WRONG_ANSWERS[PATHS["getprogress"]]:
            sent.append(("getprogress", _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})))
        sent.append(("describetimbre", _post(proxy.url, "describetimbre",
                                             {"Header": {}, "Payload": {"PageIndex": 1, "PageSize": 10}})))
    served = {path: 0 for path in WRONG_ANSWERS}
    for operation, answer in sent:
        path = PATHS[operation]
        assert answer.content == WRONG_ANSWERS[path][served[path]], operation  # byte for byte
        served[path] += 1
        assert answer.status_code == 200
        assert answer.headers["X-Upstream-Trace"] == "abc"
        assert answer.headers["Content-Type"] == "application/json;charset=utf-8"
        assert answer.headers["Set-Cookie"] == "session=upstream-cookie-value"

    files = recording_files(record)
    text = "".join(path.read_text() for path in files)
    signature = signed_query("my-app", TOKEN, NOW).split("signature=")[1]
    for secret in (TOKEN, SECRET_IN_URL, "app-secret-bearer", "upstream-cookie-value", signature[:12]):
        assert secret not in text, f"{secret!r} leaked into the recording"
    assert len(list(read_records(record))) == len(sent)
    assert stat.S_IMODE(record.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(path.stat().st_mode) == 0o600 for path in files)

    status, out = _drift(record)
    assert status == 1, out
    report = json.loads((record / drift.JSON_NAME).read_text())
    kinds = {(f["kind"], f["subject"]) for f in report["findings"]}
    assert ("unknown-status", "QUEUED") in kinds
    assert ("undocumented-field", "response.Payload.Surprise") in kinds
    assert ("unknown-header-code", "999999") in kinds
    assert ("unknown-fail-code", "123456") in kinds
    assert ("lifecycle-status-backwards", "MAKING -> COMMIT") in kinds
    for name in ("unknown-status", "undocumented-field", "unknown-header-code", "lifecycle-status-backwards"):
        assert name in out
    backwards = next(f for f in report["findings"] if f["kind"] == "lifecycle-status-backwards")
    assert backwards["count"] == 1 and backwards["first_seen"] and backwards["last_seen"]
    assert backwards["example"]["response"]["body"]["Payload"]["Status"] == "COMMIT"
    assert backwards["example"]["request"]["query"][2] == ["signature", "[redacted]"]
    markdown = (record / drift.MARKDOWN_NAME).read_text()
    assert "| unknown-status |" in markdown and "## Findings" in markdown


def test_a_folder_the_recorder_did_not_make_keeps_its_mode(tmp_path):
    """Only a folder the proxy makes is 0700: `--record /tmp` had made /tmp 0700 at the proxy's start."""
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    Recorder(shared).write({"kind": "exchange"})
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    (tmp_path / "open").mkdir()
    os.chmod(tmp_path / "open", 0o755)
    Recorder(tmp_path / "open" / "made" / "deeper")
    assert stat.S_IMODE((tmp_path / "open" / "made" / "deeper").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "open" / "made").stat().st_mode) == 0o700  # made on the way: it had been 0755
    assert stat.S_IMODE((tmp_path / "open").stat().st_mode) == 0o755  # there before


def test_the_recorder_writes_through_no_link_and_makes_a_file_it_appends_to_private(tmp_path):
    """A link named like the day's recording had the records appended to where it led, a file that stayed 0644; so
    did a 0644 recording already in the folder, where the README says the files are 0600."""
    outside = tmp_path / "outside.txt"
    outside.write_text("")
    outside.chmod(0o644)
    folder = tmp_path / "rec"
    folder.mkdir()
    (folder / "ivh-proxy-20250101.jsonl").symlink_to(outside)
    loose = folder / "ivh-proxy-20250101.1.jsonl"
    loose.write_text("")
    loose.chmod(0o644)
    Recorder(folder, clock=lambda: 1_735_689_600).write({"kind": "exchange"})  # 2025-01-01
    assert outside.read_text() == "" and stat.S_IMODE(outside.stat().st_mode) == 0o644
    assert '"kind":"exchange"' in loose.read_text() and stat.S_IMODE(loose.stat().st_mode) == 0o600


def test_the_upstream_accepting_what_the_spec_refuses_is_a_finding(wrong_upstream, tmp_path):
    with ProxyServer(Proxy(wrong_upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        _post(proxy.url, "phototovideonotrain", {"Header": {}, "Payload": {**TEXT, "CallbackURL": "http://x/"}})
    report = drift_report.analyse(read_records(tmp_path))
    refused = [f for f in report["findings"] if f["kind"] == "accepted-what-the-spec-refuses"]
    assert refused and "CallbackURL is not a documented field" in refused[0]["detail"]


def test_the_upstream_refusing_what_the_spec_accepts_is_a_finding(wrong_upstream, tmp_path):
    with ProxyServer(Proxy(wrong_upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        _post(proxy.url, "describetimbre", {"Header": {}, "Payload": {"PageIndex": 1, "PageSize": 7}})
        _post(proxy.url, "describetimbre", {"Header": {}, "Payload": {"PageIndex": 1, "PageSize": 7}},
              headers={"Content-Type": "text/plain"})  # refused by the spec too: no finding
    findings = [f for r in read_records(tmp_path) for f in r["findings"]]
    assert [f["kind"] for f in findings] == ["refused-what-the-spec-accepts"] and findings[0]["subject"] == "100001"


def test_an_answer_that_is_no_envelope_passes_through_and_is_a_finding(wrong_upstream, tmp_path):
    with ProxyServer(Proxy(wrong_upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        answer = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": "html-please"}})
    assert answer.status_code == 500 and answer.content == b"<html><body>gateway trouble</body></html>"
    (record,) = read_records(tmp_path)
    assert {f["kind"] for f in record["findings"]} == {"not-an-envelope", "undocumented-http-status"}
    assert record["response"]["body"] == "<html><body>gateway trouble</body></html>"


@pytest.mark.parametrize("upstream", ["http://127.0.0.1:9", "http://user:UPSECRET@127.0.0.1:9"])
def test_an_unreachable_upstream_gets_a_502_and_is_recorded(upstream, tmp_path):
    """An upstream's user info is a credential: its record, its messages and the drift report had kept it."""
    with ProxyServer(Proxy(upstream, Recorder(tmp_path), connect_timeout=2,
                           warn=lambda text: None), port=0) as proxy:
        answer = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}}, now=NOW)
    assert answer.status_code == 502 and answer.json()["error"]["message"] == (
        "ivh-mock proxy: upstream http://127.0.0.1:9 did not answer: ConnectionError (Connection refused)")
    (record,) = read_records(tmp_path)
    assert record["error"].startswith("ConnectionError") and "response" not in record
    assert record["upstream"] == "http://127.0.0.1:9" and "UPSECRET" not in json.dumps(record)
    signature = signed_query("my-app", TOKEN, NOW).split("signature=")[1]
    assert signature[:12] not in json.dumps(record) and "[redacted]" in record["error"]


REQUEST_HEAD = f"POST {PATHS['getprogress']}?appkey=my-app HTTP/1.1\r\nHost: proxy\r\n".encode()


@pytest.mark.parametrize("raw, status, says", [
    (REQUEST_HEAD + b"Content-Length: abc\r\n\r\n{}", 400, "Content-Length 'abc' is not a number of bytes"),
    (REQUEST_HEAD + b"Content-Length: -5\r\n\r\n{}", 400, "Content-Length '-5' is not a number of bytes"),
    (REQUEST_HEAD + b"Content-Length: 2\r\nContent-Length: 3\r\n\r\n{}", 400,
     "Content-Length is given more than once, with different values"),
    (REQUEST_HEAD + b"Content-Length: 33554433\r\n\r\n{}", 413, "request body larger than 32 MiB"),
    (REQUEST_HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n", 400,
     "chunk size 'zz' is not a hexadecimal number"),
    (REQUEST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n", 400,
     "a chunk of 2 bytes is not followed by a line break"),
    (REQUEST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n" + b"1" * 2000 + b"\r\n", 400,
     "a chunk size line is longer than 1024 bytes"),
    (REQUEST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n2000001\r\n", 413, "request body larger than 32 MiB"),
    (b"GARBAGE\r\n\r\n", 400, "Bad request syntax ('GARBAGE')"),
    (b"BREW / HTTP/1.1\r\nHost: proxy\r\n\r\n", 501, "Unsupported method ('BREW')"),
    (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n", 414, "Request-URI Too Long"),
    (REQUEST_HEAD + b"Content-Length: " + b"9" * 5000 + b"\r\n\r\n{}", 413, "request body larger than 32 MiB"),
    (REQUEST_HEAD + b"Transfer-Encoding: gzip\r\n\r\n{}", 400, "Transfer-Encoding 'gzip' does not end in chunked"),
    (REQUEST_HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\n{}", 400,
     "Transfer-Encoding 'chunked, gzip' does not end in chunked"),
    (REQUEST_HEAD + b"Transfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 501,
     "Transfer-Encoding 'identity, chunked' is not supported: only chunked is"),
    (REQUEST_HEAD + b"Transfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400,
     "Content-Length and Transfer-Encoding are both given"),
    # a line http.client cannot parse ends its headers: what follows would be a body, and the body a second request
    (REQUEST_HEAD + b"X-B : 1\r\nContent-Length: 49\r\n\r\nGET /smuggled?appkey=victim HTTP/1.1\r\nHost: p\r\n\r\n",
     400, "a header line is not 'name: value' (no space before the colon)"),
    (REQUEST_HEAD + b"X-A: one\r\n two\r\nContent-Length: 2\r\n\r\n{}", 400,
     "a header line is folded onto the next (obs-fold)"),
    (b"OPTIONS * HTTP/1.1\r\nHost: proxy\r\n\r\n", 400,
     "request target '*' is neither a path nor an absolute URL"),
    (REQUEST_HEAD.replace(b"HTTP/1.1", b"HTTP/1.0") + b"Transfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n", 400,
     "Transfer-Encoding is not HTTP/1.0's: send a Content-Length"),
    (REQUEST_HEAD + b"Expect: 100-continue\r\nContent-Length: 99999999\r\n\r\n", 413,
     "request body larger than 32 MiB"),  # refused at once, with no "100 Continue" before it
    (REQUEST_HEAD + b"Expect: 100-continue\r\nContent-Length: abc\r\n\r\n", 400,
     "Content-Length 'abc' is not a number of bytes"),
    # http.client's parser takes a bare CR for a line break: the app would send a header, and a framing, unseen
    (REQUEST_HEAD + b"X-A: a\rContent-Length: 35\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: p\r\n\r\n", 400,
     "header line 'X-A' holds a control character (a bare CR, a NUL, ...)"),
    (REQUEST_HEAD + b"X-A: \x0bb\r\nContent-Length: 2\r\n\r\n{}", 400,
     "header line 'X-A' holds a control character (a bare CR, a NUL, ...)"),
    (b"POST / HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}", 400,
     "a request names its Host once, and an HTTP/1.1 request must name it"),
    (REQUEST_HEAD + b"Host: other\r\nContent-Length: 2\r\n\r\n{}", 400,
     "a request names its Host once, and an HTTP/1.1 request must name it"),
    (b"GET /nine\r\n\r\n", 400, "an HTTP/0.9 request is not forwarded: send HTTP/1.1"),
    (b"GET /nine\r\n", 400, "an HTTP/0.9 request is not forwarded: send HTTP/1.1"),  # it had waited for headers
    (b"GET  /two-spaces HTTP/1.1\r\nHost: proxy\r\n\r\n", 400,
     "the request line is not 'method target version', one space apart"),
    # as the mock refuses them (D76): forwarded with CRLF, an app's framing bug had been hidden behind the proxy
    (REQUEST_HEAD + b"Content-Length: 2\n\r\n{}", 400, "a line of the request's head ends in a bare LF; HTTP needs "
                                                       "CRLF (\\r\\n)"),
    (REQUEST_HEAD.replace(b"HTTP/1.1\r\n", b"HTTP/1.1\n") + b"Content-Length: 2\r\n\r\n{}", 400,
     "a line of the request's head ends in a bare LF; HTTP needs CRLF (\\r\\n)"),
], ids=["length-not-a-number", "length-negative", "lengths-disagree", "length-too-large", "chunk-size-not-hex",
        "chunk-not-ended", "chunk-size-line-too-long", "chunks-too-large", "no-request-line", "unknown-method",
        "request-line-too-long", "length-of-5000-digits", "coding-not-chunked", "chunked-not-last",
        "coding-besides-chunked", "coding-and-length", "space-before-colon", "folded-header", "asterisk-target",
        "chunked-in-http-1.0", "expect-continue-too-large", "expect-continue-bad-length", "bare-cr-in-header",
        "control-in-header", "no-host", "two-hosts", "http-0.9", "http-0.9-alone", "spaces-doubled",
        "bare-lf-in-header", "bare-lf-in-request-line"])
def test_a_request_the_proxy_cannot_read_gets_its_own_json_refusal_and_never_goes_upstream(raw, status, says,
                                                                                             tmp_path):
    with ProxyServer(Proxy("http://127.0.0.1:9", Recorder(tmp_path), connect_timeout=2,
                           warn=lambda text: None), port=0) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
            connection.sendall(raw)
            answer = _read_all(connection)  # the proxy closes the connection after its refusal
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
        assert b"\r\nContent-Type: application/json\r\n" in head and b"\r\nConnection: close" in head
        assert json.loads(body) == {"error": {"message": f"ivh-mock proxy: {says}"}}
        # and it still serves: a well-formed request goes upstream (unreachable here: 502, recorded)
        assert _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}}).status_code == 502
    (record,) = read_records(tmp_path)  # only the well-formed request was forwarded
    assert record["request"]["body"]["Payload"] == {"TaskId": TASK}


def test_a_request_whose_head_is_cut_off_never_goes_upstream(tmp_path):
    """http.server reads the end of input as the blank line that ends a head: a client that closed while it sent a
    paid submission's head had it forwarded with no body, and recorded."""
    with ProxyServer(Proxy("http://127.0.0.1:9", Recorder(tmp_path), connect_timeout=2,
                           warn=lambda text: None), port=0) as proxy:
        for cut in (REQUEST_HEAD, REQUEST_HEAD + b"Content-Type: application/json\r"):
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
                connection.sendall(cut)
                connection.shutdown(socket.SHUT_WR)
                head, _, body = _read_all(connection).partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 400 ") and "ended before its blank line" in json.loads(body)["error"][
                "message"]
        assert _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}}).status_code == 502
    (record,) = read_records(tmp_path)  # only the whole request was forwarded
    assert record["request"]["body"]["Payload"] == {"TaskId": TASK}


@pytest.mark.parametrize("framing", [
    b"Content-Length: 2 \r\nContent-Length: 2\r\n\r\n{}",
    b"Content-Length: " + b"0" * 5000 + b"2\r\n\r\n{}",
    b"Transfer-Encoding: Chunked\r\n\r\n1;note=x\r\n{\r\n1\r\n}\r\n0\r\nTrailer: t\r\n\r\n",
], ids=["length-repeated", "length-with-leading-zeros", "chunks-with-extension-and-trailer"])
def test_a_body_framed_any_way_http_allows_goes_upstream_whole(framing, tmp_path):
    with ProxyServer(Proxy("http://127.0.0.1:9", Recorder(tmp_path), connect_timeout=2,
                           warn=lambda text: None), port=0) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
            connection.sendall(REQUEST_HEAD + b"Connection: close\r\n" + framing)
            assert _read_all(connection).startswith(b"HTTP/1.1 502 ")  # forwarded (the upstream is unreachable)
    (record,) = read_records(tmp_path)
    assert record["request"]["body"] == {}


@pytest.fixture
def echo_upstream():
    """An upstream that notes each request's target and X-Trace headers and answers {"ok": 1} without a length."""
    received = []

    class Upstream(BaseHTTPRequestHandler):
        def do_POST(self):
            received.append((self.requestline.split()[1], self.headers.get_all("X-Trace")))  # not its folded path
            received.append({name: self.headers.get_all(name) for name in ("Cookie", "X-Secret")})
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.end_headers()  # no length: the answer ends with the connection, and the proxy streams it
            self.wfile.write(b'{"ok": 1}')

        def log_message(self, *args):
            pass

    upstream = QuietHTTPServer(("127.0.0.1", 0), Upstream)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{upstream.server_port}", received
    upstream.shutdown()
    upstream.server_close()


@pytest.mark.parametrize("line, arrives", [
    ("POST /café?q=é&r=%2f HTTP/1.1", "/caf%C3%A9?q=%C3%A9&r=%2F"),  # the same bytes (urllib3 writes %2f as %2F)
    ("POST /à?b=100% HTTP/1.1", "/%C3%A0?b=100%25"),  # not split at the \xa0 of à; a lone % is no escape
    ("POST //double/slash HTTP/1.1", "//double/slash"),
    ("\r\nPOST /after-an-empty-line HTTP/1.1", "/after-an-empty-line"),
], ids=["past-ascii", "nbsp-byte-and-lone-percent", "double-slash", "empty-line-first"])
def test_a_target_and_a_header_given_twice_go_upstream_as_the_app_sent_them(line, arrives, echo_upstream, tmp_path):
    url, received = echo_upstream
    with ProxyServer(Proxy(url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
            connection.sendall(f"{line}\r\nHost: proxy\r\n".encode() +
                               b"X-Trace: a\r\nx-trace: b\r\nCookie: a=1\r\nCookie: b=2\r\nX-Secret: s\r\n"
                               b"Connection: close, X-Secret\r\nContent-Length: 2\r\n\r\n{}")
            assert _read_all(connection).startswith(b"HTTP/1.1 200 ")
    # a Cookie's pairs joined as one Cookie writes them; a field the Connection header names stays with the hop
    assert received == [(arrives, ["a, b"]), {"Cookie": ["a=1; b=2"], "X-Secret": None}]


def test_an_http_1_0_app_gets_an_answer_of_no_length_unchunked_and_then_the_end_of_the_connection(echo_upstream,
                                                                                                   tmp_path):
    url, received = echo_upstream
    with ProxyServer(Proxy(url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
            connection.sendall(b"POST /old HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}")
            head, _, body = _read_all(connection).partition(b"\r\n\r\n")  # ends: the proxy closed it
    assert head.startswith(b"HTTP/1.1 200 ") and b"\r\nConnection: close" in head and b"chunked" not in head.lower()
    assert body == b'{"ok": 1}'
    assert received == [("/old", None), {"Cookie": None, "X-Secret": None}]


def test_a_body_nested_past_what_is_decoded_goes_upstream_and_is_recorded_as_text(echo_upstream, tmp_path, capfd):
    url, received = echo_upstream
    deep = b'{"Payload": {"CallbackUrl": "http://app.example/cb", "x": ' + b"[" * 100_000 + b"}}"
    shallow = b'{"Payload": {"x": ' + b"[" * 254 + b"]" * 254 + b"}}"  # 256 levels: as deep as is decoded
    with ProxyServer(Proxy(url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        for body in (deep, shallow):
            answer = requests.post(f"{proxy.url}/deep", data=body, headers={"Content-Type": "application/json"},
                                   timeout=10)
            assert answer.json() == {"ok": 1}
    from ivh_mock.proxy.recorder import ordered_records

    # in the order the requests were sent: each record is written once its answer has gone, and the deep one's
    # recording took long enough, once in a fresh clone's run, for the second's to be written first
    records = list(ordered_records(tmp_path))
    assert [record["request"]["body_format"] for record in records] == ["text", "json"]
    assert records[0]["request"]["body"].startswith('{"Payload": {"CallbackUrl": "http://app.example/cb", "x": [[[')
    assert [target for target, _ in received[::2]] == ["/deep", "/deep"] and "Traceback" not in capfd.readouterr().err


def test_a_body_holding_a_lone_surrogate_escape_is_recorded(echo_upstream, tmp_path, capfd):
    """JSON's \\udfff escape decodes to a string no UTF-8 can hold: the record's line could not be written, and the
    exchange went unrecorded with a traceback."""
    url, _ = echo_upstream
    with ProxyServer(Proxy(url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        answer = requests.post(f"{proxy.url}/lone", data=b'{"Payload": {"TaskId": "\\udfff", "\\ud800": 1}}',
                               headers={"Content-Type": "application/json"}, timeout=10)
        assert answer.json() == {"ok": 1}
    (record,) = read_records(tmp_path)
    assert record["request"]["body"]["Payload"] == {"TaskId": "\udfff", "\ud800": 1}
    # with --callback-relay, the substituted body could not be written: the app's connection closed unanswered
    relay = Proxy(url, Recorder(tmp_path / "relay"), callback_relay=True, public_url="http://proxy.example",
                  warn=lambda text: None)
    with ProxyServer(relay, port=0) as proxy:
        answer = requests.post(f"{proxy.url}{PATHS['phototovideonotrain']}", timeout=10,
                               data=b'{"Payload": {"CallbackUrl": "http://app.example/cb", "InputSsml": "\\udfff"}}',
                               headers={"Content-Type": "application/json"})
        assert answer.json() == {"ok": 1}
    (record,) = read_records(tmp_path / "relay")
    assert record["request"]["body"]["Payload"]["InputSsml"] == "\udfff"
    assert "Traceback" not in capfd.readouterr().err


def test_a_number_no_double_holds_is_recorded_as_sent_and_every_line_stays_strict_json(echo_upstream, tmp_path,
                                                                                       capfd):
    """json reads 1e400 as infinite and NaN as NaN, and wrote them back as Infinity and NaN, which strict JSON readers
    refuse; a timestamp past a double's range ended the record in an OverflowError."""
    url, _ = echo_upstream
    huge = "9" * 400
    with ProxyServer(Proxy(url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        for body in (b'{"Payload": {"Progress": 1e400}}', b'{"Payload": {"Progress": NaN, "sig": "S1", "x": '
                     b'"said {\\"access_token\\": \\"S2\\"}", "tokens": ["S3"]}}'):
            answer = requests.post(f"{proxy.url}/inf?appkey=a&timestamp={huge}", data=body,
                                   headers={"Content-Type": "application/json"}, timeout=10)
            assert answer.json() == {"ok": 1}
    lines = [line for path in sorted(tmp_path.glob("*.jsonl")) for line in path.read_text().splitlines()]
    records = [json.loads(line, parse_constant=lambda name: pytest.fail(f"{name} in {line}")) for line in lines]
    # written as text from the decoded body, redacted as JSON is (recorded as the text it came as, it kept secrets
    # that text redaction missed)
    assert [(record["request"]["body_format"], record["request"]["body"]) for record in records] == [
        ("text", '{"Payload": {"Progress": Infinity}}'),
        ("text", '{"Payload": {"Progress": NaN, "sig": "[redacted]", '
                 '"x": "said {\\"access_token\\": \\"[redacted]\\"}", "tokens": "[redacted]"}}')]
    assert all(record["request"]["signals"] == {} for record in records)  # no skew from a timestamp that is none
    from ivh_mock.proxy.forward import _signals

    for stamp in ("1e300", "1_700_000_000", "\u0661\u0667" * 5, "9" * 20):  # taken by int(), or a 309-digit skew
        assert _signals("", [("timestamp", stamp)], 1.7e9) == {}, stamp
    assert _signals("", [("timestamp", "1700000010")], 1.7e9) == {"timestamp_skew_seconds": 10}
    assert "Traceback" not in capfd.readouterr().err


def test_a_header_requests_will_not_send_gets_a_400_and_is_recorded(tmp_path, capfd):
    with ProxyServer(Proxy("http://127.0.0.1:9", Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
            connection.sendall(REQUEST_HEAD + b"X-Api-Key: \xa0SECRET1\r\nConnection: close\r\nContent-Length: 2"
                               b"\r\n\r\n{}")
            head, _, body = _read_all(connection).partition(b"\r\n\r\n")
    message = json.loads(body)["error"]["message"]
    assert head.startswith(b"HTTP/1.1 400 ") and "a header cannot be forwarded: 'X-Api-Key'" in message
    (record,) = read_records(tmp_path)
    assert record["error"].startswith("InvalidHeader") and "Traceback" not in capfd.readouterr().err
    # requests' own message quoted the value, and a key pasted with a no-break space before it was recorded whole
    assert "SECRET1" not in message and "SECRET1" not in json.dumps(record)


def test_a_refusal_of_a_head_request_has_no_body(tmp_path):
    with ProxyServer(Proxy("http://127.0.0.1:9", Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
            connection.sendall(b"HEAD / HTTP/1.1\r\nHost: proxy\r\nContent-Length: abc\r\n\r\n")
            head, _, body = _read_all(connection).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ") and b"\r\nContent-Length: " in head and body == b""


def test_an_app_that_hangs_up_mid_request_is_no_error_and_nothing_goes_upstream(tmp_path, capfd):
    with ProxyServer(Proxy("http://127.0.0.1:9", Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        before = threading.active_count()
        for sent in (REQUEST_HEAD + b"Content-Length: 10\r\n\r\n{}",  # a body cut short
                     REQUEST_HEAD + b"Transfer-Encoding: chunked\r\n\r\n5\r\n{}"):  # a chunk cut short
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
                connection.sendall(sent)
                connection.shutdown(socket.SHUT_WR)
                assert _read_all(connection) == b""  # no answer: there is nobody to read it
        for sent in (REQUEST_HEAD, REQUEST_HEAD + b"Content-Length: abc\r\n\r\n"):  # reset mid-headers, or at once
            connection = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            connection.sendall(sent)
            time.sleep(0.05)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
            connection.close()
        until_threads_end(before)
    assert list(read_records(tmp_path)) == []
    assert "Traceback" not in capfd.readouterr().err


def test_an_answer_cut_short_closes_its_connection():
    class Handler:
        close_connection = False

        class wfile:
            @staticmethod
            def write(data):
                raise TimeoutError("the app took nothing for the idle timeout")

    handler = Handler()
    responder = _Responder(handler)
    with pytest.raises(TimeoutError):
        responder.write(b"part of an answer")
    assert handler.close_connection is True and responder.app_gone is True  # the app's doing, not the upstream's


def test_a_multipart_upload_goes_upstream_and_is_recorded(tmp_path):
    """Every multipart request (an upload to the mock's asset host, as the README shows it) was refused 400 "a header
    line is not 'name: value'" and never sent on: the email package's parser, reading the head alone, notes that a
    multipart Content-Type has no body to find its boundary in."""
    with MockServer() as mock:
        with ProxyServer(Proxy(mock.base_url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            answer = requests.post(f"http://127.0.0.1:{proxy.port}/__mock__/assets", timeout=10,
                                   files={"file": ("x.txt", b"not media")})
            assert answer.status_code == 201, answer.text
            assert requests.get(answer.json()["Url"].replace(mock.base_url, f"http://127.0.0.1:{proxy.port}"),
                                timeout=10).content == b"not media"
    first = next(iter(read_records(tmp_path)))
    assert first["request"]["path"] == "/__mock__/assets" and first["response"]["status"] == 201, first


def test_an_answer_the_app_left_is_recorded_whole_with_its_task(tmp_path):
    """An app that sent a submission and hung up before its answer: the upstream accepted (and billed) the task, but
    the record kept only the answer's status and headers, under an error, so drift could not follow the task and
    replay answered it 502. The upstream's answer is recorded whole now, with a note that the app left."""
    from ivh_mock.proxy.forward import APP_GONE

    with MockServer({"queue_seconds": 0.1}) as mock:
        with ProxyServer(Proxy(mock.base_url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            body = json.dumps({"Header": {}, "Payload": {
                "RefPhotoUrl": f"{mock.base_url}/__mock__/assets/samples/photo.jpg", "DriverType": "Text",
                "InputSsml": "hello there", "SpeechParam": {"TimbreKey": "female_1", "Speed": 1.0}}}).encode()
            query = signed_query("left", "mock-accesstoken", int(mock.now()))
            connection = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
            connection.sendall(f"POST {PATHS['phototovideonotrain']}?{query} HTTP/1.1\r\nHost: x\r\n"
                               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                               + body)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with RST
            connection.close()
            until(lambda: list(read_records(tmp_path)))
        [task] = mock.tasks()
    [record] = read_records(tmp_path)
    assert record["app_left"].startswith(APP_GONE) and "error" not in record, record
    assert record["response"]["status"] == 200 and record["response"]["body"]["Payload"]["TaskId"] == task["task_id"]


def until_threads_end(count: int) -> None:
    deadline = time.monotonic() + 5
    while threading.active_count() > count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert threading.active_count() <= count


def test_a_connection_that_sends_nothing_or_stops_mid_request_is_closed_and_its_thread_ends(tmp_path):
    with ProxyServer(Proxy("http://127.0.0.1:9", Recorder(tmp_path), connect_timeout=2, warn=lambda text: None),
                     port=0, idle_seconds=0.3) as proxy:
        before = threading.active_count()
        sockets = [socket.create_connection(("127.0.0.1", proxy.port), timeout=10) for _ in range(3)]
        sockets[1].sendall(REQUEST_HEAD)  # headers that never end
        sockets[2].sendall(REQUEST_HEAD + b"Content-Length: 10\r\n\r\n{}")  # a body that never ends
        for connection in sockets:
            assert _read_all(connection) == b""  # closed by the proxy, without an answer
            connection.close()
        until_threads_end(before)
    assert list(read_records(tmp_path)) == []  # nothing was forwarded


def _read_all(connection: socket.socket) -> bytes:
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    return data


def test_recordings_rotate_and_stay_within_their_bound(tmp_path):
    recorder = Recorder(tmp_path / "r", per="run", max_file_bytes=2048, max_total_bytes=8192)
    for number in range(200):
        recorder.write({"kind": "exchange", "t": float(number), "request": {}, "padding": "x" * 100})
    files = recording_files(tmp_path / "r")
    assert len(files) >= 3
    assert all(path.stat().st_size <= 2048 for path in files)
    assert sum(path.stat().st_size for path in files) <= 8192
    kept = [record["t"] for record in read_records(tmp_path / "r")]
    assert kept == sorted(kept) and kept[-1] == 199.0  # the oldest went, the newest stayed


# -- the mock as upstream -----------------------------------------------------------------------------------------
# Small real values keep the test to seconds; long enough that poll spacing on a busy machine stays within 10 %.
TIMING = {"queue_seconds": 1.0, "render_speed": 0.4, "render_startup_seconds": 0.5}


REPLAYED = {**TEXT, "InputSsml": "one two three four five"}  # its RefPhotoUrl: the mock's sample


def _submitted_through(proxy, mock) -> tuple[str, dict]:
    """The TaskId and payload of a submission sent through `proxy` to `mock` (REPLAYED, its photo the mock's
    sample)."""
    payload = {**REPLAYED, "RefPhotoUrl": mock.sample("photo.jpg")}
    return _post(proxy.url, "phototovideonotrain", {"Header": {}, "Payload": payload},
                 now=mock.now()).json()["Payload"]["TaskId"], payload


def _poll_until_done(base, task_ids, now):
    finished = set()
    deadline = time.monotonic() + 30
    while finished != set(task_ids) and time.monotonic() < deadline:
        for task_id in set(task_ids) - finished:
            answer = _post(base, "getprogress", {"Header": {}, "Payload": {"TaskId": task_id}}, now=now())
            if answer.json()["Payload"].get("Status") in ("SUCCESS", "FAIL"):
                finished.add(task_id)
        time.sleep(0.02)
    assert finished == set(task_ids)


@pytest.mark.slow
def test_calibration_recovers_the_mocks_own_pace_and_serve_reads_it(tmp_path):
    record = tmp_path / "rec"
    with MockServer(TIMING, clock=VirtualClock(frozen=False)) as mock:
        with ProxyServer(Proxy(mock.base_url, Recorder(record)), port=0) as proxy:
            photo = mock.sample("photo.jpg")
            task_ids = []
            for words in (5, 25):  # 2 s and 10 s of speech: render 1.3 s and 4.5 s
                text = " ".join(["word"] * words)
                answer = _post(proxy.url, "phototovideonotrain", {"Header": {}, "Payload": {
                    **TEXT, "RefPhotoUrl": photo, "InputSsml": text}}, now=mock.now())
                task_ids.append(answer.json()["Payload"]["TaskId"])
            _poll_until_done(proxy.url, task_ids, mock.now)

    status, out = _drift(record)
    assert status == 0, out
    pace = json.loads((record / "pace.json").read_text())
    assert pace["queue_seconds"] == pytest.approx(TIMING["queue_seconds"], rel=0.1)
    assert pace["render_speed"] == pytest.approx(TIMING["render_speed"], rel=0.1)
    assert "--queue-seconds" in out and "--render-speed" in out
    report = json.loads((record / drift.JSON_NAME).read_text())
    assert report["findings"] == [] and report["pace"]["tasks"] == 2
    assert any(a["decision"] == "D32" and "moves" in a["answer"] for a in report["answers"])

    timing = cli.timing_of(cli.build_parser().parse_args(["serve", "--pace", str(record / "pace.json"),
                                                          "--render-startup", "7"]))
    assert timing == {"queue_seconds": pace["queue_seconds"], "render_speed": pace["render_speed"],
                      "render_startup_seconds": 7.0}


def test_calibration_leaves_out_a_task_polled_while_the_mocks_clock_was_moved_through_the_proxy(tmp_path):
    """The contract suite run through a proxy in front of a mock moves the mock's clock by hours between polls: its
    tasks had made the pace `--queue-seconds 0.015 --render-speed 0`, with no warning, over the app's own tasks. Those
    are left out now and drift says so; a recording that saw the mock's clock says it was a mock."""
    from ivh_mock.proxy import report as proxy_report
    from ivh_mock.proxy.recorder import ordered_records

    record = tmp_path / "rec"
    with MockServer(TIMING, clock=VirtualClock(frozen=False)) as mock:
        with ProxyServer(Proxy(mock.base_url, Recorder(record), warn=lambda text: None), port=0) as proxy:
            polled, _ = _submitted_through(proxy, mock)
            _poll_until_done(proxy.url, [polled], mock.now)  # the app's own: polled as time goes
            steered, _ = _submitted_through(proxy, mock)
            assert requests.post(f"{proxy.url}/__mock__/clock", json={"advance": 3600}, timeout=10).ok
            _poll_until_done(proxy.url, [steered], mock.now)  # done at its first poll, an hour on

    status, out = _drift(record)
    assert status == 0, out
    report = json.loads((record / drift.JSON_NAME).read_text())
    assert report["pace"]["tasks"] == 1 and report["is_mock"] is True, (report["pace"], report["is_mock"], out)
    assert report["pace"]["queue_seconds"] == pytest.approx(TIMING["queue_seconds"], rel=0.2)
    said = "1 task(s) left out, polled while the mock's clock was moved or reset through the proxy"
    assert report["pace"]["left_out"] == said and f"pace: {said}" in out
    # the proxy records an exchange once its answer is sent, and the app may have moved the clock by then: a move
    # recorded as started before the steered submission's recorded end spoils its task all the same (it had been
    # measured, now and then, in loaded runs)
    records = list(ordered_records(record))
    [move] = [r for r in records if r["request"]["path"] == "/__mock__/clock"]
    [submission] = [r for r in records if r["operation"] == "phototovideonotrain"
                    and r["response"]["body"]["Payload"]["TaskId"] == steered]
    assert submission["elapsed_ms"] >= 1  # a submission through the proxy to a served mock takes milliseconds
    early = {**move, "t": submission["t"] + 0.0005}
    raced = proxy_report.analyse([early if r is move else r for r in records])
    assert raced["pace"]["tasks"] == 1 and raced["pace"]["left_out"] == said, raced["pace"]
    # the same traffic without the control API's exchanges: nothing says whether the upstream was a mock
    unsteered = [r for r in ordered_records(record) if not r["request"]["path"].startswith("/__mock__/")]
    alone = proxy_report.analyse(unsteered, ordered=True)
    assert alone["is_mock"] is None and "not known to be a mock" in drift.markdown(alone)
    # merged with a mock's suite report: the recording may be the live API's
    assert drift.merge([alone, drift.new_report("suite", is_mock=True)])["is_mock"] is None
    assert drift.merge([report, drift.new_report("suite", is_mock=True)])["is_mock"] is True
    # every task it had finished polled across a move: no pace, said (it had said nothing of the pace at all)
    [move] = [r for r in ordered_records(record) if r["request"]["path"] == "/__mock__/clock"]
    polls = [r["t"] for r in ordered_records(record) if r["operation"] == "getprogress"]
    none = proxy_report.analyse([*ordered_records(record), *({**move, "t": at} for at in polls)])  # a move each
    said = "2 task(s) left out, polled while the mock's clock was moved or reset through the proxy"
    assert none["pace"] is None and none["pace_note"] == said
    assert f"None measured: {said}." in drift.markdown(none)
    # a gateway that answers any path 200 says nothing of a mock, nor of a clock moved
    gateway = [{**r, "response": {**r["response"], "body": "ok"}} if r["request"]["path"].startswith("/__mock__/")
               else r for r in ordered_records(record)]
    assert proxy_report.analyse(gateway)["is_mock"] is None


def test_calibration_leaves_out_a_task_whose_duration_no_video_has():
    """Two finished tasks with a Duration of 10**300 and 10**299 ms (JSON integers a strict reader takes) ended drift
    in an OverflowError traceback, exit 1, nothing written."""
    from ivh_mock.proxy import calibrate
    from ivh_mock.proxy.checks import TaskTrail

    def trail(duration: int, render: float) -> TaskTrail:
        return TaskTrail("t", submitted_at=0.0, seen=[(1.0, "COMMIT", 0, 0, 0, ""), (3.0, "MAKING", 10, 0, 0, ""),
                                                      (3.0 + render, "SUCCESS", 100, 0, duration, "u")])

    assert calibrate.measure([trail(10**300, 5), trail(10**299, 4)]) is None
    pace = calibrate.measure([trail(10**300, 5), trail(4000, 8), trail(8000, 16)])
    assert pace["tasks"] == 2 and pace["render_speed"] == pytest.approx(1.0)  # changes at the polls' midpoints
    # a longer video made sooner (live render times are noisy): no speed, one start-up for all, a pace serve takes
    # (it had been --render-speed -0.1495, which serve refused)
    faster = calibrate.measure([trail(10_000, 3.0), trail(20_000, 1.5)])
    assert faster["render_speed"] == 0.0 and faster["render_startup_seconds"] == pytest.approx((2.5 + 1.75) / 2)
    assert cli.timing_of(cli.build_parser().parse_args(
        ["serve", "--render-speed", str(faster["render_speed"])]))["render_speed"] == 0.0


def test_a_pace_from_polls_as_far_apart_as_what_they_measure_comes_with_a_warning():
    """A client polling every 2 s (the client's first wait) on a queue of 1 s: drift printed a pace off by half or
    more (--render-speed 0.0043 for 0.2) as if it were measured. The same tasks polled every 0.25 s need none."""
    from ivh_mock.proxy import calibrate
    from ivh_mock.proxy.checks import TaskTrail

    def trail(video_seconds: float, every: float, queue: float = 1.0) -> TaskTrail:  # render 2 s + 0.2 s per second
        render, seen, at = 2.0 + 0.2 * video_seconds, [], 0.0
        while not seen or seen[-1][1] != "SUCCESS":
            at += every
            status = "COMMIT" if at < queue else "MAKING" if at < queue + render else "SUCCESS"
            progress = {"COMMIT": 0, "SUCCESS": 100}.get(status) or min(99, int((at - queue) / render * 100))
            done = status == "SUCCESS"
            seen.append((at, status, progress, 0, int(video_seconds * 1000) if done else 0, "u" if done else ""))
        return TaskTrail("t", submitted_at=0.0, seen=seen)

    sparse = calibrate.measure([trail(5, 2.0), trail(20, 2.0)])
    assert sparse["poll_gap_median"] == 2.0 and "a median 2 s apart" in sparse["warning"]
    close = calibrate.measure([trail(5, 0.25), trail(20, 0.25)])
    assert close["warning"] is None and close["render_speed"] == pytest.approx(0.2, rel=0.05)
    no_queue = calibrate.measure([trail(5, 0.1, queue=0.0), trail(20, 0.1, queue=0.0)])  # nothing to measure
    assert no_queue["queue_seconds"] < 0.1 and no_queue["warning"] is None  # 0.1 s apart: close enough


def test_a_bad_pace_file_stops_the_start_with_a_message(tmp_path, capsys):
    bad = tmp_path / "pace.json"
    bad.write_text('{"queue_seconds": "soon"}')
    assert cli.main(["serve", "--pace", str(bad), "--data-dir", str(tmp_path)]) == 2
    # the file is named: a pace file's values had been refused without saying where they came from
    assert capsys.readouterr().err.startswith(f"ivh-mock: --pace {bad}: pace field queue_seconds must be a number")
    bad.write_text('{"queue_secs": 1}')
    assert cli.main(["serve", "--pace", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert "queue_secs unknown" in capsys.readouterr().err
    assert cli.main(["serve", "--pace", str(tmp_path / "missing.json"), "--data-dir", str(tmp_path)]) == 2
    assert "neither a preset (fast, live) nor a pace file (no such file)" in capsys.readouterr().err
    bad.write_text("queue_seconds: 1\nqueue_seconds: [\n")  # PyYAML's error quotes the line over four
    assert cli.main(["serve", "--pace", str(bad), "--data-dir", str(tmp_path)]) == 2
    said = capsys.readouterr().err
    assert said.startswith(f"ivh-mock: --pace {bad}: not JSON or YAML: ") and said.count("\n") == 1, said
    assert "(line 3, column 1)" in said, said
    bad.write_text('{"queue_seconds": 1, "queue_seconds": 2}')  # the last had won, where the accounts file refuses it
    assert cli.main(["serve", "--pace", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"ivh-mock: --pace {bad}: the key 'queue_seconds' is given twice (line 1, "
                                       f"column 22)\n")
    bad.write_bytes(b'{"queue_seconds": 1, "note": "\xe9t\xe9"}')  # Latin-1, as an editor may save it
    assert cli.main(["serve", "--pace", str(bad), "--data-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"ivh-mock: --pace {bad}: not UTF-8 text, as JSON and YAML are\n"


def test_replay_refuses_a_directory_it_cannot_replay(tmp_path, capsys):
    from ivh_mock.mock_server import Config

    (tmp_path / "empty").mkdir()
    with pytest.raises(OSError, match="no recorded exchange in it to replay"):
        cli._replaying(Config(), str(tmp_path / "empty"))  # else it would serve, replaying nothing
    Recorder(tmp_path / "latin").write({"kind": "exchange", "t": 1.0})
    recording_files(tmp_path / "latin")[0].write_bytes(b'{"kind": "exchange", "note": "\xe9t\xe9"}\n')  # not UTF-8
    assert cli.main(["serve", "--replay", str(tmp_path / "latin"), "--data-dir", str(tmp_path / "d"),
                     "--port", "0"]) == 2
    assert capsys.readouterr().err == (f"ivh-mock: --replay {tmp_path / 'latin'}: no recorded exchange in it to "
                                       f"replay (ivh-mock proxy --record writes ivh-proxy-*.jsonl)\n")
    with pytest.raises(OSError, match="^not a directory of recordings, nor a regular file$"):  # had been said as
        cli._replaying(Config(), "/dev/zero")  # "[Errno 20] Not a directory: '/dev/zero'"


# -- what drift is given ------------------------------------------------------------------------------------------

def _recording(directory):
    """A recording of one conforming exchange."""
    Recorder(directory).write({"kind": "exchange", "t": 1.0, "time": "2026-01-01T00:00:00Z",
                               "operation": "describetimbre", "request": {"method": "POST"},
                               "response": {"status": 200, "body": {"Header": {"Code": 0}}}, "findings": []})
    return directory


def _drift_refusal(capsys, *args):
    status, out = _drift(*args)
    error = capsys.readouterr().err
    assert status == 2 and out == "" and error.count("\n") == 1 and error.startswith("ivh-mock drift: ")
    return error


@pytest.mark.parametrize("given", ["empty", "other", "file", "missing", "lines", "lines.jsonl"])
def test_drift_of_a_path_without_recordings_fails_and_writes_nothing(given, tmp_path, capsys):
    """A job pointed at the wrong path must not pass as traffic that conforms, nor leave reports there."""
    (tmp_path / "empty").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.jsonl").write_text('{"kind": "exchange"}\n')  # not named as a recording
    (tmp_path / "lines").mkdir()  # named as one, but JSON lines no proxy writes: it had passed as conforming traffic
    (tmp_path / "lines" / "ivh-proxy-20260101.jsonl").write_text('{"a": 1}\n{"kind": "exchange", "seq": 1}\n')
    (tmp_path / "lines.jsonl").write_text('{"a": 1}\n')
    (tmp_path / "file").write_text("root:x:0:0:root:/root:/bin/sh\n")
    before = sorted(tmp_path.rglob("*"))
    error = _drift_refusal(capsys, tmp_path / given)
    assert f"no recordings at {tmp_path / given}: " in error and "ivh-mock proxy --record" in error
    assert "ivh-proxy-*.jsonl" in error
    assert sorted(tmp_path.rglob("*")) == before
    assert _drift(_recording(tmp_path / "rec"))[0] == 0  # one recorded exchange is enough


@pytest.mark.parametrize("edit", [
    lambda record: record["request"].update(signals={"timestamp_skew_seconds": "abc"}),
    lambda record: record["response"].update(status=[401], body={"Header": {"Code": 100005}}),
    lambda record: (record["response"].update(body={"Header": {"Code": [1]}}),
                    record["request"].update(signals={"timestamp_skew_seconds": 9999})),
    lambda record: record.update(findings=[{"kind": "x", "subject": "y", "operation": ["z"]}]),
    # each had been read as an exchange that conforms, its stored findings taken as they were
    lambda record: record["response"].update(status="abc"),
    lambda record: record["response"].update(status=True),
    lambda record: record["response"].update(headers=5),
    lambda record: record["request"].update(method=5),
], ids=["skew-not-a-number", "status-a-list", "code-a-list", "operation-a-list", "status-a-text", "status-true",
        "headers-a-number", "method-a-number"])
def test_drift_of_a_record_edited_by_hand_is_one_line_and_writes_nothing(edit, tmp_path, capsys):
    """A record whose fields are not as the proxy writes them had ended drift in a traceback, exit 1 (drift
    found)."""
    record = {"kind": "exchange", "t": 1.0, "time": "2026-01-01T00:00:00Z", "operation": "getprogress",
              "request": {"method": "POST"}, "response": {"status": 200, "body": {"Header": {"Code": 0}}},
              "findings": []}
    edit(record)
    recording = tmp_path / "rec"
    Recorder(recording).write(record)
    (recording / "ivh-proxy-20260101.jsonl").open("a").write("[" * 100_000 + "\n")  # a line no proxy wrote: skipped
    before = sorted(tmp_path.rglob("*"))
    assert "is not as `ivh-mock proxy` writes it" in _drift_refusal(capsys, recording)
    assert sorted(tmp_path.rglob("*")) == before


def test_a_line_longer_than_any_record_is_skipped_without_being_held(tmp_path, monkeypatch):
    """A line of 100 MB had taken drift, and a replay's start, to 354 MB of memory before it was skipped."""
    import tracemalloc

    from ivh_mock.proxy import recorder

    monkeypatch.setattr(recorder, "LINE_BYTES", 1_048_576)  # (16 MiB: a record is far shorter)
    recording = tmp_path / "rec"
    recording.mkdir()
    with (recording / "ivh-proxy-20251231.jsonl").open("wb") as handle:
        handle.write(b'{"x": "' + b"a" * 24 * 1_048_576 + b'"}\n')
    _recording(recording)
    tracemalloc.start()
    try:
        skipped: list[int] = []
        records = list(recorder.ordered_records(recording, skipped))
        replayed = list(recorder.read_records(recording))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert [record["operation"] for record in records + replayed] == ["describetimbre"] * 2 and skipped == [1]
    assert peak < 8 * 1_048_576, peak  # a few times the bound, never the line's 24 MB
    status, out = _drift(recording)
    assert status == 0 and "1 line(s) skipped" in (recording / "drift-report.md").read_text()


def test_drift_skips_a_line_nested_deeper_than_any_record_as_it_skips_any_line_no_proxy_wrote(tmp_path):
    recording = _recording(tmp_path / "rec")  # a RecursionError had ended drift in a traceback
    (recording / "ivh-proxy-20260101.jsonl").open("a").write("[" * 100_000 + "\n")
    assert _drift(recording)[0] == 0


def test_drift_refuses_a_suite_reports_pace_it_could_not_write_before_writing_anything(tmp_path, capsys):
    record = _recording(tmp_path / "rec")
    for pace in ({"queue_seconds": "x"}, {"queue_seconds": -5, "render_speed": 1, "render_startup_seconds": 1}):
        (tmp_path / "suite.json").write_text(json.dumps({"target": "t", "is_mock": True, "probes": [], "pace": pace}))
        before = sorted(tmp_path.rglob("*"))
        error = _drift_refusal(capsys, record, "--suite-report", tmp_path / "suite.json")
        assert "its pace needs queue_seconds, render_speed, render_startup_seconds" in error
        assert sorted(tmp_path.rglob("*")) == before  # a KeyError had come after the reports were written


def test_drift_names_a_suite_report_or_recording_it_cannot_read(tmp_path, capsys):
    record = _recording(tmp_path / "rec")
    (tmp_path / "latin.json").write_bytes(b'{"target": "caf\xe9"}')
    (tmp_path / "text.json").write_text("probes: all fine")
    (tmp_path / "list.json").write_text("[]")
    for given, says in [(tmp_path / "missing.json", "cannot read it: No such file or directory"),
                        (tmp_path, "cannot read it: Is a directory"),
                        (tmp_path / "latin.json", "not UTF-8 text, as a drift-report.json is"),
                        (tmp_path / "text.json", "not JSON: Expecting value"),
                        (tmp_path / "list.json", "not a drift report")]:
        assert f"--suite-report {given}: {says}" in _drift_refusal(capsys, record, "--suite-report", given)
    assert sorted(path.name for path in record.iterdir()) == [path.name for path in recording_files(record)]
    (tmp_path / "bare.json").write_text('{"target": "t", "is_mock": false, "probes": [], '
                                        '"findings": [{"kind": "k", "detail": "d", "count": 1, "first_seen": "a", '
                                        '"last_seen": "b"}], "answers": [{"decision": "D1", "question": "q", '
                                        '"answer": "a"}]}')  # what merging reads; no subject, no count of answers
    status, out = _drift(record, "--suite-report", tmp_path / "bare.json")
    assert status == 1 and "  k: d (1x, first a, last b)" in out  # its finding counts; it was a KeyError
    (tmp_path / "target.json").write_text('{"target": 5, "is_mock": true, "probes": []}')
    assert "not a drift report (the contract suite's drift-report.json): target: 5 is not of type 'string'" in \
        _drift_refusal(capsys, record, "--suite-report", tmp_path / "target.json")
    (tmp_path / "other.json").write_text('{"a": 1}')  # JSON, but no report: it had merged as one of nothing
    assert "not a drift report (the contract suite's drift-report.json): 'target' is a required property" in \
        _drift_refusal(capsys, record, "--suite-report", tmp_path / "other.json")
    (tmp_path / "wrong.json").write_text('{"target": "t", "is_mock": true, "probes": [], '
                                         '"findings": [{"kind": "x", "count": "many"}]}')
    assert "not a drift report (the contract suite's drift-report.json): findings/0: 'detail' is a required " \
           "property" in _drift_refusal(capsys, record, "--suite-report", tmp_path / "wrong.json")
    recording = recording_files(record)[0]
    recording.write_bytes(recording.read_bytes() + b'{"kind": "exchange", "note": "\xe9t"}\n')  # cut mid-character
    status, out = _drift(record)
    assert status in (0, 1) and "report: " in out  # the cut line is skipped, as any line cut short is


def test_drift_names_where_it_cannot_write(tmp_path, capsys, monkeypatch):
    record = _recording(tmp_path / "rec")
    (tmp_path / "file").write_text("")
    error = _drift_refusal(capsys, record, "--out", tmp_path / "file")
    assert f"cannot write the report into {tmp_path / 'file'} (--out): it is a file, not a directory" in error
    error = _drift_refusal(capsys, record, "--out", tmp_path / "file" / "below")
    assert f"cannot write the report into {tmp_path / 'file' / 'below'} (--out): Not a directory" in error
    pace = {"queue_seconds": 1.0, "render_speed": 0.2, "render_startup_seconds": 2.0, "tasks": 1}
    # as if a task had been followed
    monkeypatch.setattr(drift_report.calibrate, "measured", lambda trails, **_: (pace, None))
    status, out = _drift(record, "--out", tmp_path / "out", "--pace-file", tmp_path / "file" / "pace.json")
    assert status == 2 and out == ""  # it had said "no findings: everything seen conforms", then refused
    error = capsys.readouterr().err
    assert error == f"ivh-mock drift: cannot write the pace to {tmp_path / 'file' / 'pace.json'} (--pace-file): " \
                    "it is a file, not a directory\n"
    assert not (tmp_path / "out").exists()  # the report written before it was taken back, and its folder: a failed
    # run leaves nothing; and a folder the pace file names is made, as --out's is
    status, out = _drift(record, "--out", tmp_path / "out", "--pace-file", tmp_path / "new" / "deeper" / "pace.json")
    assert status in (0, 1) and json.loads((tmp_path / "new" / "deeper" / "pace.json").read_text()) == {
        key: pace[key] for key in ("queue_seconds", "render_speed", "render_startup_seconds")}


def test_a_pace_file_named_as_one_of_drifts_own_inputs_or_reports_is_refused_and_nothing_is_written(
        tmp_path, capsys, monkeypatch):
    """`--pace-file` named as the recording drift read had replaced it with the pace (exit 0, "written to ..."), and
    named as the report, the report; the next drift then found no recording at all."""
    record = _recording(tmp_path / "rec")
    recording = recording_files(record)[0]
    before = recording.read_bytes()
    (tmp_path / "suite.json").write_text(json.dumps({"target": "t", "is_mock": True, "probes": []}))
    pace = {"queue_seconds": 1.0, "render_speed": 0.2, "render_startup_seconds": 2.0, "tasks": 1}
    # as if a task had been followed
    monkeypatch.setattr(drift_report.calibrate, "measured", lambda trails, **_: (pace, None))
    for named, what in ((recording, "a recording it reads"), (record / ".." / "rec" / recording.name, "a recording"),
                        (tmp_path / "suite.json", "a suite report it reads"),
                        (record / drift.JSON_NAME, "the report it writes"),
                        (record / drift.MARKDOWN_NAME, "the report it writes")):
        error = _drift_refusal(capsys, record, "--suite-report", tmp_path / "suite.json", "--pace-file", named)
        assert f"--pace-file {named} is {what}" in error
    assert recording.read_bytes() == before and not (record / drift.JSON_NAME).exists()
    assert json.loads((tmp_path / "suite.json").read_text())["target"] == "t"
    status, out = _drift(recording, "--pace-file", recording)  # one file given as the recording
    assert status == 2 and recording.read_bytes() == before


def test_replay_reproduces_a_recorded_trajectory_offline(tmp_path, capsys):
    record = tmp_path / "rec"
    with MockServer(TIMING, clock=VirtualClock(frozen=False)) as mock:
        with ProxyServer(Proxy(mock.base_url, Recorder(record), warn=lambda text: None), port=0) as proxy:
            task_id, payload = _submitted_through(proxy, mock)
            _poll_until_done(proxy.url, [task_id], mock.now)
    index = ReplayIndex.from_dir(record)
    recorded = index.trajectories[task_id]
    assert [r.body["Payload"]["Status"] for _, r in recorded][-1] == "SUCCESS"

    # offline: a fresh mock on a frozen clock, the recording replayed on top; no signature is matched
    with MockServer() as offline:
        offline.app.wsgi_app = ReplayMiddleware(offline.app.wsgi_app, index, offline.clock.now)
        submitted = _post(offline.base_url, "phototovideonotrain", {"Header": {"RequestID": "other"},
                                                                    "Payload": payload},
                          appkey="someone-else", now=offline.now())
        assert submitted.json()["Payload"]["TaskId"] == task_id
        assert submitted.headers["X-Ivh-Replayed"] == "true"
        start = offline.now()
        replayed = []
        for offset, _ in recorded:
            offline.clock.set(start + offset)
            replayed.append(_post(offline.base_url, "getprogress", {"Header": {}, "Payload": {"TaskId": task_id}},
                                  now=offline.now()).json())
        assert replayed == [response.body for _, response in recorded]
        # what the recording does not hold goes to the mock underneath
        unknown = _post(offline.base_url, "getprogress", {"Header": {}, "Payload": {"TaskId": "0" * 32}},
                        now=offline.now())
        assert unknown.json()["Header"]["Code"] == 110006 and "X-Ivh-Replayed" not in unknown.headers
        query = signed_query("my-app", TOKEN, int(offline.now()))  # NOW may be minutes old by now: past the window
        deep = requests.post(f"{offline.base_url}{PATHS['getprogress']}?{query}",
                             data=b"[" * 100_000, headers={"Content-Type": "application/json"}, timeout=10)
        assert (deep.status_code, deep.json()["Header"]["Code"]) == (200, 100003)  # the mock's own refusal
        assert "nests deeper than 32 levels" in deep.json()["Header"]["Message"]

    # what `ivh-mock serve --replay DIR` builds in each worker
    from ivh_mock.mock_server import Config

    served = cli._replaying(Config(), str(record))()
    try:
        query = signed_query("any", "wrong-token", 0)  # never matched, never checked
        answer = served.test_client().post(f"{PATHS['phototovideonotrain']}?{query}",
                                           json={"Header": {}, "Payload": payload})
        assert answer.get_json()["Payload"]["TaskId"] == task_id and answer.headers["X-Ivh-Replayed"] == "true"
    finally:
        served.extensions["ivh_mock_dispatcher"].stop()
    (one_file,) = recording_files(record)  # one recording file, as drift reads one: it had been "no such directory"
    served = cli._replaying(Config(), str(one_file))()
    try:
        answer = served.test_client().post(f"{PATHS['phototovideonotrain']}?{query}",
                                           json={"Header": {}, "Payload": payload})
        assert answer.get_json()["Payload"]["TaskId"] == task_id and answer.headers["X-Ivh-Replayed"] == "true"
    finally:
        served.extensions["ivh_mock_dispatcher"].stop()
    assert cli.main(["serve", "--replay", str(tmp_path / "none"), "--data-dir", str(tmp_path / "d"),
                     "--port", "0"]) == 2
    assert "--replay" in capsys.readouterr().err


def test_replay_passes_on_no_hop_by_hop_header_and_replays_a_poll_on_the_apis_path_alone():
    """A recorded `Upgrade: h2c` (an upstream offering HTTP/2) was replayed, and waitress refused the answer: a 500.
    And a poll was replayed on any path ending in /getprogress, where the mock answers 404 (100009)."""
    from wsgiref.util import is_hop_by_hop

    from ivh_mock.mock_server import MockServer
    from ivh_mock.proxy.replay import ReplayIndex, ReplayMiddleware

    submitted = {"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {"TaskId": TASK}}
    polled = {"Header": {"Code": 0, "Message": "", "RequestID": "r"},
              "Payload": {"Status": "COMMIT", "Progress": 0, "ArrayCount": 0, "Duration": 0, "MediaUrl": ""}}
    headers = [["Upgrade", "h2c"], ["Connection", "Upgrade"], ["Content-Type", "application/json"]]

    def record(t, operation, body, answer):
        return {"kind": "exchange", "t": t, "operation": operation,
                "request": {"method": "POST", "path": PATHS[operation], "body_format": "json", "body": body},
                "response": {"status": 200, "headers": headers, "body_format": "json", "body": answer}}

    index = ReplayIndex([record(1.0, "phototovideonotrain", {"Header": {}, "Payload": TEXT}, submitted),
                         record(2.0, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}}, polled)])
    with MockServer() as mock:
        mock.app.wsgi_app = ReplayMiddleware(mock.app.wsgi_app, index, mock.now)
        client = mock.app.test_client()
        answer = client.post(PATHS["phototovideonotrain"], json={"Header": {}, "Payload": TEXT})
        assert answer.headers["X-Ivh-Replayed"] == "true"
        assert not [name for name, _ in answer.headers if is_hop_by_hop(name)], answer.headers
        elsewhere = client.post("/zzz/getprogress", json={"Header": {}, "Payload": {"TaskId": TASK}})
        assert "X-Ivh-Replayed" not in elsewhere.headers and elsewhere.json["Header"]["Code"] == 100009


def test_replay_leaves_out_a_hand_edited_answer_it_cannot_send_and_says_so(tmp_path, capsys):
    """A recording edited by hand (a status "abc", a header of one item, a line break in a header, a lone surrogate
    in a body) answered every request that matched it with a 500 of the server's."""
    from ivh_mock.mock_server import Config, MockServer
    from ivh_mock.proxy.replay import ReplayMiddleware

    def record(t, status, headers, answer, payload):
        return {"kind": "exchange", "t": t, "operation": "phototovideonotrain",
                "request": {"method": "POST", "path": PATHS["phototovideonotrain"], "body_format": "json",
                            "body": {"Header": {}, "Payload": payload}},
                "response": {"status": status, "headers": headers, "body_format": "json", "body": answer}}

    answer = {"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {"TaskId": TASK}}
    local = {**TEXT, "RefPhotoUrl": "http://127.0.0.1:9/me.jpg"}  # what the mock underneath answers stays on loopback
    bad = [("abc", []), (True, []), (700, []), (200, [["X-One"]]), (200, [["X-Split", "a\r\nSet-Cookie: b"]]),
           (200, [["Bad Name", "v"]]), (200, [["X-Wide", "\u4e2d"]]), (200, {"X-A": "b"}),
           (100, []), (101, [])]  # a 1xx is no final answer (it had been sent as one, then the connection closed)
    recorder = Recorder(tmp_path / "edited")
    for n, (status, headers) in enumerate(bad):
        recorder.write(record(1.0 + n, status, headers, answer, {**local, "InputSsml": f"bad {n}"}))
    lone = {"Header": {"Code": 0, "Message": "\ud800", "RequestID": "r"}, "Payload": {"TaskId": TASK}}
    recorder.write(record(50.0, 200, [["X-Kept", "yes"], ["X-Ivh-Replayed", "false"]], lone, TEXT))
    load = cli._replaying(Config(), str(tmp_path / "edited"))
    error = capsys.readouterr().err
    assert f"{len(bad)} recorded exchange(s) cannot be answered again, the first: the exchange recorded at t=1.0: " \
           "its status 'abc' is not a number from 200 to 599" in error, error
    assert callable(load)
    from ivh_mock.proxy.replay import ReplayIndex

    index = ReplayIndex.from_dir(tmp_path / "edited")
    assert len(index.skipped) == len(bad) and "True" in index.skipped[1] and "'700'" in index.skipped[2]
    with MockServer() as mock:
        mock.app.wsgi_app = ReplayMiddleware(mock.app.wsgi_app, index, mock.now)
        client = mock.app.test_client()
        for n in range(len(bad)):  # not replayed: the mock itself answers
            answered = client.post(PATHS["phototovideonotrain"], json={"Header": {}, "Payload": {
                **local, "InputSsml": f"bad {n}"}})
            assert answered.status_code != 500 and "X-Ivh-Replayed" not in answered.headers, answered.data
            assert answered.json["Header"]["Code"] != 0
        replayed = client.post(PATHS["phototovideonotrain"], json={"Header": {}, "Payload": TEXT})
        assert replayed.status_code == 200 and replayed.headers["X-Kept"] == "yes"
        assert replayed.headers.getlist("X-Ivh-Replayed") == ["true"]  # its own, not beside a recorded one
        assert json.loads(replayed.data)["Header"]["Message"] == "\ud800"  # written as JSON's escape
    for status, headers in bad:
        Recorder(tmp_path / "all-bad").write(record(1.0, status, headers, answer, TEXT))
    with pytest.raises(OSError, match=rf"no recorded exchange in it to replay .*; {len(bad)} recorded exchange\(s\) "
                                      r"cannot"):
        cli._replaying(Config(), str(tmp_path / "all-bad"))


def test_replay_leaves_out_a_record_whose_method_or_path_is_no_text_and_orders_any_sequence_number():
    """A method or a path edited to null, or a sequence number to null, a text or a list beside another record of the
    same time, had ended `serve --replay`'s start in a traceback (AttributeError, TypeError), where drift says them."""
    from ivh_mock.proxy.replay import ReplayIndex

    answer = {"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {"TaskId": TASK}}

    def record(seq, method="POST", path=PATHS["phototovideonotrain"], ssml="hello there"):
        return {"kind": "exchange", "t": 1.0, "seq": seq, "operation": "phototovideonotrain",
                "request": {"method": method, "path": path, "body_format": "json",
                            "body": {"Header": {}, "Payload": {**TEXT, "InputSsml": ssml}}},
                "response": {"status": 200, "headers": [], "body_format": "json", "body": answer}}

    index = ReplayIndex([record(1), record(None, ssml="a"), record("2", ssml="b"), record([3], ssml="c"),
                         record(4, method=None, ssml="d"), record(5, path=["/"], ssml="e")])
    assert len(index) == 4 and index.skipped == ["the exchange recorded at t=1.0: its method or its path is not a "
                                                 "text"] * 2


def test_replay_answers_what_the_app_got_when_the_recorded_answer_was_no_json(tmp_path, capsys):
    """Only exchanges whose answer was JSON were replayed: a submission recorded as a gateway's HTML 502, a timeout or
    a garbled answer went to the mock underneath, which accepted it (a new TaskId, Code 0). Text and empty answers are
    replayed as recorded, the proxy's own 502 and 504 as it gave them, and an answer not recorded whole is a 502
    that says so, never the mock's acceptance."""
    from ivh_mock.mock_server import Config, MockServer

    def record(t, ssml, response=None, error=None):
        made = {"kind": "exchange", "t": t, "operation": "phototovideonotrain",
                "request": {"method": "POST", "path": PATHS["phototovideonotrain"], "body_format": "json",
                            "body": {"Header": {}, "Payload": {**local, "InputSsml": ssml}}}}
        return {**made, **({"response": response} if response else {}), **({"error": error} if error else {})}

    local = {**TEXT, "RefPhotoUrl": "http://127.0.0.1:9/me.jpg"}
    html = [["Content-Type", "text/html"]]
    recorder = Recorder(tmp_path / "rec")
    for record_ in (
            record(1.0, "html", {"status": 502, "headers": html, "body_format": "text", "body": "<h1>Bad</h1>"}),
            record(2.0, "nan", {"status": 200, "headers": [], "body_format": "text", "body": '{"Code": NaN}'}),
            record(3.0, "empty", {"status": 503, "headers": [], "body_format": "empty", "body": None}),
            record(4.0, "slow", error="ReadTimeout: read timed out"),
            record(5.0, "refused", error="ConnectionError: refused"),
            record(6.0, "binary", {"status": 200, "headers": [], "body_format": "binary", "body": None,
                                   "body_bytes": 12}),
            record(7.0, "cut", {"status": 200, "headers": [], "body_format": "text (cut)", "body": "{\"Hea"}),
            record(8.0, "broke", {"status": 200, "headers": html}, error="the exchange broke off: OSError")):
        recorder.write(record_)
    load = cli._replaying(Config(), str(tmp_path / "rec"))
    assert callable(load)
    assert ("3 recorded exchange(s) cannot be answered as they were, and are answered 502 naming why, the first: the "
            "exchange recorded at t=6.0: its answer (HTTP 200) has a body that is not text (12 bytes)"
            in capsys.readouterr().err)
    index = ReplayIndex.from_dir(tmp_path / "rec")
    with MockServer() as mock:
        mock.app.wsgi_app = ReplayMiddleware(mock.app.wsgi_app, index, mock.now)
        client = mock.app.test_client()

        def submit(ssml):
            answer = client.post(PATHS["phototovideonotrain"], json={"Header": {}, "Payload": {**local,
                                                                                              "InputSsml": ssml}})
            assert answer.headers["X-Ivh-Replayed"] == "true", ssml
            return answer.status_code, answer.data

        assert submit("html") == (502, b"<h1>Bad</h1>")
        assert submit("nan") == (200, b'{"Code": NaN}') and submit("empty") == (503, b"")
        status, data = submit("slow")
        assert status == 504 and json.loads(data)["error"]["message"] == \
            "ivh-mock proxy: (as recorded, replayed) ReadTimeout: read timed out"
        assert submit("refused")[0] == 502
        for ssml, why in (("binary", "not text (12 bytes)"), ("cut", "only the start of its answer's body"),
                          ("broke", "broke off (the exchange broke off: OSError)")):
            status, data = submit(ssml)
            assert status == 502 and why in json.loads(data)["error"]["message"], data
        assert mock.ctx.store.tasks() == []  # none went to the mock, which had accepted each


def test_a_relayed_callbacks_failure_and_target_are_recorded_without_the_apps_credentials():
    """urllib3 quotes the path and query it failed on (`url: /cb?code=...`), which no URL pattern finds, and the
    relay's target kept a `;token=` of its path."""
    from ivh_mock.proxy import redact
    from ivh_mock.proxy.forward import _failure

    url = "http://127.0.0.1:9/cb?code=CBERR1&x=1"
    refused = requests.ConnectionError("HTTPConnectionPool(host='127.0.0.1', port=9): Max retries exceeded with "
                                       "url: /cb?code=CBERR1&x=1 (Caused by NewConnectionError(...))")
    assert "CBERR1" not in _failure(refused, url) and "port=9" in _failure(refused, url)
    assert "CB1SEK" not in redact.text(redact.url("http://127.0.0.1:9111/cb;token=CB1SEK/x?sig=S"))


def test_callback_relay_records_and_forwards_the_callback(tmp_path):
    receiver = CallbackReceiver()
    try:
        with MockServer(TIMING) as mock:
            proxy = Proxy(mock.base_url, Recorder(tmp_path), callback_relay=True, warn=lambda text: None)
            with ProxyServer(proxy, port=0) as server:
                proxy.public_url = server.url
                payload = {**TEXT, "RefPhotoUrl": mock.sample("photo.jpg"), "CallbackUrl": receiver.url}
                task_id = _post(server.url, "phototovideonotrain", {"Header": {}, "Payload": payload},
                                now=mock.now()).json()["Payload"]["TaskId"]
                assert mock.task(task_id)["request"]["CallbackUrl"].startswith(server.url)
                mock.advance(60)
                (callback,) = receiver.wait_for(1, timeout=10)
                # a relay no callback was given, and a GET: the proxy's 404, and no callback to check or record
                # (they had been, as drift the upstream was blamed for)
                for method in ("POST", "GET"):
                    assert requests.request(method, f"{server.url}/__proxy__/callback/nobody", data=b"hello",
                                            timeout=10).status_code == 404
                # a CallbackUrl the spec refuses goes as the app sent it: relayed, a short URL of the proxy's had
                # been accepted in its place, and the upstream blamed for accepting what the spec refuses
                for bad in (receiver.url + "?x=" + "a" * 1200, "ftp://127.0.0.1/x"):
                    refused = _post(server.url, "phototovideonotrain", {"Header": {}, "Payload": {
                        **payload, "CallbackUrl": bad}}, now=mock.now()).json()
                    assert refused["Header"]["Code"] == 100002, refused
        assert callback["body"]["Payload"]["TaskId"] == task_id
    finally:
        receiver.close()
    callbacks = [r for r in read_records(tmp_path) if r["kind"] == "callback"]
    assert len(callbacks) == 1 and callbacks[0]["findings"] == [] and callbacks[0]["response"]["status"] == 200
    assert drift_report.analyse(read_records(tmp_path))["findings"] == []


def test_without_the_callback_relay_its_paths_are_the_upstreams(echo_upstream, tmp_path):
    url, received = echo_upstream
    with ProxyServer(Proxy(url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
        answer = requests.post(f"{proxy.url}/__proxy__/callback/x", data=b"hello", timeout=10)
    assert answer.json() == {"ok": 1} and received[0][0] == "/__proxy__/callback/x"
    assert [record["kind"] for record in read_records(tmp_path)] == ["exchange"]


def test_probes_merged_from_several_runs_each_say_which_run_they_came_from():
    """Two suite reports merged listed their probes one after the other, with nothing to tell a row that differs in
    one run from the same row agreeing in the other."""
    rows = lambda answer: [drift.probe_row("D13", "a timestamp a day off?", "refused", answer)]  # noqa: E731
    first = drift.new_report("https://live.example", is_mock=False, probes=rows("accepted"))
    second = drift.new_report("http://127.0.0.1:8080", is_mock=True, probes=rows("refused"))
    merged = drift.merge([first, second, drift.new_report("recordings", is_mock=False)])
    assert [(row["verdict"], row["from"]) for row in merged["probes"]] == [
        (drift.DIFFERS, f"https://live.example, {first['written']}"),
        (drift.AGREE, f"http://127.0.0.1:8080, {second['written']}")]
    table = drift.markdown(merged)
    assert "| verdict | from |" in table and f"| differs | https://live.example, {first['written']} |" in table
    assert drift.merge([merged, second])["probes"][0]["from"].startswith("https://live.example")  # kept as merged
    alone = drift.merge([first, drift.new_report("recordings", is_mock=False)])  # one run's: nothing to tell apart
    assert "from" not in alone["probes"][0] and "| from |" not in drift.markdown(alone)


# -- the contract suite -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_the_drift_report_lists_probes_the_spend_guard_stopped(wrong_upstream, tmp_path):
    result = run_suite(wrong_upstream.url, tmp_path, paths=["contract_tests/test_drift.py"])
    assert result.returncode == 0, result.stdout[-3000:]
    report = drift.read(tmp_path / drift.JSON_NAME)
    verdicts = [row["verdict"] for row in report["probes"]]
    assert drift.NOT_RUN in verdicts and drift.DIFFERS in verdicts
    assert "not run (spend guard)" in (tmp_path / drift.MARKDOWN_NAME).read_text()

    failing = run_suite(wrong_upstream.url, tmp_path / "strict", "--ivh-fail-on-drift",
                        paths=["contract_tests/test_drift.py"])
    assert failing.returncode == 1 and "differ from the mock's choices" in failing.stdout
    assert (tmp_path / "strict" / drift.JSON_NAME).exists()

    recording = _recording(tmp_path / "rec")
    status, out = _drift(recording, "--suite-report", tmp_path / drift.JSON_NAME, "--out", tmp_path / "merged")
    merged = drift.read(tmp_path / "merged" / drift.JSON_NAME)
    assert status == 1 and len(merged["probes"]) == len(report["probes"]) and "probe D" in out


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT], ids=["sigterm", "ctrl-c", "quit"])
def test_the_proxy_command_records_and_stops_cleanly(stop, wrong_upstream, tmp_path):
    proxy = subprocess.Popen([str(Path(sys.executable).with_name("ivh-mock")), "proxy", "--upstream",
                              wrong_upstream.url, "--port", "0", "--record", str(tmp_path / "rec"), "--per", "run"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proxy.stdout.readline()
        url = banner.split("listening on ", 1)[1].strip()
        proxy.send_signal(signal.SIGUSR1)  # another server's (a log rotation's): it had ended the proxy
        answer = _post(url, "describetimbre", {"Header": {}, "Payload": {"PageIndex": 1, "PageSize": 10}})
        assert answer.content == WRONG_ANSWERS[PATHS["describetimbre"]][0]
    finally:
        proxy.send_signal(stop)
        assert proxy.wait(timeout=15) == 0
    errors = proxy.stderr.read()  # each new problem is printed once as it is seen
    assert "unknown-header-code" in errors and "Traceback" not in errors
    (record,) = read_records(tmp_path / "rec")
    assert record["operation"] == "describetimbre" and record["findings"][0]["subject"] == "999999"


@pytest.mark.parametrize("again", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_a_second_stop_signal_ends_the_proxys_wait_for_an_exchange_at_once(again, tmp_path):
    """A stop waits for the exchanges under way (up to the read timeout); a second signal during that wait ended it
    with KeyboardInterrupt's traceback, exit -2, and said nothing of the exchange cut short."""
    with RawServer(b"", hang=True) as upstream:
        proxy = subprocess.Popen([str(Path(sys.executable).with_name("ivh-mock")), "proxy", "--upstream", upstream.url,
                                  "--port", "0", "--record", str(tmp_path / "rec"), "--timeout", "30"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = proxy.stdout.readline().split("listening on ", 1)[1].strip()
            got: list = []

            def ask() -> None:
                try:
                    got.append(_post(url, "describetimbre", {"Header": {}, "Payload": {}}))
                except requests.ConnectionError as error:
                    got.append(error)

            asking = threading.Thread(target=ask, daemon=True)
            asking.start()
            said: list[str] = []  # its stderr, line by line, as it comes
            threading.Thread(target=lambda: said.extend(proxy.stderr), daemon=True).start()
            until(lambda: upstream.requests == 1)
            proxy.send_signal(signal.SIGTERM)
            # it waits for the exchange, and says so past a second (it had said nothing for up to --timeout); within
            # the two timeouts together (--connect-timeout's default 10 s, and --timeout)
            until(lambda: "ivh-mock proxy: stopping: the exchanges under way end first, within 40 s; SIGTERM or "
                          "Ctrl-C again stops at once\n" in said)
            assert proxy.poll() is None
            proxy.send_signal(again)
            assert proxy.wait(timeout=5) == 0
            until(lambda: any("stopped with exchanges still under way" in line for line in said))
            assert not any("Traceback" in line for line in said)
            asking.join(10)
            assert len(got) == 1 and isinstance(got[0], requests.ConnectionError)  # cut short, as said
        finally:
            proxy.kill()
            proxy.wait()


def test_a_stop_takes_no_new_request_on_a_kept_alive_connection(tmp_path):
    """Stopping, the proxy went on forwarding what apps sent on their kept-alive connections until its wait ran out
    (40 s of new submissions, each billed upstream), then cut what was under way short. Now a connection waiting for
    its next request is closed at once, and one whose exchange is under way gets its answer, with Connection: close."""
    import http.client

    received: list[str] = []

    class Upstream(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            received.append(self.path)
            time.sleep(0.5 if self.path == "/slow" else 0)
            self.send_response(200)
            self.send_header("Content-Length", str(len(PROGRESS_ANSWER)))
            self.end_headers()
            self.wfile.write(PROGRESS_ANSWER)

        def log_message(self, *args):
            pass

    upstream = QuietHTTPServer(("127.0.0.1", 0), Upstream)
    upstream.daemon_threads = True
    threading.Thread(target=upstream.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    headers = {"Content-Type": "application/json"}
    try:
        with ProxyServer(Proxy(f"http://127.0.0.1:{upstream.server_port}", Recorder(tmp_path), warn=lambda text: None),
                         port=0) as proxy:
            idle, busy = (http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10) for _ in range(2))
            for connection in (idle, busy):
                connection.request("POST", "/fast", body=b"{}", headers=headers)
                answer = connection.getresponse()
                assert answer.read() == PROGRESS_ANSWER and answer.getheader("Connection") is None  # kept alive
            busy.request("POST", "/slow", body=b"{}", headers=headers)
            until(lambda: "/slow" in received)
            proxy.close_idle()  # as `ivh-mock proxy` does at SIGTERM or Ctrl-C
            try:  # closed at once; or, should its request have come first, refused: never sent on
                idle.request("POST", "/fast", body=b"{}", headers=headers)
                refused = idle.getresponse().status
            except ConnectionError:
                refused = None
            answer = busy.getresponse()
            assert (answer.status, answer.getheader("Connection"), answer.read()) == (200, "close", PROGRESS_ANSWER)
            assert refused in (None, 503)
    finally:
        upstream.shutdown()
        upstream.server_close()
    assert received == ["/fast", "/fast", "/slow"]


def test_a_page_the_proxy_served_writes_to_the_control_api_a_foreign_one_still_cannot(tmp_path):
    """The mock's dashboard opened through the proxy could change nothing: the proxy sent Host as the upstream's but
    the page's Origin as it was (the proxy's), and the control API refused every write as a foreign page's (D57)."""
    with MockServer({"queue_seconds": 0.1}) as mock:
        with ProxyServer(Proxy(mock.base_url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            def advance(origin: str) -> requests.Response:
                return requests.post(f"{proxy.url}/__mock__/clock", json={"advance": 1}, headers={"Origin": origin},
                                     timeout=10)

            assert advance(proxy.url).status_code == 200
            assert advance(proxy.url.replace("127.0.0.1", "localhost")).status_code == 403  # not the page's host
            foreign = advance("http://evil.example")
            assert foreign.status_code == 403 and "another origin ('http://evil.example')" in foreign.text
            assert advance("http://[evil").status_code == 403  # one urlsplit cannot read goes as sent


def test_a_page_dns_rebound_to_the_proxy_reaches_no_control_route_of_the_mock_behind_it(tmp_path):
    """The proxy sends the upstream's own Host (and an Origin naming the Host sent as the upstream's): a page on a
    name rebound to the proxy's address could move the mock's clock and read its accounts' tokens, which the mock
    refuses it sent directly (D57). The proxy asks what the mock would have."""
    with MockServer() as mock:
        proxy_of = Proxy(mock.base_url, Recorder(tmp_path), warn=lambda text: None, allowed_hosts=("proxy.test",))
        with ProxyServer(proxy_of, port=0) as proxy:
            port = proxy.url.rsplit(":", 1)[1]

            def ask(method: str, path: str, host: str, **more) -> requests.Response:
                return requests.request(method, f"{proxy.url}{path}", headers={"Host": f"{host}:{port}",
                                                                             "Origin": f"http://{host}:{port}"},
                                        timeout=10, **more)

            before = mock.now()
            for method, path, more in (("POST", "/__mock__/clock", {"json": {"frozen": False}}),
                                       ("GET", "/__mock__/accounts", {}), ("GET", "/__mock__/ui", {}),
                                       ("PUT", "/__mock__/accounts/a", {"json": {"max_pending": 1}})):
                refused = ask(method, path, "evil.example", **more)
                assert refused.status_code == 403, (method, path, refused.text)
                assert refused.json() == {"error": {"message": (
                    "ivh-mock proxy: the control API answers only requests to the proxy's own host names, not "
                    "'evil.example' (a page on another name could have rebound it to this address); start the "
                    "proxy with --allow-host NAME to add one")}}
            # the path as the mock routes it: percent-decoded, slashes merged (sent as written: requests would
            # decode %5F itself)
            for path in (b"/%5F%5Fmock%5F%5F/reset", b"/%5f%5fmock__/clock", b"//__mock__//reset"):
                with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as raw:
                    raw.sendall(b"POST %s HTTP/1.1\r\nHost: evil.example\r\nContent-Type: application/json\r\n"
                                b"Content-Length: 2\r\nConnection: close\r\n\r\n{}" % path)
                    answer = raw.makefile("rb").read()
                assert answer.startswith(b"HTTP/1.1 403 "), (path, answer[:200])
            assert mock.clock.frozen and mock.now() == before
            assert requests.get(f"{mock.base_url}/__mock__/accounts/a", timeout=10).json()["max_pending"] == 1000
            assert ask("GET", "/__mock__/assets/samples/photo.jpg", "evil.example").status_code == 200  # open to all
            # its own names: an address, localhost, --host, --public-url's and --allow-host's
            for host in ("127.0.0.1", "localhost", "proxy.test"):
                assert ask("POST", "/__mock__/clock", host, json={"advance": 1}).status_code == 200, host
            spaced = requests.post(f"{proxy.url}/__mock__/clock", json={"advance": 1}, timeout=10,
                                   headers={"Host": f"localhost:{port} "})  # (a value's blanks are none of it)
            assert spaced.status_code == 200, spaced.text
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as bare:  # HTTP/1.0, no Host
                bare.sendall(b"GET /__mock__/accounts HTTP/1.0\r\n\r\n")
                answer = bare.makefile("rb").read()
            assert answer.startswith(b"HTTP/1.1 403 ") and b"the request has no Host header" in answer, answer
            # the API itself is no control route: the upstream judges it, whatever the Host
            answer = requests.post(f"{proxy.url}{PATHS['getprogress']}?{signed_query('my-app', TOKEN, NOW)}",
                                   data=b"{}", headers={"Host": "evil.example", "Content-Type": "application/json"},
                                   timeout=10)
            assert "Header" in answer.json()


def test_the_default_upstream_is_the_live_api_of_the_profile():
    from ivh_mock import spec as spec_module

    contract = spec_module.load()
    assert contract.server_url() == "https://gw-sg.tvs.qq.com"
    assert contract.server_url("cn") == "https://gw.tvs.qq.com"


def test_the_lifecycle_rules_each_have_a_finding():
    from ivh_mock.proxy import Lifecycle

    def poll(status, progress=0, count=0, duration=0, media=""):
        return {"Status": status, "Progress": progress, "ArrayCount": count, "Duration": duration, "MediaUrl": media}

    lifecycle = Lifecycle()
    seen = [poll("COMMIT", count=2), poll("COMMIT", count=3), poll("MAKING", 50), poll("MAKING", 30),
            poll("SUCCESS", 100, duration=4000, media="https://cdn/v.mp4?sig=1"),
            poll("SUCCESS", 100, duration=4000, media="https://cdn/v.mp4?sig=2"),  # a new signature is no change
            poll("SUCCESS", 100, duration=5000, media="https://cdn/w.mp4"), poll("FAIL", -1)]
    found = [f.kind + ":" + f.subject for at, payload in enumerate(seen) for f in lifecycle.observe("t", payload, at)]
    assert found == ["lifecycle-arraycount-rose:ArrayCount", "lifecycle-progress-fell:Progress",
                     "lifecycle-changed-after-success:Duration", "lifecycle-changed-after-success:MediaUrl",
                     "lifecycle-final-status-changed:SUCCESS -> FAIL"]
    # a failed task's Progress falls to -1, and only to that (any fall to FAIL had been let through)
    failing = [f.kind for at, payload in enumerate([poll("MAKING", 50), poll("FAIL", 30)])
               for f in lifecycle.observe("f", payload, at)]
    assert failing == ["lifecycle-progress-fell"]
    assert [f.kind for at, payload in enumerate([poll("MAKING", 50), poll("FAIL", -1)])
            for f in lifecycle.observe("g", payload, at)] == []
    mismatch = lifecycle.callback({"TaskId": "t", "Status": "SUCCESS", "Progress": 100, "MediaUrl": ""}, 9)
    assert [f.kind for f in mismatch] == ["callback-mismatch"]
    assert [f.kind for f in lifecycle.callback({"TaskId": "t", "Status": "FAIL"}, 10)] == ["callback-repeated"]
    # with the final state agreed on, its Progress and video must agree too (only Status had been compared); a
    # pre-signed URL's new query is no change
    lifecycle.observe("u", poll("SUCCESS", 100, duration=4000, media="https://cdn/v.mp4?sig=1"), 11)
    assert lifecycle.callback({"TaskId": "u", "Status": "SUCCESS", "Progress": 100,
                               "MediaUrl": "https://cdn/v.mp4?sig=9"}, 12) == []
    lifecycle.observe("w", poll("SUCCESS", 100, duration=4000, media="https://cdn/v.mp4"), 13)
    other = lifecycle.callback({"TaskId": "w", "Status": "SUCCESS", "Progress": 99,
                                "MediaUrl": "https://other/else.mp4"}, 14)
    assert [(f.kind, f.subject) for f in other] == [("callback-mismatch", "Progress"),
                                                    ("callback-mismatch", "MediaUrl")]


def test_redaction_leaves_no_credential_anywhere():
    from ivh_mock.proxy import redact

    body = {"Header": {"AccessToken": "tok-1"}, "Payload": {
        "MediaUrl": "https://cdn.example/v.mp4?X-Amz-Signature=abc&X-Amz-Credential=def",
        "FailMessage": "signature=sig-2 rejected for accesstoken: tok-3; see https://u:pw-4@h.example/p?q=1",
        "TimbreKey": "female_1", "List": [{"api_key": "key-5"}], "Poster": "//cdn.example/p.png?Expires=1&x=s-6",
        "Note": "see //u:pw-7@cdn.example/q?t=8 or a path's a//b?keep=9"}}
    text = json.dumps(redact.value(body))
    for secret in ("tok-1", "abc", "def", "sig-2", "tok-3", "pw-4", "q=1", "key-5", "s-6", "pw-7", "t=8"):
        assert secret not in text, secret
    assert "female_1" in text and "https://cdn.example/v.mp4" in text
    assert '"//cdn.example/p.png"' in text and "see //cdn.example/q or a path's a//b?keep=9" in text
    assert redact.query([("appkey", "a"), ("timestamp", "1"), ("signature", "s")]) == [
        ["appkey", "a"], ["timestamp", "1"], ["signature", redact.REDACTED]]
    assert redact.headers([("Authorization", "Bearer x"), ("Cookie", "c"), ("X-Mock-Token", "t"),
                           ("Content-Type", "application/json")])[3] == ["Content-Type", "application/json"]
    assert all(value == redact.REDACTED for _, value in redact.headers([("Authorization", "Bearer x"),
                                                                          ("Cookie", "c"), ("X-Mock-Token", "t")]))


# -- an upstream that misbehaves at the byte level ---------------------------------------------------------------
PROGRESS_ANSWER = _envelope('{"Status": "COMMIT", "Progress": 0, "ArrayCount": 0, "Duration": 0, "MediaUrl": ""}')


def _head(status: str, *headers: str) -> bytes:
    return (f"HTTP/1.1 {status}\r\n" + "".join(f"{header}\r\n" for header in headers) + "\r\n").encode()


def test_a_recording_that_cannot_be_written_leaves_the_apps_traffic_as_it_was(wrong_upstream, tmp_path):
    """A full disk or a recording directory gone had closed the app's connection after each answer (a traceback on
    stderr), so every second request of a keep-alive app failed. The proxy now says once that it cannot record,
    and once that it records again, and the app never notices."""
    import shutil

    warned: list[str] = []
    folder = tmp_path / "rec"
    with ProxyServer(Proxy(wrong_upstream.url, Recorder(folder), warn=warned.append), port=0) as proxy:
        session = requests.Session()
        url = f"{proxy.url}{PATHS['getprogress']}?{signed_query('my-app', TOKEN, NOW)}"

        def poll():
            return session.post(url, data=json.dumps({"Header": {}, "Payload": {"TaskId": TASK}}),
                                headers={"Content-Type": "application/json"}, timeout=10)

        assert poll().status_code == 200
        proxy.proxy.drain()  # recorded: each exchange is, once answered
        shutil.rmtree(folder)
        folder.write_text("not a directory any more")
        for _ in range(3):
            assert poll().status_code == 200  # the same kept-alive connection serves each
        proxy.proxy.drain()
        failing = [line for line in warned if "cannot record" in line]
        assert len(failing) == 1 and str(folder) in failing[0], warned
        folder.unlink()
        folder.mkdir()
        assert poll().status_code == 200
    assert any("recording again" in line and "3 exchange(s) were not recorded" in line for line in warned), warned
    assert len(list(read_records(folder))) == 1


def test_an_answer_that_breaks_off_reaches_the_app_as_far_as_it_came_and_ends_its_connection(tmp_path):
    """The upstream promises 1,000 bytes, sends 85 and goes quiet, or sends 20 and hangs up. The app had received
    nothing of them (the proxy waited for 64 KiB), and its connection stayed open for the 30 s idle timeout."""
    promised = _head("200 OK", "Content-Type: application/json", "Content-Length: 1000")
    for answer, hang in ((promised + PROGRESS_ANSWER[:85], True), (promised + PROGRESS_ANSWER[:20], False)):
        with RawServer(answer, hang=hang) as upstream, ProxyServer(
                Proxy(upstream.url, Recorder(tmp_path), read_timeout=1.5, warn=lambda text: None), port=0) as proxy:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as connection:
                connection.sendall(REQUEST_HEAD + b"Content-Length: 2\r\n\r\n{}")
                started, got = time.monotonic(), b""
                while not got.endswith(answer[len(promised):]):
                    got += connection.recv(65536)
                assert time.monotonic() - started < 1.0  # as it came, not when the upstream's time ran out
                assert _read_all(connection) == b""  # then the connection ends: the app sees the answer broken
                assert time.monotonic() - started < 5.0
    records = list(read_records(tmp_path))
    assert len(records) == 2 and all(record["error"].startswith("the upstream's answer broke off")
                                     for record in records)


def test_an_answer_both_chunked_and_with_a_length_goes_to_the_app_chunked_and_whole(tmp_path):
    """RFC 9112 6.3: a Content-Length beside Transfer-Encoding is not to be trusted. Passed on with the de-chunked
    body, `Content-Length: 3` had ended the app's answer after `{"H` and started its next one with the rest."""
    chunked = _head("200 OK", "Content-Type: application/json", "Content-Length: 3", "Transfer-Encoding: chunked")
    with RawServer(chunked + b"%x\r\n%s\r\n0\r\n\r\n" % (len(PROGRESS_ANSWER), PROGRESS_ANSWER)) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            answer = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
    assert answer.content == PROGRESS_ANSWER and "Content-Length" not in answer.headers
    assert answer.headers["Transfer-Encoding"] == "chunked"


def test_a_transfer_coding_besides_chunked_stays_named_and_is_a_finding(tmp_path):
    """`Transfer-Encoding: gzip, chunked` reached the app as `chunked` alone, its body still gzip: bytes that no header
    described."""
    import gzip

    packed = gzip.compress(PROGRESS_ANSWER)
    head = _head("200 OK", "Content-Type: application/json", "Transfer-Encoding: gzip, chunked")
    with RawServer(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(packed), packed)) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            answer = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
    assert answer.headers["Transfer-Encoding"] == "gzip, chunked" and answer.content == packed
    (record,) = read_records(tmp_path)
    assert [f["subject"] for f in record["findings"] if f["kind"] == "transfer-coding"] == ["gzip"]


def test_an_interim_answer_is_not_taken_for_the_final_one(tmp_path):
    """http.client reads a 103 Early Hints as the answer: the app had got a 103 with no body, the real one lost."""
    early = _head("103 Early Hints", "Link: </x>; rel=preload")
    final = _head("200 OK", "Content-Type: application/json", f"Content-Length: {len(PROGRESS_ANSWER)}")
    with RawServer(early + final + PROGRESS_ANSWER) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            answer = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
    assert answer.status_code == 502 and "interim answer, HTTP 103" in answer.json()["error"]["message"]
    (record,) = read_records(tmp_path)
    assert "interim answer" in record["error"]


def test_an_answer_giving_a_key_twice_is_a_finding_and_is_recorded_as_it_came(tmp_path):
    """Two Headers in one answer, the first accepting, the second refusing: the proxy checked and recorded the last
    (json's reading) and said nothing, and a replay sent one Header back."""
    body = (b'{"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {"TaskId": "%s"}, '
            b'"Header": {"Code": 100002, "Message": "no", "RequestID": "r"}}' % TASK.encode())
    answer = _head("200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}") + body
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            passed = _post(proxy.url, "phototovideonotrain", {"Header": {}, "Payload": TEXT})
    assert passed.content == body
    (record,) = read_records(tmp_path)
    assert record["response"]["body_format"] == "text" and record["response"]["body"] == body.decode()
    twice = [finding for finding in record["findings"] if finding["kind"] == "duplicate-key"]
    assert twice and twice[0]["subject"] == "Header" and "readers differ on which counts" in twice[0]["detail"]


def test_an_envelope_sent_as_another_content_type_is_a_finding(tmp_path):
    """A JSON envelope sent as `text/html; charset=gbk` got no finding; a client that goes by the Content-Type does not
    read it as JSON, or decodes it as GBK."""
    for folder, content_type, found in (("html", "text/html; charset=gbk", True), ("json", "application/json", False),
                                        ("utf8", "Application/JSON; charset=UTF-8", False)):
        answer = _head("200 OK", f"Content-Type: {content_type}", f"Content-Length: {len(PROGRESS_ANSWER)}")
        with RawServer(answer + PROGRESS_ANSWER) as upstream:
            with ProxyServer(Proxy(upstream.url, Recorder(tmp_path / folder), warn=lambda text: None),
                             port=0) as proxy:
                assert _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}}).status_code == 200
        (record,) = read_records(tmp_path / folder)
        kinds = [finding["kind"] for finding in record["findings"]]
        assert kinds == (["response-content-type"] if found else []), (content_type, record["findings"])


def test_an_answer_past_what_is_recorded_is_not_judged_from_its_start(tmp_path):
    """A valid envelope of 400 KB, or a small gzip that inflates to 50 MB: only the first 256 KiB is kept. The
    first had been reported as no envelope (drift failed on it); the second was inflated whole, in memory."""
    import gzip

    from ivh_mock.proxy.forward import RECORDED_BODY_BYTES, _decoded

    bomb = gzip.compress(b" " * 50_000_000)
    inflated, undecodable = _decoded(bomb, [("Content-Encoding", "gzip")])
    assert len(inflated) == RECORDED_BODY_BYTES + 1 and undecodable is None
    large = _envelope('{"Status": "COMMIT", "Progress": 0, "ArrayCount": 0, "Duration": 0, "MediaUrl": "", '
                      '"Pad": "%s"}' % ("x" * 400_000))
    for folder, body, encoding in (("large", large, ()), ("bomb", bomb, ("Content-Encoding: gzip",))):
        answer = _head("200 OK", "Content-Type: application/json", f"Content-Length: {len(body)}", *encoding) + body
        with RawServer(answer) as upstream:
            with ProxyServer(Proxy(upstream.url, Recorder(tmp_path / folder), warn=lambda text: None),
                             port=0) as proxy:
                passed = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
        assert passed.status_code == 200 and passed.raw.headers.get("Content-Length") == str(len(body))
    for folder in ("large", "bomb"):
        (record,) = read_records(tmp_path / folder)
        assert record["findings"] == [] and record["response"]["unchecked"].startswith("the answer is larger than")


def test_a_head_line_http_client_cannot_read_is_a_finding_and_what_it_dropped_is_recorded_redacted(tmp_path):
    """http.client drops a head's line that is not `name: value`, and every line after it (here the Content-Length):
    the app got the answer without them, and the record and drift said nothing."""
    answer = _head("200 OK", "Content-Type: application/json", "Broken line", "Set-Cookie: session=s-1",
                   f"Content-Length: {len(PROGRESS_ANSWER)}") + PROGRESS_ANSWER
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            passed = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
    assert passed.status_code == 200 and passed.content == PROGRESS_ANSWER and "Set-Cookie" not in passed.headers
    (record,) = read_records(tmp_path)
    assert [finding["kind"] for finding in record["findings"]] == ["malformed-header"]
    assert record["response"]["unparsed_head"].startswith("Broken line\r\nSet-Cookie: [redacted]\r\nContent-Length")
    assert "s-1" not in json.dumps(record)
    report = drift_report.analyse(read_records(tmp_path))
    assert [finding["kind"] for finding in report["findings"]] == ["malformed-header"]
    # a defect that drops nothing (a line http.client reads as a misplaced envelope header) is no finding
    answer = _head("200 OK", "Content-Type: application/json", "From someone",
                   f"Content-Length: {len(PROGRESS_ANSWER)}") + PROGRESS_ANSWER
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path / "kept"), warn=lambda text: None), port=0) as proxy:
            assert _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}}).status_code == 200
    (record,) = read_records(tmp_path / "kept")
    assert record["findings"] == [] and "unparsed_head" not in record["response"]
    # the Content-Length dropped and the connection kept open: the answer breaks off at the read timeout, and its
    # status, headers and dropped lines, which say why, are kept (the record had held the error alone)
    answer = _head("200 OK", "Content-Type: application/json", "Broken line token=SECRET7Q",
                   f"Content-Length: {len(PROGRESS_ANSWER)}") + PROGRESS_ANSWER
    with RawServer(answer, hang=True) as upstream:
        proxy = Proxy(upstream.url, Recorder(tmp_path / "hung"), read_timeout=0.5, warn=lambda text: None)
        with ProxyServer(proxy, port=0) as server:
            with pytest.raises(requests.RequestException):  # the app's answer ends cut short
                _post(server.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
            proxy.drain()
    (record,) = read_records(tmp_path / "hung")
    assert record["error"].startswith("the upstream's answer broke off") and record["response"]["status"] == 200
    assert [f["kind"] for f in record["findings"]] == ["malformed-header"] and "SECRET7Q" not in json.dumps(record)
    assert record["response"]["unparsed_head"].startswith("Broken line token=[redacted]")


def test_drift_reports_exchanges_that_never_completed_and_never_says_all_conforms_of_them(tmp_path):
    """Every exchange of a recording had failed (the upstream unreachable): drift said "no findings: everything
    seen conforms to the spec" and exited 0."""
    with ProxyServer(Proxy("http://127.0.0.1:9", Recorder(tmp_path), connect_timeout=2,
                           warn=lambda text: None), port=0) as proxy:
        for _ in range(3):
            assert _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}}).status_code == 502
    status, printed = _drift(tmp_path)
    assert status == 1 and "everything seen conforms" not in printed
    assert "exchange-failed: the exchange did not complete: ConnectionError" in printed and "(3x" in printed
    report = json.loads((tmp_path / "drift-report.json").read_text())
    assert report["sources"] == ["3 recorded exchange(s), 0 of them answered"]
    # failures of different kinds are counted apart, each quoted: a reset had been counted with a timeout, as one
    recorder = Recorder(tmp_path / "mixed")
    for n, error in enumerate(["ConnectionError: ('Connection aborted.', BadStatusLine('NOT HTTP\\r\\n'))",
                               *["ConnectionError: ('Connection aborted.', RemoteDisconnected('closed'))"] * 3]):
        recorder.write({"kind": "exchange", "t": 1.0 + n, "operation": "getprogress", "error": error,
                        "request": {"method": "POST", "path": PATHS["getprogress"]}, "findings": []})
    failed = [f for f in drift_report.analyse(read_records(tmp_path / "mixed"))["findings"]
              if f["kind"] == "exchange-failed"]
    assert sorted((f["count"], "RemoteDisconnected" in f["detail"]) for f in failed) == [(1, False), (3, True)]


def test_drift_skips_records_of_the_wrong_shapes_rather_than_failing_on_them(tmp_path, capsys):
    """Records cut or edited by hand had made drift fail with a traceback (exit 1, which means findings)."""
    good = {"kind": "exchange", "t": 1.0, "time": "x", "request": {"method": "POST"}, "findings": []}
    odd = [{**good, "findings": 5}, {**good, "findings": [{"detail": "no kind"}]}, {**good, "elapsed_ms": "12"},
           {**good, "response": [1]}, {**good, "error": 3}, {**good, "t": True}]
    (tmp_path / "ivh-proxy-20260101.jsonl").write_text("".join(json.dumps(record) + "\n" for record in [*odd, good]))
    assert len(list(read_records(tmp_path))) == 1
    status, printed = _drift(tmp_path)
    assert status == 0 and "1 recorded exchange(s)" in (tmp_path / "drift-report.json").read_text()
    (tmp_path / "ivh-proxy-20260101.jsonl").write_text(json.dumps(odd[0]) + "\n")
    assert _drift(tmp_path)[0] == 2 and "nothing recorded there" in capsys.readouterr().err


def test_recordings_stay_within_their_bound_across_runs(tmp_path):
    """The oldest files were deleted only when a run's own file grew past --max-file-mb: six runs of a proxy with
    --per run left six files, past --max-total-mb."""
    for run in range(6):
        recorder = Recorder(tmp_path, per="run", max_file_bytes=2048, max_total_bytes=4096,
                            clock=lambda run=run: 1_790_000_000.0 + 60 * run)
        for number in range(12):
            recorder.write({"kind": "exchange", "t": float(run), "request": {}, "padding": "x" * 100})
    assert sum(path.stat().st_size for path in recording_files(tmp_path)) <= 4096
    assert [record["t"] for record in read_records(tmp_path)][-1] == 5.0


def test_an_answer_echoing_the_requests_signature_is_recorded_and_reported_without_it(tmp_path):
    """An upstream's Message quoting the signature it got ("signature mismatch, received ... expected ...") kept it
    in the recording, the findings and the drift report: no secret's name stood before it, and the redaction took the
    word after it for one."""
    from urllib.parse import parse_qs

    query = signed_query("my-app", TOKEN, int(NOW))
    signature = parse_qs(query)["signature"][0]
    lower_escapes = "".join(part.lower() if part.startswith("%") else part  # `%2b`, as some servers write escapes
                            for part in re.split("(%[0-9A-F]{2})", quote(signature, safe="")))
    envelope = json.dumps({"Header": {"Code": 123456, "Message": f"signature mismatch, received {signature} expected "
                                      f"other; as sent: {quote(signature, safe='')}; or "
                                      f"{lower_escapes}", "RequestID": "r"},
                           "Payload": {}}).encode()
    warned: list[str] = []
    answer = _head("200 OK", "Content-Type: application/json", f"Content-Length: {len(envelope)}") + envelope
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=warned.append), port=0) as proxy:
            passed = requests.post(f"{proxy.url}{PATHS['getprogress']}?{query}", timeout=10,
                                   data=json.dumps({"Header": {}, "Payload": {"TaskId": TASK}}).encode(),
                                   headers={"Content-Type": "application/json;charset=utf-8"})
    assert passed.content == envelope  # the app gets what came
    (record,) = read_records(tmp_path)
    message = record["response"]["body"]["Header"]["Message"]
    assert message.startswith("signature mismatch, received [redacted] expected other; as sent: [redacted]; or "
                              "[redacted]"), message
    report = drift_report.analyse(read_records(tmp_path))
    for text in (json.dumps(record), json.dumps(report), "\n".join(warned)):
        assert signature not in text and quote(signature, safe="") not in text
    assert any("undocumented" in line or "123456" in line for line in warned), warned


def test_an_answer_echoing_a_cookie_a_signed_schemes_signature_or_a_password_sent_is_recorded_without_them(tmp_path):
    """Only whole sensitive header and query values were looked for in what came back: a cookie's value, the
    Signature of a signed Authorization (Tencent Cloud's TC3-HMAC-SHA256) or a password the body carried, echoed
    with no name before them, were recorded."""
    envelope = json.dumps({"Header": {"Code": 123456, "RequestID": "r", "Message": "signature ECHOSIG1sig does not "
                                      "match; cookie value ECHOCOOKIE2 unknown; password ECHOPW3pw rejected"},
                           "Payload": {}}).encode()
    answer = _head("200 OK", "Content-Type: application/json", f"Content-Length: {len(envelope)}") + envelope
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            requests.post(f"{proxy.url}/anything", timeout=10, data=json.dumps({"Password": "ECHOPW3pw"}).encode(),
                          headers={"Content-Type": "application/json", "Cookie": "a=1; sid=ECHOCOOKIE2",
                                   "Authorization": "TC3-HMAC-SHA256 Credential=AKID/x, SignedHeaders=host, "
                                                    "Signature=ECHOSIG1sig"})
    (record,) = read_records(tmp_path)
    message = record["response"]["body"]["Header"]["Message"]
    assert "ECHO" not in json.dumps(record), message
    assert message == "signature [redacted] does not match; cookie value [redacted] unknown; password [redacted] " \
                      "rejected", message


def test_a_signature_echoed_as_php_writes_json_in_an_answer_recorded_as_text_is_recorded_without_it(tmp_path):
    """PHP's json_encode writes `/` as `\\/`: a base64 signature echoed so, in an answer recorded as text (not JSON
    by its type, or too large to decode), was kept, as was a password the body sent under a name ending in `Pass`."""
    echoed = b'<p>{"error":"signature ab\\/cd+ef\\/SIGECHO1== unknown","user":"PASSECHO2x"}</p>'
    answer = _head("400 Bad Request", "Content-Type: text/html", f"Content-Length: {len(echoed)}") + echoed
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            requests.post(f"{proxy.url}/anything?Signature=ab%2Fcd%2Bef%2FSIGECHO1%3D%3D", timeout=10,
                          data=json.dumps({"userPass": "PASSECHO2x"}).encode(),
                          headers={"Content-Type": "application/json"})
    (record,) = read_records(tmp_path)
    assert "ECHO" not in json.dumps(record), record["response"]["body"]
    assert record["request"]["body"] == {"userPass": "[redacted]"}


def test_names_other_services_give_their_secrets_are_sensitive_and_names_like_them_are_not():
    from ivh_mock.proxy import redact

    for name in ("passcode", "X-Hmac-Signature", "HmacSha256", "client_key", "ClientKey", "master-key", "SigningKey",
                 "encryption_key", "userPass", "db2Pass"):
        assert redact.is_sensitive(name), name
    for name in ("bypass", "compass", "Passage", "TimbreKey", "appkey", "AppKey", "keyframe", "PassCount"):
        assert not redact.is_sensitive(name), name

def test_secrets_in_a_body_recorded_as_text_are_redacted_too():
    """A body too large or too deep to decode is recorded as text: JSON's "name": "value" had kept its secrets."""
    from ivh_mock.proxy import redact

    text = redact.text('{"AccessToken": "tok-1", "SecretKey":"sec-2", "Key": "k-3", "access_key": "k-4", '
                       '"PrivateKey": "k-5", "TimbreKey": "female_1", "note": "Bearer tok-6", "appkey": "my-app"}')
    for secret in ("tok-1", "sec-2", "k-3", "k-4", "k-5", "tok-6"):
        assert secret not in text, secret
    assert '"TimbreKey": "female_1"' in text and '"appkey": "my-app"' in text  # named like a key, not secret
    assert redact.query([("key", "k"), ("access_key", "a"), ("appkey", "b")]) == [
        ["key", redact.REDACTED], ["access_key", redact.REDACTED], ["appkey", "b"]]
    assert redact.headers([("X-Auth", "x"), ("X-Author", "me")]) == [["X-Auth", redact.REDACTED], ["X-Author", "me"]]
    # names of credentials other services use: an Azure SAS's `sig`, API Management's subscription key, a password
    named = [("sig", "s"), ("Ocp-Apim-Subscription-Key", "k"), ("X-Pwd", "p"), ("X-Sign", "x"), ("signal", "on"),
             ("design", "d")]
    assert [value for _, value in redact.headers(named)] == [redact.REDACTED] * 4 + ["on", "d"]
    assert "SUBKEY" not in redact.text('{"subscription_key": "SUBKEY"}')
    # header lines and quoted values inside text, whole: a value with a space had kept its second word
    lines = redact.text('Authorization: Basic dXNlcjpw\nCookie: sid=c-1\nX-Auth: x-2\nProxy-Authorization: Basic p-3\n'
                        'password="hunter 2" {"Authorization": "Basic b-4"} the bearer of bad news')
    for secret in ("dXNlcjpw", "c-1", "x-2", "p-3", "hunter", " 2", "b-4"):
        assert secret not in lines, (secret, lines)
    assert "the bearer of bad news" in lines
    # a text cut inside a quoted secret (a body past what is recorded), and a scheme's credentials mid-line, had kept
    # the secret, or all of the credentials but the scheme
    for given, secret in (('{"Pad": "x", "password": "CUTSECRET', "CUTSECRET"), ("x 'secret': 'cut\\", "cut"),
                          ("got Authorization: Basic dXNlcjpTRUNSRVQ= and", "dXNlcjpTRUNSRVQ"),
                          ("authorization=Basic dXNlcjpwYXNz&x=1", "dXNlcjpwYXNz")):
        assert secret not in redact.text(given), (given, redact.text(given))
    assert redact.text("a basic idea, and a token: expired") == "a basic idea, and a token: [redacted]"
    # a PEM key inside a JSON string (its newlines escaped, once or twice), an encrypted one's header lines, a PGP
    # key block, and a header dump's lists of values (Go's http.Header) kept the key's body or the values
    key = "-----BEGIN PRIVATE KEY-----\nMIIEvQKEYBODY1\n-----END PRIVATE KEY-----\n"
    encrypted = "-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,AB\n\nKEYBODY2\n" \
                "-----END EC PRIVATE KEY-----"
    pgp = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nVersion: x\n\nlQKEYBODY3\n=ab\n-----END PGP PRIVATE KEY BLOCK-----"
    for given in (json.dumps({"pk": key}), json.dumps(json.dumps({"pk": key})), encrypted, json.dumps(encrypted), pgp,
                  'headers {"Cookie":["foo=KEYBODY4"],"Authorization":["Token KEYBODY5"]} end'):
        assert "KEYBODY" not in redact.text(given), redact.text(given)
    assert redact.text('{"Authorization": ["Token x1"]} end') == '{"Authorization": [redacted]} end'
    # a query's names were recorded as given: a JWT as a name, `token%3D...` (decoded to a name holding its value)
    names = redact.query([("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.KEYBODY6", ""), ("token=KEYBODY7", ""),
                          ("x", "access_token%3DKEYBODY8"), ("appkey", "my-app")])
    assert "KEYBODY" not in json.dumps(names) and names[-1] == ["appkey", "my-app"], names
    # a header's value is cut after its redaction: one across the cut had kept most of a Basic password
    given = "x" * (redact.HEADER_CHARS - 30) + " Basic dXNlcjpaUVhNMTBQQVNTV09SRA=="
    [[_, cut]] = redact.headers([("X-Debug", given)])
    assert cut.endswith("x Basic [redacted]"), cut[-80:]  # (shorter redacted: nothing left to cut)
    # a form's `+` for a space had hidden a secret's name or value from the decoded view
    form = redact.text("payload=%7B%22password%22%3A+%22KEYBODY9%22%7D&cfg=password+%3D+KEYBODY10&q=a+b")
    assert "KEYBODY" not in form and form.endswith("&q=a+b"), form
    # a multipart body recorded as text kept a part's value under a secret's name
    parts = redact.text('--b\r\nContent-Disposition: form-data; name="password"\r\n\r\nKEYBODY11\r\n--b\r\n'
                        'Content-Disposition: form-data; name="file"; filename="x.txt"\r\nContent-Type: text/plain'
                        '\r\n\r\nkept\r\n--b--')
    assert "KEYBODY" not in parts and "\r\n\r\nkept\r\n" in parts, parts
    # Basic credentials named by nothing else (an upstream's message quoting them) were kept; a word after "basic"
    # stays, Base64 or not, unless it is what the scheme carries (`user:password`)
    for given, kept in (("upstream: Basic dXNlcjpwYXNz was refused", "upstream: Basic [redacted] was refused"),
                        ('{"error": "BASIC: YWxpY2U6c2VjcmV0 expired"}', '{"error": "BASIC: [redacted] expired"}'),
                        ("basic test, basic aGVsbG8=, basic dXNlcjpwYXNzx", None)):
        assert redact.text(given) == (kept or given), given


# pieces of texts: characters (each clue some rule of the redaction needs among them), and a text each rule redacts
PIECES = [*"abcJxyz019 -_./'\"\\&+,;[]{}()\n\t:=：＝<>%?#@", "token", "Authorization", "pass", "TimbreKey", "https",
          "//", "\\/\\/", "%3D", "name=", "eyJ", "bearer ", "Basic ", "-----BEGIN ",
          "sig=S1", "token: S2", "token：S3", "pw＝S4", "Cookie: c=S5", "token%3DS6", "<Signature>S7</Signature>",
          "eyJhbGciOi.eyJzdWIiOi.S8", "-----BEGIN PRIVATE KEY-----S9", "Bearer S10abcd", "Basic dXNlcjpwYXNz",
          "https://h/v.mp4?x=S11", "//h/v#S12", "//h/v?S13", "//S14@h/", "https:\\/\\/h\\/v?S15",
          'Content-Disposition: form-data; name="password"\r\n\r\nS16']


@hypothesis.settings(max_examples=1000)  # each is a few regex searches: 1,000 in about a second
@hypothesis.given(st.lists(st.sampled_from(PIECES), max_size=12).map("".join))
def test_a_text_without_any_clue_a_rule_of_the_redaction_looks_for_is_unchanged_and_the_rest_is_redacted_as_before(
        sample):
    """Most values of an API's traffic hold nothing any rule of the redaction looks for, and are returned as they are
    after one search: the answer is the rules' own, whatever the text."""
    from ivh_mock.proxy import redact

    assert redact.text(sample) == redact._redacted(sample, redact.ENCODINGS)
    assert redact.is_sensitive(sample) == redact._is_sensitive(sample)


def test_text_redaction_takes_secrets_whole_under_any_secret_name_and_takes_time_linear_in_the_text():
    """A body recorded as text (too deep, a form, one holding NaN) kept a list's or object's items under a secret
    name (only its bracket was replaced), the values of `sig`, `auth` and `sign`, and the query of a URL written with
    escaped slashes; and the pattern that finds secrets took time growing with the square of a run of name characters:
    16 KB of `a-a-...` held the proxy 11 s, every exchange waiting."""
    import time

    from ivh_mock.proxy import redact

    text = redact.text('{"sig": "S1", "auth": "S2", "tokens": ["S3", {"a": "]"}], "credentials": {"pw": "S4"}, '
                       '"x-api-key": {"primary": "S5"}, "keep": 1, "url": "https:\\/\\/u:S6@cdn.example\\/v.mp4?'
                       'sig=S7"} sig=F1&auth=F2&design=d')
    for secret in ("S1", "S2", "S3", "S4", "S5", "S6", "S7", "F1", "F2"):
        assert secret not in text, (secret, text)
    assert text == ('{"sig": "[redacted]", "auth": "[redacted]", "tokens": [redacted], "credentials": [redacted], '
                    '"x-api-key": [redacted], "keep": 1, "url": "https:\\/\\/cdn.example\\/v.mp4"} '
                    'sig=[redacted]&auth=[redacted]&design=d')
    # JSON inside a JSON string; a Go-escaped `&`; a value that runs past its URL's end (queries were taken out
    # first, and that left it); a `]` inside a value; `x-auth` inside a name; other schemes
    for given, secret in (('"said {\\"access_token\\": \\"E1\\"}"', "E1"), ("https://h/v?sv=1\\u0026sig=E2", "E2"),
                          ("//h/p?token=Bearer E3", "E3"), ('https:\\/\\/h\\/p?password="hunter E4"', "E4"),
                          ("password=p]E5&x=1", "E5"), ("pre-x-authz=E6", "E6"), ("rtsp://cam/s?x=E7", "E7"),
                          # a value that ends inside the next one's (texts with no separator between them)
                          ('sig="x?key": "E8"', "E8"), ("secret: xauth:Bearer E9}", "E9"),
                          ("token: a?auth:Basic E10 x", "E10"),
                          # Ruby's, PHP's and Go's `=>` and `:=`; a form's bracketed names; a cookie's every pair and
                          # an authorization of any scheme, mid-line; a URL past a `\uXXXX` escape
                          ('{"password" => "E11"}', "E11"), ('token := "E12"', "E12"), ("user[password]=E13&x", "E13"),
                          ("user%5Bapi_key%5D=E14&y", "E14"), ("> Cookie: a=1; sid=E15", "E15"),
                          ("GET / HTTP/1.1\\r\\nCookie: a=1; sid=E16\\r\\n", "E16"),
                          ("x Authorization: token E17", "E17"), ("https://cdn/\\u89c6.mp4?code=E18", "E18")):
        assert secret not in redact.text(given), (given, redact.text(given))
    for kept in ("see ///etc/hosts", "row //////////", "a path a//b?keep=1"):  # text with nothing to take out
        assert redact.text(kept) == kept
    # a JSON key is text too; and a name is judged alike as a header, a JSON key and in a text
    assert redact.value({"https://cdn/k?code=E19": 1, "license-key": "E20"}) == {"https://cdn/k": 1,
                                                                               "license-key": redact.REDACTED}
    assert redact.headers([("X-Authentication", "E21"), ("X-Author", "me")]) == [
        ["X-Authentication", redact.REDACTED], ["X-Author", "me"]]
    (_, long), = redact.headers([("X-Pad", "x" * 65_536)])  # a header's value is recorded cut, as a body is
    assert long == "x" * redact.HEADER_CHARS + " [cut: 65536 characters]"
    started = time.monotonic()  # a bound the quadratic pattern misses by hundreds of times (it took minutes)
    for long in ("a-" * 131_072, "token=" * 40_000, '"password": "' + "x" * 250_000, '"tokens": ' + "[" * 200_000,
                 "-----BEGIN PRIVATE KEY-----" * 9_000, "<token>" + "x" * 250_000, "<k>" * 80_000, "eyJabcd." * 30_000):
        assert len(redact.text(long)) <= len(long)
    assert time.monotonic() - started < 10


def test_a_pw_or_a_session_is_a_secret_too():
    """`pw=...` in a form and an `X-Session` header had been recorded as they came (a bare `session` is no secret:
    `session=2` counts something)."""
    from ivh_mock.proxy import redact

    assert redact.text("user=me&pw=E1&mode=x") == "user=me&pw=[redacted]&mode=x"
    assert redact.headers([("X-Session", "E2"), ("User_Session", "E3"), ("X-Sessions-Left", "3")]) == [
        ["X-Session", redact.REDACTED], ["User_Session", redact.REDACTED], ["X-Sessions-Left", "3"]]
    assert redact.value({"x-session": "E4", "pw": "E5", "session": 2, "Payload": {"SessionCount": 2}}) == {
        "x-session": redact.REDACTED, "pw": redact.REDACTED, "session": 2, "Payload": {"SessionCount": 2}}


def test_secrets_after_full_width_punctuation_in_xml_elements_or_known_by_their_shape_are_redacted():
    """A Chinese message's `accesstoken：...`, an object store's XML error quoted in a FailMessage, a session id, a
    passphrase, a JWT and a PEM private key had all been recorded as they came."""
    from ivh_mock.proxy import redact

    for given, secret in (("accesstoken：W1", "W1"), ("令牌 token： W2", "W2"), ("signature＝W3", "W3"),
                          ("answered <Error><Code>AccessDenied</Code><SignatureProvided>W4</SignatureProvided>"
                           "<AWSAccessKeyId>W5</AWSAccessKeyId></Error>", "W4 W5"),
                          ("pass=W6", "W6"), ("passphrase=W7", "W7"), ("JSESSIONID=W8", "W8"), ("session_id: W9", "W9"),
                          ("jwt=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.W10", "W10"),
                          ("seen eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.W11 in a log", "W11"),
                          ("key: -----BEGIN RSA PRIVATE KEY-----\nMIIEW12\n-----END RSA PRIVATE KEY-----", "W12")):
        for part in secret.split():
            assert part not in redact.text(given), (given, redact.text(given))
    for kept in ("<Code>SignatureDoesNotMatch</Code>", "passage=ok", "session=fine", "-----BEGIN CERTIFICATE-----x"):
        assert redact.text(kept) == kept


def test_secrets_url_encoded_in_escaped_quotes_or_among_a_schemes_parameters_are_redacted():
    """A URL inside a form field or another URL is URL-encoded: its query, and a `name%3Dvalue` in it, had been kept
    whole; so had a value between escaped single quotes, the parameters of a Digest authorization in the middle of a
    line (only up to the first quote was taken), and a bearer token after a colon or a form's `+`."""
    import time
    from urllib.parse import quote

    from ivh_mock.proxy import redact

    for given, secret in (("url=https%3A%2F%2Fcdn.example%2Fv.mp4%3Fsig%3DU1%26a%3D1", "U1"),
                          ("next=%2Fcb%3Ftoken%3DU2", "U2"), ("x Bearer%20U3abcdef y", "U3"),
                          ("a=https%253A%252F%252Fh%252Fp%253Fsig%253DU4", "U4"),  # encoded twice
                          ("password=\\'U5\\' x", "U5"), ("Bearer:U6abcdef", "U6"), ("x Bearer+U7abcdef", "U7"),
                          ('got Authorization: Digest username="u", response="U8", nonce="U9" and', "U8"),
                          ('got Authorization: Digest username="u", response="U8", nonce="U9" and', "U9"),
                          # a name at the end of an encoded run, its value plain; a scheme's credentials as a parameter
                          ("u=https%3A%2F%2Fh%2Fp%3Fauth: U10", "U10"),
                          ("Authorization: Digest a=x, b=Bearer U11", "U11")):
        assert secret not in redact.text(given), (given, redact.text(given))
    assert redact.text("url=https%3A%2F%2Fcdn.example%2Fv.mp4%3Fsig%3DU1") == "url=https%3A%2F%2Fcdn.example%2Fv.mp4"
    assert redact.text("next=%2Fcb%3Ftoken%3DU2&x=1") == "next=%2Fcb%3Ftoken%3D[redacted]&x=1"
    assert redact.text('got Authorization: Digest username="u", response="U8" and') == (
        "got Authorization: [redacted] and")  # the text after the parameters stays
    # names of credentials other services use, and the British spelling of one
    for given, secret in (('{"AuthKey": "N1"}', "N1"), ("license_key=N2", "N2"), ("Authentication: Basic N3", "N3"),
                          ("x Authorisation: Bearer N4abcd y", "N4")):
        assert secret not in redact.text(given), (given, redact.text(given))
    assert redact.text("TimbreKey=female_1&appkey=my-app") == "TimbreKey=female_1&appkey=my-app"
    assert [value for _, value in redact.headers([("Authentication", "N5"), ("Authorisation", "N6"),
                                                  ("License_Key", "N7")])] == [redact.REDACTED] * 3
    # a name right after a `%` that starts no escape, as before; a `/` inside an encoded run (quote() keeps it)
    for given, secret in (("100%password=hunter2", "hunter2"), ("%token=abc", "abc"), ("50%secret: xyz", "xyz"),
                          ("%auth=U12", "U12"), ("redirect=" + quote("https://cdn.example/v.mp4?sign=q/Wx+Yz==&t=1"),
                                                 "Wx"), ("n=/cb%3Faccess_token%3DeyJhb/GciOi.Jz", "GciOi")):
        assert secret not in redact.text(given), (given, redact.text(given))
    for kept in ("plain%20text%20kept", "%E8%A7%86%E9%A2%91.mp4", "100%25 of the %zz"):  # nothing secret in them
        assert redact.text(kept) == kept
    started = time.monotonic()  # each encoded run is decoded at most twice over: linear still
    for long in ("%41" * 100_000, "%2541" * 60_000, "a%3Dtoken%3D" * 25_000, "%2525" * 60_000):
        assert len(redact.text(long)) <= len(long)
    assert time.monotonic() - started < 10


def test_findings_quote_nothing_secret_and_one_answer_makes_a_bounded_report(tmp_path):
    """Findings quoted what they found whole (a FailMessage's pre-signed URL, a Message's token, a refused
    CallbackUrl's query, an undocumented key holding a signature) into recordings, drift reports and the terminal;
    an answer with 3,000 undocumented fields made a report of 1.5 GB; a poll sent to `//v2/...` was recorded under
    `/ivh/...`, never checked."""
    from ivh_mock.proxy.checks import ExchangeChecker, Finding
    from ivh_mock.proxy.report import MAX_ROWS, Aggregate

    leaky = Finding("unknown-fail-code", "https://cdn/x?sig=LEAK1",
                    "FailCode 999111 (FailMessage 'cannot fetch https://b/p.jpg?q-signature=LEAK2&q-ak=LEAK3')")
    assert "LEAK" not in json.dumps(leaky.as_dict()) and len(Finding("k", "s" * 5000, "d" * 5000).subject) <= 200
    wide = json.loads(_envelope('{"Status": "COMMIT", "Progress": 0, "ArrayCount": 0, "Duration": 0, "MediaUrl": ""'
                                + "".join(f', "X{n}": 1' for n in range(3000)) + "}"))
    found = ExchangeChecker().answer("getprogress", 200, wide, True, None)
    assert len(found) == 21 and found[-1].subject == "more fields" and "2980 more" in found[-1].detail
    aggregate = Aggregate()
    big = {"time": "t", "request": {"body": "x" * 100_000}, "response": {"body": {"pad": "y" * 100_000}}}
    for n in range(MAX_ROWS + 500):
        aggregate.add({"kind": "undocumented-field", "subject": f"response.Payload.X{n}", "detail": "d"}, big)
    rows = aggregate.findings()
    assert len(rows) == MAX_ROWS + 1 and rows[0]["count"] == 500 and rows[0]["subject"] == "(further findings)"
    assert len(json.dumps(rows)) < MAX_ROWS * 2000  # each example's bodies left to the recording
    leak = _envelope('{"Status": "FAIL", "Progress": -1, "ArrayCount": 0, "Duration": 0, "MediaUrl": "", '
                     '"FailCode": 999111, "FailMessage": "cannot fetch https://b/p.jpg?q-signature=LEAK4"}')
    answer = _head("200 OK", "Content-Type: application/json", f"Content-Length: {len(leak)}") + leak
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            url = f"{proxy.url}/{PATHS['getprogress']}?{signed_query('my-app', TOKEN, NOW)}"  # `//v2/...`
            requests.post(url, data=json.dumps({"Header": {}, "Payload": {"TaskId": TASK, "CallbackUrl":
                                                                          "app.example/cb?token=LEAK5"}}),
                          headers={"Content-Type": "application/json"}, timeout=10)
            proxy.proxy.drain()
    (record,) = read_records(tmp_path)
    assert "LEAK" not in json.dumps(record), json.dumps(record)[:2000]
    assert record["operation"] == "getprogress" and record["request"]["path"] == PATHS["getprogress"]
    assert {finding["kind"] for finding in record["findings"]} >= {"unknown-fail-code"}


def test_an_answers_status_is_checked_when_its_body_is_too_large_to_be(tmp_path):
    """A 503 with 300 KB of HTML had been left unchecked, status and all: drift said everything conformed."""
    page = b"<html>" + b"x" * 300_000 + b"</html>"
    unavailable = _head("503 Service Unavailable", "Content-Type: text/html", f"Content-Length: {len(page)}") + page
    with RawServer(unavailable) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            passed = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
            proxy.proxy.drain()
    (record,) = read_records(tmp_path)
    assert passed.status_code == 503 and record["response"]["unchecked"].startswith("the answer is larger")
    assert [finding["kind"] for finding in record["findings"]] == ["undocumented-http-status"], record["findings"]


def test_an_answer_in_an_encoding_the_proxy_cannot_decode_is_not_judged_no_envelope(tmp_path):
    """An app whose requests offers brotli got a `Content-Encoding: br` answer: the proxy, which decodes gzip and
    deflate only, recorded a `not-an-envelope` finding for a valid answer, and drift exited 1."""
    answer = _head("200 OK", "Content-Type: application/json", "Content-Encoding: br",
                   f"Content-Length: {len(PROGRESS_ANSWER)}") + PROGRESS_ANSWER  # not brotli: never decoded anyway
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            assert _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}}).status_code == 200
            proxy.proxy.drain()
    (record,) = read_records(tmp_path)
    assert record["findings"] == [] and "encoded as 'br'" in record["response"]["unchecked"], record


def _recorded_answer(tmp_path, answer: bytes) -> tuple[requests.Response, dict]:
    """Send a getprogress through a proxy to an upstream that answers `answer` (as bytes on the wire); return what
    the app got and the exchange's record."""
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            got = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
            proxy.proxy.drain()
    (record,) = read_records(tmp_path)
    return got, record


def test_an_operation_whose_path_is_percent_encoded_is_checked_as_the_mock_routes_it(tmp_path):
    """`get%70rogress` is getprogress to the mock (it routes the decoded path): the proxy matched the path as written,
    and passed the exchange unchecked."""
    answer = _head("200 OK", "Content-Type: application/json", "Content-Length: 2") + b"{}"
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            app = http.client.HTTPConnection(urlsplit(proxy.url).netloc, timeout=10)  # (requests would decode %70)
            app.request("POST", "/v2/ivh/videomaker/broadcastservice/get%70rogress", body=b"{}",
                        headers={"Content-Type": "application/json"})
            assert app.getresponse().status == 200
            app.close()
            proxy.proxy.drain()
    (record,) = read_records(tmp_path)
    assert record["operation"] == "getprogress" and record["request"]["path"].endswith("get%70rogress")
    assert "response-schema" in {finding["kind"] for finding in record["findings"]}, record["findings"]


def test_an_answer_in_gzip_members_one_after_another_is_read_whole(tmp_path):
    """gzip allows several members one after another, and urllib3 (the app's requests) reads them all: the proxy
    read the first alone, judged a valid answer `not-an-envelope` and recorded no body."""
    import gzip

    body = gzip.compress(PROGRESS_ANSWER[:50]) + gzip.compress(PROGRESS_ANSWER[50:])
    got, record = _recorded_answer(tmp_path, _head("200 OK", "Content-Type: application/json", "Content-Encoding: "
                                                   "gzip", f"Content-Length: {len(body)}") + body)
    assert got.status_code == 200 and got.content == PROGRESS_ANSWER  # decoded by requests, as sent
    assert record["findings"] == [] and record["response"]["body_format"] == "json", record
    assert record["response"]["body"]["Payload"]["Status"] == "COMMIT"


def _zlib(data: bytes, wbits: int) -> bytes:
    import zlib

    squeezer = zlib.compressobj(wbits=wbits)
    return squeezer.compress(data) + squeezer.flush()


@pytest.mark.parametrize("encoding, body", [
    ("gzip", PROGRESS_ANSWER),  # plain
    ("gzip", _zlib(PROGRESS_ANSWER, 15)),  # zlib's stream: urllib3 reads gzip as gzip alone
    ("gzip", _zlib(PROGRESS_ANSWER, -15)),
    ("deflate", _zlib(PROGRESS_ANSWER, 31)),  # gzip's: deflate is zlib's stream, or one without its header
], ids=["plain", "zlib-as-gzip", "raw-deflate-as-gzip", "gzip-as-deflate"])
def test_an_answer_that_does_not_inflate_as_it_says_is_a_finding_not_a_conforming_answer(encoding, body, tmp_path):
    """A plain envelope under `Content-Encoding: gzip`, or one coded otherwise than it says: the app's client cannot
    decode it (requests raises ContentDecodingError), and the proxy had checked it as the JSON it was (or read it
    whichever way it inflated) and found it conforming."""
    answer = _head("200 OK", "Content-Type: application/json", f"Content-Encoding: {encoding}",
                   f"Content-Length: {len(body)}") + body
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            with pytest.raises(requests.exceptions.ContentDecodingError):  # as the app reads it
                _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
            proxy.proxy.drain()
    (record,) = read_records(tmp_path)
    assert [(f["kind"], f["subject"]) for f in record["findings"]] == [("content-encoding", encoding)], record
    assert f"does not inflate as {encoding}" in record["findings"][0]["detail"]
    assert record["response"]["unchecked"].startswith(f"the answer's Content-Encoding is {encoding}, but its body")


def test_an_answer_in_deflate_streams_one_after_another_is_read_as_far_as_the_app_reads_it(tmp_path):
    """urllib3 reads one deflate stream, and leaves what follows: the proxy had read on, and recorded as conforming
    an envelope the app got a third of."""
    body = _zlib(PROGRESS_ANSWER[:50], 15) + _zlib(PROGRESS_ANSWER[50:], 15)
    got, record = _recorded_answer(tmp_path, _head("200 OK", "Content-Type: application/json", "Content-Encoding: "
                                                   "deflate", f"Content-Length: {len(body)}") + body)
    assert got.content == PROGRESS_ANSWER[:50]
    assert [(f["kind"], f["subject"]) for f in record["findings"]] == [("not-an-envelope", "not JSON")], record


def test_a_compressed_answer_larger_than_what_is_recorded_keeps_its_first_part_decoded(tmp_path):
    """A gzip answer inflating past 256 KiB was recorded with no text at all (as binary), where the same answer sent
    plain keeps its first 256 KiB, as the README says."""
    import gzip

    from ivh_mock.proxy.forward import RECORDED_BODY_BYTES

    large = _envelope('{"Status": "COMMIT", "Progress": 0, "ArrayCount": 0, "Duration": 0, "MediaUrl": "", '
                      '"Pad": "%s"}' % ("x" * 400_000))
    body = gzip.compress(large)
    _, record = _recorded_answer(tmp_path, _head("200 OK", "Content-Type: application/json", "Content-Encoding: gzip",
                                                 f"Content-Length: {len(body)}") + body)
    response = record["response"]  # (redacted as text: its SessionID among others)
    assert response["body_format"] == "text (cut)" and response["body"].startswith('{"Header": {"Code": 0')
    assert response["body"].endswith("x" * (RECORDED_BODY_BYTES - len(large.split(b'"Pad": "')[0]) - 8))
    assert record["findings"] == [] and response["unchecked"].startswith("the answer is larger than")


def test_the_fields_an_answers_connection_header_names_are_not_passed_on(tmp_path):
    """RFC 9110 7.6.1: a field an answer's Connection header names is hop-by-hop. The request's were dropped; the
    answer's reached the app (an upstream's internal routing header)."""
    got, _ = _recorded_answer(tmp_path, _head("200 OK", "Content-Type: application/json", "Connection: keep-alive, "
                                              "X-Internal-Route", "X-Internal-Route: backend-7", "Keep-Alive: "
                                              "timeout=5", "X-Kept: yes", f"Content-Length: {len(PROGRESS_ANSWER)}")
                              + PROGRESS_ANSWER)
    assert got.status_code == 200 and got.content == PROGRESS_ANSWER
    assert "X-Internal-Route" not in got.headers and "Keep-Alive" not in got.headers and got.headers["X-Kept"] == "yes"
    # but for the fields that say what the body is: the app had got gzip without its Content-Encoding, where the
    # proxy judged the answer decoded
    import gzip

    body = gzip.compress(PROGRESS_ANSWER)
    got, record = _recorded_answer(tmp_path / "named", _head("200 OK", "Content-Type: application/json",
                                                             "Connection: keep-alive, Content-Encoding",
                                                             "Content-Encoding: gzip", f"Content-Length: {len(body)}")
                                   + body)
    assert got.headers["Content-Encoding"] == "gzip" and got.content == PROGRESS_ANSWER and record["findings"] == []


@pytest.mark.parametrize("body, subject, says", [
    (b"<html><body>502 Bad Gateway</body></html>", "markup", "it is markup (an HTML or XML page)"),
    (b"\xef\xbb\xbf" + PROGRESS_ANSWER, "byte order mark", "begins with a UTF-8 byte order mark"),
    (PROGRESS_ANSWER.replace(b'"Progress": 0', b'"Progress": NaN'), "number", "a number no double holds (NaN"),
    (PROGRESS_ANSWER.replace(b'"Progress": 0', b'"Progress": 1' + b"0" * 400), "number", "a number no double holds"),
    (PROGRESS_ANSWER.replace(b"COMMIT", b"\xff"), "not UTF-8", "it is not UTF-8"),
    (b"[1, 2]", "not an object", "it is JSON, but an array"),
    (b"", "empty", "it has no body"),
], ids=["html", "bom", "nan", "huge-number", "latin1", "array", "empty"])
def test_an_answer_that_is_no_envelope_says_why_each_cause_its_own_finding(body, subject, says, tmp_path):
    """A gateway's HTML page, a byte order mark, NaN, a number past a double's, a body not UTF-8: each was the one
    finding `not-an-envelope`/`body`, said once on stderr for all of them and naming none."""
    _, record = _recorded_answer(tmp_path, _head("200 OK", "Content-Type: application/json",
                                                 f"Content-Length: {len(body)}") + body)
    (finding,) = [f for f in record["findings"] if f["kind"] == "not-an-envelope"]
    assert finding["subject"] == subject and says in finding["detail"], finding


def test_an_answer_in_raw_deflate_is_read_as_the_apps_client_reads_it(tmp_path):
    """`Content-Encoding: deflate` without zlib's header, which urllib3 (the app's requests) decodes: the proxy read
    only zlib's form and judged a valid answer `not-an-envelope`."""
    import zlib

    squeezer = zlib.compressobj(wbits=-15)
    body = squeezer.compress(PROGRESS_ANSWER) + squeezer.flush()
    answer = _head("200 OK", "Content-Type: application/json", "Content-Encoding: deflate",
                   f"Content-Length: {len(body)}") + body
    with RawServer(answer) as upstream:
        with ProxyServer(Proxy(upstream.url, Recorder(tmp_path), warn=lambda text: None), port=0) as proxy:
            got = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
            assert got.status_code == 200 and got.content == PROGRESS_ANSWER  # decoded by requests, as sent
            proxy.proxy.drain()
    (record,) = read_records(tmp_path)
    assert record["findings"] == [] and "unchecked" not in record["response"], record


def test_calibration_leaves_out_a_task_whose_times_no_proxy_records():
    """A recording edited to hold NaN times, or a submission timed after its polls (a wall clock stepped back), had
    given pace.json `NaN` or a queue of -98.5 s, which `serve --pace` refuses, with drift exiting 0."""
    from ivh_mock.proxy import calibrate
    from ivh_mock.proxy.checks import TaskTrail

    seen = [(1.0, "COMMIT", 0, 0, 0, ""), (3.0, "MAKING", 10, 0, 0, ""), (8.0, "SUCCESS", 100, 0, 4000, "u")]
    for submitted_at, polls in ((float("nan"), seen), (100.0, seen), (0.0, [(float("inf"), *seen[0][1:]), *seen[1:]])):
        assert calibrate.measure([TaskTrail("t", submitted_at=submitted_at, seen=polls)]) is None
    assert calibrate.measure([TaskTrail("t", submitted_at=0.0, seen=seen)])["tasks"] == 1


def test_drift_reads_a_large_recording_without_holding_it_and_in_the_order_of_its_time(tmp_path):
    """drift held every record of a recording at once: 1.6 GB of memory for 200 MB of recordings (the default bound
    on them is 1 GiB). It now holds where each record is, and reads them again in the order of their time."""
    import tracemalloc

    from ivh_mock.proxy.recorder import ordered_records

    padding = "x" * 4000
    for day, times in (("20260102", range(5000, 10000)), ("20260101", range(5000))):  # the later file first
        with open(tmp_path / f"ivh-proxy-{day}.jsonl", "w") as handle:
            for t in times:
                handle.write(json.dumps({"seq": t, "kind": "exchange", "t": float(10_000 - t), "time": "",
                                         "request": {"method": "POST", "body": padding}, "findings": []}) + "\n")
    assert [record["t"] for record in ordered_records(tmp_path)] == [float(t) for t in range(1, 10_001)]
    tracemalloc.start()
    try:
        status, _ = _drift(tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert status == 0 and peak < 8_000_000, peak  # the recording is 40 MB


def test_a_proxy_out_of_descriptors_waits_for_one_without_keeping_a_core_busy(wrong_upstream, tmp_path):
    """With every descriptor of its limit in use (here 64, held by idle connections), the proxy had tried to accept
    again at once, forever: a core at 100% until a connection closed. It now waits, then serves once one frees."""
    import resource

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    proxy = subprocess.Popen([str(Path(sys.executable).with_name("ivh-mock")), "proxy", "--upstream",
                              wrong_upstream.url, "--port", "0", "--record", str(tmp_path / "rec")],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, preexec_fn=low_limit)
    idle: list[socket.socket] = []
    try:
        url = proxy.stdout.readline().split("listening on ", 1)[1].strip()
        port = int(url.rsplit(":", 1)[1])
        idle = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(70)]
        time.sleep(0.5)  # the proxy has taken what its descriptors allow, and the rest wait to be accepted

        def cpu_seconds() -> float:
            fields = Path(f"/proc/{proxy.pid}/stat").read_text().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

        before = cpu_seconds()
        time.sleep(1.0)
        assert cpu_seconds() - before < 0.5  # spinning, it took the whole second
        for connection in idle:
            connection.close()
        idle = []
        answer = _post(url, "describetimbre", {"Header": {}, "Payload": {"PageIndex": 1, "PageSize": 10}})
        assert answer.content == WRONG_ANSWERS[PATHS["describetimbre"]][0]
    finally:
        for connection in idle:
            connection.close()
        proxy.terminate()
        proxy.wait(timeout=30)


@pytest.mark.parametrize("answer, hang, status, says", [
    (b"", True, 504, "did not answer: ReadTimeout (timed out)"),
    (b"HTTP/1.1 abc\r\n\r\n", False, 502, "did not answer: ConnectionError (BadStatusLine: HTTP/1.1 abc)"),
    (b"", False, 502, "did not answer: ConnectionError (RemoteDisconnected: Remote end closed connection without "
                      "response)"),
    # it did answer, with a head urllib3 refuses: the 502 had said it did not, and named only the error's class
    (b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd", False, 502,
     "answered with a head the proxy cannot read: InvalidHeader (InvalidHeader: Content-Length contained multiple "
     "unmatching values (3, 4))"),
    # a head the upstream's hang-up cut short (no blank line ended it): passed on as a 200 with no body, and recorded
    (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Len", False, 502,
     "broke off its answer's head: ConnectionError (IncompleteHead: the connection ended after 3 line(s), before the "
     "blank line)"),
    (b"HTTP/1.1 200 OK\r\n", False, 502, "broke off its answer's head: ConnectionError (IncompleteHead: the "
                                         "connection ended after 1 line(s), before the blank line)"),
    # a header line past http.client's 64 KiB: answered, which the 502 had said it was not
    (b"X" * 70_000 + b"\r\n\r\n", False, 502, "did not answer: ConnectionError (LineTooLong: got more than 65536 "
                                               "bytes when reading status line)"),  # no HTTP answer began
    (b"HTTP/1.1 200 OK\r\nX-Long: " + b"x" * 70_000 + b"\r\nContent-Length: 0\r\n\r\n", False, 502,
     "answered with a head the proxy cannot read: ConnectionError (LineTooLong: got more than 65536 bytes when reading "
     "header line)"),
    (b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % n for n in range(120)) + b"Content-Length: 0\r\n\r\n",
     False, 502, "answered with a head the proxy cannot read: ConnectionError (HTTPException: got more than 100 "
                 "headers)"),
], ids=["silent", "bad-status-line", "hung-up", "two-lengths", "head-cut-short", "status-line-alone",
        "long-status-line", "long-line", "many-headers"])
def test_an_upstream_that_gives_no_answer_is_named_for_what_it_did(answer, hang, status, says, tmp_path):
    """The app's 502 had named only requests' error class: a refusal, a reset and a bad status line read alike. An
    answer whose head broke off had reached the app as a 200 with no body."""
    with RawServer(answer, hang=hang) as upstream, ProxyServer(
            Proxy(upstream.url, Recorder(tmp_path), read_timeout=1, warn=lambda text: None), port=0) as proxy:
        passed = _post(proxy.url, "getprogress", {"Header": {}, "Payload": {"TaskId": TASK}})
    assert passed.status_code == status
    assert passed.json()["error"]["message"] == f"ivh-mock proxy: upstream {upstream.url} {says}"


def test_a_record_the_disk_cuts_short_leaves_no_part_of_it_in_the_recording(tmp_path, monkeypatch):
    """A full disk (or a file size limit) took part of a record, then refused the rest: the part stayed, and the first
    record written once space came back was fused to it, a line no reader takes (drift dropped it unsaid)."""
    from ivh_mock.proxy import recorder as recorder_module

    recorder = Recorder(tmp_path)
    recorder.write({"kind": "exchange", "n": 1})
    real, calls = os.write, []

    def full(descriptor, data):  # the disk takes 10 bytes, then none
        calls.append(len(data))
        if len(calls) == 1:
            return real(descriptor, bytes(data[:10]))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(recorder_module.os, "write", full)
    with pytest.raises(OSError, match="No space left"):
        recorder.write({"kind": "exchange", "n": 2, "body": "x" * 100})
    monkeypatch.setattr(recorder_module.os, "write", real)
    recorder.write({"kind": "exchange", "n": 3})
    lines = (tmp_path / next(iter(os.listdir(tmp_path)))).read_text().splitlines()
    assert [json.loads(line)["n"] for line in lines] == [1, 3]
    assert len(calls) == 2 and calls[1] == calls[0] - 10  # the rest was asked for, then all of it taken back


def test_a_fifo_named_like_a_recording_is_no_recording_and_holds_nothing_up(tmp_path):
    """drift and --replay of a folder holding a FIFO named like a recording waited for ever for its writer."""
    from ivh_mock.proxy.recorder import recording_files

    good = {"kind": "exchange", "t": 1.0, "time": "x", "request": {"method": "POST"}, "findings": []}
    (tmp_path / "ivh-proxy-20260101.jsonl").write_text(json.dumps(good) + "\n")
    os.mkfifo(tmp_path / "ivh-proxy-20260102.jsonl")
    assert [path.name for path in recording_files(tmp_path)] == ["ivh-proxy-20260101.jsonl"]
    status, printed = _drift(tmp_path)  # it had waited for a writer for ever
    assert status == 0 and "drift report" in printed and "skipped" not in printed, printed


def test_drift_says_how_many_lines_of_the_recording_were_no_record(tmp_path):
    """A line cut short, garbage or nested past any record's depth was dropped unsaid: "From: 9 recorded
    exchange(s)", and the records a full disk had cut went unnoticed. Blank lines are no loss."""
    good = {"kind": "exchange", "t": 1.0, "time": "x", "request": {"method": "POST"}, "findings": []}
    lines = [json.dumps(good), '{"kind": "exch', "", json.dumps({**good, "t": 2.0}), "[" * 600 + "]" * 600]
    (tmp_path / "ivh-proxy-20260101.jsonl").write_bytes("\n".join(lines).encode() + b"\n\xff\xfe\n")
    status, printed = _drift(tmp_path)
    assert status == 0 and "  3 line(s) skipped: not a record as `ivh-mock proxy` writes one\n" in printed, printed
    report = json.loads((tmp_path / "drift-report.json").read_text())
    assert report["sources"] == ["2 recorded exchange(s), 2 of them answered",
                                 "3 line(s) skipped: not a record as `ivh-mock proxy` writes one"]


def test_drift_skips_records_whose_fields_are_of_other_types_and_does_not_blame_the_upstream_for_an_app(tmp_path):
    """An operation or a finding's subject of another type, or signals that are no object, had made drift fail with a
    traceback; an app that left mid-answer was reported as an exchange the upstream failed."""
    good = {"kind": "exchange", "t": 1.0, "time": "x", "request": {"method": "POST"}, "findings": []}
    odd = [{**good, "operation": ["a"], "error": "x"},
           {**good, "findings": [{"kind": "k", "subject": ["s"]}]},
           {**good, "request": {"method": "POST", "signals": 5}}]
    left = {**good, "t": 2.0, "error": "the app took no more of the answer: BrokenPipeError"}
    (tmp_path / "ivh-proxy-20260101.jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*odd, good, left]))
    status, printed = _drift(tmp_path)
    assert status == 0 and "exchange-failed" not in printed, printed


def test_a_request_dribbled_past_its_time_to_arrive_is_cut_off_and_its_thread_comes_free(tmp_path, monkeypatch):
    """A head sent a byte every 15 s, under the 30 s idle timeout, held its thread for as long as it kept coming (300
    of them, 300 threads). A request now has the mock's own time to arrive (D82), counted from its first byte; one
    that came whole goes on, and its answer's writes are timed by the idle timeout again."""
    from ivh_mock.spec import deadline

    monkeypatch.setattr(deadline, "REQUEST_SECONDS", 0.6)
    with MockServer() as mock, ProxyServer(Proxy(mock.base_url, Recorder(tmp_path), warn=lambda text: None),
                                           port=0) as proxy:
        dribbler = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        started, sent = time.monotonic(), 0
        try:
            for byte in b"GET /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Drip: " + b"a" * 200:
                dribbler.sendall(bytes([byte]))
                sent += 1
                time.sleep(0.05)
            pytest.fail("a request 10 s in the coming was still read")
        except OSError:  # reset, or broken pipe: it was closed under the sender
            pass
        finally:
            dribbler.close()
        assert time.monotonic() - started < 3 and sent < 60, (time.monotonic() - started, sent)
        # a client's CRLF after a body, alone in its packet, starts no request: it is left to the idle timeout
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as kept:
            reader = kept.makefile("rb")

            def answered() -> bytes:
                head = b""
                while not head.endswith(b"\r\n\r\n"):
                    line = reader.readline()
                    assert line, f"the connection was closed after {head!r}"
                    head += line
                length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
                return head + reader.read(length)

            kept.sendall(b"POST /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 16\r\n\r\n{\"advance\": 0.5}")
            assert answered().startswith(b"HTTP/1.1 200 ")
            kept.sendall(b"\r\n")
            time.sleep(1.0)  # past the time to arrive, were the CRLF the start of a request
            kept.sendall(b"GET /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert answered().startswith(b"HTTP/1.1 200 ")
        # one that comes whole is answered, on a connection kept alive for the next
        with requests.Session() as session:
            for _ in range(2):
                assert session.get(f"{proxy.url}/__mock__/clock", timeout=10).json()["frozen"] is True
                time.sleep(0.7)  # past the time to arrive, between requests: the next one's time starts anew


def test_a_connection_past_the_proxys_bound_is_answered_503_and_none_is_left_open(tmp_path, monkeypatch):
    """Each connection holds a thread, and a body of up to 32 MiB: none were bounded. Past MAX_CONNECTIONS, a
    connection is answered 503 and closed; every connection served closes its socket."""
    from ivh_mock.proxy import server as proxy_server

    monkeypatch.setattr(proxy_server, "MAX_CONNECTIONS", 2, raising=False)
    before = len(os.listdir("/proc/self/fd"))
    with MockServer() as mock, ProxyServer(Proxy(mock.base_url, Recorder(tmp_path), warn=lambda text: None),
                                           port=0) as proxy:
        held = [socket.create_connection(("127.0.0.1", proxy.port), timeout=5) for _ in range(2)]
        time.sleep(0.2)  # both taken
        third = requests.get(f"{proxy.url}/__mock__/clock", timeout=10)
        assert third.status_code == 503 and third.headers["Retry-After"] == "1"
        assert third.json() == {"error": {"message": "ivh-mock proxy: 2 connections are served already; try "
                                                     "again"}}
        for connection in held:
            connection.close()
        until(lambda: requests.get(f"{proxy.url}/__mock__/clock", timeout=10).status_code == 200, seconds=5)
        for _ in range(30):
            requests.get(f"{proxy.url}/__mock__/clock", timeout=10, headers={"Connection": "close"})
    until(lambda: len(os.listdir("/proc/self/fd")) <= before + 2, seconds=5)  # (the test's own sessions aside)


def test_request_bodies_held_at_once_are_bounded_and_what_each_held_comes_free(tmp_path, monkeypatch):
    """Each of up to 1000 connections could hold a 32 MiB body at once (32 GiB). The bodies the proxy holds are
    bounded together (MAX_BODIES_HELD), each held a piece at a time as it comes, past its first piece, which is free
    (an API request is never refused for what larger bodies hold): a piece that would pass the bound is answered 503,
    and the answer reaches an app still sending. A body's share comes free once its exchange ends, or its connection
    goes. Here a piece is 100 bytes and the bound 1000."""
    from ivh_mock.proxy import server as proxy_server

    monkeypatch.setattr(proxy_server, "READ_PIECE", 100)

    def body(size: int) -> bytes:  # a control API body of `size` bytes that changes nothing
        return b'{"frozen": true' + b" " * (size - 16) + b"}"

    def head(size: int) -> bytes:
        return (b"POST /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % size)

    def accepted(proxy, size: int) -> bool:
        answer = requests.post(f"{proxy.url}/__mock__/clock", data=body(size), timeout=10,
                               headers={"Content-Type": "application/json"})
        assert answer.status_code == 200, (size, answer.status_code, answer.text)
        return True

    with MockServer() as mock, ProxyServer(Proxy(mock.base_url, Recorder(tmp_path), warn=lambda text: None), port=0,
                                           bodies_held=1000) as proxy:
        first = socket.create_connection(("127.0.0.1", proxy.port), timeout=10)
        first.sendall(head(1100) + body(1100)[:1010])  # in its last piece: the bound held, the first free
        until(lambda: proxy._held == 1000, seconds=5)
        # its second piece would pass the bound: the rest, still coming, is read and dropped before the close (closed
        # under it, http.client got a broken pipe, not the answer; requests reads an answer after one)
        sender = http.client.HTTPConnection("127.0.0.1", proxy.port, timeout=10)
        sender.request("POST", "/__mock__/clock", body=body(8 * 1_048_576))
        refused = sender.getresponse()
        assert refused.status == 503 and refused.headers["Retry-After"] == "1"
        assert json.loads(refused.read()) == {"error": {"message": (
            "ivh-mock proxy: the proxy holds as many request bodies as it takes at once (1000 bytes in all): nothing "
            "was forwarded; send the request again")}}
        sender.close()
        assert accepted(proxy, 100)  # a body of one piece is never refused for what others hold
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as chunked:
            whole = body(350)
            chunked.sendall(b"POST /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                            b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                            % (60, whole[:60], 290, whole[60:]))  # 60 free, then 40 free and 250 past the bound
            assert chunked.makefile("rb").readline().startswith(b"HTTP/1.1 503 ")
        first.sendall(body(1100)[1010:])  # the first body whole: answered, and what it held comes free as the
        assert first.makefile("rb").readline().startswith(b"HTTP/1.1 200 ")  # exchange ends (after the answer)
        first.close()
        until(lambda: proxy._held == 0, seconds=5)
        assert accepted(proxy, 1100)  # 100 free, and the bound
        until(lambda: proxy._held == 0, seconds=5)  # (once its exchange has ended, just after its answer)
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=10) as gone:
            gone.sendall(head(1100) + body(1100)[:1010])
            until(lambda: proxy._held == 1000, seconds=5)
        until(lambda: proxy._held == 0, seconds=5)  # an app that hung up mid-body held it
        assert accepted(proxy, 1100)
    assert proxy._held == 0


def test_a_body_of_many_small_chunks_costs_the_proxy_about_its_size(tmp_path):
    """The chunks of a chunked body were kept as a list of parts until the end: a body sent in 2-byte chunks took 30
    times its size (with 1-byte chunks, 8 times), past what the bound on bodies held counts. One buffer now: what the
    proxy's handler holds, read while the whole body is held, is about its size."""
    import tracemalloc

    def held_by_the_proxy() -> int:
        return sum(stat.size for stat in tracemalloc.take_snapshot().statistics("filename")
                   if stat.traceback[0].filename == proxy_server.__file__)

    from ivh_mock.proxy import server as proxy_server

    with MockServer() as mock, ProxyServer(Proxy(mock.base_url, Recorder(tmp_path), warn=lambda text: None),
                                           port=0) as proxy:
        text = b'{"frozen": true' + b" " * 199_984 + b"}"  # 200,000 bytes, sent 2 at a time
        chunks = b"".join(b"2\r\n%s\r\n" % text[n:n + 2] for n in range(0, len(text), 2))
        tracemalloc.start()
        try:
            with socket.create_connection(("127.0.0.1", proxy.port), timeout=30) as connection:
                connection.sendall(b"POST /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                   b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
                seen = [0]

                def read_whole() -> bool:  # what the handler holds has stopped growing: the body is read
                    seen.append(held_by_the_proxy())
                    return seen[-1] == seen[-2] >= len(text)

                until(read_whole, seconds=30, pause=0.3)
                held = seen[-1]
                connection.sendall(b"0\r\n\r\n")
                assert connection.makefile("rb").readline().startswith(b"HTTP/1.1 200 ")
        finally:
            tracemalloc.stop()
    assert held < 2 * len(text), held  # a list of its parts held 4.3 MB
