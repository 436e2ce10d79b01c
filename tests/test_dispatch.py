"""How a worker hands requests to its threads (mock_server/serving/dispatch.py, DECISIONS.md D68): the thread already
running takes the queue while it keeps up, another starts only when the running ones stall, and `threads` still
bounds how many run at once."""

from __future__ import annotations

import socket
import threading
import time

import requests

from ivh_mock.mock_server.serving.dispatch import Dispatcher
from ivh_mock.mock_server.serving.server import waitress_server


class Job:
    """A task for the dispatcher: records the thread that ran it, and waits on `gate` when given one."""

    def __init__(self, log: list, gate: threading.Event | None = None):
        self.log, self.gate, self.done = log, gate, threading.Event()

    def service(self) -> None:
        self.log.append(threading.get_ident())
        if self.gate is not None:
            self.gate.wait(10)
        self.done.set()

    def cancel(self) -> None:
        pass


def _dispatcher(threads: int, stall_seconds: float) -> Dispatcher:
    dispatcher = Dispatcher(stall_seconds=stall_seconds)
    dispatcher.set_thread_count(threads)
    deadline = time.monotonic() + 10
    while len(dispatcher.idle) < threads and time.monotonic() < deadline:  # every thread started and asleep
        time.sleep(0.01)
    return dispatcher


def _stop(dispatcher: Dispatcher) -> None:
    dispatcher.shutdown(timeout=5)
    assert not dispatcher.threads  # every thread left, the idle ones too


def _running(dispatcher: Dispatcher) -> int:
    with dispatcher.lock:
        return len(dispatcher.started)


def test_one_thread_runs_the_queue_while_it_keeps_up():
    # waitress's own dispatcher wakes a thread per request: four threads would share these
    dispatcher = _dispatcher(threads=4, stall_seconds=60)
    try:
        ran: list[int] = []
        for _ in range(10):  # in bursts, with the queue running empty between them
            jobs = [Job(ran) for _ in range(20)]
            for job in jobs:
                dispatcher.add_task(job)
            assert all(job.done.wait(5) for job in jobs)
        assert len(ran) == 200 and len(set(ran)) == 1
    finally:
        _stop(dispatcher)


def test_a_stalled_request_lets_another_thread_take_the_queue():
    dispatcher = _dispatcher(threads=3, stall_seconds=0.05)
    gate = threading.Event()
    try:
        ran: list[int] = []
        stuck = Job(ran, gate)
        dispatcher.add_task(stuck)
        quick = [Job(ran) for _ in range(5)]
        for job in quick:
            dispatcher.add_task(job)
        time.sleep(0.2)
        assert not any(job.done.is_set() for job in quick)  # nobody looked for a stall yet
        dispatcher.look()  # what waitress's event loop does each time round
        assert all(job.done.wait(5) for job in quick)
        assert len(set(ran)) == 2 and not stuck.done.is_set()
    finally:
        gate.set()
        _stop(dispatcher)


def test_no_more_than_the_threads_run_at_once():
    dispatcher = _dispatcher(threads=2, stall_seconds=0.01)
    gate = threading.Event()
    try:
        ran: list[int] = []
        jobs = [Job(ran, gate) for _ in range(3)]
        for job in jobs:
            dispatcher.add_task(job)
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            dispatcher.look()
            time.sleep(0.02)
        assert _running(dispatcher) == 2 and len(ran) == 2
        gate.set()
        assert all(job.done.wait(5) for job in jobs)
    finally:
        gate.set()
        _stop(dispatcher)


def test_the_served_worker_answers_while_a_request_hangs():
    """A worker's own event loop looks for stalls: a request blocked on something slow does not hold up the next
    one, even when no other socket wakes the loop."""
    gate = threading.Event()

    def app(environ, start_response):
        if environ["PATH_INFO"] == "/hang":
            gate.wait(20)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(threading.get_ident()).encode()]

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    server = waitress_server(app, listener, threads=4, max_body_bytes=1024)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    threading.Thread(target=server.run, daemon=True).start()
    hanging = threading.Thread(target=requests.get, args=(url + "/hang",), kwargs={"timeout": 30}, daemon=True)
    try:
        hanging.start()
        time.sleep(0.3)  # it holds the one running thread
        started = time.monotonic()
        answer = requests.get(url + "/quick", timeout=10)
        assert answer.status_code == 200 and time.monotonic() - started < 2
    finally:
        gate.set()
        hanging.join(10)
        server.task_dispatcher.shutdown(timeout=5)
        server.close()
