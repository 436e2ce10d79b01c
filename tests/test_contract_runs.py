"""The contract suite's other modes: against a mock over HTTP (as against any server), with and without a spend
allowance, and against mutated copies of the spec."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from . import forked
from .conftest import (DEFAULT_TOKEN, TEXT_PAYLOAD, FixedAnswer, RawServer, ServeProcess, redis_store, run_suite,
                       until)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def remote_mock(request, tmp_path):
    """A mock over HTTP on the store backend a test names (parametrized indirectly)."""
    if request.param == "redis":
        store = redis_store(request.getfixturevalue("redis_server"), "contract-")
    else:
        store = {"memory": "memory", "sqlite": f"sqlite:{tmp_path / 'store.sqlite3'}"}[request.param]
    with ServeProcess(tmp_path / "data", "--queue-seconds", "0.5", "--render-startup", "1", "--store", store) as served:
        yield served.url


# The whole suite's runs over HTTP, each proving something else at once (D65): on the SQLite store from the installed
# wheel through its recording proxy (tests/test_packaging.py), on the Redis store with an allowance of one and on the
# memory store with none (below); in this process's own run the suite runs whole against the mock in-process.

# The guard is the suite's own (it decides from the spec which requests would be billed), so one store shows it.
@pytest.mark.slow
@pytest.mark.parametrize("remote_mock", ["memory"], indirect=True)
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
@pytest.mark.parametrize("remote_mock", ["redis"], indirect=True)
def test_an_allowance_buys_a_polled_task_and_costs_no_other_check(remote_mock, tmp_path):
    """With --ivh-allow-spend 1, the first acceptance (an edge example's) had stopped every later submission, refused
    ones too: 6 tests passed where 19 had with no allowance, and no accepted task was ever polled on a target without
    a control API. Refused submissions cost nothing and go on; the first acceptance goes to the test that polls it."""
    result = run_suite(remote_mock, tmp_path, "--ivh-allow-spend", "1", "-vv")  # -q -vv: a line per test
    assert result.returncode == 0, result.stdout[-4000:]
    assert "test_an_accepted_task_is_reported_in_the_spec_s_terms PASSED" in result.stdout
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert skipped and all("could be billed" in line for line in skipped), skipped  # never a refused submission's
    assert "is submitted any more" not in result.stdout


def test_the_spend_guard_stops_what_the_spec_refuses_once_the_target_accepted_one():
    from ivh_mock.contract_tests.target import Answer, SpendGuard

    valid = {"Header": {}, "Payload": TEXT_PAYLOAD}
    refused = {"Header": {}, "Payload": {**TEXT_PAYLOAD, "DriverType": ""}}
    accepted = Answer(200, {"Header": {"Code": 0}})
    for allowance in (0, 1):
        guard = SpendGuard(allowance)
        for _ in range(allowance):
            assert guard.allows(valid)
            guard.record(accepted, valid)
        assert not guard.allows(valid) and guard.allows(refused)  # what the spec refuses costs nothing
        guard.check_allowance(billed_only=False)  # so a test that sends it still runs
        guard.record(accepted, refused)  # the target accepted it: drift that bills
        assert not guard.allows(refused) and (guard.accepted, guard.unforeseen) == (allowance + 1, 1)
        with pytest.raises(pytest.skip.Exception, match="1 of them of what the spec refuses; nothing it refuses"):
            guard.check_allowance(billed_only=False)
    guard = SpendGuard(2)  # the allowance not used up: a test of refusals still had passed, checking only the valid
    guard.record(accepted, refused)
    assert guard.allows(valid) and not guard.allows(refused)
    with pytest.raises(pytest.skip.Exception, match="nothing it refuses is submitted any more"):
        guard.check_allowance(billed_only=False)


def test_the_suite_lets_hypothesis_print_a_failing_examples_values(monkeypatch):
    """Schemathesis swaps Hypothesis's printer for a silent one: every failure of the suite had read
    `Failing test case: test_...(target=, data=,)`, with nothing of what was sent."""
    import schemathesis  # noqa: F401 - imported, it silences the printer, as in every run of the suite
    from hypothesis import core, given, settings
    from hypothesis import strategies as st
    from hypothesis.vendor import pretty

    from ivh_mock.contract_tests.conftest import _print_examples

    monkeypatch.setattr(core, "RepresentationPrinter", core.RepresentationPrinter)  # put back as found, after
    _print_examples()
    assert core.RepresentationPrinter is pretty.RepresentationPrinter

    @settings(database=None, max_examples=100, deadline=None)
    @given(speed=st.integers())
    def failing(speed):
        assert speed < 5

    with pytest.raises(AssertionError) as raised:
        failing()
    assert "speed=5" in "\n".join(getattr(raised.value, "__notes__", [])), raised.value


@pytest.mark.parametrize("allowance", [1, 5])
def test_a_failing_example_is_not_sent_again_to_report_it(allowance):
    """Hypothesis runs a failing example once more to report it: the suite sent its submission again (another that
    may be billed), and when the spend guard stopped that one, the failure read as the target's flakiness."""
    from hypothesis import Phase, given, settings
    from hypothesis import strategies as st

    from ivh_mock.contract_tests.target import SpendGuard, Target

    page = (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
            b"<h1>502</h1>")
    with RawServer(page) as gateway:
        target = Target(gateway.url, requests.Session(), label="a gateway", guard=SpendGuard(allowance), appkey="a",
                        accesstoken="t")
        probed = gateway.requests  # its control API, looked for

        @settings(database=None, max_examples=5, deadline=None, phases=[Phase.generate])  # as against a server
        @given(text=st.sampled_from(["Hello there, friends", "Good morning to you all"]))
        def accepted(text):
            answer = target.send("phototovideonotrain", {"Header": {}, "Payload": {**TEXT_PAYLOAD, "InputSsml": text}})
            assert answer.code == 0, answer.shown

        try:
            accepted()
        except pytest.skip.Exception as skipped:  # not a skip: the replay the spend guard had stopped
            pytest.fail(f"the failing example's report was lost to the spend guard: {skipped}")
        except AssertionError as failed:
            assert "HTTP 502, not the API's envelope" in str(failed)
        else:
            pytest.fail("the failing example passed")
        assert gateway.requests - probed == 1


@pytest.mark.slow
def test_a_generated_requests_failure_shows_what_was_sent(tmp_path):
    """Hypothesis reports a drawn value by its printer, and schemathesis's case prints nothing: every failure of the
    generated requests read `Draw 1: ` and no more."""
    body = json.dumps({"Header": {"Code": 123456, "Message": "no", "RequestID": "r"}, "Payload": {}}).encode()
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(body) + body) as fake:
        result = run_suite(fake.url, tmp_path, "-x", "-k", "test_generated_requests and getprogress and negative")
    # a negative case the spec's own check finds valid (schemathesis broke what the body's check does not see) is
    # refused as a valid one: either way the failure names the code
    assert result.returncode == 1, result.stdout[-3000:]
    assert re.search(r"(undocumented code|a valid request was refused:) 123456", result.stdout), result.stdout[-3000:]
    assert re.search(r"sent getprogress \(negative\): \S", result.stdout), result.stdout[-3000:]


