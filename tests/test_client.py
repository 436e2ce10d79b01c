"""The client against the mock, in-process (a requests adapter, no sockets) and over real HTTP."""

import contextlib
import json
import os
import random
import re
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import requests
import urllib3
from ivh_mock.client import (
    APIConnectionError,
    AuthenticationError,
    BalanceError,
    CallbackError,
    Client,
    DownloadError,
    IvhError,
    NotFoundError,
    OutcomeUnknownError,
    ParameterError,
    QuotaExceededError,
    RateLimitedError,
    TaskFailedError,
    WaitTimeoutError,
    parse_callback,
)
from ivh_mock.client.api import MAX_RETRIES
from ivh_mock.client.errors import FAMILIES
from ivh_mock.client.retry import backoff, should_retry
from ivh_mock.mock_server import VirtualClock, create_app
from ivh_mock.mock_server.serving.testing import MockServer, QuietHTTPServer, WSGIAdapter, in_process_session
from ivh_mock.spec.signing import signed_query

from ivh_mock import spec as spec_module

from . import forked
from .conftest import PATHS, T0, TEXT_PAYLOAD, FixedAnswer, RawServer, accepting

FAST = {"queue_seconds": 1.0, "render_speed": 0.25, "render_startup_seconds": 2.0}


class Target:
    """A mock plus a client bound to it; `advance` moves the mock's clock."""

    def __init__(self, app, clock, base_url, session=None):
        self.app, self.clock, self.base_url, self.session = app, clock, base_url, session
        self.store = app.extensions["ivh_mock"].store

    def client(self, appkey="client-test", accesstoken="mock-accesstoken", **options):
        return Client(appkey, accesstoken, self.base_url, session=self.session or requests.Session(),
                      clock=self.clock.now, sleep=self.advance, monotonic=self.clock.now, rng=random.Random(1),
                      **options)

    def advance(self, seconds):
        self.clock.advance(seconds)


@pytest.fixture(params=["in-process", "http"])
def target(request):
    if request.param == "in-process":
        clock = VirtualClock(start=T0)
        app = create_app({**FAST, "background": False}, clock=clock)
        yield Target(app, clock, "http://ivh-mock.localhost", in_process_session(app))
    else:
        with MockServer(FAST, clock=VirtualClock(start=T0)) as server:
            yield Target(server.app, server.clock, server.base_url)


@pytest.fixture
def ivh(target):
    return target.client()


def test_submit_and_poll(ivh):
    submitted = ivh.phototovideonotrain(TEXT_PAYLOAD)
    assert len(submitted.task_id) == 32 and len(submitted.request_id) == 32
    progress = ivh.getprogress(submitted.task_id)
    assert (progress.status, progress.progress, progress.array_count, progress.done) == ("COMMIT", 0, 0, False)


def test_fields_may_be_given_as_keywords(ivh):
    submitted = ivh.phototovideonotrain(**TEXT_PAYLOAD, request_id="my-request")
    assert submitted.request_id == "my-request"


def test_wait_returns_the_finished_task_without_sleeping(ivh, target):
    task = ivh.phototovideonotrain(TEXT_PAYLOAD)
    seen = []
    done = ivh.wait(task.task_id, interval=0.5, on_progress=seen.append)
    assert done.succeeded and done.progress == 100 and done.duration_ms > 0
    assert done.media_url.endswith(f"{task.task_id}.mp4") and done.sentences
    assert [p.status for p in seen][0] == "COMMIT" and "MAKING" in [p.status for p in seen]
    assert [p.progress for p in seen] == sorted(p.progress for p in seen)


def test_wait_raises_a_typed_failure(ivh):
    task = ivh.phototovideonotrain(TEXT_PAYLOAD, scenario="fail:code=801007,at=40")
    with pytest.raises(TaskFailedError) as failure:
        ivh.wait(task.task_id, interval=0.5)
    assert failure.value.fail_code == 801007 and failure.value.task_id == task.task_id
    assert "timed out" in failure.value.fail_message


def test_wait_times_out_with_a_typed_error(ivh):
    task = ivh.phototovideonotrain(TEXT_PAYLOAD, scenario="stuck_in_queue")
    with pytest.raises(WaitTimeoutError) as timeout:
        ivh.wait(task.task_id, timeout=120, interval=5, max_interval=20)
    assert timeout.value.waited >= 120 and timeout.value.last.status == "COMMIT"


def test_preflight_refuses_with_the_mocks_own_message_and_sends_nothing(target):
    bad = {**TEXT_PAYLOAD, "SpeechParam": {"TimbreKey": "female_1", "Speed": 2.0}, "Extra": 1}
    with pytest.raises(ParameterError) as preflight:
        target.client().phototovideonotrain(bad)
    assert preflight.value.preflight and preflight.value.request_id is None
    assert target.store.journal("client-test") == []
    with pytest.raises(ParameterError) as server:
        target.client(validate=False).phototovideonotrain(bad)
    assert not server.value.preflight and server.value.request_id
    assert (preflight.value.code, preflight.value.message) == (server.value.code, server.value.message)


@pytest.mark.parametrize("scenario, error", [
    ("quota_exceeded", QuotaExceededError), ("balance_exhausted", BalanceError), ("rate_limited", RateLimitedError),
])
def test_refusals_raise_their_family_and_submissions_are_never_retried(ivh, target, scenario, error):
    with pytest.raises(error) as refused:
        ivh.phototovideonotrain(TEXT_PAYLOAD, scenario=scenario)
    assert refused.value.request_id and refused.value.code in (100008, 100013, 801004)
    assert len(target.store.journal("client-test")) == 1


def test_bad_credentials_raise_authentication_error(target):
    with pytest.raises(AuthenticationError) as refused:
        target.client(accesstoken="wrong").getprogress("x")
    assert refused.value.code == 100005 and "signature does not match" in refused.value.message
    assert len(target.store.journal("client-test")) == 1  # an authentication failure is not retried


def test_an_unknown_task_is_not_found(ivh):
    with pytest.raises(NotFoundError) as missing:
        ivh.getprogress("0" * 32)
    assert missing.value.code == 110006


def test_getprogress_retries_rate_limits_with_backoff(ivh, target):
    target.app.test_client().put("/__mock__/accounts/client-test", json={"scenario": "rate_limited"})
    before = target.clock.now()
    with pytest.raises(RateLimitedError):
        ivh.getprogress("x")
    assert len(target.store.journal("client-test")) == 1 + ivh.max_retries
    assert target.clock.now() - before >= 0.5 + 1.0 + 2.0  # backed off between attempts


def test_iter_timbres_pages_through_everything(ivh):
    keys = [t.key for t in ivh.iter_timbres(page_size=10)]
    assert len(keys) == len(set(keys)) == ivh.describetimbre(1, 1).total
    assert "male_20" in keys and "female_23" in keys


def test_a_page_named_as_the_api_names_it_is_refused_not_mislabelled(ivh):
    """describetimbre(PageIndex=2, PageSize=5) had fetched page 2 and returned it labelled page 1 of size 100."""
    for named in ({"PageIndex": 2}, {"PageSize": 5}, {"PageIndex": 2, "PageSize": 5}):
        with pytest.raises(TypeError, match="takes the page as page_index= and page_size=, not Page"):
            ivh.describetimbre(**named)
    page = ivh.describetimbre(page_index=2, page_size=5)
    assert (page.page_index, page.page_size, len(page.timbres)) == (2, 5, 5)


def test_download_streams_the_video_and_reports_expiry(ivh, target, tmp_path):
    done = ivh.wait(ivh.phototovideonotrain(TEXT_PAYLOAD).task_id, interval=0.5)
    path = ivh.download(done.media_url, tmp_path / "video.mp4")
    assert path.read_bytes()[4:8] == b"ftyp"
    target.advance(8 * 86400)
    with pytest.raises(DownloadError) as expired:
        ivh.download(done.media_url, tmp_path / "late.mp4")
    assert expired.value.status == 404 and not (tmp_path / "late.mp4").exists()


def test_parse_callback():
    body = {"Payload": {"Progress": 100, "MediaUrl": "https://x/v.mp4", "SubtitlesUrl": "https://x/s.srt",
                        "Status": "SUCCESS", "FailMessage": "", "TaskId": "25215772ab424ad38858f6b692426989"}}
    result = parse_callback(body)
    assert result.succeeded and result.task_id == "25215772ab424ad38858f6b692426989"
    assert parse_callback(__import__("json").dumps(body).encode()) == result
    with pytest.raises(CallbackError, match="Payload.TaskId is required"):
        parse_callback({"Payload": {k: v for k, v in body["Payload"].items() if k != "TaskId"}})
    with pytest.raises(CallbackError, match="Payload.Status must be one of"):
        parse_callback({"Payload": {**body["Payload"], "Status": "MAKING"}})
    with pytest.raises(CallbackError, match="not JSON"):
        parse_callback(b"<html>")
    for deep in (b"[" * 100_000, "[" * 33 + "]" * 33):  # refused unread: the decoder recurses once per level
        with pytest.raises(CallbackError, match="not JSON: nests deeper than 32 levels"):
            parse_callback(deep)
    with pytest.raises(CallbackError, match=r"not valid Unicode: Payload.TaskId holds a lone surrogate \\udcff"):
        parse_callback(json.dumps({"Payload": {**body["Payload"], "TaskId": "ab\udcff"}}))  # sent as an escape
    decoded = {"Header": {}, "Payload": __import__("json").loads("[" * 400 + "]" * 400)}  # decoded by the app
    with pytest.raises(CallbackError, match="callback body nests deeper than 32 levels"):
        parse_callback(decoded)


@pytest.mark.parametrize("body, raised, says", [
    (b"[" * 100_000, APIConnectionError, "is not the API's envelope"),
    (b'{"Header": ' + b"[" * 40 + b"]" * 40 + b"}", APIConnectionError, "is not the API's envelope"),
    ('\ufeff{"Header": {"Code": 110006, "Message": "no such task"}}'.encode(), NotFoundError, "no such task"),
    (b'{"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": "str"}', APIConnectionError,
     "getprogress: the answer is not the API's: Payload must be of type object, got string 'str'"),
    (b'{"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {"Progress": 5}}', APIConnectionError,
     "getprogress: the answer is not the API's: .*Payload.Status is required"),
    # which Header counts is a reader's guess: the last (100002) had been taken as the API's refusal
    (b'{"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {}, "Header": {"Code": 100002}}',
     APIConnectionError, "not the API's envelope: .*the key 'Header' is given twice in one object"),
    # what is missing is said (it had been only shown, cut at 200 characters)
    (b'{"Header": {"Message": "", "RequestID": "r"}, "Payload": {}}', APIConnectionError,
     "not the API's envelope: .*\\(Header.Code is missing\\)$"),
    (b'{"Payload": {}}', APIConnectionError, "not the API's envelope: .*\\(no Header object\\)$"),
    (b'[{"Header": {"Code": 0}}]', APIConnectionError, "not the API's envelope: .*\\(a JSON array, not an object\\)$"),
], ids=["100k-brackets", "40-levels", "utf-8-with-bom", "payload-a-string", "payload-without-status", "two-headers",
        "no-code", "no-header", "an-array"])
def test_an_answer_is_decoded_only_when_it_could_be_the_envelope(body, raised, says):
    session = requests.Session()
    session.mount("http://ivh-mock.localhost", FixedAnswer(body))
    ivh = Client("a", "mock-accesstoken", "http://ivh-mock.localhost", session=session, max_retries=0)
    with pytest.raises(raised, match=says):
        ivh.getprogress("x")


