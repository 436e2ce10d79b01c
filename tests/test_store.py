"""The store interface, held to the same rules by each backend: atomic submissions and callback claims across
processes, leases that lapse, records that survive a reopen, and a clock every worker shares."""

from __future__ import annotations

import bisect
import contextlib
import itertools
import json
import multiprocessing
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from ivh_mock.mock_server import create_app
from ivh_mock.mock_server.clock import PastLatest, StoredClock
from ivh_mock.mock_server.store import (NEVER, CallbackAttempt, JournalEntry, JournalLimits, StaleRead, Task,
                                        UploadRecord, open_store)
from ivh_mock.mock_server.store import sqlite as sqlite_store
from ivh_mock.mock_server.store.base import dumps, journal_text, loads

from .conftest import TEXT_PAYLOAD, TIMING, in_process, serving, until

pytestmark = pytest.mark.all_stores


def make_task(task_id: str, appkey: str = "app", seq: int = 1, finish_at: float = 100.0, callback: bool = True,
              **extra) -> Task:
    payload = {"DriverType": "Text", **({"CallbackUrl": "http://127.0.0.1:9/cb"} if callback else {})}
    return Task(task_id=task_id, appkey=appkey, seq=seq, payload=payload, request_id="r-" + task_id,
                submitted_at=0.0, start_at=1.0, finish_at=finish_at, render_seconds=5.0, duration_ms=2000,
                outcome="SUCCESS", **extra)


def attempt(task: Task) -> CallbackAttempt:
    return CallbackAttempt(task_id=task.task_id, appkey=task.appkey, url="http://127.0.0.1:9/cb", at=task.finish_at,
                           body={"TaskId": task.task_id}, status=200)


@pytest.fixture
def store(store_spec):
    return open_store(store_spec, JournalLimits(per_appkey=5, entries=8, bytes=4096, body_bytes=300))


def test_a_record_round_trips_whole(store):
    stuck = make_task("t-stuck", finish_at=NEVER, scenario="stuck_in_queue", photo="ab" * 32)
    store.add_task("app", lambda backlog_at: stuck)
    assert store.get_task("t-stuck") == stuck  # NEVER (infinity) included
    assert store.get_task("nope") is None
    assert store.tasks("app") == [stuck] and store.tasks() == [stuck] and store.tasks("other") == []


def test_a_polled_task_is_decoded_once_and_a_task_written_anew_again(store):
    """getprogress polls one task again and again: each poll takes the Task the first decoded, since a record never
    changes once written; a task written anew under the same id (after a reset) is decoded anew."""
    store.add_task("app", lambda backlog_at: make_task("polled"))
    with store.read_ahead("app", task_id="polled"):
        first = store.get_task("polled")
    for _ in range(2):
        with store.read_ahead("app", task_id="polled"):
            assert store.get_task("polled") is first
    store.reset("app")
    store.add_task("app", lambda backlog_at: make_task("polled", finish_at=200.0))
    with store.read_ahead("app", task_id="polled"):
        assert store.get_task("polled").finish_at == 200.0


def test_decoded_tasks_keep_a_bounded_number():
    from ivh_mock.mock_server.store.base import DecodedTasks

    decoded, texts = DecodedTasks(bound=2), {n: dumps(make_task(f"t{n}")) for n in range(3)}
    first = decoded.task("t0", texts[0])
    assert decoded.task("t0", texts[0]) is first
    decoded.task("t1", texts[1])
    decoded.task("t2", texts[2])  # past the bound: it starts over
    again = decoded.task("t0", texts[0])
    assert again == first and again is not first and len(decoded._seen) == 2


def test_a_tasks_text_kept_is_answered_and_decoded_once_when_asked_for():
    """The Redis store keeps the texts it read ahead or wrote, and their Tasks, in one map: keeping the same text
    again keeps the Task decoded from it; another text, or a task forgotten, is decoded anew."""
    from ivh_mock.mock_server.store.base import DecodedTasks

    decoded, text = DecodedTasks(), dumps(make_task("t"))
    decoded.keep("t", text)
    assert decoded.text("t") == text and decoded.text("other") is None
    first = decoded.task("t", text)
    decoded.keep("t", text)
    assert decoded.task("t", text) is first
    other = dumps(make_task("t", finish_at=200.0))
    decoded.keep("t", other)
    assert decoded.text("t") == other and decoded.task("t", other).finish_at == 200.0
    decoded.forget("t")
    assert decoded.text("t") is None


@pytest.mark.stores("redis")
def test_a_redis_store_on_a_unix_socket_keeps_its_prefix_and_database(redis_server):
    """`unix:///PATH?db=N&prefix=NAME`, the store form the README offers beside redis://: the prefix is the store's,
    the rest of the query redis-py's."""
    import redis

    spec = f"{redis_server.unix_url.replace('db=0', 'db=3')}&prefix=sock"
    over_socket = open_store(spec)
    try:
        over_socket.add_task("app", lambda backlog_at: make_task("t-unix"), journal_entry)
        assert open_store(spec).get_task("t-unix").task_id == "t-unix"
        database = redis.Redis.from_url(redis_server.url.rsplit("/", 1)[0] + "/3", decode_responses=True)
        assert database.exists("sock:task:t-unix") and not database.keys("ivh:*")
    finally:
        over_socket.reset()


@pytest.mark.stores("redis")
def test_a_redis_store_out_of_reach_is_answered_naming_it_not_as_a_fault_of_the_mock(clock, caplog):
    """A Redis that went away answered -101000 'internal error in ivh-mock; the server log has the details', with a
    traceback per request, where a locked SQLite store names its cause (D72)."""
    from ivh_mock.mock_server.serving.testing import RedisServer

    with RedisServer() as gone:
        app = create_app({"background": False, "store": f"{gone.url}?prefix=gone"}, clock=clock)
        api = in_process(app, clock)
        assert api.call("getprogress", {"TaskId": "0" * 32}).code == 110006
    answer = api.call("getprogress", {"TaskId": "0" * 32})  # its server stopped
    assert answer.code == -101000 and answer.message == (
        f"internal error in ivh-mock: the Redis store at 127.0.0.1:{gone.port} cannot be reached (ConnectionError); "
        "retry")
    assert "Traceback" not in caplog.text and f"127.0.0.1:{gone.port} cannot be reached" in caplog.text
    settings = app.test_client().put("/__mock__/accounts/x", json={"accesstoken": "t"})
    assert settings.status_code == 500 and "cannot be reached" in settings.get_json()["error"]["message"]


def test_a_redis_store_that_wants_a_password_says_so_and_how_to_give_it():
    """A Redis with `requirepass` was said in its own words ("HELLO must be called with the client already
    authenticated, otherwise the HELLO AUTH <user> <pass> option can be used ..."), and once serving, a password set
    since was "cannot be reached (AuthenticationError)" of a Redis that answers."""
    import redis
    from ivh_mock.mock_server.serving.testing import RedisServer
    from ivh_mock.mock_server.store import open_store

    with RedisServer() as server:
        store = open_store(f"{server.url}?prefix=pw")
        redis.Redis.from_url(server.url).config_set("requirepass", "s3cret")
        where = f"127.0.0.1:{server.port}"
        for url, said in ((server.url, "asks for a password, which the store's URL does not give"),
                          (server.url.replace("//", "//:wrong@"), "refuses the password the store's URL gives")):
            with pytest.raises(ValueError) as refused:
                open_store(url)
            assert str(refused.value) == (f"the Redis store at {where} {said}: give its password there, "
                                          f"redis://:PASSWORD@HOST:PORT/DB (or redis://USER:PASSWORD@...)")
            assert "wrong" not in str(refused.value)
        assert store.outage(redis.AuthenticationError("invalid username-password pair")).startswith(
            f"the Redis store at {where} asks for a password")
        right = open_store(server.url.replace("//", "//:s3cret@") + "?prefix=pw")  # the URL's password: it serves
        assert right.tasks() == []
        right.close()
        store.close()


def test_tasks_with_a_limit_are_the_newest_in_submission_order(store):
    for n in range(5):
        store.add_task("a" if n % 2 else "b", lambda backlog_at, n=n: make_task(f"t{n}", "a" if n % 2 else "b", seq=n))
    assert [t.task_id for t in store.tasks(limit=3)] == ["t2", "t3", "t4"]
    assert [t.task_id for t in store.tasks("b", limit=2)] == ["t2", "t4"]
    assert [t.task_id for t in store.tasks("a", limit=10)] == ["t1", "t3"]
    assert store.tasks(limit=0) == [] and store.tasks("", limit=5) == [] and store.tasks("nobody", limit=1) == []


def test_media_refs_name_each_tasks_files_and_when_it_finishes(store):
    store.add_task("a", lambda backlog_at: make_task("t1", "a", finish_at=50.0, photo="p1", video="v1"))
    store.add_task("b", lambda backlog_at: make_task("t2", "b", finish_at=NEVER, photo="p1", audio="a2"))
    assert sorted(store.media_refs()) == [(50.0, "p1", "", "v1"), (NEVER, "p1", "a2", "")]
    store.reset("a")
    assert store.media_refs() == [(NEVER, "p1", "a2", "")]


def test_a_refused_submission_keeps_nothing(store):
    def refuse(backlog_at):
        raise ValueError("over quota")

    with pytest.raises(ValueError):
        store.add_task("app", refuse)
    assert store.tasks() == []


def test_build_sees_the_accounts_backlog_of_earlier_tasks(store):
    seen = []

    def build(n, appkey="app", finish_at=100.0):
        def plan(backlog_at):
            backlog = backlog_at(60.0)
            seen.append((backlog.next_seq, [entry[1] for entry in backlog.live], backlog.held_ms))
            return make_task(f"{appkey}{n}", appkey, seq=backlog.next_seq, finish_at=finish_at)
        return plan

    store.add_task("app", build(1, finish_at=50.0))  # finished by 60: settled, its 2 s of package still held
    store.add_task("app", build(2))
    store.add_task("app", build(3))
    store.add_task("other", build(1, "other"))
    assert seen == [(0, [], 0), (1, [], 2000), (2, [100.0], 4000), (0, [], 0)]
    assert [(t.task_id, t.seq) for t in store.tasks("app")] == [("app1", 0), ("app2", 1), ("app3", 2)]


# What another version may have left: no backlog at all, or one of another form (fields that mean something else).
OTHER_FORM = '{"since": 99.0, "last": "t1", "next_seq": 7, "live": [[1.0, 2.0, 3, false]]}'


