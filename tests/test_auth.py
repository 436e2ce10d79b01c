"""Query-string authentication: presence, timestamp tolerance, signature, strict accounts."""

import time
from urllib.parse import quote

import pytest
import requests
from ivh_mock.mock_server import MockServer, VirtualClock, create_app
from ivh_mock.spec.signing import sign, signed_query

from ivh_mock import spec as spec_module

from .conftest import T0, TEXT_PAYLOAD, in_process

BODY = {"Header": {}, "Payload": {"TaskId": "0" * 32}}


def test_a_signed_request_is_authenticated(api):
    answer = api.call("phototovideonotrain", TEXT_PAYLOAD)
    assert answer.code == 0, answer.message


@pytest.mark.parametrize("missing", ["appkey", "timestamp", "signature"])
def test_each_query_parameter_is_required(api, missing):
    query = "&".join(p for p in api.query().split("&") if not p.startswith(f"{missing}="))
    answer = api.call("getprogress", {"TaskId": "x"}, query=query)
    assert answer.code == 100001
    assert f"query.{missing} is required" in answer.message


def test_a_repeated_query_parameter_counts_by_its_first_value(api):
    signed = api.query()
    first = api.call("getprogress", {"TaskId": "x"}, query=f"{signed}&appkey=someone-else&timestamp=1")
    assert first.code != 100005 and "signature" not in first.message  # signed as the first appkey and timestamp
    second = api.call("getprogress", {"TaskId": "x"}, query=f"appkey=someone-else&{signed}")
    assert second.code == 100005  # the first appkey is the one the signature is checked for


def test_a_timestamp_must_be_whole_seconds(api):
    query = api.query().replace("timestamp=", "timestamp=1.5")
    answer = api.call("getprogress", {"TaskId": "x"}, query=query)
    assert answer.code == 100002
    assert "query.timestamp must be Unix time in whole seconds" in answer.message


def test_a_signature_made_with_another_token_is_refused(api):
    answer = api.call("getprogress", {"TaskId": "x"}, query=api.query(accesstoken="wrong"))
    assert answer.code == 100005
    assert "query.signature does not match" in answer.message
    assert "appkey=test-app&timestamp=" in answer.message  # says what should have been signed


def test_an_unencoded_plus_in_the_signature_is_refused_with_a_hint(api):
    # Find a timestamp whose signature has a '+', as a client that skips URL-encoding would send it.
    for skew in range(200):
        timestamp = str(int(api.clock.now()) + skew)
        signature = sign({"appkey": api.appkey, "timestamp": timestamp}, api.accesstoken)
        if "+" in signature:
            break
    encoded = quote(signature, safe="").replace("%2B", "+")
    answer = api.call("getprogress", {"TaskId": "x"},
                      query=f"appkey={api.appkey}&timestamp={timestamp}&signature={encoded}")
    assert answer.code == 100005
    assert "without URL-encoding" in answer.message
    # the same signature with its '+' sent as an encoded space: no '+' was sent, and the hint says so
    spaced = api.call("getprogress", {"TaskId": "x"},
                      query=f"appkey={api.appkey}&timestamp={timestamp}&signature={encoded.replace('+', '%20')}")
    assert spaced.code == 100005 and "sent as %20" in spaced.message and "without URL-encoding" not in spaced.message


@pytest.mark.parametrize("skew, accepted", [(-300, True), (300, True), (-301, False), (301, False),
                                            (-86400, False), (86400, False), (0, True)])
def test_the_timestamp_must_be_within_300_seconds_of_the_mock_clock(api, skew, accepted):
    answer = api.call("phototovideonotrain", TEXT_PAYLOAD, query=api.query(skew=skew))
    if accepted:
        assert answer.code == 0, answer.message
    else:
        assert answer.code == 100005
        assert "query.timestamp" in answer.message and "within 300 s" in answer.message