def test_a_submission_whose_verdict_never_came_back_says_it_may_have_been_accepted():
    """A submission sent, whose answer broke off, timed out or came from a gateway in the API's stead (a 5xx page, an
    HTTP 500 claiming Code 0), raised the APIConnectionError of a server never reached: a script that resubmits on it
    paid twice. It is OutcomeUnknownError now; one never sent, or refused by a gateway's 3xx or 4xx, is not."""
    from ivh_mock.client import OutcomeUnknownError

    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    closed_port = free.getsockname()[1]
    free.close()  # nothing listens there: refused, never sent
    with pytest.raises(APIConnectionError) as never_sent:
        Client("a", "mock-accesstoken", f"http://127.0.0.1:{closed_port}", max_retries=0).phototovideonotrain(
            TEXT_PAYLOAD)
    assert not isinstance(never_sent.value, OutcomeUnknownError)
    unknown = [b"", b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\n<h1>x",
               b"HTTP/1.1 500 Oops\r\nContent-Length: 80\r\n\r\n" + envelope({"TaskId": "t" * 32})[:80],
               b"HTTP/1.1 200 OK\r\nContent-Length: 7\r\n\r\nnot json",
               # an answer whose head urllib3 cannot read: it came, so the request was taken (it had said exit 5)
               b"HTTP/1.1 200 OK\r\nContent-Length: 210\r\nContent-Length: 5\r\n\r\n" + envelope({"TaskId": "t"}),
               b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"]  # a head the hang-up cut short
    for answer in unknown:
        with RawServer(answer) as server:
            with pytest.raises(OutcomeUnknownError, match="may have been accepted .*check before submitting it "
                                                          "again"):
                Client("a", "mock-accesstoken", server.url, max_retries=2).phototovideonotrain(TEXT_PAYLOAD)
            assert server.requests == 1  # never sent again
    with RawServer(b"", hang=True) as server:  # no answer within the timeout
        with pytest.raises(OutcomeUnknownError):
            Client("a", "mock-accesstoken", server.url, timeout=0.5).phototovideonotrain(TEXT_PAYLOAD)
    for answer in (b"HTTP/1.1 404 Not Found\r\nContent-Length: 4\r\n\r\nnope",
                   b"HTTP/1.1 302 Found\r\nLocation: /x\r\nContent-Length: 0\r\n\r\n"):
        with RawServer(answer) as server:
            with pytest.raises(APIConnectionError) as refused:
                Client("a", "mock-accesstoken", server.url).phototovideonotrain(TEXT_PAYLOAD)
            assert not isinstance(refused.value, OutcomeUnknownError), answer
    from ivh_mock.client.retry import unreadable_answer

    # requests raises its InvalidHeader for a header of the request it will not send too: that one was never sent
    assert not unreadable_answer(requests.exceptions.InvalidHeader("Invalid leading whitespace in header value"))
    assert unreadable_answer(requests.exceptions.InvalidHeader(urllib3.exceptions.InvalidHeader("two lengths")))
    with RawServer(b"") as server:  # a poll is asked again, and its failure is no submission's
        with pytest.raises(APIConnectionError) as polled:
            Client("a", "mock-accesstoken", server.url, max_retries=0).getprogress("x")
        assert not isinstance(polled.value, OutcomeUnknownError)


def _certificate(folder) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files in `folder`."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                   .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
                   .not_valid_after(now + datetime.timedelta(hours=1))
                   .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                                  critical=False)
                   .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)  # its own anchor
                   .sign(key, hashes.SHA256()))
    cert, key_file = folder / "cert.pem", folder / "key.pem"
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return str(cert), str(key_file)


@contextlib.contextmanager
def _tls_server(cert: str, key: str):
    """An https server on 127.0.0.1 that reads a request, then breaks the TLS stream with a record no key decrypts;
    yields its URL and the number of requests it read so far (a list of one)."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    read = [0]
    with socket.create_server(("127.0.0.1", 0)) as listener:
        def serve(connection: socket.socket) -> None:
            with connection:
                try:
                    tls = context.wrap_socket(connection, server_side=True)
                except (ssl.SSLError, OSError):  # the client refused the handshake
                    return
                if tls.recv(65536):
                    read[0] += 1
                    with socket.socket(fileno=os.dup(tls.fileno())) as raw:  # beside TLS, not through it
                        raw.sendall(b"\x17\x03\x03\x00\x05bogus")
                tls.close()

        accepting(listener, serve)
        yield f"https://127.0.0.1:{listener.getsockname()[1]}", read


def test_a_tls_handshake_that_failed_is_no_submission_that_may_have_been_accepted(tmp_path):
    """An https URL to an http server, or a certificate the client does not trust: nothing was sent, yet the
    submission raised OutcomeUnknownError ("may have been accepted (and billed)", `ivh` exit 6). A TLS stream that
    breaks after the request went is still one."""
    from ivh_mock.client import OutcomeUnknownError

    with socket.create_server(("127.0.0.1", 0)) as plain:  # http: what it reads is no request, answered at once
        def answer() -> None:
            connection, _ = plain.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        threading.Thread(target=answer, daemon=True).start()
        with pytest.raises(APIConnectionError, match="WRONG_VERSION_NUMBER") as wrong_scheme:
            Client("a", "mock-accesstoken", f"https://127.0.0.1:{plain.getsockname()[1]}",
                   max_retries=0).phototovideonotrain(TEXT_PAYLOAD)
    assert not isinstance(wrong_scheme.value, OutcomeUnknownError), wrong_scheme.value
    cert, key = _certificate(tmp_path)
    with _tls_server(cert, key) as (url, read):
        with pytest.raises(APIConnectionError, match="CERTIFICATE_VERIFY_FAILED") as untrusted:
            Client("a", "mock-accesstoken", url, max_retries=0).phototovideonotrain(TEXT_PAYLOAD)
        assert not isinstance(untrusted.value, OutcomeUnknownError) and read == [0]
        trusting = requests.Session()
        trusting.verify, trusting.trust_env = cert, False  # trust_env: REQUESTS_CA_BUNDLE would win over verify
        with pytest.raises(OutcomeUnknownError, match="may have been accepted"):
            Client("a", "mock-accesstoken", url, max_retries=2, session=trusting).phototovideonotrain(TEXT_PAYLOAD)
        assert read == [1]  # sent once, never again


def test_a_tls_handshake_that_timed_out_is_retried_and_no_submission_that_may_have_been_accepted():
    """A server that took the connection and never answered the handshake: urllib3 says it as a read that timed out,
    and the submission raised OutcomeUnknownError (exit 6), never sent again, though nothing of it had gone."""
    from ivh_mock.client import OutcomeUnknownError

    held = []
    with socket.create_server(("127.0.0.1", 0)) as silent:
        accepting(silent, held.append)  # each kept open, and never a word
        try:
            for call in ("phototovideonotrain", "getprogress"):
                client = Client("a", "mock-accesstoken", f"https://127.0.0.1:{silent.getsockname()[1]}", timeout=0.3,
                                max_retries=1, sleep=lambda seconds: None)
                arguments = (TEXT_PAYLOAD,) if call == "phototovideonotrain" else ("t",)
                with pytest.raises(APIConnectionError) as raised:
                    getattr(client, call)(*arguments)
                assert not isinstance(raised.value, OutcomeUnknownError), raised.value
                assert len(held) == (2 if call == "phototovideonotrain" else 4)  # sent again, once
        finally:
            for connection in held:
                connection.close()


def answering(body: bytes, status: int = 200, headers: dict | None = None, **options):
    """A client whose every call gets this answer, and the adapter that gives it (its `calls` counted)."""
    session, adapter = requests.Session(), FixedAnswer(body, status, headers)
    session.mount("http://ivh-mock.localhost", adapter)
    slept: list[float] = []
    ivh = Client("a", "mock-accesstoken", "http://ivh-mock.localhost", session=session, sleep=slept.append,
                 rng=random.Random(1), **options)
    return ivh, adapter, slept


def envelope(payload) -> bytes:
    return json.dumps({"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": payload}).encode()


PROGRESS = {"Progress": 50, "MediaUrl": "", "Status": "MAKING", "ArrayCount": 0, "Duration": 0}


@pytest.mark.parametrize("operation, payload, says", [
    ("getprogress", {**PROGRESS, "Progress": "50%"}, "Payload.Progress must be of type integer, got string '50%'"),
    ("getprogress", {**PROGRESS, "Status": 3}, "Payload.Status must be of type string, got integer 3"),
    ("getprogress", {**PROGRESS, "TextTimestampResult": [{"Sentence": "x", "Words": [{"Word": 1}]}]},
     "Payload.TextTimestampResult[0].Words[0].Word must be of type string"),
    ("describetimbre", {"TimbreAssets": [], "Total": None}, "Payload.Total must be of type integer, got null"),
    ("describetimbre", {"TimbreAssets": [{"TimbreKey": "k"}], "Total": 1},
     "Payload.TimbreAssets[0].TimbreName is required"),
    ("phototovideonotrain", {"TaskId": 5}, "Payload.TaskId must be of type string, got integer 5"),
])
def test_a_successful_answer_of_another_shape_is_refused_naming_the_field(operation, payload, says):
    """Such answers went into the typed results as they were (a TaskId of 5, a Progress of "50%"), or raised
    TypeError from iter_timbres and from the `ivh` command's progress bar."""
    ivh, _, _ = answering(envelope(payload), max_retries=0)
    call = {"getprogress": lambda: ivh.getprogress("t"), "describetimbre": lambda: list(ivh.iter_timbres()),
            "phototovideonotrain": lambda: ivh.phototovideonotrain(TEXT_PAYLOAD)}[operation]
    with pytest.raises(APIConnectionError, match=f"{operation}: the answer is not the API's: .*{re.escape(says)}"):
        call()


def test_a_value_the_live_api_may_add_later_is_read():
    """Only each field's presence and JSON type are checked: not an enum or a range, which the live API may widen;
    and a field the spec does not require may be null, read as absent."""
    ivh, _, _ = answering(envelope({**PROGRESS, "Status": "PAUSED", "Progress": 101, "NewField": {"a": 1},
                                    "FailCode": None, "FailMessage": None, "TextTimestampResult": None}))
    progress = ivh.getprogress("t")
    assert (progress.status, progress.progress, progress.raw["NewField"]) == ("PAUSED", 101, {"a": 1})
    assert (progress.fail_code, progress.fail_message, progress.sentences) == (0, "", ())
    ivh, _, _ = answering(envelope({**PROGRESS, "Duration": None}), max_retries=0)  # required: null is no value
    with pytest.raises(APIConnectionError, match="Payload.Duration must be of type integer, got null"):
        ivh.getprogress("t")


def test_headers_with_digits_int_cannot_read_are_taken_as_absent():
    """'²'.isdigit() is True, but int('²') raises: a Retry-After or a Content-Length of '²' raised ValueError out of
    the client (and, in a photo host's answer, out of the mock's download as a 500)."""
    ivh, adapter, slept = answering(b"<html>busy</html>", 503, {"Retry-After": "\u00b2"}, max_retries=1)
    with pytest.raises(APIConnectionError, match="HTTP 503"):
        ivh.getprogress("t")
    assert adapter.calls == 2 and 0.5 <= slept[0] <= 0.625  # its own backoff: the header says nothing it can read
    ivh, _, _ = answering(envelope(PROGRESS), headers={"Content-Length": "\u00b2"})
    assert ivh.getprogress("t").status == "MAKING"
    from ivh_mock.mock_server.media_in import fetch

    answer = requests.Response()
    answer.headers["Content-Length"], answer._content, answer._content_consumed = "\u00b2", b"photo", True
    assert fetch._read(answer, 100) == b"photo"


