"""The SQLite store: one file on disk, shared safely by the threads and worker processes of one host.

The default of `ivh-mock serve`. WAL mode lets readers go on while one writer writes; a submission takes the write
lock (`BEGIN IMMEDIATE`) so that planning a task against the account's backlog is atomic across processes.
Each record is kept as JSON next to the columns the store searches by.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import sqlite3
import threading
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Iterator

from ivh_mock.spec.jsontext import decoded

from .base import (NEVER, Build, CallbackAttempt, DecodedTasks, HoldingAhead, JournalEntry, JournalLimits, StaleRead,
                   StoreBusy, Task, UploadRecord, backlog_from, backlog_text, dumps, journal_text, loads, planned,
                   read_ahead_by, utf8_size)

# A delivery's task, as `callbacks_of` reads it and its index keeps it: none for a record that is not JSON, which a
# database of another program's making may hold (json_extract refused it, and the store did not open).
CALLBACK_TASK = "(CASE WHEN json_valid(record) THEN json_extract(record, '$.task_id') END)"
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY, appkey TEXT NOT NULL, seq INTEGER NOT NULL, start_at REAL, finish_at REAL,
    photo TEXT NOT NULL, audio TEXT NOT NULL, video TEXT NOT NULL,
    callback INTEGER NOT NULL, sent INTEGER NOT NULL DEFAULT 0, lease_until REAL NOT NULL DEFAULT 0,
    record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_by_account ON tasks (appkey, seq);
CREATE INDEX IF NOT EXISTS tasks_callback_due ON tasks (finish_at) WHERE callback = 1 AND sent = 0;
CREATE TABLE IF NOT EXISTS journal (id INTEGER PRIMARY KEY AUTOINCREMENT, appkey TEXT NOT NULL, record TEXT NOT NULL,
    bytes INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS journal_by_account ON journal (appkey, id);
CREATE TABLE IF NOT EXISTS accounts (appkey TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS callbacks (id INTEGER PRIMARY KEY AUTOINCREMENT, appkey TEXT NOT NULL, at REAL NOT NULL,
    record TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS callbacks_by_account ON callbacks (appkey, id);
CREATE INDEX IF NOT EXISTS callbacks_by_task_id ON callbacks ({CALLBACK_TASK}, id);
CREATE TABLE IF NOT EXISTS settings (appkey TEXT PRIMARY KEY, record TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS uploads (task_id TEXT PRIMARY KEY, appkey TEXT NOT NULL, finish_at REAL,
    lease_until REAL NOT NULL DEFAULT 0, record TEXT);
CREATE INDEX IF NOT EXISTS uploads_owed ON uploads (finish_at) WHERE record IS NULL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS backlogs (appkey TEXT PRIMARY KEY, record TEXT NOT NULL) WITHOUT ROWID;
"""
# The journal's size, and each appkey's count of entries, kept up to date by triggers, so a bound is checked without
# counting the table (finding the appkey's entry past its bound by counting back from its newest walked the whole bound
# of index entries: a third of a journal entry's time).
JOURNAL_SIZE = """
CREATE TABLE IF NOT EXISTS journal_size (id INTEGER PRIMARY KEY CHECK (id = 0), entries INTEGER NOT NULL,
    bytes INTEGER NOT NULL);
INSERT OR IGNORE INTO journal_size SELECT 0, COUNT(*), COALESCE(SUM(bytes), 0) FROM journal;
CREATE TRIGGER IF NOT EXISTS journal_added AFTER INSERT ON journal BEGIN
    UPDATE journal_size SET entries = entries + 1, bytes = bytes + NEW.bytes; END;
CREATE TRIGGER IF NOT EXISTS journal_dropped AFTER DELETE ON journal BEGIN
    UPDATE journal_size SET entries = entries - 1, bytes = bytes - OLD.bytes; END;
CREATE TABLE IF NOT EXISTS journal_counts (appkey TEXT PRIMARY KEY, entries INTEGER NOT NULL) WITHOUT ROWID;
INSERT OR IGNORE INTO journal_counts SELECT appkey, COUNT(*) FROM journal GROUP BY appkey;
CREATE TRIGGER IF NOT EXISTS journal_counted AFTER INSERT ON journal BEGIN
    INSERT INTO journal_counts (appkey, entries) VALUES (NEW.appkey, 1)
        ON CONFLICT (appkey) DO UPDATE SET entries = entries + 1; END;
CREATE TRIGGER IF NOT EXISTS journal_uncounted AFTER DELETE ON journal BEGIN
    UPDATE journal_counts SET entries = entries - 1 WHERE appkey = OLD.appkey;
    DELETE FROM journal_counts WHERE appkey = OLD.appkey AND entries <= 0; END;
"""
# A journal entry goes in through this view: one statement from Python adds the entry, its account when the request
# authenticated, and drops the appkey's entries past its bound and the oldest past the whole journal's bound in
# entries, each of which cost a statement of its own (a call into SQLite that lets the worker's other threads take
# the interpreter's lock in between). Temporary, so made on each connection with the store's own bounds.
JOURNAL_INTAKE = """
CREATE TEMP VIEW IF NOT EXISTS journal_intake (appkey, record, bytes, authenticated) AS SELECT NULL, NULL, NULL, NULL;
CREATE TEMP TRIGGER IF NOT EXISTS journal_intake_insert INSTEAD OF INSERT ON journal_intake BEGIN
    INSERT INTO journal (appkey, record, bytes) VALUES (NEW.appkey, NEW.record, NEW.bytes);
    INSERT OR IGNORE INTO accounts (appkey) SELECT NEW.appkey WHERE NEW.authenticated;
    DELETE FROM journal WHERE id IN (SELECT id FROM journal WHERE appkey = NEW.appkey ORDER BY id
        LIMIT max(0, (SELECT entries FROM journal_counts WHERE appkey = NEW.appkey) - {per_appkey}));
    DELETE FROM journal WHERE id IN (SELECT id FROM journal ORDER BY id
        LIMIT max(0, (SELECT entries FROM journal_size) - {entries}));
END;
"""
MIGRATE_JOURNAL = """
BEGIN IMMEDIATE;
ALTER TABLE journal ADD COLUMN bytes INTEGER NOT NULL DEFAULT 0;
UPDATE journal SET bytes = LENGTH(CAST(record AS BLOB));
CREATE TABLE accounts (appkey TEXT PRIMARY KEY);
INSERT INTO accounts SELECT DISTINCT appkey FROM journal;
COMMIT;
"""
# What an API request reads as it starts (`read_ahead`): the clock, the account's settings and, for a getprogress, the
# task it names, in one statement rather than one each.
READ_AHEAD = ("SELECT (SELECT value FROM meta WHERE key = 'clock'), (SELECT record FROM settings WHERE appkey = ?), "
              "(SELECT record FROM tasks WHERE task_id = ?)")
