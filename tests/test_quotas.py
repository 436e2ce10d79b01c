"""Concurrency, the submission limit (100008) and the hourly-package balance (100013), per account."""

from dataclasses import replace

import pytest
from ivh_mock.mock_server import create_app

from .conftest import in_process
from .test_lifecycle import CONFIG, poll, submit, text

pytestmark = pytest.mark.all_stores


@pytest.fixture
def make(clock, store_spec):
    apps = []

    def build(**settings):
        app = create_app({**CONFIG, "store": store_spec, **settings}, clock=clock)
        apps.append(app)
        return in_process(app, clock), app.extensions["ivh_mock"]

    return build


def test_the_submission_limit_answers_100008_with_the_faq_message(make, clock):
    api, _ = make(max_pending=3)
    ids = [submit(api, text()) for _ in range(3)]
    answer = api.call("phototovideonotrain", text())
    assert answer.code == 100008
    assert answer.message == "超过配额限制: 提交视频制作数量超过限制:3"
    clock.advance(60)  # all three finish
    assert [poll(api, i)["Status"] for i in ids] == ["SUCCESS"] * 3
    assert api.call("phototovideonotrain", text()).code == 0


def test_a_task_waiting_on_its_uploads_holds_no_slot_and_no_place_under_the_limit(make, clock):
    """D52: its render is over and the plans of later tasks were fixed when each was accepted (D41), so a task that
    stays MAKING at 99 until its uploads are answered counts neither against max_pending nor against the slots."""
    api, ctx = make(max_pending=1)
    ctx.store.put_account_settings("test-app", {"concurrency": 1})
    uploading = submit(api, text(VideoStorageS3Url="http://127.0.0.1:9/bucket/v.mp4"))  # no dispatcher: never sent
    assert api.call("phototovideonotrain", text()).code == 100008  # still rendering: it counts
    clock.advance(60)
    assert (poll(api, uploading)["Status"], poll(api, uploading)["Progress"]) == ("MAKING", 99)
    after = submit(api, text())  # rendered: its place is free, and so is its slot
    clock.advance(1.0 + 0.1)  # the pace's queue, and no more: it started at once
    assert poll(api, after)["Status"] == "MAKING" and poll(api, uploading)["Status"] == "MAKING"


def test_shared_tasks_use_up_the_hourly_package(make, clock):
    api, _ = make(hourly_package_seconds=5.0)  # 2 s per task
    submit(api, text(ConcurrencyType="Shared"))
    submit(api, text())  # unspecified: Shared, as the account bought a package but no concurrency
    answer = api.call("phototovideonotrain", text())
    assert answer.code == 100013
    assert "1.0 s left, the task needs 2.0 s" in answer.message


def test_a_package_holds_exactly_the_tasks_that_fit_it(clock, store_spec):
    """Counted in floating point, four tasks of 0.8 s had left 0.7999... s of a 4 s package, and the fifth, which fits
    exactly, was refused: the package is counted in whole milliseconds, as durations are."""
    app = create_app({**CONFIG, "store": store_spec, "hourly_package_seconds": 4.0}, clock=clock)
    api = in_process(app, clock)
    short = text(InputSsml="hello there", ConcurrencyType="Shared")  # two words at 2.5 a second: 0.8 s
    for n in range(5):
        submit(api, short)
        left = app.test_client().get("/__mock__/accounts/test-app").json["balance_left_seconds"]
        assert left == (4000 - 800 * (n + 1)) / 1000
    answer = api.call("phototovideonotrain", short)
    assert answer.code == 100013 and "0.0 s left, the task needs 0.8 s" in answer.message


def test_a_failed_task_gives_its_seconds_back(make, clock):
    api, _ = make(hourly_package_seconds=2.0)
    failed = submit(api, text(), scenario="content_safety")
    assert api.call("phototovideonotrain", text()).code == 100013  # reserved while it runs
    clock.advance(60)
    assert poll(api, failed)["Status"] == "FAIL"
    assert api.call("phototovideonotrain", text()).code == 0


def test_no_package_and_no_concurrency_means_no_submission(make):
    api, _ = make(hourly_package_seconds=None)
    unspecified = api.call("phototovideonotrain", text())
    assert unspecified.code == 100013 and "bought neither concurrency nor an hourly package" in unspecified.message
    assert api.call("phototovideonotrain", text(ConcurrencyType="Shared")).code == 100013
    assert api.call("phototovideonotrain", text(ConcurrencyType="Exclusive")).code == 100014


def test_purchased_concurrency_allows_exclusive_and_adds_slots(make, clock):
    api, ctx = make(exclusive_concurrency=1, hourly_package_seconds=None)
    ids = [submit(api, text()) for _ in range(7)]  # unspecified: Exclusive, as concurrency was bought
    assert {ctx.store.get_task(i).concurrency_type for i in ids} == {"Exclusive"}
    clock.advance(1.0)
    assert [poll(api, i)["Status"] for i in ids] == ["MAKING"] * 6 + ["COMMIT"]  # 5 + 1 bought


def test_accounts_are_independent(make, clock):
    api, ctx = make(max_pending=1)
    other = replace(api, appkey="other-app")
    submit(api, text())
    assert api.call("phototovideonotrain", text()).code == 100008
    assert other.call("phototovideonotrain", text()).code == 0


def test_stuck_tasks_count_against_the_limit_but_hold_no_slot(make, clock):
    api, _ = make(max_pending=10)
    stuck = [submit(api, text(), scenario="stuck_in_queue") for _ in range(5)]
    moving = submit(api, text())
    assert poll(api, moving)["ArrayCount"] == 5  # the stuck ones are queued ahead
    clock.advance(1.0)
    assert poll(api, moving)["Status"] == "MAKING"  # but they hold no slot
    clock.advance(30 * 86400)
    assert {poll(api, i)["Status"] for i in stuck} == {"COMMIT"}
    assert [poll(api, i)["ArrayCount"] for i in stuck] == [0, 1, 2, 3, 4]  # stuck behind each other


def test_a_clock_set_back_makes_finished_tasks_count_again(make, clock):
    """The store keeps what planning needs of an account's finished tasks folded up (D67); a clock set back to
    before they finished unfolds them: they are pending again, and a failed one holds its package seconds again."""
    api, _ = make(max_pending=3, hourly_package_seconds=6.0)  # 2 s of package per task
    start = clock.now()
    submit(api, text(), scenario="content_safety")
    submit(api, text())
    clock.advance(60)
    submit(api, text())  # two finished, the failed one giving its 2 s back: one pending, 4 s held
    clock.set(start + 0.5)  # before either of the first two finished
    assert api.call("phototovideonotrain", text()).code == 100008  # all three pending again
    clock.advance(59.5)
    submit(api, text())  # the first two finished again: 4 s held before this one, 6 after
    assert api.call("phototovideonotrain", text()).code == 100013


def test_an_account_with_many_finished_tasks_plans_against_none_of_them(make, clock, monkeypatch):
    """A submission reads the account's kept backlog, not its tasks: the ten-thousandth costs what the first did."""
    api, ctx = make()
    for _ in range(3):
        submit(api, text())
        clock.advance(60)
    monkeypatch.setattr(type(ctx.store), "tasks", lambda *args, **kwargs: pytest.fail("read every task of the account"))
    tasks = [submit(api, text()) for _ in range(2)]
    assert [ctx.store.get_task(task_id).seq for task_id in tasks] == [3, 4]