@pytest.mark.parametrize("code", ["[1]", '"100002"', "true", "1.5", "null"])
def test_a_header_code_that_is_no_integer_is_no_answer_of_the_apis(code):
    """`[1]` raised TypeError (unhashable) looking up its family; "100002" and true were a bare APIError."""
    ivh, _, _ = answering(b'{"Header": {"Code": %s, "Message": "m", "RequestID": "r"}}' % code.encode(),
                          max_retries=0)
    with pytest.raises(APIConnectionError, match="is not the API's envelope"):
        ivh.getprogress("t")


@pytest.mark.parametrize("status", [429, 502, 503])
def test_an_overload_answer_without_the_envelope_is_retried_as_asked_then_raised_as_unreachable(status):
    """A gateway's 429 or 503 (HTML, no envelope) was not retried (429) or ended as a bare APIError(-1), and its
    Retry-After was not read."""
    ivh, adapter, slept = answering(b"<html>busy</html>", status, {"Retry-After": "7"}, max_retries=2)
    with pytest.raises(APIConnectionError, match=f"getprogress: HTTP {status}, not the API's envelope"):
        ivh.getprogress("t")
    assert adapter.calls == 3 and slept == [7.0, 7.0]  # at least what Retry-After asked, on every retry
    ivh, adapter, slept = answering(b"<html>busy</html>", status, {"Retry-After": "86400"}, max_retries=1)
    with pytest.raises(APIConnectionError):
        ivh.getprogress("t")
    assert slept == [60.0]  # never longer than a minute


def test_a_wait_given_up_on_a_retry_after_past_its_time_says_the_server_asked_for_it():
    """A 503 asking for 30 s, with 20 s left: the wait ended at once saying "not finished after 0.0 s; ... the next try
    was due in 30.0 s, past the time left", which read as if the client had chosen to wait 30 s."""
    now = [0.0]
    ivh, adapter, slept = answering(b"<html>busy</html>", 503, {"Retry-After": "30"}, monotonic=lambda: now[0])
    with pytest.raises(WaitTimeoutError, match=r"the server asked for the next try in 30\.0 s \(Retry-After\), past "
                                               r"the 20\.0 s left of the wait"):
        ivh.wait("t", timeout=20)
    assert adapter.calls == 1 and slept == []


def test_a_success_code_under_an_error_status_is_no_answer_of_the_apis():
    """A gateway's 503 carrying an envelope with Code 0 was taken as the task's progress; the API succeeds with 200
    (D01). A 5xx is retried as a gateway's answer is, then raised; another status is raised at once (a 429 too: one
    that carries the API's success is no rate limit's)."""
    ivh, adapter, slept = answering(envelope(PROGRESS), 503, max_retries=2)
    with pytest.raises(APIConnectionError, match=r"HTTP 503, not the API's envelope: .*\(Header.Code 0 with HTTP 503"):
        ivh.getprogress("t")
    assert adapter.calls == 3 and len(slept) == 2
    for status in (404, 429):
        ivh, adapter, _ = answering(envelope(PROGRESS), status, max_retries=2)
        with pytest.raises(APIConnectionError, match=rf"HTTP {status} from .* is not the API's envelope: .*Header.Code "
                                                     rf"0 with"):
            ivh.getprogress("t")
        assert adapter.calls == 1
    ivh, _, _ = answering(envelope(PROGRESS), 200)
    assert ivh.getprogress("t").status == "MAKING"


@pytest.mark.parametrize("status", [400, 404, 302, 429, 503])
def test_a_submission_answered_with_the_apis_success_under_an_error_status_may_have_been_accepted(status):
    """Code 0 and a TaskId under HTTP 400 (or 404, 302, 429) raised the plain APIConnectionError of a refusal that
    stood before the API, which a script sends again: the API says it accepted it, so it may have been billed."""
    from ivh_mock.client import OutcomeUnknownError

    ivh, adapter, _ = answering(envelope({"TaskId": "t" * 32}), status, max_retries=2)
    with pytest.raises(OutcomeUnknownError, match=f"HTTP {status}.*Header.Code 0 with HTTP {status}.*may have been "
                                                  "accepted"):
        ivh.phototovideonotrain(TEXT_PAYLOAD)
    assert adapter.calls == 1  # never sent again


@pytest.mark.parametrize("header, says", [
    ({"Code": 0, "Message": "", "RequestID": 5}, "Header.RequestID must be of type string, got integer 5"),
    ({"Code": 0, "Message": ""}, "Header.RequestID is required"),
    ({"Code": 0, "Message": ["m"], "RequestID": "r"}, "Header.Message must be of type string"),
])
def test_a_successful_answer_s_header_of_another_shape_is_refused_naming_the_field(header, says):
    """Only the Payload's shape was checked: a RequestID of 5 became Progress.request_id."""
    ivh, _, _ = answering(json.dumps({"Header": header, "Payload": PROGRESS}).encode(), max_retries=0)
    with pytest.raises(APIConnectionError, match=f"getprogress: the answer is not the API's: .*{re.escape(says)}"):
        ivh.getprogress("t")


def test_an_answer_larger_than_any_of_the_apis_is_refused_unread(monkeypatch):
    from ivh_mock.client import api

    monkeypatch.setattr(api, "MAX_ANSWER_BYTES", 1000)
    ivh, _, _ = answering(envelope({**PROGRESS, "MediaUrl": "x" * 2000}), max_retries=0)
    with pytest.raises(APIConnectionError, match="more than the 1000 bytes an answer of the API's takes"):
        ivh.getprogress("t")
    ivh, _, _ = answering(b"{}", headers={"Content-Length": "5000"}, max_retries=0)
    with pytest.raises(APIConnectionError, match="is 5000 bytes, more than the 1000"):
        ivh.getprogress("t")


def test_the_answer_bound_keeps_a_decoded_answer_small():
    """An answer of a megabyte at most: 16 MB of `{}`s decoded into 426 MB of Python objects (1 MB of them, ~27 MB);
    the API's answers are a few KB, a page of 100 timbres some 50 KB."""
    from ivh_mock.client import api

    assert api.MAX_ANSWER_BYTES == 1_048_576
    ivh, _, _ = answering(envelope({**PROGRESS, "X": [{}] * 300_000}), max_retries=0)  # 1.2 MB
    with pytest.raises(APIConnectionError, match="more than the 1048576 bytes"):
        ivh.getprogress("t")


@pytest.mark.parametrize("validate", [True, False])
def test_a_lone_surrogate_is_refused_before_sending_as_the_mock_refuses_its_escape(target, validate):
    """A Python string can hold a lone surrogate (a non-UTF-8 command-line argument does); UTF-8 cannot carry it,
    and encoding the body raised UnicodeEncodeError."""
    with pytest.raises(ParameterError) as refused:
        target.client(validate=validate).getprogress("ab\udcff")
    assert refused.value.preflight and target.store.journal("client-test") == []
    escaped = b'{"Header": {}, "Payload": {"TaskId": "ab\\udcff"}}'  # what the mock answers for the same body
    answer = target.app.test_client().post(f"/v2/ivh/videomaker/broadcastservice/getprogress?"
                                           f"{signed_query('client-test', 'mock-accesstoken', int(T0))}",
                                           data=escaped, headers={"Content-Type": "application/json"}).get_json()
    assert (refused.value.code, refused.value.message) == (answer["Header"]["Code"], answer["Header"]["Message"])
    # a byte that is no UTF-8 in the environment (`$'\\xff'`) comes as \\udcff: said as the byte it was
    with pytest.raises(ValueError, match="^the appkey cannot be sent: it is not UTF-8 text: it holds the byte 0xff$"):
        Client("app\udcff", "mock-accesstoken")
    with pytest.raises(ValueError, match="^the accesstoken cannot be sent: it holds a lone surrogate \\\\ud800"):
        Client("app", "token\ud800")


def test_a_value_json_cannot_hold_is_refused_before_sending_naming_its_field(target):
    """wait(submitted) rather than wait(submitted.task_id), a UUID, bytes, a Decimal: json's TypeError ("Object of
    type Submitted is not JSON serializable") came from inside the client, naming no field."""
    import decimal
    import uuid

    ivh = target.client()
    submitted = ivh.phototovideonotrain(TEXT_PAYLOAD)
    for wrong, got in ((submitted, "Submitted Submitted(task_id="), (uuid.UUID(int=1), "UUID UUID('00000000-")):
        refused = re.escape(f"100003: Payload.TaskId must be of type string, got {got}")
        with pytest.raises(ParameterError, match=refused):
            ivh.wait(wrong, timeout=5)
    with pytest.raises(ParameterError, match="Payload.InputSsml must be of type string, got bytes b'<speak>"):
        ivh.phototovideonotrain({**TEXT_PAYLOAD, "InputSsml": b"<speak>hello there</speak>"})
    speech = {**TEXT_PAYLOAD["SpeechParam"], "Speed": decimal.Decimal("1.5")}  # a number to the spec's checks
    for client in (ivh, target.client(validate=False)):
        with pytest.raises(TypeError, match=r"^phototovideonotrain: Payload.SpeechParam.Speed is of type Decimal, "
                                            r"which JSON cannot hold"):
            client.phototovideonotrain({**TEXT_PAYLOAD, "SpeechParam": speech})
    with pytest.raises(TypeError, match=r"^getprogress: Payload.TaskId is of type UUID"):
        target.client(validate=False).getprogress(uuid.UUID(int=1))
    assert [entry.operation for entry in target.store.journal("client-test")] == ["phototovideonotrain"]


@pytest.mark.parametrize("ssml", ["hello \udcff there", "\ud83d\ude00"], ids=["lone", "pair-as-two-escapes"])
def test_a_lone_surrogate_in_the_ssml_is_refused_like_any_other_not_raised_by_the_parser(target, ssml):
    """The SSML check parses InputSsml with an XML parser, which raised UnicodeEncodeError on a lone surrogate
    before the client's own check of the body could refuse it (`ivh submit --text` with a non-UTF-8 byte)."""
    payload = {**TEXT_PAYLOAD, "InputSsml": ssml}
    with pytest.raises(ParameterError, match="not valid Unicode: Payload.InputSsml holds a lone surrogate") as refused:
        target.client().phototovideonotrain(payload)
    assert refused.value.code == 100003 and refused.value.preflight
    with pytest.raises(ParameterError, match="Payload.InputSsml holds a lone surrogate"):
        target.client().preflight("phototovideonotrain", {"Header": {}, "Payload": payload})
    problems = spec_module.load().validate("phototovideonotrain", {"Header": {}, "Payload": payload})  # never raises
    assert any(p.field == "Payload.InputSsml" and "lone surrogate" in p.rule for p in problems)


