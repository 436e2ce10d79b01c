"""Malformed, oversized and hostile requests over real HTTP: always the API's envelope with a named rule, never a
500 or a stack trace, and the server keeps serving."""

import json
from types import SimpleNamespace

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st
from ivh_mock.mock_server import create_app
from ivh_mock.mock_server.operations import OPERATIONS

from ivh_mock import spec as spec_module

from .conftest import PATHS, TEXT_PAYLOAD, in_process

ERROR_SCHEMA = "#/components/schemas/ErrorResponse"
VALID = json.dumps({"Header": {}, "Payload": TEXT_PAYLOAD}).encode()
JSON = "application/json;charset=utf-8"
TASK_BODY = b'{"Header": {}, "Payload": {"TaskId": "abc"}}'

CASES = [
    ("empty body", b"", JSON, 100001, "request body is empty"),
    ("only whitespace", b"  \n ", JSON, 100001, "request body is empty"),
    ("not json", b"Header=1&Payload=2", JSON, 100003, "request body is not valid JSON"),
    ("truncated json", VALID[:-5], JSON, 100003, "request body is not valid JSON"),
    ("trailing garbage", VALID + b"}", JSON, 100003, "request body is not valid JSON: Extra data"),
    ("control character in a string", b'{"Header": {}, "Payload": {"TaskId": "a\tb"}}', JSON, 100003,
     "request body is not valid JSON: Invalid control character at line 1 column 40"),
    ("invalid utf-8", b'{"Header": {}, "Payload": {"TaskId": "\xff\xfe"}}', JSON, 100003, "not valid UTF-8"),
    ("utf-16 body", json.dumps({"Header": {}}).encode("utf-16"), JSON, 100003, "not valid UTF-8"),
    ("text/plain", VALID, "text/plain", 100003, "Content-Type must be application/json"),
    ("form encoded", b"a=b", "application/x-www-form-urlencoded", 100003, "Content-Type must be application/json"),
    ("no content type", VALID, "", 100003, "Content-Type must be application/json"),
    ("gbk charset", VALID, "application/json;charset=gbk", 100003, "charset must be utf-8"),
    # one media type, one charset (RFC 9110 8.3.1): a lenient reading took the first of two, or a value and ignored
    # the words after it
    ("two Content-Types joined", VALID, "application/json;charset=utf-8, text/plain", 100003,
     "Content-Type must be application/json (charset=utf-8, or none), got 'application/json;charset=utf-8, "
     "text/plain'"),
    ("words after the charset", VALID, "application/json;charset=utf-8 latin1", 100003,
     "got 'application/json;charset=utf-8 latin1'"),
    ("charset twice", VALID, "application/json; charset=latin1; charset=utf-8", 100003,
     "Content-Type charset must be utf-8, got 'latin1; utf-8'"),
    ("charset twice, utf-8 first", VALID, "application/json; charset=utf-8; charset=latin1", 100003,
     "got 'utf-8; latin1'"),
    ("a parameter without a value", VALID, "application/json; charset", 100003,
     "Content-Type must be application/json"),
    ("a quoted charset", TASK_BODY, 'application/json; charset="UTF-8"', 110006, "does not exist"),
    ("spaces around a parameter's =", TASK_BODY, "Application/JSON ; Charset = utf8", 110006, "does not exist"),
    ("another parameter", TASK_BODY, 'application/json;charset=utf-8;profile="a;b"', 110006, "does not exist"),
    ("NaN", b'{"Header": {}, "Payload": {"RefPhotoUrl": NaN}}', JSON, 100003, "NaN is not a JSON number"),
    ("Infinity", b'{"Header": {}, "Payload": {"Speed": Infinity}}', JSON, 100003, "Infinity is not a JSON number"),
    # said in Python's words (sys.set_int_max_str_digits) before
    ("huge integer", b'{"Header": {}, "Payload": {"TaskId": ' + b"9" * 5000 + b"}}", JSON, 100003,
     "the number 99999999999999999... is out of range (larger than a double can hold)"),
    ("integer past a double", b'{"Header": {}, "Payload": {"Speed": 1' + b"0" * 400 + b"}}", JSON, 100003,
     "the number 10000000000000000... is out of range"),  # was 100002, "must be at most 1.5"
    ("huge exponent", b'{"Header": {}, "Payload": {"TaskId": 1e5000}}', JSON, 100003,
     "the number 1e5000 is out of range"),
    ("past a double", b'{"Header": {}, "Payload": {"Speed": -1.8e308}}', JSON, 100003,
     "the number -1.8e308 is out of range"),
    ("lone low surrogate", b'{"Header": {}, "Payload": {"TaskId": "\\udfff"}}', JSON, 100003,
     "Payload.TaskId holds a lone surrogate \\udfff"),
    ("lone high surrogate in a list", b'{"Header": {}, "Payload": {"TaskId": ["ok", "a\\uD800b"]}}', JSON, 100003,
     "Payload.TaskId[1] holds a lone surrogate \\ud800"),
    ("lone surrogate in a key", b'{"Header": {"\\udc00": 1}, "Payload": {}}', JSON, 100003,
     "a key of Header holds a lone surrogate"),
    ("surrogates reversed", b'{"Header": {}, "Payload": {"TaskId": "\\ude00\\ud83d"}}', JSON, 100003,
     "lone surrogate"),
    ("a surrogate pair is one character", b'{"Header": {}, "Payload": {"TaskId": "\\ud83d\\ude00"}}', JSON, 110006,
     "does not exist"),
    ("nested 33 deep", b'{"Header": {}, "Payload": ' + b"[" * 32 + b"]" * 32 + b"}", JSON, 100003,
     "nests deeper than 32 levels"),
    ("nested 100k deep", b"[" * 100_000, JSON, 100003, "nests deeper than 32 levels"),
    ("brackets in a string", b'{"Header": {}, "Payload": {"TaskId": "' + b"[{" * 40 + b'"}}', JSON, 110006,
     "does not exist"),
    ("brackets after an escaped quote", b'{"Header": {}, "Payload": {"TaskId": "a\\\\"' + b"[" * 40, JSON, 100003,
     "nests deeper than 32 levels"),
    ("brackets in an unterminated string", b'{"Header": {}, "Payload": {"TaskId": "a\\"' + b"[" * 40, JSON,
     100003, "not valid JSON: Unterminated string"),
    ("over the body cap", b'{"Header": {}, "Payload": {"TaskId": "' + b"a" * 1_100_000 + b'"}}', JSON, 100003,
     "request body is larger than 1048576 bytes"),
    ("huge string under the cap", json.dumps({"Header": {}, "Payload": {"TaskId": "é" * 400_000}},
                                                ensure_ascii=False).encode(), JSON,
     100002, "Payload.TaskId must be at most 128 characters long (Unicode code points), got 400000 characters"),
    ("null body", b"null", JSON, 100003, "body must be of type object"),
    ("number body", b"42", JSON, 100003, "body must be of type object"),
    ("duplicate keys", b'{"Header": {}, "Payload": {"TaskId": 1, "TaskId": "abc"}}', JSON, 110006, "does not exist"),
    ("nul bytes", b'{"Header": {}, "Payload": {"TaskId": "a\\u0000b"}}', JSON, 110006, "does not exist"),
]


