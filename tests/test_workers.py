"""`ivh-mock serve --workers N` on a shared store: every worker gives the same answers, each callback is sent
exactly once, and a SIGKILL of the whole server under load loses no task whose TaskId was returned."""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from ivh_mock.mock_server.serving import balance, dispatch
from ivh_mock.mock_server.serving.testing import CallbackReceiver
from ivh_mock.spec.signing import signed_query

from . import forked
from .conftest import PATHS, TEXT_PAYLOAD, ServeProcess, answer_bodies, redis_store, until

FAST = ("--queue-seconds", "1", "--render-startup", "2", "--render-speed", "0.25")


@pytest.fixture(params=["sqlite", "redis"])
def store(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'shared.sqlite3'}"
    return redis_store(request.getfixturevalue("redis_server"), "w")


def call(url: str, operation_id: str, payload, appkey: str = "workers", session=requests, at: float | None = None):
    """A signed call (at `at` on the mock's clock, default now) on a new connection, so that successive calls land
    on different workers."""
    query = signed_query(appkey, "mock-accesstoken", int(time.time() if at is None else at))
    response = session.post(f"{url}{PATHS[operation_id]}?{query}", timeout=30,
                            data=json.dumps({"Header": {}, "Payload": payload}, ensure_ascii=False).encode(),
                            headers={"Content-Type": "application/json;charset=utf-8", "Connection": "close"})
    return response.json()


