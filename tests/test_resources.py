"""The served mock (`ivh-mock serve` as shipped) under hostile load: its worker's memory (read from /proc) and its
data directory stay within the bounds bench/reliability.py states, no answer is a 5xx, and connections that dawdle
never stop it answering. The same floods, larger, write docs/reliability.md (`python -m bench.reliability`); these
are worth their few seconds each because each bound once broke (the journal grew without end, eight large photos
took 2 GB, eight slow sockets stopped the server)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import re
import sys
import time
from pathlib import Path

import pytest
import requests
from bench.reliability import Served, _signed, accounts, media, non_readers, oversized, refused, slow_sockets

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads memory figures from /proc")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    with Served(tmp_path_factory.mktemp("resources") / "data") as mock:
        yield mock


@pytest.mark.slow
def test_dawdling_connections_and_stalled_downloads_never_stop_the_served_mock(served):
    """32 sockets dripping header bytes, 32 idle, 8 dripping a body and 8 submissions whose photo host trickles,
    against 1 worker x 8 threads: every call made meanwhile is answered within 3 s."""
    figures = slow_sockets(served, dawdlers=32, seconds=4)
    assert figures.tried >= 10 and figures.notes["answered"] == figures.tried, figures
    assert figures.problems() == [], figures


def test_clients_that_read_nothing_of_a_large_file_hold_no_thread_and_no_copy_of_it(served):
    """20 connections ask for a 24 MB upload, half of them for a range of it, and read nothing: the mock answers
    everyone else meanwhile, and its memory holds no copy of the file per answer. Nine range requests had held every
    thread of the worker, and each whole-file answer a copy of the file (30 of them, 1 GB)."""
    figures = non_readers(served, 20, seconds=2)
    assert figures.notes["answered"] == figures.tried >= 5, figures
    assert figures.problems() == [] and figures.memory_growth_mb < 48, figures


def test_the_served_mock_answers_each_kind_of_range_with_exactly_its_bytes(served):
    """Under waitress a range goes as the file itself, moved to the range's start (routes/sendfile.py): each part
    is the file's own bytes, no more. A Range that is not one range of bytes is ignored, as an object store does."""
    data = bytes(range(256)) * 4096  # 1 MiB, every offset telling
    url = requests.post(f"{served.url}/__mock__/assets?name=ranges.bin", data=data, timeout=30).json()["Url"]
    for asked, start, end in [("bytes=100-199", 100, 200), ("bytes=1000000-", 1000000, len(data)),
                              ("bytes=-300", len(data) - 300, len(data)), ("bytes=0-0", 0, 1),
                              ("bytes=5-99999999", 5, len(data))]:
        part = requests.get(url, headers={"Range": asked}, timeout=30)
        assert part.status_code == 206 and part.content == data[start:end], asked
        assert part.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(data)}", asked
    assert requests.get(url, timeout=30).content == data
    for unsatisfiable in (f"bytes={len(data)}-", "bytes=-0", "bytes= -000"):  # RFC 9110: no byte of the file
        refused = requests.get(url, headers={"Range": unsatisfiable}, timeout=30)
        assert refused.status_code == 416 and refused.headers["Content-Range"] == f"bytes */{len(data)}", unsatisfiable
        # under an If-Range the file no longer matches, a Range is ignored: the whole file, as for any other
        whole = requests.get(url, headers={"Range": unsatisfiable, "If-Range": '"another"'}, timeout=30)
        assert whole.status_code == 200 and whole.content == data, unsatisfiable
    for ignored in ("bytes=0-9,20-29", "bytes=abc", "items=0-9", "bytes=9-0"):  # werkzeug had answered 416
        whole = requests.get(url, headers={"Range": ignored}, timeout=30)
        assert whole.status_code == 200 and whole.content == data, ignored
    # If-Range compares strongly (RFC 9110 13.1.5): the file's own ETag matches, its weak form never (had: 206)
    etag = requests.head(url, timeout=30).headers["ETag"]
    for if_range, status in ((etag, 206), (f"W/{etag}", 200)):
        answer = requests.get(url, headers={"Range": "bytes=0-1", "If-Range": if_range}, timeout=30)
        assert answer.status_code == status and answer.content == (data[:2] if status == 206 else data), if_range


