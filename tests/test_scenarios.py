"""Each scenario of the catalogue produces its documented trajectory, chosen per request or per account."""

from dataclasses import replace
from pathlib import Path

import pytest
from ivh_mock.mock_server.lifecycle.scenarios import CATALOGUE

from .test_lifecycle import poll, submit, text

pytestmark = pytest.mark.all_stores
README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def trajectory(api, clock, task_id, seconds=60.0, step=0.125):
    """Poll every `step` virtual seconds until the task ends, then once more at the end of `seconds` (an end is
    kept); return the reports in order."""
    reports = [poll(api, task_id)]
    steps = int(seconds / step)
    for taken in range(1, steps + 1):
        clock.advance(step)
        reports.append(poll(api, task_id))
        if reports[-1]["Status"] in ("SUCCESS", "FAIL") and taken < steps:
            clock.advance(step * (steps - taken))
            reports.append(poll(api, task_id))
            break
    return reports


def statuses(reports):
    seen = []
    for report in reports:
        if not seen or seen[-1] != report["Status"]:
            seen.append(report["Status"])
    return seen


# (scenario, statuses walked, final FailCode, highest Progress while MAKING, seconds from MAKING to the end)
TRAJECTORIES = [
    ("success", ["COMMIT", "MAKING", "SUCCESS"], 0, 99, 2.5),
    ("fail", ["COMMIT", "MAKING", "FAIL"], 801000, 50, 1.25),
    ("internal_error", ["COMMIT", "MAKING", "FAIL"], 801000, 50, 1.25),
    ("content_safety", ["COMMIT", "FAIL"], 801005, None, 0),
    ("download_failure", ["COMMIT", "FAIL"], 801010, None, 0),
    ("no_face", ["COMMIT", "FAIL"], 801009, None, 0),
    ("face_unclear", ["COMMIT", "FAIL"], 801009, None, 0),
    ("timeout", ["COMMIT", "MAKING", "FAIL"], 801007, 99, 7.5),
    ("slow_render", ["COMMIT", "MAKING", "SUCCESS"], 0, 99, 25.0),
    ("stuck_in_queue", ["COMMIT"], 0, None, None),
    ("fail:code=801014,at=20", ["COMMIT", "MAKING", "FAIL"], 801014, 20, 0.5),
    ("slow_render:factor=2", ["COMMIT", "MAKING", "SUCCESS"], 0, 99, 5.0),
]


@pytest.mark.parametrize("scenario, walked, fail_code, top, making_seconds", TRAJECTORIES,
                         ids=[t[0] for t in TRAJECTORIES])
def test_scenario_trajectory(api, clock, scenario, walked, fail_code, top, making_seconds):
    task_id = submit(api, text(), scenario=scenario)
    reports = trajectory(api, clock, task_id)
    assert statuses(reports) == walked
    final = reports[-1]
    assert final["FailCode"] == fail_code
    assert final["Progress"] == {"SUCCESS": 100, "FAIL": -1, "COMMIT": 0}[final["Status"]]
    if final["Status"] == "FAIL":
        assert final["FailMessage"] and final["MediaUrl"] == "" and final["Duration"] == 0
    making = [r["Progress"] for r in reports if r["Status"] == "MAKING"]
    if top is not None:
        assert making == sorted(making) and top - 5 <= max(making) <= top  # sampled every 0.125 s
    if making_seconds is not None:
        assert len(making) * 0.125 == pytest.approx(making_seconds, abs=0.125)


@pytest.mark.parametrize("scenario, at", [("timeout", 99), ("fail:at=30", 30), ("internal_error", 50)])
def test_a_task_failing_when_progress_reaches_a_value_shows_it_first(api, clock, scenario, at):
    """A poll saw at most `at - 1`, then FAIL: "timeout" said 99, then timed out, but 99 was never seen."""
    task_id = submit(api, text(), scenario=scenario)
    reports = trajectory(api, clock, task_id, seconds=10.0, step=0.01)
    making = [report["Progress"] for report in reports if report["Status"] == "MAKING"]
    assert max(making) == making[-1] == at and reports[-1]["Status"] == "FAIL"


@pytest.mark.parametrize("scenario, says", [("no_face", "no face was found"), ("face_unclear", "the face is unclear")])
def test_face_scenarios_say_what_is_wrong_with_the_photo(api, clock, scenario, says):
    final = trajectory(api, clock, submit(api, text(), scenario=scenario))[-1]
    assert final["FailMessage"].startswith(f"Payload.RefPhotoUrl: {says}") and scenario in final["FailMessage"]


@pytest.mark.parametrize("scenario, code, message", [
    ("quota_exceeded", 100008, "超过配额限制: 提交视频制作数量超过限制:1000"),
    ("balance_exhausted", 100013, "balance"),
    ("rate_limited", 801004, "too frequent"),
])
def test_rejecting_scenarios_refuse_the_submission(api, scenario, code, message):
    answer = api.call("phototovideonotrain", text(), scenario=scenario)
    assert answer.code == code and message in answer.message
    assert api.call("getprogress", {"TaskId": "x"}).code == 110006  # without the header: served as usual


