"""The store interface and the records it holds.

Records are plain data written once; a task's state at any moment is derived from its record and a clock
(`lifecycle/trajectory.py`), so it stays right across processes and restarts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import random
from contextvars import ContextVar
from dataclasses import dataclass
from functools import partial
from itertools import compress
from operator import gt, itemgetter, lt, not_
from typing import Any, Callable, Protocol, TypeVar

import orjson
from ivh_mock.spec.jsontext import decoded

from ..config import Config

NEVER = float("inf")
Record = TypeVar("Record")
# Where a task's results are uploaded as well, and which file goes there (DECISIONS.md D52)
STORAGE_FIELDS = (("VideoStorageS3Url", "video"), ("SubtitleStorageS3Url", "subtitles"))


@dataclass(frozen=True, slots=True)
class Task:
    """An accepted phototovideonotrain task and its whole planned trajectory, fixed when it was accepted."""

    task_id: str
    appkey: str
    seq: int  # submission order within the account (FIFO)
    payload: dict[str, Any]
    request_id: str
    submitted_at: float
    start_at: float  # rendering starts (NEVER when stuck in the queue)
    finish_at: float  # SUCCESS or FAIL is reached (NEVER when stuck); a FAIL may come before the render ends
    render_seconds: float  # the whole render; Progress = 99 * elapsed / render_seconds while MAKING
    duration_ms: int  # output video duration
    outcome: str  # SUCCESS or FAIL
    fail_code: int = 0
    fail_message: str = ""
    concurrency_type: str = "Shared"
    scenario: str = "success"
    media_base: str = ""  # scheme://host of the media URLs
    photo: str = ""  # SHA-256 of the fetched photo in the blob store
    audio: str = ""  # SHA-256 of the fetched driving audio (OriginalVoice tasks whose audio passed)
    video: str = ""  # key of the rendered video in the blob store (tasks that end in SUCCESS)
    speech: str = ""  # TextTimestampResult of a Text task as JSON text, estimated once when the task is accepted
    # (tasks that speak the same text share one string: a list of dicts per word took 3 KB a task)

    @property
    def sentences(self) -> list[dict[str, Any]]:
        """The task's TextTimestampResult (empty for an audio-driven task)."""
        return decoded(self.speech) if self.speech else []

    @property
    def uploads(self) -> list[tuple[str, str, str]]:
        """(field, URL, file) of each upload the task owes once rendered: the video to VideoStorageS3Url, a Text
        task's subtitles to SubtitleStorageS3Url; none for a task planned to fail."""
        if self.outcome != "SUCCESS":
            return []
        return [(field, self.payload[field], kind) for field, kind in STORAGE_FIELDS if self.payload.get(field)
                and (kind == "video" or self.payload["DriverType"] == "Text")]