@pytest.mark.stores("sqlite", "redis")  # a memory store starts empty
@pytest.mark.parametrize("left", ["none", "another form"])
def test_a_store_written_by_another_version_plans_against_its_tasks(store_spec, store, left):
    """A database or Redis written by another version holds tasks but no backlog this version can read: the first
    submission makes the account's backlog from its tasks and keeps it."""
    for n in range(2):
        store.add_task("app", lambda backlog_at, n=n: make_task(f"t{n}", seq=n))
    if store_spec.startswith("sqlite:"):
        if left == "none":
            store._db().execute("DROP TABLE backlogs")  # reopening makes it anew, empty
        else:
            store._db().execute("UPDATE backlogs SET record = ?", (OTHER_FORM,))
    elif left == "none":
        store.redis.delete(store._key("backlog", "app"))
    else:
        store.redis.set(store._key("backlog", "app"), OTHER_FORM)
    reopened = open_store(store_spec)
    seen = []

    def build(backlog_at):
        backlog = backlog_at(60.0)
        seen.append((backlog.next_seq, backlog.last, len(backlog.live), backlog.held_ms))
        return make_task(f"t{backlog.next_seq}", seq=backlog.next_seq)

    reopened.add_task("app", build)
    reopened.add_task("app", build)  # now from the backlog kept
    assert seen == [(2, "t1", 2, 4000), (3, "t2", 3, 6000)]


def test_count_waiting_counts_earlier_tasks_of_the_account_not_yet_started(store):
    starts = [5.0, 10.0, NEVER, 20.0]
    for seq, start in enumerate(starts):
        task = replace(make_task(f"t{seq}", seq=seq), start_at=start)
        store.add_task("app", lambda backlog_at, task=task: task)
    store.add_task("other", lambda backlog_at: replace(make_task("o", "other", seq=0), start_at=99.0))
    assert store.count_waiting("app", 3, now=0.0) == 3
    assert store.count_waiting("app", 3, now=7.0) == 2  # t0 started
    assert store.count_waiting("app", 4, now=15.0) == 2  # the stuck one and t3, not yet started
    assert store.count_waiting("app", 3, now=15.0) == 1  # only the stuck one is before t3
    assert store.count_waiting("app", 0, now=0.0) == 0
    assert store.count_waiting("nobody", 5, now=0.0) == 0


def test_unstarted_lists_what_count_waiting_counts_for_every_task_at_once(store):
    starts = [5.0, 10.0, NEVER, 20.0, 3.0]
    for seq, start in enumerate(starts):
        task = replace(make_task(f"t{seq}", seq=seq, finish_at=start + 5), start_at=start)
        store.add_task("app", lambda backlog_at, task=task: task)
    store.add_task("other", lambda backlog_at: replace(make_task("o", "other", seq=0), start_at=99.0))
    for now in (0.0, 4.0, 7.0, 15.0, 30.0):
        unstarted = store.unstarted("app", now)
        assert unstarted == sorted(seq for seq, start in enumerate(starts) if now < start), now
        assert [bisect.bisect_left(unstarted, seq) for seq in range(6)] == \
            [store.count_waiting("app", seq, now) for seq in range(6)]
    assert store.unstarted("nobody", 0.0) == []
    # planned at 60, the account's kept backlog has settled all but the stuck one: a clock set back to 0 reads the tasks
    store.add_task("app", lambda backlog_at: backlog_at(60.0) and replace(make_task("t5", seq=5), start_at=70.0))
    assert store.unstarted("app", 0.0) == [0, 1, 2, 3, 4, 5] and store.unstarted("app", 60.0) == [2, 5]


@pytest.mark.stores("redis")  # the other stores count with a local scan
def test_a_redis_array_count_reads_the_backlog_not_the_tasks_before(store_spec, store, monkeypatch):
    """A queued task's ArrayCount, asked for on every getprogress, comes from the account's backlog: its live tasks
    include every one not started yet. The tasks are read only when the backlog cannot serve."""
    for seq, start in enumerate([5.0, 10.0, 20.0]):
        task = replace(make_task(f"t{seq}", seq=seq, finish_at=start + 5), start_at=start)
        store.add_task("app", lambda backlog_at, task=task: task)
    real = store._load
    monkeypatch.setattr(store, "_load", lambda ids: pytest.fail("read the tasks before"))
    assert [store.count_waiting("app", 3, now) for now in (0.0, 7.0, 12.0, 30.0)] == [3, 2, 1, 0]
    store.add_task("app", lambda backlog_at: backlog_at(30.0) and make_task("t3", seq=3))  # all three settled at 30
    reads = []
    monkeypatch.setattr(store, "_load", lambda ids: reads.append(len(ids)) or real(ids))
    assert store.count_waiting("app", 3, now=12.0) == 1 and reads == [3]  # before they finished: from the tasks


def test_the_journal_keeps_the_newest_entries_per_appkey(store):
    for n in range(8):
        store.record(JournalEntry(at=float(n), appkey="app", operation="getprogress", request_id=f"r{n}", code=0,
                                  message=""))
    store.record(JournalEntry(at=3.5, appkey="b", operation="getprogress", request_id="b", code=1, message="no"))
    assert [e.request_id for e in store.journal("app")] == ["r3", "r4", "r5", "r6", "r7"]
    assert [e.request_id for e in store.journal()] == ["r3", "b", "r4", "r5", "r6", "r7"]


def test_a_callback_is_due_once_finished_and_gone_once_sent(store):
    task = store.add_task("app", lambda backlog_at: make_task("t1", finish_at=100.0))
    store.add_task("app", lambda backlog_at: make_task("t2", seq=2, finish_at=50.0, callback=False))
    store.add_task("app", lambda backlog_at: make_task("t3", seq=3, finish_at=NEVER))
    assert store.due_callbacks(99.9) == []
    assert store.due_callbacks(1e12) == [task]
    assert store.claim_callback("t1", 60) is True
    assert store.claim_callback("t1", 60) is False  # held by a live lease
    assert store.due_callbacks(1e12) == []
    store.record_callback(attempt(task))
    assert store.callbacks("app") == [attempt(task)]
    assert store.claim_callback("t2", 60) is False  # no CallbackUrl: nothing to claim


def test_the_delivery_log_gives_its_newest_entries_alone_oldest_first(store, monkeypatch):
    """GET /__mock__/callbacks?limit=10 read the whole log (kept until a reset) and kept the last ten of it."""
    tasks = [store.add_task(appkey, lambda backlog_at, n=n, appkey=appkey: make_task(
        f"t{n}", appkey=appkey, seq=n, finish_at=float(10 + n))) for n, appkey in enumerate("abaab")]
    for task in tasks:
        store.record_callback(attempt(task))
    assert [a.task_id for a in store.callbacks("a", limit=2)] == ["t2", "t3"]
    assert [a.task_id for a in store.callbacks(limit=3)] == ["t2", "t3", "t4"]
    assert [a.task_id for a in store.callbacks(limit=99)] == [a.task_id for a in store.callbacks()] == \
        ["t0", "t1", "t2", "t3", "t4"]
    # the newest by the mock's clock, whatever the order they were recorded in (the clock set back between): an
    # account's last recorded are not its newest
    late = store.add_task("b", lambda backlog_at: make_task("t5", appkey="b", seq=5, finish_at=5.0))
    store.record_callback(attempt(late))
    assert [a.task_id for a in store.callbacks(limit=1)] == ["t4"]
    if hasattr(store, "_db"):  # SQLite: what is read is what is given
        decoded = []
        real = sqlite_store.loads
        monkeypatch.setattr(sqlite_store, "loads", lambda kind, text: decoded.append(kind) or real(kind, text))
        store.callbacks(limit=2)
        assert len(decoded) == 2


def test_a_tasks_deliveries_are_read_alone_and_forgotten_with_it(store, store_spec, monkeypatch):
    """A task's page (GET /__mock__/tasks/<id>) read its account's whole delivery log for its deliveries: 50,000
    of them decoded for each look at one task."""
    tasks = [store.add_task(appkey, lambda backlog_at, n=n, appkey=appkey: make_task(
        f"t{n}", appkey=appkey, seq=n, finish_at=float(10 + n))) for n, appkey in enumerate("abaa")]
    for task in tasks[:3]:
        store.record_callback(attempt(task))
    assert [store.callbacks_of(task) for task in tasks] == [[attempt(task)] for task in tasks[:3]] + [[]]
    again = replace(attempt(tasks[0]), status=500)  # a lapsed claim's holder recorded one as well: both are shown
    store.record_callback(again)
    assert store.callbacks_of(tasks[0]) == [attempt(tasks[0]), again]
    if hasattr(store, "_db"):  # SQLite: what is decoded is the task's own
        decoded = []
        real = sqlite_store.loads
        monkeypatch.setattr(sqlite_store, "loads", lambda kind, text: decoded.append(kind) or real(kind, text))
        assert store.callbacks_of(tasks[2]) == [attempt(tasks[2])] and decoded == [CallbackAttempt]
    if store_spec.startswith("redis"):
        # deliveries an older mock recorded (before this one, or beside it on the same Redis): in the log alone
        store.redis.hdel(store._key("callback-of"), "t0", "t2")
        assert [store.callbacks_of(task) for task in tasks] == [[attempt(tasks[0]), again], [attempt(tasks[1])],
                                                                 [attempt(tasks[2])], []]
        # a callback not sent yet is not looked for in the log, nor one that never will be, nor none
        monkeypatch.setattr(store.redis, "lrange", lambda *args: pytest.fail("read the account's whole log"))
        for unsent in (tasks[3], replace(tasks[3], finish_at=NEVER), replace(tasks[3], payload={"DriverType": "T"})):
            assert store.callbacks_of(unsent) == []
        monkeypatch.undo()
    store.reset("a")
    assert store.callbacks_of(tasks[0]) == [] and store.callbacks_of(tasks[1]) == [attempt(tasks[1])]
    store.reset()
    assert store.callbacks_of(tasks[1]) == []


def test_two_deliveries_that_read_the_same_are_both_kept(store):
    """On a frozen clock a second real delivery (a lapsed claim's holder sent it too) can read as the first: same
    time, latency rounded alike, same answer. Both were sent, so both are shown."""
    task = store.add_task("app", lambda backlog_at: make_task("t1"))
    for _ in range(2):
        store.record_callback(attempt(task))
    assert store.callbacks_of(task) == [attempt(task)] * 2 and store.callbacks("app") == [attempt(task)] * 2


def test_a_sqlite_store_opens_with_a_delivery_that_is_no_json(tmp_path):
    """The index by task read every record of the delivery log as the store opened: one that is not JSON (a database
    of another program's making) stopped the store from opening at all."""
    path = tmp_path / "store.sqlite3"
    sqlite_store.SqliteStore(str(path)).close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("DROP INDEX callbacks_by_task_id")  # as a database from before it
        db.execute("INSERT INTO callbacks (appkey, at, record) VALUES ('a', 1, '{not json')")
    store = sqlite_store.SqliteStore(str(path))
    task = store.add_task("a", lambda backlog_at: make_task("t1", appkey="a"))
    store.record_callback(attempt(task))
    assert store.callbacks_of(task) == [attempt(task)]
    store.close()