def control(url: str, path: str, body) -> dict:
    response = requests.post(f"{url}/__mock__/{path}", json=body, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def submit_all(url: str, count: int, callback_url: str, appkeys: int = 8) -> list[str]:
    def one(n: int) -> str:
        answer = call(url, "phototovideonotrain", {**TEXT_PAYLOAD, "CallbackUrl": callback_url},
                      appkey=f"team-{n % appkeys}")
        assert answer["Header"]["Code"] == 0, answer
        return answer["Payload"]["TaskId"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(one, range(count)))


@pytest.mark.slow
def test_four_workers_send_each_of_hundreds_of_callbacks_exactly_once(store, tmp_path):
    receiver = CallbackReceiver()
    try:
        with ServeProcess(tmp_path / "data", "--workers", "4", "--store", store, *FAST) as served:
            control(served.url, "clock", {"frozen": True})
            ids = submit_all(served.url, 300, receiver.url)
            assert len(set(ids)) == 300
            control(served.url, "clock", {"advance": 3600})  # all due at once, raced for by four dispatchers
            deadline = time.monotonic() + 60
            while len(receiver.received) < 300 and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(1.0)  # let any second delivery arrive: there must be none
            got = [entry["body"]["Payload"]["TaskId"] for entry in receiver.received]
            log = requests.get(f"{served.url}/__mock__/callbacks?limit=100000", timeout=30).json()["callbacks"]
            assert sorted(got) == sorted(ids), delivery_report(ids, got, log)
            assert sorted(entry["task_id"] for entry in log) == sorted(ids), delivery_report(ids, got, log)
    finally:
        receiver.close()


def delivery_report(ids: list[str], got: list[str], log: list[dict]) -> str:
    """Say what went wrong with the callbacks of `ids`: failed deliveries (in the mock's log with an error or a
    status the receiver never saw), callbacks lost (neither received nor logged), and any sent twice."""
    logged = {entry["task_id"]: entry for entry in log}
    failed = Counter(f"{entry['error'] or entry['status']}"[:80] for task_id, entry in logged.items()
                     if task_id not in got)
    lost = [task_id for task_id in ids if task_id not in logged and task_id not in got]
    twice = [task_id for task_id, count in Counter(got).items() if count > 1]
    return (f"{len(set(got))} of {len(ids)} callbacks received; failed deliveries by error: {dict(failed)}; lost "
            f"(never logged nor received): {len(lost)}; sent twice: {len(twice)}; logged {len(log)} attempts")


def test_the_callback_receiver_takes_a_burst_of_connections_while_busy():
    """Four workers' pools connect to the receiver at once: every connection is taken into its listen queue, even
    while it is busy, instead of waiting for SYN retries (the cause of callbacks that failed under load)."""
    receiver = CallbackReceiver()
    port = int(urlsplit(receiver.url).port)
    receiver.pause()  # stop accepting: the listen queue alone takes the burst
    sockets = []
    try:
        for _ in range(64):
            connection = socket.socket()
            connection.setblocking(False)
            connection.connect_ex(("127.0.0.1", port))
            sockets.append(connection)
        _, writable, _ = select.select([], sockets, [], 2.0)
        assert len(writable) == 64
    finally:
        for connection in sockets:
            connection.close()
        receiver.close()
        receiver.server.server_close()


def test_whichever_worker_answers_the_lifecycle_and_quotas_agree(store, tmp_path):
    with ServeProcess(tmp_path / "data", "--workers", "4", "--store", store, *FAST) as served:
        control(served.url, "clock", {"frozen": True})
        task_id = call(served.url, "phototovideonotrain", TEXT_PAYLOAD)["Payload"]["TaskId"]
        reports = {json.dumps(call(served.url, "getprogress", {"TaskId": task_id})["Payload"], sort_keys=True)
                   for _ in range(24)}
        assert len(reports) == 1 and json.loads(reports.pop())["Status"] == "COMMIT"
        control(served.url, "clock", {"advance": 1.5})  # moved through one worker, seen by all
        statuses = {call(served.url, "getprogress", {"TaskId": task_id})["Payload"]["Status"] for _ in range(24)}
        assert statuses == {"MAKING"}
        assert requests.put(f"{served.url}/__mock__/accounts/quota-team", json={"max_pending": 3},
                            timeout=30).status_code == 200
        codes = [call(served.url, "phototovideonotrain", TEXT_PAYLOAD, appkey="quota-team")["Header"]["Code"]
                 for _ in range(6)]
        assert codes == [0, 0, 0, 100008, 100008, 100008]


@pytest.mark.slow
def test_sigkill_under_load_loses_no_returned_task_and_callbacks_follow_a_restart(store, tmp_path):
    receiver = CallbackReceiver()
    returned: list[tuple[str, str]] = []  # (TaskId, appkey)
    stop = threading.Event()

    def load(url: str, worker: int) -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                answer = call(url, "phototovideonotrain", {**TEXT_PAYLOAD, "CallbackUrl": receiver.url},
                              appkey=f"crash-{worker}", session=session)
            except (requests.RequestException, ValueError):
                continue  # the server died under this request: its TaskId was never returned
            if answer["Header"]["Code"] == 0:
                returned.append((answer["Payload"]["TaskId"], f"crash-{worker}"))

    try:
        with ServeProcess(tmp_path / "data", "--workers", "2", "--store", store, *FAST) as served:
            control(served.url, "clock", {"frozen": True})
            threads = [threading.Thread(target=load, args=(served.url, n)) for n in range(6)]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 60
            while len(returned) < 150 and time.monotonic() < deadline:
                time.sleep(0.05)
            served.kill()  # SIGKILL to master and workers, mid-request
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
        assert len(returned) >= 150
        with ServeProcess(tmp_path / "data", "--workers", "2", "--store", store, *FAST) as again:
            for task_id, appkey in returned:
                answer = call(again.url, "getprogress", {"TaskId": task_id}, appkey=appkey)
                assert answer["Header"]["Code"] == 0, answer
            now = control(again.url, "clock", {"advance": 3600})["now"]
            receiver.wait_for(len(returned), timeout=60)
            time.sleep(1.0)
            got = [entry["body"]["Payload"]["TaskId"] for entry in receiver.received]
            assert len(got) == len(set(got)), "a callback was sent twice"
            assert {task_id for task_id, _ in returned} <= set(got)  # every returned task called back
            statuses = {call(again.url, "getprogress", {"TaskId": task_id}, appkey=appkey, at=now)["Payload"]["Status"]
                        for task_id, appkey in returned}
            assert statuses == {"SUCCESS"}
    finally:
        stop.set()
        receiver.close()


@pytest.mark.parametrize("args, message", [
    (["--store", "memory", "--workers", "2"], "the memory store lives in one process"),
    (["--store", "postgres://x"], "unknown store 'postgres://x'"),
    (["--store", "sqlite::memory:"], "sqlite: needs a file path"),
    (["--store", "redis://127.0.0.1:1/0"], "Error 111 connecting to 127.0.0.1:1"),
    (["--workers", "0"], "'0' is not a whole number from 1 to 256"),
])
def test_bad_store_or_worker_options_exit_2_with_a_message(args, message, tmp_path):
    result = forked.mock_run(["serve", "--port", "0", "--data-dir", str(tmp_path), *args])
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_two_servers_on_one_redis_share_tasks_clock_and_callbacks(redis_server, tmp_path):
    """Two `ivh-mock serve` processes, as on two hosts (each its own master and workers), on one Redis and one
    shared data directory: a task submitted to one is polled on the other, and its callback goes out once."""
    store = redis_store(redis_server, "h")
    receiver = CallbackReceiver()
    try:
        with ServeProcess(tmp_path / "data", "--store", store, *FAST) as first, \
                ServeProcess(tmp_path / "data", "--store", store, "--workers", "2", *FAST) as second:
            control(first.url, "clock", {"frozen": True})
            ids = [call(host.url, "phototovideonotrain", {**TEXT_PAYLOAD, "CallbackUrl": receiver.url},
                        appkey=f"hosts-{n}")["Payload"]["TaskId"] for n, host in enumerate([first, second] * 10)]
            assert requests.get(f"{second.url}/__mock__/clock", timeout=30).json()["frozen"] is True
            now = control(second.url, "clock", {"advance": 600})["now"]
            for n, task_id in enumerate(ids):  # each polled on the server it was not submitted to
                other = second if n % 2 == 0 else first
                answer = call(other.url, "getprogress", {"TaskId": task_id}, appkey=f"hosts-{n}", at=now)
                assert answer["Payload"]["Status"] == "SUCCESS", answer
            receiver.wait_for(len(ids), timeout=30)
            time.sleep(1.0)
            got = sorted(entry["body"]["Payload"]["TaskId"] for entry in receiver.received)
            assert got == sorted(ids)
            media = call(first.url, "getprogress", {"TaskId": ids[1]}, appkey="hosts-1", at=now)["Payload"]["MediaUrl"]
            assert media.startswith(second.url)  # submitted to the second server, so its URL names that host
            video = requests.get(first.url + urlsplit(media).path, timeout=60)  # ... yet the first serves it too
            assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    finally:
        receiver.close()


PID_APP = """
import os

def app(environ, start_response):  # answers with the pid of the worker that took the request
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]
"""

SMALL_SERVER = """
import os, signal, sys, time
from ivh_mock.mock_server.serving.server import Server

exec(sys.argv[3])  # the app

class Finalized:
    def __del__(self):  # SIGTERM comes while this process runs a finalizer: its handler runs in here, and Python
        os.kill(os.getpid(), signal.SIGTERM)  # ignores (prints) what that raises
        time.sleep(0.5)

def ready(port):
    print(port, flush=True)
    if sys.argv[2] == "die-at-once":  # the master dies as the workers start: each must still see it gone
        os.kill(os.getpid(), signal.SIGKILL)
    if sys.argv[2] == "stop-in-a-finalizer":
        Finalized()

# the app's source may give a `load` (run in each worker), and HOLD_QUEUE
Server(globals().get("load", lambda: app), "127.0.0.1:0", workers=int(sys.argv[1]), threads=2, ready=ready,
       hold_queue=globals().get("HOLD_QUEUE", True)).run()
print("stopped", flush=True)
"""


@contextlib.contextmanager
def _small_server(workers: int, mode: str = "serve", app: str = PID_APP, errors: bool = False):
    """The master of SMALL_SERVER serving `app` (the source of a WSGI `app`), in a process group of its own with its
    workers (killed on the way out), and its port. With `errors`, its stderr is a pipe too."""
    master = subprocess.Popen([sys.executable, "-c", SMALL_SERVER, str(workers), mode, app], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE if errors else None, text=True, start_new_session=True)
    try:
        yield master, int(master.stdout.readline())
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(master.pid, signal.SIGKILL)
        master.wait()


@pytest.mark.parametrize("when", ["at-once", "while-serving"])
def test_workers_whose_master_is_killed_stop_by_themselves(when):
    with _small_server(2, "die-at-once" if when == "at-once" else "serve") as (master, port):
        if when == "while-serving":
            until(lambda: requests.get(f"http://127.0.0.1:{port}/", timeout=5).text.isdigit())
            master.kill()
        master.wait(10)

        def workers_left() -> bool:
            try:
                os.killpg(master.pid, 0)
            except ProcessLookupError:
                return False
            return True

        until(lambda: not workers_left(), seconds=10)  # each looks twice a second, then stops as on SIGTERM


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0005, 0.001, 0.002, 0.004])
def test_sigterm_that_comes_as_the_master_forks_a_new_worker_still_stops_it(delay):
    """A worker dies, the master forks another, and SIGTERM arrives meanwhile: the master still stops (the signal
    used to be raised inside the fork's own hooks, and lost)."""
    with _small_server(1) as (master, port):
        worker = int(requests.get(f"http://127.0.0.1:{port}/", timeout=5).text)
        time.sleep(1.05)  # a worker that dies within its first second is replaced a second later
        os.kill(worker, signal.SIGKILL)
        time.sleep(delay)
        master.send_signal(signal.SIGTERM)
        assert master.wait(15) == 0 and master.stdout.read().strip() == "stopped"


