"""The Redis store: one state shared by mocks on several hosts.

Keys live under a prefix (`ivh:` unless the URL says `?prefix=`), so several mocks or test runs can share one Redis
database. An API request answers from what this process last saw of the state it reads, and its one write checks
that this is unchanged (see `read_ahead`); a submission plans its task against the account's backlog optimistically
(see below); a callback is claimed with a lease (SET NX with an expiry), so one worker on any host sends it, and a
claim whose holder died lapses so that another sends it.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import threading
import uuid
import weakref
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import hiredis
import redis
from ivh_mock.spec.jsontext import decoded

from .base import (NEVER, Backlog, Build, CallbackAttempt, DecodedTasks, HoldingAhead, JournalEntry, JournalLimits,
                   StaleRead, Task, UploadRecord, WriteUnsure, backlog_from, backlog_text, dumps, journal_text,
                   kept_as_of, loads, planned, read_ahead_by)

LOCK_SECONDS = 30  # an account lock (settings changes) expires by itself should its holder die
LOCK_POLL_SECONDS = 0.001  # how often a waiter retries a held lock (redis-py's default is 0.1 s)
# Accounts and tasks a process remembers what it saw of between requests; past either bound, it starts over. A task's
# record takes 1 to 10 KB (its texts and URLs), an account's backlog less unless it keeps many unfinished tasks.
SEEN_ACCOUNTS, SEEN_TASKS = 10_000, 1_000
UNSEEN = object()  # what this process has not read yet: the clock's text, an account's settings
# Every key a reset deletes, by kind: of the whole mock (not the clock), of each appkey, of each task.
SHARED_KEYS = ("all", "appkeys", "media", "due", "owed", "journal-order", "journal-bytes", "callback-of")
ACCOUNT_KEYS = ("account", "backlog", "journal", "callbacks", "settings")
TASK_KEYS = ("task", "lease", "upload", "upload-lease", "delivered")
# The journal: a list per appkey, `journal-order` names the appkey of every entry from the oldest, and
# `journal-bytes` counts their bytes. One script appends and drops the oldest beyond the bounds, atomically.
# KEYS: the appkey's list, journal-order, journal-bytes, appkeys; ARGV: entry, appkey, authenticated (1/0),
# per-appkey limit, entries limit, bytes limit, the prefix of the appkeys' lists.
RECORD_FUNCTION = """
local function record(list, order, bytes, appkeys, entry, appkey, authenticated, per_appkey, entries, max_bytes, lists)
  redis.call('RPUSH', list, entry)
  redis.call('RPUSH', order, appkey)
  local size = redis.call('INCRBY', bytes, #entry)
  if authenticated == '1' then redis.call('SADD', appkeys, appkey) end
  if redis.call('LLEN', list) > tonumber(per_appkey) then
    size = redis.call('DECRBY', bytes, #redis.call('LPOP', list))
    redis.call('LREM', order, 1, appkey)
  end
  while redis.call('LLEN', order) > tonumber(entries) or size > tonumber(max_bytes) do
    local oldest_appkey = redis.call('LPOP', order)
    if not oldest_appkey then break end
    local oldest = redis.call('LPOP', lists .. oldest_appkey)
    if oldest then size = redis.call('DECRBY', bytes, #oldest) end
  end
end
"""
RECORD = RECORD_FUNCTION + "record(KEYS[1], KEYS[2], KEYS[3], KEYS[4], unpack(ARGV))"
# A task's deliveries are kept in `callback-of` (task id -> a JSON array of its log entries) as well as in its
# account's log, so that a task's page reads them alone (it had read the account's whole log); a reset deletes them
# with the task, as `media`. Both written, and "sent" (no longer `due`), in one script, and only while the task is
# there: one reset meanwhile stays forgotten (its log had survived every later reset, under an appkey no set a reset
# reads held). Each delivery is recorded once: a record sent again because its answer was lost (Redis paused past the
# socket's timeout as it ran the script) finds its delivery's id among the task's `delivered` ones, and keeps nothing.
# Tries of one record are made while its claim holds (minutes): the ids are kept a day, so that an older mock's reset,
# which does not know them, leaves none for good.
# KEYS: the task, the account's log, callback-of, due, the task's delivered; ARGV: the task's id, the entry, the
# delivery's id.
RECORD_CALLBACK = """
if redis.call('EXISTS', KEYS[1]) == 1 and redis.call('SADD', KEYS[5], ARGV[3]) == 1 then
  redis.call('EXPIRE', KEYS[5], 86400)
  redis.call('RPUSH', KEYS[2], ARGV[2])
  local kept = redis.call('HGET', KEYS[3], ARGV[1])
  local all = kept and (string.sub(kept, 1, -2) .. ',' .. ARGV[2] .. ']') or ('[' .. ARGV[2] .. ']')
  redis.call('HSET', KEYS[3], ARGV[1], all)
end
redis.call('ZREM', KEYS[4], ARGV[1])
"""
# A reset, in one script each, so that no request's write lands between what the reset reads and what it deletes (a
# task written meanwhile would outlive its account's list and backlog: unseen by the account's quotas, its callback
# never due). Keys are deleted by name, never by pattern: `ci:*` would also match the keys of a mock on
# `?prefix=ci:job1`. DELETE_KEYS deletes a list of key names, a thousand at a time.
DELETE_KEYS = """
local function delete_keys(keys)
  for start = 1, #keys, 1000 do
    redis.call('DEL', unpack(keys, start, math.min(start + 999, #keys)))
  end
end
"""
# ARGV: the prefix, the appkey, then the account's keys' kinds (ACCOUNT_KEYS), then '|', then the task's (TASK_KEYS).
RESET_ACCOUNT = DELETE_KEYS + """
local prefix, appkey = ARGV[1], ARGV[2]
local account_kinds, task_kinds, into = {}, {}, nil
for i = 3, #ARGV do
  if ARGV[i] == '|' then into = task_kinds elseif into then into[#into + 1] = ARGV[i]
  else account_kinds[#account_kinds + 1] = ARGV[i] end
end
local size = 0
for _, entry in ipairs(redis.call('LRANGE', prefix .. 'journal:' .. appkey, 0, -1)) do size = size + #entry end
redis.call('DECRBY', prefix .. 'journal-bytes', size)
redis.call('LREM', prefix .. 'journal-order', 0, appkey)
local ids = redis.call('LRANGE', prefix .. 'account:' .. appkey, 0, -1)
local keys, gone = {}, {}
for _, id in ipairs(ids) do
  gone[id] = true
  for _, kind in ipairs(task_kinds) do keys[#keys + 1] = prefix .. kind .. ':' .. id end
  redis.call('ZREM', prefix .. 'due', id)
  redis.call('ZREM', prefix .. 'owed', id)
  redis.call('HDEL', prefix .. 'media', id)
  redis.call('HDEL', prefix .. 'callback-of', id)
end
if #ids > 0 then  -- the list of all tasks, without the account's: read and written once, however many it had
  local kept = {}
  for _, id in ipairs(redis.call('LRANGE', prefix .. 'all', 0, -1)) do
    if not gone[id] then kept[#kept + 1] = id end
  end
  redis.call('DEL', prefix .. 'all')
  for start = 1, #kept, 1000 do
    redis.call('RPUSH', prefix .. 'all', unpack(kept, start, math.min(start + 999, #kept)))
  end
end
for _, kind in ipairs(account_kinds) do keys[#keys + 1] = prefix .. kind .. ':' .. appkey end
delete_keys(keys)
redis.call('SREM', prefix .. 'appkeys', appkey)
return ids
"""
# ARGV: the prefix, the shared keys' names (SHARED_KEYS), '|', the account's keys' kinds, '|', the task's.
RESET_ALL = DELETE_KEYS + """
local prefix = ARGV[1]
local lists, part = {{}, {}, {}}, 1
for i = 2, #ARGV do
  if ARGV[i] == '|' then part = part + 1 else lists[part][#lists[part] + 1] = ARGV[i] end
end
local keys, appkeys = {}, {}
for _, appkey in ipairs(redis.call('SMEMBERS', prefix .. 'appkeys')) do appkeys[appkey] = true end
for _, appkey in ipairs(redis.call('LRANGE', prefix .. 'journal-order', 0, -1)) do appkeys[appkey] = true end
for appkey in pairs(appkeys) do
  for _, kind in ipairs(lists[2]) do keys[#keys + 1] = prefix .. kind .. ':' .. appkey end
end
for _, id in ipairs(redis.call('LRANGE', prefix .. 'all', 0, -1)) do
  for _, kind in ipairs(lists[3]) do keys[#keys + 1] = prefix .. kind .. ':' .. id end
end
for _, name in ipairs(lists[1]) do keys[#keys + 1] = prefix .. name end
delete_keys(keys)
return 1
"""


def _ever_due(task: Task) -> bool:
    """Whether the task's callback is ever due, kept in `due` until it is sent: it has a CallbackUrl and finishes."""
    return bool(task.payload.get("CallbackUrl")) and task.finish_at != NEVER


class RedisStore:
    def __init__(self, url: str, journal: JournalLimits = JournalLimits()):
        try:
            parts = urlsplit(url)
        except ValueError as error:  # `redis://[::1:6379/0`
            raise ValueError(f"the Redis store URL cannot be read: {error} (redis://HOST:PORT/DB)") from None
        if parts.fragment:  # nothing of a Redis URL's: a `#` in a password had cut it there, the rest unsaid
            raise ValueError("the Redis store URL holds a '#', which ends what redis-py reads of it: a '#' in a "
                             "password is written %23 (redis://:PASSWORD@HOST:PORT/DB)")
        pairs = parse_qsl(parts.query, keep_blank_values=True)
        twice = sorted(key for key, count in collections.Counter(key for key, _ in pairs).items() if count > 1)
        if twice:  # redis-py and the prefix each took one of them, unsaid
            raise ValueError(f"the Redis store URL's query names {', '.join(twice)[:80]} more than once")
        if parts.scheme != "unix" and parts.path not in ("", "/") and any(key == "db" for key, _ in pairs):
            # redis-py took the query's, the banner showed the path's
            raise ValueError(f"the Redis store URL names its database twice, {parts.path[1:80]!r} in its path and "
                             f"db= in its query: name it once (redis://HOST:PORT/DB)")
        if parts.scheme != "unix" and parts.path not in ("", "/") and not parts.path[1:].isdigit():
            # redis-py reads a database that is no number as database 0: another's keys, unsaid
            raise ValueError(f"the Redis store's database {parts.path[1:80]!r} is not a number of 0 or more "
                             f"(redis://HOST:PORT/DB)")
        try:
            parts.port  # noqa: B018 - urllib checks the port as it reads it; redis-py's error blamed the query
        except ValueError as error:
            raise ValueError(f"the Redis store URL's port cannot be used: {error} (redis://HOST:PORT/DB)") from None
        query = parse_qs(parts.query)
        self.prefix = query.pop("prefix", ["ivh"])[0] + ":"
        rest = urlencode(query, doseq=True)  # what else the query says (a unix socket's db=N) stays
        self.url = url.split("?", 1)[0] + (f"?{rest}" if rest else "")
        try:
            self.redis = redis.Redis.from_url(self.url, decode_responses=True)
            self.redis.ping()  # fail at start, with the URL, rather than on the first request
        except (TypeError, ValueError) as error:  # an option redis-py does not take: `?foo=bar` had been a traceback
            said = f"query cannot be used ({', '.join(sorted(query))})" if query else "cannot be used"
            raise ValueError(f"the Redis store URL's {said}: {error}") from None
        except redis.AuthenticationError:  # said in Redis's words: "HELLO must be called with the client already
            raise ValueError(self._refused_password()) from None  # authenticated, otherwise the HELLO AUTH <user> ..."
        self._limits = journal
        # registered once; redis-py sends each by its SHA, loading it when Redis lacks it
        self._record = self.redis.register_script(RECORD)
        self._reset_account = self.redis.register_script(RESET_ACCOUNT)
        self._reset_all = self.redis.register_script(RESET_ALL)
        self._read_account = self.redis.register_script(READ_ACCOUNT)
        self._read_ahead = self.redis.register_script(READ_AHEAD)
        self._write_task = self.redis.register_script(WRITE_TASK)
        self._record_checked = self.redis.register_script(RECORD_CHECKED)
        self._record_callback = self.redis.register_script(RECORD_CALLBACK)
        # What this process last read or wrote of what API requests read ahead: the clock's text, each account's
        # settings' text and (newest task, number of tasks, backlog's text), each task's record. A request answers from
        # these; its write checks them (read_ahead).
        self._own = threading.local()  # each thread's own connection for the requests' scripts (`_run`)
        # every such connection still in use, to close; one whose thread ended closes as it is collected (a server
        # that starts a thread per connection, as werkzeug's does, would otherwise leave one open per thread)
        self._made: weakref.WeakSet[Any] = weakref.WeakSet()
        self._clock: Any = UNSEEN
        self._settings: dict[str, str | None] = {}
        self._accounts: dict[str, tuple[str, int, str]] = {}
        self._tasks = DecodedTasks(SEEN_TASKS)  # and each one's Task, decoded once

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def _account_keys(self, appkey: str) -> list[str]:
        """The account's task list and its backlog, which the account's scripts read and write together."""
        return [self._key("account", appkey), self._key("backlog", appkey)]

    def add_task(self, appkey: str, build: Build, journal: Callable[[Task], JournalEntry] | None = None) -> Task:
        return _add_task_optimistically(self, appkey, build, journal)

    def media_refs(self) -> list[tuple[float, str, str, str]]:
        return [tuple(json.loads(value)) for value in self.redis.hvals(self._key("media"))]

    def count_waiting(self, appkey: str, before_seq: int, now: float) -> int:
        if before_seq <= 0:
            return 0
        backlog = self._backlog_as_of(appkey, now)
        if backlog is not None:
            return backlog.waiting(before_seq, now)
        earlier = self._load(self.redis.lrange(self._key("account", appkey), 0, before_seq - 1))
        return sum(1 for task in earlier if task.seq < before_seq and now < task.start_at)

    def unstarted(self, appkey: str, now: float) -> list[int]:
        backlog = self._backlog_as_of(appkey, now)
        if backlog is not None:
            return backlog.unstarted(now)
        return [task.seq for task in self.tasks(appkey) if now < task.start_at]

    def _backlog_as_of(self, appkey: str, now: float) -> Backlog | None:
        """The account's kept backlog as of `now`, whose live tasks include every one not started yet (D67); None when
        it cannot serve, and the account's tasks are to be read (its list is in submission order, seq from 0)."""
        last, _, kept = self._read_account(keys=self._account_keys(appkey))
        return kept_as_of(backlog_from(kept), last, now)

    def get_task(self, task_id: str) -> Task | None:
        ahead = self._ahead()
        if ahead is not None and ahead["task_id"] == task_id:
            text = ahead["task"]
        else:
            text = self.redis.get(self._key("task", task_id))
        return self._tasks.task(task_id, text) if text else None

    def _load(self, ids: list[str]) -> list[Task]:
        if not ids:
            return []
        return [loads(Task, text) for text in self.redis.mget([self._key("task", i) for i in ids]) if text]

    def tasks(self, appkey: str | None = None, limit: int | None = None) -> list[Task]:
        if limit is not None and limit < 1:
            return []
        key = self._key("account", appkey) if appkey is not None else self._key("all")
        return self._load(self.redis.lrange(key, 0 if limit is None else -limit, -1))

    def record(self, entry: JournalEntry) -> None:
        keys, args = self._record_call(entry)
        ahead = self._ahead()
        if ahead is None:
            self._record(keys, args)
            return
        # the request's answer came from what it read ahead (a submission refused as it planned, for its quota or its
        # balance, from the account's backlog too): keep its entry only if that is still so
        appkey = ahead["appkey"]
        keys += [self._key("clock"), self._key("settings", appkey)]
        args += [ahead["clock"] or "", ahead["settings"] or ""]
        if ahead["task_id"] is not None:
            keys.append(self._key("task", ahead["task_id"]))
            args += ["task", "1" if ahead["task"] else "0"]
        elif ahead["planned"]:
            last, length, _ = ahead["account"]
            keys += self._account_keys(appkey)
            args += ["account", length, last]
        current = self._run(self._record_checked, keys, args)
        remember = entry.authenticated  # an account's request: an appkey refused before that is never held
        if current == 1:
            if remember:  # what the script found unchanged (not the clock: another request may know a newer one)
                self._saw_settings(appkey, ahead["settings"])
                if ahead["planned"]:
                    self._saw_account(appkey, ahead["account"])
            return
        self._saw(appkey, *current[:2], remember=remember)
        if ahead["task_id"] is not None:
            self._saw_task(ahead["task_id"], current[2])
        elif ahead["planned"]:
            self._saw_account(appkey, current[2], remember=remember)
        raise StaleRead

    def _record_call(self, entry: JournalEntry) -> tuple[list[str], list[Any]]:
        """The keys and arguments of the journal's `record` function for `entry`."""
        limits = self._limits
        keys = [self._key("journal", entry.appkey), self._key("journal-order"), self._key("journal-bytes"),
                self._key("appkeys")]
        return keys, [journal_text(entry, limits), entry.appkey, int(entry.authenticated), limits.per_appkey,
                      limits.entries, limits.bytes, self._key("journal", "")]

    @contextlib.contextmanager
    def read_ahead(self, appkey: str, tasks: bool = False, task_id: str | None = None) -> Iterator[None]:
        """The request takes the clock, the account's settings and (with `tasks`) the account's backlog or (with
        `task_id`) that task from here: from what this process last read or wrote of them or, when it lacks one, from
        one script that reads them all. The request's one write (`add_task`, or `record` of its journal entry) checks
        in its own script that they are still so. When one is not, nothing is written and the store learns what is
        current from that script's answer; then a submission whose account alone changed plans again, and otherwise
        the store raises StaleRead and the request is answered again. A submission or a getprogress thus costs one
        round trip when what it reads is as this process last saw it, and two when it is not (three for a getprogress
        whose task was deleted meanwhile: a task found missing is read again; D48 says when it costs more; D70)."""
        clock, settings = self._clock, self._settings.get(appkey, UNSEEN)
        account = self._accounts.get(appkey) if tasks else None
        task = self._tasks.text(task_id) if task_id is not None else None
        if clock is UNSEEN or settings is UNSEEN or (tasks and account is None) or (task_id is not None and not task):
            keys, what = [self._key("clock"), self._key("settings", appkey)], ""
            if tasks:
                keys, what = [*keys, *self._account_keys(appkey)], "account"
            elif task_id is not None:
                keys, what = [*keys, self._key("task", task_id)], "task"
            clock, settings, *more = self._run(self._read_ahead, keys, [what])
            # remembered once the request's write keeps it as an account's (`record`, `add_task`)
            self._saw(appkey, clock, settings, remember=False)
            if what == "account":
                account = self._saw_account(appkey, more[0], remember=False)
            elif what == "task":
                task = self._saw_task(task_id, more[0])
        with HoldingAhead({"store": self, "appkey": appkey, "clock": clock, "settings": settings,
                           "account": account, "task_id": task_id, "task": task, "planned": False}):
            yield

    def _ahead(self) -> dict[str, Any] | None:
        return read_ahead_by(self)

    def _saw(self, appkey: str, clock: str | None, settings: str | None, remember: bool = True) -> None:
        """Keep the clock's text (one for all requests) and, when `remember`, the account's settings."""
        self._clock = clock
        if remember:
            self._saw_settings(appkey, settings)

    def _saw_settings(self, appkey: str, settings: str | None) -> None:
        _remember(self._settings, appkey, settings, SEEN_ACCOUNTS)

    def _saw_account(self, appkey: str, account: list[Any] | tuple[str, int, str],
                     remember: bool = True) -> tuple[str, int, str]:
        last, length, kept = account
        seen = (last, int(length), kept)
        return _remember(self._accounts, appkey, seen, SEEN_ACCOUNTS) if remember else seen

    def _saw_task(self, task_id: str, text: str | None) -> str | None:
        """Remember a task's record, which never changes once written (a reset deletes it: the check sees that)."""
        if text:
            self._tasks.keep(task_id, text)
        else:
            self._tasks.forget(task_id)
        return text

    def journal(self, appkey: str | None = None, limit: int | None = None) -> list[JournalEntry]:
        start = -limit if limit else 0
        if appkey is not None:
            return [loads(JournalEntry, text) for text in self.redis.lrange(self._key("journal", appkey), start, -1)]
        order = self.redis.lrange(self._key("journal-order"), start, -1)  # the newest entries' appkeys, in order
        pipe = self.redis.pipeline(transaction=False)
        wanted = collections.Counter(order)  # entries per appkey, in order of first appearance
        for key, count in wanted.items():
            pipe.lrange(self._key("journal", key), -count, -1)
        lists = {key: iter(texts) for key, texts in zip(wanted, pipe.execute())}
        entries = [loads(JournalEntry, text) for key in order for text in [next(lists[key], None)] if text]
        return sorted(entries, key=lambda entry: entry.at)

    def due_callbacks(self, now: float) -> list[Task]:
        ids = self.redis.zrangebyscore(self._key("due"), "-inf", now)
        if not ids:
            return []
        leased = self.redis.mget([self._key("lease", i) for i in ids])
        return self._load([i for i, lease in zip(ids, leased) if lease is None])

    def claim_callback(self, task_id: str, lease_seconds: float) -> bool:
        # the lease is a key that expires by itself; the callback stays in `due` until it is recorded as sent
        if not self.redis.set(self._key("lease", task_id), "1", nx=True, px=max(1, int(lease_seconds * 1000))):
            return False
        if self.redis.zscore(self._key("due"), task_id) is None:  # sent while our lease was being taken
            self.redis.delete(self._key("lease", task_id))
            return False
        return True

    def record_callback(self, attempt: CallbackAttempt, delivery: str | None = None) -> None:
        keys = [self._key("task", attempt.task_id), self._key("callbacks", attempt.appkey), self._key("callback-of"),
                self._key("due"), self._key("delivered", attempt.task_id)]
        self._run(self._record_callback, keys, [attempt.task_id, dumps(attempt), delivery or uuid.uuid4().hex])

    def _while_task_is_there(self, task_id: str, write: Callable[[Any], Any], anyway: Callable[[Any], Any]) -> None:
        """In one MULTI/EXEC, `write` if the task is stored, and `anyway`; made again should a reset (or anything)
        change the task's key between the look and the write."""
        def make(pipe: Any) -> None:
            there = pipe.exists(key)
            pipe.multi()
            if there:
                write(pipe)
            anyway(pipe)

        key = self._key("task", task_id)
        self._watching(key, make)

    def _watching(self, key: str, make: Callable[[Any], Any]) -> Any:
        """Optimistically: `make(pipe)` reads what it needs of `key` (watched), starts the MULTI and queues its
        writes, which EXEC makes; made again from its reads when another worker, host or call changed `key`
        meanwhile. Return what `make` returned."""
        with self.redis.pipeline() as pipe:
            while True:
                try:
                    pipe.watch(key)
                    made = make(pipe)
                    pipe.execute()
                    return made
                except redis.WatchError:
                    continue

    def callbacks(self, appkey: str | None = None, limit: int | None = None) -> list[CallbackAttempt]:
        if appkey:  # one account's, in the order recorded: its newest `limit` are its last
            first = 0 if limit is None else -limit
            return [loads(CallbackAttempt, text)
                    for text in self.redis.lrange(self._key("callbacks", appkey), first, -1)]
        # of every account, by time: an account's last recorded are not its newest by the mock's clock (set back, or
        # deliveries recorded out of the order they began), so each list is read whole
        attempts = sorted((loads(CallbackAttempt, text) for key in self.appkeys()
                           for text in self.redis.lrange(self._key("callbacks", key), 0, -1)),
                          key=lambda attempt: attempt.at)
        return attempts[-limit:] if limit is not None else attempts

    def callbacks_of(self, task: Task) -> list[CallbackAttempt]:
        text = self.redis.hget(self._key("callback-of"), task.task_id)
        if text is not None:
            return [CallbackAttempt(**fields) for fields in decoded(text)]
        if not _ever_due(task) or self.redis.zscore(self._key("due"), task.task_id) is not None:
            return []  # no callback, or not sent yet
        # sent, and recorded by a mock of a version that kept no deliveries by task (before this one, or beside it on
        # the same Redis): its account's log has them
        log = self.redis.lrange(self._key("callbacks", task.appkey), 0, -1)
        attempts = (loads(CallbackAttempt, text) for text in log)
        return [attempt for attempt in attempts if attempt.task_id == task.task_id]

    def due_uploads(self, now: float, claimed: bool = False) -> list[Task]:
        ids = self.redis.zrangebyscore(self._key("owed"), "-inf", now)
        if ids and not claimed:
            leased = self.redis.mget([self._key("upload-lease", i) for i in ids])
            ids = [i for i, lease in zip(ids, leased) if lease is None]
        return self._load(ids)

    def claim_upload(self, task_id: str, lease_seconds: float) -> bool:
        key = self._key("upload-lease", task_id)
        if not self.redis.set(key, "1", nx=True, px=max(1, int(lease_seconds * 1000))):
            return False
        if self.redis.zscore(self._key("owed"), task_id) is None:  # recorded while our lease was being taken
            self.redis.delete(key)
            return False
        return True

    def record_upload(self, record: UploadRecord) -> None:
        # the outcome and "no longer owed" land together; a task reset meanwhile stays forgotten
        self._while_task_is_there(record.task_id, lambda pipe: pipe.set(self._key("upload", record.task_id),
                                                                        dumps(record)),
                                  lambda pipe: pipe.zrem(self._key("owed"), record.task_id))

    def upload_of(self, task_id: str) -> UploadRecord | None:
        text = self.redis.get(self._key("upload", task_id))
        return loads(UploadRecord, text) if text else None

    def account_settings(self, appkey: str) -> dict[str, Any]:
        ahead = self._ahead()
        if ahead is not None and ahead["appkey"] == appkey:
            text = ahead["settings"]
        else:
            text = self.redis.get(self._key("settings", appkey))
        return decoded(text) if text else {}

    def put_account_settings(self, appkey: str, settings: dict[str, Any]) -> None:
        with self.redis.lock(self._key("lock", appkey), timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS,
                             sleep=LOCK_POLL_SECONDS):
            merged = {**json.loads(self.redis.get(self._key("settings", appkey)) or "{}"), **settings}
            pipe = self.redis.pipeline()
            pipe.set(self._key("settings", appkey), json.dumps(merged))
            pipe.sadd(self._key("appkeys"), appkey)
            pipe.execute()
            self._settings.pop(appkey, None)  # read anew by the account's next request

    def appkeys(self) -> list[str]:
        return sorted(self.redis.smembers(self._key("appkeys")))

    def reset(self, appkey: str | None = None) -> None:
        if appkey is None:
            self._reset_all(args=[self.prefix, *SHARED_KEYS, "|", *ACCOUNT_KEYS, "|", *TASK_KEYS])
            self._settings.clear()
            self._accounts.clear()
            self._tasks.clear()
            return
        ids = self._reset_account(args=[self.prefix, appkey, *ACCOUNT_KEYS, "|", *TASK_KEYS])
        self._settings.pop(appkey, None)
        self._accounts.pop(appkey, None)
        for task_id in ids:
            self._tasks.forget(task_id)

    def close(self) -> None:
        for connection in list(self._made):
            connection.disconnect()
        self.redis.close()

    def _run(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a registered script as `script(keys, args)` would, on a connection of this thread's own: redis-py's
        pool takes a lock, polls the connection for data waiting and counts it out and back in, each time, about 60
        us of the 190 of CPU a getprogress's call took in-process (D70); this keeps only the poll. A thread answers
        one request at a time, so its connection is never shared."""
        own = self._own
        if getattr(own, "pid", None) != os.getpid():  # a fork's child must not share its parent's socket
            pool = self.redis.connection_pool  # its settings, not its count of connections made
            own.connection, own.pid = pool.connection_class(**pool.connection_kwargs), os.getpid()
            self._made.add(own.connection)
        connection, reconnected, reloaded = own.connection, False, False
        try:  # closed by Redis while it sat idle (a restart), or holding a stray answer: made anew before sending
            if connection.is_connected and connection.can_read():
                connection.disconnect()
        except (redis.ConnectionError, OSError):
            connection.disconnect()
        while True:  # a restarted Redis both closed the connection and forgot the scripts: each is mended once
            sent = False
            try:
                # packed by hiredis itself, as redis-py's own packing would (it encodes each argument in Python first)
                connection.send_packed_command([hiredis.pack_command(("EVALSHA", script.sha, len(keys), *keys,
                                                                      *args))])
                sent = True
                return connection.read_response()
            except redis.exceptions.NoScriptError:  # Redis restarted or flushed its scripts: load it
                if reloaded:
                    raise
                reloaded = True
                script.sha = self.redis.script_load(script.script)
            except (redis.ConnectionError, redis.TimeoutError) as error:
                connection.disconnect()  # connects again on the next send
                # a write whose answer was lost may have been made: sent again, it would be made twice (the
                # submission planned anew as another task, the journal entry kept twice), so it is not, and its
                # answer says that it may have been made (one that said "retry" had a caller submit it twice)
                if sent and script not in (self._read_ahead, self._read_account):
                    raise WriteUnsure(f"the Redis store at {self._where()} did not answer a write sent to it "
                                      f"({type(error).__name__}): it may have been kept") from None
                if reconnected:
                    raise
                reconnected = True
            except BaseException:
                connection.disconnect()  # what is left unread on it must not answer the next call
                raise

    def outage(self, error: BaseException) -> str | None:
        if not isinstance(error, (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError,
                                  redis.exceptions.OutOfMemoryError)):
            return None
        where = self._where()
        if isinstance(error, redis.AuthenticationError):  # it answers: its password changed (CONFIG SET requirepass)
            return self._refused_password()
        if isinstance(error, redis.exceptions.OutOfMemoryError):  # its maxmemory reached, with no key to evict
            return f"the Redis store at {where} is out of memory (its maxmemory): nothing was written"
        if isinstance(error, redis.exceptions.MaxConnectionsError):  # reached, but its URL's bound was met
            return (f"the Redis store at {where} has all its connections in use (max_connections in its URL bounds "
                    f"them: leave it out)")
        return f"the Redis store at {where} cannot be reached ({type(error).__name__})"

    def _where(self) -> str:
        parts = urlsplit(self.url)  # not the URL itself: it may carry a password
        return parts.path if parts.scheme == "unix" else f"{parts.hostname}:{parts.port or 6379}"

    def _refused_password(self) -> str:
        said = ("refuses the password the store's URL gives" if urlsplit(self.url).password is not None
                else "asks for a password, which the store's URL does not give")
        return (f"the Redis store at {self._where()} {said}: give its password there, redis://:PASSWORD@HOST:PORT/DB "
                f"(or redis://USER:PASSWORD@...)")

    def clock_state(self) -> dict[str, Any] | None:
        ahead = self._ahead()
        text = ahead["clock"] if ahead is not None else self.redis.get(self._key("clock"))
        return decoded(text) if text else None

    def update_clock_state(self, change: Callable[[dict[str, Any] | None], dict[str, Any]]) -> dict[str, Any]:
        def make(pipe: Any) -> tuple[dict[str, Any], str]:  # made again when another worker moved the clock meanwhile
            kept = pipe.get(key)
            state = change(json.loads(kept) if kept else None)
            text = json.dumps(state)
            pipe.multi()
            pipe.set(key, text)
            return state, text

        key = self._key("clock")
        state, text = self._watching(key, make)
        self._clock = text
        ahead = self._ahead()
        if ahead is not None:
            ahead["clock"] = text
        return state


def _remember(seen: dict[str, Any], key: str, value: Any, bound: int) -> Any:
    """Keep `value` as what was last seen of `key`, starting over past `bound` keys (one more read each)."""
    if len(seen) >= bound and key not in seen:
        seen.clear()
    seen[key] = value
    return value


# -- a request in one round trip -----------------------------------------------------------------------------------
# A submission plans its task against the account's backlog (D67): its newest task, number of tasks and kept
# backlog, taken with the clock and the account's settings from what this process last saw of them or from one script
# that reads them (`read_ahead`). The submission plans in Python, then one script writes the task, its indexes, the
# new backlog and the request's journal entry, after checking that all of that is as it was taken. If it is not
# (another submission to the account came first, another worker moved the clock or changed the settings), nothing is
# written and the script answers what is current: the submission plans anew against the account as it now is, or,
# when the clock or the settings changed, the request is answered again (StaleRead). Per account, submissions are thus
# as serial as under a lock (D48), without the lock's own round trips (take, release) or its polling.
ACCOUNT_FUNCTION = """
local function account(list, backlog)
  return {redis.call('LINDEX', list, -1) or '', redis.call('LLEN', list), redis.call('GET', backlog) or ''}
end
local function account_as(list, length, last)
  return redis.call('LLEN', list) == tonumber(length) and (redis.call('LINDEX', list, -1) or '') == last
end
"""
READ_ACCOUNT = ACCOUNT_FUNCTION + "return account(KEYS[1], KEYS[2])"
# KEYS: the clock, the account's settings and, for a submission, the account's task list and backlog or, for a
# getprogress, the task; ARGV: what follows the settings ("account", "task" or "").
READ_AHEAD = ACCOUNT_FUNCTION + """
local ahead = {redis.call('GET', KEYS[1]) or false, redis.call('GET', KEYS[2]) or false}
if ARGV[1] == 'account' then ahead[3] = account(KEYS[3], KEYS[4]) end
if ARGV[1] == 'task' then ahead[3] = redis.call('GET', KEYS[3]) or false end
return ahead
"""
# Whether the clock and the settings (KEYS c and s) read as the texts a request took them as ('' for none).
UNCHANGED_FUNCTION = """
local function unchanged(c, s, clock, settings)
  return (redis.call('GET', c) or '') == clock and (redis.call('GET', s) or '') == settings
end
"""
# KEYS: the four of `record`, the clock, the account's settings and, for a getprogress that named a task, the task or,
# for a submission, the account's task list and backlog; ARGV: `record`'s seven arguments, what the request took the
# clock and the settings as, then 'task' and whether it found the task ('1' or '0'), or 'account' and the account's
# length and newest task. Answers 1 once the entry is kept, else what is current, as READ_AHEAD answers it.
RECORD_CHECKED = RECORD_FUNCTION + ACCOUNT_FUNCTION + UNCHANGED_FUNCTION + """
local kind = ARGV[10]
local same = unchanged(KEYS[5], KEYS[6], ARGV[8], ARGV[9])
if same and kind == 'task' then same = (redis.call('STRLEN', KEYS[7]) > 0) == (ARGV[11] == '1') end
if same and kind == 'account' then same = account_as(KEYS[7], ARGV[11], ARGV[12]) end
if same then
  record(KEYS[1], KEYS[2], KEYS[3], KEYS[4], unpack(ARGV, 1, 7))
  return 1
end
local current = {redis.call('GET', KEYS[5]) or false, redis.call('GET', KEYS[6]) or false}
if kind == 'task' then current[3] = redis.call('GET', KEYS[7]) or false end
if kind == 'account' then current[3] = account(KEYS[7], KEYS[8]) end
return current
"""
# KEYS: the account's task list, its backlog, the clock, the account's settings and, when the request is journaled,
# the four keys of `record`; ARGV: what the clock and the settings were taken as, what the account was (length, last
# id), the prefix, the task (id, appkey, record, media, due, owed), the new backlog and `record`'s arguments. Answers 1
# once written, else what is current: the clock, the settings and the account.
WRITE_TASK = RECORD_FUNCTION + ACCOUNT_FUNCTION + UNCHANGED_FUNCTION + """
local list, backlog = KEYS[1], KEYS[2]
if not (unchanged(KEYS[3], KEYS[4], ARGV[1], ARGV[2]) and account_as(list, ARGV[3], ARGV[4])) then
  return {redis.call('GET', KEYS[3]) or false, redis.call('GET', KEYS[4]) or false, account(list, backlog)}
end
local prefix, task_id, appkey = ARGV[5], ARGV[6], ARGV[7]
redis.call('SET', prefix .. 'task:' .. task_id, ARGV[8])
redis.call('RPUSH', list, task_id)
redis.call('RPUSH', prefix .. 'all', task_id)
redis.call('SADD', prefix .. 'appkeys', appkey)
redis.call('HSET', prefix .. 'media', task_id, ARGV[9])
if ARGV[10] ~= '' then
  redis.call('ZADD', prefix .. 'due', ARGV[10], task_id)
end
if ARGV[11] ~= '' then
  redis.call('ZADD', prefix .. 'owed', ARGV[11], task_id)
end
redis.call('SET', backlog, ARGV[12])
if KEYS[5] then
  record(KEYS[5], KEYS[6], KEYS[7], KEYS[8], unpack(ARGV, 13))
end
return 1
"""


def _add_task_optimistically(store: RedisStore, appkey: str, build: Build,
                             journal: Callable[[Task], JournalEntry] | None) -> Task:
    keys = [*store._account_keys(appkey), store._key("clock"), store._key("settings", appkey)]
    ahead = store._ahead()
    ahead = ahead if ahead is not None and ahead["appkey"] == appkey else None
    if ahead is not None:
        ahead["planned"] = True  # a refusal `build` raises is journaled as made from the account
        if ahead["account"] is None:  # read ahead without it
            ahead["account"] = store._saw_account(appkey, store._read_account(keys=keys[:2]))
        clock, settings, account = ahead["clock"], ahead["settings"], ahead["account"]
    else:
        clock, settings, account = store._run(store._read_ahead, [keys[2], keys[3], *keys[:2]], ["account"])
        store._saw(appkey, clock, settings)
        account = store._saw_account(appkey, account)
    while True:
        last, length, kept = account
        task, backlog = planned(backlog_from(kept), last, lambda: store.tasks(appkey), build)
        due = task.finish_at if _ever_due(task) else ""
        owed = task.finish_at if task.uploads and task.finish_at != NEVER else ""  # uploads to the caller's storage
        media = json.dumps([task.finish_at, task.photo, task.audio, task.video])
        text, kept = dumps(task), backlog_text(backlog)
        args = [clock or "", settings or "", length, last, store.prefix, task.task_id, appkey, text, media, due, owed,
                kept]
        record_keys, record_args = store._record_call(journal(task)) if journal is not None else ([], [])
        try:
            current = store._run(store._write_task, keys + record_keys, args + record_args)  # with its journal entry
        except WriteUnsure as unsure:
            raise WriteUnsure(f"{unsure}, as task {task.task_id}: getprogress with that TaskId says whether it was "
                              f"(submit it again only if it was not)", task.task_id) from None
        if current == 1:
            store._saw_settings(appkey, settings)  # not the clock: another request may know a newer one
            account = store._saw_account(appkey, (task.task_id, length + 1, kept))
            store._saw_task(task.task_id, text)
            if ahead is not None:
                ahead["account"] = account
            return task
        store._saw(appkey, *current[:2])
        account = store._saw_account(appkey, current[2])
        if ahead is not None:
            if current[:2] != [ahead["clock"], ahead["settings"]]:
                raise StaleRead  # the request read the clock or the settings: it is answered again
            ahead["account"] = account  # what a refusal of the next plan is checked against
        clock, settings = current[:2]