def test_a_callback_sent_while_its_task_was_reset_stays_forgotten(store):
    """A callback delivered during a reset was recorded after it: the forgotten account came back in the listings,
    and on Redis its log survived every later reset (its appkey was in no set a reset reads)."""
    for reset in ("app", None):
        task = store.add_task("app", lambda backlog_at: make_task("t1"))
        assert store.claim_callback("t1", 60) is True
        store.reset(reset)  # while the callback is on its way
        store.record_callback(attempt(task))
        assert store.callbacks("app") == [] and store.callbacks() == [] and "app" not in store.appkeys()
        store.reset(None)


def test_a_lapsed_claim_is_claimed_again_but_a_sent_callback_never(store):
    task = store.add_task("app", lambda backlog_at: make_task("t1"))
    assert store.claim_callback("t1", 0.2) is True
    time.sleep(0.3)  # its holder "died": the lease lapses
    assert store.due_callbacks(1e12) == [task]
    assert store.claim_callback("t1", 0.2) is True
    store.record_callback(attempt(task))
    time.sleep(0.3)
    assert store.due_callbacks(1e12) == [] and store.claim_callback("t1", 0.2) is False


def test_uploads_are_owed_once_rendered_claimed_with_a_lease_and_recorded_for_good(store):
    storage = {"VideoStorageS3Url": "http://127.0.0.1:9/b/v.mp4", "SubtitleStorageS3Url": "http://127.0.0.1:9/b/v.srt"}
    owing = make_task("t-up", callback=False, finish_at=50.0)
    owing = replace(owing, payload={**owing.payload, **storage})
    store.add_task("app", lambda backlog_at: owing)
    store.add_task("app", lambda backlog_at: replace(make_task("t-none", seq=2), payload={"DriverType": "Text"}))
    failing = replace(make_task("t-fail", seq=3), outcome="FAIL", payload={**owing.payload})
    store.add_task("app", lambda backlog_at: failing)  # a task planned to fail owes nothing
    assert owing.uploads == [("VideoStorageS3Url", storage["VideoStorageS3Url"], "video"),
                             ("SubtitleStorageS3Url", storage["SubtitleStorageS3Url"], "subtitles")]
    assert store.due_uploads(49.0) == [] and store.due_uploads(50.0) == [owing]
    assert store.claim_upload("t-up", 0.2) is True and store.claim_upload("t-up", 0.2) is False
    assert store.due_uploads(50.0) == [] and store.due_uploads(50.0, claimed=True) == [owing]
    time.sleep(0.3)  # the holder "died": the lease lapses
    assert store.claim_upload("t-up", 0.2) is True
    record = UploadRecord(task_id="t-up", appkey="app", at=51.0, ok=False, files=[{"field": "VideoStorageS3Url"}],
                          fail_message="Payload.VideoStorageS3Url (http://127.0.0.1:9/b/v.mp4) answered HTTP 403")
    assert store.upload_of("t-up") is None
    store.record_upload(record)
    time.sleep(0.3)
    assert store.upload_of("t-up") == record
    assert store.due_uploads(1e12, claimed=True) == [] and store.claim_upload("t-up", 0.2) is False
    store.reset("app")
    assert store.upload_of("t-up") is None


def test_reset_of_one_appkey_leaves_the_others(store):
    store.add_task("a", lambda backlog_at: make_task("ta", "a"))
    store.add_task("b", lambda backlog_at: make_task("tb", "b"))
    store.put_account_settings("a", {"scenario": "slow"})
    store.put_account_settings("a", {"max_pending": 3})
    assert store.account_settings("a") == {"scenario": "slow", "max_pending": 3}
    assert store.appkeys() == ["a", "b"]
    store.reset("a")
    assert store.get_task("ta") is None and store.account_settings("a") == {} and store.due_callbacks(1e12) == \
        [store.get_task("tb")]
    assert store.appkeys() == ["b"]
    store.update_clock_state(lambda _: {"base": 5.0, "anchor": 5.0, "frozen": True})
    store.reset()
    assert store.tasks() == [] and store.appkeys() == []
    assert store.clock_state() == {"base": 5.0, "anchor": 5.0, "frozen": True}  # a reset leaves the clock alone


@pytest.mark.stores("sqlite", "redis")  # a memory store lives in one process
def test_the_clock_is_shared_by_every_opening_of_the_store(store_spec, store):
    first, second = StoredClock(store), StoredClock(open_store(store_spec))
    first.freeze()
    first.set(1_000.0)
    first.advance(30)
    assert second.frozen and second.now() == 1_030.0
    second.freeze(False)
    time.sleep(0.05)
    assert 1_030.04 < first.now() < 1_031


def test_clock_moves_made_at_once_through_several_openings_are_all_kept(store_spec, store):
    """Four threads, each through an opening of its own (workers or hosts sharing the store; one store in memory),
    advance the clock 25 times by a second each: each move reads and writes the state in one step, so none is lost
    (each read it, changed it and wrote it back, and a move made between the read and the write was undone)."""
    StoredClock(store).freeze()
    StoredClock(store).set(1_000.0)
    openings = [store] * 4 if store_spec == "memory" else [open_store(store_spec) for _ in range(4)]
    barrier = threading.Barrier(4)

    def advance(opening) -> None:
        clock = StoredClock(opening)
        barrier.wait(timeout=30)
        for _ in range(25):
            clock.advance(1)

    threads = [threading.Thread(target=advance, args=(opening,)) for opening in openings]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert StoredClock(store).frozen and StoredClock(store).now() == 1_100.0
    with pytest.raises(PastLatest):  # judged against the state kept, whoever moved it last: nothing moves
        StoredClock(openings[1]).advance(50, latest=1_120.0)
    assert StoredClock(store).now() == 1_100.0 and StoredClock(store).advance(20, latest=1_120.0) == 1_120.0


@pytest.mark.stores("sqlite", "redis")  # a memory store lives in one process
def test_records_survive_a_reopen(store_spec, store):
    task = store.add_task("app", lambda backlog_at: make_task("t1"))
    store.claim_callback("t1", 60)
    reopened = open_store(store_spec)
    assert reopened.get_task("t1") == task
    assert reopened.claim_callback("t1", 60) is False  # the claim is in the store, not in the process


def _submit_then_claim(spec: str, worker: int, count: int, barrier, queue) -> None:
    store = open_store(spec)
    for n in range(count):
        store.add_task("shared", lambda backlog_at: make_task(f"w{worker}-{n}", "shared",
                                                              seq=backlog_at(0.0).next_seq))
    barrier.wait(timeout=60)  # every task exists; now all four race for every claim
    queue.put([store.claim_callback(f"w{w}-{n}", 60) for w in range(4) for n in range(count)])


@pytest.mark.stores("sqlite", "redis")  # a memory store lives in one process
def test_processes_sharing_the_store_never_plan_against_a_stale_account(store_spec, store):
    """Four processes submit at once: every task sees all earlier ones (seq has no gaps or repeats), and each
    callback is claimed by exactly one process."""
    # forked from a process that imported this module once (a new interpreter for each had cost 1.1 s of CPU), and
    # has no thread of the test process's
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    queue, barrier = context.Queue(), context.Barrier(4)
    workers = [context.Process(target=_submit_then_claim, args=(store_spec, w, 25, barrier, queue)) for w in range(4)]
    for worker in workers:
        worker.start()
    claims = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert sorted(t.seq for t in store.tasks("shared")) == list(range(100))
    assert [sum(column) for column in zip(*claims)] == [1] * 100


def test_a_redis_url_keeps_its_other_query_parameters(redis_server):
    from ivh_mock.mock_server.store.redis import RedisStore

    host_port = redis_server.url.removeprefix("redis://").split("/", 1)[0]
    store = RedisStore(f"redis://{host_port}?db=2&prefix=q")
    assert store.prefix == "q:" and store.redis.connection_pool.connection_kwargs["db"] == 2
    store.close()


def test_a_redis_reset_leaves_a_mock_under_a_longer_prefix_alone(redis_server):
    """Mocks on `?prefix=ci` and `?prefix=ci:job1` share one database: a reset of the first touches none of the
    second's keys (its tasks, journal, callbacks, settings, leases, clock)."""
    from ivh_mock.mock_server.store.redis import RedisStore

    base = f"r{time.monotonic_ns()}"
    first = RedisStore(f"{redis_server.url}?prefix={base}")
    second = RedisStore(f"{redis_server.url}?prefix={base}:job1")
    for store, name in ((first, "a"), (second, "b")):
        task = store.add_task(name, lambda backlog_at, name=name: make_task(f"t-{name}", name))
        store.record(JournalEntry(at=1.0, appkey=name, operation="getprogress", request_id=name, code=0, message=""))
        store.put_account_settings(name, {"max_pending": 3})
        store.claim_callback(task.task_id, 60)
        store.update_clock_state(lambda _: {"base": 5.0, "anchor": 5.0, "frozen": True})
    second.record_callback(attempt(second.get_task("t-b")))
    keys_before = sorted(second.redis.scan_iter(f"{base}:job1:*"))
    first.reset()
    assert first.tasks() == [] and first.appkeys() == [] and first.clock_state() is not None
    assert sorted(second.redis.scan_iter(f"{base}:job1:*")) == keys_before
    assert [t.task_id for t in second.tasks()] == ["t-b"] and second.appkeys() == ["b"]
    assert second.clock_state() == {"base": 5.0, "anchor": 5.0, "frozen": True}
    second.reset()
    assert sorted(second.redis.scan_iter(f"{base}*")) == [f"{base}:clock", f"{base}:job1:clock"]  # nothing left over
    first.close(), second.close()


def note(n: int, appkey: str, body=None, authenticated: bool = True) -> JournalEntry:
    return JournalEntry(at=float(n), appkey=appkey, operation="getprogress", request_id=f"r{n}", code=1,
                        message="refused", body=body, authenticated=authenticated)


def test_a_journaled_body_keeps_what_json_reads_and_a_fast_decoder_might_not(store):
    """A body may hold an integer past 64 bits, a float's extremes and any text; the journal gives back the same
    (orjson, for one, reads such an integer as a float)."""
    body = {"Payload": {"Big": 10 ** 30, "Negative": -(2 ** 64), "Tiny": 5e-324, "Huge": 1.7976931348623157e308,
                        "Text": "你好 \U0001f600 \u2028", "Nested": [[{"a": None, "b": True}]]}}
    store.record(note(0, "app", body=body))
    assert store.journal("app")[-1].body == body