def test_a_download_asked_again_later_is_asked_again_as_the_answer_says(tmp_path):
    """The mock's own `503 SlowDown` (Retry-After: 1), given a download while every thread that may wait for a render
    is busy, had ended the download at once: `HTTP 503`, exit 5, nothing said of the Retry-After."""
    class SlowDown(FixedAnswer):  # busy twice, then the file
        def send(self, request, **kwargs):
            self.status, self.headers = (503, {"Retry-After": "1"}) if self.calls < 2 else (200, {})
            return super().send(request, **kwargs)

    ivh, _, slept = answering(b"")
    adapter = SlowDown(b"video bytes")
    ivh.session.mount("http://ivh-mock.localhost", adapter)
    assert ivh.download("http://ivh-mock.localhost/v.mp4", tmp_path / "v.mp4").read_bytes() == b"video bytes"
    assert adapter.calls == 3 and len(slept) == 2 and all(pause >= 1 for pause in slept)
    ivh.max_retries, adapter.calls = 1, 0
    with pytest.raises(DownloadError, match=r"v.mp4: HTTP 503 \(Retry-After: 1 s\), after 2 tries$"):
        ivh.download("http://ivh-mock.localhost/v.mp4", tmp_path / "w.mp4")
    ivh.max_retries, adapter.calls = 3, 0
    with pytest.raises(DownloadError, match=r"HTTP 503 \(Retry-After: 1 s\); the next try was due in 1\.0 s, past the "
                                            r"0\.[0-9] s left$"):
        ivh.download("http://ivh-mock.localhost/v.mp4", tmp_path / "w.mp4", timeout=0.5)
    gone, _, slept = answering(b"", 404)
    with pytest.raises(DownloadError, match=r"HTTP 404$"):  # no retry: it is gone (retention ran out)
        gone.download("http://ivh-mock.localhost/v.mp4", tmp_path / "w.mp4")
    assert slept == [] and sorted(path.name for path in tmp_path.iterdir()) == ["v.mp4"]


def test_a_download_that_fails_leaves_nothing_behind(tmp_path):
    """A missing folder raised FileNotFoundError, a folder as the destination IsADirectoryError (after writing the
    whole file beside it), and a body cut short left its `.part` file."""
    ivh, _, _ = answering(b"video bytes")
    with pytest.raises(DownloadError, match="cannot write .*No such file or directory"):
        ivh.download("http://ivh-mock.localhost/v.mp4", tmp_path / "missing" / "v.mp4")
    with pytest.raises(DownloadError, match="is a folder; name the file to write"):
        ivh.download("http://ivh-mock.localhost/v.mp4", tmp_path)
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / f"{tmp_path.name}.part").exists()
    with _cut_short() as url, pytest.raises(DownloadError):
        Client("a", "t", "http://127.0.0.1:9").download(url, tmp_path / "short.mp4")
    assert list(tmp_path.iterdir()) == []


def test_a_download_past_max_bytes_is_refused_as_it_is_written_decoded_and_leaves_nothing(tmp_path):
    """download() had no bound: a megabyte of gzip decoded to a gigabyte on disk. With max_bytes, a body the server
    compressed is counted as written; a Content-Length past the bound is refused before anything is written."""
    import gzip

    packed = gzip.compress(b"\0" * 4_000_000)  # some 4 KB on the wire
    answer = (b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n"
              b"Connection: close\r\n\r\n" % len(packed)) + packed
    client = Client("a", "t", "http://127.0.0.1:9")
    with RawServer(answer) as server:
        with pytest.raises(DownloadError, match=r"larger than max_bytes \(1000000 bytes\): 10[0-9]{5} bytes"):
            client.download(f"{server.url}/v.mp4?Signature=s", tmp_path / "v.mp4", max_bytes=1_000_000)
        assert list(tmp_path.iterdir()) == []
        client.download(f"{server.url}/v.mp4", tmp_path / "v.mp4", max_bytes=4_000_000)  # within it: whole
        assert (tmp_path / "v.mp4").stat().st_size == 4_000_000
    ivh, _, _ = answering(b"x" * 10, headers={"Content-Length": "5000000"})
    with pytest.raises(DownloadError, match="larger than max_bytes \\(1000 bytes\\): 5000000 bytes") as refused:
        ivh.download("http://ivh-mock.localhost/v.mp4?Signature=s", tmp_path / "w.mp4", max_bytes=1000)
    assert "Signature" not in str(refused.value) and not (tmp_path / "w.mp4").exists()
    # unless told otherwise, 1 GiB at most: a server that sent without end had filled the disk
    ivh, _, _ = answering(b"x" * 10, headers={"Content-Length": str(2**30 + 1)})
    with pytest.raises(DownloadError, match=r"larger than max_bytes \(1073741824 bytes\)"):
        ivh.download("http://ivh-mock.localhost/v.mp4", tmp_path / "w.mp4")


@contextlib.contextmanager
def _cut_short():
    """A server that promises 100,000 bytes and sends 5,000."""
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's naming)
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            self.wfile.write(b"\0" * 5000)

        def log_message(self, *args):
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v.mp4"
    finally:
        server.shutdown()
        server.server_close()


def test_wait_waits_no_longer_than_its_timeout_for_a_slow_server():
    """Each poll waited `timeout` (the client's, 30 s) for its answer, and its retries as long again: wait(timeout=1)
    took 12 s against a server slow to answer."""
    class Slow(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's naming)
            time.sleep(5)

        def log_message(self, *args):
            pass

    server = QuietHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        for retries in (3, 0):  # with no retry left, the poll its deadline cut short is a timeout of the wait too
            ivh = Client("a", "t", f"http://127.0.0.1:{server.server_port}", timeout=30, max_retries=retries)
            started = time.monotonic()
            with pytest.raises(WaitTimeoutError):
                ivh.wait("t", timeout=1)
            assert time.monotonic() - started < 3
    finally:
        server.shutdown()
        server.server_close()


def test_credentials_fall_back_to_the_environment(monkeypatch):
    monkeypatch.setenv("IVH_APPKEY", "env-app")
    monkeypatch.setenv("IVH_ACCESSTOKEN", "env-token")
    monkeypatch.delenv("IVH_BASE_URL", raising=False)
    client = Client()
    assert (client.appkey, client.accesstoken, client.base_url) == ("env-app", "env-token", "https://gw-sg.tvs.qq.com")
    monkeypatch.setenv("IVH_BASE_URL", "http://127.0.0.1:8080/")
    assert Client().base_url == "http://127.0.0.1:8080"
    monkeypatch.delenv("IVH_APPKEY")
    with pytest.raises(ValueError, match="IVH_APPKEY"):
        Client()


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_base_url_is_refused_not_taken_for_the_live_api(monkeypatch, value):
    """`IVH_BASE_URL=$UNSET_VARIABLE` called the live API, which bills, with whatever credentials the environment
    held; an empty base_url did too."""
    monkeypatch.setenv("IVH_BASE_URL", value)
    with pytest.raises(ValueError, match="IVH_BASE_URL is set but empty: set it to the server's URL, or unset it"):
        Client("a", "t")
    monkeypatch.delenv("IVH_BASE_URL")
    with pytest.raises(ValueError, match="the base URL is empty: give the server's URL, or none"):
        Client("a", "t", value)


def test_a_blank_about_the_base_url_is_shown_where_it_is():
    """A leading space was refused as `'http://...' holds a space`, quoted without it: nowhere to be seen."""
    with pytest.raises(ValueError, match=r"holds a space or a control character \(' ' at character 1 of 22\)"):
        Client("a", "t", " http://127.0.0.1:8080")


def test_every_documented_code_has_an_exception_family():
    catalogue = spec_module.load().errors
    for code in catalogue.header:
        if code != 0:
            assert catalogue.family(code) in FAMILIES, f"code {code} has no client exception family"


# -- the retry policy, as tables -------------------------------------------------------------------------------------
def _connection_error(reason):
    """requests' ConnectionError as it raises one: urllib3's MaxRetryError around what went wrong."""
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/", reason))


REFUSED = urllib3.exceptions.NewConnectionError(None, "Connection refused")
UNRESOLVED = urllib3.exceptions.NameResolutionError("nowhere.invalid", None, OSError("Name or service not known"))
CUT = urllib3.exceptions.ProtocolError("Connection aborted.")


@pytest.mark.parametrize("error, idempotent, retried", [
    (requests.ConnectTimeout(), False, True),  # never reached the server: safe even for a submission
    (_connection_error(REFUSED), False, True),
    (_connection_error(UNRESOLVED), False, True),  # a NewConnectionError too: it had not been retried (by name)
    (_connection_error(CUT), False, False),  # the request may have arrived
    (requests.ReadTimeout(), False, False),
    (requests.ReadTimeout(), True, True),
    (_connection_error(CUT), True, True),
    (requests.exceptions.ChunkedEncodingError("IncompleteRead"), True, True),  # a poll's answer broke off
    (requests.exceptions.ChunkedEncodingError("IncompleteRead"), False, False),
    (RateLimitedError(801004, "too frequent"), True, True),
    (RateLimitedError(801004, "too frequent"), False, False),
    (FAMILIES["server"](-101000, "internal"), True, True),
    (ParameterError(100002, "bad"), True, False),
    (AuthenticationError(100005, "no"), True, False),
    (NotFoundError(110006, "gone"), True, False),
])
def test_should_retry(error, idempotent, retried):
    assert should_retry(error, idempotent=idempotent) is retried


@pytest.mark.parametrize("attempt, low, high", [(1, 0.5, 0.625), (2, 1.0, 1.25), (3, 2.0, 2.5), (4, 4.0, 5.0),
                                                (5, 8.0, 10.0), (9, 8.0, 10.0), (1026, 8.0, 10.0), (10**6, 8.0, 10.0)])
def test_backoff_doubles_up_to_a_cap_with_jitter(attempt, low, high):
    for seed in range(20):
        assert low <= backoff(attempt, random.Random(seed)) <= high


class FlakyAdapter(WSGIAdapter):
    """Fails the first `failures` sends with `error`, then passes requests through to the app."""

    def __init__(self, app, error, failures):
        super().__init__(app)
        self.error, self.failures, self.sent = error, failures, 0

    def send(self, request, **kwargs):
        self.sent += 1
        if self.sent <= self.failures:
            raise self.error
        return super().send(request, **kwargs)


@pytest.mark.parametrize("error, submit_retried", [
    (requests.ConnectTimeout("connect timed out"), True),
    (requests.ReadTimeout("read timed out"), False),
])
def test_connection_errors_and_retries(error, submit_retried):
    clock = VirtualClock(start=T0)
    app = create_app({**FAST, "background": False}, clock=clock)
    session = requests.Session()
    adapter = FlakyAdapter(app, error, failures=2)
    session.mount("http://ivh-mock.localhost", adapter)
    ivh = Client("retry-test", "mock-accesstoken", "http://ivh-mock.localhost", session=session, clock=clock.now,
                 sleep=clock.advance, monotonic=clock.now, rng=random.Random(1))
    if submit_retried:
        assert ivh.phototovideonotrain(TEXT_PAYLOAD).task_id
        assert adapter.sent == 3
    else:
        with pytest.raises(APIConnectionError):
            ivh.phototovideonotrain(TEXT_PAYLOAD)
        assert adapter.sent == 1
        adapter.sent = 0
        with pytest.raises(NotFoundError):  # getprogress is retried through both failures, then answered
            ivh.getprogress("x")
        assert adapter.sent == 3


def _progress_answer() -> bytes:
    body = envelope({"TaskId": "t", "Status": "MAKING", "Progress": 40, "ArrayCount": 0, "Duration": 0,
                     "MediaUrl": "", "SubtitlesUrl": "", "FailCode": 0, "FailMessage": "", "TextTimestampResult": []})
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)