@dataclass(frozen=True, slots=True)
class Backlog:
    """What planning a submission reads of the account's earlier tasks, kept by the store beside them so that a
    submission costs as much at an account's ten-thousandth task as at its first (DECISIONS.md D67).

    A task finished when the backlog was last brought up to date (on the mock's clock) can no longer delay a new one
    nor count against the quota: all that is left of it is the hourly package's seconds it holds, so it is settled
    into `settled_ms`. The others are `live`, each as [start_at, finish_at, the milliseconds of package it holds,
    whether it is planned to fail, seq]."""

    settled_by: float = -NEVER  # when the last of the settled tasks finished
    last: str = ""  # the TaskId of the newest task it includes: a backlog whose `last` is not the account's is stale
    next_seq: int = 0
    settled_ms: int = 0  # held by the settled tasks: those of ConcurrencyType Shared that did not fail
    live: tuple[tuple[float, float, int, bool, int], ...] = ()

    @classmethod
    def of(cls, tasks: list[Task], now: float) -> Backlog:
        """The backlog of an account's tasks (oldest first), as of `now`."""
        if not tasks:
            return cls()
        backlog = cls(last=tasks[-1].task_id, next_seq=tasks[-1].seq + 1, live=tuple(map(_live, tasks))).at(now)
        assert backlog is not None  # nothing is settled yet: no time comes before it
        return backlog

    def at(self, now: float) -> Backlog | None:
        """This backlog as of `now`: the live tasks finished by then settled. None when `now` is before `settled_by`
        (the clock was set back, or another host's runs behind, and a settled task is unfinished again then): it must
        be made anew with `of`. An account may hold a thousand live tasks, so each pass over them runs in C (map,
        min, compress), as in `held_ms`, `waiting` and `start_time`: with them in Python, a submission behind 890
        to 989 unfinished tasks took 0.47 ms in the memory store, where it takes 0.33 ms."""
        if now < self.settled_by:
            return None
        if not self.live or now < min(map(FINISH_OF, self.live)):
            return self  # nothing finished since
        unfinished = list(map(partial(lt, now), map(FINISH_OF, self.live)))
        settled, settled_by = self.settled_ms, self.settled_by
        for entry in compress(self.live, map(not_, unfinished)):
            settled_by = max(settled_by, entry[1])
            if not entry[3]:  # a task that failed gives its seconds back
                settled += entry[2]
        return Backlog(settled_by, self.last, self.next_seq, settled, tuple(compress(self.live, unfinished)))

    def adding(self, task: Task) -> Backlog:
        """This backlog with `task`, the account's next, added."""
        return Backlog(self.settled_by, task.task_id, task.seq + 1, self.settled_ms, (*self.live, _live(task)))

    def waiting(self, before_seq: int, now: float) -> int:
        """How many of the account's tasks before `before_seq` have not started by `now`, this backlog being as of
        `now` (a task not started is unfinished, so it is live)."""
        return sum(compress(map(partial(lt, now), map(START_OF, self.live)),
                            map(partial(gt, before_seq), map(_SEQ, self.live))))

    def unstarted(self, now: float) -> list[int]:
        """The seqs of the account's tasks not started by `now`, ascending, this backlog being as of `now`."""
        return sorted(compress(map(_SEQ, self.live), map(partial(lt, now), map(START_OF, self.live))))

    @property
    def held_ms(self) -> int:
        """Milliseconds of the hourly package the account's tasks hold (every live task holds its own)."""
        return self.settled_ms + sum(map(_HELD_MS, self.live))

    def package_left_ms(self, package_seconds: float) -> int:
        """What is left of an hourly package of `package_seconds` (counted in whole milliseconds, as durations are):
        in floating point, a package of 4 s less four tasks of 0.8 s had left 0.7999... s, and a fifth task of 0.8 s
        was refused."""
        return round(package_seconds * 1000) - self.held_ms


# Written with every backlog a store keeps as text. A backlog of another form (kept by another version of the mock) is
# made anew from the account's tasks, never read into fields that mean something else: change it with the fields.
BACKLOG_FORM = 2


def backlog_text(backlog: Backlog) -> str:
    """A backlog as a store keeps it: its fields and its form, as JSON. A backlog with nothing settled leaves out
    `settled_by` (its default, -NEVER): written, it is -Infinity, which only json writes and reads, and that
    doubled the time of a SQLite submission behind 800 unfinished tasks."""
    fields = fields_of(backlog)
    if fields["settled_by"] == -NEVER:
        del fields["settled_by"]
    return _json({"form": BACKLOG_FORM, **fields})


def backlog_from(text: str | bytes | None) -> Backlog | None:
    """The backlog a store kept as `text`; None when none is kept or it is of another form (see BACKLOG_FORM)."""
    if not text:
        return None
    fields = decoded(text)
    if not isinstance(fields, dict) or fields.pop("form", None) != BACKLOG_FORM:
        return None
    return Backlog(**{**fields, "live": tuple(map(tuple, fields.get("live", ())))})  # JSON's lists, as kept


# The parts of a live entry (`Backlog.live`) that planning reads across all of an account's live tasks
START_OF, FINISH_OF, _HELD_MS, _SEQ = itemgetter(0), itemgetter(1), itemgetter(2), itemgetter(4)


def _live(task: Task) -> tuple[float, float, int, bool, int]:
    return (task.start_at, task.finish_at, task.duration_ms if task.concurrency_type == "Shared" else 0,
            task.outcome == "FAIL", task.seq)


def kept_as_of(kept: Backlog | None, last: str, now: float) -> Backlog | None:
    """The kept backlog of an account whose newest task is `last` ("" for none), as of `now`; None when it cannot
    serve: missing, stale, or settled past `now` (the account's backlog is then made from its tasks)."""
    return kept.at(now) if kept is not None and kept.last == last else None


