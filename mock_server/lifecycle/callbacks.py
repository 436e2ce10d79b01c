"""Deliver each finished task's callback exactly once, in the background, and log what happened.

A dispatcher thread wakes every `interval` seconds (and at once when the clock is moved), claims due callbacks in the
store (so only one worker sends each), and posts them from a thread pool, each delivery under a wall-clock deadline
for the whole of it (connect, headers, reply). A claim is a lease longer than any delivery can take, and is taken
only when a thread is free to deliver at once: should the process die before it records the delivery, the lease
lapses and another worker, or this one restarted, sends the callback instead of it being lost. A quarter of the
threads at most deliver to one target at once, and a target with deliveries under way waits behind one without: a
slow target holds its share, and a thread that comes free goes to a target that answers first (shares.py). Nothing
here can block or break the API: a target that is down, slow, redirecting or answering garbage only shows up in the
log.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import requests
from urllib3.exceptions import LocationValueError

from .. import deadline
from ..media_out import results
from ..store import CallbackAttempt, Task, outage_of
from . import trajectory
from .replies import read_some
from .shares import Backlog, Shares, record_made, target_of

if TYPE_CHECKING:
    from ..context import MockContext
    from .uploads import Uploader

log = logging.getLogger("ivh_mock.callbacks")
SWEEP_EVERY_SECONDS = 30.0  # how often the background thread looks for files past retention


class CallbackDispatcher:
    """Also drives the uploads to the caller's storage (`uploader`): a task that owes uploads finishes, and so has
    its callback sent, only once their outcome is recorded."""

    def __init__(self, ctx: MockContext, interval: float = 0.05, uploader: Uploader | None = None):
        self.ctx = ctx
        self.interval = interval
        self.uploader = uploader
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._threads = ctx.config.callback_workers
        self._pool = ThreadPoolExecutor(max_workers=self._threads, thread_name_prefix="ivh-callback")
        self._shares = Shares(self._threads)  # deliveries under way, by target (scheme://host:port)
        self._backlog = Backlog(self._due, lambda task: target_of(task.payload["CallbackUrl"]))

    @property
    def lease_seconds(self) -> float:
        """How long a claim holds: longer than a delivery can take (its deadline is the callback timeout), and a
        claim is only taken for a delivery that starts at once."""
        return 2 * self.ctx.config.callback_timeout_seconds + 5

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ivh-callback-dispatcher", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Stop dispatching and wait for deliveries under way (each bounded by the callback timeout)."""
        self._stop.set()
        if self.uploader is not None:  # its records waiting for the store give up now, not once this pool is done
            self.uploader.stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._pool.shutdown(wait=True)
        if self.uploader is not None:
            self.uploader.stop()

    def wake(self) -> None:
        """Look for due callbacks and uploads now, in the store (the clock was moved)."""
        self._backlog.stale()
        if self.uploader is not None:
            self.uploader.backlog.stale()
        self._wake.set()

    def delivered(self, timeout: float) -> bool:
        """Wait until every callback due by the mock's clock is delivered and recorded, at most `timeout` seconds;
        True when none is left. A target can hold a callback it was sent before the attempt is recorded, and one due
        since the clock last moved may not be claimed yet: right after `advance()`, `callbacks()` had been empty."""
        deadline = time.monotonic() + timeout
        while True:
            if self._shares.idle() and (self._thread is None or not self._due()):
                return True
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.005)

    def _due(self) -> list[Task]:
        """The tasks whose callback is due by the mock's clock (a task waiting for its uploads has not finished)."""
        store = self.ctx.store
        return [task for task in store.due_callbacks(self.ctx.clock.now())
                if not task.uploads or store.upload_of(task.task_id) is not None]

    def settle(self, timeout: float | None = None) -> bool:
        """Wait until the uploads due by the mock's clock are recorded, at most `timeout` seconds (default: the time
        one upload may take); True when none is left. Uploads take real time: a test that moves the clock past a
        task's render calls this (the control API and MockServer.advance do) so the next poll sees the outcome."""
        uploader = self.uploader
        if uploader is None or self._thread is None:
            return uploader is None or not uploader.pending()
        deadline = time.monotonic() + (uploader.lease_seconds if timeout is None else timeout)
        while uploader.pending():
            if time.monotonic() >= deadline:
                return False
            self._wake.set()
            time.sleep(0.01)
        return True

    def uploads_pending(self) -> int:
        """How many tasks' uploads due by the mock's clock are still to be made or under way."""
        return self.uploader.pending() if self.uploader is not None else 0

    def dispatch_due(self) -> int:
        """Claim due callbacks and hand them to the pool; return how many were claimed. Only as many are claimed
        as there are free threads, so a claim never waits in a queue while its lease runs out; a quarter of the
        threads at most deliver to one target at once, and the targets with the fewest deliveries under way go first,
        so a slow target waits behind one that answers (lifecycle/shares.py)."""
        store, lease, now = self.ctx.store, self.lease_seconds, self.ctx.clock.now()
        # due still: the backlog was read before the clock's last move, perhaps back by another worker
        return self._shares.start(self._pool, self._backlog, lambda task: task.finish_at <= now and
                                  store.claim_callback(task.task_id, lease),
                                  self.deliver, self._wake.set)  # a thread is free: take from the backlog again

    def deliver(self, task: Task) -> CallbackAttempt:
        """POST the task's callback once and record the attempt, whatever happens."""
        ctx = self.ctx
        at = ctx.clock.now()
        body = trajectory.callback_body(trajectory.report(ctx, task, max(at, task.finish_at)), task)
        url = task.payload["CallbackUrl"]
        status, error, reply = None, None, ""
        started = time.monotonic()
        timeout = ctx.config.callback_timeout_seconds
        with deadline.within(timeout) as limit:  # connect, send, headers and reply together
            try:
                # connecting, which the deadline does not watch, within the timeout too; then the deadline ends it
                # a connection of its own, closed after it: kept alive in a shared pool, one whose receiver then
                # closed its end stayed in CLOSE_WAIT, a socket held for each of the many receivers tests start
                with deadline.session(pool_size=1) as session, session.post(
                        url, json=body, timeout=(timeout, timeout + 1), allow_redirects=False, stream=True) as response:
                    status = response.status_code
                    reply = read_some(response, started + timeout)
            # urllib3's own error for a host no name lookup takes (a label past 63 characters) passes requests by
            except (requests.RequestException, LocationValueError) as exc:
                error = f"{type(exc).__name__}: {exc}"[:500]
            except Exception as exc:  # a delivery must never take the dispatcher down
                log.exception("callback to %s failed unexpectedly", url)
                error = f"{type(exc).__name__}: {exc}"[:500]
            if limit.expired:
                error = f"Timeout: the target took longer than the callback timeout of {timeout:g} s in all"
        attempt = CallbackAttempt(task_id=task.task_id, appkey=task.appkey, url=url, at=at, body=body,
                                  status=status, error=error, latency_ms=round((time.monotonic() - started) * 1000, 1),
                                  response_body=reply)
        # the claim was taken as this began: its lease runs out a second after `until` at the latest; every try of
        # the record names the one delivery, which a store whose answer was lost may have kept already
        delivery = uuid.uuid4().hex
        record_made(ctx.store, lambda: ctx.store.record_callback(attempt, delivery), started + self.lease_seconds - 1,
                    self._stop, f"the callback of task {task.task_id}")
        return attempt

    def _run(self) -> None:
        ctx = self.ctx
        swept, next_due = time.monotonic(), float("-inf")
        outage: str | None = None  # what the store said of itself as a pass failed, until one passes
        while not self._stop.is_set():
            try:
                if self.uploader is not None:
                    self.uploader.dispatch_due()
                self.dispatch_due()
                # the sweep reads every task's file references, so it runs only when a file can have expired
                now = ctx.clock.now()
                if time.monotonic() - swept > SWEEP_EVERY_SECONDS and now >= next_due:
                    swept = time.monotonic()
                    next_due = results.sweep(ctx.store, ctx.blobs, now, ctx.spec.service["retentionSeconds"])
                if outage is not None:
                    log.warning("callback dispatch goes on: the store answers again")
                    outage = None
            except Exception as error:  # keep dispatching whatever one pass met
                said = outage_of(ctx.store, error)
                if said is None:
                    log.exception("callback dispatch pass failed")
                elif outage is None:  # a line as it begins, not a traceback every 50 ms for as long as it lasts
                    log.warning("callback dispatch waits for the store: %s", said)
                    outage = said
            self._wake.wait(self.interval)
            self._wake.clear()