@pytest.mark.parametrize("data, content_type, code, named", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gets_the_envelope(http_api, data, content_type, code, named):
    answer = http_api.raw("getprogress", data, content_type=content_type)
    assert answer.status == 200
    assert spec_module.load().check(ERROR_SCHEMA, answer.body) == []
    assert answer.code == code, answer.message
    assert named in answer.message
    assert "Traceback" not in answer.message
    assert len(answer.message) < 500  # never an echo of the huge input


@pytest.mark.parametrize("content_type", sorted({case[2] for case in CASES}))
def test_the_proxy_reads_a_content_type_as_the_mock_does(http_api, content_type):
    """The proxy had a reading of its own: `charset=utf-8;profile=x` was no JSON to it, and `charset=utf-8 latin1`,
    refused by the mock now, was."""
    from ivh_mock.proxy.checks import is_json

    answer = http_api.raw("getprogress", TASK_BODY, content_type=content_type)
    assert is_json(content_type) == (answer.code != 100003), answer.message


def test_a_body_nested_past_the_limit_is_refused_before_the_decoder_recurses_into_it(monkeypatch):
    # The decoder recurses once per level: 100,000 brackets took the thread to Python's recursion limit, where a
    # finalizer the garbage collector happened to run failed too.
    from ivh_mock.mock_server.routes import envelope

    decoder = SimpleNamespace(loads=lambda *args, **kwargs: pytest.fail("the decoder was called"),
                              JSONDecodeError=json.JSONDecodeError)
    monkeypatch.setattr(envelope, "json", decoder)
    monkeypatch.setattr(envelope, "quick_loads", decoder.loads)
    for body in (b"[" * 100_000, b'{"a": ' + b"[" * 33 + b"]" * 33 + b"}", b'[{"a": "]]]"' + b", [" * 40):
        with pytest.raises(envelope.MalformedJson, match="nests deeper than 32 levels"):
            envelope.parse_json(body, 32)


def _depth(value) -> int:
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    return 0


TRICKY_TEXT = st.text(alphabet='[]{}"\\ab', max_size=8)  # brackets, quotes and backslashes inside strings
JSON_VALUES = st.recursive(st.none() | st.integers() | TRICKY_TEXT,
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TRICKY_TEXT, inner, max_size=3),
                           max_leaves=60)


