"""Paces: the fast default, the live-like preset, and per-account and per-request overrides."""

import pytest
import yaml
from ivh_mock.mock_server import create_app
from ivh_mock.mock_server.accounts import AccountsFileError
from ivh_mock.mock_server.pace import FIELDS, PRESETS
from ivh_mock.mock_server.serving.cli import build_parser, timing_of

from .conftest import TIMING, in_process
from .test_lifecycle import poll, submit, text

SECONDS = 2.0  # the spoken length of test_lifecycle's SENTENCE


@pytest.fixture
def mock(clock):
    return create_app({**TIMING, "background": False}, clock=clock)


@pytest.fixture
def api(mock, clock):
    return in_process(mock, clock)


def plan(mock, task_id):
    record = mock.test_client().get(f"/__mock__/tasks/{task_id}").get_json()
    return record["plan"]["start_at"] - record["submitted_at"], record["plan"]["render_seconds"]


def test_the_live_preset_is_twenty_seconds_of_render_per_second_of_video():
    assert PRESETS["live"] == {"queue_seconds": 10.0, "render_speed": 20.0, "render_startup_seconds": 0.0}
    assert set(PRESETS["fast"]) == set(FIELDS)


def test_one_request_can_ask_for_the_live_pace(mock, api, clock):
    slow = submit(api, text(), scenario="success:pace=live")
    other = in_process(mock, clock, appkey="quick-app")  # another account: FIFO would hold the quick task
    quick = submit(other, text())
    assert plan(mock, slow) == (10.0, 20.0 * SECONDS)
    assert plan(mock, quick) == (TIMING["queue_seconds"], TIMING["render_startup_seconds"] + 0.25 * SECONDS)
    clock.advance(10.0 + 20.0 * SECONDS - 0.5)  # MAKING is long enough for a poller to see it
    assert (poll(api, slow)["Status"], poll(api, slow)["Progress"]) == ("MAKING", 97)
    assert poll(other, quick)["Status"] == "SUCCESS"
    clock.advance(0.5)
    assert poll(api, slow)["Status"] == "SUCCESS"


def test_the_pace_parameter_combines_with_other_scenarios(mock, api):
    task = submit(api, text(), scenario="slow_render:factor=2,pace=live")
    assert plan(mock, task) == (10.0, 2 * 20.0 * SECONDS)


def test_an_account_pace_applies_to_its_tasks_and_a_request_overrides_it(mock, api):
    control = mock.test_client()
    view = control.put("/__mock__/accounts/test-app", json={"pace": "live"}).get_json()
    assert view["pace"] == "live"
    assert plan(mock, submit(api, text())) == (10.0, 20.0 * SECONDS)
    # later tasks of the account queue behind the first (FIFO): their render times tell their paces
    assert plan(mock, submit(api, text(), scenario="success:pace=fast"))[1] == 2.0 + 0.2 * SECONDS
    # a mapping changes some figures over the server's pace
    control.put("/__mock__/accounts/test-app", json={"pace": {"render_speed": 5}})
    assert plan(mock, submit(api, text()))[1] == TIMING["render_startup_seconds"] + 5 * SECONDS
    control.put("/__mock__/accounts/test-app", json={"pace": None})
    assert plan(mock, submit(api, text()))[1] == TIMING["render_startup_seconds"] + 0.25 * SECONDS
    other = in_process(mock, api.clock, appkey="other-app")
    assert plan(mock, submit(other, text()))[1] == TIMING["render_startup_seconds"] + 0.25 * SECONDS


@pytest.mark.parametrize("pace, named", [
    ("glacial", "pace 'glacial' is not a preset; known: fast, live"),
    ({"render_speed": -1}, "pace field render_speed must be a number from 0 to 86400, got -1"),
    ({"render_speed": "20"}, "pace field render_speed must be a number"),
    ({"speed": 2}, "pace field(s) speed unknown; a pace takes queue_seconds, render_speed, render_startup_seconds"),
    (7, "is not of type 'string', 'object', 'null'"),
])
def test_a_bad_account_pace_is_refused_by_name(mock, pace, named):
    answer = mock.test_client().put("/__mock__/accounts/test-app", json={"pace": pace})
    assert answer.status_code == 400
    assert named in answer.get_json()["error"]["message"]


def test_a_bad_request_pace_is_refused_with_the_known_paces(api):
    answer = api.call("phototovideonotrain", text(), scenario="success:pace=glacial")
    assert answer.code == 100002
    assert "pace='glacial' is not a pace; known: fast, live" in answer.message
    assert "it takes: code, at, pace" in api.call("phototovideonotrain", text(), scenario="fail:speed=2").message


def test_an_accounts_file_may_set_a_pace_and_a_bad_one_stops_the_start(tmp_path, clock):
    path = tmp_path / "accounts.yaml"
    path.write_text(yaml.safe_dump({"accounts": [{"appkey": "a", "accesstoken": "t", "pace": "live"}]}))
    mock = create_app({"accounts_file": str(path), "background": False}, clock=clock)
    assert plan(mock, submit(in_process(mock, clock, appkey="a", accesstoken="t"), text())) == (10.0, 40.0)
    path.write_text(yaml.safe_dump({"accounts": [{"appkey": "a", "accesstoken": "t", "pace": "turbo"}]}))
    with pytest.raises(AccountsFileError, match="account 'a'/pace: pace 'turbo' is not a preset"):
        create_app({"accounts_file": str(path)})


@pytest.mark.parametrize("argv, expected", [
    ([], PRESETS["fast"]),
    (["--pace", "live"], PRESETS["live"]),
    (["--pace", "live", "--queue-seconds", "3"], {**PRESETS["live"], "queue_seconds": 3.0}),
    (["--render-speed", "1"], {**PRESETS["fast"], "render_speed": 1.0}),
])
def test_serve_takes_a_pace_and_any_figure_changed(argv, expected):
    assert timing_of(build_parser().parse_args(["serve", *argv])) == expected


@pytest.mark.parametrize("field", FIELDS)
def test_a_server_built_in_code_refuses_a_negative_pace_by_name(field):
    """A negative queue or render would plan tasks to start before they were submitted; create_app (and so
    MockServer and the fixtures) refuses one as the CLI does."""
    with pytest.raises(ValueError, match=f"pace field {field} must be a number from 0 to 86400, got -5"):
        create_app({field: -5, "background": False})
