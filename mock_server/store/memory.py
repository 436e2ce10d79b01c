"""The in-memory store: one process, fast, gone on exit. The default for tests."""

from __future__ import annotations

import threading
from collections import deque

from .base import JournalEntry, Task


class MemoryStore:
    def __init__(self, journal_limit: int = 1000):
        self._lock = threading.Lock()
        self._journal_limit = journal_limit
        self._tasks: dict[str, Task] = {}
        self._journal: dict[str, deque[JournalEntry]] = {}

    def add_task(self, task: Task) -> None:
        with self._lock:
            self._tasks[task.task_id] = task

    def get_task(self, task_id: str) -> Task | None:
        with self._lock:
            return self._tasks.get(task_id)

    def tasks(self, appkey: str | None = None) -> list[Task]:
        with self._lock:
            found = [t for t in self._tasks.values() if appkey is None or t.appkey == appkey]
        return sorted(found, key=lambda task: task.submitted_at)

    def record(self, entry: JournalEntry) -> None:
        with self._lock:
            entries = self._journal.setdefault(entry.appkey, deque(maxlen=self._journal_limit))
            entries.append(entry)

    def journal(self, appkey: str | None = None) -> list[JournalEntry]:
        with self._lock:
            if appkey is not None:
                return list(self._journal.get(appkey, ()))
            found = [entry for entries in self._journal.values() for entry in entries]
        return sorted(found, key=lambda entry: entry.at)

    def reset(self, appkey: str | None = None) -> None:
        with self._lock:
            if appkey is None:
                self._tasks.clear()
                self._journal.clear()
                return
            self._tasks = {k: t for k, t in self._tasks.items() if t.appkey != appkey}
            self._journal.pop(appkey, None)