@pytest.mark.slow
def test_a_run_that_writes_no_drift_report_leaves_no_earlier_one(tmp_path):
    """A run stopped before its drift test (-x) or without it (-k) wrote no report, and an earlier run's, against
    another target perhaps, stayed in its place, for a scheduled `ivh-mock drift --suite-report` to take in."""
    for name in ("drift-report.json", "drift-report.md"):
        (tmp_path / name).write_text("an earlier run's")
    result = forked.run(["contract_tests", "-q", "-p", "no:cacheprovider", "-k", "test_clock", "--ivh-report-dir",
                         str(tmp_path)], cwd=ROOT, timeout=300)
    assert result.returncode == 0 and " passed" in result.stdout, result.stdout[-2000:]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("only", ["--co", "--fixtures", "--markers"])
def test_a_run_that_only_collects_or_lists_makes_no_report_folder_and_leaves_an_earlier_report(only, tmp_path):
    """`--co` (or `--fixtures`, `--markers`) runs nothing and writes no report, but had made the report's folder,
    empty, in the app's folder."""
    (tmp_path / "earlier").mkdir()
    (tmp_path / "earlier" / "drift-report.json").write_text("an earlier run's")
    for folder in ("unmade", "earlier"):
        result = forked.run(["contract_tests", only, "-q", "-p", "no:cacheprovider", "--ivh-report-dir",
                             str(tmp_path / folder)], cwd=ROOT, timeout=300)
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert not (tmp_path / "unmade").exists() and (tmp_path / "earlier" / "drift-report.json").exists()


@pytest.mark.slow
@pytest.mark.parametrize("profile", ["ci", "default"])
def test_the_suite_runs_under_any_hypothesis_profile(profile, tmp_path):
    """Under a profile not the suite's (Hypothesis's `ci`, an app's own), every generated test failed a health check:
    `FailedHealthCheck: ... uses a function-scoped fixture 'verdict'`."""
    result = forked.run(["contract_tests", "-q", "-p", "no:cacheprovider", "-k",
                         "test_volume_is_between_0_and_10 or test_generated_requests and getprogress and positive",
                         "--hypothesis-profile", profile, "--ivh-report-dir", str(tmp_path)], cwd=ROOT, timeout=300)
    assert result.returncode == 0 and "2 passed" in result.stdout, result.stdout[-2000:]


