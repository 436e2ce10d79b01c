"""Where the mock keeps its state. One interface (`Store`), three backends: memory, SQLite and Redis."""

from __future__ import annotations

from .base import (NEVER, Backlog, CallbackAttempt, JournalEntry, JournalLimits, StaleRead, Store, StoreBusy, Task,
                   UploadRecord, WriteUnsure, new_id, outage_of)
from .memory import MemoryStore


def open_store(spec: str, journal: JournalLimits = JournalLimits()) -> Store:
    """Open the store `spec` names: `memory`, `sqlite:PATH`, `redis://HOST:PORT/DB[?prefix=NAME]` or
    `unix:///PATH?db=N[&prefix=NAME]`."""
    if spec == "memory":
        return MemoryStore(journal)
    if spec.startswith("sqlite:"):
        from .sqlite import SqliteStore

        return SqliteStore(spec.removeprefix("sqlite:"), journal)
    if spec.startswith(("redis://", "rediss://", "unix://")):
        from .redis import RedisStore

        return RedisStore(spec, journal)
    raise ValueError(f"unknown store {spec!r}: use memory, sqlite:PATH, redis://HOST:PORT/DB or unix:///PATH?db=N")


__all__ = ["NEVER", "Backlog", "CallbackAttempt", "JournalEntry", "JournalLimits", "MemoryStore", "StaleRead", "Store",
           "StoreBusy", "Task", "UploadRecord", "WriteUnsure", "new_id", "open_store",
           "outage_of"]
