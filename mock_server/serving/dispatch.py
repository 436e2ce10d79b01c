"""How a worker hands the requests waitress has read to its threads: to the thread that is already running while it
keeps up, and to another only when it does not.

waitress wakes an idle thread for every request it reads, the one that has been idle longest. Under load every thread
of a worker then holds a request, all of them take turns on one core (Python runs one thread at a time), and each
request costs about eight context switches. Here a thread that finishes a request takes the next one queued without
sleeping, and an idle thread is woken (the one that went idle last) only when no thread is running, or when no
request has started for `stall_seconds`: the running ones then wait on a download, a render, a slow store or a slow
reader, which is what a worker's other threads are for. waitress's own event loop looks for such a stall each time
round, so that looking costs no thread a wake-up (DECISIONS.md D68).
"""

from __future__ import annotations

import threading
import time

from waitress.task import ThreadedTaskDispatcher

STALL_SECONDS = 0.005  # a request running this long no longer holds back the queue
LOOK_SECONDS = 0.025  # how often an idle event loop looks for a stall (a busy one looks far more often)


class Dispatcher(ThreadedTaskDispatcher):
    """waitress's dispatcher with its threads started one at a time; `threads` still bounds how many run at once."""

    def __init__(self, stall_seconds: float = STALL_SECONDS):
        super().__init__()
        self.stall_seconds = stall_seconds
        self.started: dict[int, float] = {}  # thread number -> when the request it runs started (time.monotonic)
        self.idle: list[threading.Condition] = []  # the sleeping threads, the last to fall asleep last
        self.woken = 0  # threads woken that have not yet taken the lock back: each will look at the queue

    def watch(self, server) -> None:
        """Look for a stall each time `server` (waitress's) goes round its event loop, and at least every
        LOOK_SECONDS."""
        readable = server.readable  # called on every round of the loop

        def look_then_readable() -> bool:
            self.look()
            return readable()

        server.readable = look_then_readable
        server.adj.asyncore_loop_timeout = LOOK_SECONDS

    def add_task(self, task) -> None:
        with self.lock:
            self.queue.append(task)
            if not self.started and not self.woken:
                self._wake()

    def look(self) -> None:
        """Wake a thread for the queue if the running ones have not started a request for stall_seconds."""
        if self.queue and not self.woken:  # read without the lock: a stale answer only defers the look
            with self.lock:
                if self.queue and not self.woken and self._free_at() <= time.monotonic():
                    self._wake()

    def set_thread_count(self, count: int) -> None:
        super().set_thread_count(count)
        with self.lock:  # threads that are to stop sleep on their own conditions, not on waitress's
            while self.stop_count and self.idle:
                self._wake()

    def handler_thread(self, thread_no: int) -> None:
        wake = threading.Condition(self.lock)
        task = None
        while True:
            with self.lock:
                if task is not None:
                    del self.started[thread_no]
                task = self._next(thread_no, wake)
                if task is None:
                    return
            try:
                task.service()
            except BaseException:
                self.logger.exception("Exception when servicing %r", task)

    def _next(self, thread_no: int, wake: threading.Condition):
        """The next request this thread is to run, once it is to run one; None when the thread is to stop. Called
        with the lock held, which it gives up while it sleeps."""
        while self.stop_count == 0:
            now = time.monotonic()
            if self.queue and self._free_at() <= now:
                self.started[thread_no] = now
                return self.queue.popleft()
            self._sleep(wake)
        self.active_count -= 1  # waitress's own bookkeeping of a stopping thread
        self.stop_count -= 1
        self.threads.discard(thread_no)
        self.thread_exit_cv.notify()
        return None

    def _free_at(self) -> float:
        """When the queue stops waiting on the running threads: now if none runs, else stall_seconds after the
        latest request started."""
        return max(self.started.values(), default=-self.stall_seconds) + self.stall_seconds

    def _wake(self) -> None:
        if self.idle:
            self.idle.pop().notify()
            self.woken += 1

    def _sleep(self, wake: threading.Condition) -> None:
        self.idle.append(wake)
        self.active_count -= 1  # waitress counts the threads that are not waiting
        try:
            wake.wait()
        finally:
            self.active_count += 1
            if wake in self.idle:  # not woken by _wake (an exception in wait)
                self.idle.remove(wake)
            else:
                self.woken -= 1
