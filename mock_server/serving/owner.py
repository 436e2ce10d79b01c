"""One `ivh-mock serve` per SQLite store: the first server to open a database holds an flock on a file beside it,
`<database>.owner`, which says who it is (pid, address); a second server finds the lock held and refuses to start,
naming the first. The kernel drops the lock when its holder exits, however it exits, so a lock is never stale; the
workers of one server (`--workers N`) inherit it from their master and share the store as they should.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import IO, Any


class StoreInUse(Exception):
    """Another server holds the store."""


class StoreOwner:
    """Hold the flock of one SQLite database for the life of this process; `announce()` records where it listens."""

    def __init__(self, database: str):
        self.path = Path(f"{database}.owner")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(self.path, "a+", encoding="utf-8")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(self._file)
            self._file.close()
            self._file = None
            raise StoreInUse(_in_use_message(database, holder)) from None
        self._write({"pid": os.getpid(), "url": None, "since": time.time()})

    def announce(self, url: str) -> None:
        """Record the address the owner listens on (known once it listens: `--port 0`)."""
        self._write({**_read(self._file), "url": url})

    def release(self) -> None:
        if self._file is not None:
            self._file.close()  # closing drops the flock; the file stays, its content is read only under the lock
            self._file = None

    def _write(self, record: dict[str, Any]) -> None:
        assert self._file is not None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(json.dumps(record))
        self._file.flush()


def _read(file: IO[str]) -> dict[str, Any]:
    file.seek(0)
    try:
        record = json.loads(file.read() or "{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _in_use_message(database: str, holder: dict[str, Any]) -> str:
    who = f"pid {holder.get('pid', '?')}"
    who += f", listening on {holder['url']}" if holder.get("url") else ", still starting"
    return (f"the store sqlite:{database} is in use by another ivh-mock ({who}); stop that one, or give this one "
            f"another --data-dir or --store (several workers of one server: --workers N)")
