"""The contract suite's other modes: against a mock over HTTP (as against any server), with and without a spend
allowance, and against mutated copies of the spec."""

import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from .conftest import FixedAnswer, ServeProcess, assert_the_suite_passed, run_suite

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def remote_mock(request, tmp_path):
    """A mock over HTTP on the store backend a test names (parametrized indirectly)."""
    store = {"memory": "memory", "sqlite": f"sqlite:{tmp_path / 'store.sqlite3'}"}.get(request.param)
    if store is None:
        store = f"{request.getfixturevalue('redis_server').url}?prefix=c{uuid.uuid4().hex[:12]}"
    with ServeProcess(tmp_path / "data", "--queue-seconds", "0.5", "--render-startup", "1", "--store", store) as served:
        yield served.url


# The memory store's run goes through the recording proxy (tests/test_proxy.py), which proves both at once.
@pytest.mark.slow
@pytest.mark.parametrize("remote_mock", ["sqlite", "redis"], indirect=True)
def test_the_suite_passes_against_a_mock_over_http(remote_mock, tmp_path):
    assert_the_suite_passed(run_suite(remote_mock, tmp_path, "--ivh-allow-spend", "100000"), remote_mock, tmp_path)


# The guard is the suite's own (it decides from the spec which requests would be billed), so one store shows it.
@pytest.mark.slow
@pytest.mark.parametrize("remote_mock", ["sqlite"], indirect=True)
def test_without_a_spend_allowance_nothing_acceptable_is_submitted(remote_mock, tmp_path):
    result = run_suite(remote_mock, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "spend guard" in result.stdout  # the tests that would be billed were skipped, and say why
    # the generated valid submissions too: that test had passed having sent none
    assert "spend guard: every positive submission generated until now could be billed" in result.stdout
    # a test that spends is skipped before Hypothesis runs it: from inside an explicit example, the skip was also
    # reported as a failing one
    assert "this test submits what could be billed" in result.stdout and "explicit example" not in result.stdout
    journal = requests.get(f"{remote_mock}/__mock__/requests?limit=100000", timeout=10).json()["requests"]
    submissions = [entry for entry in journal if entry["operation"] == "phototovideonotrain"]
    assert submissions, "the suite should still send the submissions the API refuses"
    accepted = [entry for entry in submissions if entry["code"] == 0]
    assert accepted == [], f"{len(accepted)} submission(s) were accepted without an allowance"


@pytest.mark.slow
@pytest.mark.parametrize("remote_mock", ["memory"], indirect=True)
def test_an_allowance_used_up_skips_the_tests_that_can_no_longer_send(remote_mock, tmp_path):
    """With --ivh-allow-spend 1, the first acceptance stops every later submission, refused ones too: the constraint
    tests after it had passed having sent nothing."""
    result = run_suite(remote_mock, tmp_path, "--ivh-allow-spend", "1")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "1 accepted of --ivh-allow-spend 1; nothing more is submitted" in result.stdout


@pytest.mark.slow
def test_breaking_any_constraint_in_the_spec_fails_a_named_test():
    result = subprocess.run([sys.executable, "-m", "ivh_mock.contract_tests.mutation"], cwd=ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout
    assert "SURVIVED" not in result.stdout
    assert re.search(r"(\d+) of \1 mutations caught", result.stdout), result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("frozen_at_start", [False, True])
def test_the_suite_puts_a_served_mocks_clock_back_as_it_found_it(frozen_at_start, tmp_path):
    with ServeProcess(tmp_path / "data") as served:
        clock = f"{served.url}/__mock__/clock"
        if frozen_at_start:
            requests.post(clock, json={"set": 1_900_000_000, "frozen": True}, timeout=10)
        result = run_suite(served.url, tmp_path, "--ivh-allow-spend", "1000", "-k",
                           "test_spoken_text_longer_than_60_seconds_fails")
        assert result.returncode == 0 and " passed" in result.stdout, result.stdout[-3000:]
        after = requests.get(clock, timeout=10).json()
        # and without the accounts it made for its tests (ct-...), which had crowded the dashboard after each run
        accounts = requests.get(f"{served.url}/__mock__/accounts", timeout=10).json()["accounts"]
        assert [account["appkey"] for account in accounts if account["appkey"].startswith("ct-")] == []
        assert requests.get(f"{served.url}/__mock__/tasks", timeout=10).json()["tasks"] == []
    if frozen_at_start:
        assert after["frozen"] is True and after["now"] == 1_900_000_000
    else:
        assert after["real"] is True, after  # the test advanced the clock by 600 s at least


@pytest.mark.parametrize("body", [b"<html>welcome</html>", b'{"Header": {"Code": 100001, "Message": "no route"}}',
                                  b'{"now": "soon", "frozen": "no"}'])
def test_a_target_that_answers_any_path_is_no_mock_with_a_control_api(body):
    """The suite took any 200 to GET /__mock__/clock for a mock: an HTML page crashed every test on decoding it, and
    the API's own envelope made the suite send fresh appkeys the live API never issued, then fail on its clock."""
    from ivh_mock.contract_tests.target import Answer, SpendGuard, Target

    session = requests.Session()
    session.mount("http://gateway.localhost", FixedAnswer(body))  # a gateway that answers any path
    target = Target("http://gateway.localhost", session, label="gateway", guard=SpendGuard(0), appkey="mine",
                    accesstoken="token")
    assert not target.has_control and target.appkey("getprogress") == "mine"
    assert Answer(500, "Internal Server Error").shown == "HTTP 500, not the API's envelope: 'Internal Server Error'"
    assert Answer(200, {"Header": {"Code": 110006}}).shown == "110006"


def test_a_schema_drift_names_its_field():
    """Checked against the whole oneOf (success or error envelope), an answer that fit neither said only that."""
    from ivh_mock import spec as spec_module

    spec = spec_module.load()
    missing = {"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {"TimbreAssets": []}}
    assert [v.message for v in spec.check_response("describetimbre", missing)] == ["response.Payload.Total is required"]
    refused = {"Header": {"Code": 100001, "Message": "m"}, "Payload": {}}
    assert [v.message for v in spec.check_response("describetimbre", refused)] == [
        "response.Header.RequestID is required"]