def test_a_server_that_trickles_its_answer_holds_no_call_past_its_timeout(tmp_path):
    """A byte every 0.2 s never trips a read timeout: a submission, a poll and wait(timeout=2) had all been held for
    as long as the answer took (minutes), and `download` too."""
    with RawServer(_progress_answer(), every=0.2) as server:
        url = server.url
        ivh = Client("a", "t", url, timeout=1, max_retries=0)
        started = time.monotonic()
        with pytest.raises(APIConnectionError, match=r"no whole answer from .* within 1 s"):
            ivh.getprogress("t")
        with pytest.raises(APIConnectionError, match="no whole answer"):
            ivh.phototovideonotrain(TEXT_PAYLOAD)
        assert time.monotonic() - started < 4 and server.requests == 2  # the submission was sent once
        started = time.monotonic()
        with pytest.raises(WaitTimeoutError):
            Client("a", "t", url, timeout=30).wait("t", timeout=1.5)
        assert time.monotonic() - started < 3
        started = time.monotonic()
        with pytest.raises(DownloadError, match=r"not whole within 1 s"):
            ivh.download(f"{url}/v.mp4?q-signature=SECRET", tmp_path / "v.mp4", timeout=1)
        assert time.monotonic() - started < 3 and list(tmp_path.iterdir()) == []


def test_a_redirect_is_never_followed_by_an_api_call():
    """A 307 had re-sent the paid submission to wherever Location said, and a 302 had turned it into a GET."""
    moved = (b"HTTP/1.1 307 Temporary Redirect\r\nLocation: http://elsewhere.example/x?sig=1\r\n"
             b"Content-Length: 0\r\n\r\n")
    with RawServer(moved) as server:
        with pytest.raises(APIConnectionError) as raised:
            Client("a", "t", server.url).phototovideonotrain(TEXT_PAYLOAD)
    assert "HTTP 307" in str(raised.value) and "a redirect to 'http://elsewhere.example/x'" in str(raised.value)
    assert server.requests == 1


def test_no_error_the_client_raises_carries_the_signed_query_along():
    """`str(error)` was redacted, but the requests error it was raised from, with the signed URL, was its cause: a
    logged traceback printed the signature."""
    import traceback

    with pytest.raises(APIConnectionError) as raised:
        Client("a", "secret-token", "http://127.0.0.1:9", max_retries=0).getprogress("t")
    printed = "".join(traceback.format_exception(raised.value))
    assert "signature=" not in printed.replace("signature=[redacted]", "") and "Connection refused" in printed
    assert raised.value.__context__ is None and raised.value.__cause__ is None  # it had kept requests' as context


def test_no_error_text_carries_a_signature_a_server_quoted_nor_a_proxys_password(monkeypatch):
    """A gateway's page or a refusal's Message that quotes the request line, and requests' error naming the proxy's
    URL, went into the error's text whole: the signature, with which anyone may call the API as the account for
    minutes, and the password of the proxy HTTP_PROXY names."""
    query = signed_query("a", "secret-token", 1_800_000_000)
    line = f"POST {PATHS['getprogress']}?{query} HTTP/1.1"
    signature = query.rsplit("signature=", 1)[1]
    refusal = json.dumps({"Header": {"Code": 100002, "Message": f"bad request: {line}", "RequestID": "r"},
                          "Payload": {}}).encode()
    for answer in (f"HTTP/1.1 502 Bad Gateway\r\nContent-Length: {len(line) + 20}\r\n\r\nupstream failed for "
                   f"{line}".encode(),
                   f"HTTP/1.1 400 Bad Request\r\nContent-Length: {len(line) + 5}\r\n\r\nbad: {line}".encode(),
                   _answer(refusal, f"Content-Length: {len(refusal)}")):
        with RawServer(answer) as server:
            with pytest.raises(IvhError) as raised:
                Client("a", "secret-token", server.url, max_retries=0, clock=lambda: 1_800_000_000).getprogress("t")
        said = str(raised.value) + getattr(raised.value, "message", "")
        assert signature not in said and "signature=[redacted] HTTP/1.1" in said, said
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", "http://user:s3cret@127.0.0.1:99999")
    with pytest.raises(APIConnectionError) as raised:
        Client("a", "secret-token", "http://127.0.0.1:9", max_retries=0).getprogress("t")
    assert "s3cret" not in str(raised.value) and "http://[redacted]@127.0.0.1:99999" in str(raised.value), raised


def test_a_download_that_fails_on_its_way_keeps_the_urls_query_out_of_its_error():
    """urllib3 quotes the path and query it failed on (`Max retries exceeded with url: /v.mp4?sign=...`): only a
    lowercase `signature=` had been redacted, and the error it was raised from kept the whole URL."""
    url = "http://127.0.0.1:9/v.mp4?sign=SECRETA&x-cos-security-token=SECRETB&X-Amz-Signature=SECRETC"
    with pytest.raises(DownloadError) as raised:
        Client("a", "t", "http://127.0.0.1:9").download(url, "unwritten.mp4")
    assert "Connection refused" in str(raised.value) and "SECRET" not in str(raised.value), str(raised.value)
    assert raised.value.__context__ is None
    with pytest.raises(DownloadError) as raised:  # a query of one character: taken out where it is a query only
        Client("a", "t", "http://127.0.0.1:9").download("http://127.0.0.1:9/v.mp4?1", "unwritten.mp4")
    assert "host='127.0.0.1', port=9" in str(raised.value) and "url: /v.mp4?[redacted]" in str(raised.value)


def _answer(body: bytes, *headers: str) -> bytes:
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + "".join(f"{h}\r\n" for h in headers).encode()
            + b"\r\n" + body)


def test_answers_and_urls_no_client_reads_are_its_typed_errors_never_a_traceback(tmp_path):
    """A Content-Length of 5,000 digits (int() refuses past 4,300), a redirect to `http://[::1/x` and a host label
    past 63 characters had escaped as ValueError, and `ivh` printed a traceback; an answer holding NaN was printed by
    `ivh --json` as text no strict JSON reader takes."""
    huge = "Content-Length: " + "1" * 5000
    with RawServer(_answer(envelope(PROGRESS), huge)) as server:
        with pytest.raises(APIConnectionError, match="is 1000000000000000000 bytes, more than the 1048576"):
            Client("a", "t", server.url, max_retries=0).getprogress("t")
        with pytest.raises(DownloadError, match="larger than max_bytes"):
            Client("a", "t", server.url).download(server.url + "/v.mp4", tmp_path / "v.mp4", max_bytes=10)
    moved = b"HTTP/1.1 302 Found\r\nLocation: http://[::1/x\r\nContent-Length: 0\r\n\r\n"
    with RawServer(moved) as server:
        with pytest.raises(DownloadError, match="Invalid IPv6 URL"):
            Client("a", "t", server.url).download(server.url + "/v.mp4", tmp_path / "v.mp4")
    with pytest.raises(DownloadError):
        Client("a", "t", "http://127.0.0.1:9").download(f"http://{'a' * 300}.example/v.mp4", tmp_path / "v.mp4")
    for base_url in ("http://a..b", f"http://{'a' * 64}.example", f"http://{'a.' * 127}b"):
        with pytest.raises(ValueError, match="the base URL .* is not an http or https URL with a host"):
            Client("a", "t", base_url)
    nan = envelope(PROGRESS).replace(b'"Duration": 0', b'"Duration": 0, "Extra": NaN')
    with RawServer(_answer(nan, f"Content-Length: {len(nan)}")) as server:
        with pytest.raises(APIConnectionError, match="NaN is not a JSON number"):
            Client("a", "t", server.url, max_retries=0).getprogress("t")
    assert not list(tmp_path.iterdir())


def test_a_poll_whose_answer_broke_off_is_asked_again_and_a_hung_server_is_named_when_a_wait_ends():
    """A getprogress answer cut short of its Content-Length had ended wait() at once, unretried; a wait on a server
    that never answered said only that the task was not finished."""
    cut = _answer(envelope(PROGRESS)[:10], "Content-Length: 1000")
    with RawServer(cut) as server:
        with pytest.raises(APIConnectionError, match="IncompleteRead"):
            Client("a", "t", server.url, sleep=lambda seconds: None).getprogress("t")
        assert server.requests == 1 + MAX_RETRIES
    with RawServer(b"", hang=True) as server:
        with pytest.raises(WaitTimeoutError) as raised:
            Client("a", "t", server.url, timeout=0.5).wait("t", timeout=1.2, interval=0.1)
    assert "the last poll failed: getprogress: " in str(raised.value) and "no whole answer" in str(raised.value)


def test_looking_for_a_lone_surrogate_holds_no_more_than_a_path_per_level():
    """parse_callback took 240 MB for a 2.5 MB callback with a long array (840 MB for 10 MB): the search for a lone
    surrogate made a path string for every item before looking at it. The first one in the body's order is named."""
    import tracemalloc

    from ivh_mock.spec.jsontext import lone_surrogate

    body = {"Header": {}, "Payload": {"X": [0] * 1_000_000, "Y": [{"a": ["ok", "b\udc00"]}, "c\udfff"]}}
    tracemalloc.start()
    try:
        found = lone_surrogate(body)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert found.startswith("Payload.Y[0].a[1] holds a lone surrogate \\udc00") and peak < 100_000, (found, peak)
    assert lone_surrogate({"k\ud800": 1}).startswith("a key of the body holds")
    assert lone_surrogate("\ud800").startswith("the body holds") and lone_surrogate([1, "x", {}]) is None


def test_an_error_answers_request_id_is_text_or_none():
    """An error envelope with `"RequestID": ["x"]` had given APIError.request_id == ['x']."""
    refusal = json.dumps({"Header": {"Code": 100002, "Message": "bad", "RequestID": ["x"]}, "Payload": {}}).encode()
    ivh, _, _ = answering(refusal)
    with pytest.raises(ParameterError) as raised:
        ivh.getprogress("t")
    assert raised.value.request_id is None and raised.value.code == 100002


def test_a_submission_accepted_with_a_task_id_no_poll_can_take_is_said_as_no_answer_of_the_apis():
    """An empty TaskId had come back as Submitted(task_id=''); `ivh submit --wait` then refused its own poll in
    pre-flight and exited 1, "the API refused", for a submission that was accepted (billed): a script retries it. It
    is an outcome to check (OutcomeUnknownError, `ivh` exits 6), not a server never reached (it had exited 5)."""
    from ivh_mock.client import OutcomeUnknownError

    for task_id in ("", "x" * 500):
        ivh, adapter, _ = answering(envelope({"TaskId": task_id}))
        with pytest.raises(OutcomeUnknownError, match="the submission was accepted .* TaskId is none getprogress"):
            ivh.phototovideonotrain(TEXT_PAYLOAD)
        assert adapter.calls == 1
    # a proxy the environment names that cannot be reached carried nothing: sent again, as a refused connection is
    ivh = Client("a", "mock-accesstoken", "http://api.example.invalid", max_retries=1, sleep=lambda seconds: None)
    ivh.session.proxies = {"http": "http://127.0.0.1:9"}
    with pytest.raises(APIConnectionError) as unreached:
        ivh.phototovideonotrain(TEXT_PAYLOAD)
    assert not isinstance(unreached.value, OutcomeUnknownError), unreached.value