WAL_BYTES = 16 * 1_048_576  # the write-ahead log is cut back to this after a checkpoint
# Checkpoints (copying the write-ahead log into the database) run on a thread of the store's own, woken after every
# CHECKPOINT_COMMITS commits of this process; its first copy takes no write lock (DECISIONS.md D69). SQLite's own ran
# in the commit that took the log past 1,000 pages, while that writer still held the write lock, so every other writer
# waited for the copy and its syncs. Once the log is longer than RESTART_PAGES, the thread copies what was written
# during its checkpoint under the write lock as well, so that the next writer can start the log again from its
# beginning (under steady writes a checkpoint without the write lock never catches up). Writers still make SQLite's own
# checkpoint past BACKSTOP_PAGES, should the thread fall behind.
CHECKPOINT_COMMITS = 100
RESTART_PAGES = 2_000
BACKSTOP_PAGES = 10_000
# How long a write waits for the database's write lock, which only another program holds for long (this store's own
# writers queue on the locks of `_locked`, and each holds it for a moment): past it the write fails with StoreBusy,
# and so does one that waited as long for its turn among this process's threads, rather than every thread of the
# worker waiting in line for as long again.
BUSY_SECONDS = 5.0


class _Connection(sqlite3.Connection):
    """sqlite3's connection, which a weak reference can name (sqlite3's own takes none)."""