def test_a_sigterm_the_master_gets_while_it_runs_a_finalizer_still_stops_it():
    """The master's handler raised its stop; raised in a finalizer (or a collector's callback), it was ignored, and the
    master went on waiting for its workers to die, serving for ever."""
    with _small_server(1, "stop-in-a-finalizer") as (master, _):
        assert master.wait(8) == 0 and master.stdout.read().strip() == "stopped"


@pytest.mark.parametrize("hold_queue", [True, False], ids=["dispatch", "waitress-loop"])
def test_a_sigterm_a_starting_worker_gets_while_it_runs_a_finalizer_still_stops_it(hold_queue):
    """The master passes the operator's SIGTERM on to a worker that is still building its app, and the worker's
    handler runs in a finalizer (as in a collector's callback, which a worker has): the SystemExit it raised was
    ignored, the worker served on, and the stop waited out the master's whole grace (10 s) before it killed it."""
    app = PID_APP + f"""
HOLD_QUEUE = {hold_queue}

def load():
    os.kill(os.getppid(), signal.SIGTERM)  # the operator's stop, as this worker starts
    Finalized()
    return app
"""
    with _small_server(1, app=app) as (master, _):
        assert master.wait(8) == 0 and master.stdout.read().strip() == "stopped"


def test_a_request_cut_short_by_the_stops_bound_is_said():
    """A request still running past the worker's bound on a stop (dispatch.STOP_SECONDS; SIGALRM) was cut, and the
    server exited 0 saying nothing of it."""
    app = PID_APP + """
import time
from ivh_mock.mock_server.serving import dispatch
dispatch.STOP_SECONDS = 1

def app(environ, start_response):
    print("begun", flush=True)
    time.sleep(30)
"""
    with _small_server(1, app=app, errors=True) as (master, port):
        def ask() -> None:
            with contextlib.suppress(requests.RequestException):  # cut short
                requests.get(f"http://127.0.0.1:{port}/", timeout=30)

        threading.Thread(target=ask, daemon=True).start()
        assert master.stdout.readline().strip() == "begun"
        master.send_signal(signal.SIGTERM)
        assert master.wait(8) == 0
        assert "was killed by SIGALRM: a request it still ran 1 s into the stop was cut short" in master.stderr.read()


