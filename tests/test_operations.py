"""The three operations end to end: the seed flow, task isolation between appkeys, timbre paging and filters."""

import re

import pytest
from ivh_mock.mock_server import create_app
from ivh_mock.mock_server.pace import PRESETS

from ivh_mock import spec as spec_module

from .conftest import AUDIO_PAYLOAD, TEXT_PAYLOAD, in_process

SPEC = spec_module.load()
pytestmark = pytest.mark.all_stores


def conforms(operation_id, answer):
    assert SPEC.check(SPEC.operations[operation_id].response_schema, answer.body) == []
    return answer


def test_the_seed_text_sample_is_accepted_and_queued(api):
    answer = conforms("phototovideonotrain", api.call("phototovideonotrain", TEXT_PAYLOAD))
    assert answer.code == 0 and answer.message == ""
    task_id = answer.payload["TaskId"]
    assert re.fullmatch(r"[0-9a-f]{32}", task_id)

    progress = conforms("getprogress", api.call("getprogress", {"TaskId": task_id}))
    assert progress.code == 0
    assert progress.payload["Status"] == "COMMIT"
    assert set(progress.payload) >= {"Progress", "MediaUrl", "SubtitlesUrl", "Status", "ArrayCount", "FailCode",
                                     "FailMessage", "TextTimestampResult", "Duration"}


def test_the_seed_audio_sample_is_accepted(api):
    assert conforms("phototovideonotrain", api.call("phototovideonotrain", AUDIO_PAYLOAD)).code == 0


def test_task_ids_are_unique(api):
    ids = {api.call("phototovideonotrain", TEXT_PAYLOAD).payload["TaskId"] for _ in range(20)}
    assert len(ids) == 20


def test_the_request_id_is_echoed_or_generated(api):
    assert api.call("getprogress", {"TaskId": "x"}, header={"RequestID": "mine-1"}).body["Header"]["RequestID"] \
        == "mine-1"
    generated = api.call("getprogress", {"TaskId": "x"}).body["Header"]["RequestID"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)


def test_the_envelope_has_the_sample_response_fields(api):
    header = api.call("phototovideonotrain", TEXT_PAYLOAD).body["Header"]
    assert list(header) == ["Code", "DialogID", "Message", "RequestID", "SessionID"]


def test_two_appkeys_never_see_each_others_tasks(app, clock):
    alice = in_process(app, clock, appkey="alice")
    bob = in_process(app, clock, appkey="bob")
    task_id = alice.call("phototovideonotrain", TEXT_PAYLOAD).payload["TaskId"]
    answer = bob.call("getprogress", {"TaskId": task_id})
    assert answer.code == 110006
    assert f"Payload.TaskId '{task_id}' does not exist for this appkey" == answer.message
    assert alice.call("getprogress", {"TaskId": task_id}).code == 0


def test_the_journal_records_each_verdict_per_appkey(app, clock):
    api = in_process(app, clock, appkey="journaled")
    task_id = api.call("phototovideonotrain", TEXT_PAYLOAD).payload["TaskId"]
    api.call("phototovideonotrain", {**TEXT_PAYLOAD, "DriverType": "Txt"})
    store = app.extensions["ivh_mock"].store
    entries = store.journal("journaled")
    assert [(e.operation, e.verdict, e.code) for e in entries] == [
        ("phototovideonotrain", "accepted", 0), ("phototovideonotrain", "rejected", 100002)]
    assert entries[0].task_id == task_id
    assert "Payload.DriverType" in entries[1].message
    assert store.journal("someone-else") == []


def test_journal_keeps_a_bounded_number_of_entries(clock, store_spec):
    app = create_app({"journal_limit": 3, "store": store_spec, "background": False}, clock=clock)
    api = in_process(app, clock)
    for _ in range(5):
        api.call("getprogress", {"TaskId": "x"})
    assert len(app.extensions["ivh_mock"].store.journal("test-app")) == 3


