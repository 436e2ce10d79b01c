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

Requests that all wait a few milliseconds on a store across a network would be served nearly one at a time: a worker
whose store is Redis on another host keeps waitress's own dispatcher (`ivh-mock serve` chooses).
"""

from __future__ import annotations

import math
import threading
import time

from waitress.task import ThreadedTaskDispatcher

from .. import deadline

STALL_SECONDS = 0.005  # how long a request holds the queue for its thread


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

    def add_task(self, task) -> None:
        with self.lock:
            self.queue.append(task)
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
            if self.queue and not self.woken and self._held_until() <= time.monotonic():
                self._wake()
            elif len(self.queue) > self.woken:
                self.poke()  # another request may still hold the queue: the loop is to look when that hold ends

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

    def _next(self, thread_no: int, me: int, wake: threading.Condition):
        """The next request this thread is to run, once it is to run one; None when the thread is to stop. Called
        with the lock held, which it gives up while it sleeps."""
        while self.stop_count == 0:
            now = time.monotonic()
            if self.queue and self._held_until() <= now:
                self.started[me] = now
                return self.queue.popleft()
            if self.queue:  # held by another request: the loop is to look when that hold ends
                self.poke()
            self._sleep(wake)
        self.active_count -= 1  # waitress's own bookkeeping of a stopping thread
        self.stop_count -= 1
        self.threads.discard(thread_no)
        self.thread_exit_cv.notify()
        return None

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


def serve(server) -> None:
    """Run `server`'s event loop (waitress's, serving one socket) as its run() does, but look before each round and
    wake in time to look again; stop as run() stops, on SystemExit or KeyboardInterrupt."""
    dispatcher: Dispatcher = server.task_dispatcher
    idle = server.adj.asyncore_loop_timeout
    try:
        dispatcher.loop_thread, dispatcher.poke = threading.get_ident(), server.pull_trigger
        deadline.waiting = dispatcher.waiting
        while server._map:
            soon = dispatcher.look()  # poll2 counts whole milliseconds, rounding down
            server.asyncore.poll2(idle if soon is None else min(soon + 0.001, idle), server._map)
    except (SystemExit, KeyboardInterrupt):
        dispatcher.shutdown()
    finally:
        if deadline.waiting == dispatcher.waiting:
            deadline.waiting = deadline.nobody_waits