def test_a_download_writes_through_a_link_refuses_what_is_no_file_and_leaves_the_users_files_alone(tmp_path):
    """A link had been replaced by a file (its target untouched), a pipe replaced, and a file of the user's named
    like the download's partial file (`v.mp4.part`) deleted. A signed URL's query was printed in full."""
    import os

    ivh, _, _ = answering(b"video bytes")
    (tmp_path / "real.mp4").write_bytes(b"old")
    (tmp_path / "link.mp4").symlink_to(tmp_path / "real.mp4")
    (tmp_path / "v.mp4.part").write_bytes(b"mine")
    ivh.download("http://ivh-mock.localhost/v.mp4", tmp_path / "link.mp4")
    assert (tmp_path / "link.mp4").is_symlink() and (tmp_path / "real.mp4").read_bytes() == b"video bytes"
    ivh.download("http://ivh-mock.localhost/v.mp4", tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4.part").read_bytes() == b"mine"
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(DownloadError) as raised:
        ivh.download("http://ivh-mock.localhost/v.mp4?q-signature=SECRET", tmp_path / "pipe")
    assert "is not a regular file" in str(raised.value) and "SECRET" not in str(raised.value)
    (tmp_path / "loop.mp4").symlink_to(tmp_path / "loop.mp4")  # had raised Python 3.11's RuntimeError
    with pytest.raises(DownloadError, match="loop.mp4: Too many levels of symbolic links$"):
        ivh.download("http://ivh-mock.localhost/v.mp4", tmp_path / "loop.mp4")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["link.mp4", "loop.mp4", "pipe", "real.mp4", "v.mp4",
                                                                "v.mp4.part"]


@pytest.mark.parametrize("base_url", ["http://h:1/?x=1", "http://h:1#part", "http://h:1/?"])
def test_a_base_url_with_a_query_or_a_fragment_is_refused(base_url):
    """The call's path and signed query had landed inside the query or the fragment: POST / and 100009."""
    with pytest.raises(ValueError, match="has a query or a fragment"):
        Client("a", "t", base_url)


def test_arguments_of_the_wrong_type_are_refused_where_they_are_given():
    """Client(5, ...) raised a TypeError from quote_from_bytes, a bytes accesstoken an AttributeError at each call, a
    base URL of 5 an AttributeError; with validation off, an integer of 5,000 digits Python's own ValueError."""
    for args, name in ((5, "t", "http://127.0.0.1:9"), "appkey"), (("a", b"t", "http://127.0.0.1:9"), "accesstoken"), \
            (("a", "t", 5), "base URL"):
        with pytest.raises(ValueError, match=rf"^the {name} must be text \(str\), got (int|bytes)$"):
            Client(*args)
    unchecked = Client("a", "t", "http://127.0.0.1:9", validate=False, max_retries=0)
    with pytest.raises(ParameterError, match="request body cannot be written as JSON: Exceeds the limit"):
        unchecked.phototovideonotrain({**TEXT_PAYLOAD, "SpeechParam": {"TimbreKey": "female_1", "Speed": 10**5000}})


def test_a_scenario_or_a_download_bound_of_the_wrong_kind_is_refused_where_it_is_given(tmp_path):
    """`scenario=5` had been an AttributeError from inside (no IvhError), `max_bytes="10"` a TypeError comparing
    numbers, `max_bytes=-1` refused every file after downloading it, and `validate="no"` validated every call."""
    client = Client("app", "token", "http://127.0.0.1:9", max_retries=0)
    with pytest.raises(ValueError, match="^a scenario is a name \\(str\\), got int$"):
        client.phototovideonotrain(TEXT_PAYLOAD, scenario=5)
    for wrong in ("10", -1, 1.5, True):
        with pytest.raises(ValueError, match="^max_bytes must be a whole number of bytes from 0, or None, got"):
            client.download("http://127.0.0.1:9/v.mp4", tmp_path / "v.mp4", max_bytes=wrong)
    for wrong in ("", " ", None):  # a SUCCESS that names no MediaUrl had been `cannot download : Invalid URL ''`
        with pytest.raises(DownloadError, match=f"^cannot download: no URL to download from \\(got {wrong!r}\\)$"):
            client.download(wrong, tmp_path / "v.mp4")
    for wrong in (0, -1, 1.5, "8", None):  # 0 had written an empty file and returned its path
        with pytest.raises(ValueError, match="^chunk_size must be a whole number of bytes from 1, got"):
            client.download("http://127.0.0.1:9/v.mp4", tmp_path / "v.mp4", wrong)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="^validate must be True or False, got 'no'$"):  # ("no" is true)
        Client("app", "token", "http://127.0.0.1:9", validate="no")


def test_the_fixture_uploads_bytes_not_text(ivh_mock):
    with pytest.raises(TypeError, match="^upload takes the file's bytes, got str$"):
        ivh_mock.upload("not bytes", "x.jpg")
    assert ivh_mock.upload(bytearray(b"bytes"), "x.bin").endswith("/x.bin")


def test_the_fixtures_scratch_folder_is_in_the_runs_temporary_folder(ivh_mock, tmp_path_factory):
    """It was in the system's temporary folder, where a test process that died (a timeout's os._exit, a crashed
    xdist worker) left it for good; pytest removes its runs' folders by itself."""
    scratch = Path(ivh_mock.app.extensions["ivh_mock_scratch"].name)
    assert scratch.parent == tmp_path_factory.getbasetemp() and scratch.name.startswith("ivh-mock-")


def test_the_fixtures_scratch_folder_is_the_systems_where_pytest_has_no_basetemp():
    """A --basetemp pytest cannot make (read-only, or in a missing folder) failed every test of the fixture, where
    only a test asking for tmp_path fails."""
    from types import SimpleNamespace

    from ivh_mock.mock_server.serving.pytest_plugin import _base_temp

    def unmade():
        raise FileNotFoundError(2, "No such file or directory", "missing/basetemp")

    def looked_up(name):
        assert name == "tmp_path_factory"
        return SimpleNamespace(getbasetemp=unmade)

    assert _base_temp(SimpleNamespace(getfixturevalue=looked_up)) is None


def test_only_a_test_whose_mock_served_marks_its_reports_for_an_xdist_controller():
    """A skipped test, or one whose setup failed before its mock started, named the fixture all the same: its report
    told the controller a mock had served."""
    from types import SimpleNamespace

    from ivh_mock.mock_server.serving import pytest_plugin

    def marked(item) -> bool:
        report = SimpleNamespace()
        wrapper = pytest_plugin.pytest_runtest_makereport(item, SimpleNamespace(when="setup"))
        next(wrapper)
        with contextlib.suppress(StopIteration):
            wrapper.send(SimpleNamespace(get_result=lambda: report))
        return getattr(report, pytest_plugin.SERVED, False)

    worker = SimpleNamespace(workerinput={"workerid": "gw0"})
    item = SimpleNamespace(config=worker, fixturenames=["ivh_mock"])
    assert not marked(item)
    setattr(item, pytest_plugin.SERVED, True)  # as the fixture sets it once its mock serves
    assert marked(item) and not marked(SimpleNamespace(**{**vars(item), "config": SimpleNamespace()}))  # no worker


def test_a_sigterm_handler_the_test_sets_outlives_the_fixtures_own():
    """The fixture's teardown put SIGTERM back to its default, whatever the test had set meanwhile: an app's own
    handler (its graceful stop) was gone for the rest of the run."""
    from ivh_mock.mock_server.serving.pytest_plugin import _terminated_as_interrupted

    def graceful(signum, frame):
        pass

    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        with _terminated_as_interrupted():
            assert signal.getsignal(signal.SIGTERM) is signal.default_int_handler  # (the test's main thread)
        assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        with _terminated_as_interrupted():
            signal.signal(signal.SIGTERM, graceful)
        assert signal.getsignal(signal.SIGTERM) is graceful
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_stop_cut_short_still_ends_the_mocks_threads_and_removes_its_scratch_folder(monkeypatch):
    """A test's timeout that fired while the stop waited for a callback's delivery (pytest-timeout's signal method
    counts the teardown) left the dispatcher's threads running and the scratch folder in place to the end of the
    process: the stop, marked done as it began, was never made again."""
    mock = MockServer()
    scratch = Path(mock.app.extensions["ivh_mock_scratch"].name)
    dispatcher = mock.app.extensions["ivh_mock_dispatcher"]
    thread = dispatcher._thread  # (another test's mock may be stopping in this process meanwhile)

    def timed_out(seconds):
        raise TimeoutError("the test's time ran out")

    monkeypatch.setattr(dispatcher, "delivered", timed_out)
    with pytest.raises(TimeoutError):
        mock.stop()
    assert not scratch.exists() and thread.name == "ivh-callback-dispatcher" and not thread.is_alive()


def test_a_mock_stopped_while_answering_a_client_that_gave_up_leaves_no_scratch_folder(monkeypatch):
    """A submission whose client gave up (a timeout of 5 ms) went on being answered; the stop removed the scratch
    folder meanwhile, and the photo then written made the folder again: one left in the temporary folder per test."""
    from ivh_mock.client import IvhError
    from ivh_mock.mock_server import MockServer

    with MockServer() as mock:
        scratch, writing = Path(mock.app.extensions["ivh_mock_scratch"].name), mock.ctx.blobs.writing

        def late(*args, **kwargs):  # the answer is still on its way when the test ends
            time.sleep(0.3)
            return writing(*args, **kwargs)

        monkeypatch.setattr(mock.ctx.blobs, "writing", late)
        with pytest.raises(IvhError):
            mock.client("impatient", timeout=0.05, max_retries=0).phototovideonotrain(
                {**TEXT_PAYLOAD, "RefPhotoUrl": mock.sample("photo.jpg")})
    time.sleep(0.5)  # what the request would have done after the stop, done
    assert not scratch.exists()


def test_a_client_closes_its_own_connections_and_not_a_session_it_was_given(ivh_mock):
    """A Client had no close(): each kept its kept-alive connection open until the garbage collector came."""
    def pools(session: requests.Session) -> int:  # the connection pools its adapter holds (one per host)
        return len(session.get_adapter(ivh_mock.base_url).poolmanager.pools)

    with Client("app", "mock-accesstoken", ivh_mock.base_url) as client:
        client.describetimbre()
        assert pools(client.session) == 1
    assert pools(client.session) == 0
    given = requests.Session()
    given.get(f"{ivh_mock.base_url}/__mock__/clock").raise_for_status()
    Client("app", "mock-accesstoken", ivh_mock.base_url, session=given).close()
    assert pools(given) == 1  # its owner's to close
    given.close()


def test_an_appkey_or_accesstoken_given_empty_is_refused_not_taken_from_the_environment(monkeypatch):
    """`Client("")` with IVH_APPKEY set called as the environment's account, unsaid."""
    monkeypatch.setenv("IVH_APPKEY", "env-app")
    monkeypatch.setenv("IVH_ACCESSTOKEN", "env-token")
    with pytest.raises(ValueError, match="^the appkey is empty: give it, or leave it out to take IVH_APPKEY$"):
        Client("", "token", "http://127.0.0.1:9")
    with pytest.raises(ValueError, match="^the accesstoken is empty"):
        Client("app", "", "http://127.0.0.1:9")
    taken = Client(base_url="http://127.0.0.1:9")
    assert (taken.appkey, taken.accesstoken) == ("env-app", "env-token")