def test_an_answer_cut_short_by_the_stops_bound_is_said():
    """An answer a client took too slowly to be done within a stop's bound was cut when the worker exited, 0, saying
    nothing (a slow download, cut at 9 s)."""
    app = PID_APP + """
from ivh_mock.mock_server.serving import dispatch
dispatch.STOP_SECONDS = 2

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream")])
    return [b"x" * 50_000_000]
"""
    with _small_server(1, app=app, errors=True) as (master, port), socket.create_connection(("127.0.0.1", port)) as \
            reader:
        reader.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.recv(16).startswith(b"HTTP/1.1 200")  # and takes no more
        master.send_signal(signal.SIGTERM)
        assert master.wait(8) == 0
        assert "1 connection(s) still answering 1 s into the stop were cut short" in master.stderr.read()


def test_a_stop_lets_the_callbacks_under_way_end_and_records_them(tmp_path):
    """On SIGTERM a worker left with its deliveries under way unrecorded: once their claims lapsed, the next start
    sent them again (2 of 10 callbacks twice after a restart). A stopping worker now lets them end, each within its
    timeout, and records them."""
    store = f"sqlite:{tmp_path / 'store.sqlite3'}"
    with CallbackReceiver(mode="slow", delay=1.5) as receiver:
        with ServeProcess(tmp_path / "data", "--store", store) as served:
            answer = call(served.url, "phototovideonotrain", {**TEXT_PAYLOAD, "CallbackUrl": receiver.url},
                          appkey="stopping")
            assert answer["Header"]["Code"] == 0, answer
            control(served.url, "clock", {"advance": 600})
            receiver.wait_for(1)  # the delivery is under way: the receiver answers 1.5 s later
            assert served.stop() == 0
        with ServeProcess(tmp_path / "data", "--store", store) as again:
            attempts = requests.get(f"{again.url}/__mock__/callbacks?appkey=stopping", timeout=10).json()
        assert [attempt["status"] for attempt in attempts["callbacks"]] == [200]


