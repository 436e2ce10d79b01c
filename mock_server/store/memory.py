"""The in-memory store: one process, fast, gone on exit. The default for tests."""

from __future__ import annotations

import contextlib
import threading
import time
import itertools
from collections import OrderedDict, deque
from typing import Any, Callable

from .base import (Backlog, Build, CallbackAttempt, HoldingAhead, JournalEntry, JournalLimits, StaleRead, Task,
                   UploadRecord, journal_text, loads, planned, read_ahead_by, utf8_size)


class MemoryStore:
    def __init__(self, journal: JournalLimits = JournalLimits()):
        self._lock = threading.RLock()
        self._clock: dict[str, Any] | None = None
        self._limits = journal
        self._numbers = itertools.count()
        self.reset()

    def add_task(self, appkey: str, build: Build, journal: Callable[[Task], JournalEntry] | None = None) -> Task:
        with self._lock:
            ahead = read_ahead_by(self)
            if ahead is not None and ahead["clock"] is not self._clock:  # moved, or started over by a reset, since
                raise StaleRead  # the request read it: it is answered again, on the clock as it is now
            mine = self._by_account.setdefault(appkey, [])
            task, self._backlogs[appkey] = planned(self._backlogs.get(appkey), mine[-1].task_id if mine else "",
                                                   lambda: list(mine), build)
            mine.append(task)
            self._tasks[task.task_id] = task
            if task.payload.get("CallbackUrl"):
                self._unsent.add(task.task_id)
            if task.uploads:
                self._owed.add(task.task_id)
            if journal is not None:
                self.record(journal(task))
            return task

    def media_refs(self) -> list[tuple[float, str, str, str]]:
        with self._lock:
            return [(task.finish_at, task.photo, task.audio, task.video) for task in self._tasks.values()]

    def count_waiting(self, appkey: str, before_seq: int, now: float) -> int:
        with self._lock:
            return sum(1 for task in self._by_account.get(appkey, ()) if task.seq < before_seq and now < task.start_at)

    def unstarted(self, appkey: str, now: float) -> list[int]:
        with self._lock:
            return [task.seq for task in self._by_account.get(appkey, ()) if now < task.start_at]

    def get_task(self, task_id: str) -> Task | None:
        return self._tasks.get(task_id)

    def tasks(self, appkey: str | None = None, limit: int | None = None) -> list[Task]:
        with self._lock:
            found = self._by_account.get(appkey, ()) if appkey is not None else self._tasks.values()
            return list(found) if limit is None else list(itertools.islice(reversed(found), limit))[::-1]

    def record(self, entry: JournalEntry) -> None:
        text = journal_text(entry, self._limits)  # kept as text: its size is what it costs, however deep the body
        with self._lock:
            number = next(self._numbers)
            size = utf8_size(text)
            self._journal[number] = (entry.appkey, text, size)
            self._journal_bytes += size
            mine = self._journal_of.setdefault(entry.appkey, deque())
            mine.append(number)
            if entry.authenticated:
                self._accounts.add(entry.appkey)
            if len(mine) > self._limits.per_appkey:
                self._drop(mine.popleft())
            while len(self._journal) > self._limits.entries or self._journal_bytes > self._limits.bytes:
                number, (appkey, _, _) = next(iter(self._journal.items()))  # the oldest, so also its appkey's oldest
                self._journal_of[appkey].popleft()
                self._drop(number)

    def _drop(self, number: int) -> None:
        appkey, _, size = self._journal.pop(number)
        self._journal_bytes -= size
        if not self._journal_of[appkey]:
            del self._journal_of[appkey]

    def journal(self, appkey: str | None = None, limit: int | None = None) -> list[JournalEntry]:
        with self._lock:
            if appkey is not None:
                texts = [self._journal[n][1] for n in self._journal_of.get(appkey, ())]
            else:
                texts = [text for _, text, _ in self._journal.values()]
        entries = [loads(JournalEntry, text) for text in texts[-limit if limit else 0:]]
        return entries if appkey is not None else sorted(entries, key=lambda e: e.at)

    def due_callbacks(self, now: float) -> list[Task]:
        return self._due(self._unsent, self._leases, now)

    def claim_callback(self, task_id: str, lease_seconds: float) -> bool:
        return self._claim(self._unsent, self._leases, task_id, lease_seconds)

    def _due(self, waiting: set[str], leases: dict[str, float], now: float, claimed: bool = False) -> list[Task]:
        """The tasks of `waiting` finished by `now` and, unless `claimed`, not held by a live lease."""
        wall = time.time()
        with self._lock:
            return [self._tasks[i] for i in waiting
                    if self._tasks[i].finish_at <= now and (claimed or leases.get(i, 0.0) <= wall)]

    def _claim(self, waiting: set[str], leases: dict[str, float], task_id: str, lease_seconds: float) -> bool:
        wall = time.time()
        with self._lock:
            if task_id not in waiting or leases.get(task_id, 0.0) > wall:
                return False
            leases[task_id] = wall + lease_seconds
            return True

    def record_callback(self, attempt: CallbackAttempt, delivery: str | None = None) -> None:
        with self._lock:
            if attempt.task_id in self._tasks:  # a task reset meanwhile stays forgotten, its account with it
                self._callbacks.setdefault(attempt.appkey, []).append(attempt)
                self._callbacks_of.setdefault(attempt.task_id, []).append(attempt)
            self._unsent.discard(attempt.task_id)
            self._leases.pop(attempt.task_id, None)

    def callbacks(self, appkey: str | None = None, limit: int | None = None) -> list[CallbackAttempt]:
        with self._lock:
            if appkey is not None:
                attempts = self._callbacks.get(appkey, [])
            else:
                attempts = sorted((a for attempts in self._callbacks.values() for a in attempts), key=lambda a: a.at)
            return attempts[-limit:] if limit is not None else list(attempts)

    def callbacks_of(self, task: Task) -> list[CallbackAttempt]:
        return list(self._callbacks_of.get(task.task_id, ()))

    def due_uploads(self, now: float, claimed: bool = False) -> list[Task]:
        return self._due(self._owed, self._upload_leases, now, claimed)

    def claim_upload(self, task_id: str, lease_seconds: float) -> bool:
        return self._claim(self._owed, self._upload_leases, task_id, lease_seconds)

    def record_upload(self, record: UploadRecord) -> None:
        with self._lock:
            if record.task_id in self._tasks:  # a task reset meanwhile stays forgotten
                self._uploads[record.task_id] = record
            self._owed.discard(record.task_id)
            self._upload_leases.pop(record.task_id, None)

    def upload_of(self, task_id: str) -> UploadRecord | None:
        return self._uploads.get(task_id)

    def account_settings(self, appkey: str) -> dict[str, Any]:
        with self._lock:
            return dict(self._settings.get(appkey, {}))

    def put_account_settings(self, appkey: str, settings: dict[str, Any]) -> None:
        with self._lock:
            self._settings.setdefault(appkey, {}).update(settings)

    def appkeys(self) -> list[str]:
        with self._lock:
            return sorted(set(self._by_account) | self._accounts | set(self._settings) | set(self._callbacks))

    def outage(self, error: BaseException) -> str | None:
        return None  # in the process: never out of reach

    def close(self) -> None:
        pass

    def read_ahead(self, appkey: str, tasks: bool = False,
                   task_id: str | None = None) -> contextlib.AbstractContextManager[None]:
        # its reads cost no round trip: it keeps the clock's state as the request finds it, for add_task to check
        return HoldingAhead({"store": self, "clock": self._clock})

    def clock_state(self) -> dict[str, Any] | None:
        ahead = read_ahead_by(self)
        return ahead["clock"] if ahead is not None else self._clock

    def update_clock_state(self, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            self._clock = dict(change(self._clock))  # a new state each time: add_task tells it from the one read
            ahead = read_ahead_by(self)
            if ahead is not None:
                ahead["clock"] = self._clock
            return self._clock

    def reset(self, appkey: str | None = None) -> None:
        with self._lock:
            if appkey is None:
                self._tasks: dict[str, Task] = {}
                self._by_account: dict[str, list[Task]] = {}
                self._backlogs: dict[str, Backlog] = {}
                # number -> (appkey, entry as JSON, its bytes), oldest first
                self._journal: OrderedDict[int, tuple[str, str, int]] = OrderedDict()
                self._journal_of: dict[str, deque[int]] = {}  # appkey -> its entries' numbers, oldest first
                self._journal_bytes = 0
                self._accounts: set[str] = set()  # appkeys that made an authenticated request
                self._callbacks: dict[str, list[CallbackAttempt]] = {}
                self._callbacks_of: dict[str, list[CallbackAttempt]] = {}  # task -> its entries of the log
                self._settings: dict[str, dict[str, Any]] = {}
                self._unsent: set[str] = set()  # tasks whose callback is still to be sent
                self._leases: dict[str, float] = {}  # task -> wall-clock time its callback's claim lapses
                self._owed: set[str] = set()  # tasks whose uploads are still to be made
                self._upload_leases: dict[str, float] = {}  # task -> wall-clock time its uploads' claim lapses
                self._uploads: dict[str, UploadRecord] = {}
                return
            self._backlogs.pop(appkey, None)
            for task in self._by_account.pop(appkey, []):
                self._tasks.pop(task.task_id, None)
                self._unsent.discard(task.task_id)
                self._leases.pop(task.task_id, None)
                self._owed.discard(task.task_id)
                self._upload_leases.pop(task.task_id, None)
                self._uploads.pop(task.task_id, None)
                self._callbacks_of.pop(task.task_id, None)
            for number in self._journal_of.pop(appkey, ()):
                self._journal_bytes -= self._journal.pop(number)[2]
            self._accounts.discard(appkey)
            for table in (self._callbacks, self._settings):
                table.pop(appkey, None)
