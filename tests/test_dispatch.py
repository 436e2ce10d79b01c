"""How a worker hands requests to its threads (mock_server/serving/dispatch.py, DECISIONS.md D68): a running request
holds the queue for its thread, a stalled one hands it to another thread, the event loop wakes in time to look, and
`threads` still bounds how many run at once."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Iterator

import pytest
import requests

from ivh_mock.mock_server import deadline
from ivh_mock.mock_server.serving import dispatch, server as serving
from ivh_mock.mock_server.serving.dispatch import Dispatcher

from .conftest import answer_bodies, until


class Job:
    """A task for the dispatcher: records the thread that ran it and how many ran at once, and waits on `gate` (an
    Event) or sleeps `seconds` when given one."""

    def __init__(self, log: list, gate: threading.Event | None = None, seconds: float = 0.0, gauge=None):
        self.log, self.gate, self.seconds, self.gauge, self.done = log, gate, seconds, gauge, threading.Event()

    def service(self) -> None:
        self.log.append(threading.get_ident())
        if self.gauge is not None:
            self.gauge.enter()
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.seconds)
        if self.gauge is not None:
            self.gauge.leave()
        self.done.set()

    def cancel(self) -> None:
        pass


class Gauge:
    """The most jobs that ran at once."""

    def __init__(self):
        self.lock, self.now, self.most = threading.Lock(), 0, 0

    def enter(self) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)

    def leave(self) -> None:
        with self.lock:
            self.now -= 1


@contextlib.contextmanager
def _dispatching(threads: int, stall_seconds: float, *gates: threading.Event) -> Iterator[Dispatcher]:
    """A dispatcher whose threads have all started and fallen asleep; on the way out the `gates` open, so that no job
    is left waiting, and every thread stops."""
    dispatcher = Dispatcher(stall_seconds=stall_seconds)
    dispatcher.set_thread_count(threads)
    try:
        until(lambda: len(dispatcher.idle) == threads)
        yield dispatcher
    finally:
        for gate in gates:
            gate.set()
        _stop(dispatcher)


def _stop(dispatcher: Dispatcher) -> None:
    dispatcher.shutdown(timeout=5)
    assert not dispatcher.threads  # every thread left, the idle ones too


def _running(dispatcher: Dispatcher) -> int:
    with dispatcher.lock:
        return len(dispatcher.started)


def _as_loop(dispatcher: Dispatcher, loop_thread: int) -> list:
    """Count the dispatcher's pokes, with `loop_thread` taken for the event loop's thread."""
    pokes: list = []
    dispatcher.poke, dispatcher.loop_thread = lambda: pokes.append(1), loop_thread
    return pokes


def test_a_stop_waits_for_its_stopped_threads_to_end_but_not_past_its_bound():
    """waitress counted a thread gone as it left its loop, before it had ended; the worker's stop then kept the SQLite
    connection of a thread still ending open, and a stopped server left the write-ahead log beside its database (seen
    under load). A thread still running a request past the bound is not waited for longer."""
    ended: list[threading.Thread] = []

    class Lingering(Dispatcher):
        def handler_thread(self, thread_no: int) -> None:
            ended.append(threading.current_thread())
            super().handler_thread(thread_no)
            time.sleep(0.3)  # out of its loop and not yet ended, as a thread the machine does not run at once

    dispatcher = Lingering(stall_seconds=60)
    dispatcher.set_thread_count(3)
    until(lambda: len(dispatcher.idle) == 3)
    dispatcher.shutdown(timeout=5)
    assert len(ended) == 3 and not any(thread.is_alive() for thread in ended)

    gate = threading.Event()
    with _dispatching(threads=2, stall_seconds=60) as stuck:
        job = Job([], gate)
        stuck.add_task(job)
        until(lambda: _running(stuck) == 1)
        started = time.monotonic()
        stuck.shutdown(timeout=0.5)
        assert time.monotonic() - started < 2 and not job.done.is_set()
        gate.set()


def test_one_thread_runs_the_queue_while_it_keeps_up():
    # waitress's own dispatcher wakes a thread per request: four threads would share these
    with _dispatching(threads=4, stall_seconds=60) as dispatcher:
        ran: list[int] = []
        for _ in range(10):  # in bursts, with the queue running empty between them
            jobs = [Job(ran) for _ in range(20)]
            for job in jobs:
                dispatcher.add_task(job)
            assert all(job.done.wait(5) for job in jobs)
        assert len(ran) == 200 and len(set(ran)) == 1


def test_a_stalled_request_lets_another_thread_take_the_queue():
    gate = threading.Event()
    with _dispatching(3, 60, gate) as dispatcher:
        ran: list[int] = []
        stuck = Job(ran, gate)
        dispatcher.add_task(stuck)
        until(lambda: ran)
        quick = [Job(ran) for _ in range(5)]
        for job in quick:
            dispatcher.add_task(job)
        time.sleep(0.2)
        assert not any(job.done.is_set() for job in quick)  # the stuck request holds the queue
        dispatcher.stall_seconds = 0.05  # and now it has held it long enough
        until(lambda: all(job.done.is_set() for job in quick), then=dispatcher.look)  # as the worker's loop does
        assert len(set(ran)) == 2 and not stuck.done.is_set()


def test_no_more_than_the_threads_run_at_once():
    gate = threading.Event()
    with _dispatching(2, 0.01, gate) as dispatcher:
        ran: list[int] = []
        jobs = [Job(ran, gate) for _ in range(3)]
        for job in jobs:
            dispatcher.add_task(job)
        deadline = time.monotonic() + 1
        while time.monotonic() < deadline:
            dispatcher.look()
            time.sleep(0.01)
        assert _running(dispatcher) == 2 and len(ran) == 2
        gate.set()
        assert all(job.done.wait(5) for job in jobs)


def test_a_request_queued_behind_a_hold_has_the_loop_look_when_the_hold_ends():
    gate = threading.Event()
    with _dispatching(2, 60, gate) as dispatcher:
        pokes = _as_loop(dispatcher, -1)  # the test's thread is not the loop's
        ran: list[int] = []
        dispatcher.add_task(Job(ran, gate))
        until(lambda: ran)
        assert pokes == [] and dispatcher.look() is None  # nothing waits
        dispatcher.add_task(Job(ran))  # as a thread queues its connection's next request
        assert pokes == [1]
        assert 59 < dispatcher.look() <= 60  # the loop is to look again when the hold ends


def test_a_thread_that_leaves_a_held_queue_has_the_loop_look_when_the_hold_ends():
    first, second = threading.Event(), threading.Event()
    with _dispatching(3, 0.05, first, second) as dispatcher:
        pokes = _as_loop(dispatcher, threading.get_ident())  # as if the test's thread were the loop's
        ran: list[int] = []
        dispatcher.add_task(Job(ran, first))
        until(lambda: ran)
        job = Job(ran, second)
        dispatcher.add_task(job)
        until(lambda: len(ran) == 2, then=dispatcher.look)  # the first stalled: a second thread runs the job
        dispatcher.stall_seconds = 60  # from now on both hold the queue
        waiting = Job(ran)
        dispatcher.add_task(waiting)
        assert pokes == []
        second.set()  # the second finishes and leaves the queue to the first, which holds it
        assert job.done.wait(5)
        until(lambda: pokes == [1])
        assert not waiting.done.is_set()


def test_a_thread_done_once_the_loop_is_back_leaves_the_queue_to_the_loops_thread():
    """A thread that ran requests while the deputy had the loop gives the queue back once its request is done and the
    loop's thread has the loop again: it had gone on taking every request queued as it finished, taking turns with
    the loop's thread for as long as requests kept coming (a fifth to a half of a Redis store's requests, D71)."""
    gate = threading.Event()
    with _dispatching(1, 0, gate) as dispatcher:
        me = threading.get_ident()
        pokes = _as_loop(dispatcher, me)
        ran: list[int] = []
        dispatcher.add_task(Job(ran, gate))  # taken by the worker's thread: nobody runs requests in the loop's yet
        until(lambda: ran)
        dispatcher.inline_thread = me  # now the loop's thread runs them, and it has the loop
        queued = Job(ran)
        dispatcher.add_task(queued)  # the loop's thread's to run
        assert pokes == []
        gate.set()  # the worker's thread is done: it leaves `queued`, and has the loop look
        until(lambda: pokes)
        until(lambda: len(dispatcher.idle) == 1)
        assert not queued.done.is_set() and list(dispatcher.queue) == [queued]
        dispatcher.stall_seconds = 60  # a pass of the loop's thread lasts a hold
        assert dispatcher.run_queue() is None
        assert queued.done.is_set() and ran[-1] == me


def test_a_request_that_says_it_waits_gives_up_its_hold_at_once():
    gate = threading.Event()
    with _dispatching(2, 60, gate) as dispatcher:

        class Download(Job):
            def service(self):
                dispatcher.waiting()  # what deadline.holding says through deadline.waiting when served
                super().service()

        ran: list[int] = []
        dispatcher.add_task(Download(ran, gate))
        quick = Job(ran)
        dispatcher.add_task(quick)
        assert quick.done.wait(5) and len(set(ran)) == 2
        dispatcher.waiting()  # from a thread that is not the dispatcher's: nothing to give up


def test_a_request_that_starts_to_wait_behind_another_hold_has_the_loop_look_again():
    first, second, go = threading.Event(), threading.Event(), threading.Event()
    with _dispatching(3, 0.05, first, second, go) as dispatcher:
        pokes = _as_loop(dispatcher, threading.get_ident())  # as if the test's thread were the loop's

        class Download(Job):
            def service(self):
                go.wait(10)
                dispatcher.waiting()
                super().service()

        ran: list[int] = []
        dispatcher.add_task(Job(ran, first))
        until(lambda: ran)
        dispatcher.add_task(Download(ran, second))
        until(lambda: _running(dispatcher) == 2, then=dispatcher.look)  # the first stalled
        dispatcher.stall_seconds = 60  # from now on both hold the queue
        waiting = Job(ran)
        dispatcher.add_task(waiting)
        assert pokes == []
        go.set()  # the second starts to wait: the first still holds, so the loop is to look when its hold ends
        until(lambda: pokes == [1])
        assert not waiting.done.is_set()


def _served(app, stall_seconds: float, busy=None):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    server = serving.waitress_server(app, listener, threads=4, max_body_bytes=1024)
    server.task_dispatcher.stall_seconds = stall_seconds
    if busy is not None:  # as balance.balanced sets it on a worker that shares its connections
        server.busy = busy
    loop = threading.Thread(target=dispatch.serve, args=(server,), daemon=True)
    loop.start()
    return server, loop, f"http://127.0.0.1:{listener.getsockname()[1]}"


def _unserve(server, loop) -> None:
    server._map.clear()  # the loop ends once its map is empty
    server.pull_trigger()  # and it wakes to see that at once
    loop.join(5)
    server.close()
    assert not loop.is_alive() and deadline.waiting is deadline.nobody_waits
    assert "ivh-loop-deputy" not in {thread.name for thread in threading.enumerate()}
    _stop(server.task_dispatcher)


def _app(gate: threading.Event):
    def app(environ, start_response):
        if environ["PATH_INFO"] == "/hang":
            gate.wait(20)
        elif environ["PATH_INFO"] == "/download":
            with deadline.holding(None, RuntimeError):
                gate.wait(20)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(threading.get_ident()).encode()]
    return app


def _get_later(url: str) -> threading.Thread:
    thread = threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 30}, daemon=True)
    thread.start()
    return thread


def test_the_loops_own_thread_runs_requests_while_nothing_holds_the_queue():
    """Reading, running and sending in one thread: no request waits for a thread to wake, nor its answer for the
    loop to wake, nor does the loop wake itself (D71). Once a request there waits, the next goes to another thread,
    and the loop then comes back."""
    gate = threading.Event()
    server, loop, url = _served(_app(gate), 5)
    pulls = []
    pull = server.trigger._physical_pull
    server.trigger._physical_pull = lambda: pulls.append(threading.get_ident()) or pull()
    try:
        with requests.Session() as session:
            assert {session.get(url + "/quick", timeout=10).text for _ in range(20)} == {str(loop.ident)}
        assert pulls == []  # waitress wrote to the loop's pipe as each request ended, to wake the loop it ran in
        waiting = _get_later(url + "/download")
        until(lambda: server.task_dispatcher.deputy_has_loop)  # it waits in the loop's thread: the deputy has the loop
        assert requests.get(url + "/quick", timeout=10).text != str(loop.ident)
        gate.set()
        waiting.join(10)
        done = time.monotonic()
        until(lambda: not server.task_dispatcher.deputy_has_loop)  # woken to give it back: not the loop's 1 s timeout
        assert time.monotonic() - done < 0.5
        assert requests.get(url + "/quick", timeout=10).text == str(loop.ident)
        with socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])), timeout=10) as connection:
            # pipelined: the first request, as it ends, queues the second (waitress's channel.service)
            connection.sendall(b"GET /quick HTTP/1.1\r\nHost: x\r\n\r\n" * 2)
            assert answer_bodies(connection, 2) == [str(loop.ident).encode()] * 2
    finally:
        gate.set()
        _unserve(server, loop)


def test_the_loops_thread_says_it_is_busy_before_each_request_it_runs():
    """While the loop's own thread runs a request it takes no connection: it tells the other workers so (D79), and
    each leaves new connections to it no longer than one look."""
    said: list[int] = []
    server, loop, url = _served(_app(threading.Event()), 5, busy=lambda: said.append(threading.get_ident()))
    try:
        with requests.Session() as session:
            assert {session.get(url + "/quick", timeout=10).text for _ in range(3)} == {str(loop.ident)}
        assert said == [loop.ident] * 3
    finally:
        _unserve(server, loop)


@pytest.mark.parametrize("path, stall, most", [("/hang", 0.3, 0.8), ("/download", 5, 1)])
def test_the_served_worker_answers_while_a_request_hangs(path, stall, most):
    """A worker's own event loop looks, and wakes to look when a hold ends: a request blocked on something slow
    holds up the next one for stall_seconds, not until the loop's idle timeout (a second) or the end of the hang;
    one that waits through deadline.holding, as downloads and renders do, not at all."""
    gate = threading.Event()
    server, loop, url = _served(_app(gate), stall)
    hanging = _get_later(url + path)
    try:
        until(lambda: _running(server.task_dispatcher) == 1)  # it holds the one running thread
        started = time.monotonic()
        answer = requests.get(url + "/quick", timeout=10)
        assert answer.status_code == 200 and time.monotonic() - started < most
    finally:
        gate.set()
        hanging.join(10)
        _unserve(server, loop)


def test_each_stalled_request_hands_the_queue_on_after_its_own_hold():
    """Two requests hang, one after the other: the third is answered two holds after the first began, not when the
    loop's idle timeout (a second) happens to come round."""
    gate = threading.Event()
    server, loop, url = _served(_app(gate), 0.2)
    hanging = [_get_later(url + "/hang")]
    try:
        until(lambda: _running(server.task_dispatcher) == 1)
        began = time.monotonic()
        hanging.append(_get_later(url + "/hang"))
        until(lambda: _running(server.task_dispatcher) == 2)
        first, second = sorted(server.task_dispatcher.started.values())
        assert second - first >= 0.2  # the second waited for the first's hold to end
        answer = requests.get(url + "/quick", timeout=10)
        assert answer.status_code == 200 and time.monotonic() - began < 0.9
    finally:
        gate.set()
        for thread in hanging:
            thread.join(10)
        _unserve(server, loop)