def _ask_pid(connection: socket.socket, close: bool = False) -> int:
    """Send a request on `connection`, kept alive unless `close`, and read which worker's pid answers it."""
    connection.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n" + (b"Connection: close\r\n" if close else b"") + b"\r\n")
    return int(answer_bodies(connection, 1)[0])


def test_connections_opened_at_once_are_spread_evenly_over_the_workers():
    """A client opening its connections at once found them all on one worker in 3 of 10 runs (wrk's 16 against two
    workers; 1 and 15 in 3 more, 2 and 3 in one each), served at one worker's rate for as long as it kept them. A
    worker now leaves a new connection to another that holds fewer (D79). Three bursts, each of fresh connections,
    so that luck alone does not pass (about 1 in 100)."""
    with _small_server(2) as (_, port):
        _until_both_answer(port, keep=False)  # a worker still starting says nothing: the first took every connection
        held: list[tuple[int, socket.socket]] = []
        try:
            for _ in range(3):  # each burst while the ones before are still held
                burst = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(16)]
                answered = [(_ask_pid(connection), connection) for connection in burst]
                held += answered
                # not always 8 and 8: a worker whose loop's thread runs a request is left a connection for one look
                # only (D79); 24 bursts measured 8/8 to 6/10
                spread = Counter(pid for pid, _ in answered)
                assert len(spread) == 2 and min(spread.values()) >= 4, spread
        finally:
            for _, connection in held:
                connection.close()


