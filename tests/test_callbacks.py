"""Each finished task's callback arrives exactly once with the documented body; bad targets never hurt the API."""

import socket
import threading
import time

import pytest
import requests
from ivh_mock.mock_server import create_app
from ivh_mock.mock_server.serving.testing import CallbackReceiver as Receiver

from ivh_mock import spec as spec_module

from .conftest import RawServer, close_waits, in_process, locked_at_first, serving, until
from .test_lifecycle import CONFIG, poll, submit, text

SPEC = spec_module.load()
pytestmark = pytest.mark.all_stores


@pytest.fixture
def mock(clock, store_spec):
    app = create_app({**CONFIG, "background": True, "callback_timeout_seconds": 0.5, "store": store_spec},
                     clock=clock)
    yield app
    app.extensions["ivh_mock_dispatcher"].stop()


@pytest.fixture
def api(mock, clock):
    return in_process(mock, clock)


@pytest.fixture
def receiver():
    receiver = Receiver()
    yield receiver
    receiver.close()


def test_one_callback_per_finished_task_with_the_documented_body(api, clock, receiver):
    plain = [submit(api, text(CallbackUrl=receiver.url)) for _ in range(6)]
    failing = submit(api, text(CallbackUrl=receiver.url), scenario="internal_error")
    silent = submit(api, text())  # no CallbackUrl: no callback
    assert receiver.received == []
    clock.advance(1.5)  # rendering, not finished
    time.sleep(0.2)
    assert receiver.received == []

    clock.advance(60)
    got = receiver.wait_for(7)
    time.sleep(0.3)  # anything extra would have arrived by now
    assert len(receiver.received) == 7
    by_task = {entry["body"]["Payload"]["TaskId"]: entry for entry in got}
    assert set(by_task) == {*plain, failing} and silent not in by_task
    for task_id, entry in by_task.items():
        body = entry["body"]
        assert SPEC.check("#/components/schemas/CallbackBody", body) == []
        assert set(body) == {"Payload"}
        final = poll(api, task_id)
        assert body["Payload"] == {"Progress": final["Progress"], "MediaUrl": final["MediaUrl"],
                                   "SubtitlesUrl": final["SubtitlesUrl"], "Status": final["Status"],
                                   "FailMessage": final["FailMessage"], "TaskId": task_id}
        assert entry["headers"]["Content-Type"] == "application/json"
    assert by_task[failing]["body"]["Payload"]["Status"] == "FAIL"
    assert by_task[failing]["body"]["Payload"]["Progress"] == -1


def test_the_delivery_log_records_each_attempt(mock, api, clock, receiver):
    task_id = submit(api, text(CallbackUrl=receiver.url))
    clock.advance(60)
    receiver.wait_for(1)
    log = _wait_for_log(mock, 1)
    assert log[0].task_id == task_id and log[0].url == receiver.url and log[0].status == 200
    assert log[0].error is None and log[0].latency_ms >= 0 and log[0].response_body == "ok"
    assert log[0].body["Payload"]["TaskId"] == task_id


def _wait_for_log(app, count, timeout=5.0):
    store = app.extensions["ivh_mock"].store
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(store.callbacks()) >= count:
            return store.callbacks()
        time.sleep(0.01)
    raise AssertionError(f"expected {count} logged deliveries, got {len(store.callbacks())}")


def _dead_url():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}/hook"


@pytest.mark.parametrize("mode", ["dead", "slow", "redirect", "garbage"])
def test_a_bad_target_never_blocks_or_breaks_the_api(mock, clock, mode):
    receiver = Receiver(mode if mode != "dead" else "ok", delay=3.0)
    url = _dead_url() if mode == "dead" else receiver.url
    try:
        with serving(mock) as base:
            api = in_process(mock, clock)
            ids = [submit(api, text(CallbackUrl=url)) for _ in range(3)]
            clock.advance(60)
            # while the deliveries are failing or hanging, the API answers over real HTTP at once
            from .conftest import Caller

            http = Caller(lambda u, d, h: _post(base + u, d, h), clock)
            for task_id in ids:
                assert http.call("getprogress", {"TaskId": task_id}).payload["Status"] == "SUCCESS"
            assert http.call("phototovideonotrain", text()).code == 0
            log = _wait_for_log(mock, 3)
            assert len(log) == 3 and {entry.task_id for entry in log} == set(ids)
            if mode == "redirect":
                assert {entry.status for entry in log} == {302}  # recorded, not followed
            else:
                assert all(entry.error for entry in log), log
            time.sleep(0.2)
            assert len(mock.extensions["ivh_mock"].store.callbacks()) == 3  # never retried
    finally:
        receiver.close()


def _post(url, data, headers):
    response = requests.post(url, data=data, headers=headers, timeout=2)
    return response.status_code, response.json()