class SqliteStore:
    def __init__(self, path: str, journal: JournalLimits = JournalLimits()):
        if not path or path == ":memory:":  # each thread's connection would see a database of its own
            raise ValueError(f"sqlite: needs a file path, got {path!r} (for a store in memory use --store memory)")
        self.path = str(Path(path).resolve())
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        _check_is_ours(self.path)
        self._limits = journal
        self._local = threading.local()
        # Each thread's connection and the thread, for close(). A connection is in a reference cycle (its statement
        # cache refers to it), so the end of its thread does not close it, and a served worker's collector may never
        # look at it again (D80): a stopped server had left its database's write-ahead log open, which only the last
        # connection to close removes, and with it what a copy of the database file alone would lack.
        self._connections: weakref.WeakKeyDictionary[_Connection, threading.Thread] = weakref.WeakKeyDictionary()
        self._decoded = DecodedTasks()
        # One writer at a time: threads of this process queue on a lock, processes on an flock of a file next to
        # the database. Both wake the next writer the moment the last one is done, where SQLite's own busy handler
        # sleeps and polls (1 ms, then up to 100 ms), which cost several workers most of their throughput.
        self._write_lock = threading.Lock()
        self._lock_file = open(self.path + ".lock", "a+b")
        self._commits = 0
        self._checkpoint_due = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self._closing = False
        # a store nobody closed ends its thread when collected (not at exit, where a checkpoint would be wasted)
        weakref.finalize(self, self._checkpoint_due.set).atexit = False
        db = self._db()
        with self._locked():  # the scripts manage their own transactions
            columns = {row[1] for row in db.execute("PRAGMA table_info(journal)")}
            if columns and "bytes" not in columns:  # a database from before the journal's bounds and accounts
                db.executescript(MIGRATE_JOURNAL)
            db.executescript(f"BEGIN IMMEDIATE; {SCHEMA} {JOURNAL_SIZE} COMMIT;")  # counts and triggers together
        self._file = file_identity(self.path)  # the database file the connections hold, whatever is at its path later

    def _check_file(self) -> None:
        """Raise StoreGone when the file at the store's path is no longer the one it opened (None: still opening)."""
        if getattr(self, "_file", None) not in (None, file_identity(self.path)):
            raise StoreGone(f"the SQLite store {Path(self.path).name} was deleted or replaced while the mock served "
                            f"it: nothing was written; stop the mock, and start it again on the file now there (or on "
                            f"none: it makes a new one)")

    def _db(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must not be shared between threads)."""
        db = getattr(self._local, "db", None)
        if db is None:
            # one made by the path once another file is there (or none) would open that file, or make one, beside
            # the log of the file the other connections hold: the reads of every connection had broken
            self._check_file()
            # used by this thread only; closed by the thread that closes the store once this one has ended
            db = sqlite3.connect(self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False,
                                 factory=_Connection)
            self._connections[db] = threading.current_thread()
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: a crash of the process loses nothing committed
            db.execute(f"PRAGMA journal_size_limit={WAL_BYTES}")
            db.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            db.executescript(JOURNAL_INTAKE.format(per_appkey=int(self._limits.per_appkey),
                                                   entries=int(self._limits.entries)))
            self._local.db = db
        return db

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Be the one writer: first among this process's threads, then among the processes; raise StoreBusy when the
        database's write lock is held elsewhere for longer than BUSY_SECONDS (see there)."""
        if not self._write_lock.acquire(timeout=BUSY_SECONDS):
            raise self._busy()
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX)  # another worker holds it no longer than its own wait
            try:
                self._check_file()
                yield
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):  # primary code
                    raise
                raise self._busy() from None
            finally:
                fcntl.flock(self._lock_file, fcntl.LOCK_UN)
        finally:
            self._write_lock.release()

    def _busy(self) -> StoreBusy:
        return StoreBusy(f"the SQLite store {Path(self.path).name} is locked by another program: nothing could be "
                         f"written for {BUSY_SECONDS:g} s")

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the block ends, rolled back when it raises."""
        db = self._db()
        with self._locked():
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            self._committed()

    def _committed(self) -> None:
        """Count a commit of this process; every CHECKPOINT_COMMITS, wake the checkpointing thread."""
        self._commits += 1
        if self._commits % CHECKPOINT_COMMITS == 0:
            self._checkpoint_soon()

    def _checkpoint_soon(self) -> None:
        """Wake the checkpointing thread, starting it the first time."""
        if self._checkpointer is None or not self._checkpointer.is_alive():
            thread = threading.Thread(target=_checkpointing, args=(weakref.ref(self), self._checkpoint_due),
                                      name="ivh-sqlite-checkpoint", daemon=True)
            try:
                thread.start()
            except RuntimeError:  # no thread to be had (a limit on threads): the writers' backstop checkpoints
                return
            self._checkpointer = thread
        self._checkpoint_due.set()

    def _checkpoint(self, db: sqlite3.Connection) -> None:
        """A passive checkpoint, which lets writers go on meanwhile; when the log is long, one more under the write
        lock, which copies what was written meanwhile, so that the next writer can start the log again."""
        busy, pages, _ = db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        if not busy and pages > RESTART_PAGES:
            with self._locked():
                db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def add_task(self, appkey: str, build: Build, journal: Callable[[Task], JournalEntry] | None = None) -> Task:
        with self._writing() as db:
            last, kept, clock = db.execute(
                "SELECT (SELECT task_id FROM tasks WHERE appkey = ?1 ORDER BY seq DESC LIMIT 1), (SELECT record FROM "
                "backlogs WHERE appkey = ?1), (SELECT value FROM meta WHERE key = 'clock')", (appkey,)).fetchone()
            ahead = self._ahead()
            if ahead is not None and ahead["clock"] != clock:  # moved, or started over by a reset, since it was read
                raise StaleRead  # the request is answered again, on the clock as it is now
            task, backlog = planned(backlog_from(kept), last or "", lambda: self.tasks(appkey), build)
            db.execute("INSERT OR REPLACE INTO backlogs (appkey, record) VALUES (?, ?)", (appkey, backlog_text(backlog)))
            db.execute("INSERT INTO tasks (task_id, appkey, seq, start_at, finish_at, photo, audio, video, callback, "
                       "record) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (task.task_id, appkey, task.seq, _real(task.start_at), _real(task.finish_at), task.photo,
                        task.audio, task.video, int(bool(task.payload.get("CallbackUrl"))), dumps(task)))
            if task.uploads:
                db.execute("INSERT INTO uploads (task_id, appkey, finish_at) VALUES (?, ?, ?)",
                           (task.task_id, appkey, _real(task.finish_at)))
            if journal is not None:  # the request's journal entry in the same transaction: one commit a submission
                self._insert_journal(db, journal(task))
        return task

    def media_refs(self) -> list[tuple[float, str, str, str]]:
        # the rows as SQLite makes them (NEVER for a task stuck in the queue's NULL), not remade one by one in Python
        return self._db().execute("SELECT IFNULL(finish_at, ?), photo, audio, video FROM tasks", (NEVER,)).fetchall()

    def count_waiting(self, appkey: str, before_seq: int, now: float) -> int:
        return self._db().execute("SELECT COUNT(*) FROM tasks WHERE appkey = ? AND seq < ? "
                                  "AND (start_at IS NULL OR start_at > ?)", (appkey, before_seq, now)).fetchone()[0]

    def unstarted(self, appkey: str, now: float) -> list[int]:
        return [row[0] for row in self._db().execute("SELECT seq FROM tasks WHERE appkey = ? AND (start_at IS NULL OR "
                                                     "start_at > ?) ORDER BY seq", (appkey, now))]

    def get_task(self, task_id: str) -> Task | None:
        ahead = self._ahead()
        if ahead is not None and ahead["task_id"] == task_id:
            text = ahead["task"]
        else:
            text = self._value("SELECT record FROM tasks WHERE task_id = ?", (task_id,))
        return self._decoded.task(task_id, text) if text else None

    def tasks(self, appkey: str | None = None, limit: int | None = None) -> list[Task]:
        where, order, args = ("", "rowid", ()) if appkey is None else ("WHERE appkey = ?", "seq", (appkey,))
        if limit is None:
            rows = self._db().execute(f"SELECT record FROM tasks {where} ORDER BY {order}", args).fetchall()
        else:  # the newest, read backwards along the same order, then put in order
            rows = self._db().execute(f"SELECT record FROM tasks {where} ORDER BY {order} DESC LIMIT ?",
                                      (*args, limit)).fetchall()[::-1]
        return [loads(Task, row[0]) for row in rows]

    def record(self, entry: JournalEntry) -> None:
        text = journal_text(entry, self._limits)  # made before the write lock is taken
        db = self._db()
        with self._locked():  # no transaction of its own: the entry goes in by one statement, its own transaction
            self._insert_journal(db, entry, text)
            self._committed()

    def _insert_journal(self, db: sqlite3.Connection, entry: JournalEntry, text: str | None = None) -> None:
        """Add the entry (with its account, dropping its appkey's entries past their bound and the journal's oldest
        past its bound in entries), then keep the journal within its bound in bytes. Outside a transaction each
        statement commits by itself: a reader may see the journal over its bound in bytes until the next one."""
        text = journal_text(entry, self._limits) if text is None else text
        limits = self._limits
        db.execute("INSERT INTO journal_intake (appkey, record, bytes, authenticated) VALUES (?, ?, ?, ?)",
                   (entry.appkey, text, utf8_size(text), int(entry.authenticated)))
        while True:  # then the oldest of all appkeys, while the whole journal is over a bound
            entries, size = db.execute("SELECT entries, bytes FROM journal_size").fetchone()
            if entries <= limits.entries and size <= limits.bytes:
                break
            db.execute("DELETE FROM journal WHERE id IN (SELECT id FROM journal ORDER BY id LIMIT ?)",
                       (max(1, entries - limits.entries),))

    def journal(self, appkey: str | None = None, limit: int | None = None) -> list[JournalEntry]:
        where, args = ("WHERE appkey = ?", (appkey,)) if appkey is not None else ("", ())
        rows = self._db().execute(f"SELECT record FROM (SELECT id, record FROM journal {where} ORDER BY id DESC "
                                  f"LIMIT ?) ORDER BY id", (*args, -1 if limit is None else limit))
        entries = [loads(JournalEntry, row[0]) for row in rows]
        # every account's entries, merged by time as the other stores do
        return entries if appkey is not None else sorted(entries, key=lambda entry: entry.at)

    def due_callbacks(self, now: float) -> list[Task]:
        rows = self._db().execute("SELECT record FROM tasks WHERE callback = 1 AND sent = 0 AND finish_at <= ? "
                                  "AND lease_until <= ?", (now, time.time()))
        return [loads(Task, row[0]) for row in rows]

    def claim_callback(self, task_id: str, lease_seconds: float) -> bool:
        return self._lease("UPDATE tasks SET lease_until = ? WHERE task_id = ? AND callback = 1 AND sent = 0 "
                           "AND lease_until <= ?", task_id, lease_seconds)

    def _lease(self, update: str, task_id: str, lease_seconds: float) -> bool:
        """Run a claim's UPDATE (parameters: lease end, task, now; wall-clock time); True when it took the lease."""
        wall = time.time()
        with self._writing() as db:
            return db.execute(update, (wall + lease_seconds, task_id, wall)).rowcount == 1

    def record_callback(self, attempt: CallbackAttempt, delivery: str | None = None) -> None:
        with self._writing() as db:
            db.execute("INSERT INTO callbacks (appkey, at, record) SELECT ?, ?, ? WHERE EXISTS "
                       "(SELECT 1 FROM tasks WHERE task_id = ?)",  # a task reset meanwhile stays forgotten
                       (attempt.appkey, attempt.at, dumps(attempt), attempt.task_id))
            db.execute("UPDATE tasks SET sent = 1 WHERE task_id = ?", (attempt.task_id,))

    def callbacks(self, appkey: str | None = None, limit: int | None = None) -> list[CallbackAttempt]:
        newest = -1 if limit is None else limit  # (SQLite's LIMIT -1: no limit)
        if appkey is None:
            rows = self._db().execute("SELECT record FROM callbacks ORDER BY at DESC, id DESC LIMIT ?", (newest,))
        else:
            rows = self._db().execute("SELECT record FROM callbacks WHERE appkey = ? ORDER BY id DESC LIMIT ?",
                                      (appkey, newest))
        return [loads(CallbackAttempt, row[0]) for row in rows][::-1]

    def callbacks_of(self, task: Task) -> list[CallbackAttempt]:
        rows = self._db().execute(f"SELECT record FROM callbacks WHERE {CALLBACK_TASK} = ? ORDER BY id",
                                  (task.task_id,))  # (callbacks_by_task_id)
        return [loads(CallbackAttempt, row[0]) for row in rows]

    def due_uploads(self, now: float, claimed: bool = False) -> list[Task]:
        rows = self._db().execute("SELECT t.record FROM uploads u JOIN tasks t ON t.task_id = u.task_id "
                                  "WHERE u.record IS NULL AND u.finish_at <= ? AND (? OR u.lease_until <= ?)",
                                  (now, int(claimed), time.time()))
        return [loads(Task, row[0]) for row in rows]

    def claim_upload(self, task_id: str, lease_seconds: float) -> bool:
        return self._lease("UPDATE uploads SET lease_until = ? WHERE task_id = ? AND record IS NULL "
                           "AND lease_until <= ?", task_id, lease_seconds)

    def record_upload(self, record: UploadRecord) -> None:
        with self._writing() as db:
            db.execute("UPDATE uploads SET record = ? WHERE task_id = ?", (dumps(record), record.task_id))

    def upload_of(self, task_id: str) -> UploadRecord | None:
        row = self._db().execute("SELECT record FROM uploads WHERE task_id = ? AND record IS NOT NULL",
                                 (task_id,)).fetchone()
        return loads(UploadRecord, row[0]) if row else None

    def account_settings(self, appkey: str) -> dict[str, Any]:
        ahead = self._ahead()
        if ahead is not None and ahead["appkey"] == appkey:
            text = ahead["settings"]
        else:
            text = self._value("SELECT record FROM settings WHERE appkey = ?", (appkey,))
        return decoded(text) if text else {}

    def put_account_settings(self, appkey: str, settings: dict[str, Any]) -> None:
        with self._writing() as db:  # read in the transaction, not from what the request read ahead
            kept = self._value("SELECT record FROM settings WHERE appkey = ?", (appkey,))
            text = json.dumps({**(json.loads(kept) if kept else {}), **settings})
            db.execute("INSERT OR REPLACE INTO settings (appkey, record) VALUES (?, ?)", (appkey, text))
        ahead = self._ahead()
        if ahead is not None and ahead["appkey"] == appkey:
            ahead["settings"] = text

    def appkeys(self) -> list[str]:
        rows = self._db().execute("SELECT appkey FROM tasks UNION SELECT appkey FROM accounts UNION "
                                  "SELECT appkey FROM callbacks UNION SELECT appkey FROM settings ORDER BY 1")
        return [row[0] for row in rows]

    def reset(self, appkey: str | None = None) -> None:
        with self._writing() as db:
            for table in ("tasks", "backlogs", "journal", "accounts", "callbacks", "settings", "uploads"):
                if appkey is None:
                    db.execute(f"DELETE FROM {table}")
                else:
                    db.execute(f"DELETE FROM {table} WHERE appkey = ?", (appkey,))
        ahead = self._ahead()
        if ahead is not None:  # the task read ahead may be another account's: it is read again if asked for
            ahead["task_id"] = None
            if appkey in (None, ahead["appkey"]):
                ahead["settings"] = None

    @contextlib.contextmanager
    def read_ahead(self, appkey: str, tasks: bool = False, task_id: str | None = None) -> Iterator[None]:
        """The request takes the clock, the account's settings and (with `task_id`) that task from one statement
        made as it starts, rather than one each as it goes: each statement is a call during which the worker's other
        threads may take the interpreter's lock (D48). A submission reads the account's backlog inside its own
        transaction, and checks there that the clock is still as it read it."""
        clock, settings, task = self._db().execute(READ_AHEAD, (appkey, task_id)).fetchone()
        with HoldingAhead({"store": self, "appkey": appkey, "clock": clock, "settings": settings,
                           "task_id": task_id, "task": task}):
            yield

    def _ahead(self) -> dict[str, Any] | None:
        return read_ahead_by(self)

    def _value(self, sql: str, args: tuple[Any, ...] = ()) -> Any:
        """The first column of the first row `sql` reads, or None when it reads none."""
        row = self._db().execute(sql, args).fetchone()
        return row[0] if row else None

    def outage(self, error: BaseException) -> str | None:
        # a file: its lock held elsewhere is StoreBusy (D72); its disk full is SQLITE_FULL
        if isinstance(error, StoreGone):
            return str(error)
        if isinstance(error, sqlite3.OperationalError) and error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL:
            return (f"the SQLite store {Path(self.path).name} is full (its disk, or its max_page_count): nothing was "
                    f"written")
        return None

    def close(self) -> None:
        self._closing = True
        if self._checkpointer is not None:
            self._checkpoint_due.set()
            self._checkpointer.join()
        me = threading.current_thread()
        for db, thread in list(self._connections.items()):  # not one a thread still running uses (a request cut
            if thread is me or not thread.is_alive():  # short by a stop): the process's exit closes that one
                db.close()
                del self._connections[db]
        self._local.db = None
        self._lock_file.close()

    def clock_state(self) -> dict[str, Any] | None:
        ahead = self._ahead()
        text = ahead["clock"] if ahead is not None else self._value("SELECT value FROM meta WHERE key = 'clock'")
        return decoded(text) if text else None

    def update_clock_state(self, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        with self._writing() as db:  # read in the transaction: a move made meanwhile by another worker is not lost
            kept = self._value("SELECT value FROM meta WHERE key = 'clock'")
            state = change(json.loads(kept) if kept else None)
            text = json.dumps(state)
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('clock', ?)", (text,))
        ahead = self._ahead()
        if ahead is not None:
            ahead["clock"] = text
        return state


STALE = ".of-a-replaced-store"  # the name's end of a log (and its index) moved aside by close_log


class StoreGone(Exception):
    """The database file was deleted, or another put in its place, while the store had it open: what was written to
    the file it holds would be lost unseen (a restart finds the other file, or none)."""

    advice = ""  # no "retry": it would meet the same, until a restart


def file_identity(path: str) -> tuple[int, int] | None:
    """The file at `path` (its device and inode), or None when there is none."""
    try:
        found = os.stat(path)
    except FileNotFoundError:
        return None
    return found.st_dev, found.st_ino


_TABLES = set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", SCHEMA))  # the store's own


def _check_is_ours(path: str) -> None:
    """Refuse a database of another program's (tables, none of them the store's), looked at read-only before anything
    is written: its tables had been added to it, and its journal set to WAL."""
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    try:
        with contextlib.closing(sqlite3.connect(f"{Path(path).as_uri()}?mode=ro", uri=True)) as db:
            tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY 1")]
    except sqlite3.Error:  # not a database, or unreadable: the store's own opening says so
        return
    if tables and not set(tables) & _TABLES:  # (one with any of them is the store's, of an earlier version perhaps)
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise sqlite3.DatabaseError(f"it is a database of another program's (its tables: {shown}), which ivh-mock "
                                    f"would add its own to: give ivh-mock a database file of its own")


def close_log(path: str, identity: tuple[int, int] | None) -> str | None:
    """Open the database at `path` once more and close it, after every process serving from it has closed its own
    connections: the last connection to close copies the write-ahead log into the database and removes it with its
    index. Two workers closing at the same moment can each still see the other's connection and both leave the log
    beside the database, which alone then lacks what the log holds (a copy of the file, a backup). Does nothing where
    the database cannot be read; a connection still open elsewhere keeps the log, as it must.

    Where the database is gone, or is not the file `identity` (file_identity) names, the log and index left beside
    it are the served file's (SQLite removes none of a file deleted or renamed while open): opened with them, the file
    now there (or one made anew) takes the served file's pages. They are moved aside; return what says so, or None."""
    if file_identity(path) != identity:
        moved = []
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):  # none left, or not ours to move: said by what it returns
                os.rename(f"{path}{suffix}", f"{path}{suffix}{STALE}")
                moved.append(f"{Path(path).name}{suffix}{STALE}")
        return (f"the SQLite store {Path(path).name} was deleted or replaced while the mock served it: its log is "
                f"kept aside as {' and '.join(moved)}, which no start reads" if moved else None)
    try:
        if not Path(path).is_file():
            return None
        with contextlib.closing(sqlite3.connect(path, timeout=0, isolation_level=None)) as db:
            db.execute("SELECT count(*) FROM sqlite_master").fetchone()  # reads through the log, opening it
    except (OSError, sqlite3.Error):  # its folder gone unreadable, the file no database, a lock held elsewhere
        pass
    return None


def _real(value: float) -> float | None:
    return None if value == NEVER else value


def _checkpointing(store: weakref.ref[SqliteStore], due: threading.Event) -> None:
    """A SQLite store's checkpointing thread: a checkpoint each time `due` is set, until the store is closed or
    collected. It holds the store only while it checkpoints, so that a store nobody closes is still collected."""
    db = None
    try:
        while True:
            due.wait()
            due.clear()
            owner = store()
            if owner is None or owner._closing:
                return
            try:
                if db is None:
                    owner._check_file()  # (as `_db`)
                    db = sqlite3.connect(owner.path, timeout=BUSY_SECONDS, isolation_level=None)
                    db.execute("PRAGMA synchronous=NORMAL")  # a checkpoint syncs as the writers' would
                owner._checkpoint(db)
            except (sqlite3.Error, StoreBusy, StoreGone):  # a disk error, say: connected anew next time
                if db is not None:
                    db.close()
                    db = None
            del owner
    finally:
        if db is not None:
            db.close()