def _until_both_answer(port: int, keep: bool = True) -> list[tuple[int, socket.socket]]:
    """Connections to the two-worker server on `port`, opened one at a time until each worker has answered on one,
    with the pid that answered each; with `keep` False, each is closed once answered (and none is returned)."""
    held: list[tuple[int, socket.socket]] = []
    seen: set[int] = set()
    deadline = time.monotonic() + 10
    while len(seen) < 2:
        assert time.monotonic() < deadline, Counter(pid for pid, _ in held)
        connection = socket.create_connection(("127.0.0.1", port), timeout=10)
        pid = _ask_pid(connection, close=not keep)
        seen.add(pid)
        if keep:
            held.append((pid, connection))
        else:
            connection.close()
    return held


def test_a_worker_that_stops_looking_is_not_waited_on():
    """A worker defers to another holding fewer connections for a moment only (DEFER_SECONDS for each connection, and
    not past the other's promise to look again): one stopped (here by SIGSTOP, as a hung loop would be) holds up no
    connection for long, and the others take its share."""
    with _small_server(2) as (_, port):
        held = _until_both_answer(port)
        try:
            stopped = held[-1][0]
            os.kill(stopped, signal.SIGSTOP)
            try:
                for _ in range(len(held) + 2):  # past the stopped worker's count: each would be left to it
                    connection = socket.create_connection(("127.0.0.1", port), timeout=5)  # waited on 0.05 s
                    held.append((_ask_pid(connection), connection))
                    assert held[-1][0] != stopped
            finally:
                os.kill(stopped, signal.SIGCONT)
        finally:
            for _, connection in held:
                connection.close()


class _Listener:
    """The part of waitress's listening dispatcher that balance.balanced wraps."""

    def __init__(self):
        self.active_channels: dict[int, object] = {}
        self.accepted = 0
        self.accepting = True
        self.adj = type("Adj", (), {"asyncore_loop_timeout": 1.0})()

    def readable(self) -> bool:
        return self.accepting

    def handle_accept(self) -> None:
        self.accepted += 1
        self.active_channels[len(self.active_channels)] = object()