STOPPED_MID_REQUEST = """
import signal, socket, sys, time
from ivh_mock.mock_server.serving import dispatch, server as serving
dispatch.STOP_SECONDS = 1

def app(environ, start_response):
    if environ["PATH_INFO"] == "/slow":
        print("begun", flush=True)
        time.sleep(float(sys.argv[1]))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"done"]

def exit_serving(signum, frame):  # as a worker's
    raise SystemExit(0)

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)
signal.signal(signal.SIGTERM, exit_serving)
dispatch.serve(serving.waitress_server(app, listener, threads=4, max_body_bytes=1024))
print("stopped", flush=True)
"""


def test_sigterm_stops_an_idle_worker_at_once():
    """SIGTERM comes while the loop's thread waits in its poll: the handler wakes the loop (a worker's own requests
    do not, D71), which stops then, not when its poll's 1 s timeout ends."""
    worker = subprocess.Popen([sys.executable, "-c", STOPPED_MID_REQUEST, "0"], stdout=subprocess.PIPE, text=True)
    try:
        port = int(worker.stdout.readline())
        assert requests.get(f"http://127.0.0.1:{port}/quick", timeout=10).text == "done"
        time.sleep(0.2)  # in its poll
        sent = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.stdout.readline().strip() == "stopped"
        assert time.monotonic() - sent < 0.5
    finally:
        worker.kill()
        worker.wait()


