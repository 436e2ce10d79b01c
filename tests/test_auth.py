"""Query-string authentication: presence, timestamp tolerance, signature, strict accounts."""

from urllib.parse import quote

import pytest
from ivh_mock.mock_server import create_app
from ivh_mock.spec.signing import sign

from .conftest import TEXT_PAYLOAD, in_process

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


@pytest.mark.parametrize("skew, accepted", [(-300, True), (300, True), (-301, False), (301, False),
                                            (-86400, False), (86400, False), (0, True)])
def test_the_timestamp_must_be_within_300_seconds_of_the_mock_clock(api, skew, accepted):
    answer = api.call("phototovideonotrain", TEXT_PAYLOAD, query=api.query(skew=skew))
    if accepted:
        assert answer.code == 0, answer.message
    else:
        assert answer.code == 100005
        assert "query.timestamp" in answer.message and "within 300 s" in answer.message


def test_the_tolerance_follows_the_mock_clock_not_the_wall_clock(api):
    stale = api.query()
    api.clock.advance(301)
    assert api.call("getprogress", {"TaskId": "x"}, query=stale).code == 100005
    assert api.call("getprogress", {"TaskId": "x"}).code == 110006  # freshly signed: authenticated


def test_authentication_is_checked_before_the_body(api):
    answer = api.raw("getprogress", b"not json", query=api.query(accesstoken="wrong"))
    assert answer.code == 100005


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


@pytest.mark.parametrize("content, problem", [
    ("accounts: []\n", "at accounts"),
    ("accounts:\n  - {appkey: a}\n", "'accesstoken' is a required property"),
    ("accounts:\n  - {appkey: a, accesstoken: t, colour: red}\n", "'colour' was unexpected"),
    ("accounts:\n  - {appkey: a, accesstoken: t}\n  - {appkey: a, accesstoken: u}\n", "listed twice"),
    ("accounts: [unclosed\n", "cannot read accounts file"),
])
def test_a_bad_accounts_file_is_refused_by_name(tmp_path, content, problem):
    from ivh_mock.mock_server.accounts import AccountsFileError

    path = tmp_path / "accounts.yaml"
    path.write_text(content)
    with pytest.raises(AccountsFileError, match=problem):
        create_app({"accounts_file": str(path)})