# What a submission gives the store to plan its task: called with a function that returns the account's backlog as of
# a time (the mock's clock, read by the caller while the store holds the account), it returns the task, or raises.
Build = Callable[[Callable[[float], Backlog]], Task]


def planned(kept: Backlog | None, last: str, tasks: Callable[[], list[Task]], build: Build) -> tuple[Task, Backlog]:
    """Plan a task with `build` against an account whose newest task is `last` ("" for none) and whose kept backlog is
    `kept`; `tasks()` reads all of its tasks, which is needed only when `kept` is missing or stale, or when the mock's
    clock reads a time before one of the settled tasks finished. Return the task and the backlog to keep with it."""
    current: list[Backlog] = []

    def backlog_at(now: float) -> Backlog:
        current[:] = [kept_as_of(kept, last, now) or Backlog.of(tasks() if last else [], now)]
        return current[0]

    task = build(backlog_at)
    backlog = current[0] if current else backlog_at(task.submitted_at)  # a `build` that asked nothing planned then
    return task, backlog.adding(task)


class StoreBusy(Exception):
    """The store could not be written in time: another program holds it (a SQLite database kept locked by another
    process). The message says what; nothing of the write was kept."""


class WriteUnsure(Exception):
    """A write sent to the store whose answer was lost (a timeout, the connection broken as it answered): it may
    have been made, so it is not sent again. `task_id` names the task a submission's write would have kept."""

    def __init__(self, message: str, task_id: str | None = None):
        super().__init__(message)
        self.task_id = task_id
        self.advice = "" if task_id else "retry"  # the message says what to do about a submission that may be kept


def outage_of(store: Store, error: BaseException) -> str | None:
    """What `error` says of the store, or the disk, being unable to take a write or to answer: a database another
    program keeps locked (StoreBusy), a store out of reach or out of memory (`Store.outage`), a full disk or quota;
    in the words of an answer's message. None for any other error (the mock's own fault: a traceback helps)."""
    if isinstance(error, (StoreBusy, WriteUnsure)):
        return str(error)
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):  # an asset, a video rendered
        where = f" writing {os.path.basename(error.filename)}" if isinstance(error.filename, str) else ""
        return f"no space left on the disk of its data directory{where} ({os.strerror(error.errno)})"
    return store.outage(error)


class StaleRead(Exception):
    """What an API request read ahead (`Store.read_ahead`) changed before the request's write: nothing was written,
    and the store has learnt what is current. The request is to be answered again from the start."""


# What a store's `read_ahead` took for the request being answered (a thread answers one request at a time); a dict
# naming its store under "store", the rest each store's own.
_AHEAD: ContextVar[dict[str, Any] | None] = ContextVar("ivh_read_ahead", default=None)


class HoldingAhead:  # a class, not a generator: a third of the cost, paid by every API request
    """Keep `ahead` (what `ahead["store"]` read ahead) for the request this thread answers, within the block."""

    __slots__ = ("_ahead", "_token")

    def __init__(self, ahead: dict[str, Any]):
        self._ahead = ahead

    def __enter__(self) -> None:
        self._token = _AHEAD.set(self._ahead)

    def __exit__(self, *raised: object) -> None:
        _AHEAD.reset(self._token)


def read_ahead_by(store: Any) -> dict[str, Any] | None:
    """What `store` read ahead for the request this thread answers, if anything."""
    ahead = _AHEAD.get()
    return ahead if ahead is not None and ahead["store"] is store else None


class DecodedTasks:
    """Tasks' record texts by id, each with the Task decoded from it once one was asked for, up to `bound` of them
    (past it, it starts over). A task's record never changes once written, so a request that reads the same text
    again takes the Task decoded before, shared as the memory store shares its tasks: polling getprogress decodes a
    task once, not on every call. A network store answers a task's text from here too (RedisStore.read_ahead)."""

    def __init__(self, bound: int = 1_000):
        self._bound, self._seen = bound, {}

    def task(self, task_id: str, text: str) -> Task:
        seen = self._seen.get(task_id)
        if seen is not None and seen[0] == text and seen[1] is not None:
            return seen[1]
        task = loads(Task, text)
        self._keep(task_id, text, task)
        return task

    def text(self, task_id: str) -> str | None:
        seen = self._seen.get(task_id)
        return seen[0] if seen is not None else None

    def keep(self, task_id: str, text: str) -> None:
        """Remember `text` as the task's record (its Task, when decoded from the same text, stays)."""
        seen = self._seen.get(task_id)
        if seen is None or seen[0] != text:
            self._keep(task_id, text, None)

    def forget(self, task_id: str) -> None:
        self._seen.pop(task_id, None)

    def clear(self) -> None:
        self._seen.clear()

    def _keep(self, task_id: str, text: str, task: Task | None) -> None:
        if len(self._seen) >= self._bound and task_id not in self._seen:
            self._seen.clear()
        self._seen[task_id] = (text, task)