@contextlib.contextmanager
def _sigterm_mid_request(seconds: float):
    """A worker (STOPPED_MID_REQUEST) whose loop's thread runs a request of `seconds` when SIGTERM reaches it: yields
    the worker, its port, the thread asking, and what it got (the answer, or the error instead) once it has."""
    worker = subprocess.Popen([sys.executable, "-c", STOPPED_MID_REQUEST, str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    try:
        port = int(worker.stdout.readline())
        got: list = []

        def ask() -> None:
            try:
                got.append(requests.get(f"http://127.0.0.1:{port}/slow", timeout=30))
            except requests.RequestException as error:
                got.append(error)

        asking = threading.Thread(target=ask, daemon=True)
        asking.start()
        assert worker.stdout.readline().strip() == "begun"
        worker.send_signal(signal.SIGTERM)
        yield worker, port, asking, got
    finally:
        worker.kill()
        worker.wait()


@pytest.mark.parametrize("seconds", [0.002, 0.5], ids=["quick", "past-its-hold"])
def test_sigterm_during_a_request_the_loops_thread_runs_lets_it_finish_and_answer(seconds):
    """The loop's own thread runs a request (past its hold, the deputy has the loop meanwhile): SIGTERM stops the
    worker once that request is done and its answer sent, whether it comes during the request or just after."""
    with _sigterm_mid_request(seconds) as (worker, _, asking, got):
        asking.join(10)
        assert [(answer.status_code, answer.text) for answer in got] == [(200, "done")]
        assert worker.wait(10) == 0 and worker.stdout.read().strip() == "stopped"


def test_sigterm_waits_no_longer_than_its_bound_for_a_request_that_never_ends():
    """SIGTERM comes while the loop's thread runs a request that never ends: the worker takes no new connection, and
    ends after STOP_SECONDS (SIGALRM), so that a worker whose master is gone cannot go on serving for ever."""
    with _sigterm_mid_request(3600) as (worker, port, _, _):  # that request is answered by nobody
        time.sleep(0.2)
        with pytest.raises(requests.RequestException):  # accepted by nobody: the kernel queues it, then it ends
            requests.get(f"http://127.0.0.1:{port}/quick", timeout=0.5)
        assert worker.wait(10) == -signal.SIGALRM


STOPPED_IN_A_FINALIZER = """
import os, signal, socket, sys, time
from ivh_mock.mock_server.serving import balance, server as serving

armed = []

def app(environ, start_response):
    armed.append(True)  # the loop's next round runs a finalizer, in which SIGTERM comes
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"armed"]

class Finalized:
    def __del__(self):  # the handler runs in here: Python ignores (prints) what it raises
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.5)

within = balance.within

def finalizing_within(server, seconds):  # the loop's thread (the main one) asks it each round
    if armed:
        armed.clear()
        Finalized()
    return within(server, seconds)

def exit_serving(signum, frame):  # as a worker's, while it starts
    raise SystemExit(0)

balance.within = finalizing_within
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)
signal.signal(signal.SIGTERM, exit_serving)
serving._run(serving.waitress_server(app, listener, threads=2, max_body_bytes=1024, hold_queue=False), [])
print("stopped", flush=True)
"""


def test_sigterm_that_comes_while_waitresss_own_loop_runs_a_finalizer_still_stops_it():
    """A worker on waitress's own loop (a Redis store across a network) stopped by SystemExit from its handler; that
    raised in a finalizer or a collector's callback was ignored, and the worker served on until the master killed
    it."""
    worker = subprocess.Popen([sys.executable, "-c", STOPPED_IN_A_FINALIZER], stdout=subprocess.PIPE, text=True)
    try:
        port = int(worker.stdout.readline())
        assert requests.get(f"http://127.0.0.1:{port}/", timeout=10).text == "armed"
        assert worker.wait(10) == 0 and worker.stdout.read().strip() == "stopped"
    finally:
        worker.kill()
        worker.wait()


def test_clients_that_pipeline_and_never_read_hold_no_thread():
    """Five connections, one more than the worker's threads besides the loop's, each send 40 pipelined requests for
    600 KB and read nothing: another client is still answered, and one of them gets every answer, in order, once it
    reads; the others, idle past the timeout, are closed. waitress held a thread in each until its client read,
    and the worker answered no one."""
    big = b"x" * 600_000

    def app(environ, start_response):
        body = big if environ["PATH_INFO"] == "/big" else b"quick"
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    server, loop, url = _served(app, 0.2)
    port = int(url.rsplit(":", 1)[1])
    hoarders = []
    try:
        for _ in range(5):
            connection = socket.socket()
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
            connection.settimeout(10)
            connection.connect(("127.0.0.1", port))
            hoarders.append(connection)
            connection.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n" * 40)  # 24 MB: past waitress's 16 MB
        time.sleep(1)
        assert requests.get(url + "/quick", timeout=5).text == "quick"
        assert answer_bodies(hoarders[0], 40) == [big] * 40  # it reads at last: the parked requests are answered
        server.adj.channel_timeout, server.adj.cleanup_interval, server.next_channel_cleanup = 0.5, 0.1, 0
        server.pull_trigger()
        began = time.monotonic()
        for connection in hoarders[1:]:  # the others stay parked, send nothing, take nothing: they are closed
            while connection.recv(1 << 20):
                pass
        assert time.monotonic() - began < 3  # by the idle timeout (0.5 s here), not by anything slower
    finally:
        for connection in hoarders:
            connection.close()
        _unserve(server, loop)


def test_an_answer_whose_body_comes_whole_goes_out_in_one_send(monkeypatch):
    """The head and the body's first write go to the socket together (waitress wrote each with a system call of its
    own); a HEAD and a body longer than its Content-Length go as waitress sends them, the last cut to its length."""
    def app(environ, start_response):
        body = {"/whole": [b"0123456789"], "/stream": [b"01234", b"56789"], "/liar": [b"0123456789"]}
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", "3" if environ["PATH_INFO"] == "/liar" else "10")])
        return [] if environ["REQUEST_METHOD"] == "HEAD" else body[environ["PATH_INFO"]]  # as Flask answers HEAD

    writes: list[bytes] = []
    write_soon = serving.HTTPChannel.write_soon
    monkeypatch.setattr(serving.HTTPChannel, "write_soon", lambda channel, data: writes.append(data) or
                        write_soon(channel, data))
    server, loop = None, None
    try:
        server, loop, url = _served(app, stall_seconds=5)
        answer = requests.get(f"{url}/whole", timeout=10)
        assert answer.content == b"0123456789"
        assert len(writes) == 1 and writes[0].startswith(b"HTTP/1.1 200 OK\r\n") and writes[0].endswith(
            b"\r\n\r\n0123456789")
        writes.clear()
        assert requests.get(f"{url}/stream", timeout=10).content == b"0123456789"
        assert len(writes) == 2 and writes[0].endswith(b"\r\n\r\n01234") and writes[1] == b"56789"
        with socket.create_connection(server.socket.getsockname()[:2], timeout=10) as connection:
            connection.sendall(b"HEAD /whole HTTP/1.1\r\nHost: x\r\n\r\nGET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while not data.endswith(b"0123456789"):
                data += connection.recv(1 << 16)
            head, _, rest = data.partition(b"\r\n\r\n")  # the HEAD's answer: a head alone, then the GET's
            assert b"Content-Length: 10" in head and rest.startswith(b"HTTP/1.1 200 OK\r\n")
        with socket.create_connection(server.socket.getsockname()[:2], timeout=10) as connection:
            connection.sendall(b"GET /liar HTTP/1.1\r\nHost: x\r\n\r\nGET /whole HTTP/1.1\r\nHost: x\r\n\r\n")
            assert answer_bodies(connection, 2) == [b"012", b"0123456789"]  # the second answer starts where it should
    finally:
        if server is not None:
            _unserve(server, loop)


def _hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
    return [b"hello"]


def test_a_request_that_dawdles_past_its_time_is_closed(monkeypatch):
    """A head sent a byte at a time put off the idle timeout with each byte, so it held its connection (one of a
    worker's CONNECTIONS) as long as it went on: a request now has REQUEST_SECONDS, and a second per MIN_RATE bytes."""
    from ivh_mock.spec import deadline

    monkeypatch.setattr(deadline, "REQUEST_SECONDS", 1.0)
    server, loop, url = _served(_hello, 1)
    server.adj.cleanup_interval = 0.1  # the upkeep that closes it (10 s in a worker)
    server.next_channel_cleanup = 0  # should the loop have set its next upkeep 10 s on already
    try:
        client = socket.create_connection(server.socket.getsockname(), timeout=5)
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started, closed = time.monotonic(), False
        while not closed and time.monotonic() - started < 5:
            with contextlib.suppress(OSError):
                client.sendall(b"a")  # faster than the idle timeout: each byte is activity
            client.settimeout(0.1)
            with contextlib.suppress(socket.timeout):
                closed = client.recv(1) == b""
        assert closed and time.monotonic() - started < 3
        client.close()
        assert requests.get(url, timeout=5).text == "hello"  # one that arrives in time is answered
        # blank lines before a request count as its own: each ended a request of its own, which waitress drops, and a
        # CRLF now and then (within the idle timeout) had held a connection for ever
        client = socket.create_connection(server.socket.getsockname(), timeout=5)
        started, closed = time.monotonic(), False
        while not closed and time.monotonic() - started < 5:
            with contextlib.suppress(OSError):
                client.sendall(b"\r\n")
            client.settimeout(0.1)
            with contextlib.suppress(socket.timeout):
                closed = client.recv(1) == b""
        assert closed and time.monotonic() - started < 3
        client.close()
        # one blank line is a client's CRLF after a body (RFC 9112 2.2): its time is not the next request's
        client = socket.create_connection(server.socket.getsockname(), timeout=5)
        client.sendall(b"\r\n")
        time.sleep(2.5)  # past the request's 1 s and the loop's 1 s look, within the idle timeout
        client.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # (the upkeep runs as it comes)
        time.sleep(0.15)
        client.sendall(b"Connection: close\r\n\r\n")
        assert client.recv(65536).startswith(b"HTTP/1.1 200 OK")
        client.close()
    finally:
        _unserve(server, loop)


OUT_OF_FILES = """
import resource, socket
from ivh_mock.mock_server.serving import dispatch, server as serving

def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "4")])
    return [b"done"]

listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(64)
resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))
print(listener.getsockname()[1], flush=True)
dispatch.serve(serving.waitress_server(app, listener, threads=2, max_body_bytes=1024))
"""


def _cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads the worker's processor time from /proc")
def test_a_worker_out_of_file_descriptors_waits_for_one_instead_of_spinning():
    """With no descriptor left for a new connection, accept() failed and the listener stayed readable: the worker
    polled it again at once, at 100% of a processor, until a connection closed. It now leaves the listener alone a
    moment each time, and takes the waiting connections once descriptors are free."""
    worker = subprocess.Popen([sys.executable, "-c", OUT_OF_FILES], stdout=subprocess.PIPE, text=True)
    clients = []
    try:
        port = int(worker.stdout.readline())
        for _ in range(50):  # past its 40 descriptors: the rest wait in the listener's queue
            clients.append(socket.create_connection(("127.0.0.1", port), timeout=5))
        time.sleep(0.5)
        before = _cpu_seconds(worker.pid)
        time.sleep(1)
        assert _cpu_seconds(worker.pid) - before < 0.5
        for client in clients[:30]:
            client.close()
        last = clients[-1]  # queued until now
        last.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert last.recv(65536).endswith(b"done")
    finally:
        for client in clients:
            client.close()
        worker.kill()
        worker.wait()
