"""One `ivh-mock serve` per SQLite store: the first server to open a database holds an flock on a file beside it,
`<database>.owner`, which says who it is (pid, address); a second server finds the lock held and refuses to start,
naming the first. The kernel drops the lock when its holder exits, however it exits, so a lock is never stale; the
workers of one server (`--workers N`) inherit it from their master and share the store as they should. A master
killed alone (SIGKILL) leaves workers that stop by themselves within moments (`server._stop_with_master`), holding
the lock until then: a server started meanwhile waits for them rather than refusing.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import IO, Any


# How long a server waits for the lock while the owner it names is gone: its orphaned workers notice within half a
# second and stop, finishing what they answer (up to 10 s, dispatch.STOP_SECONDS), at the least; then the callbacks
# and uploads under way (app.stop_seconds), which a server's start adds.
ORPHANS_SECONDS = 12.0


class StoreInUse(Exception):
    """Another server holds the store."""


class StoreOwner:
    """Hold the flock of one SQLite database for the life of this process; `announce()` records where it listens."""

    def __init__(self, database: str, orphans_seconds: float = ORPHANS_SECONDS):
        self.path = _owner_file(database)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = open(self.path, "a+", encoding="utf-8")
        deadline = time.monotonic() + max(ORPHANS_SECONDS, orphans_seconds)
        while True:
            try:
                fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read(self._file)
                if not _gone(holder.get("pid")) or time.monotonic() > deadline:
                    self._file.close()
                    self._file = None
                    raise StoreInUse(_in_use_message(database, holder)) from None
                time.sleep(0.05)  # its master is gone: its workers are stopping, and the lock goes with them
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


def in_use(database: str) -> str | None:
    """What says that a running server holds the store `database` (the message StoreOwner refuses with), looked at
    without taking it or making any file; None when none does, or when the one the lock names is gone (its
    workers are stopping: StoreOwner waits for them)."""
    try:
        file = open(_owner_file(database), encoding="utf-8")
    except OSError:  # none yet, or not ours to read: StoreOwner says
        return None
    with file:
        try:
            fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return None  # no server holds it (the lock goes as this file closes)
        except BlockingIOError:
            holder = _read(file)
    return None if _gone(holder.get("pid")) else _in_use_message(database, holder)


def _owner_file(database: str) -> Path:
    """The owner file of `database`: beside the file the path leads to (a second server reaching the database through
    a link to it had taken a lock of its own beside the link, and shared the store unsaid)."""
    return Path(f"{os.path.realpath(database)}.owner")


def _read(file: IO[str]) -> dict[str, Any]:
    file.seek(0)
    try:
        record = json.loads(file.read() or "{}")
    except ValueError:
        return {}
    return record if isinstance(record, dict) else {}


def _gone(pid: Any) -> bool:
    """Whether the process `pid` has ended (a zombie that its parent has not reaped yet included); False when the
    record names none."""
    if type(pid) is not int or pid <= 0:
        return False
    if os.path.exists("/proc/self/stat"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                return stat.read().rpartition(b")")[2].split()[0] == b"Z"
        except FileNotFoundError:
            return True
    try:  # no /proc here: ask the kernel whether the pid exists
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    return False


def _in_use_message(database: str, holder: dict[str, Any]) -> str:
    who = f"pid {holder.get('pid', '?')}"
    who += f", listening on {holder['url']}" if holder.get("url") else ", still starting"
    return (f"the store sqlite:{database} is in use by another ivh-mock ({who}); stop that one, or give this one "
            f"another --data-dir or --store (several workers of one server: --workers N)")