@dataclass(frozen=True, slots=True)
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
    scenario: str | None = None
    authenticated: bool = True  # False: refused before its appkey and signature were accepted (no account made)
    # what the answer does not say: the rules the profile only recommends that an accepted photo misses, what the
    # journal left out (the end of a large body)
    note: str = ""

    @property
    def verdict(self) -> str:
        return "accepted" if self.code == 0 else "rejected"


@dataclass(frozen=True)
class JournalLimits:
    """How much of the request journal a store keeps: the newest `per_appkey` entries of each appkey, and of all
    appkeys together the newest that fit in `entries` entries and `bytes` bytes of JSON; a body over `body_bytes`
    bytes of JSON is kept as the start of its text, with a note."""

    per_appkey: int = Config.journal_limit  # the defaults are the server's (its options set the others)
    entries: int = Config.journal_total_limit
    bytes: int = Config.journal_total_bytes
    body_bytes: int = Config.journal_body_bytes

    def __post_init__(self) -> None:
        # every store holds these as numbers of its own: SQLite's 64-bit integers, Lua's doubles in Redis
        for field, option in zip(dataclasses.fields(self), JOURNAL_OPTIONS):
            value = getattr(self, field.name)
            if type(value) is not int or not 1 <= value <= 2**53:
                raise ValueError(f"{option} (the journal's {field.name}) must be a whole number from 1 to 2**53, "
                                 f"got {value!r}")


JOURNAL_OPTIONS = ("journal_limit", "journal_total_limit", "journal_total_bytes", "journal_body_bytes")


def journal_text(entry: JournalEntry, limits: JournalLimits) -> str:
    """Serialise a journal entry as the journal keeps it (the text `dumps` writes), its body cut to
    `limits.body_bytes` when larger. Most entries are serialised once: an entry within the bound has its body within
    it too."""
    text = dumps(entry)
    if utf8_size(text) <= limits.body_bytes:
        return text
    body = _json(entry.body)
    size = utf8_size(body)
    if size <= limits.body_bytes:
        return text
    head = body.encode()[:limits.body_bytes].decode("utf-8", "ignore")
    cut = f"body cut to its first {limits.body_bytes} of {size} bytes of JSON"
    return dumps(dataclasses.replace(entry, body=head, note=f"{entry.note}; {cut}" if entry.note else cut))


def _json(value: Any) -> str:
    """`value` as compact JSON text, non-ASCII kept as it is: written by orjson (a stored task in a sixth of the time)
    where its text reads back as json's does, else by json. orjson refuses an integer past 64 bits, a key that is not
    a string and a lone surrogate, and writes null for a float that is not finite, where json writes the Infinity
    that NEVER needs; a text holding null for such a float is therefore written again by json. orjson may
    spell a float otherwise (0.00001 for json's 1e-05), never as another value; the journal's bounds in bytes count
    the text as kept."""
    try:
        text = orjson.dumps(value)
    except TypeError:
        return _ENCODER.encode(value)
    return _ENCODER.encode(value) if b"null" in text and not _finite(value) else text.decode()