def test_a_run_against_a_server_elsewhere_does_not_import_the_mock(tmp_path):
    """The suite imported the whole mock (Flask, Pillow, PyAV) for its in-process target and its callback receiver
    even when it ran against another server (the live API): about a third of a second of every such run's start."""
    script = ("import sys, pytest\n"
              f"code = pytest.main(['contract_tests', '--co', '-q', '-p', 'no:cacheprovider', '--ivh-base-url', "
              f"'http://127.0.0.1:9', '--ivh-report-dir', {str(tmp_path)!r}])\n"
              "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'PIL', 'av')\n"
              "               or m.startswith('ivh_mock.mock_server.app'))\n"
              "print('heavy:', heavy)\n"
              "sys.exit(code)\n")
    env = {**os.environ, "IVH_APPKEY": "contract-ci", "IVH_ACCESSTOKEN": DEFAULT_TOKEN}
    (tmp_path / "drift-report.json").write_text("an earlier run's")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0 and "25 tests collected" in result.stdout, result.stdout[-2000:]
    assert "heavy: []" in result.stdout, result.stdout[-2000:]  # (werkzeug is schemathesis's own)
    # and a collection alone runs nothing: it had removed the report an earlier run left
    assert (tmp_path / "drift-report.json").read_text() == "an earlier run's"


def test_a_hypothesis_profile_nobody_registered_is_a_usage_error(tmp_path):
    """A mistyped --hypothesis-profile ended the run in Hypothesis's own INTERNALERROR, a traceback of its plugin."""
    result = forked.run(["contract_tests/test_clock.py", "-q", "-p", "no:cacheprovider", "--hypothesis-profile", "depe",
                         "--ivh-report-dir", str(tmp_path)], cwd=ROOT, timeout=300)
    assert result.returncode == 4 and "INTERNALERROR" not in result.stdout + result.stderr, result.stderr[-2000:]
    assert "--hypothesis-profile depe: no Hypothesis profile of that name is registered" in result.stderr
    assert "ivh-ci, its default, and deep" in result.stderr


@pytest.mark.slow
def test_a_status_outside_the_spec_fails_the_lifecycle_by_name(tmp_path):
    """A target reporting Status RENDERING crashed the state machine with `KeyError: 'RENDERING'`."""
    (tmp_path / "renaming.py").write_text(
        "from hypothesis import Phase, settings\n"
        "from ivh_mock.mock_server.lifecycle import trajectory\n"
        "made = trajectory.report\n"
        # as reported, a queued task's too (the state machine had to poll one while it rendered, which a run now and
        # then never did); the mock's own reckoning, by the status it computes, stays as it is
        "def report(*args, **kwargs):\n"
        "    payload = made(*args, **kwargs)\n"
        "    return {**payload, 'Status': 'RENDERING'} if payload['Status'] in ('COMMIT', 'MAKING') else payload\n"
        "trajectory.report = report\n"
        # the failure as found: shrinking a state machine's run took up to a minute on a loaded machine
        "settings.register_profile('found', database=None, phases=[Phase.explicit, Phase.generate])\n")
    result = forked.run(["contract_tests/test_lifecycle.py", "-q", "-p", "no:cacheprovider", "-p", "renaming", "-k",
                         "state_machine", "--hypothesis-profile", "found", "--ivh-report-dir",
                         str(tmp_path / "reports")], cwd=ROOT, timeout=300,
                        env={**os.environ, "PYTHONPATH": str(tmp_path)})
    assert result.returncode == 1 and "KeyError: 'RENDERING'" not in result.stdout, result.stdout[-3000:]
    assert "Status 'RENDERING' is none of the spec's" in result.stdout, result.stdout[-3000:]


def test_a_submission_whose_answer_is_lost_is_counted_as_billed(monkeypatch):
    """A submission answered by a gateway's 502 page, or not answered in time, may have been billed; counted only on
    Code 0, 31 were billed under --ivh-allow-spend 1 against a target whose gateway failed after billing."""
    from ivh_mock.client import IvhError
    from ivh_mock.contract_tests import target as target_module
    from ivh_mock.contract_tests.target import GuardedClient, SpendGuard, Target

    valid = {"Header": {}, "Payload": TEXT_PAYLOAD}
    # it says it closes, as it does: a client reusing the connection a probe left raced that close (a reset, 1 in 4
    # under load)
    page = (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/html\r\nContent-Length: 12\r\nConnection: close\r\n\r\n"
            b"<h1>502</h1>")
    with RawServer(page) as gateway:
        guard = SpendGuard(1)
        target = Target(gateway.url, requests.Session(), label="a gateway", guard=guard, appkey="a", accesstoken="t")
        assert target.send("phototovideonotrain", valid).code is None  # a page, not the API's envelope
        assert (guard.accepted, guard.unanswered) == (1, 1) and not guard.allows(valid)
        with pytest.raises(pytest.skip.Exception, match=r"1 accepted \(1 of them unanswered, counted as billed\)"):
            target.send("phototovideonotrain", valid)  # the allowance is spent: not sent
        client = GuardedClient(SpendGuard(1), "a", "t", gateway.url, max_retries=0)
        with pytest.raises(IvhError, match="HTTP 502, not the API's envelope"):
            client.phototovideonotrain(TEXT_PAYLOAD)
        assert client.guard.unanswered == 1
    monkeypatch.setattr(target_module, "ANSWER_SECONDS", 0.5)
    with RawServer(page, hang=True, every=30.0) as silent:  # no answer at all, in time
        guard = SpendGuard(1)
        target = Target(silent.url, requests.Session(), label="a silent one", guard=guard, appkey="a", accesstoken="t")
        with pytest.raises(AssertionError, match="did not answer phototovideonotrain"):
            target.send("phototovideonotrain", valid)
        assert guard.unanswered == 1
    guard = SpendGuard(1)  # refused before sending (the client's pre-flight check): never billed
    with pytest.raises(Exception):
        GuardedClient(guard, "a", "t", "http://127.0.0.1:9").phototovideonotrain({**TEXT_PAYLOAD, "DriverType": ""})
    assert guard.accepted == 0


