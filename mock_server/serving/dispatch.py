"""How a worker hands the requests waitress has read to its threads: to the thread already running while it keeps up,
and to another only when it does not.

waitress wakes an idle thread for every request it reads, the one that has been idle longest. Under load every thread
of a worker then holds a request, all of them take turns on one core (Python runs one thread at a time), and each
request costs about eight context switches. Here a running request holds the queue for its first `stall_seconds`:
the other threads sleep, and the thread that finishes takes the next request without sleeping. A request that starts
to wait on a download or a render says so (`deadline.waiting`) and gives up its hold at once; after any other wait (a
slow reader, a slow store) the hold ends with `stall_seconds`. Then the next request goes to another thread, the one
that went idle last. The worker's event loop does the looking (`serve`), waking in time for it, so that no thread
wakes up just to look (DECISIONS.md D68).

Served, the event loop's own thread runs each request while nothing holds the queue: reading, running and sending
then take no turns between threads at all (D71). Should that request wait or run past its hold, a deputy thread
takes the loop over until it is done, so the worker keeps reading and sending meanwhile.

Requests that all wait a few milliseconds on a store across a network would be served nearly one at a time: a worker
whose store is Redis on another host keeps waitress's own dispatcher (`ivh-mock serve` chooses).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from typing import Any, Callable

from waitress.task import ThreadedTaskDispatcher

from .. import deadline
from . import balance
from .streams import say

STALL_SECONDS = 0.005  # how long a request holds the queue for its thread
# How often the deputy looks whether the request the loop's thread runs has run past its hold, while requests run
# there: each look takes the interpreter's lock from that request, and looking every hold cost 8% of the
# submissions a second (D71). A request that waits says so, and the deputy takes the loop at once.
WATCH_SECONDS = 0.02
STOP_SECONDS = 10  # the longest a stop waits for the requests under way (the master waits as long)


class Dispatcher(ThreadedTaskDispatcher):
    """waitress's dispatcher with its threads woken one at a time; `threads` still bounds how many run at once."""

    def __init__(self, stall_seconds: float = STALL_SECONDS):
        super().__init__()
        self.stall_seconds = stall_seconds
        self.started: dict[int, float] = {}  # thread ident -> when the request it runs started (time.monotonic)
        self.wakes: dict[int, threading.Condition] = {}  # thread ident -> the condition the thread sleeps on
        self.idle: list[threading.Condition] = []  # the sleeping threads, the last to fall asleep last
        self.woken = 0  # threads woken that have not yet taken the lock back: each will look at the queue
        self.loop_thread: int | None = None  # the event loop's thread, which looks before each round (serve)
        self.poke = lambda: None  # wakes the event loop to look again (serve sets it)
        self.running_here = lambda: None  # the loop's thread is to run a request, and look at nothing meanwhile
        # serve's own thread, which runs requests itself while it has the loop (None: it never does), and the deputy
        # that takes the loop while such a request waits or runs past its hold
        self.inline_thread: int | None = None
        self.inline_runs = 0  # how many requests the loop's thread has begun (the deputy looks whether it goes on)
        self.deputy_wake = threading.Condition(self.lock)
        self.loop_back = threading.Condition(self.lock)  # the deputy gave the loop back
        self.deputy_parked = False  # the deputy sleeps until a request runs in the loop's thread
        self.deputy_has_loop = False
        self.reclaim = False  # the loop's thread is done with its request and wants the loop back
        self.stopping = False
        self.stop_soon = False  # SIGTERM came: the loop's thread stops once the request it runs is done
        self.stop_at: float | None = None  # when (time.monotonic())
        self.deputy_failed: BaseException | None = None
        self.polling = False  # serve's own thread is in the event loop's poll (or its handlers) now
        self.handlers: dict[int, threading.Thread] = {}  # thread number -> the thread running handler_thread

    def add_task(self, task) -> None:
        with self.lock:
            self.queue.append(task)
            if threading.get_ident() == self.inline_thread == self.loop_thread:
                return  # the loop's thread runs it itself after this round (run_queue), unless a hold says otherwise
            if not self.woken and self._held_until() <= time.monotonic():
                self._wake()
            elif len(self.queue) > self.woken and threading.get_ident() != self.loop_thread:
                self.poke()  # a thread queued its connection's next request: the loop is to look when holds end

    def look(self) -> float | None:
        """Wake a thread for the queue if no request holds it any more; return how soon to look again (None: not
        before something happens)."""
        with self.lock:
            if len(self.queue) <= self.woken:  # nothing waits, or a woken thread will take each request
                return None
            now = time.monotonic()
            held_until = self._held_until()
            if held_until > now:
                return held_until - now
            if not self.woken:
                if not self.idle:  # every thread runs: the first to finish takes the queue, or pokes the loop
                    return None
                self._wake()
            # a woken thread will run one request and hold the queue: look again when that hold would end
            return self.stall_seconds if len(self.queue) > self.woken else None

    def waiting(self) -> None:
        """The calling thread's request now waits on something slow (a download, a render): it no longer holds the
        queue, which goes to another thread at once."""
        with self.lock:
            me = threading.get_ident()
            if me not in self.started:  # not one of this dispatcher's threads running a request
                return
            self.started[me] = -math.inf  # it holds nothing any more
            if me == self.inline_thread:  # it runs in the loop's thread: the deputy is to take the loop at once
                self.deputy_wake.notify()
            if self.queue and not self.woken and self._held_until() <= time.monotonic():
                self._wake()
            elif len(self.queue) > self.woken:
                self.poke()  # another request may still hold the queue: the loop is to look when that hold ends

    def run_queue(self) -> float | None:
        """Run the queued requests in the calling thread, the loop's, while no request holds the queue; return how
        soon to look again, as look() does. Should the deputy have taken the loop meanwhile, take it back first."""
        me = threading.get_ident()
        pass_ends = time.monotonic() + self.stall_seconds
        while True:
            with self.lock:
                if len(self.queue) <= self.woken or self.stop_soon:
                    return None
                now = time.monotonic()
                if now > pass_ends:  # the loop is to read and accept between passes, however long the queue
                    return 0
                held_until = self._held_until()
                if held_until > now:
                    return held_until - now
                task = self.queue.popleft()
                self.started[me] = now
                self.inline_runs += 1
                if self.deputy_parked:
                    self.deputy_wake.notify()
            try:
                self.running_here()
                task.service()
            except Exception:  # SystemExit and KeyboardInterrupt stop the server, as in waitress's own loop
                self.logger.exception("Exception when servicing %r", task)
            finally:
                with self.lock:
                    del self.started[me]
                    while self.deputy_has_loop:  # it reads and sends until this round of its loop ends
                        self.reclaim = True
                        self.poke()
                        self.loop_back.wait()
                    if self.deputy_failed is not None:  # the loop broke in the deputy's hands: so it does here
                        raise self.deputy_failed

    def deputy(self, server) -> None:
        """Take the loop whenever the request the loop's thread runs waits (at once) or has run past its hold (seen
        within WATCH_SECONDS), and give it back when that request is done; sleep while no request runs there."""
        me = threading.get_ident()
        with self.lock:
            seen = -1
            while not self.stopping and server._map:
                began = self.started.get(self.inline_thread)
                if began is None and seen == self.inline_runs:  # nothing ran there since the last look: sleep
                    self.deputy_parked = True
                    self.deputy_wake.wait()
                    self.deputy_parked = False
                    continue
                seen = self.inline_runs
                if began is None or began + self.stall_seconds > time.monotonic():
                    self.deputy_wake.wait(WATCH_SECONDS)
                    continue
                self.loop_thread, self.deputy_has_loop = me, True
                self.lock.release()
                try:
                    while server._map and not self.reclaim and not self.stopping:
                        soon = self.look()
                        server.asyncore.poll2(_timeout(server, soon), server._map)
                except BaseException as error:  # the loop's thread raises it once it has the loop back
                    self.deputy_failed = error
                    return
                finally:
                    self.lock.acquire()
                    self.loop_thread, self.deputy_has_loop, self.reclaim = self.inline_thread, False, False
                    self.loop_back.notify()

    def stop_deputy(self) -> None:
        with self.lock:
            self.stopping = True
            self.deputy_wake.notify_all()

    def set_thread_count(self, count: int) -> None:
        super().set_thread_count(count)
        with self.lock:  # threads that are to stop sleep on their own conditions, not on waitress's
            if self.stop_count:
                for wake in self.wakes.values():  # a sleeping thread wakes and stops; a running one ignores it
                    wake.notify()

    def handler_thread(self, thread_no: int) -> None:
        me, wake = threading.get_ident(), threading.Condition(self.lock)
        with self.lock:
            self.wakes[me] = wake
            self.handlers[thread_no] = threading.current_thread()
        task = None
        while True:
            with self.lock:
                if task is not None:
                    del self.started[me]
                task = self._next(thread_no, me, wake)
                if task is None:
                    del self.wakes[me]
                    return
            try:
                task.service()
            except BaseException:
                self.logger.exception("Exception when servicing %r", task)

    def shutdown(self, cancel_pending: bool = True, timeout: float = 5) -> bool:
        """waitress's, then a wait, within the same `timeout`, for each thread that has stopped to end. waitress counts
        a thread gone as it leaves its loop, before it has ended, and a worker's stop closes the SQLite connections
        of the threads that have ended only: under load, a stopped server had left the write-ahead log beside its
        database."""
        until = time.monotonic() + timeout
        cancelled = super().shutdown(cancel_pending, timeout)
        with self.lock:
            stopped = [thread for number, thread in self.handlers.items() if number not in self.threads]
        for thread in stopped:
            if thread is not threading.current_thread():
                thread.join(max(0.0, until - time.monotonic()))
        return cancelled

    def _next(self, thread_no: int, me: int, wake: threading.Condition):
        """The next request this thread is to run, once it is to run one; None when the thread is to stop. Called
        with the lock held, which it gives up while it sleeps."""
        while self.stop_count == 0:
            now = time.monotonic()
            if self.queue and self._held_until() <= now and not self._loop_runs_queue():
                self.started[me] = now
                return self.queue.popleft()
            if self.queue:  # held by another request, or the loop's thread's to run: the loop is to look
                self.poke()
            self._sleep(wake)
        self.active_count -= 1  # waitress's own bookkeeping of a stopping thread
        self.stop_count -= 1
        self.threads.discard(thread_no)
        self.thread_exit_cv.notify()
        return None

    def _loop_runs_queue(self) -> bool:
        """Whether the loop's own thread has the loop back and runs no request: queued requests are then its to run
        (run_queue), so that a thread that took some while the deputy had the loop gives them back once it is done,
        rather than going on taking turns with the loop's thread for as long as requests keep coming."""
        return (self.inline_thread is not None and self.loop_thread == self.inline_thread
                and self.inline_thread not in self.started and not self.stop_soon)

    def _held_until(self) -> float:
        """Until when the running requests hold the queue: stall_seconds after the latest of them started."""
        return max(self.started.values(), default=-self.stall_seconds) + self.stall_seconds

    def _wake(self) -> None:
        if self.idle:
            self.woken += 1  # counted before the notify, so that nothing between them can lose the count
            self.idle.pop().notify()

    def _sleep(self, wake: threading.Condition) -> None:
        self.idle.append(wake)
        self.active_count -= 1  # waitress counts the threads that are not waiting
        try:
            wake.wait()
        finally:
            self.active_count += 1
            if wake in self.idle:  # not woken by _wake (by set_thread_count, or an exception in wait)
                self.idle.remove(wake)
            else:
                self.woken -= 1