class _Clock:
    def __init__(self):
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def two_listeners(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(balance, "time", clock)
    shares = balance.Shares(2)
    first, second = _Listener(), _Listener()
    balance.balanced(first, shares, 0)
    balance.balanced(second, shares, 1)
    return clock, shares, first, second


def test_a_worker_leaves_a_connection_to_one_holding_fewer_and_looks_again_soon(two_listeners, monkeypatch):
    clock, shares, first, second = two_listeners
    yields = []
    monkeypatch.setattr(balance.os, "sched_yield", lambda: yields.append(clock.now))
    assert first.readable() and second.readable()  # both hold none: each takes what comes
    first.handle_accept()
    assert first.accepted == 1 and first.readable()
    first.handle_accept()  # the second holds fewer, and looks: the first leaves it this one, gives up the processor
    assert first.accepted == 1 and yields == [clock.now]  # (the second, woken by the same connection, takes it)...
    assert first.readable() and dispatch._timeout(first, None) == 1.0  # ... and looks again at once
    first.handle_accept()  # still there: it rests from the socket, its loop sleeping no longer than the rest
    assert first.accepted == 1 and not first.readable()
    # (a worker that polled its full second left connections waiting a second each whenever both looked away)
    assert dispatch._timeout(first, None) == pytest.approx(balance.REST_SECONDS + 0.001)
    assert dispatch._timeout(second, None) == 1.0 and dispatch._timeout(second, 0.25) == 0.251
    second.handle_accept()
    assert second.accepted == 1 and second.readable()  # its loop's next round says it holds one now
    clock.now += balance.REST_SECONDS
    assert first.readable()
    first.handle_accept()
    assert first.accepted == 2
    shares.clear(1)  # the second is gone: nobody is to wait on it, whatever it held
    second.active_channels.clear()
    assert first.readable()
    first.handle_accept()
    assert first.accepted == 3


def test_a_connection_left_to_others_is_taken_once_it_has_waited_long_enough(two_listeners):
    """A worker that looks but cannot accept (out of file descriptors: waitress logs and goes on) is waited on for
    DEFER_SECONDS at most, for each connection, the loop sleeping between looks; one that another worker took starts
    no wait for the next."""
    clock, _, first, second = two_listeners
    assert first.readable() and second.readable()
    first.handle_accept()
    assert first.readable()

    def look_again() -> bool:  # the rest ends and the loop looks: the connection still waits
        clock.now = max(clock.now, first.rest_until)
        return first.readable()

    first.handle_accept()  # left to the second, which holds fewer...
    rests = 0
    while first.accepted == 1 and look_again():
        assert clock.now - 1000.0 < balance.DEFER_SECONDS + balance.REST_SECONDS
        first.handle_accept()  # ... which never takes it
        second.readable()  # though it keeps its promise
        rests += first.rest_until > clock.now
    assert first.accepted == 2 and clock.now - 1000.0 >= balance.DEFER_SECONDS
    assert rests >= balance.DEFER_SECONDS / balance.REST_SECONDS - 1  # the loop slept between looks
    third = clock.now
    assert first.readable()
    first.handle_accept()  # a new connection: left to the second again
    assert first.accepted == 2
    second.handle_accept()  # which takes it: the first's next look finds none waiting
    second.readable()
    assert first.readable() and first.readable()
    clock.now = third + 2 * balance.DEFER_SECONDS  # a long while later, another connection: its wait starts anew
    second.readable()
    assert first.readable()
    first.handle_accept()
    assert first.accepted == 2


def test_a_worker_whose_slot_did_not_move_through_a_whole_wait_is_passed_over_until_it_moves(two_listeners):
    """A worker that is stopped, or hung in one request, says nothing new: once a connection has waited DEFER_SECONDS
    on it, the connections that come after it do not wait on it again (16 coming together waited 0.77 s behind a
    stopped worker, one after another), until its slot moves."""
    clock, _, first, second = two_listeners
    assert first.readable() and second.readable()
    first.handle_accept()
    assert first.readable()
    first.handle_accept()  # left to the second, which holds fewer and says it looks, but is stopped from here on
    while first.accepted == 1:
        clock.now = max(clock.now, first.rest_until)
        assert first.readable()
        first.handle_accept()
    assert clock.now - 1000.0 >= balance.DEFER_SECONDS
    for accepted in (3, 4):  # the next ones are taken at once: the second's slot reads as it did
        assert first.readable()
        first.handle_accept()
        assert first.accepted == accepted
    clock.now += 0.001
    second.readable()  # it goes on: its loop's next round says so, and it is waited on again
    assert first.readable()
    first.handle_accept()
    assert first.accepted == 4


def test_a_connection_that_comes_after_the_one_left_to_another_was_taken_starts_a_wait_of_its_own(two_listeners,
                                                                                                  monkeypatch):
    """The wait on others ended only when a look found no connection: one that came in the same poll, long after
    the other worker took the connection left to it, was taken for the end of that wait, and the other, idle since,
    for a worker whose slot had not moved through it."""
    clock, _, first, second = two_listeners

    def second_takes_it() -> None:  # the second, woken by the same connection, takes it while the first yields
        second.handle_accept()
        second.readable()

    monkeypatch.setattr(balance.os, "sched_yield", second_takes_it)
    assert first.readable() and second.readable()
    first.handle_accept()
    assert first.readable()
    first.handle_accept()  # left to the second, which takes it
    assert (first.accepted, second.accepted) == (1, 1) and first.readable()
    clock.now += 0.5  # the poll waits: nothing comes for half a second
    first.handle_accept()  # a new connection: both hold one
    assert first.accepted == 2 and first.readable()
    first.handle_accept()  # the next is left to the second, which holds fewer: it was never stalled
    assert first.accepted == 2


def test_a_busy_or_resting_worker_is_waited_on_only_past_a_margin(two_listeners):
    """A worker whose loop's thread runs a request takes no connection meanwhile. With clients that open a connection
    for each request the counts are 0 or 1 apart at every moment, and waiting on busy workers for each took a bare
    endpoint from 7,000 to 850 requests a second: a busy worker is waited on only when it holds two fewer, for one
    look. One that rests is waited on as one that looks, but only when it holds two fewer too: two that rest, each
    for the other, would take no connection at all."""
    clock, _, first, second = two_listeners
    assert first.readable() and second.readable()
    first.handle_accept()
    assert first.readable()
    second.busy()  # holds none, one fewer than the first: not waited on
    first.handle_accept()
    assert first.accepted == 2
    assert first.readable()
    second.busy()  # two fewer: waited on...
    first.handle_accept()
    assert first.accepted == 2
    assert first.readable()  # ... for one look, then the first takes it
    first.handle_accept()
    assert first.accepted == 3
    assert second.readable()  # looking again, holding three fewer: waited on as long as it looks
    first.handle_accept()
    assert first.accepted == 3
    second.rest_until = clock.now + 1  # resting now (as after leaving a connection to the first)
    assert not second.readable()
    assert first.readable()
    first.handle_accept()  # three fewer: waited on
    assert first.accepted == 3
    first.active_channels.popitem(), first.active_channels.popitem()  # two closed: one more than the second
    clock.now += balance.DEFER_SECONDS
    assert first.readable() and first.readable()
    first.handle_accept()  # a resting one holding one fewer is not waited on
    assert first.accepted == 4


def test_a_busy_worker_holding_half_as_many_is_waited_on_as_one_that_looks(two_listeners):
    """Clients whose first requests come while their connections are still being accepted keep both workers busy in
    turns: waited on for one look each, bursts of 16 split 1/15 to 3/13 in most of 12 runs against the mock's own
    app. A busy worker holding half as many or fewer (of four or more) is waited on as one that looks."""
    clock, _, first, second = two_listeners
    first.active_channels.update({n: object() for n in range(3)})  # three, against the second's one
    second.active_channels[0] = object()
    assert first.readable() and second.readable()
    second.busy()
    first.handle_accept()  # a busy one holding two fewer, of three: one look
    assert first.readable()
    first.handle_accept()
    assert len(first.active_channels) == 4
    assert first.readable()
    second.busy()  # one of four: half as many, and more
    for _ in range(3):
        first.handle_accept()  # a look, then rests
        clock.now = max(clock.now, first.rest_until)
        assert first.readable()
    assert len(first.active_channels) == 4


def test_a_worker_that_stops_or_is_full_is_not_waited_on(two_listeners):
    _, shares, first, second = two_listeners
    first.readable(), second.readable()
    first.handle_accept()
    second.accepting = False  # waitress's own answer once it stops accepting, or holds its limit
    assert not second.readable()
    first.handle_accept()
    assert first.accepted == 2
    second.accepting = True  # looking again: waited on again
    second.readable()
    first.readable()
    first.handle_accept()
    assert first.accepted == 2
    balance.withdraw(second)  # SIGTERM: a stopping worker says so at once, before its loop looks again
    first.handle_accept()
    assert first.accepted == 3
    balance.withdraw(_Listener())  # a server that shares nothing has nothing to say


@pytest.mark.parametrize("connections, until", [(7, 12.5), (999, 1_000_000.0), (1000, 1_000_000_000.0)])
def test_a_slot_reads_back_what_was_written(connections, until):
    shares = balance.Shares(2)
    shares.publish(1, connections, until)
    assert shares.fewer_elsewhere(0, connections + 1, until - 0.002) == balance.LOOKING
    assert not shares.fewer_elsewhere(0, connections, until - 0.002)  # holds as many: not fewer
    assert not shares.fewer_elsewhere(0, connections + 1, until)  # its promise has ended
    for doing, found in ((balance.BUSY, balance.BUSY), (balance.RESTING, balance.LOOKING)):
        shares.publish(1, connections, until, doing)
        assert not shares.fewer_elsewhere(0, connections + 1, until - 0.002)
        assert shares.fewer_elsewhere(0, connections + 2, until - 0.002) == found
    shares.clear(1)
    assert not shares.fewer_elsewhere(0, connections + 2, 0.001)