@pytest.mark.parametrize("remote_mock", ["memory"], indirect=True)
def test_a_test_whose_explicit_examples_the_allowance_cannot_pay_for_is_skipped_before_it_starts(remote_mock,
                                                                                                  tmp_path):
    """With --ivh-allow-spend 1, a test whose two explicit examples each submit had spent the one, then skipped
    from inside the second, which Hypothesis printed as a "Failing explicit example"."""
    from ivh_mock.contract_tests.target import Answer, SpendGuard

    guard = SpendGuard(2)
    guard.check_allowance(needed=2)  # two left: it runs
    guard.record(Answer(200, {"Header": {"Code": 0}}), {"Header": {}, "Payload": TEXT_PAYLOAD})
    with pytest.raises(pytest.skip.Exception, match="could be billed, 2 times at least"):
        guard.check_allowance(needed=2)
    result = run_suite(remote_mock, tmp_path, "--ivh-allow-spend", "1", "-k", "spoken_text_longer_than_60")
    assert result.returncode == 0 and "1 skipped" in result.stdout, result.stdout[-3000:]
    assert "Failing explicit example" not in result.stdout, result.stdout[-3000:]
    journal = requests.get(f"{remote_mock}/__mock__/requests?limit=100", timeout=10).json()["requests"]
    assert not [entry for entry in journal if entry["operation"] == "phototovideonotrain"]  # nothing spent