def serve(server, stop_asked: Callable[[], bool] = lambda: False) -> None:
    """Run `server`'s event loop (waitress's, serving one socket) as its run() does, but run each request in this
    thread while nothing holds the queue, look before each round and wake in time to look again; stop as run()
    stops, on SystemExit or KeyboardInterrupt. SIGTERM (when this is the main thread) stops it after the request
    this thread runs, within STOP_SECONDS: the worker takes no new connection meanwhile; so does a SIGTERM noted
    before it began (`stop_asked()`)."""
    dispatcher: Dispatcher = server.task_dispatcher
    dispatcher.loop_thread = dispatcher.inline_thread = threading.get_ident()
    dispatcher.poke = server.pull_trigger
    # a worker that shares its connections (balance.balanced) says it is busy: the others take new ones meanwhile
    dispatcher.running_here = getattr(server, "busy", dispatcher.running_here)
    pull = server.pull_trigger

    def pull_unless_looping_here() -> None:
        """Wake the loop, unless the caller is the loop's own thread outside its poll (a request it runs, ending):
        the loop then polls next anyway, and looks at every channel afresh. waitress pulls after every request,
        which cost a write to the loop's pipe and a read of it."""
        if dispatcher.polling or not threading.get_ident() == dispatcher.inline_thread == dispatcher.loop_thread:
            pull()

    server.pull_trigger = pull_unless_looping_here
    deputy = threading.Thread(target=dispatcher.deputy, args=(server,), name="ivh-loop-deputy", daemon=True)
    previous = signal.getsignal(signal.SIGTERM) if threading.current_thread() is threading.main_thread() else None

    def stop(signum: int, frame: Any) -> None:  # never raises: it may come while this thread holds a lock
        if not dispatcher.stop_soon:
            dispatcher.stop_soon, dispatcher.stop_at = True, time.monotonic()
            server.accepting = False  # other workers take new connections, and wait on this one no more
            balance.withdraw(server)
            signal.alarm(STOP_SECONDS)  # SIGALRM ends the process should the request never end (no thread starts
            # in a signal handler: the thread it interrupts may hold the lock that starting one takes)
            pull()  # a plain write to the loop's pipe, always: the loop may be about to poll

    try:
        deadline.waiting = dispatcher.waiting
        deputy.start()
        if previous is not None:
            signal.signal(signal.SIGTERM, stop)
            if stop_asked():
                stop(signal.SIGTERM, None)
        while server._map and not dispatcher.stop_soon:
            soon = dispatcher.run_queue()
            if dispatcher.stop_soon:
                break
            dispatcher.polling = True  # a signal's handler may pull from here: poll then returns for it
            try:
                server.asyncore.poll2(_timeout(server, soon), server._map)
            finally:
                dispatcher.polling = False
        if dispatcher.stop_soon:
            raise SystemExit(0)
    except (SystemExit, KeyboardInterrupt):
        balance.withdraw(server)
        balance.stop_listening(server)
        _drain(server, dispatcher)
        # waits for the requests other threads run, as long as SIGTERM waits for this one (waitress's own: 5 s)
        dispatcher.shutdown(timeout=STOP_SECONDS)
    finally:
        if previous is not None:
            if dispatcher.stop_soon:
                signal.alarm(0)
            signal.signal(signal.SIGTERM, previous)
        dispatcher.stop_deputy()
        if deputy.ident is not None:  # not started when a raising handler ended the start (a RuntimeError, traceback)
            deputy.join(5)
        if deadline.waiting == dispatcher.waiting:
            deadline.waiting = deadline.nobody_waits