def test_rate_limited_applies_to_every_operation(api):
    answer = api.call("getprogress", {"TaskId": "x"}, scenario="rate_limited")
    assert answer.code == 801004
    assert api.call("describetimbre", {"PageIndex": 1, "PageSize": 1}, scenario="rate_limited").code == 801004


@pytest.mark.parametrize("header, named", [
    ("explode", "X-Mock-Scenario 'explode' is not a scenario; known: success"),
    ("fail:colour=red", "X-Mock-Scenario 'fail' has no parameter 'colour'; it takes: code, at"),
    ("fail:code=abc", "X-Mock-Scenario parameter code='abc' must be a whole number"),
    ("fail:code=801000.0", "X-Mock-Scenario parameter code='801000.0' must be a whole number"),  # was: a number
    ("fail:at=99.9999", "X-Mock-Scenario parameter at='99.9999' must be a whole number"),
    ("slow_render:factor=x", "X-Mock-Scenario parameter factor='x' must be a number"),
    # Python's int() and float() took these, each kept as its own spelling of the same scenario
    ("fail:code=801_000", "parameter code='801_000' must be a whole number in ASCII digits"),
    ("fail:code=\u0668\u0660\u0661\u0660\u0660\u0660", "must be a whole number in ASCII digits"),
    ("slow_render:factor=1_0", "parameter factor='1_0' must be a number in ASCII digits"),
    ("slow_render:factor=nan", "parameter factor='nan' must be a number in ASCII digits"),
    ("fail:code=123456", "code=123456 is not a documented FailCode"),
    ("fail:at=100", "at=100 must be a Progress from 0 to 99"),
    ("success:factor=2", "X-Mock-Scenario 'success' has no parameter 'factor'"),
    ("slow_render:factor=0", "factor=0.0 must be above 0"),
    # the last had silently won
    ("fail:code=801000,code=801005", "X-Mock-Scenario parameter code is given twice in 'fail:code=801000,code=801005'"),
    ("success:pace=live,pace=fast", "parameter pace is given twice"),
])
def test_a_bad_scenario_is_refused_by_name(api, header, named):
    answer = api.call("phototovideonotrain", text(), scenario=header)
    assert answer.code == 100002 and named in answer.message


def test_same_inputs_same_trajectory(api, clock):
    first = submit(api, text(), scenario="fail:at=70")
    second = submit(api, text(), scenario="fail:at=70")
    one, two = trajectory(api, clock, first, 10), []
    assert [(r["Status"], r["Progress"], r["ArrayCount"]) for r in one][-1] == ("FAIL", -1, 0)
    clock.set(clock.now() - 10)
    two = trajectory(api, clock, second, 10)
    assert [(r["Status"], r["Progress"]) for r in one] == [(r["Status"], r["Progress"]) for r in two]


def test_every_scenario_is_documented_in_the_readme():
    for name in CATALOGUE:
        assert f"`{name}`" in README, f"README does not describe scenario {name}"


def test_a_scenario_text_is_parsed_once_and_a_refusal_raises_every_time():
    from ivh_mock import spec
    from ivh_mock.mock_server.lifecycle.scenarios import ScenarioError, scenario_of

    contract = spec.load()
    first = scenario_of(contract, "slow_render:factor=2")
    assert scenario_of(contract, "slow_render:factor=2") is first and first.factor == 2.0
    for _ in range(2):
        with pytest.raises(ScenarioError, match="factor=0.0 must be above 0"):
            scenario_of(contract, "slow_render:factor=0")


def test_a_scenario_setting_is_kept_in_one_spelling_and_a_bad_default_is_named(app, api, clock):
    """`fail:` and ` fail` were kept and listed as written, where the tasks they made say `fail`; a bad default
    scenario was refused by the name of a request's header."""
    from ivh_mock.mock_server import create_app

    control = app.test_client()
    for written, kept in ((" fail: ", "fail"), ("fail: at=30 , code=801005,", "fail:at=30,code=801005"),
                          ("fail:at=030,code=0801005", "fail:at=30,code=801005"), ("fail:at=-0", "fail:at=0")):
        assert control.put("/__mock__/accounts/spelt", json={"scenario": written}).json["scenario"] == kept
        task_id = submit(replace(api, appkey="spelt"), text())
        assert control.get(f"/__mock__/tasks/{task_id}").json["scenario"] == kept
    with pytest.raises(ValueError, match=r"^default_scenario: 'nope' is not a scenario; known: success"):
        create_app({"default_scenario": "nope", "background": False})
    assert create_app({"default_scenario": " fail: ", "background": False}).test_client().get(
        "/__mock__/accounts/any").json["scenario"] == "fail"