def test_the_tolerance_follows_the_mock_clock_when_it_is_far_from_real_time(api):
    stale = api.query()
    api.clock.advance(301)
    assert api.call("getprogress", {"TaskId": "x"}, query=stale).code == 100005
    assert api.call("getprogress", {"TaskId": "x"}).code == 110006  # freshly signed: authenticated


DAY = 86_400
WALL = T0 + 30 * DAY  # real time as the mock's wall-clock source reports it, a month after the mock's clock


@pytest.fixture
def two_clocks():
    """A mock whose clock stands at T0 while real time (its clock's source) stands at WALL."""
    clock = VirtualClock(start=T0, source=lambda: WALL)
    return in_process(create_app({"background": False}, clock=clock), clock)


@pytest.mark.parametrize("timestamp, accepted", [
    (WALL, True), (WALL - 300, True), (WALL + 300, True), (T0, True), (T0 - 300, True), (T0 + 300, True),
    (WALL - 301, False), (WALL + 301, False), (T0 - 301, False), (T0 + 301, False), (T0 + 15 * DAY, False),
])
def test_a_timestamp_is_accepted_near_real_time_or_near_the_mock_clock(two_clocks, timestamp, accepted):
    answer = two_clocks.call("getprogress", {"TaskId": "0" * 32},
                             query=signed_query("test-app", "mock-accesstoken", int(timestamp)))
    assert answer.code == (110006 if accepted else 100005), answer.message


def test_a_refused_timestamp_names_both_differences(two_clocks):
    answer = two_clocks.call("getprogress", {"TaskId": "0" * 32},
                             query=signed_query("test-app", "mock-accesstoken", int(T0 + 3 * DAY)))
    assert answer.code == 100005
    assert answer.message == (f"query.timestamp is {27 * DAY} s behind real time and {3 * DAY} s ahead of the mock's "
                              "clock; it must be within 300 s of either")


def test_an_unchanged_client_signing_with_time_time_survives_a_day_of_clock_advance():
    """A live client signs with its own time.time() and knows nothing of the mock's clock."""
    with MockServer(clock=VirtualClock(frozen=False)) as mock:
        mock.advance(DAY)
        session = requests.Session()
        for _ in range(2):
            query = signed_query("live-client", "mock-accesstoken", int(time.time()))
            answer = session.post(f"{mock.base_url}/v2/ivh/videomaker/broadcastservice/getprogress?{query}",
                                  json={"Header": {}, "Payload": {"TaskId": "0" * 32}}, timeout=10).json()
            assert answer["Header"]["Code"] == 110006, answer["Header"]["Message"]
            mock.advance(DAY)
        three_days_off = signed_query("live-client", "mock-accesstoken", int(time.time()) - 3 * DAY)
        answer = session.post(f"{mock.base_url}/v2/ivh/videomaker/broadcastservice/getprogress?{three_days_off}",
                              json={"Header": {}, "Payload": {"TaskId": "0" * 32}}, timeout=10).json()
        assert answer["Header"]["Code"] == 100005
        assert "behind real time" in answer["Header"]["Message"]


@pytest.mark.parametrize("vector", spec_module.load().signature_rules["testVectors"], ids=lambda v: v["appkey"])
def test_the_published_vectors_pass_with_the_clock_set_to_their_time(tmp_path, vector):
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text(f"accounts:\n  - {{appkey: {vector['appkey']}, accesstoken: {vector['accesstoken']}}}\n")
    clock = VirtualClock(start=int(vector["timestamp"]))
    api = in_process(create_app({"accounts_file": str(accounts), "background": False}, clock=clock), clock)
    query = f"appkey={vector['appkey']}&timestamp={vector['timestamp']}&signature={vector['encoded']}"
    assert api.call("getprogress", {"TaskId": "0" * 32}, query=query).code == 110006
    clock.advance(301)  # the vectors are years old: only the mock's clock can vouch for them
    assert api.call("getprogress", {"TaskId": "0" * 32}, query=query).code == 100005