def _drain(server, dispatcher: Dispatcher) -> None:
    """Before a worker stops: answer the requests its connections hold (one under way, pipelined ones read with it)
    and send what they still have to send (the rest of a file), reading nothing new, and close each connection once
    it has nothing left; within STOP_SECONDS of the stop (then SIGALRM ends the process). A stop had cancelled the
    requests queued and cut a file's answer midway: 3 of 60 pipelined requests were answered, 7 MB of a 30 MB file."""
    until = (dispatcher.stop_at or time.monotonic()) + STOP_SECONDS - 1
    channels = server.active_channels
    for channel in list(channels.values()):
        channel.draining = True
    while time.monotonic() < until:
        busy = False
        for channel in list(channels.values()):
            if channel.requests or channel.total_outbufs_len or channel.parked:
                busy = True
            elif channel.connected and not channel.linger_until:  # nothing left: closed now
                channel.handle_close()
        with dispatcher.lock:
            busy = busy or bool(dispatcher.queue) or bool(dispatcher.started)
        if not busy:
            return
        soon = dispatcher.look()  # a queued request goes to a thread: the loop's own thread keeps the connections
        server.asyncore.poll2(0.05 if soon is None else min(soon, 0.05), server._map)
    left = sum(1 for channel in channels.values() if channel.requests or channel.total_outbufs_len or channel.parked)
    if left:  # they are closed with the worker: it had exited 0, saying nothing of them
        say(f"ivh-mock: stopping: worker {os.getpid()}: {left} connection(s) still answering "
            f"{STOP_SECONDS - 1} s into the stop were cut short")


def _timeout(server, soon: float | None) -> float:
    """How long the loop polls: until `soon` (None: not before something happens) or the server's own timeout, and
    no longer than a rest from the listening socket (balance)."""
    idle = server.adj.asyncore_loop_timeout
    return balance.within(server, idle if soon is None else min(soon + 0.001, idle))  # poll2 rounds down to ms
