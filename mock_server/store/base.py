"""The store interface and the records it holds. Records are plain data; state is derived from them and a clock."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Task:
    """A submitted phototovideonotrain task, as accepted: who, what, and when."""

    task_id: str
    appkey: str
    payload: dict[str, Any]
    submitted_at: float
    request_id: str


@dataclass(frozen=True)
class JournalEntry:
    """One API request and the mock's verdict on it."""

    at: float
    appkey: str
    operation: str
    request_id: str
    code: int
    message: str
    body: Any = None
    task_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def verdict(self) -> str:
        return "accepted" if self.code == 0 else "rejected"


class Store(Protocol):
    def add_task(self, task: Task) -> None:
        """Keep a newly accepted task."""

    def get_task(self, task_id: str) -> Task | None:
        """Return the task with this id, whoever owns it, or None."""

    def tasks(self, appkey: str | None = None) -> list[Task]:
        """Return the tasks of one appkey (or of all), oldest first."""

    def record(self, entry: JournalEntry) -> None:
        """Append to the request journal, keeping at most the configured number of entries per appkey."""

    def journal(self, appkey: str | None = None) -> list[JournalEntry]:
        """Return the journal of one appkey (or of all), oldest first."""

    def reset(self, appkey: str | None = None) -> None:
        """Forget everything about one appkey, or about all of them."""