def test_authentication_is_checked_before_the_body(api):
    answer = api.raw("getprogress", b"not json", query=api.query(accesstoken="wrong"))
    assert answer.code == 100005


@pytest.mark.parametrize("operation", ["getprogress", "phototovideonotrain"])
def test_a_refused_body_is_explained_only_once_the_caller_is_authenticated(app, api, monkeypatch, operation):
    explained = []
    spec = app.extensions["ivh_mock"].spec
    real = spec.validate
    monkeypatch.setattr(spec, "validate", lambda *args: explained.append(args) or real(*args))
    payload = {"TaskId": 5, **{f"x{n}": n for n in range(100)}}  # a hundred undocumented fields
    assert api.call(operation, payload, query=api.query(accesstoken="wrong")).code == 100005
    assert explained == []  # a caller refused by its signature costs no explanation of its body
    assert api.call(operation, payload).code == 100001 and len(explained) == 1


def test_the_request_id_is_echoed_even_on_auth_failure(api):
    answer = api.call("getprogress", {"TaskId": "x"}, header={"RequestID": "req-42"}, query=api.query(
        accesstoken="wrong"))
    assert answer.body["Header"]["RequestID"] == "req-42"


def test_a_non_default_accesstoken_can_be_configured(clock):
    api = in_process(create_app({"default_accesstoken": "s3cret"}, clock=clock), clock, accesstoken="s3cret")
    assert api.call("phototovideonotrain", TEXT_PAYLOAD).code == 0
    assert api.call("phototovideonotrain", TEXT_PAYLOAD, query=api.query(accesstoken="mock-accesstoken")).code \
        == 100005


class TestStrictAccounts:
    @pytest.fixture
    def strict_api(self, tmp_path, clock):
        path = tmp_path / "accounts.yaml"
        path.write_text("accounts:\n  - {appkey: team-a, accesstoken: token-a}\n"
                        "  - {appkey: team-b, accesstoken: token-b}\n")
        return in_process(create_app({"accounts_file": str(path)}, clock=clock), clock, appkey="team-a",
                          accesstoken="token-a")

    def test_a_listed_account_signs_with_its_own_token(self, strict_api):
        assert strict_api.call("phototovideonotrain", TEXT_PAYLOAD).code == 0
        assert strict_api.call("phototovideonotrain", TEXT_PAYLOAD,
                               query=strict_api.query("team-b", "token-b")).code == 0

    def test_another_accounts_token_is_refused(self, strict_api):
        answer = strict_api.call("phototovideonotrain", TEXT_PAYLOAD, query=strict_api.query("team-a", "token-b"))
        assert answer.code == 100005

    def test_an_unknown_appkey_is_refused(self, strict_api):
        answer = strict_api.call("phototovideonotrain", TEXT_PAYLOAD,
                                 query=strict_api.query("stranger", "mock-accesstoken"))
        assert answer.code == 100005
        assert "query.appkey 'stranger' is not a known account" in answer.message


def test_an_accounts_file_that_is_no_regular_file_is_refused_at_once(tmp_path):
    """A FIFO given as the accounts file held the start for ever, waiting for a writer."""
    import os
    import threading

    from ivh_mock.mock_server.accounts import AccountsFileError

    os.mkfifo(tmp_path / "fifo.yaml")
    outcome = []
    reader = threading.Thread(target=lambda: outcome.append(_refusal(tmp_path / "fifo.yaml")), daemon=True)
    reader.start()
    reader.join(10)
    if reader.is_alive():  # let it go: open a writer, so the reader's open returns
        with open(tmp_path / "fifo.yaml", "w"):
            pass
        pytest.fail("reading a FIFO as the accounts file waited for a writer")
    assert outcome == [f"accounts file {tmp_path / 'fifo.yaml'}: it is not a regular file"]
    assert isinstance(AccountsFileError(""), ValueError)