def test_the_journal_is_bounded_as_a_whole_in_entries_and_bytes(store):
    """The per-appkey bound alone let distinct appkeys grow the journal without end (5 entries, 4096 bytes and
    bodies of 300 bytes here)."""
    for n in range(30):
        store.record(note(n, f"k{n}"))
    assert [e.request_id for e in store.journal()] == [f"r{n}" for n in range(22, 30)]  # the newest 8 of all
    store.reset()
    for n in range(20):
        store.record(note(n, f"b{n}", body={"Payload": {"TaskId": "y" * 1000}}))
    kept = store.journal()
    assert kept[-1].request_id == "r19" and 4 <= len(kept) < 8
    assert sum(len(dumps(entry).encode()) for entry in kept) <= 4096
    assert kept[-1].body == '{"Payload":{"TaskId":"' + "y" * 278  # the start of the body, still readable
    assert kept[-1].note == "body cut to its first 300 of 1025 bytes of JSON"
    assert store.journal(limit=2) == kept[-2:] and store.journal("b19", limit=5) == kept[-1:]


@pytest.mark.parametrize("at, message", [(1.0, "refused"), (1e-05, "caf\u00e9 \u2028 \"quoted\""),
                                         (1e16, "lone \udc80 surrogate")])
def test_a_journal_entry_is_kept_as_the_json_of_its_fields(at, message):
    entry = replace(note(1, "k", body={"Payload": {"Text": "你好", "Speed": 1.5}}), at=at, message=message)
    text = journal_text(entry, JournalLimits())
    assert text == dumps(entry)  # the very text of one json.dumps of the whole entry, its fields in their order
    assert loads(JournalEntry, text) == entry
    assert journal_text(entry, JournalLimits(body_bytes=41)) == text  # the entry is longer, its body is not
    cut = journal_text(entry, JournalLimits(body_bytes=10))
    assert cut == dumps(replace(entry, body='{"Payload"', note="body cut to its first 10 of 41 bytes of JSON"))


def _typed(value):
    """`value` with each leaf paired with its type, so that 1 and 1.0 and True differ (tuples read back as lists)."""
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_typed(item) for item in value]
    return type(value).__name__, value


RECORD_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.integers(-(2 ** 70), 2 ** 70) | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner) | st.dictionaries(st.text(max_size=4), inner,
                                                                                          max_size=3),
    max_leaves=10)


@settings(max_examples=300, deadline=None)
@given(value=RECORD_VALUES)
@example(value={"start_at": NEVER, "task_id": None})  # a stuck task's record, with an empty field
@example(value=[None, -NEVER, 1e-05, 1e16, 2 ** 64, -(2 ** 63) - 1])
def test_a_record_written_and_read_by_orjson_where_it_can_is_what_json_reads_back(value):
    """Records are written (`_json`) and read (`decoded`) by orjson where its text reads back the same, by json
    elsewhere: Infinity (NEVER), integers past 64 bits and 19 digits or more. The text may spell a float otherwise
    (0.00001 for 1e-05), never another value."""
    from ivh_mock.mock_server.store.base import _ENCODER, _json
    from ivh_mock.spec.jsontext import decoded

    assert _typed(decoded(_json(value))) == _typed(json.loads(_ENCODER.encode(value)))


def test_an_integer_past_64_bits_is_read_back_as_that_integer(store):
    """A request body may hold any integer JSON allows, and the journal keeps the body: read back, each is the same
    integer, not the float nearest it (which orjson, reading records, would give)."""
    body = {"Header": {"N": 2**64, "M": -2**63 - 1}, "Payload": {"Big": 10**25}}
    store.record(note(1, "big", body=body))
    kept = store.journal("big")[0].body
    assert kept == body
    assert {type(value) for value in (kept["Header"]["N"], kept["Header"]["M"], kept["Payload"]["Big"])} == {int}


def test_a_request_refused_before_authentication_makes_no_account_but_stays_in_the_journal(store):
    store.record(note(1, "stranger", authenticated=False))
    store.record(note(2, "member"))
    assert store.appkeys() == ["member"]
    assert [e.request_id for e in store.journal("stranger")] == ["r1"]  # why it was refused can still be read
    store.reset("stranger")
    assert [e.request_id for e in store.journal()] == ["r2"]
    store.record(note(3, "member"))
    store.record(note(4, "member"))
    assert [e.request_id for e in store.journal()] == ["r2", "r3", "r4"]  # the bounds were given back by the reset


def test_a_sqlite_database_from_before_the_journal_bounds_is_taken_over(tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE journal (id INTEGER PRIMARY KEY AUTOINCREMENT, appkey TEXT NOT NULL, "
                   "record TEXT NOT NULL)")
        db.execute("INSERT INTO journal (appkey, record) VALUES (?, ?)", ("old", dumps(note(1, "old"))))
    store = open_store(f"sqlite:{path}", JournalLimits(entries=2))
    assert store.appkeys() == ["old"] and [e.request_id for e in store.journal()] == ["r1"]
    store.record(note(2, "new"))
    store.record(note(3, "new"))
    assert [e.request_id for e in store.journal()] == ["r2", "r3"]


def test_a_sqlite_database_of_another_programs_is_refused_untouched(tmp_path):
    """`--store sqlite:app.db` naming an app's own database had added the store's 25 tables to it and set its journal
    to WAL."""
    path = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.execute("CREATE TABLE users (id INTEGER)")
        db.commit()
    before = path.read_bytes()
    with pytest.raises(sqlite3.DatabaseError, match=r"^it is a database of another program's \(its tables: users\), "
                                                    r"which ivh-mock would add its own to: give ivh-mock a database "
                                                    r"file of its own$"):
        open_store(f"sqlite:{path}")
    assert path.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["app.db"]
    (tmp_path / "empty.db").touch()  # an empty file is a new database
    open_store(f"sqlite:{tmp_path / 'empty.db'}").close()


def test_a_sqlite_journal_from_before_the_counts_per_appkey_is_counted_when_opened(tmp_path):
    path = tmp_path / "journal.sqlite3"
    store = open_store(f"sqlite:{path}", JournalLimits(per_appkey=3))
    for n in (0, 1, 3):
        store.record(note(n, "a"))
    store.record(note(2, "b"))
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:  # as a version without the counts left the file
        db.executescript("DROP TRIGGER journal_counted; DROP TRIGGER journal_uncounted; DROP TABLE journal_counts;")
    store = open_store(f"sqlite:{path}", JournalLimits(per_appkey=3))
    store.record(note(4, "a"))
    store.record(note(5, "a"))
    assert [e.request_id for e in store.journal("a")] == ["r3", "r4", "r5"]
    assert [e.request_id for e in store.journal()] == ["r2", "r3", "r4", "r5"]
    store.close()
    store = open_store(f"sqlite:{path}", JournalLimits(per_appkey=1))  # a smaller bound drops all past it at once
    store.record(note(6, "a"))
    assert [e.request_id for e in store.journal()] == ["r2", "r6"]
    store.close()


def test_a_sqlite_journal_keeps_no_count_of_an_appkey_whose_entries_are_all_gone(tmp_path):
    """Each appkey's count of journal entries goes with its last entry: requests under ever new appkeys (refused ones
    included) must not grow the database past the journal's bounds."""
    path = tmp_path / "journal.sqlite3"
    store = open_store(f"sqlite:{path}", JournalLimits(per_appkey=2, entries=3))
    for n in range(40):
        store.record(note(n, f"appkey-{n}", authenticated=False))
    store.record(note(40, "kept"))
    store.reset("kept")
    store.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("SELECT appkey, entries FROM journal_counts ORDER BY appkey").fetchall() == [
            ("appkey-38", 1), ("appkey-39", 1)]


class _NotingConnection:
    """A SQLite connection that notes the start of each statement run through it (sqlite3's type cannot be patched)."""

    def __init__(self, db: sqlite3.Connection):
        self.db, self.statements = db, []

    def execute(self, sql: str, *args):
        self.statements.append(" ".join(sql.split()[:4]))
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str):
        return getattr(self.db, name)


@pytest.mark.stores("sqlite")
def test_a_sqlite_request_reads_ahead_in_one_statement_and_journals_in_one_more(app, api, clock):
    """Each statement is a call into SQLite during which a served worker's other threads may take the interpreter's
    lock (D48): a request reads the clock, its account's settings and (a getprogress) its task in one, and its own
    journal entry goes in by one, its size read by another; an accepted submission's task and entry share one
    transaction."""
    store = app.extensions["ivh_mock"].store
    noted = store._local.db = _NotingConnection(store._db())  # the test client answers on this thread
    store.put_account_settings(api.appkey, {"scenario": "success"})
    noted.statements.clear()
    submitted = api.call("phototovideonotrain", TEXT_PAYLOAD)
    assert submitted.code == 0
    assert noted.statements == ["SELECT (SELECT value FROM", "BEGIN IMMEDIATE", "SELECT (SELECT task_id FROM",
                                "INSERT OR REPLACE INTO", "INSERT INTO tasks (task_id,",
                                "INSERT INTO journal_intake (appkey,", "SELECT entries, bytes FROM", "COMMIT"]
    clock.advance(3600)
    noted.statements.clear()
    polled = api.call("getprogress", {"TaskId": submitted.payload["TaskId"]})
    assert polled.code == 0 and polled.payload["Status"] == "SUCCESS"
    assert noted.statements == ["SELECT (SELECT value FROM", "INSERT INTO journal_intake (appkey,",
                                "SELECT entries, bytes FROM"]
    assert [entry.operation for entry in store.journal(api.appkey)] == ["phototovideonotrain", "getprogress"]
    assert store.appkeys() == [api.appkey] and store.account_settings(api.appkey) == {"scenario": "success"}