@settings(max_examples=300, deadline=None)
@given(value=JSON_VALUES, limit=st.integers(0, 6), indent=st.sampled_from([None, 1]))
def test_the_nesting_counted_from_the_text_is_the_decoded_values(value, limit, indent):
    from ivh_mock.spec.jsontext import nests_deeper

    assert nests_deeper(json.dumps(value, indent=indent), limit) == (_depth(value) > limit)


def _read(envelope, data: bytes):
    """What parse_json makes of `data`: its value in a form that tells 1 from 1.0 and True, or its refusal."""
    try:
        value = envelope.parse_json(data, 32)
    except envelope.MalformedJson as error:
        return "refused", str(error)
    return "read", json.dumps(value, ensure_ascii=True), _types(value)


def _types(value):
    if isinstance(value, dict):
        return {key: _types(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_types(item) for item in value]
    return type(value).__name__


NUMBERS = st.integers() | st.integers(-(2 ** 70), 2 ** 70) | st.floats(allow_nan=False, allow_infinity=False)
ANY_TEXT = st.text(st.characters(codec=None), max_size=6)  # lone surrogates too: json.dumps writes them escaped
DOCUMENTS = st.recursive(st.none() | st.booleans() | NUMBERS | ANY_TEXT,
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
                         max_leaves=12)
JSONISH = st.text(alphabet='0123456789-+.eE[]{}",: \\udcfnrtlasx\t\x01', max_size=24)


@settings(max_examples=400, deadline=None)
@given(text=st.one_of(DOCUMENTS.map(json.dumps), DOCUMENTS.map(lambda value: json.dumps(value, ensure_ascii=False)),
                      st.sampled_from(["1e999", "-1" + "0" * 400, "[1e-999]", "Infinity", "[NaN]", "\ufeff{}",
                                       '"\\udc00"', "9223372036854775808", "-9223372036854775809"]),
                      JSONISH))
def test_the_fast_decoder_reads_every_body_as_json_does(monkeypatch, text):
    """orjson reads a body first, json only what orjson refuses: the value or the refusal is json's, to the type
    (orjson alone reads 10**20 as a float and a lone low surrogate as an error)."""
    from ivh_mock.mock_server.routes import envelope

    data = text.encode("utf-8", "surrogatepass")
    fast = _read(envelope, data)
    with monkeypatch.context() as patched:
        patched.setattr(envelope, "quick_loads", lambda data: (_ for _ in ()).throw(ValueError("json only")))
        assert _read(envelope, data) == fast


def test_a_compressed_body_is_refused_naming_its_content_encoding(served, http_api):
    """A gzip body (Content-Encoding: gzip, as some HTTP clients send) was read as text: "request body is not valid
    UTF-8 (byte 0x8b at offset 1)". The API's routes and the control API say which header they do not take."""
    import gzip

    body = gzip.compress(json.dumps({"Header": {}, "Payload": TEXT_PAYLOAD}).encode())
    answer = requests.post(f"{served}{PATHS['phototovideonotrain']}?{http_api.query()}", data=body, timeout=10,
                           headers={"Content-Type": JSON, "Content-Encoding": "gzip"}).json()["Header"]
    assert (answer["Code"], answer["Message"]) == (
        100003, "Content-Encoding 'gzip' is not taken: send the body as plain JSON, uncompressed")
    control = requests.post(f"{served}/__mock__/clock", data=gzip.compress(b'{"frozen": true}'), timeout=10,
                            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert control.status_code == 415 and "Content-Encoding 'gzip' is not taken" in control.json()["error"]["message"]
    plain = requests.post(f"{served}{PATHS['getprogress']}?{http_api.query()}", timeout=10,
                          data=b'{"Header": {}, "Payload": {"TaskId": "x"}}',
                          headers={"Content-Type": JSON, "Content-Encoding": "identity"})
    assert plain.json()["Header"]["Code"] == 110006  # identity is no coding


def test_the_server_keeps_serving_after_the_whole_table(http_api):
    for _, data, content_type, _, _ in CASES:
        http_api.raw("getprogress", data, content_type=content_type)
    assert http_api.raw("phototovideonotrain", VALID).code == 0


def test_a_chunked_body_over_the_cap_is_refused(served, http_api):
    def chunks():
        yield b'{"Header": {}, "Payload": {"TaskId": "'
        for _ in range(40):
            yield b"a" * 32_768
        yield b'"}}'

    response = requests.post(f"{served}{PATHS['getprogress']}?{http_api.query()}", data=chunks(),
                             headers={"Content-Type": JSON}, timeout=10)
    assert response.status_code == 200
    assert response.json()["Header"]["Code"] == 100003
    assert "larger than 1048576 bytes" in response.json()["Header"]["Message"]
    assert http_api.raw("phototovideonotrain", VALID).code == 0


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_get_405_in_the_envelope(served, method):
    response = requests.request(method, served + PATHS["getprogress"], timeout=10)
    assert response.status_code == 405
    assert response.json()["Header"]["Code"] == 100009
    assert "no API operation" in response.json()["Header"]["Message"]


@pytest.mark.parametrize("path", ["/v2", "/v2/ivh/videomaker/broadcastservice/videomake", "/v2/../etc/passwd",
                                  "/%ff%fe", "/v2/ivh/videomaker/broadcastservice/getprogress/extra"])
def test_unknown_paths_get_404_in_the_envelope(served, path):
    response = requests.post(served + path, json={"Header": {"RequestID": "mine-2"}}, timeout=10)
    assert response.status_code == 404
    body = response.json()
    assert body["Header"]["Code"] == 100009
    assert body["Header"]["RequestID"] == "mine-2"  # the body parsed: its RequestID is echoed on any path (D14)
    assert spec_module.load().check(ERROR_SCHEMA, body) == []


def test_utf8_in_a_header_is_quoted_as_it_was_written(app, clock):
    """WSGI reads a header as Latin-1: `exämple.com` and `80100é` had come back as `exÃ¤mple.com` and `80100Ã©`."""
    from ivh_mock.spec.signing import signed_query

    client = app.test_client()
    sent = {"Content-Type": "application/json", "X-Mock-Scenario": "fail:code=80100é".encode().decode("latin-1")}
    answer = client.post(f"{PATHS['getprogress']}?{signed_query('utf-app', 'mock-accesstoken', int(clock.now()))}",
                         data=json.dumps({"Header": {}, "Payload": {"TaskId": "x"}}), headers=sent)
    assert answer.json["Header"]["Message"] == "X-Mock-Scenario parameter code='80100é' must be a whole number in ASCII digits"
    # (a name of non-ASCII letters is no Host: IDNs go as punycode; refused as the API's routes refuse it, D75)
    refused = client.get("/__mock__/clock", headers={"Host": "exämple.com".encode().decode("latin-1")})
    assert refused.status_code == 400 and "the Host header 'exämple.com' is" in refused.json["error"]["message"]


@pytest.mark.parametrize("path, shown", [
    ("/v2/" + "a" * 30_000, "no API operation POST /v2/" + "a" * 193 + "...; the API has POST "),
    ("/__mock__/" + "a" * 30_000, "no control route POST /__mock__/" + "a" * 187 + "...; the README's"),
], ids=["api", "control"])
def test_a_long_path_no_route_takes_is_quoted_cut(app, path, shown):
    response = app.test_client().post(path, json={})
    assert response.status_code == 404
    body = response.json
    message = body["Header"]["Message"] if "Header" in body else body["error"]["message"]
    assert message.startswith(shown) and len(message) < 600, message[:300]


def test_a_fault_inside_the_mock_is_a_500_envelope_without_a_trace(clock, monkeypatch):
    def explode(*args):
        raise RuntimeError("secret internals")

    monkeypatch.setitem(OPERATIONS, "describetimbre", explode)
    api = in_process(create_app({"background": False}, clock=clock), clock)
    answer = api.call("describetimbre", {"PageIndex": 1, "PageSize": 1}, header={"RequestID": "mine-1"})
    assert answer.status == 500
    assert answer.code == -101000
    assert answer.body["Header"]["RequestID"] == "mine-1"  # the body parsed: its RequestID is echoed (D14; had not)
    assert "secret internals" not in answer.message and "Traceback" not in answer.message
    assert api.call("getprogress", {"TaskId": "x"}).code == 110006  # still serving


SURROGATE_BODIES = {
    "phototovideonotrain": {"Header": {}, "Payload": {**TEXT_PAYLOAD, "InputSsml": "Hello \udfff there"}},
    "getprogress": {"Header": {}, "Payload": {"TaskId": "\udfff"}},
    "describetimbre": {"Header": {"RequestID": "\ud800"}, "Payload": {"PageIndex": 1, "PageSize": 10}},
}


@pytest.mark.parametrize("store", ["memory", "sqlite"])
@pytest.mark.parametrize("signed", [True, False], ids=["signed", "unsigned"])
def test_a_lone_surrogate_is_refused_by_every_operation_and_poisons_nothing(clock, tmp_path, store, signed):
    app = create_app({"background": False, "store": "memory" if store == "memory" else f"sqlite:{tmp_path}/s.db"},
                     clock=clock)
    api = in_process(app, clock)
    for operation_id, body in SURROGATE_BODIES.items():
        answer = api.raw(operation_id, json.dumps(body).encode(), query=None if signed else "appkey=x")
        assert answer.status == 200 and answer.code == (100003 if signed else 100001), answer.message
        if signed:
            assert "lone surrogate" in answer.message
    control = app.test_client()
    for route in ("/__mock__/requests", "/__mock__/accounts", "/__mock__/tasks", "/__mock__/ui"):
        assert control.get(route).status_code == 200, route
    assert api.call("phototovideonotrain", TEXT_PAYLOAD).code == 0


def test_405_names_the_allowed_methods_and_options_answers_with_them(served):
    wrong = requests.get(served + PATHS["getprogress"], timeout=10)
    assert wrong.status_code == 405 and set(wrong.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    options = requests.options(served + PATHS["getprogress"], timeout=10)
    assert options.status_code == 204 and options.content == b""
    assert set(options.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert "text/html" not in options.headers.get("Content-Type", "")
    control = requests.options(served + "/__mock__/clock", timeout=10)
    assert control.status_code == 204 and {"GET", "POST"} <= set(control.headers["Allow"].split(", "))


def test_result_urls_answer_their_errors_as_an_object_store_does(served):
    for method in ("POST", "PUT", "DELETE"):
        response = requests.request(method, served + "/broadcast/Basic/video/abc.mp4", timeout=10)
        assert response.status_code == 405 and response.headers["Content-Type"].startswith("application/xml")
        assert "<Code>MethodNotAllowed</Code>" in response.text and "GET" in response.headers["Allow"]
        # it had listed the API's operations, as if a result file were one
        assert f"<Message>{method} /broadcast/Basic/video/abc.mp4: a result file is read with GET or HEAD" \
               "</Message>" in response.text, response.text
    missing = requests.get(served + "/broadcast/Basic/nothing", timeout=10)
    assert missing.status_code == 404 and "<Code>NoSuchKey</Code>" in missing.text
    assert "<Message>no result file at /broadcast/Basic/nothing</Message>" in missing.text, missing.text


@pytest.mark.parametrize("host", ["[::1", "a b", "h\"><x", "x:99999", "", "[1]", "[:]", "a..b", ".", "a" * 64,
                                  "x." + "y" * 64 + ":80"])
def test_a_host_header_that_names_no_host_is_refused_not_kept_in_the_tasks_urls(clock, host):
    """The task's media URLs are built from the Host it was submitted to: `Host: [::1` had been accepted (Code 0),
    and its MediaUrl and callback body read `http:///broadcast/...` for good (D75). The asset listing built its URLs
    the same way."""
    from ivh_mock.spec.signing import signed_query

    app = create_app({"background": False}, clock=clock)
    client = app.test_client()
    body = json.dumps({"Header": {}, "Payload": TEXT_PAYLOAD}).encode()
    query = signed_query("host-app", "mock-accesstoken", int(clock.now()))
    answer = client.post(f"{PATHS['phototovideonotrain']}?{query}", data=body, headers={
        "Host": host, "Content-Type": "application/json"})
    assert (answer.status_code, answer.json["Header"]["Code"]) == (200, 100003), answer.json  # as every refusal (D01)
    assert answer.json["Header"]["Message"].startswith(f"the Host header {host!r} is not a host name (")
    listing = client.get("/__mock__/assets/samples", headers={"Host": host})
    assert listing.status_code == 400 and "is not a host name (" in listing.json["error"]["message"]
    ok = client.post(f"{PATHS['phototovideonotrain']}?{query}", data=body, headers={
        "Host": "my_service:8080", "Content-Type": "application/json"})  # a Compose service's name is a host
    assert ok.json["Header"]["Code"] == 0  # werkzeug reads it as no host: its URLs had been http:///...
    assert app.extensions["ivh_mock"].store.get_task(ok.json["Payload"]["TaskId"]).media_base == \
        "http://my_service:8080"
    for sent, url in (("my_service:8080", "http://my_service:8080"), ("localhost:80", "http://localhost"),
                      ("[::1]:9", "http://[::1]:9"), ("example.test:", "http://example.test"),
                      ("h:00080", "http://h"), ("h:08080", "http://h:8080"), ("[::1]:0080", "http://[::1]"),
                      ("a." + "b" * 63 + ".:81", "http://a." + "b" * 63 + ".:81")):
        listed = client.get("/__mock__/assets/samples", headers={"Host": sent}).json["samples"][0]["Url"]
        assert listed.startswith(url + "/__mock__/assets/samples/"), (sent, listed)
    # the control API's own check (D57) reads it as sent too: werkzeug's reading, '', had been refused by name
    allowed = create_app({"background": False, "allowed_hosts": ("my_service",)}, clock=clock).test_client()
    assert allowed.get("/__mock__/clock", headers={"Host": "my_service:8080"}).status_code == 200