class TestDescribeTimbre:
    def page(self, api, **payload):
        answer = conforms("describetimbre", api.call("describetimbre", {"PageIndex": 1, "PageSize": 100,
                                                                        **payload}))
        assert answer.code == 0, answer.message
        return answer.payload

    def test_the_catalogue_has_every_built_in_timbre(self, api):
        keys = [t["TimbreKey"] for t in self.page(api)["TimbreAssets"]]
        assert {f"male_{n}" for n in range(1, 21)} | {f"female_{n}" for n in range(1, 24)} <= set(keys)
        assert "male_21" not in keys and "female_24" not in keys and "male_0" not in keys

    def test_pages_cover_the_catalogue_exactly_once(self, api):
        total = self.page(api)["Total"]
        seen = []
        for index in range(1, total // 7 + 2):
            seen += [t["TimbreKey"] for t in self.page(api, PageIndex=index, PageSize=7)["TimbreAssets"]]
        assert len(seen) == len(set(seen)) == total

    def test_a_page_past_the_end_is_empty(self, api):
        payload = self.page(api, PageIndex=99, PageSize=10)
        assert payload["TimbreAssets"] == [] and payload["Total"] > 0

    def test_filters(self, api):
        assert [t["TimbreKey"] for t in self.page(api, TimbreKey="male_3")["TimbreAssets"]] == ["male_3"]
        listed = self.page(api, TimbreKey="male_3", TimbreKeyList=["female_1", "female_2"])["TimbreAssets"]
        assert sorted(t["TimbreKey"] for t in listed) == ["female_1", "female_2"]  # the list wins
        assert self.page(api, TimbreName="emotional")["Total"] == 1
        assert self.page(api, PurchaseType="Custom")["Total"] == 0

    def test_an_empty_filter_filters_nothing(self, api):
        """An empty TimbreKeyList matched no timbre, even beside a TimbreKey, and an empty TimbreKey none, while an
        empty TimbreName matched every one (D28)."""
        total = self.page(api)["Total"]
        for empty in ({"TimbreKeyList": []}, {"TimbreKey": ""}, {"TimbreName": ""},
                      {"TimbreKeyList": [], "TimbreKey": "", "TimbreName": ""}):
            assert self.page(api, **empty)["Total"] == total, empty
        listed = self.page(api, TimbreKeyList=[], TimbreKey="male_3")["TimbreAssets"]
        assert [t["TimbreKey"] for t in listed] == ["male_3"]

    def test_built_in_genders(self, api):
        by_key = {t["TimbreKey"]: t for t in self.page(api)["TimbreAssets"]}
        assert by_key["male_1"]["TimbreGender"] == 1 and by_key["female_1"]["TimbreGender"] == 2


def test_the_profile_is_chosen_at_start(clock):
    assert create_app({"profile": "cn"}, clock=clock).extensions["ivh_mock"].profile["photo"]["maxBytes"] \
        == 6 * 1024 * 1024
    assert create_app({}, clock=clock).extensions["ivh_mock"].profile["photo"]["maxBytes"] == 10 * 1024 * 1024
    with pytest.raises(ValueError, match="^profile: unknown profile 'mars'; the spec defines intl, cn$"):
        create_app({"profile": "mars"})  # a ValueError naming the field, as a bad pace or control_token is


def test_a_refused_start_leaves_no_scratch_folder(monkeypatch, tmp_path):
    """A mock refusing its profile, or a store it cannot reach, had made its scratch folder first and left it behind:
    a ResourceWarning at the garbage collector's turn (a failure of the refusal's own test under `-W error`), and the
    folder itself should the process end first."""
    import gc
    import tempfile
    import warnings

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    import redis

    for config, refusal in (({"profile": "mars"}, ValueError), ({"store": "redis://127.0.0.1:9/0"}, redis.RedisError)):
        gc.collect()  # what earlier tests of this process left is not this one's to judge
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with pytest.raises(refusal):
                create_app(config)
            gc.collect()
        assert list(tmp_path.iterdir()) == [], config
        assert not [warning for warning in caught if issubclass(warning.category, ResourceWarning)
                    and str(tmp_path) in str(warning.message)], config  # (its folder is made in tmp_path)


def test_unknown_settings_are_refused_by_name():
    with pytest.raises(TypeError, match="unknown mock setting.*colour"):
        create_app({"colour": "red"})


def test_create_app_takes_a_pace_and_a_stores_url_as_serve_does(tmp_path, clock):
    """`create_app({"pace": "live"})` had been an unknown setting and `create_app(store="sqlite:...")` an
    AttributeError, though the README gives both as serve's options."""
    live = create_app({"pace": "live", "render_speed": 0.5, "background": False}, clock=clock)
    config = live.extensions["ivh_mock"].config
    assert (config.queue_seconds, config.render_speed) == (PRESETS["live"]["queue_seconds"], 0.5)  # beside it wins
    assert config.render_startup_seconds == PRESETS["live"]["render_startup_seconds"]
    with pytest.raises(ValueError, match="pace 'slow' is not a preset"):
        create_app({"pace": "slow"})
    stored = create_app({"background": False}, store=f"sqlite:{tmp_path / 'mock.sqlite3'}", clock=clock)
    assert type(stored.extensions["ivh_mock"].store).__name__ == "SqliteStore"
    assert (tmp_path / "mock.sqlite3").exists()
    stored.extensions["ivh_mock"].store.close()