def _refusal(url: str, head: bytes, kind: bytes = b"application/json") -> tuple[str, dict | bytes]:
    """The status line and the body (JSON, decoded) of the answer a server at `url` gives to `head`, after which it
    closes the connection."""
    import json
    import socket

    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head)
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    status, _, rest = data.partition(b"\r\n")
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert f"Content-Type: {kind.decode()}".encode() in headers, data
    return status.decode(), json.loads(body) if kind == b"application/json" and body else body


def test_a_request_the_server_cannot_read_is_answered_in_its_routes_format(served):
    """Two Content-Lengths, a negative one, a bad chunk size: waitress refuses them before the app sees them, in
    plain text; the API's routes now answer 100003 in the envelope and the control API's in its JSON."""
    import socket

    host, port = served.url.removeprefix("http://").rsplit(":", 1)

    def answer(head: bytes) -> tuple[str, dict]:
        return _refusal(served.url, head)

    api = "/v2/ivh/videomaker/broadcastservice/getprogress"
    for framing in (b"Content-Length: 5\r\nContent-Length: 6", b"Content-Length: -1",
                    b"Transfer-Encoding: chunked\r\n\r\nzz",
                    # both (RFC 9112 6.1): waitress went by the chunks and kept the connection, so the pipelined
                    # request after them was answered too, as a proxy that went by the length would not have seen it
                    b"Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
                    b"GET /__mock__/clock HTTP/1.1\r\nHost: x",
                    # chunked twice, and an empty Transfer-Encoding beside a length: waitress read the first as
                    # chunked once and the second by its length, and answered the request after each
                    b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\nGET /__mock__/clock HTTP/1.1\r\nHost: x",
                    b"Transfer-Encoding: \r\nContent-Length: 4\r\n\r\n{}{}GET /__mock__/clock HTTP/1.1\r\nHost: x"):
        status, body = answer(b"POST " + api.encode() + b" HTTP/1.1\r\nHost: x\r\n" + framing + b"\r\n\r\n")
        assert status == "HTTP/1.1 200 OK" and body["Header"]["Code"] == 100003, body
        assert body["Header"]["Message"].startswith("the request could not be read: Bad Request")
    # HTTP/1.0 has no Transfer-Encoding: waitress went by the length and kept a keep-alive connection
    status, body = answer(b"POST " + api.encode() + b" HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n"
                          b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n"
                          b"GET /__mock__/clock HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status.endswith(" 200 OK") and "not HTTP/1.0's" in body["Header"]["Message"], body
    status, body = answer(b"POST /__mock__/reset HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n")
    assert status == "HTTP/1.1 400 Bad Request" and body["error"]["message"].startswith("the request could not be read")
    # a head whose lines end in a bare LF is refused as it arrives: waitress had waited 30 s for CRLF CRLF
    for head in (b"GET /__mock__/clock HTTP/1.1\nHost: x\n\n", b"GET /__mock__/clock HTTP/1.1\r\nHost: x\n\r\n"):
        status, body = answer(head)
        assert status == "HTTP/1.1 400 Bad Request" and "bare LF" in body["error"]["message"], body
    status, body = answer(b"POST " + api.encode() + b" HTTP/1.1\nHost: x\n\n")
    assert body["Header"]["Code"] == 100003 and "ends in a bare LF; HTTP needs CRLF" in body["Header"]["Message"]
    # a head waitress refuses before it reads the path (a header line with no colon, a bare LF in a head that
    # ends): no answer had come at all, the connection held open, and two tracebacks were logged
    for head in (b"POST " + api.encode() + b"?x=1 HTTP/1.1\r\nHost x\r\n\r\n",
                 b"POST " + api.encode() + b" HTTP/1.1\nHost: x\r\n\r\n"):
        status, body = answer(head)
        assert status == "HTTP/1.1 200 OK" and body["Header"]["Code"] == 100003, body
    status, body = answer(b"GET /__mock__/clock HTTP/1.1\r\nHost x\r\n\r\n")
    assert status == "HTTP/1.1 400 Bad Request" and "Invalid header" in body["error"]["message"], body
    with socket.create_connection((host, int(port)), timeout=10) as connection:  # a target urlsplit cannot read
        connection.sendall(b"GET http://[x/v2 HTTP/1.1\r\nHost x\r\n\r\n")
        assert connection.recv(65536).startswith(b"HTTP/1.1 400 Bad Request")
    # ... with its head otherwise sound: urllib's ValueError passed waitress by, and the connection was closed with
    # no answer to it nor to the request before it on the same connection
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"GET /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
                           b"GET http://[::1/__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    assert re.findall(rb"HTTP/1.1 (\d+)", data) == [b"200", b"400"], data
    for target, code in ((b"http://[::1/__mock__/clock", None), (b"http://]" + api.encode(), 100003)):
        status, body = answer(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        message = body["error"]["message"] if code is None else body["Header"]["Message"]
        assert "the request target cannot be read as a URL" in message, body
    # a result URL's, as an object store answers
    status, data = _refusal(served.url, b"GET /broadcast/Basic/video/x.mp4 HTTP/1.1\nHost: x\n\n", b"application/xml")
    assert status == "HTTP/1.1 400 Bad Request", status
    assert b"<Code>InvalidRequest</Code>" in data and b"<Resource>/broadcast/Basic/video/x.mp4</Resource>" in data


def _exchange(url: str, sent: bytes, seconds: float = 5) -> bytes:
    """All a server at `url` answers to `sent` until it closes the connection (or `seconds` pass)."""
    import socket

    host, port = url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=seconds) as connection:
        connection.sendall(sent)
        data = b""
        with contextlib.suppress(TimeoutError):
            while chunk := connection.recv(65536):
                data += chunk
    return data


def test_framing_and_versions_waitress_let_through_are_answered_at_once(served):
    """What waitress left unanswered, read wrongly or let run: each is answered at once, in its route's format."""
    api = b"/v2/ivh/videomaker/broadcastservice/getprogress"
    clock = b"GET /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n"
    # `Expect: 100-continue` on a request with no body: waitress sent `100 Continue`, never answered it, and read the
    # next request's head into it (a 415 named a Content-Type that request never sent)
    data = _exchange(served.url, b"GET /__mock__/nothing HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: 100-continue\r\n"
                     b"Content-Type: text/plain\r\n\r\nPOST /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 16\r\nConnection: close\r\n\r\n"
                     b'{"frozen": true}')
    assert re.findall(rb"HTTP/1.1 (\d+)", data) == [b"404", b"200"] and b"100 Continue" not in data, data
    # a chunked body: a size line that ends in a bare LF (waited on until the idle timeout), one of 200 KB of
    # extensions (reread on every read: 16 MB cost 15 s of processor), a trailer past its bounds or with no field
    # (in one read too: waitress's patterns took `5\n` for 5, a bare LF before the CRLF, and a line of any length)
    for body, named in ((b"2\n{}\n0\n\n", "ends in a bare LF"), (b"2\n\r\n{}\r\n0\r\n\r\n", "Invalid chunk size"),
                        (b"2;a\n\r\n{}\r\n0\r\n\r\n", "Invalid chunk extension"),
                        (b"2\r\n{}\r\n0\n\r\n", "Invalid chunk size"),
                        (b"1;a=" + b"b" * 200_000 + b"\r\n{\r\n0\r\n\r\n", "longer than 4096 bytes"),
                        (b"1;a=" + b"b" * 5000 + b"\r\n{\r\n0\r\n\r\n", "Invalid chunk extension"),
                        (b"2\r\n{}\r\n0\r\nX: " + b"b" * 100_000 + b"\r\n\r\n", "framing (chunk sizes"),
                        (b"2\r\n{}\r\n0\r\nX: y\r\r\n\r\n", "ends in a bare LF or CR"),
                        (b"2\r\n{}\r\n0\r\nnot a field\r\n\r\n", "is no field")):
        status, answer = _refusal(served.url, b"POST " + api + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                                  b"\r\n\r\n" + body)
        assert answer["Header"]["Code"] == 100003 and named in answer["Header"]["Message"], (body[:40], answer)
    # a trailer's CR and LF in two reads are its line's end, not a bare CR; a trailer line must be a field
    import socket

    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(b"POST /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                           b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\ne\r\n{\"advance\": 0}\r\n0\r\n"
                           b"X-Check: 1\r")
        time.sleep(0.2)
        connection.sendall(b"\n\r")
        time.sleep(0.2)
        connection.sendall(b"\n")
        assert connection.recv(65536).startswith(b"HTTP/1.1 200 OK")
    status, answer = _refusal(served.url, b"POST " + api + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                              b"\r\n2\r\n{}\r\n0\r\nX A: b\r\n\r\n")
    assert "is no field" in answer["Header"]["Message"], answer
    # chunks of a byte each are HTTP still: 5 bytes of framing apiece
    body = json.dumps({"Header": {}, "Payload": {"TaskId": "x" * 20_000}}).encode()
    answer = requests.post(f"{served.url}{api.decode()}", data=(bytes([byte]) for byte in body), timeout=30)
    assert answer.json()["Header"]["Code"] not in (0, 100003), answer.json()  # read whole, then judged
    # `close` among other tokens closes (RFC 9112 9.6), and HTTP/1.2 is read as the 1.1 it extends
    for head in (clock + b"Connection: TE, close\r\n\r\n", clock + b"Connection: keep-alive\r\nConnection: close"
                 b"\r\n\r\n", clock.replace(b"HTTP/1.1", b"HTTP/1.2") + b"Connection: close\r\n\r\n"):
        data = _exchange(served.url, head + clock + b"\r\n")
        assert data.startswith(b"HTTP/1.1 200 OK\r\nConnection: close\r\n") and data.count(b"HTTP/1.1") == 1, data
    status, answer = _refusal(served.url, clock.replace(b"HTTP/1.1", b"HTTP/2.0") + b"\r\n")
    assert status == "HTTP/1.1 505 HTTP Version Not Supported", status
    assert "HTTP/2.0 is not served" in answer["error"]["message"], answer
    status, answer = _refusal(served.url, b"GET /__mock__/clock\r\nHost: 127.0.0.1\r\n\r\n")
    assert status.endswith(" 400 Bad Request") and "has no HTTP version" in answer["error"]["message"], answer
    # waitress's own refusal (no route's) to a HEAD: its head alone
    data = _exchange(served.url, b"HEAD /elsewhere HTTP/1.1\r\nHost x\r\n\r\n")
    assert data.startswith(b"HTTP/1.1 400 Bad Request") and data.endswith(b"\r\n\r\n"), data


def test_clients_that_read_nothing_of_a_sample_hold_no_copy_of_it(served):
    """A sample, made in memory, was answered from memory: werkzeug copied it for each answer, and twelve clients that
    read nothing of the 21 MB one held 250 MB. It is sent from a file now, as an upload is."""
    import socket

    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    sample = b"/__mock__/assets/samples/audio-too-large.wav"
    assert len(requests.get(served.url + sample.decode(), timeout=60).content) > 20 * 1_048_576  # made once
    before = served.memory_mb()
    opened = []
    try:
        for _ in range(12):
            connection = socket.socket()
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            connection.connect((host, int(port)))
            connection.sendall(b"GET " + sample + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            opened.append(connection)
        time.sleep(1.5)
        assert requests.get(f"{served.url}/__mock__/clock", timeout=5).status_code == 200
        assert served.memory_mb() - before < 48
    finally:
        for connection in opened:
            connection.close()


def test_a_request_without_a_host_is_refused_not_given_waitresss_placeholder_name(served):
    """With no Host header a submission had been accepted, its MediaUrl on `http://waitress.invalid:PORT` for good,
    the asset listing's URLs too, and the control API refused 'waitress.invalid', a name the client never sent."""
    from ivh_mock.spec.signing import signed_query

    query = signed_query("no-host", "mock-accesstoken", int(time.time()))
    body = b'{"Header": {}, "Payload": {"TaskId": "x"}}'
    for version in (b"1.1", b"1.0"):
        status, answer = _refusal(served.url, b"POST /v2/ivh/videomaker/broadcastservice/getprogress?" +
                                  query.encode() + b" HTTP/" + version + b"\r\nContent-Type: application/json\r\n"
                                  b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        assert answer["Header"]["Code"] == 100003 and "has no Host header" in answer["Header"]["Message"], answer
        for path in (b"/__mock__/clock", b"/__mock__/assets/samples"):
            status, answer = _refusal(served.url, b"GET " + path + b" HTTP/" + version + b"\r\nConnection: close"
                                                  b"\r\n\r\n")
            assert status.endswith(" 400 BAD REQUEST") and "has no Host header" in answer["error"]["message"], answer


def test_an_absolute_form_targets_authority_is_the_requests_host(served):
    """RFC 9112 3.2.2: the host of `GET http://host/path` is that authority, whatever Host says. waitress left it
    unread: the control API's check of the host read Host instead, and a task kept URLs on Host's name."""
    port = served.url.rsplit(":", 1)[1]
    for target, host, status in (("http://evil.example/__mock__/clock", "127.0.0.1", "403"),
                                 (f"http://127.0.0.1:{port}/__mock__/clock", "evil.example", "200")):
        answer, _ = _refusal(served.url, f"GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
                             .encode())
        assert answer.split()[1] == status, (target, answer)
    answer, body = _refusal(served.url, b"GET ftp://127.0.0.1/__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert answer.split()[1] == "400" and "scheme 'ftp' is not http or https" in body["error"]["message"], body


def test_a_target_with_no_path_is_read_as_the_root(served):
    """`GET ?a` (no path before the query) got werkzeug's own 308 to `/` on the Host the client sent, where `GET a`
    is read as `/a`: it is read as `/?a`, which goes to the dashboard."""
    for target in (b"?a", b"/?a"):
        status, _ = _refusal(served.url, b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close"
                                         b"\r\n\r\n", kind=b"text/html; charset=utf-8")
        assert status.endswith(" 302 FOUND"), (target, status)


def test_an_answer_without_a_body_keeps_the_connection(served):
    """waitress closed the connection after any answer with no Content-Length, a 204 or a 304 too, which end with
    their head: each OPTIONS or revalidation cost a new connection. One the client asks to close still closes."""
    import socket

    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    options = b"OPTIONS /v2/ivh/videomaker/broadcastservice/getprogress HTTP/1.1\r\nHost: x\r\n"
    clock = b"GET /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"

    def answers(sent: bytes) -> bytes:
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            connection.sendall(sent)
            data = b""
            while chunk := connection.recv(65536):
                data += chunk
        return data

    kept = answers(options + b"\r\n" + clock)
    assert kept.startswith(b"HTTP/1.1 204 ") and b"\r\nConnection: close" not in kept.split(b"\r\n\r\n")[0], kept
    assert b"HTTP/1.1 200 OK" in kept and b'"now":' in kept, kept  # the next request on it was answered
    closed = answers(options + b"Connection: close\r\n\r\n" + clock)
    assert closed.startswith(b"HTTP/1.1 204 ") and b"HTTP/1.1 200" not in closed, closed


def test_a_chunk_announced_past_its_routes_limit_is_refused_as_its_size_comes(served):
    """A Content-Length past the route's limit is refused at once; a chunk announced past it had been waited for
    (the client got no answer until the connection's idle timeout, or had to send it all to be refused)."""
    api = b"/v2/ivh/videomaker/broadcastservice/getprogress"
    for size in (b"200000", b"f" * 40):  # 2 MiB, and 2**160 bytes
        status, body = _refusal(served.url, b"POST " + api + b" HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + size + b"\r\n{\"Head")
        assert status == "HTTP/1.1 200 OK" and body["Header"]["Code"] == 100003, body
        assert body["Header"]["Message"] == "request body is larger than 1048576 bytes", body


def test_a_body_too_large_for_its_route_is_refused_before_a_client_waiting_on_100_continue_sends_it(served):
    """waitress answered `Expect: 100-continue` with `100 Continue` whatever the length declared, then refused the
    body once it had all come: a 100 MB upload was sent whole to be refused."""
    import socket

    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    api = b"/v2/ivh/videomaker/broadcastservice/getprogress"
    for path, length, limit in ((b"/__mock__/clock", 2_000_000, 1_048_576),
                                (b"/__mock__/assets?name=x.bin", 100_000_000, 64 * 1_048_576), (api, 2_000_000, None)):
        status, body = _refusal(served.url, b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
                                b"application/json\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % length)
        message = body["Header"]["Message"] if path == api else body["error"]["message"]
        assert status == ("HTTP/1.1 200 OK" if path == api else "HTTP/1.1 413 Request Entity Too Large"), status
        assert message == f"request body is larger than {limit or 1_048_576} bytes", message  # the route's words
    with socket.create_connection((host, int(port)), timeout=10) as connection:  # one the route takes is asked for
        connection.sendall(b"POST /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json"
                           b"\r\nExpect: 100-continue\r\nContent-Length: 14\r\nConnection: close\r\n\r\n")
        assert connection.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        connection.sendall(b'{"advance": 0}')
        data = b""
        while chunk := connection.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 OK"), data


@pytest.mark.parametrize("server", ["served", "fixture"])
def test_a_head_too_large_is_refused_in_its_routes_format(server, served, ivh_mock):
    """A request line or a header line too long: waitress answered as if to `GET /`, in plain text, and the fixture
    server in http.server's HTML; each now answers in the format of the routes the request named, and names the
    limit."""
    url, limit, big = (served.url, "32768", 40_000) if server == "served" else (ivh_mock.base_url, "65536", 70_000)
    api = b"/v2/ivh/videomaker/broadcastservice/getprogress"
    for head in (b"POST " + api + b"?appkey=" + b"a" * big + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                 b"POST /" + api + b"?appkey=" + b"a" * big + b" HTTP/1.1\r\n\r\n",  # `//v2/...`: the API's too
                 b"POST " + api + b" HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * big + b"\r\n\r\n"):
        status, body = _refusal(url, head)
        assert status.endswith(" 200 OK") and body["Header"]["Code"] == 100003, (status, body)
        assert body["Header"]["Message"].startswith("the request could not be read: ") and limit in body["Header"][
            "Message"], body
    status, body = _refusal(url, b"GET /__mock__/clock HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * big + b"\r\n\r\n")
    assert status.endswith(" 431 Request Header Fields Too Large") and limit in body["error"]["message"], body
    status, body = _refusal(url, b"GET /broadcast/Basic/video/x.mp4?" + b"a" * big + b" HTTP/1.1\r\n\r\n",
                            b"application/xml")
    assert b"<Code>InvalidRequest</Code>" in body and status.split()[1] in ("414", "431"), (status, body)
    status, body = _refusal(url, b"GET /elsewhere?" + b"a" * big + b" HTTP/1.1\r\n\r\n",
                            b"text/plain" if server == "served" else b"text/html")  # no route's: the server's own
    assert status.split()[1] in ("414", "431"), status
    # a target cut inside its path (the server reads a few KB at a time) still names a route by its start
    status, body = _refusal(url, b"GET /__mock__/tasks/" + b"a" * big + b" HTTP/1.1\r\n\r\n")
    assert status.split()[1] in ("414", "431") and limit in body["error"]["message"], (status, body)
    if server == "served":  # its version unread, answered in the server's own: it had said HTTP/1.0
        assert status.startswith("HTTP/1.1 "), status
    status, body = _refusal(url, b"GET /broadcast/Basic/video/" + b"a" * big + b".mp4 HTTP/1.1\r\n\r\n",
                            b"application/xml")
    assert b"<Code>InvalidRequest</Code>" in body, body
    status, body = _refusal(url, b"HEAD " + api + b"?appkey=" + b"a" * big + b" HTTP/1.1\r\n\r\n", b"application/json")
    assert status.endswith(" 200 OK") and body == b"", body  # a HEAD's answer has no body
    # a head past 32 KB in lines http.server takes (each under 64 KiB): the fixture had taken it, the served mock not
    status, body = _refusal(url, b"GET /__mock__/clock HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 +
                            b"\r\nX-Bigger: " + b"b" * 20_000 + b"\r\n\r\n")
    assert status.endswith(" 431 Request Header Fields Too Large") and "32768" in body["error"]["message"], body


def test_a_refused_connection_lingers_until_its_client_closes_or_its_time_is_up():
    """After a refusal the connection is shut for writing and read until the client closes; a client that sends
    nothing more and never closes is closed by the worker's upkeep once LINGER_SECONDS are up (else it would hold its
    socket for good)."""
    import socket

    from ivh_mock.mock_server.serving import server as serving

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    server = serving.waitress_server(lambda environ, start: [], listener, threads=1, max_body_bytes=1024)
    server.next_channel_cleanup = time.time() + 10  # as the loop sets it after an upkeep
    try:
        channels = []
        for _ in range(2):
            client = socket.create_connection(listener.getsockname(), timeout=5)
            connection, address = listener.accept()
            channel = server.channel_class(server, connection, address, server.adj, map=server._map)
            channel.refused = True
            channel.handle_close()
            assert channel.connected and channel.readable() and not channel.writable()
            assert client.recv(1) == b""  # the answer has ended: the client reads its end
            channels.append((client, channel))
        (closing, first), (silent, second) = channels
        closing.sendall(b"x" * 100_000)  # what it still sends is read and dropped, until it closes
        closing.close()
        while first.connected:
            first.handle_read()
        server.next_channel_cleanup = 0  # the loop's look at the listener runs the upkeep, then sets its next
        server.readable()
        assert second.connected  # within its time, and the upkeep comes as it ends, not at its usual 10 s
        assert server.next_channel_cleanup <= second.linger_until
        server.maintenance(second.linger_until + 0.01)
        assert not second.connected and second not in server._map.values()
        silent.close()
    finally:
        server.close()


def test_a_head_split_anywhere_and_blank_lines_before_it_are_read_as_one_request(served):
    """The bare-LF check looks at each piece as it arrives: a CR LF split between two pieces, or the blank lines a
    client may send before a request (RFC 9112), are no bare LF."""
    import socket

    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    for pieces in ([b"GET /__mock__/clock HTTP/1.1\r", b"\nHost: 127.0.0.1\r\n\r", b"\n"],
                   [b"\r\n\n", b"GET /__mock__/clock HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"]):
        with socket.create_connection((host, int(port)), timeout=10) as connection:
            for piece in pieces:
                connection.sendall(piece)
                time.sleep(0.05)  # each its own read
            answer = connection.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 OK") and b'"frozen"' in answer, (pieces, answer)


def _temporary_mb(pid: int) -> float:
    """What a process holds in temporary files it has deleted (where waitress keeps large request bodies)."""
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            if os.readlink(fd).endswith("(deleted)"):
                held += fd.stat().st_size
    return held / 2**20


def test_a_body_past_its_routes_limit_is_not_kept_while_it_arrives(served):
    """waitress kept every body up to the largest any route takes (the asset host's 64 MiB) before the app could
    refuse it: four connections sending 8 MiB each of a 20 MiB body to the API (whose limit is 1 MiB) held 32 MiB of
    temporary files. Now no more than a byte past the route's limit is kept, and the answer is as before (D76)."""
    import json
    import socket

    host, port = served.url.removeprefix("http://").rsplit(":", 1)
    target = _signed(served.url, "getprogress", "big-body").removeprefix(served.url)
    connections = []
    try:
        for _ in range(4):
            connection = socket.create_connection((host, int(port)), timeout=10)
            connection.sendall(f"POST {target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                               f"Content-Length: {20 * 2**20}\r\nConnection: close\r\n\r\n".encode())
            for _ in range(8):
                connection.sendall(b"x" * 2**20)
            connections.append(connection)
        time.sleep(1)  # the worker has read what was sent long before
        assert _temporary_mb(served.worker()) <= 4 * 1.1, "the bodies are kept past the route's limit"
        connections[0].sendall(b"x" * 12 * 2**20)
        answer = b""
        while part := connections[0].recv(65536):  # to the end: the connection closes after its answer
            answer += part
    finally:
        for connection in connections:
            connection.close()
    body = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert body["Header"]["Code"] == 100003, body
    assert body["Header"]["Message"] == "request body is larger than 1048576 bytes", body
    # chunked, its length is what was kept: a byte past the limit, refused the same way
    chunked = requests.post(_signed(served.url, "getprogress", "big-body"), data=iter([b"x" * 2**20] * 3),
                            headers={"Content-Type": "application/json"}, timeout=30).json()
    assert chunked["Header"]["Message"] == "request body is larger than 1048576 bytes", chunked
    control = requests.post(f"{served.url}/__mock__/clock", data=b"x" * 3 * 2**20, timeout=30)
    assert control.status_code == 413, control.text


def test_a_flood_of_refused_requests_keeps_memory_disk_and_the_journal_bounded(served):
    figures = refused(served, 60)
    assert figures.problems() == [] and figures.notes["accounts_made"] == 0, figures
    last = requests.get(f"{served.url}/__mock__/requests?limit=1", timeout=30).json()["requests"][-1]
    assert last["authenticated"] is False and "timestamp" in last["message"]  # why it was refused is still there
    assert last["note"].startswith("body cut to its first 16384 of") and len(last["body"]) <= 16384


def test_large_photos_are_refused_by_their_header_without_the_memory_to_decode_them(served):
    """Eight distinct 9000 px PNGs (324 MB each once decoded), uploaded and submitted at once."""
    figures = media(served)
    assert figures.notes["api_codes"] == [100002] and figures.problems() == [], figures


def test_many_accounts_keep_the_journal_and_the_dashboards_poll_bounded(served):
    figures = accounts(served, 300)
    assert figures.problems() == [] and figures.notes["accounts"] >= 300, figures
    assert figures.notes["first_shown"] == "team-299" and figures.notes["dashboard_poll_kb"] < 64  # newest first


def test_an_oversized_request_line_or_header_is_answered_without_an_html_page(served):
    figures = oversized(served)
    assert figures.problems() == [], figures
    for answer in figures.notes["answers"]:
        status, _, content_type = answer.partition(" ")
        assert 400 <= int(status) < 500 and "html" not in content_type, answer
    assert requests.get(f"{served.url}/__mock__/clock", timeout=10).status_code == 200


@pytest.mark.parametrize("store", ["sqlite", "memory"])
def test_a_worker_that_dies_is_replaced_and_said_to_have_died(tmp_path, store):
    """A worker the system killed (for its memory, say) was replaced without a word; with the memory store, which it
    held, by one that had none of its tasks, unsaid."""
    from .conftest import ServeProcess

    def worker(mock) -> int:
        return int(Path(f"/proc/{mock.process.pid}/task/{mock.process.pid}/children").read_text().split()[0])

    with ServeProcess(tmp_path / "data", *(["--store", "memory"] if store == "memory" else [])) as mock:
        first = worker(mock)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if worker(mock) != first and requests.get(f"{mock.url}/__mock__/clock", timeout=5).ok:
                    break
            except (requests.RequestException, IndexError):
                pass
            time.sleep(0.2)
        assert worker(mock) != first
        assert requests.get(f"{mock.url}/__mock__/clock", timeout=5).status_code == 200
        said = f"ivh-mock: worker {first} was killed by SIGKILL (out of memory?); starting another"
        lost = ": the memory store's tasks, journal, clock and account settings went with it: the new one starts empty"
        assert said + (lost if store == "memory" else "") + "\n" in mock.errors()


def test_the_reliability_page_is_written_from_its_raw_figures():
    import json

    from bench.reliability import OUT, RAW, render

    raw = json.loads(RAW.read_text())
    assert render(raw["floods"], raw["hostile"]) == OUT.read_text()


def test_workers_stop_when_their_master_is_killed(tmp_path):
    """A master killed with SIGKILL cannot stop its workers: they went on serving the port and holding the store
    with nobody to stop them (and test runs left such workers behind). They now stop by themselves."""
    with Served(tmp_path / "data") as mock:
        worker = mock.worker()
        os.kill(mock.process.pid, signal.SIGKILL)
        mock.process.wait(timeout=10)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and Path(f"/proc/{worker}").exists() and _running(worker):
            time.sleep(0.1)
        assert not (Path(f"/proc/{worker}").exists() and _running(worker)), "the worker outlived its master"


def _running(pid: int) -> bool:
    """Whether `pid` is alive (a zombie that nobody reaps has stopped)."""
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    return False