@pytest.mark.slow
def test_breaking_any_constraint_in_the_spec_fails_a_named_test():
    result = subprocess.run([sys.executable, "-m", "ivh_mock.contract_tests.mutation"], cwd=ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout
    assert "SURVIVED" not in result.stdout
    assert re.search(r"(\d+) of \1 mutations caught", result.stdout), result.stdout
    # each constraint of the README's table is broken by some mutation and caught by the test the table names (the
    # 60 s limit had no mutation, and the markup rules were reported as caught by the length test)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("| seed constraint | named test"):].split("\n\n")[0]
    named = re.findall(r"^\|[^|]+\| `(test_\w+)`", table, re.MULTILINE)
    caught_by = set(re.findall(r"caught by (test_\w+)", result.stdout))
    assert len(named) >= 15 and set(named) == caught_by, (named, caught_by)


@pytest.mark.slow
@pytest.mark.parametrize("frozen_at_start", [False, True])
def test_the_suite_puts_a_served_mocks_clock_back_as_it_found_it(frozen_at_start, tmp_path):
    # one of them at live pace, where a minute of speech renders for 1,210 s: the test had moved the clock 600 s
    with ServeProcess(tmp_path / "data", *(["--pace", "live"] if frozen_at_start else [])) as served:
        clock = f"{served.url}/__mock__/clock"
        if frozen_at_start:
            requests.post(clock, json={"set": 1_900_000_000, "frozen": True}, timeout=10)
        result = run_suite(served.url, tmp_path, "--ivh-allow-spend", "1000", "-k",
                           "test_spoken_text_longer_than_60_seconds_fails")
        assert result.returncode == 0 and " passed" in result.stdout, result.stdout[-3000:]
        after = requests.get(clock, timeout=10).json()
        assert "held" not in after  # let go of as it was put back
        # and without the accounts it made for its tests (ct-...), which had crowded the dashboard after each run
        accounts = requests.get(f"{served.url}/__mock__/accounts", timeout=10).json()["accounts"]
        assert [account["appkey"] for account in accounts if account["appkey"].startswith("ct-")] == []
        assert requests.get(f"{served.url}/__mock__/tasks", timeout=10).json()["tasks"] == []
    if frozen_at_start:
        assert after["frozen"] is True and after["now"] == 1_900_000_000
    else:
        assert after["real"] is True, after  # the test advanced the clock by 600 s at least


@pytest.mark.slow
def test_a_suite_run_stopped_by_sigterm_puts_the_served_mocks_clock_back(tmp_path):
    """A CI job's timeout (SIGTERM) ended the run at once: the served mock's clock stayed frozen, hours ahead, in its
    store, and the next run put that back as what it had found."""
    with ServeProcess(tmp_path / "data") as served:
        clock = f"{served.url}/__mock__/clock"
        env = {**os.environ, "IVH_APPKEY": "contract-ci", "IVH_ACCESSTOKEN": DEFAULT_TOKEN}
        run = subprocess.Popen([sys.executable, "-m", "pytest", "contract_tests", "-q", "-p", "no:cacheprovider",
                                "--ivh-base-url", served.url, "--ivh-report-dir", str(tmp_path / "reports"),
                                "--ivh-allow-spend", "1000"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
        try:
            until(lambda: requests.get(clock, timeout=10).json()["frozen"], seconds=60)  # a test steers it
            run.send_signal(signal.SIGTERM)
            output, _ = run.communicate(timeout=60)
        finally:
            run.kill()
            run.wait()
        assert "KeyboardInterrupt" in output or "Interrupted" in output, output[-2000:]
        after = requests.get(clock, timeout=10).json()
    assert after["real"] is True, after


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


def test_a_target_behind_a_proxy_the_suite_cannot_reach_is_refused_naming_the_variable(monkeypatch):
    """The refusal of a run whose HTTP_PROXY names nothing listening said requests' "Unable to connect to proxy", not
    which variable sent the calls there, nor NO_PROXY."""
    from ivh_mock.contract_tests.target import preflight
    from ivh_mock.mock_server import MockServer
    from ivh_mock.mock_server.serving.testing import free_port

    for name in ("NO_PROXY", "no_proxy", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")
    with MockServer() as mock:
        said = preflight(mock.base_url, "app", DEFAULT_TOKEN)
        assert said.startswith(f"{mock.base_url} could not be asked getprogress: ") and said.endswith(
            "that HTTP_PROXY names: set NO_PROXY=127.0.0.1 to call 127.0.0.1 directly)"), said
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")
        assert preflight(mock.base_url, "app", DEFAULT_TOKEN) is None


def test_a_target_the_suite_cannot_run_against_is_refused_up_front_saying_why(tmp_path):
    """A misconfigured run (nothing listening, a path where no API answers, a wrong accesstoken, a served mock whose
    control token is missing) failed most tests and filled the drift report with "differs", read as the API's drift;
    the errors quoted the signed query. An empty --ivh-base-url (an unset $LIVE_URL) skipped the credentials check."""
    from ivh_mock.contract_tests.target import preflight
    from ivh_mock.mock_server import MockServer
    from ivh_mock.mock_server.serving.testing import free_port

    nowhere = f"http://127.0.0.1:{free_port()}"
    said = preflight(nowhere, "app", DEFAULT_TOKEN)
    assert said.startswith(f"{nowhere} could not be asked getprogress: ") and "Connection refused" in said
    assert re.findall(r"signature=[^&\s]*", said) == ["signature=[redacted]"]  # good for any call, for minutes
    assert preflight("ftp://example.com", "app", DEFAULT_TOKEN).startswith("--ivh-base-url: the URL ")
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text("accounts:\n  - appkey: team-a\n    accesstoken: team-a-token\n")
    with MockServer({"accounts_file": str(accounts)}) as mock:  # strict: the suite's own accounts (ct-...) refused,
        said = preflight(mock.base_url, "team-a", "team-a-token")  # which had failed 24 tests of 25
        assert "refuses the accounts the suite makes for its tests" in said and "without --accounts" in said, said
    with MockServer() as mock:
        assert preflight(mock.base_url, "app", DEFAULT_TOKEN) is None
        made = requests.get(f"{mock.base_url}/__mock__/accounts", timeout=10).json()["accounts"]
        assert [account["appkey"] for account in made if account["appkey"].startswith("ct-")] == []
        assert preflight(f"{mock.base_url}/some/prefix", "app", DEFAULT_TOKEN) == (
            f"{mock.base_url}/some/prefix has no API at /v2/ivh/videomaker/broadcastservice/getprogress; check the "
            f"URL's path")
        assert preflight(mock.base_url, "app", "not-the-token").startswith(
            f"{mock.base_url} refused the credentials (IVH_APPKEY, IVH_ACCESSTOKEN): 100005 ")
        assert "without -n" in preflight(mock.base_url, "app", DEFAULT_TOKEN, parallel=True)
    envelope = b'{"Header": {"Code": 110006, "Message": "no such task", "RequestID": "r"}, "Payload": {}}'
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                   b"Connection: close\r\n\r\n%s" % (len(envelope), envelope)) as live:  # no control API
        assert preflight(live.url, "app", DEFAULT_TOKEN, parallel=True) is None
        # each xdist worker has a spend guard of its own: -n 4 could bill four times the allowance
        assert "run a paying run without -n" in preflight(live.url, "app", DEFAULT_TOKEN, parallel=True, spend=3)
    with MockServer({"control_token": "s3cret-token"}) as mock:
        refused = preflight(mock.base_url, "app", DEFAULT_TOKEN)
        assert "control API refused the suite" in refused and "Set IVH_MOCK_CONTROL_TOKEN to its" in refused
        # set, but to another: it had said to set it
        assert preflight(mock.base_url, "app", DEFAULT_TOKEN, "wrong").endswith(
            "IVH_MOCK_CONTROL_TOKEN is set, but not to its --control-token")
        assert preflight(mock.base_url, "app", DEFAULT_TOKEN, "s3cret-token") is None
    (tmp_path / "afile").write_text("")
    (tmp_path / "taken" / "drift-report.json").mkdir(parents=True)
    # a report folder under a file, or holding a folder where the report goes, was found after the whole run (which
    # had spent), the report lost; the run asks first, as it does of a folder that is a file (run below)
    from ivh_mock.spec import drift

    assert drift.unwritable(tmp_path / "afile" / "sub") == "Not a directory"
    assert drift.unwritable(tmp_path / "taken") == "drift-report.json in it is a directory"
    assert drift.unwritable(tmp_path / "fresh" / "reports") is None and (tmp_path / "fresh" / "reports").is_dir()
    earlier = tmp_path / "earlier"
    earlier.mkdir()
    for name in ("drift-report.json", "drift-report.md"):
        (earlier / name).write_text("an earlier run's")
    with MockServer() as mock, MockServer() as held:
        # another run steers its clock: each of this one's moves would be refused, test after test
        requests.post(f"{held.base_url}/__mock__/clock", json={"by": "contract-suite-other", "hold": 600}, timeout=10)
        said = preflight(held.base_url, "app", DEFAULT_TOKEN)
        assert said.startswith(f"{held.base_url} is a mock whose clock another run is steering ('contract-suite-"
                               f"other', its hold lapsing at 20"), said
        assert said.endswith('a POST to /__mock__/clock of {"by": <its holder>, "release": true}, or a reset of '
                             'everything')
        for url, report_dir, extra, says in (
                # a refused run makes no report folder (it had made one, empty)
                (nowhere, tmp_path / "unmade", (), "could not be asked getprogress"),
                ("", tmp_path / "unmade", (), "--ivh-base-url is empty"),
                # refused, and an earlier run's report gone: it had stayed, to pass for this run's
                (held.base_url, earlier, (), "whose clock another run is steering ('contract-suite-other'"),
                (mock.base_url, "", (), "--ivh-report-dir is empty"),  # (an unset $REPORTS: the current folder)
                # a report folder that is a file had been found at the end of the whole run, the report lost
                (mock.base_url, tmp_path / "afile", (), "the drift report cannot be written there: it is a file"),
                (nowhere, tmp_path / "unmade", ("--ivh-allow-spend", "-1"), "a number of submissions, 0 or more")):
            result = run_suite(url, report_dir, *extra, paths=("contract_tests/test_clock.py",))
            assert result.returncode == 4 and says in result.stderr, result.stdout[-2000:] + result.stderr[-2000:]
    assert not (tmp_path / "unmade").exists() and list(earlier.iterdir()) == []


def test_of_two_runs_against_one_mock_the_second_is_refused_until_the_first_lets_go_of_its_clock():
    """Two runs at once moved the one clock under each other, and the second to end put back the clock frozen as it
    found it (by the first): the mock stayed frozen for good. A run holds the clock while it steers it: one that
    begins meanwhile is refused (exit 4, naming the holder), and the first lets go as it puts the clock back."""
    from ivh_mock.contract_tests.target import HOLD_SECONDS, SpendGuard, Target, remote_session
    from ivh_mock.mock_server import MockServer

    def run(url):
        return Target(url, remote_session(), label=url, guard=SpendGuard(0), appkey="app", accesstoken=DEFAULT_TOKEN)

    with MockServer() as mock:
        clock = f"{mock.base_url}/__mock__/clock"
        before = requests.get(clock, timeout=10).json()  # a fixture's mock: frozen
        first, second = run(mock.base_url), run(mock.base_url)
        assert first.hold_clock() is None
        first.freeze()
        first.advance(3600)
        refused = second.hold_clock()
        assert refused.startswith(f"the clock is held by {first.run_id!r} for "), refused
        with pytest.raises(AssertionError, match="the clock is held by"):
            second.advance(60)
        held = requests.get(clock, timeout=10).json()
        assert held["frozen"] is True and held["held"]["by"] == first.run_id
        assert HOLD_SECONDS - 10 < held["held"]["until"] - time.time() <= HOLD_SECONDS
        first.restore_clock()
        after = requests.get(clock, timeout=10).json()
        assert (after["frozen"], after["now"]) == (True, before["now"]) and "held" not in after
        assert second.hold_clock() is None


def test_a_mock_whose_clock_cannot_be_moved_is_no_mock_another_run_holds():
    """A mock on the system's clock answers every move 409, "a clock that cannot be moved": the suite had said that
    another run was steering it, and run nothing."""
    from ivh_mock.contract_tests.target import SpendGuard, Target, remote_session
    from ivh_mock.mock_server import MockServer, SystemClock

    with MockServer(clock=SystemClock()) as mock:
        run = Target(mock.base_url, remote_session(), label="system", guard=SpendGuard(0), appkey="app",
                     accesstoken=DEFAULT_TOKEN)
        assert run.hold_clock() is None
        with pytest.raises(AssertionError, match="409 this mock runs on a clock that cannot be moved"):
            run.advance(60)  # what the tests that move it say, each of its own


def test_a_mock_from_before_holds_is_steered_without_one(monkeypatch):
    """A served mock of an earlier version refuses the fields of a hold (400): the suite installed since had taken
    that for another run holding its clock, and refused to run against it at all."""
    from ivh_mock.contract_tests.target import SpendGuard, Target, remote_session
    from ivh_mock.mock_server import MockServer
    from ivh_mock.mock_server.routes import control

    for field in ("by", "hold", "release"):  # as the control API was
        monkeypatch.delitem(control.SCHEMAS["clock"]["properties"], field)
    with MockServer() as mock:
        run = Target(mock.base_url, remote_session(), label="older", guard=SpendGuard(0), appkey="app",
                     accesstoken=DEFAULT_TOKEN)
        before = run.clock_now()
        assert run.hold_clock() is None
        run.freeze()
        run.advance(60)
        assert run.clock_now() == before + 60
        run.restore_clock()
        assert run.clock_now() == before


def test_a_test_that_needs_the_control_api_says_so_when_the_target_has_none(tmp_path):
    """Against a server without a control API and with no allowance, the lifecycle's state machine was skipped as
    "spend guard: 0 accepted of --ivh-allow-spend 0", as if an allowance would let it run."""
    envelope = b'{"Header": {"Code": 110006, "Message": "no such task", "RequestID": "r"}, "Payload": {}}'
    with RawServer(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
                   b"Connection: close\r\n\r\n%s" % (len(envelope), envelope)) as live:
        machine = "contract_tests/test_lifecycle.py::test_lifecycle_state_machine"
        result = run_suite(live.url, tmp_path, paths=(machine,))
    skipped = [line for line in result.stdout.splitlines() if line.startswith("SKIPPED")]
    assert len(skipped) == 1 and "has no control API" in skipped[0], result.stdout[-2000:]


def test_one_xdist_worker_is_not_a_split_run():
    """`-n 1` (one worker) was refused against a served mock as if tests in parallel workers would move its clock."""
    from ivh_mock.contract_tests.plugin import _split

    assert [_split(n) for n in (None, 0, 1, "1", 2, "auto", "logical")] == [False] * 4 + [True] * 3


def test_a_target_that_hangs_redirects_or_goes_away_mid_run_is_named(monkeypatch):
    """A server that never answered was given 30 s by the probe of its control API, then 30 s more by getprogress,
    and the error said 30; a redirect was followed and another server's page quoted as the target's answer; a mock
    stopped mid-run made the suite's clock calls raise TypeError ('NoneType' object is not subscriptable)."""
    from ivh_mock.contract_tests import target as target_module
    from ivh_mock.contract_tests.target import SpendGuard, Target, preflight
    from ivh_mock.mock_server import MockServer

    monkeypatch.setattr(target_module, "ANSWER_SECONDS", 0.5)
    with RawServer(b"", hang=True) as silent:
        started = time.monotonic()
        assert preflight(silent.url, "app", DEFAULT_TOKEN) == (
            f"{silent.url} did not answer GET /__mock__/clock within 0.5 s")
        assert time.monotonic() - started < 5 and silent.requests == 1
    with MockServer() as elsewhere, RawServer(b"HTTP/1.1 302 Found\r\nLocation: %s/\r\nContent-Length: 0\r\n"
                                              b"Connection: close\r\n\r\n" % elsewhere.base_url.encode()) as moved:
        said = preflight(moved.url, "app", DEFAULT_TOKEN)
        assert said == f"{moved.url} does not answer getprogress as the API does (HTTP 302, not the API's " \
                       f"envelope: ''); check the URL", said
    with MockServer() as mock:
        target = Target(mock.base_url, requests.Session(), label="the served mock", guard=SpendGuard(0),
                        appkey="app", accesstoken=DEFAULT_TOKEN)
        assert target.has_control and isinstance(target.clock_now(), float)
    for call in (target.clock_now, target.freeze, lambda: target.advance(5)):
        with pytest.raises(AssertionError, match=r"^the served mock could not be asked the control API's \w+ clock: "):
            call()


def test_a_file_named_reports_in_an_apps_folder_stops_no_run_but_the_suites(tmp_path):
    """Installing ivh-mock adds the suite's options to every pytest run: the check of --ivh-report-dir's default,
    `reports`, had stopped every run of an app's own tests in a folder holding a file of that name."""
    (tmp_path / "reports").write_text("a file of the app's")
    (tmp_path / "test_app.py").write_text("def test_it():\n    assert True\n")
    run = forked.run(["-q", "-p", "no:cacheprovider", "test_app.py"], cwd=tmp_path, timeout=120)
    assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]


def test_the_drift_report_finds_what_any_answer_of_the_run_breaks():
    """The suite's report said "everything seen conforms" of a target whose answers carried an undocumented field
    (the recording proxy reported it from the same traffic), or a Status outside the spec's enum; and an answer that
    was a page, not the envelope, was taken as the mock's HTTP status and Payload in probes D01 and D02."""
    from ivh_mock.contract_tests.probes import PROBES
    from ivh_mock.contract_tests.target import Answer, SpendGuard, Target

    progress = {"Header": {"Code": 0, "Message": "", "RequestID": "r"},
                "Payload": {"Progress": 50, "MediaUrl": "https://cdn.example/v.mp4?q-signature=SECRET",
                            "Status": "making", "ArrayCount": 0, "Duration": 0, "NewField": 1}}
    session = requests.Session()
    session.mount("http://gateway.localhost", FixedAnswer(__import__("json").dumps(progress).encode()))
    target = Target("http://gateway.localhost", session, label="gateway", guard=SpendGuard(0), appkey="mine",
                    accesstoken="token")
    target.send("getprogress", {"Header": {}, "Payload": {"TaskId": "t"}})
    target.client(max_retries=0).getprogress("t")  # through the client too: one hook sees both
    found = {(f["kind"], f["subject"]): f["count"] for f in target.observed.findings()}
    assert found[("undocumented-field", "response.Payload.NewField")] == 2
    assert any(kind == "unknown-status" for kind, _ in found), found
    # the examples are redacted as the proxy's recordings are: a report is shared, a MediaUrl's query is a secret
    assert "SECRET" not in __import__("json").dumps(target.observed.findings())
    deep = requests.Session()  # an answer nested 100,000 deep: the hook had raised RecursionError into every call
    deep.mount("http://gateway.localhost", FixedAnswer(b'{"Header": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"))
    deeper = Target("http://gateway.localhost", deep, label="gateway", guard=SpendGuard(0), appkey="mine",
                    accesstoken="token")
    assert deeper.send("getprogress", {"Header": {}, "Payload": {"TaskId": "t"}}).status == 200
    # a target that echoes the run's own accesstoken where no name marks it a secret: scrubbed from the report
    from ivh_mock.spec.drift import scrubbed

    echoed = {"Header": {"Debug": "checked with probe-SECRET-token"}, "Payload": {"k": ["probe-SECRET-token"]}}
    assert scrubbed(echoed, ["probe-SECRET-token", None, "t"]) == {
        "Header": {"Debug": "checked with [redacted]"}, "Payload": {"k": ["[redacted]"]}}  # too short: "t" stays
    page = Answer(200, "<html>hello</html>")
    assert page.payload == {}
    observed = {probe.decision: probe.observe(page) for probe in PROBES if probe.decision in ("D01", "D02", "D03")}
    assert set(observed.values()) == {"HTTP 200, not the API's envelope: '<html>hello</html>'"}


def test_the_mutation_check_says_when_the_suite_did_not_run(monkeypatch, capsys, tmp_path):
    """Without the suite's extra, or with a suite that cannot be collected, every mutation was listed SURVIVED:
    "0 of 21 mutations caught", as if the suite caught nothing."""
    import importlib.util

    import ivh_mock.contract_tests.mutation as mutation

    monkeypatch.setattr(pytest, "main", lambda *args, **kwargs: pytest.ExitCode.USAGE_ERROR)
    name, caught, by = mutation.run_one(mutation.MUTATIONS[0], tmp_path)
    assert (caught, by) == (False, "NOT RUN: pytest exit code 4")
    monkeypatch.setattr(mutation, "run_all", lambda: [(name, caught, by)])
    assert mutation.main([]) == 2
    assert "could not be checked: the suite did not run" in capsys.readouterr().out
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda module: None if module == "hypothesis" else real(module))
    assert mutation.main([]) == 2
    assert "pip install 'ivh-mock[contract]'" in capsys.readouterr().err


def test_only_a_command_line_naming_the_suite_needs_its_extra(tmp_path):
    """Any argument with "contract_tests" in it had been taken for the suite: an app's own folder of that name, or a
    bare `pytest` in a checkout whose path holds it, was refused for want of hypothesis."""
    from ivh_mock.contract_tests.plugin import _names_the_suite

    assert _names_the_suite(["ivh_mock.contract_tests"]) and _names_the_suite(["ivh_mock.contract_tests.test_clock"])
    assert _names_the_suite([f"{ROOT / 'contract_tests' / 'test_clock.py'}::test_a_day_away"])
    (tmp_path / "contract_tests").mkdir()
    assert not _names_the_suite([str(tmp_path / "contract_tests"), str(tmp_path), "ivh_mock.contract_testsx"])