@pytest.mark.parametrize("timeout", [0, -1, None, float("nan"), float("inf"), "30", True, 1e10])
def test_a_timeout_that_is_no_time_is_refused_where_it_is_given(timeout, tmp_path):
    """Client(timeout=0) was taken, then each call raised the client's private _OutOfTime (no IvhError), None a
    TypeError from inside, NaN a ValueError of urllib3's as a failed connection, 1e10 an OverflowError."""
    with pytest.raises(ValueError, match=r"^timeout must be a number of seconds greater than 0 and at most a year "
                                         r"\(31622400\), got "):
        Client("a", "t", "http://127.0.0.1:9", timeout=timeout)
    client = Client("a", "t", "http://127.0.0.1:9")
    with pytest.raises(ValueError, match=r"^timeout must be a number of seconds greater than 0"):
        client.wait("t" * 32, timeout=timeout)
    if timeout is not None:  # download()'s None is no bound but the client's own timeout per connect and read
        with pytest.raises(ValueError, match=r"^timeout must be a number of seconds greater than 0"):
            client.download("http://127.0.0.1:9/v.mp4", tmp_path / "v.mp4", timeout=timeout)
    for wrong in (None, float("nan"), -1):
        with pytest.raises(ValueError, match=r"^interval must be a number of seconds from 0"):
            client.wait("t" * 32, interval=wrong)
    for wrong in (-1, 1.5, None, True):
        with pytest.raises(ValueError, match=r"^max_retries must be a whole number of 0 or more"):
            Client("a", "t", "http://127.0.0.1:9", max_retries=wrong)


def test_a_retry_after_date_in_any_of_http_s_forms_is_honoured():
    """A date written with `-0000` (or in asctime's form) read as a time of no zone and was ignored."""
    from email.utils import format_datetime
    from datetime import datetime, timedelta, timezone

    from ivh_mock.client.api import _retry_after

    later = datetime.now(timezone.utc) + timedelta(seconds=30)
    for written in (format_datetime(later, usegmt=True), format_datetime(later.replace(tzinfo=None)),
                    later.strftime("%a %b %d %H:%M:%S %Y")):
        response = requests.Response()
        response.headers["Retry-After"] = written
        assert 25 < _retry_after(response) <= 30, written


def test_the_progress_bar_draws_a_share_whatever_the_server_says():
    """Progress 10**30 had ended `ivh wait` in an OverflowError traceback, 10**12 in a MemoryError."""
    import io

    from ivh_mock.client.cli import _bar
    from ivh_mock.client.models import Progress

    shown = io.StringIO()
    draw = _bar(shown)
    for progress in (10**30, 40, -1):
        draw(Progress.from_payload("t", {"Status": "MAKING", "Progress": progress, "ArrayCount": 0, "Duration": 0,
                                         "MediaUrl": "", "SubtitlesUrl": "", "FailCode": 0, "FailMessage": "",
                                         "TextTimestampResult": []}, "r"))
    assert [line.split("] ")[1].split("%")[0].strip() for line in shown.getvalue().splitlines()] == ["100", "40", "0"]


def test_wait_polls_no_faster_than_its_floor_and_no_slower_than_its_ceiling():
    """interval=0 or max_interval=0 had polled in a busy loop, and 1e300 ended in an OverflowError from sleep."""
    from ivh_mock.client.api import MIN_INTERVAL

    ivh, adapter, slept = answering(envelope({"TaskId": "t", "Status": "MAKING", "Progress": 1, "ArrayCount": 0,
                                              "Duration": 0, "MediaUrl": "", "SubtitlesUrl": "", "FailCode": 0,
                                              "FailMessage": "", "TextTimestampResult": []}))
    now = [0.0]
    ivh.monotonic = lambda: now[0]

    def sleep(seconds):
        if seconds <= 0:  # else the wait polls for ever, its clock still
            pytest.fail(f"a pause of {seconds} s: a busy loop")
        slept.append(seconds)
        now[0] += seconds

    ivh.sleep = sleep
    for interval, ceiling in ((0, 5), (1e300, 5), (1, 0), (0, 0)):
        now[0] = 0.0
        slept.clear()
        with pytest.raises(WaitTimeoutError):
            ivh.wait("t", timeout=3, interval=interval, max_interval=ceiling)
        # the last pause is what the timeout had left
        highest = max(ceiling, MIN_INTERVAL)
        assert slept and slept[-1] <= highest and all(MIN_INTERVAL <= pause <= highest for pause in slept[:-1]), slept


def test_a_server_that_ignores_the_page_asked_for_ends_the_listing_of_timbres():
    """A server answering every page alike with a large Total had been asked page after page, forever; one counting
    10**18 timbres, each page new ones, for hours (the listing's memory growing all along)."""
    from ivh_mock.client.api import MAX_TIMBRES

    page = envelope({"TimbreAssets": [{"TimbreKey": "female_1", "TimbreName": "f", "TimbreType": "standard",
                                       "TimbreSampleUrl": "", "TimbreDesc": ""}], "Total": MAX_TIMBRES})
    ivh, adapter, _ = answering(page)
    with pytest.raises(APIConnectionError, match="page 2 is page 1 again"):
        list(ivh.iter_timbres(page_size=1))
    assert adapter.calls == 2
    ivh, adapter, _ = answering(page.replace(b'"Total": 10000', b'"Total": 1000000000000000000'))
    with pytest.raises(APIConnectionError, match="^describetimbre: the server counts 1000000000000000000 timbres "
                                                 "\\(Total\\), more than any account has: the client lists at most "
                                                 "10000$"):
        list(ivh.iter_timbres(page_size=1))
    assert adapter.calls == 1 and MAX_TIMBRES == 10_000


def test_a_server_whose_total_grows_page_after_page_ends_the_listing_of_timbres():
    """Each page new timbres and a Total one page larger: the listing had gone on until the spec's PageIndex bound,
    100,000 requests later."""
    class Growing(FixedAnswer):
        def send(self, request, **kwargs):
            index = json.loads(request.body)["Payload"]["PageIndex"]
            self.body = envelope({"TimbreAssets": [{"TimbreKey": f"t{index}", "TimbreName": "t", "TimbreType": "x",
                                                    "TimbreSampleUrl": "", "TimbreDesc": ""}], "Total": index + 1})
            return super().send(request, **kwargs)

    ivh, _, _ = answering(b"")
    growing = Growing(b"")
    ivh.session.mount("http://ivh-mock.localhost", growing)
    with pytest.raises(APIConnectionError, match="page 3 is past the 2 timbres the first page counted, and the "
                                                 "server's Total is 4 now"):
        list(ivh.iter_timbres(page_size=1))
    assert growing.calls == 3
    empty, _, _ = answering(envelope({"TimbreAssets": [], "Total": 0}))
    assert list(empty.iter_timbres()) == []


def test_an_answer_that_cannot_be_decoded_says_why():
    """Nesting past 32 levels, a non-UTF-8 body: each had said only that it was not the API's envelope."""
    for body, says in ((b"[" * 40, "nest"), (b"\xff\xfe{}", "utf-8")):
        ivh, _, _ = answering(body)
        with pytest.raises(APIConnectionError) as raised:
            ivh.getprogress("t")
        assert says in str(raised.value).lower(), str(raised.value)


def test_a_downloaded_file_gets_the_permissions_any_new_file_gets(tmp_path):
    """The partial file, renamed to the destination, had been made by tempfile, 0600: a video others could not read."""
    import os

    ivh, _, _ = answering(b"video bytes")
    previous = os.umask(0o022)
    try:
        ivh.download("http://ivh-mock.localhost/v.mp4", tmp_path / "v.mp4")
    finally:
        os.umask(previous)
    assert (tmp_path / "v.mp4").stat().st_mode & 0o777 == 0o644


def test_an_answer_of_no_length_cut_at_the_deadline_is_no_whole_answer(tmp_path):
    """A server that ends its answer by closing the connection looks, cut at the deadline, like one that ended: a
    download had been saved truncated as if complete, and a call's answer read as no envelope."""
    body = _progress_answer().partition(b"\r\n\r\n")[2]
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + body
    with RawServer(answer, every=0.02) as server:  # some 5 s in all
        url = server.url
        ivh = Client("a", "t", url, timeout=1, max_retries=0)
        with pytest.raises(DownloadError, match=r"not whole within 1 s"):
            ivh.download(f"{url}/v.mp4", tmp_path / "v.mp4", timeout=1)
        assert list(tmp_path.iterdir()) == []
        with pytest.raises(APIConnectionError, match=r"no whole answer from .* within 1 s"):
            ivh.getprogress("t")


def test_a_long_name_in_a_wide_alphabet_downloads_as_any_other():
    """The partial file's name took the destination's first 64 characters: 60 emoji, 240 bytes, came past the
    folder's 255-byte limit with its suffix, though the destination's own name was within it."""
    import tempfile

    ivh, _, _ = answering(b"video bytes")
    with tempfile.TemporaryDirectory() as folder:
        destination = Path(folder) / ("\N{GRINNING FACE}" * 60 + ".mp4")
        ivh.download("http://ivh-mock.localhost/v.mp4", destination)
        assert destination.read_bytes() == b"video bytes"


def test_a_deadline_past_what_a_timer_can_wait_still_holds_without_a_traceback(monkeypatch):
    """`--timeout 1e300` reached threading.Timer, whose wait overflowed in its thread: a traceback, no bound."""
    import threading

    from ivh_mock.spec import deadline

    failed = []
    monkeypatch.setattr(threading, "excepthook", failed.append)
    with deadline.within(1e300) as limit:
        time.sleep(0.05)
    assert not limit.expired and failed == []


def test_deadlines_share_one_watchdog_that_ends_the_soonest_first_also_in_a_forked_child():
    """Each exchange's deadline started a timer thread of its own (about 150 us of CPU, a tenth of a call to a mock on
    loopback): one thread watches them all, a short deadline among long ones still ends on time, and a forked child
    (the server's workers) gets a watchdog of its own."""
    import contextlib
    import os
    import socket
    import threading

    from ivh_mock.spec import deadline

    def ends_in_time(seconds: float) -> float:
        here, there = socket.socketpair()
        with here, there, deadline.within(seconds) as limit:
            limit.watch(here)
            here.settimeout(5)  # a deadline that never ends fails the test, not the run
            started = time.monotonic()
            assert here.recv(1) == b""  # shut down by the watchdog, not answered
            assert limit.expired
            return time.monotonic() - started

    threads = threading.active_count()
    with contextlib.ExitStack() as stack:
        for _ in range(50):
            stack.enter_context(deadline.within(30))
        assert threading.active_count() <= threads + 1
        assert ends_in_time(0.2) < 2
        with deadline.within(0.2):  # a longer deadline inside a shorter one ends with the shorter
            assert ends_in_time(30) < 2
    with deadline.within(0.5):  # forked inside a block: the child's watchdog keeps that block's deadline
        child = os.fork()
        if child == 0:
            try:
                here, there = socket.socketpair()
                here.settimeout(5)
                deadline._local.deadline.watch(here)
                os._exit(0 if here.recv(1) == b"" and ends_in_time(0.2) < 2 else 1)
            finally:
                os._exit(2)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_the_watchdog_thread_holds_the_stop_signals_back_so_that_the_main_thread_takes_them():
    """A SIGTERM the watchdog thread took left the main thread's blocking read to wait for its timeout (30 s) before
    the handler ran, and ran it inside a step the main thread held the signals back from (`signals_held`): a
    download stopped then left its partial file behind (6 stops in 200)."""
    import signal
    import threading

    from ivh_mock.spec import deadline

    with deadline.within(30):
        [watchdog] = [thread for thread in threading.enumerate() if thread.name == "ivh-deadlines"]
        held = next(int(line.split()[1], 16) for line in Path(f"/proc/self/task/{watchdog.native_id}/status")
                    .read_text().splitlines() if line.startswith("SigBlk:"))
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        assert held & (1 << (number - 1)), signal.Signals(number).name
    assert not signal.pthread_sigmask(signal.SIG_BLOCK, set()) & {signal.SIGINT, signal.SIGTERM}  # this one's: not