def _finite(value: Any) -> bool:
    """Whether `value` holds no float that is not finite: its null in orjson's text is then a None. Looked at only
    when the text holds null (a journal entry's empty fields): walking a value's parts costs less than writing it
    again, most of all a large body's."""
    if isinstance(value, float):
        return value - value == 0.0  # inf - inf and nan - nan are nan
    if isinstance(value, dict):
        return all(_finite(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(item) for item in value)
    return True


# what json.dumps(value, ensure_ascii=False, separators=(",", ":")) writes, without making an encoder for each call
_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def utf8_size(text: str) -> int:
    """The size of `text` in UTF-8, without encoding it when it is ASCII (as a request most often is); a lone
    surrogate, which UTF-8 cannot hold, counts as the three bytes it would take."""
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class CallbackAttempt:
    """The one delivery of a task's callback: where, when, what was sent and what came back."""

    task_id: str
    appkey: str
    url: str
    at: float  # on the mock's clock
    body: dict[str, Any]
    status: int | None = None
    error: str | None = None
    latency_ms: float = 0.0
    response_body: str = ""


@dataclass(frozen=True, slots=True)
class UploadRecord:
    """The outcome of a task's uploads to the caller's storage: each file's answer, and whether all succeeded."""

    task_id: str
    appkey: str
    at: float  # on the mock's clock, when the outcome was recorded: the task's SUCCESS or FAIL from then on
    ok: bool
    files: list[dict[str, Any]]  # per file: field, url (without its query), content_type, bytes, status, error, ...
    fail_message: str = ""


class Store(Protocol):
    def add_task(self, appkey: str, build: Build, journal: Callable[[Task], JournalEntry] | None = None) -> Task:
        """Atomically, per account: call `build` (through `planned`, with the account's kept backlog) and keep what it
        returns, the account's new backlog, and `journal(task)`, the accepted request's journal entry, in the same
        transaction. `build` may raise to refuse the submission; nothing is kept then. A store may call `build` more
        than once (one that plans optimistically calls it again when another submission to the account came first),
        so it must have no effect besides its answer."""

    def media_refs(self) -> list[tuple[float, str, str, str]]:
        """Return (finish_at, photo, audio, video) of every task: the files each keeps until its retention ends.
        Cheaper than `tasks()`, which the retention sweep would otherwise read in full every pass."""

    def count_waiting(self, appkey: str, before_seq: int, now: float) -> int:
        """Count the account's tasks submitted before `before_seq` that have not started by `now`."""

    def unstarted(self, appkey: str, now: float) -> list[int]:
        """The seqs of the account's tasks that have not started by `now`, ascending: what `count_waiting` counts for
        every task of the account at once (`bisect_left(unstarted(appkey, now), seq)`), for a list of many tasks."""

    def get_task(self, task_id: str) -> Task | None:
        """Return the task with this id, whoever owns it, or None."""

    def tasks(self, appkey: str | None = None, limit: int | None = None) -> list[Task]:
        """Return the tasks of one appkey (or of all), in submission order; with `limit`, only the newest `limit`
        (read without reading the others: the dashboard asks every second, however many tasks the store holds)."""

    def record(self, entry: JournalEntry) -> None:
        """Append to the request journal within its JournalLimits, dropping the oldest entries beyond them. An
        entry that is not `authenticated` does not make its appkey one of `appkeys()`."""

    def journal(self, appkey: str | None = None, limit: int | None = None) -> list[JournalEntry]:
        """Return the newest `limit` (default all) entries of one appkey's journal, or of all, oldest first."""

    def due_callbacks(self, now: float) -> list[Task]:
        """Return tasks with a CallbackUrl that have finished by `now` (the mock's clock), whose callback is not yet
        sent and not claimed by a live lease."""

    def claim_callback(self, task_id: str, lease_seconds: float) -> bool:
        """Claim a task's callback for `lease_seconds` of wall-clock time: True for one caller at a time. Once the
        callback is recorded (`record_callback`) nobody can claim it again; a claim whose holder died before recording
        lapses with its lease, so the callback is sent after a crash rather than lost."""

    def record_callback(self, attempt: CallbackAttempt, delivery: str | None = None) -> None:
        """Keep the outcome of a callback delivery and mark the task's callback sent, for good. `delivery` names the
        delivery (one id for every try of its record): a record the store may have kept already, its answer lost, is
        kept once."""

    def callbacks(self, appkey: str | None = None, limit: int | None = None) -> list[CallbackAttempt]:
        """Return the delivery log of one appkey (or of all), oldest first: the newest `limit` (1 or more) entries of
        it, if given (read alone where the store can: the log is kept until a reset, and a list of its last ten had
        read 50,000)."""

    def callbacks_of(self, task: Task) -> list[CallbackAttempt]:
        """Return the recorded deliveries of a task's callback, oldest first: one, or two should a lapsed claim's
        holder have recorded one too, and none before it is sent; read alone, not from its account's whole log (a
        task's page had read every delivery of its account)."""

    def due_uploads(self, now: float, claimed: bool = False) -> list[Task]:
        """Return tasks that owe uploads (`Task.uploads`), rendered by `now` (the mock's clock), whose outcome is not
        yet recorded and, unless `claimed`, that no live lease holds."""

    def claim_upload(self, task_id: str, lease_seconds: float) -> bool:
        """Claim a task's uploads for `lease_seconds` of wall-clock time, as `claim_callback` does for callbacks."""

    def record_upload(self, record: UploadRecord) -> None:
        """Keep the outcome of a task's uploads, for good (nobody can claim them again)."""

    def upload_of(self, task_id: str) -> UploadRecord | None:
        """Return the recorded outcome of a task's uploads, or None while there is none."""

    def account_settings(self, appkey: str) -> dict[str, Any]:
        """Return the settings changed for an account through the control API (empty when none)."""

    def put_account_settings(self, appkey: str, settings: dict[str, Any]) -> None:
        """Merge `settings` into the account's changed settings."""

    def appkeys(self) -> list[str]:
        """Return every appkey with tasks, settings, callbacks or an authenticated request: the accounts."""

    def reset(self, appkey: str | None = None) -> None:
        """Forget everything about one appkey (tasks, journal, callbacks, settings), or about all of them; the clock
        stays as it is."""

    def close(self) -> None:
        """Let go of connections and files (before a fork, or when done); the store must not be used after."""

    def outage(self, error: BaseException) -> str | None:
        """What `error`, raised by one of this store's calls, says of the store being out of reach (a server down, a
        network gone), in the words of an answer's message; None when it is no such error."""

    def read_ahead(self, appkey: str, tasks: bool = False,
                   task_id: str | None = None) -> contextlib.AbstractContextManager[None]:
        """Within the block (one API request of `appkey`), the store may answer the clock's state, the account's
        settings and, with `tasks`, the account's backlog for `add_task` or, with `task_id`, `get_task(task_id)` from
        one read made as the block starts, or from what it read or wrote of them before: a network store saves its
        round trips. The request's write (`add_task`, or `record` of its journal entry) then checks that they are still
        so: when one is not, `record` raises StaleRead, and `add_task` plans again if only the account's tasks changed
        and raises StaleRead otherwise. A local store reads them in one statement (SQLite) or keeps the clock's state
        as the request found it (memory), and checks only the clock, at `add_task`: a submission that read it before a
        move or a reset is answered again rather than kept as planned on a clock that is gone."""

    def clock_state(self) -> dict[str, Any] | None:
        """Return the shared virtual clock's state (see clock.StoredClock), or None before it was first kept."""

    def update_clock_state(self, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        """Keep `change(state)` as the shared virtual clock's state, `state` being the one kept (None before the
        first), in one step: a move made meanwhile by another thread, worker or host is not lost. `change` may be
        called more than once (a store that writes optimistically calls it again when the state changed meanwhile),
        so it must have no effect besides its answer. Return the state kept."""


def new_id() -> str:
    """Return a fresh 32-character lowercase hex id, the form of the vendor's TaskId and RequestID.

    From a generator of its own, seeded by the OS at start and again in every forked worker (uuid4 asked the kernel
    for 16 bytes on every call, two system calls a submission): not the global one, which test tools such as
    Hypothesis seed alike for every example, and which would then hand out the same ids again."""
    return f"{_IDS.getrandbits(128):032x}"


_IDS = random.Random()
os.register_at_fork(after_in_child=_IDS.seed)


def dumps(record: Any) -> str:
    """Serialise a record (Task, JournalEntry, CallbackAttempt, UploadRecord) for a store that keeps text."""
    return _json(fields_of(record))


def fields_of(record: Any) -> dict[str, Any]:
    """A dataclass's fields as a dict, without the deep copy `dataclasses.asdict` makes of every nested value."""
    names = _FIELD_NAMES.get(type(record))
    if names is None:  # dataclasses.fields() builds its answer anew on every call: a tenth of a journal entry's time
        names = _FIELD_NAMES[type(record)] = tuple(field.name for field in dataclasses.fields(record))
    return {name: getattr(record, name) for name in names}


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def loads(kind: type[Record], text: str | bytes) -> Record:
    """Rebuild a record serialised by `dumps` (NEVER survives as Infinity)."""
    return kind(**decoded(text))
