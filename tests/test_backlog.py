"""An account's backlog (D67): what a submission plans against, kept folded up by the store, must plan exactly as the
account's whole list of tasks would, whatever the clock does between submissions."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ivh_mock.mock_server.lifecycle.trajectory import start_time
from ivh_mock.mock_server.store import NEVER, Backlog, Task
from ivh_mock.mock_server.store.base import backlog_from, backlog_text, planned


def task(n: int, start_at: float, finish_at: float, shared: bool, fails: bool) -> Task:
    return Task(task_id=f"t{n}", appkey="app", seq=n, payload={}, request_id="r", submitted_at=0.0,
                start_at=start_at, finish_at=finish_at, render_seconds=1.0, duration_ms=1000 + n,
                outcome="FAIL" if fails else "SUCCESS", concurrency_type="Shared" if shared else "Exclusive")


# The rules as they read the whole account, as planning did before the backlog: the oracle.
def pending(tasks: list[Task], now: float) -> int:
    return sum(1 for t in tasks if now < t.finish_at)


def held_ms(tasks: list[Task], now: float) -> int:
    return sum(t.duration_ms for t in tasks
               if t.concurrency_type == "Shared" and not (t.outcome == "FAIL" and t.finish_at <= now))


def start_from_all(tasks: list[Task], now: float, slots: int, queue: float) -> float:
    started = [t for t in tasks if t.start_at != NEVER]
    at = max([now + queue, *(t.start_at for t in started)])
    busy = sorted(t.finish_at for t in started if t.start_at <= at < t.finish_at)
    return at if len(busy) < slots else busy[len(busy) - slots]


steps = st.lists(st.tuples(
    st.floats(-50, 100),  # the clock moves (backwards too, as a set may)
    st.sampled_from([0.0, 1.0, 10.0]),  # queue_seconds
    st.floats(0, 30),  # the render
    st.booleans(), st.booleans(), st.booleans(),  # Shared, planned to fail, stuck in the queue
    st.integers(1, 3),  # slots
), min_size=1, max_size=25)


@pytest.mark.parametrize("kept_as", ["object", "text"])  # the memory store keeps the object; the others, its text
@settings(max_examples=300, deadline=None)
@given(steps=steps)
def test_a_kept_backlog_plans_as_the_whole_account_would(kept_as, steps):
    tasks: list[Task] = []
    kept: Backlog | None = None
    now = 1000.0
    for n, (move, queue, render, shared, fails, stuck, slots) in enumerate(steps):
        now += move
        seen = {}

        def build(backlog_at):
            backlog = seen["backlog"] = backlog_at(now)
            start = NEVER if stuck else start_time(backlog.live, now, slots, queue)
            return task(n, start, start + render * (0.5 if fails else 1), shared, fails)

        made, kept = planned(kept, tasks[-1].task_id if tasks else "", lambda: list(tasks), build)
        if kept_as == "text":
            kept = backlog_from(backlog_text(kept))
        backlog = seen["backlog"]
        assert len(backlog.live) == pending(tasks, now)
        assert backlog.held_ms == held_ms(tasks, now)
        assert backlog.next_seq == n
        for before in range(n + 1):  # a queued task's ArrayCount
            assert backlog.waiting(before, now) == sum(1 for t in tasks if t.seq < before and now < t.start_at)
        assert made.start_at == (NEVER if stuck else start_from_all(tasks, now, slots, queue))
        tasks.append(made)


def test_a_clock_a_little_behind_reads_no_task_unless_a_settled_one_is_unfinished_again():
    """A host whose clock runs a few milliseconds behind the one that kept the backlog plans against it as it is; only
    a time before a settled task finished makes it read the account's tasks."""
    tasks = [task(0, 1.0, 50.0, True, False), task(1, 60.0, 200.0, True, False)]
    read = []
    kept = Backlog.of(tasks, 100.0)  # the first settled, the second live
    for now, reads in ((99.99, []), (50.0, []), (49.99, [1])):
        planned(kept, "t1", lambda: read.append(1) or list(tasks),
                lambda at, now=now: (at(now), task(2, 1.0, 2.0, True, False))[1])
        assert read == reads, now


def test_a_backlog_from_another_account_state_is_made_anew():
    """A kept backlog whose newest task is not the account's (written by a server that kept none, or lost) is not
    trusted: the account's tasks are read and the backlog made from them."""
    tasks = [task(0, 1.0, 5.0, True, False), task(1, 5.0, 9.0, True, False)]
    read = []
    stale = Backlog.of(tasks[:1], 2.0)
    _, kept = planned(stale, "t1", lambda: read.append(1) or list(tasks), lambda at: (at(2.0), task(2, 9, 10, True,
                                                                                                 False))[1])
    assert read == [1] and kept.last == "t2" and kept.next_seq == 3 and len(kept.live) == 3
    read.clear()
    planned(kept, "t2", lambda: read.append(1) or [], lambda at: (at(2.0), task(3, 10, 11, True, False))[1])
    assert read == []  # the backlog kept is the account's: nothing else is read


def test_a_backlog_with_nothing_settled_is_kept_as_text_orjson_reads():
    """Its `settled_by` is -NEVER, which only json writes and reads (as -Infinity), and that doubled the time of a
    SQLite submission behind 800 unfinished tasks; the text leaves it out, and reads back as the same backlog."""
    fresh = Backlog.of([task(n, 10.0 * n, 10.0 * n + 9.5, True, False) for n in range(3)], 0.0)
    settled = fresh.at(15.0)
    assert fresh.settled_by == -NEVER and settled.settled_by == 9.5
    for backlog in (fresh, settled):
        text = backlog_text(backlog)
        assert "Infinity" not in text and orjson.loads(text)["live"]
        assert backlog_from(text) == backlog