def test_a_callback_is_claimed_only_once(mock, api, clock, receiver):
    task_id = submit(api, text(CallbackUrl=receiver.url))
    clock.advance(60)
    store = mock.extensions["ivh_mock"].store
    receiver.wait_for(1)
    assert store.claim_callback(task_id, 60) is False
    assert store.due_callbacks(clock.now()) == []


def test_a_delivery_ends_at_its_timeout_in_all_however_the_target_drips(mock, api, clock, trickler):
    """A target that trickles its answer a byte at a time got several POSTs for one task: the timeout bounded each
    read, so the delivery outlived its claim's lease. The whole delivery now ends at the timeout (0.5 s here)."""
    task_id = submit(api, text(CallbackUrl=trickler + "/headers"))
    clock.advance(60)
    log = _wait_for_log(mock, 1, timeout=3.0)
    assert log[0].task_id == task_id and log[0].status is None
    assert "longer than the callback timeout of 0.5 s in all" in log[0].error and log[0].latency_ms < 2500
    assert mock.extensions["ivh_mock_dispatcher"].lease_seconds > 2 * 0.5  # the lease outlasts any delivery


def test_a_target_that_never_accepts_the_connection_is_given_up_at_the_timeout_in_all(mock, api, clock):
    """Connecting is not watched by the delivery's deadline, and had a second more than the timeout: a target whose
    listen queue is full (it never accepts) took 6 s of a "5 s in all" (1.5 s of 0.5 s here)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    queued = [socket.create_connection(listener.getsockname(), timeout=1)]  # a queue of one (backlog 0): full
    try:
        submit(api, text(CallbackUrl=f"http://127.0.0.1:{listener.getsockname()[1]}/cb"))
        clock.advance(60)
        log = _wait_for_log(mock, 1, timeout=5.0)
        assert log[0].status is None and log[0].latency_ms < 900, log[0]  # 0.5 s, and the dispatcher's beat
    finally:
        for connection in (*queued, listener):
            connection.close()


def test_sending_a_backlog_of_callbacks_reads_the_store_once_not_once_per_callback(mock, api, clock, receiver,
                                                                                    monkeypatch):
    """The dispatcher makes a pass as each delivery ends, and each pass read (and decoded) every due task: sending a
    backlog was quadratic, 8,000 callbacks due at once 157 s of CPU on SQLite. A pass now takes from what was read
    (shares.Backlog), read again when the clock moves through the mock, or once READ_AGAIN_SECONDS (here a minute)
    and ten reads' time have passed."""
    from ivh_mock.mock_server.lifecycle import shares

    monkeypatch.setattr(shares, "READ_AGAIN_SECONDS", 60)
    store, reads = mock.extensions["ivh_mock"].store, []
    due_callbacks = store.due_callbacks

    def counted(now: float):
        if threading.current_thread().name == "ivh-callback-dispatcher":
            reads.append(now)
        return due_callbacks(now)

    monkeypatch.setattr(store, "due_callbacks", counted)
    for _ in range(40):
        submit(api, text(CallbackUrl=receiver.url))
    clock.advance(60)
    reads.clear()
    mock.extensions["ivh_mock_dispatcher"].wake()  # as a move through the control API does
    assert len({entry["body"]["Payload"]["TaskId"] for entry in receiver.wait_for(40)}) == 40
    assert len(reads) <= 2, len(reads)  # each pass had read them: about one read for each callback


def test_a_backlog_slow_to_read_is_read_again_within_a_bound(monkeypatch):
    """Read again no sooner than ten reads' time, a backlog of thousands (a read of 80 ms at 3,000 due) left what came
    due meanwhile, as time ran or by another worker's move, waiting a second or more, the more the longer. Here a read
    of 50 ms, and a bound of 0.2 s."""
    from ivh_mock.mock_server.lifecycle import shares

    monkeypatch.setattr(shares, "READ_AGAIN_LATEST", 0.2)
    reads = []
    backlog = shares.Backlog(lambda: reads.append(time.sleep(0.05)) or ["item"], lambda item: "target")
    backlog.queues()
    time.sleep(0.3)  # past the bound, not past ten reads' time
    backlog.queues()
    assert len(reads) == 2