def _refusal(path) -> str | None:
    from ivh_mock.mock_server.accounts import AccountsFileError

    try:
        create_app({"accounts_file": str(path), "background": False})
    except AccountsFileError as error:
        return str(error)
    return None


@pytest.mark.parametrize("content, problem", [
    ("accounts: []\n", "at accounts"),
    ("accounts:\n  - {appkey: a}\n", "'accesstoken' is a required property"),
    ("accounts:\n  - {appkey: a, accesstoken: t, colour: red}\n", "'colour' was unexpected"),
    ("accounts:\n  - {appkey: a, accesstoken: t}\n  - {appkey: a, accesstoken: u}\n", "listed twice"),
    ("accounts: [unclosed\n", "cannot read accounts file"),
    # accepted at start, then every request of the account was refused
    ("accounts:\n  - {appkey: a, accesstoken: t, scenario: bogus}\n",
     r"account 'a'/scenario: 'bogus' is not a scenario; known: success"),
    # the last had won, silently
    ('{"accounts": [{"appkey": "a", "accesstoken": "x", "accesstoken": "y"}]}',
     r"the key 'accesstoken' is given twice \(line 1, column 51\)$"),
    ("? [a, b]\n: 1\naccounts: []\n", "found unhashable key"),  # not a TypeError of the check for keys given twice
    # taken, and then every request of the account, and the account listing, failed with 500
    ('{"accounts": [{"appkey": "k1", "accesstoken": "t\\ud800"}]}',
     r"accounts\[0\]\.accesstoken holds a lone surrogate \\ud800"),
    ('accounts:\n  - {appkey: "k\\udcff", accesstoken: t}\n', r"accounts\[0\]\.appkey holds a lone surrogate \\udcff"),
    # 337 bytes of nested aliases had made a billion values and 3 GB before the refusal; 100,000 '[' a traceback
    pytest.param("a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        f"{chr(98 + n)}: &{chr(98 + n)} [{', '.join(['*' + chr(97 + n)] * 9)}]\n" for n in range(8)) + "accounts: []\n",
        "its YAML aliases make more than 1000000 values", id="a-billion-by-aliases"),
    pytest.param("[" * 20_000, "it is nested too deeply", id="nested-20000-deep"),
    pytest.param("accounts:\n" + "  - {appkey: a, accesstoken: t}\n" * 140_000, "it is larger than 4194304 bytes",
                 id="4-MiB-and-more"),
])
def test_a_bad_accounts_file_is_refused_by_name(tmp_path, content, problem):
    from ivh_mock.mock_server.accounts import AccountsFileError

    path = tmp_path / "accounts.yaml"
    path.write_text(content)
    with pytest.raises(AccountsFileError, match=problem) as refused:
        create_app({"accounts_file": str(path)})
    assert "\n" not in str(refused.value)  # a refused start says why in one line (PyYAML's errors had four)


def test_the_banner_names_the_first_accounts_of_a_long_file_and_what_else_strict_mode_takes():
    """300,000 accounts had made a banner line of 2.6 MB, and it did not say that accounts given settings through the
    control API are accepted too."""
    from ivh_mock.mock_server.accounts import Accounts

    listed = [{"appkey": f"k{n:02}", "accesstoken": "t"} for n in range(25)]
    said = Accounts({}, listed).describe()
    assert said.startswith("25 account(s) from the accounts file: k00, k01, ") and ", k19, and 5 more (" in said
    assert "k20" not in said and "PUT /__mock__/accounts/<appkey>" in said
    # an appkey's control characters are escaped: an ESC had coloured the terminal, a line break forged a banner line
    odd = Accounts({}, [{"appkey": "a\u202eb\x1b[31mRED\r\nfake line", "accesstoken": "t"}]).describe()
    assert odd.startswith("1 account(s) from the accounts file: a\\u202eb\\x1b[31mRED\\r\\nfake line (and any")