def test_a_deadline_reaches_a_socket_inside_tls_and_a_failure_to_end_one_spares_the_others(monkeypatch):
    """TLS inside TLS to an HTTPS proxy is urllib3's SSLTransport, which has no shutdown(): its AttributeError would
    have ended the one watchdog thread, and with it every later deadline of the process."""
    import socket

    from ivh_mock.spec import deadline

    class Transport:  # what SSLTransport shows of itself: the socket it wraps
        def __init__(self, sock):
            self.socket = sock

    reported = []
    monkeypatch.setattr(sys, "excepthook", lambda *info: reported.append(info[0]))
    here, there = socket.socketpair()
    here.settimeout(5)  # a deadline that never ends fails the test, not the run
    with here, there, deadline.within(0.1) as limit:
        limit.watch(Transport(here))
        assert here.recv(1) == b"" and limit.expired

    def broken(self):
        raise RuntimeError("a deadline that cannot be ended")

    monkeypatch.setattr(deadline.Deadline, "_expire", broken)
    with deadline.within(0.05):
        time.sleep(0.3)
    monkeypatch.undo()
    assert reported == [RuntimeError]
    here, there = socket.socketpair()
    here.settimeout(5)
    with here, there, deadline.within(0.1) as limit:
        limit.watch(here)
        assert here.recv(1) == b"" and limit.expired


def test_the_client_goes_the_way_the_environment_names_reading_it_once_per_host(monkeypatch):
    """HTTP_PROXY carries the client's calls unless NO_PROXY names the host. requests read the whole environment twice
    per call (about 120 us, a tenth of a call to a mock on loopback): it is read once per host, so a proxy named
    after the client first called a host is not taken there, as with httpx; a new client takes it."""
    body = envelope({**PROGRESS, "TaskId": "t"})
    answer = (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
              % (len(body), body))
    with RawServer(answer) as egress, RawServer(answer) as other:
        monkeypatch.setenv("HTTP_PROXY", egress.url)
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("http_proxy", raising=False)
        ivh = Client("a", "mock-accesstoken", "http://api.example.invalid", max_retries=0)
        for _ in range(3):
            assert ivh.getprogress("t").status == "MAKING"
        assert egress.requests == 3
        monkeypatch.setenv("HTTP_PROXY", other.url)
        ivh.getprogress("t")
        assert (egress.requests, other.requests) == (4, 0)
        Client("a", "mock-accesstoken", "http://api.example.invalid", max_retries=0).getprogress("t")
        assert other.requests == 1
        monkeypatch.setenv("NO_PROXY", "api.example.invalid")
        with pytest.raises(APIConnectionError):  # straight there: a host that does not resolve
            Client("a", "mock-accesstoken", "http://api.example.invalid", max_retries=0).getprogress("t")
        assert (egress.requests, other.requests) == (4, 1)


def test_a_call_through_a_proxy_that_trickles_is_held_no_longer_than_its_timeout(monkeypatch, tmp_path):
    """A call through a proxy went by a manager of requests' own whose sockets no deadline saw: a proxy sending a byte
    a second held it for ever, and so did a download."""
    body = envelope({**PROGRESS, "TaskId": "t"})
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body) + 100, body)
    with RawServer(answer, every=0.05) as trickling:  # about 13 s to send it all
        monkeypatch.setenv("HTTP_PROXY", trickling.url)
        for name in ("NO_PROXY", "no_proxy", "http_proxy"):
            monkeypatch.delenv(name, raising=False)
        ivh = Client("a", "mock-accesstoken", "http://api.example.invalid", timeout=1, max_retries=0)
        started = time.monotonic()
        with pytest.raises(APIConnectionError, match="no whole answer .* within 1 s"):
            ivh.getprogress("t")
        with pytest.raises(DownloadError):
            ivh.download("http://files.example.invalid/v.mp4", tmp_path / "v.mp4", timeout=1)
        assert time.monotonic() - started < 6 and trickling.requests == 2


def test_a_call_the_environments_proxy_could_not_make_names_the_variable_and_no_proxy(monkeypatch):
    """A call failed "Unable to connect to proxy" or "Failed to parse: ..." and named neither HTTP_PROXY nor how to
    call the server without it; a password in the proxy's URL stays unsaid."""
    from ivh_mock.mock_server.serving.testing import free_port

    for name in ("NO_PROXY", "no_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    port = free_port()
    with MockServer() as mock:
        for variable, proxy, shown in (("http_proxy", f"http://user:pw@127.0.0.1:{port}", f"http://127.0.0.1:{port}"),
                                       ("HTTP_PROXY", "http://[::1", "http://[::1"),
                                       ("ALL_PROXY", f"127.0.0.1:{port}", f"127.0.0.1:{port}"),
                                       # requests: "Missing dependencies for SOCKS support." (PySocks)
                                       ("all_proxy", f"socks5://127.0.0.1:{port}", f"socks5://127.0.0.1:{port}")):
            monkeypatch.setenv(variable, proxy)
            ivh = Client("a", "mock-accesstoken", mock.base_url, timeout=5, max_retries=0)
            with pytest.raises(APIConnectionError) as raised:
                ivh.getprogress("t")
            said = str(raised.value)
            assert said.endswith(f" (the call went through the proxy {shown!r} that {variable} names: set "
                                 f"NO_PROXY=127.0.0.1 to call 127.0.0.1 directly)"), said
            assert "pw" not in said
            monkeypatch.delenv(variable)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{port}")
        session = requests.Session()
        session.trust_env = False  # a session of the caller's that takes no proxy from the environment
        direct = Client("a", "mock-accesstoken", f"http://127.0.0.1:{port}", max_retries=0, session=session)
        with pytest.raises(APIConnectionError) as raised:
            direct.getprogress("t")
        assert "Connection refused" in str(raised.value) and "HTTP_PROXY" not in str(raised.value)
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # as the note says: the server answers, the API's own refusal
        with pytest.raises(NotFoundError):
            Client("a", "mock-accesstoken", mock.base_url, max_retries=0).getprogress("t")


def test_an_answer_whose_head_breaks_off_is_no_answer():
    """A head cut short by the server's hang-up (no blank line after it) had been read as a whole 200 with no body."""
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n") as cut:
        with pytest.raises(APIConnectionError, match=r"IncompleteHead\('the connection ended after 2 line\(s\), "
                                                     r"before the blank line'\)"):
            Client("a", "mock-accesstoken", cut.url, max_retries=0).getprogress("t")


def test_a_call_inside_a_shorter_deadline_of_the_callers_ends_by_it_and_says_so():
    """A client's call within the caller's own shorter `deadline.within` block had ignored it (its own, inner,
    deadline alone held its sockets); ended by it, the message says the time that applied, not the client's timeout."""
    from ivh_mock.spec import deadline

    body = envelope({**PROGRESS, "TaskId": "t"})
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body), every=0.05) as slow:
        ivh = Client("a", "mock-accesstoken", slow.url, timeout=30, max_retries=0)
        started = time.monotonic()
        with deadline.within(0.5), pytest.raises(APIConnectionError, match=r"no whole answer .* within 0\.\d+ s"):
            ivh.getprogress("t")
        assert time.monotonic() - started < 5


def test_urls_in_the_clients_errors_lose_what_may_carry_a_credential():
    """The proxy's recordings and the client's errors take URLs apart by one rule (spec/urls.py): the client's had
    kept a URL's user info."""
    from ivh_mock.spec.urls import without_queries, without_query

    assert without_query("https://u:pw@h.example/v.mp4?q-signature=S#f") == "https://h.example/v.mp4"
    assert without_query("http://[::1/v.mp4?q-signature=S") == "http://[::1/v.mp4"  # no split: cut at its '?'
    # the host as written: the port and an IPv6 literal's brackets had gone with the user info
    assert without_query("http://bob:pw@127.0.0.1:19001/x?s=1") == "http://127.0.0.1:19001/x"
    # nothing to take out: as written (a usage error had quoted `http:127.0.0.1:8080` as `http:///127.0.0.1:8080`)
    assert without_query("http:127.0.0.1:8080") == "http:127.0.0.1:8080"
    with pytest.raises(ValueError, match="^the base URL 'http:127.0.0.1:8080' is not an http or https URL"):
        Client("a", "t", "http:127.0.0.1:8080")
    assert without_query("http://a@[::1]:8080/x") == "http://[::1]:8080/x"
    failed = without_queries("failed: https://u:pw@h.example/v.mp4?q=S (reset)")
    assert failed == "failed: https://h.example/v.mp4 (reset)"


def test_connection_errors_name_urllib3s_classes_not_the_deadlines_own():
    """Errors read `_HTTPPool(host=...): ... NewConnectionError("_HTTPConnection(...`: the deadline's private
    subclasses' names, in the client's errors, the callback log and FailMessages."""
    from ivh_mock.mock_server.serving.testing import free_port

    with pytest.raises(APIConnectionError) as failed:
        Client("a", "t", f"http://127.0.0.1:{free_port()}", max_retries=0).getprogress("x")
    assert "HTTPConnectionPool(host='127.0.0.1'" in str(failed.value) and "_HTTP" not in str(failed.value)


def test_a_test_failing_on_the_clients_error_is_shown_from_its_own_call(tmp_path):
    """An app's test (or the contract suite's) that failed on an error the client raised on purpose showed about
    eighty lines of the client's own source before the error's message; a bug of the client's still shows them."""

    from ivh_mock.mock_server.serving.testing import free_port

    port = free_port()  # nothing listens there
    (tmp_path / "test_app.py").write_text(
        "from ivh_mock.client import Client\n"
        "def test_refused():\n"
        f"    Client('a', 't', 'http://127.0.0.1:{port}', max_retries=0).getprogress('x')\n"
        "def test_broken():\n"
        f"    client = Client('a', 't', 'http://127.0.0.1:{port}', max_retries=0)\n"
        "    client.spec = None  # a bug of the client's, as it were\n"
        "    client.getprogress('x')\n")
    result = forked.run(["-q", "-p", "no:cacheprovider", "test_app.py"], cwd=tmp_path, timeout=120)
    assert "2 failed" in result.stdout, result.stdout[-3000:]
    refused, broken = result.stdout.split("_ test_refused _", 1)[1].split("_ test_broken _", 1)
    assert "APIConnectionError: getprogress: " in refused and "client/api.py" not in refused, refused
    assert "AttributeError" in broken and "client/api.py" in broken, broken


@pytest.mark.parametrize("operation", ["getprogress", "phototovideonotrain"])
def test_an_interim_answer_is_said_to_be_one(operation):
    """A 103 Early Hints before the answer was read as the answer: "HTTP 103 ... is not the API's envelope: ''"."""
    body = json.dumps({"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {"TaskId": "t"}}).encode()
    page = (b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    with RawServer(page) as server:
        client = Client("a", "t", server.url, max_retries=0)
        call = (lambda: client.getprogress("t")) if operation == "getprogress" else (
            lambda: client.phototovideonotrain(**TEXT_PAYLOAD))
        with pytest.raises(APIConnectionError) as raised:
            call()
    assert f"HTTP 103 from {PATHS[operation]}: an interim answer, which the client cannot read past" in str(
        raised.value)
    assert isinstance(raised.value, OutcomeUnknownError) == (operation == "phototovideonotrain")  # it was sent