def test_a_callback_read_as_due_is_not_sent_once_the_clock_went_back_before_its_finish(clock, store_spec, receiver,
                                                                                        monkeypatch):
    """The backlog is read before the clock's last move, which another worker may have made, back: a callback read as
    due was sent before its task finished on the mock's clock (reporting SUCCESS), and never again."""
    from ivh_mock.mock_server.lifecycle import shares

    monkeypatch.setattr(shares, "READ_AGAIN_SECONDS", 60)  # read again only when woken
    monkeypatch.setattr(shares, "READ_AGAIN_LATEST", 60)
    app = create_app({**CONFIG, "store": store_spec}, clock=clock)  # its dispatcher not started: passes made here
    dispatcher = app.extensions["ivh_mock_dispatcher"]
    try:
        task_id = submit(in_process(app, clock), text(CallbackUrl=receiver.url))
        clock.advance(60)
        dispatcher.wake()  # read as due at the next pass
        assert dispatcher._backlog.queues()  # (that pass's read)
        clock.set(clock.now() - 60)  # back, as by another worker: no wake here
        assert dispatcher.dispatch_due() == 0 and receiver.received == []
        clock.advance(60)
        dispatcher.wake()
        assert dispatcher.dispatch_due() == 1
        assert receiver.wait_for(1)[0]["body"]["Payload"]["TaskId"] == task_id
    finally:
        dispatcher.stop()


def test_a_slow_target_delays_only_its_own_callbacks(clock, store_spec):
    """Slow targets once held every delivery thread, so another account's callback waited for them (1 s became
    31 s); now a target gets at most a quarter of the threads."""
    app = create_app({**CONFIG, "background": True, "callback_timeout_seconds": 3.0, "store": store_spec},
                     clock=clock)
    slow, fast = Receiver("slow", delay=2.5), Receiver()
    try:
        api = in_process(app, clock)
        for _ in range(12):
            submit(api, text(CallbackUrl=slow.url))
        clock.advance(60)
        slow.wait_for(8)  # the slow target holds its threads
        submit(api, text(CallbackUrl=fast.url))
        clock.advance(60)
        started = time.monotonic()
        fast.wait_for(1, timeout=10)
        assert time.monotonic() - started < 1.5
    finally:
        app.extensions["ivh_mock_dispatcher"].stop()
        slow.close()
        fast.close()


def test_a_thread_that_comes_free_goes_to_a_target_that_answers_before_slow_ones(clock):
    """Four slow targets filled the pool (a quarter each), and as threads came free the due list, walked in the
    store's order, gave them back to the slow targets' backlog: another target's callback waited a delivery timeout
    for each round of it (15 s behind 4 x 24 slow callbacks). A target with nothing under way now goes first."""
    app = create_app({**CONFIG, "background": True, "callback_timeout_seconds": 1.0, "callback_workers": 4},
                     clock=clock)
    slow, fast = [Receiver("slow", delay=5) for _ in range(4)], Receiver()
    try:
        api = in_process(app, clock)
        for receiver in slow:
            for _ in range(4):
                submit(api, text(CallbackUrl=receiver.url))
        clock.advance(60)
        for receiver in slow:
            receiver.wait_for(1)  # every thread is held
        submit(api, text(CallbackUrl=fast.url))
        clock.advance(60)
        started = time.monotonic()
        fast.wait_for(1, timeout=10)
        assert time.monotonic() - started < 1.8  # the first thread to come free, within one timeout, not three
    finally:
        app.extensions["ivh_mock_dispatcher"].stop()
        for receiver in (*slow, fast):
            receiver.close()


@pytest.mark.parametrize("url", ["http://[/cb", "http://a:b@[/x", "http://℀.com/x"])
def test_a_callback_url_python_cannot_split_still_gets_a_target(url):
    from ivh_mock.mock_server.lifecycle.shares import target_of as _target

    assert _target(url)  # a ValueError here stopped every dispatch pass, and so every account's callbacks


@pytest.mark.stores("memory")
def test_a_callback_url_whose_host_no_lookup_takes_is_recorded_as_a_failed_delivery(mock, api, clock, caplog):
    """A host label past 63 characters: urllib3's LocationParseError went past requests, and the delivery logged a
    traceback as a failure of the mock's own."""
    url = "http://x" + "a" * 80 + "/hook"
    task_id = submit(api, text(CallbackUrl=url))
    clock.advance(60)
    log = _wait_for_log(mock, 1)
    assert log[0].task_id == task_id and log[0].status is None
    assert log[0].error.startswith("LocationParseError: ") and "label empty or too long" in log[0].error, log[0].error
    assert "failed unexpectedly" not in caplog.text