@pytest.mark.stores("sqlite")
def test_a_sqlite_store_locked_by_another_program_answers_at_once_saying_so(store_spec, clock, monkeypatch):
    """Another program holds the database's write lock (a `sqlite3` shell in BEGIN IMMEDIATE). Every request must
    write (its journal entry): each waited SQLite's 30 s and answered a bare internal error, one after another, so
    the k-th waited k times as long, and nothing else the worker's threads had to do got done meanwhile."""
    from ivh_mock.mock_server.store import sqlite as sqlite_store

    monkeypatch.setattr(sqlite_store, "BUSY_SECONDS", 0.5)
    app = create_app({**TIMING, "background": False, "store": store_spec}, clock=clock)
    submitted = in_process(app, clock).call("phototovideonotrain", TEXT_PAYLOAD)
    holder = sqlite3.connect(store_spec.removeprefix("sqlite:"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('held', 'by another program')")
    answers: list = []

    def poll() -> None:  # each thread with a connection of its own, as a worker's threads have
        started = time.monotonic()
        answers.append((in_process(app, clock).call("getprogress", {"TaskId": submitted.payload["TaskId"]}),
                        time.monotonic() - started))

    try:
        pollers = [threading.Thread(target=poll) for _ in range(4)]
        for poller in pollers:
            poller.start()
        for poller in pollers:
            poller.join(timeout=30)
        settings = app.test_client().put("/__mock__/accounts/other", json={"max_pending": 3})
    finally:
        holder.execute("ROLLBACK")
    assert len(answers) == 4
    for answer, seconds in answers:
        assert answer.status == 500 and answer.code == -101000 and seconds < 3, (answer, seconds)
        assert "locked by another program: nothing could be written for 0.5 s" in answer.message
    assert settings.status_code == 500 and "locked by another program" in settings.get_json()["error"]["message"]
    assert in_process(app, clock).call("getprogress", {"TaskId": submitted.payload["TaskId"]}).code == 0


@pytest.mark.stores("sqlite")
@pytest.mark.parametrize("how", ["deleted", "replaced"])
def test_a_sqlite_database_deleted_or_replaced_while_serving_is_said_not_written_to_unseen(store_spec, clock, how):
    """Deleted under a running mock, the database went on taking every request (Code 0) into the file it held, which
    no path led to any more: the next start found no task. Each write now says what happened, and writes nothing."""
    from ivh_mock.mock_server.store.sqlite import close_log, file_identity

    app = create_app({**TIMING, "background": False, "store": store_spec}, clock=clock)
    api = in_process(app, clock)
    kept = api.call("phototovideonotrain", TEXT_PAYLOAD).payload["TaskId"]
    path = Path(store_spec.removeprefix("sqlite:"))
    served = file_identity(str(path))
    path.unlink()  # its log and index stay, which the connections hold
    if how == "replaced":  # another database moved into its place (a backup put back while serving)
        with contextlib.closing(sqlite3.connect(path.with_name("other.sqlite3"))) as other:
            other.execute("CREATE TABLE foo (x)")
            other.executemany("INSERT INTO foo VALUES (?)", [(n,) for n in range(3000)])
            other.commit()
        path.with_name("other.sqlite3").rename(path)
    said = (f"internal error in ivh-mock: the SQLite store {path.name} was deleted or replaced while the mock served "
            f"it: nothing was written; stop the mock, and start it again on the file now there (or on none: it makes "
            f"a new one)")  # no "retry": it would meet the same
    for answer in (api.call("phototovideonotrain", TEXT_PAYLOAD), api.call("getprogress", {"TaskId": kept})):
        assert (answer.status, answer.code, answer.message) == (500, -101000, said)
    settings = app.test_client().put("/__mock__/accounts/other", json={"max_pending": 3})
    assert settings.status_code == 500 and "was deleted or replaced" in settings.get_json()["error"]["message"]
    # a thread with no connection yet (a worker's next request thread) reads nothing from the file now there, nor
    # makes one: a new connection beside the held log had broken the reads of every other
    elsewhere: list = []
    reader = threading.Thread(target=lambda: elsewhere.append(in_process(app, clock).call("getprogress",
                                                                                         {"TaskId": kept})))
    reader.start()
    reader.join(timeout=30)
    assert (elsewhere[0].status, elsewhere[0].message) == (500, said)
    assert api.call("getprogress", {"TaskId": kept}).message == said  # (its write, the journal entry)
    assert path.exists() == (how == "replaced")
    app.extensions["ivh_mock"].store.close()
    # as the server does at its stop: the log SQLite leaves beside a file deleted or renamed while open is the served
    # file's; read with it, the file moved in (or one made anew) had taken its pages, and lost its own tables
    said = close_log(str(path), served)
    assert said == (f"the SQLite store {path.name} was deleted or replaced while the mock served it: its log is kept "
                    f"aside as {path.name}-wal.of-a-replaced-store and {path.name}-shm.of-a-replaced-store, which no "
                    f"start reads")
    assert not any(Path(f"{path}{suffix}").exists() for suffix in ("-wal", "-shm"))
    if how == "replaced":
        with contextlib.closing(sqlite3.connect(path)) as other:
            assert other.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            assert other.execute("SELECT count(*) FROM foo").fetchone() == (3000,)


@pytest.mark.stores("sqlite")
def test_a_full_sqlite_journal_takes_an_entry_in_the_same_two_statements(store_spec):
    store = open_store(store_spec, JournalLimits(entries=2))
    noted = store._local.db = _NotingConnection(store._db())
    for n in range(5):
        store.record(note(n, "app"))
    assert noted.statements == ["INSERT INTO journal_intake (appkey,", "SELECT entries, bytes FROM"] * 5
    assert [entry.request_id for entry in store.journal()] == ["r3", "r4"]


@pytest.mark.stores("sqlite")
def test_what_a_sqlite_request_read_ahead_follows_its_own_writes_and_answers_for_nothing_else(store_spec, store):
    store.add_task("app", lambda backlog_at: make_task("mine"))
    store.add_task("other", lambda backlog_at: make_task("theirs", "other"))
    store.put_account_settings("other", {"max_pending": 3})
    store.update_clock_state(lambda _: {"base": 5.0, "anchor": 5.0, "frozen": True})
    second = open_store(store_spec)  # another process's store on the same file
    with store.read_ahead("app", task_id="mine"):
        assert store.get_task("theirs").task_id == "theirs" and store.account_settings("other") == {"max_pending": 3}
        second.put_account_settings("app", {"max_pending": 9})
        assert second.account_settings("app") == {"max_pending": 9}  # its own read, not this store's read ahead
        assert store.account_settings("app") == {}  # read as the request started
        store.put_account_settings("app", {"scenario": "success"})
        assert store.account_settings("app") == {"max_pending": 9, "scenario": "success"}
        store.update_clock_state(lambda _: {"base": 7.0, "anchor": 7.0, "frozen": True})
        assert store.clock_state()["base"] == 7.0
        store.reset("app")
        assert store.get_task("mine") is None and store.account_settings("app") == {}
    with store.read_ahead("app", task_id="theirs"):  # a task of another account, reset meanwhile
        store.reset("other")
        assert store.get_task("theirs") is None


def journal_entry(task: Task) -> JournalEntry:
    return JournalEntry(at=1.0, appkey=task.appkey, operation="phototovideonotrain", request_id=task.request_id,
                        code=0, message="", task_id=task.task_id)


@pytest.mark.stores("redis")  # the other stores reset in one transaction, or under their lock
def test_a_redis_reset_made_during_submissions_leaves_no_task_outside_its_account(store_spec, store):
    """Two hosts submit, to one account and to new ones, while a third resets that account and everything, again and
    again. A reset read the account's tasks, then deleted them in another round trip: a task written in between
    outlived its account's list (unseen by the account's quotas, its callback never due), and a journal written in
    between escaped the journal's bounds and every later reset."""
    hosts, stop = [open_store(store_spec) for _ in range(2)], threading.Event()

    def submit(host, n: int) -> None:
        for i in itertools.count():
            if stop.is_set():
                return
            appkey = "victim" if i % 2 else f"new{n}-{i}"
            host.add_task(appkey, lambda before, i=i, appkey=appkey: make_task(f"h{n}-{i}", appkey,
                                                                              seq=before(0.0).next_seq), journal_entry)

    threads = [threading.Thread(target=submit, args=(host, n)) for n, host in enumerate(hosts)]
    for thread in threads:
        thread.start()
    try:
        for k in range(40):
            store.reset("victim" if k % 2 else None)
            time.sleep(0.002)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert {t.task_id for t in store.tasks() if t.appkey == "victim"} == {t.task_id for t in store.tasks("victim")}
    lists = [store.redis.lrange(key, 0, -1) for key in store.redis.scan_iter(f"{store.prefix}journal:*")]
    kept = [entry for entries in lists for entry in entries]  # the journal's entries, counted as its bounds count
    assert int(store.redis.get(f"{store.prefix}journal-bytes") or 0) == sum(len(entry.encode()) for entry in kept)
    assert store.redis.llen(f"{store.prefix}journal-order") == len(kept)
    store.reset()
    assert sorted(store.redis.scan_iter(f"{store.prefix}*")) == []  # nothing a reset cannot find


def test_a_submission_and_its_journal_entry_are_kept_together(store):
    store.add_task("app", lambda backlog_at: make_task("t1"), journal_entry)
    assert [entry.task_id for entry in store.journal("app")] == ["t1"]

    def refuse(backlog_at):
        raise ValueError("over quota")

    with pytest.raises(ValueError):
        store.add_task("app", refuse, journal_entry)
    assert [task.task_id for task in store.tasks("app")] == ["t1"] and len(store.journal("app")) == 1


@pytest.mark.stores("redis")  # the other stores plan under a lock; a nested submission would wait for it
def test_a_redis_submission_plans_again_when_another_came_first(store_spec, store):
    """Between reading the account and writing the task, another host's submission lands: the write is refused and
    the plan is made again against both tasks, so no two tasks of an account ever share a seq."""
    other_host = open_store(store_spec)
    seen = []

    def build(backlog_at):
        backlog = backlog_at(0.0)
        seen.append(backlog.last)
        if len(seen) == 1:
            other_host.add_task("app", lambda before: make_task("first", seq=before(0.0).next_seq), journal_entry)
        return make_task(f"mine-{len(seen)}", seq=backlog.next_seq)

    task = store.add_task("app", build, journal_entry)
    assert seen == ["", "first"] and task.task_id == "mine-2"
    assert [(t.task_id, t.seq) for t in store.tasks("app")] == [("first", 0), ("mine-2", 1)]
    assert [entry.task_id for entry in store.journal("app")] == ["first", "mine-2"]


@pytest.mark.stores("sqlite", "redis")  # a memory store lives in one process
def test_a_submission_read_ahead_of_another_hosts_plans_again_against_both(store_spec, store):
    """The account read as the request started is out of date once another host's submission lands: the write is
    refused and the account read anew, so the read-ahead never lets two tasks share a seq."""
    other_host = open_store(store_spec)
    other_host.add_task("app", lambda before: make_task("before", seq=0), journal_entry)
    seen = []

    def build(backlog_at):
        backlog = backlog_at(0.0)
        seen.append(backlog.last)
        return make_task(f"mine-{len(seen)}", seq=backlog.next_seq)

    with store.read_ahead("app", tasks=True):
        other_host.add_task("app", lambda before: make_task("meanwhile", seq=before(0.0).next_seq), journal_entry)
        task = store.add_task("app", build, journal_entry)
    assert seen[-1] == "meanwhile" and task.seq == 2
    assert [(t.task_id, t.seq) for t in store.tasks("app")] == [("before", 0), ("meanwhile", 1), (task.task_id, 2)]
    assert [entry.task_id for entry in store.journal("app")] == ["before", "meanwhile", task.task_id]


def commands_sent(monkeypatch) -> list:
    """The commands Redis clients send from now on, each one a round trip."""
    import redis

    sent = []
    real = redis.connection.Connection.send_packed_command
    monkeypatch.setattr(redis.connection.Connection, "send_packed_command",
                        lambda connection, command, **options: sent.append(command) or real(connection, command,
                                                                                             **options))
    return sent


@pytest.mark.stores("redis")  # only a store across a network counts round trips
def test_a_redis_submission_costs_one_round_trip_once_its_account_was_seen(store_spec, store, monkeypatch):
    """The first submission to an account reads the clock, the settings and the account's backlog, then writes (the
    task, its indexes, the new backlog and its journal entry, checking that what was read is unchanged); the next takes
    them from what this process saw, so it only writes. Once another host's submission came first, the write is
    refused with what is current, and the plan made again against it: two writes, no read (DECISIONS.md D48)."""
    store.update_clock_state(lambda _: {"base": 5.0, "anchor": 5.0, "frozen": True})
    other_host = open_store(store_spec)
    other_host.add_task("other", lambda backlog_at: make_task("warm", "other", seq=0), journal_entry)  # scripts loaded
    store.add_task("third", lambda backlog_at: make_task("own", "third", seq=0), journal_entry)  # this thread connected

    def submit(task_id: str) -> Task:
        with store.read_ahead("app", tasks=True):
            assert store.account_settings("app") == {} and store.clock_state()["base"] == 5.0
            return store.add_task("app", lambda backlog_at: make_task(task_id, seq=backlog_at(0.0).next_seq),
                                  journal_entry)

    sent = commands_sent(monkeypatch)
    submit("t1")
    assert len(sent) == 2
    submit("t2")
    assert len(sent) == 3
    other_host.add_task("app", lambda backlog_at: make_task("theirs", seq=backlog_at(0.0).next_seq), journal_entry)
    sent.clear()
    assert submit("t3").seq == 3 and len(sent) == 2 and all(b"EVALSHA" in command[0] for command in sent)
    assert [(t.task_id, t.seq) for t in store.tasks("app")] == [("t1", 0), ("t2", 1), ("theirs", 2), ("t3", 3)]
    assert [entry.task_id for entry in store.journal("app")] == ["t1", "t2", "theirs", "t3"]


@pytest.mark.stores("redis")
def test_a_redis_requests_connection_of_its_own_survives_a_script_flush_and_a_killed_connection(store_spec, store):
    """A request's scripts go over its thread's own connection, not through redis-py's pool (a twentieth of a
    getprogress's time): a Redis that forgot its scripts (restarted, SCRIPT FLUSH) has them loaded again, and a
    connection the server closed is made again, as the pool would, once."""
    import redis

    admin = redis.Redis.from_url(store.url)

    def poll(n: int) -> None:
        with store.read_ahead("app", task_id="polled"):
            store.record(note(n, "app"))

    store.add_task("app", lambda backlog_at: make_task("polled", seq=0), journal_entry)
    poll(0)
    admin.script_flush()
    poll(1)  # NOSCRIPT: loaded, sent again
    admin.client_kill_filter(_type="normal", skipme=True)  # every other client's connection, this thread's too
    poll(2)
    admin.script_flush()  # as a restart does: both at once (the retry had been spent on the connection)
    admin.client_kill_filter(_type="normal", skipme=True)
    poll(3)
    assert [entry.at for entry in store.journal("app")] == [1.0, 0.0, 1.0, 2.0, 3.0]  # the submission's, the polls'
    made = list(store._made)
    store.close()
    assert made and all(connection._sock is None for connection in made)


def lose_the_next_answer(monkeypatch, store) -> list[int]:
    """Break this thread's connection to Redis once Redis has run the next request sent on it, before its answer comes
    back; return a list that holds a 1 once it has (clear it to lose the next one again)."""
    import redis

    connection = store._own.connection
    real, lost = connection.read_response, []

    def read_response(*args, **kwargs):
        answer = real(*args, **kwargs)  # Redis ran it
        if not lost:
            lost.append(1)
            raise redis.ConnectionError("Connection closed by server.")
        return answer

    monkeypatch.setattr(connection, "read_response", read_response)
    return lost


@pytest.mark.stores("redis")
def test_a_redis_write_whose_answer_was_lost_is_not_made_twice(store_spec, store, monkeypatch):
    """The connection breaks after Redis ran a request's write, before its answer came back. Sent again, the
    journal entry would be kept twice, and a submission planned anew as a second task: the store says instead that
    the write may have been made (WriteUnsure). A read is sent again, once."""
    import redis
    from ivh_mock.mock_server.store import WriteUnsure, outage_of

    store.add_task("app", lambda backlog_at: make_task("polled", seq=0), journal_entry)
    for at in (3, 4):  # this thread connected, and every script the test runs loaded (run alone, they were not)
        with store.read_ahead("app", task_id="polled"):
            store.record(note(at, "app"))
    store._tasks.clear()
    with store.read_ahead("app", task_id="polled"):  # read ahead once more: that script loaded too
        store.get_task("polled")
    lost = lose_the_next_answer(monkeypatch, store)
    with pytest.raises(WriteUnsure) as unsure, store.read_ahead("app", task_id="polled"):
        store.record(note(5, "app"))
    assert [entry.at for entry in store.journal("app")] == [1.0, 3.0, 4.0, 5.0]  # once
    assert outage_of(store, unsure.value).endswith(
        "did not answer a write sent to it (ConnectionError): it may have been kept")
    assert store.outage(redis.ConnectionError()) is not None
    # `?max_connections=1` met under a few submissions at once: said as "cannot be reached", of a Redis that answers
    assert "has all its connections in use (max_connections in its URL" in store.outage(
        redis.exceptions.MaxConnectionsError("Too many connections"))
    lost.clear()
    store._tasks.clear()  # the next poll reads the task ahead: that read's answer is lost, and it is sent again
    with store.read_ahead("app", task_id="polled"):
        assert store.get_task("polled").task_id == "polled"
    assert lost == [1]


@pytest.mark.stores("redis")
def test_a_redis_delivery_whose_records_answer_was_lost_is_recorded_once(store_spec, store, monkeypatch):
    """Redis ran a callback's record but its answer was lost (paused past the socket's timeout): the dispatcher
    tries the record again while its claim holds, and the delivery was logged twice. Each try names its delivery, so
    the second finds it kept; a second real delivery, the same in every field on a frozen clock, is still logged."""
    from ivh_mock.mock_server.store import WriteUnsure

    first, task = (store.add_task("app", lambda backlog_at, n=n: make_task(f"t{n}", seq=n), journal_entry)
                   for n in (1, 2))
    store.record_callback(attempt(first), "d0")  # this thread connected, the script loaded
    lose_the_next_answer(monkeypatch, store)
    with pytest.raises(WriteUnsure):
        store.record_callback(attempt(task), "d1")
    store.record_callback(attempt(task), "d1")  # tried again, as record_made does
    assert store.callbacks_of(task) == [attempt(task)] and store.callbacks("app") == [attempt(first), attempt(task)]
    store.record_callback(attempt(task), "d2")  # a lapsed claim's holder delivered it too
    assert store.callbacks_of(task) == [attempt(task)] * 2 and len(store.callbacks("app")) == 3
    assert store.due_callbacks(1000.0) == []
    assert 0 < store.redis.ttl(store._key("delivered", task.task_id)) <= 86400  # an older mock's reset leaves it
    store.reset("app")
    assert not store.redis.exists(store._key("delivered", task.task_id))


@pytest.mark.stores("redis")
def test_a_redis_submission_whose_answer_was_lost_says_it_may_have_been_kept_and_as_which_task(store_spec, clock,
                                                                                                monkeypatch):
    """Redis stalled (paused, swapping) past the socket's timeout as it ran a submission's write: the submission was
    kept, and answered -101000 "... cannot be reached (TimeoutError); retry". A caller that did retry had a second
    paid video. The answer now says that it may have been kept, as which task, and how to find out."""
    import redis
    from .test_lifecycle import submit, text

    app = create_app({"background": False, "store": store_spec}, clock=clock)
    api = in_process(app, clock)
    submit(api, text())  # this thread's connection made, the write's script loaded
    store = app.extensions["ivh_mock"].store
    connection, sent = store._own.connection, []
    real_send, real_read = connection.send_packed_command, connection.read_response

    def send(commands, *args, **kwargs):
        sent[:] = commands
        return real_send(commands, *args, **kwargs)

    def read_response(*args, **kwargs):
        answer = real_read(*args, **kwargs)  # Redis ran it
        if store._write_task.sha.encode() in b"".join(sent):
            raise redis.TimeoutError("Timeout reading from socket")
        return answer

    monkeypatch.setattr(connection, "send_packed_command", send)
    monkeypatch.setattr(connection, "read_response", read_response)
    answer = api.call("phototovideonotrain", text())
    kept = [task.task_id for task in store.tasks("test-app")][-1:]
    assert answer.code == -101000 and kept and answer.message == (
        f"internal error in ivh-mock: the Redis store at 127.0.0.1:{urlsplit(store.url).port} did not answer a "
        f"write sent to it (TimeoutError): it may have been kept, as task {kept[0]}: "
        f"getprogress with that TaskId says whether it was (submit it again only if it was not)")
    assert len(store.tasks("test-app")) == 2
    monkeypatch.undo()
    assert api.call("getprogress", {"TaskId": kept[0]}).code == 0


@pytest.mark.stores("redis")
def test_a_redis_connection_of_a_thread_that_ended_is_closed(store_spec, store):
    """werkzeug's threaded server (the fixtures' MockServer) runs each connection in a thread of its own: the
    connections those threads made for their requests must not stay open after them."""
    import gc
    import redis

    admin = redis.Redis.from_url(store.url)
    store.add_task("app", lambda backlog_at: make_task("polled", seq=0), journal_entry)  # this thread's own
    before = len(admin.client_list())

    def poll() -> None:
        with store.read_ahead("app", task_id="polled"):
            store.record(note(0, "app"))

    for _ in range(20):
        thread = threading.Thread(target=poll)
        thread.start()
        thread.join()
    gc.collect()
    assert len(store._made) == 1 and len(admin.client_list()) <= before  # this thread's, no other


@pytest.mark.stores("redis")  # the keys a Redis store reads ahead
def test_a_redis_getprogress_reads_ahead_only_a_task_id_the_spec_allows(store_spec, app, api, monkeypatch):
    store, seen = app.extensions["ivh_mock"].store, []
    real = store._run

    def run(script, keys, args):
        if script is store._read_ahead:
            seen.append(keys)
        return real(script, keys, args)

    monkeypatch.setattr(store, "_run", run)
    assert api.call("getprogress", {"TaskId": "x" * 129}).code == 100002  # past the spec's maxLength: no read
    assert api.call("getprogress", {"TaskId": "0" * 32}).code == 110006
    assert [keys[2:] for keys in seen] == [[], [store._key("task", "0" * 32)]]


@pytest.mark.stores("redis")  # only a store across a network counts round trips
def test_a_redis_getprogress_costs_one_round_trip_once_its_task_was_seen(store_spec, store, monkeypatch):
    """The first poll of a task reads the clock, the settings and the task, then journals; the next takes them from
    what this process saw, and its journal entry, kept only if they are unchanged, is its one round trip."""
    store.add_task("other", lambda backlog_at: make_task("loading", "other", seq=1), journal_entry)  # scripts loaded
    with store.read_ahead("other", task_id="loading"):
        store.record(note(0, "other"))
    StoredClock(open_store(store_spec)).freeze()  # another host starts the clock: this store has not seen it yet
    open_store(store_spec).add_task("app", lambda backlog_at: make_task("polled", seq=1), journal_entry)
    sent = commands_sent(monkeypatch)
    for n in range(1, 4):
        with store.read_ahead("app", task_id="polled"):
            assert store.get_task("polled").task_id == "polled" and store.account_settings("app") == {}
            assert store.clock_state()["frozen"] is True
            store.record(note(n, "app"))
        assert len(sent) == n + 1
    with store.read_ahead("app", task_id="polled"):
        assert store.get_task("another") is None and len(sent) == 5  # a task it did not read ahead is read as before
    assert store.get_task("polled").task_id == "polled" and len(sent) == 6  # the block over, read as before
    with store.read_ahead("app", task_id="gone"):
        assert store.get_task("gone") is None


@pytest.mark.stores("redis")  # only a store across a network reads ahead
@pytest.mark.parametrize("change", ["clock", "settings", "reset"])
def test_a_redis_request_whose_reads_changed_keeps_nothing_and_is_answered_again(store_spec, store, change):
    """What a request took from what this process saw is checked by its write: another host's clock move, settings
    change or reset since then refuses the write, and the store, having learnt what is current from that answer,
    raises StaleRead; the request's next answer takes what is current, without another read."""
    store.add_task("app", lambda backlog_at: make_task("polled", seq=0), journal_entry)
    StoredClock(store).freeze()
    with store.read_ahead("app", task_id="polled"):
        store.record(note(0, "app"))
    other_host = open_store(store_spec)
    if change == "clock":
        StoredClock(other_host).advance(60)
    elif change == "settings":
        other_host.put_account_settings("app", {"max_pending": 3})
    else:
        other_host.reset("app")
    with pytest.raises(StaleRead), store.read_ahead("app", task_id="polled"):
        assert store.get_task("polled") is not None  # as this process last saw it
        store.record(note(1, "app"))
    assert [entry.request_id for entry in store.journal("app")] == ([] if change == "reset" else ["r-polled", "r0"])
    with store.read_ahead("app", task_id="polled"):
        assert store.clock_state() == other_host.clock_state()
        assert store.account_settings("app") == other_host.account_settings("app")
        assert (store.get_task("polled") is None) == (change == "reset")
        store.record(note(2, "app"))
    assert store.journal("app")[-1].request_id == "r2"
    with pytest.raises(StaleRead), store.read_ahead("app", tasks=True):  # a submission checks the same
        other_host.put_account_settings("app", {"max_pending": 4})
        store.add_task("app", lambda backlog_at: make_task("refused", seq=backlog_at(0.0).next_seq), journal_entry)
    assert "refused" not in [task.task_id for task in store.tasks("app")]


@pytest.mark.stores("redis")  # only a store across a network reads ahead
def test_a_redis_api_request_answers_again_from_what_another_host_changed(store_spec, app, api):
    """Through the API: what another host changed since this process last saw the account is what the next request
    is answered by, and only that answer is journaled."""
    store, other_host = app.extensions["ivh_mock"].store, open_store(store_spec)
    first = api.call("phototovideonotrain", TEXT_PAYLOAD)
    assert first.code == 0 and api.call("getprogress", {"TaskId": first.payload["TaskId"]}).code == 0
    other_host.put_account_settings(api.appkey, {"max_pending": 1})
    assert api.call("phototovideonotrain", TEXT_PAYLOAD).code == 100008  # this process saw no such limit
    other_host.reset(api.appkey)
    assert api.call("getprogress", {"TaskId": first.payload["TaskId"]}).code == 110006  # nor the reset
    assert [entry.code for entry in store.journal(api.appkey)] == [110006]


@pytest.mark.stores("redis")  # only a store across a network reads ahead
def test_a_redis_refusal_is_checked_against_the_account_it_was_planned_against(store_spec, clock):
    """A submission refused for the account's backlog (its quota) keeps its journal entry only if the account is as
    planned against: after another host reset the account, this process plans anew and accepts."""
    api = in_process(create_app({**TIMING, "background": False, "store": store_spec, "max_pending": 2}, clock=clock),
                     clock)
    assert [api.call("phototovideonotrain", TEXT_PAYLOAD).code for _ in range(3)] == [0, 0, 100008]
    other_host = open_store(store_spec)
    other_host.reset(api.appkey)  # no settings to change: only the account's tasks tell
    assert [api.call("phototovideonotrain", TEXT_PAYLOAD).code for _ in range(3)] == [0, 0, 100008]
    assert [entry.code for entry in other_host.journal(api.appkey)] == [0, 0, 100008]


@pytest.mark.stores("redis")  # only a store across a network reads ahead
@pytest.mark.parametrize("change", ["clock", "refilled"])
def test_a_redis_submission_whose_clock_or_account_changed_writes_nothing_of_its_plan(store_spec, store, change):
    """Another host moved the clock (the request is answered again), or reset the account and filled it again to the
    same number of tasks (only its newest task tells: the submission plans again against it)."""
    other_host = open_store(store_spec)
    StoredClock(store).freeze()
    for task_id in ("a", "b"):
        with store.read_ahead("app", tasks=True):
            store.add_task("app", lambda backlog_at, i=task_id: make_task(i, seq=backlog_at(0.0).next_seq),
                           journal_entry)
    if change == "clock":
        StoredClock(other_host).advance(60)
    else:
        other_host.reset("app")
        for task_id in ("c", "d"):
            other_host.add_task("app", lambda backlog_at, i=task_id: make_task(i, seq=backlog_at(0.0).next_seq),
                                journal_entry)
    planned_against = []

    def build(backlog_at):
        backlog = backlog_at(0.0)
        planned_against.append(backlog.last)
        return make_task(f"mine-{len(planned_against)}", seq=backlog.next_seq)

    with contextlib.ExitStack() as stack:
        if change == "clock":
            stack.enter_context(pytest.raises(StaleRead))
        stack.enter_context(store.read_ahead("app", tasks=True))
        store.add_task("app", build, journal_entry)
    if change == "clock":
        assert planned_against == ["b"] and [t.task_id for t in store.tasks("app")] == ["a", "b"]
        assert store.clock_state() == other_host.clock_state()
    else:
        assert planned_against == ["b", "d"]
        assert [(t.task_id, t.seq) for t in store.tasks("app")] == [("c", 0), ("d", 1), ("mine-2", 2)]


@pytest.mark.stores("redis")  # only a store across a network reads ahead
@pytest.mark.parametrize("served, code", [(200, 0), (404, -101002)])
def test_a_redis_request_answered_again_downloads_the_callers_photo_once(store_spec, app, api, served, code):
    """The photo's download moves the clock on another host, so the submission's write (its task, or the journal
    entry of its refusal) finds it changed and the request is answered again: from the photo already taken in, or its
    refusal, not a second download."""
    from ivh_mock.mock_server.media_in.samples import portrait
    from werkzeug.wrappers import Request, Response

    other_host, photo, downloads = open_store(store_spec), portrait(480, 640), []

    @Request.application
    def media(request):
        downloads.append(request.path)
        if len(downloads) == 1:
            other_host.update_clock_state(lambda _: {"base": 5.0, "anchor": 5.0, "frozen": True})
        return Response(photo, status=served, mimetype="image/jpeg")

    api.call("getprogress", {"TaskId": "0" * 32})  # the clock as it was, seen by this process
    with serving(media) as url:
        answer = api.call("phototovideonotrain", {**TEXT_PAYLOAD, "RefPhotoUrl": f"{url}/photo.jpg"})
    assert answer.code == code and downloads == ["/photo.jpg"]
    store = app.extensions["ivh_mock"].store
    assert [entry.code for entry in store.journal(api.appkey)] == [110006, code]
    assert store.clock_state()["base"] == 5.0


@pytest.mark.stores("redis")  # only a store across a network reads ahead
def test_a_redis_refusal_after_planning_again_is_checked_against_the_second_plan(store_spec, store):
    """The first plan's write finds another host's task; the second plan refuses (its quota, say): the refusal's
    journal entry is checked against the account as planned the second time, and kept."""
    other_host, plans = open_store(store_spec), []

    def build(backlog_at):
        backlog = backlog_at(0.0)
        plans.append(backlog.last)
        if len(plans) == 1:
            other_host.add_task("app", lambda before: make_task("theirs", seq=before(0.0).next_seq), journal_entry)
            return make_task("mine", seq=backlog.next_seq)
        raise LookupError("over quota")

    with store.read_ahead("app", tasks=True):
        with pytest.raises(LookupError):
            store.add_task("app", build, journal_entry)
        store.record(note(1, "app"))
    assert plans == ["", "theirs"] and [entry.request_id for entry in store.journal("app")] == ["r-theirs", "r1"]


@pytest.mark.stores("redis")  # only a store across a network reads ahead
@pytest.mark.parametrize("planned", [True, False])
def test_a_redis_submission_refused_is_checked_against_its_account_only_if_it_planned(store_spec, store, planned):
    """Another host reset the account and filled it again to as many tasks: a refusal made as the submission planned
    came from a backlog that is gone, and is answered again; one made before (its signature, say) did not read it."""
    other_host = open_store(store_spec)
    with store.read_ahead("app", tasks=True):
        store.add_task("app", lambda backlog_at: make_task("a", seq=backlog_at(0.0).next_seq), journal_entry)
    other_host.reset("app")
    other_host.add_task("app", lambda backlog_at: make_task("b", seq=backlog_at(0.0).next_seq), journal_entry)

    def refuse(backlog_at):
        assert backlog_at(0.0).last == "a"  # as this process last saw the account
        raise LookupError("over quota")

    with contextlib.ExitStack() as stack:
        if planned:
            stack.enter_context(pytest.raises(StaleRead))
        stack.enter_context(store.read_ahead("app", tasks=True))
        if planned:
            with pytest.raises(LookupError):
                store.add_task("app", refuse, journal_entry)
        store.record(note(1, "app"))
    assert [entry.request_id for entry in store.journal("app")] == ["r-b"] + ([] if planned else ["r1"])
    if planned:  # the account as it now is, learnt from the refused write: the next answer plans against it
        with store.read_ahead("app", tasks=True):
            assert store.add_task("app", lambda backlog_at: make_task("c", seq=backlog_at(0.0).next_seq),
                                  journal_entry).seq == 1


@pytest.mark.stores("redis")  # the only store that remembers what it saw
def test_a_redis_store_remembers_a_bounded_number_of_tasks_and_accounts(store_spec, store, monkeypatch):
    """Past its bound, what a process remembers starts over: the next request of each reads again, once."""
    from ivh_mock.mock_server.store import redis as redis_store

    monkeypatch.setattr(store._tasks, "_bound", 2)  # SEEN_TASKS, given to it as the store was made
    monkeypatch.setattr(redis_store, "SEEN_ACCOUNTS", 2)
    for n in range(3):
        with store.read_ahead(f"app{n}", tasks=True):
            store.add_task(f"app{n}", lambda backlog_at, n=n: make_task(f"t{n}", f"app{n}", seq=0), journal_entry)
        assert len(store._tasks._seen) <= 2 and len(store._accounts) <= 2 and len(store._settings) <= 2
    assert store._tasks.text("t2") and "app2" in store._accounts and store._tasks.text("t0") is None
    sent = commands_sent(monkeypatch)
    with store.read_ahead("app0", task_id="t0"):  # forgotten: read again
        assert store.get_task("t0").task_id == "t0"
    with store.read_ahead("app2", task_id="t2"):  # remembered: no read
        assert store.get_task("t2").task_id == "t2"
    assert len(sent) == 1


@pytest.mark.stores("redis")  # the only store that remembers what it saw
def test_a_redis_store_remembers_only_the_accounts_whose_requests_authenticated(store_spec, app, api):
    """A request refused before its appkey is accepted (a bad signature, an appkey far past the spec's bound) is
    journaled but leaves nothing held for its appkey: a flood of them cannot grow what a worker keeps."""
    import json

    store = app.extensions["ivh_mock"].store
    body = json.dumps({"Header": {}, "Payload": {"TaskId": "0" * 32}}).encode()
    for appkey, code in (("x" * 30_000, 100002), ("stranger", 100005)):  # past the spec's 128 characters; unsigned
        codes = [api.raw(operation, body, query=f"appkey={appkey}&timestamp={int(api.clock.now())}&signature=bad").code
                 for operation in ("getprogress", "phototovideonotrain")]
        assert codes == [code, code]
    assert store._settings == {} and store._accounts == {}
    assert api.call("phototovideonotrain", TEXT_PAYLOAD).code == 0
    assert list(store._settings) == [api.appkey] and list(store._accounts) == [api.appkey]


def _written(store, count: int) -> None:
    """Commit `count` journal entries of about 3 KB each (a page or so of the log apiece) to `store`."""
    for n in range(count):
        store.record(note(n, f"w{n % 50}", body="x" * 3000))


def test_a_sqlite_store_copies_its_log_on_a_thread_of_its_own(tmp_path):
    """A commit no longer copies the write-ahead log into the database while it holds the write lock (DECISIONS.md
    D69): the store's thread does, after every CHECKPOINT_COMMITS commits. 120 commits make fewer pages of log than
    SQLite's own checkpoint waits for (1,000), let alone the writers' backstop."""
    from ivh_mock.mock_server.store import sqlite

    path = tmp_path / "copied.sqlite3"
    store = open_store(f"sqlite:{path}", JournalLimits(body_bytes=4096))
    try:
        assert store._db().execute("PRAGMA wal_autocheckpoint").fetchone()[0] == sqlite.BACKSTOP_PAGES
        _written(store, 120)
        until(lambda: path.stat().st_size >= 100 * 3000)  # the first 100 entries are in the database itself
        thread = store._checkpointer
        assert thread is not None and thread.name == "ivh-sqlite-checkpoint"
    finally:
        store.close()
    assert not thread.is_alive()


def test_a_log_its_writers_left_beside_a_sqlite_database_is_taken_in_by_closing_it_once_more(tmp_path):
    """The last connection to close removes the write-ahead log, but two workers closing at the same moment can each
    see the other's still open and both leave it (a stopped server under load did): the database file alone then
    lacked what the log held. The server closes the database once more after its workers end (close_log)."""
    import subprocess
    import sys

    from ivh_mock.mock_server.store.sqlite import close_log, file_identity

    path = tmp_path / "left.sqlite3"
    writer = ("import os, sqlite3, sys\n"
              "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
              "db.execute('PRAGMA journal_mode=WAL')\n"
              "db.execute('CREATE TABLE t (x)')\n"
              "db.executemany('INSERT INTO t VALUES (?)', [(n,) for n in range(100)])\n"
              "os._exit(0)\n")  # ends with its connection open, as the log is left
    subprocess.run([sys.executable, "-c", writer, str(path)], check=True, timeout=60)

    def rows_in_the_file_alone() -> int:
        copy = tmp_path / "copy.sqlite3"
        copy.write_bytes(path.read_bytes())
        with contextlib.closing(sqlite3.connect(copy)) as db:
            found = db.execute("SELECT count(*) FROM sqlite_master WHERE name = 't'").fetchone()[0]
            return db.execute("SELECT count(*) FROM t").fetchone()[0] if found else 0

    assert path.with_name("left.sqlite3-wal").exists() and rows_in_the_file_alone() == 0
    served = file_identity(str(path))
    close_log(str(path), served)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["copy.sqlite3", "left.sqlite3"]
    assert rows_in_the_file_alone() == 100
    close_log(str(tmp_path / "gone.sqlite3"), served)  # a database that is not there is not made
    assert not (tmp_path / "gone.sqlite3").exists()
    (tmp_path / "junk.sqlite3").write_bytes(b"no database" * 100)  # nor is a file that is none touched, or a folder
    close_log(str(tmp_path / "junk.sqlite3"), file_identity(str(tmp_path / "junk.sqlite3")))
    close_log(str(tmp_path), served)
    assert (tmp_path / "junk.sqlite3").read_bytes() == b"no database" * 100


def _log_pages(path) -> int:
    """How many pages the write-ahead log of the database at `path` holds (read by checkpointing it)."""
    with contextlib.closing(sqlite3.connect(path)) as db:
        return db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1]


def test_what_was_written_during_a_sqlite_checkpoint_is_copied_under_the_lock(tmp_path, monkeypatch):
    """The log starts again from its beginning only when a writer finds all of it copied. A checkpoint that takes no
    lock leaves what was written meanwhile, so under writes that never stop the log would grow until the writers'
    backstop; past RESTART_PAGES the thread copies the rest under the write lock (D69)."""
    from ivh_mock.mock_server.store import sqlite

    monkeypatch.setattr(sqlite, "CHECKPOINT_COMMITS", 10**9)  # the test checkpoints by itself, when it chooses
    monkeypatch.setattr(sqlite, "RESTART_PAGES", 50)
    path = tmp_path / "steady.sqlite3"
    store = open_store(f"sqlite:{path}", JournalLimits(body_bytes=4096))
    locked = []  # whether the store's write lock was held, at each statement of the checkpoint
    try:
        _written(store, 30)  # some 180 pages
        writer = sqlite3.connect(path, isolation_level=None)  # a writer that began before the checkpoint
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('meanwhile', 'written')")

        class CommittedMeanwhile(sqlite3.Connection):
            """A checkpointing connection: the writer commits once its first checkpoint, which takes no lock, ends."""

            def execute(self, *args):
                locked.append(store._write_lock.locked())
                cursor = super().execute(*args)
                if writer.in_transaction:
                    writer.execute("COMMIT")
                return cursor

        with contextlib.closing(writer), \
                contextlib.closing(sqlite3.connect(path, factory=CommittedMeanwhile, isolation_level=None)) as db:
            store._checkpoint(db)
        assert locked == [False, True]  # the first copy took no lock, the second the write lock
        _written(store, 1)  # the next writer
        assert _log_pages(path) < 20  # the log started again: it holds that last commit alone
    finally:
        store.close()


@pytest.mark.parametrize("option, value", [("journal_limit", 10**20), ("journal_total_limit", 0),
                                           ("journal_total_bytes", True), ("journal_body_bytes", 16384.0)])
def test_a_journal_bound_no_store_can_hold_is_refused_naming_it(option, value, tmp_path):
    # 10**20 went into SQLite's trigger as it was, and every write then failed with "datatype mismatch"
    with pytest.raises(ValueError, match=rf"^{option} \(the journal's \w+\) must be a whole number from 1 to 2\*\*53"):
        create_app({option: value, "store": f"sqlite:{tmp_path / 'store.sqlite3'}", "background": False})


@pytest.mark.stores("sqlite")
def test_a_full_sqlite_store_answers_saying_so_and_serves_on_once_it_has_room(store_spec, clock, caplog):
    """A full disk made every request (a getprogress too: each writes its journal entry) a bare internal error, with a
    traceback in the log, as if the mock were at fault. SQLite's max_page_count fills the database as a disk would."""
    app = create_app({**TIMING, "background": False, "store": store_spec}, clock=clock)
    api = in_process(app, clock)  # the test client answers in this thread, on this thread's connection
    submitted = api.call("phototovideonotrain", TEXT_PAYLOAD)
    db = app.extensions["ivh_mock"].store._db()
    db.execute(f"PRAGMA max_page_count = {db.execute('PRAGMA page_count').fetchone()[0]}")
    caplog.clear()
    answers = [api.call("phototovideonotrain", TEXT_PAYLOAD) for _ in range(100)]
    full = [answer for answer in answers if answer.code != 0]
    assert full, "the database never filled up"
    assert {(answer.status, answer.code, answer.message) for answer in full} == {(500, -101000, (
        "internal error in ivh-mock: the SQLite store ivh-mock.sqlite3 is full (its disk, or its max_page_count): "
        "nothing was written; retry"))}
    assert not [record for record in caplog.records if record.exc_info], "a traceback was logged"
    assert all("is full" in record.getMessage() for record in caplog.records if record.levelname == "WARNING")
    accepted = [answer.payload["TaskId"] for answer in answers if answer.code == 0]
    db.execute("PRAGMA max_page_count = 1073741823")
    assert api.call("phototovideonotrain", TEXT_PAYLOAD).code == 0  # room again: serving on
    for task_id in [submitted.payload["TaskId"], *accepted]:  # what it said it took, it kept
        assert api.call("getprogress", {"TaskId": task_id}).code == 0


@pytest.mark.stores("redis")
def test_a_redis_store_out_of_memory_answers_saying_so(store_spec, redis_server, clock, caplog):
    """Redis at its maxmemory (noeviction) refuses writes with OOM: a bare internal error and a traceback before."""
    import redis

    app = create_app({**TIMING, "background": False, "store": store_spec}, clock=clock)
    api = in_process(app, clock)
    assert api.call("phototovideonotrain", TEXT_PAYLOAD).code == 0
    admin = redis.Redis.from_url(redis_server.url)
    admin.config_set("maxmemory", 1)
    try:
        caplog.clear()
        answer = api.call("phototovideonotrain", TEXT_PAYLOAD)
    finally:
        admin.config_set("maxmemory", 0)
    assert (answer.status, answer.code) == (500, -101000) and answer.message == (
        f"internal error in ivh-mock: the Redis store at 127.0.0.1:{redis_server.port} is out of memory (its "
        f"maxmemory): nothing was written; retry")
    assert not [record for record in caplog.records if record.exc_info]
    assert api.call("phototovideonotrain", TEXT_PAYLOAD).code == 0