def test_a_delivered_callback_leaves_no_connection_its_receiver_closed(api, clock):
    """Kept alive in the dispatcher's pool, each connection whose receiver then closed it (as a test's receiver does
    when the test ends) stayed in CLOSE_WAIT until its host's pool was pushed out: 137 sockets for 60 receivers."""
    receivers = [RawServer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok") for _ in range(4)]
    try:
        for receiver in receivers:
            for _ in range(2):
                submit(api, text(CallbackUrl=receiver.url + "/callback"))
        clock.advance(600)
        until(lambda: sum(receiver.requests for receiver in receivers) == 8, seconds=10)
        ports = {int(receiver.url.rsplit(":", 1)[1]) for receiver in receivers}
        time.sleep(0.3)  # each receiver closed its end as it answered
        assert close_waits(ports) == 0
    finally:
        for receiver in receivers:
            receiver.close()


def test_a_receivers_wait_refuses_a_count_or_timeout_that_is_none_by_name():
    """A text timeout had raised TypeError from inside the wait (unsupported operand ... 'float' and 'str'), and a
    NaN one waited no time and said nothing of why."""
    with Receiver() as receiver:
        for count, timeout, named in ((1, "x", "timeout"), (1, float("nan"), "timeout"), (1, -1, "timeout"),
                                      (1, True, "timeout"), ("1", 1, "count"), (-1, 1, "count")):
            with pytest.raises(ValueError, match=f"^{named} must be"):
                receiver.wait_for(count, timeout=timeout)
        assert receiver.wait_for(0, timeout=0) == []


def test_a_slow_receiver_closed_mid_answer_keeps_no_thread_nor_socket():
    """A `slow` receiver's answer under way slept out its whole delay after close(): its thread and its socket lived
    on, one per test that used one, for 30 s each."""
    before = {thread.ident for thread in threading.enumerate()}
    receiver = Receiver(mode="slow", delay=30)
    host, port = receiver.url.removeprefix("http://").split("/")[0].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as sender:
        sender.sendall(b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        receiver.wait_for(1)
        receiver.close()
        assert sender.recv(100) == b""  # its connection ends with the receiver, unanswered
    until(lambda: {thread.ident for thread in threading.enumerate()} <= before, seconds=2)


def test_a_sender_that_gives_up_on_a_slow_receiver_prints_nothing(capfd):
    """socketserver printed a traceback to stderr, from the handler's thread, when a `slow` receiver answered a
    sender that had gone (its deadline): as late as `delay` after the receiver was closed, into the output of
    whatever test ran then, whose own checks of stderr then failed."""
    with Receiver(mode="slow", delay=0.2) as receiver:
        host, port = receiver.url.removeprefix("http://").split("/")[0].rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=5) as sender:
            sender.sendall(b"POST /callback HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            receiver.wait_for(1)
            sender.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, bytes([1, 0, 0, 0, 0, 0, 0, 0]))  # reset
    time.sleep(0.4)  # the handler answers after its delay, to no one
    assert capfd.readouterr().err == ""


def test_a_claim_the_store_could_not_make_holds_no_thread(mock, api, clock, receiver, monkeypatch, caplog):
    """A claim that raised (the store locked by another program, or out of reach) kept a thread of its target's share
    taken, and what the pass had claimed before it was never sent: after eight such passes the target got no
    callback again, the store long back, until the mock was restarted."""
    first, second = (submit(api, text(CallbackUrl=receiver.url)) for _ in range(2))
    # more than the target's share (a quarter of 32 threads)
    failures = locked_at_first(monkeypatch, mock.extensions["ivh_mock"].store, "claim_callback", 12,
                               lambda task_id: task_id == second)
    clock.advance(60)
    got = receiver.wait_for(2, timeout=4)  # the first within its lease (6 s) too: claimed, it is sent
    assert sorted(entry["body"]["Payload"]["TaskId"] for entry in got) == sorted([first, second])
    assert len(failures) == 12
    # each failed pass had logged its traceback, every 50 ms for as long as the store was out: now a line as it
    # begins and one as it ends
    said = [record.getMessage() for record in caplog.records if record.name == "ivh_mock.callbacks"]
    assert said == ["callback dispatch waits for the store: the store is locked by another program",
                    "callback dispatch goes on: the store answers again"]


def test_a_delivery_the_store_could_not_record_at_once_is_recorded_once_it_can_and_not_sent_again(
        mock, api, clock, receiver, monkeypatch):
    """A delivery whose record failed (the store out of reach for a moment) was left claimed and unrecorded: once
    its lease lapsed the callback was POSTed again. Its record is now tried again while the lease holds, each try
    naming the one delivery (a store that may have kept it already, its answer lost, keeps it once)."""
    from ivh_mock.mock_server.lifecycle import shares

    monkeypatch.setattr(shares, "RECORD_AGAIN_SECONDS", 0.05)  # (every half second, served)
    store = mock.extensions["ivh_mock"].store
    failures = locked_at_first(monkeypatch, store, "record_callback", 3)
    tried, locked = [], store.record_callback
    monkeypatch.setattr(store, "record_callback", lambda *args: tried.append(args[1:]) or locked(*args))
    task_id = submit(api, text(CallbackUrl=receiver.url))
    clock.advance(60)
    log = _wait_for_log(mock, 1, timeout=4)  # tried again and again, within the claim's lease (6 s)
    assert [attempt.task_id for attempt in log] == [task_id] and failures == [task_id] * 3
    assert len(tried) == 4 and len(set(tried)) == 1 and tried[0][0]
    assert store.due_callbacks(clock.now() + 3600) == [] and len(receiver.received) == 1
