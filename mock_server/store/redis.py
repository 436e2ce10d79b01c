"""The Redis store: one state shared by mocks on several hosts.

Keys live under a prefix (`ivh:` unless the URL says `?prefix=`), so several mocks or test runs can share one Redis
database. A submission holds a per-account lock while it plans the task against the account's earlier tasks; a
callback is claimed with a lease (SET NX with an expiry), so one worker on any host sends it, and a claim whose
holder died lapses so that another sends it.
"""

from __future__ import annotations

import json
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import redis

from .base import (NEVER, CallbackAttempt, JournalEntry, JournalLimits, Task, UploadRecord, dumps, journal_text,
                   loads)

LOCK_SECONDS = 30  # an account lock (settings changes) expires by itself should its holder die
LOCK_POLL_SECONDS = 0.001  # how often a waiter retries a held lock (redis-py's default is 0.1 s)
# Every key a reset deletes, by kind: of the whole mock (not the clock), of each appkey, of each task.
SHARED_KEYS = ("all", "appkeys", "media", "due", "owed", "journal-order", "journal-bytes")
ACCOUNT_KEYS = ("account", "journal", "callbacks", "settings")
TASK_KEYS = ("task", "lease", "upload", "upload-lease")
# The journal: a list per appkey, `journal-order` names the appkey of every entry from the oldest, and
# `journal-bytes` counts their bytes. One script appends and drops the oldest beyond the bounds, atomically.
# KEYS: the appkey's list, journal-order, journal-bytes, appkeys; ARGV: entry, appkey, authenticated (1/0),
# per-appkey limit, entries limit, bytes limit, the prefix of the appkeys' lists.
RECORD = """
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('RPUSH', KEYS[2], ARGV[2])
local size = redis.call('INCRBY', KEYS[3], #ARGV[1])
if ARGV[3] == '1' then redis.call('SADD', KEYS[4], ARGV[2]) end
if redis.call('LLEN', KEYS[1]) > tonumber(ARGV[4]) then
  size = redis.call('DECRBY', KEYS[3], #redis.call('LPOP', KEYS[1]))
  redis.call('LREM', KEYS[2], 1, ARGV[2])
end
while redis.call('LLEN', KEYS[2]) > tonumber(ARGV[5]) or size > tonumber(ARGV[6]) do
  local appkey = redis.call('LPOP', KEYS[2])
  if not appkey then break end
  local oldest = redis.call('LPOP', ARGV[7] .. appkey)
  if oldest then size = redis.call('DECRBY', KEYS[3], #oldest) end
end
"""
# KEYS: the appkey's list, journal-order, journal-bytes; ARGV: the appkey.
FORGET = """
local size = 0
for _, entry in ipairs(redis.call('LRANGE', KEYS[1], 0, -1)) do size = size + #entry end
redis.call('DECRBY', KEYS[3], size)
redis.call('LREM', KEYS[2], 0, ARGV[1])
redis.call('DEL', KEYS[1])
"""


class RedisStore:
    def __init__(self, url: str, journal: JournalLimits = JournalLimits()):
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        self.prefix = query.pop("prefix", ["ivh"])[0] + ":"
        rest = urlencode(query, doseq=True)  # what else the query says (a unix socket's db=N) stays
        self.url = url.split("?", 1)[0] + (f"?{rest}" if rest else "")
        self.redis = redis.Redis.from_url(self.url, decode_responses=True)
        self.redis.ping()  # fail at start, with the URL, rather than on the first request
        self._limits = journal
        self._record = self.redis.register_script(RECORD)
        self._forget = self.redis.register_script(FORGET)

    def _key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    def add_task(self, appkey: str, build: Callable[[list[Task]], Task],
                 journal: Callable[[Task], JournalEntry] | None = None) -> Task:
        return _add_task_optimistically(self, appkey, build, journal)

    def media_refs(self) -> list[tuple[float, str, str, str]]:
        return [tuple(json.loads(value)) for value in self.redis.hvals(self._key("media"))]

    def count_waiting(self, appkey: str, before_seq: int, now: float) -> int:
        if before_seq <= 0:
            return 0
        # the account's list is in submission order (seq counts from 0), so only the tasks before this one are read
        earlier = self._load(self.redis.lrange(self._key("account", appkey), 0, before_seq - 1))
        return sum(1 for task in earlier if task.seq < before_seq and now < task.start_at)

    def get_task(self, task_id: str) -> Task | None:
        text = self.redis.get(self._key("task", task_id))
        return loads(Task, text) if text else None

    def _load(self, ids: list[str]) -> list[Task]:
        if not ids:
            return []
        return [loads(Task, text) for text in self.redis.mget([self._key("task", i) for i in ids]) if text]

    def tasks(self, appkey: str | None = None) -> list[Task]:
        ids = self.redis.lrange(self._key("account", appkey) if appkey else self._key("all"), 0, -1)
        return self._load(ids)

    def record(self, entry: JournalEntry) -> None:
        limits = self._limits
        keys = [self._key("journal", entry.appkey), self._key("journal-order"), self._key("journal-bytes"),
                self._key("appkeys")]
        self._record(keys, [journal_text(entry, limits), entry.appkey, int(entry.authenticated), limits.per_appkey,
                            limits.entries, limits.bytes, self._key("journal", "")])

    def journal(self, appkey: str | None = None, limit: int | None = None) -> list[JournalEntry]:
        start = -limit if limit else 0
        if appkey is not None:
            return [loads(JournalEntry, text) for text in self.redis.lrange(self._key("journal", appkey), start, -1)]
        order = self.redis.lrange(self._key("journal-order"), start, -1)  # the newest entries' appkeys, in order
        pipe = self.redis.pipeline(transaction=False)
        wanted = {key: order.count(key) for key in dict.fromkeys(order)}
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

    def record_callback(self, attempt: CallbackAttempt) -> None:
        pipe = self.redis.pipeline()  # MULTI/EXEC: the log entry and "sent" land together
        pipe.rpush(self._key("callbacks", attempt.appkey), dumps(attempt))
        pipe.zrem(self._key("due"), attempt.task_id)
        pipe.execute()

    def callbacks(self, appkey: str | None = None) -> list[CallbackAttempt]:
        keys = [appkey] if appkey else self.appkeys()
        attempts = [loads(CallbackAttempt, text) for key in keys
                    for text in self.redis.lrange(self._key("callbacks", key), 0, -1)]
        return attempts if appkey else sorted(attempts, key=lambda attempt: attempt.at)

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
        pipe = self.redis.pipeline()  # MULTI/EXEC: the outcome and "no longer owed" land together
        if self.redis.exists(self._key("task", record.task_id)):  # a task reset meanwhile stays forgotten
            pipe.set(self._key("upload", record.task_id), dumps(record))
        pipe.zrem(self._key("owed"), record.task_id)
        pipe.execute()

    def upload_of(self, task_id: str) -> UploadRecord | None:
        text = self.redis.get(self._key("upload", task_id))
        return loads(UploadRecord, text) if text else None

    def account_settings(self, appkey: str) -> dict[str, Any]:
        text = self.redis.get(self._key("settings", appkey))
        return json.loads(text) if text else {}

    def put_account_settings(self, appkey: str, settings: dict[str, Any]) -> None:
        with self.redis.lock(self._key("lock", appkey), timeout=LOCK_SECONDS, blocking_timeout=LOCK_SECONDS,
                             sleep=LOCK_POLL_SECONDS):
            merged = {**self.account_settings(appkey), **settings}
            pipe = self.redis.pipeline()
            pipe.set(self._key("settings", appkey), json.dumps(merged))
            pipe.sadd(self._key("appkeys"), appkey)
            pipe.execute()

    def appkeys(self) -> list[str]:
        return sorted(self.redis.smembers(self._key("appkeys")))

    def reset(self, appkey: str | None = None) -> None:
        # Keys are deleted by name, never by pattern: `ci:*` would also match the keys of a mock on `?prefix=ci:job1`.
        if appkey is None:
            keys = [self._key(name) for name in SHARED_KEYS]
            appkeys = set(self.appkeys()) | set(self.redis.lrange(self._key("journal-order"), 0, -1))
            keys += [self._key(kind, key) for key in appkeys for kind in ACCOUNT_KEYS]
            keys += [self._key(kind, i) for i in self.redis.lrange(self._key("all"), 0, -1) for kind in TASK_KEYS]
            for start in range(0, len(keys), 1000):
                self.redis.delete(*keys[start:start + 1000])
            return
        self._forget([self._key("journal", appkey), self._key("journal-order"), self._key("journal-bytes")], [appkey])
        ids = self.redis.lrange(self._key("account", appkey), 0, -1)
        pipe = self.redis.pipeline()
        for task_id in ids:
            pipe.delete(*(self._key(kind, task_id) for kind in TASK_KEYS))
            pipe.lrem(self._key("all"), 1, task_id)
            pipe.zrem(self._key("due"), task_id)
            pipe.zrem(self._key("owed"), task_id)
            pipe.hdel(self._key("media"), task_id)
        pipe.delete(*(self._key(kind, appkey) for kind in ACCOUNT_KEYS))
        pipe.srem(self._key("appkeys"), appkey)
        pipe.execute()

    def close(self) -> None:
        self.redis.close()

    def clock_state(self) -> dict[str, Any] | None:
        text = self.redis.get(self._key("clock"))
        return json.loads(text) if text else None

    def put_clock_state(self, state: dict[str, Any]) -> None:
        self.redis.set(self._key("clock"), json.dumps(state))


# -- a submission in two round trips ------------------------------------------------------------------------------
# A submission plans its task against the account's earlier tasks. It reads them (one script: the account's task ids
# and records), plans in Python, then writes the task and its indexes in one script that first checks the account is
# as it was read: same length, same last task. If another submission to the account came
# first, nothing is written and the submission plans again against what is there now. Per account, submissions are
# thus as serial as under a lock (D48), without the lock's own round trips (take, release) or its polling.
READ_ACCOUNT = """
local ids = redis.call('LRANGE', KEYS[1], 0, -1)
local out = {}
for i, id in ipairs(ids) do
  out[i] = redis.call('GET', ARGV[1] .. 'task:' .. id) or ''
end
return {ids[#ids] or '', out}
"""
WRITE_TASK = """
local account = KEYS[1]
local length, last = tonumber(ARGV[1]), ARGV[2]
if redis.call('LLEN', account) ~= length or (length > 0 and redis.call('LINDEX', account, -1) ~= last) then
  return 0
end
local prefix, task_id, appkey = ARGV[3], ARGV[4], ARGV[5]
redis.call('SET', prefix .. 'task:' .. task_id, ARGV[6])
redis.call('RPUSH', account, task_id)
redis.call('RPUSH', prefix .. 'all', task_id)
redis.call('SADD', prefix .. 'appkeys', appkey)
redis.call('HSET', prefix .. 'media', task_id, ARGV[7])
if ARGV[8] ~= '' then
  redis.call('ZADD', prefix .. 'due', ARGV[8], task_id)
end
if ARGV[9] ~= '' then
  redis.call('ZADD', prefix .. 'owed', ARGV[9], task_id)
end
return 1
"""


def _add_task_optimistically(store: RedisStore, appkey: str, build: Callable[[list[Task]], Task],
                             journal: Callable[[Task], JournalEntry] | None) -> Task:
    scripts = store.__dict__.get("_scripts")
    if scripts is None:  # registered once per store; redis-py sends each by its SHA, loading it when Redis lacks it
        scripts = store._scripts = (store.redis.register_script(READ_ACCOUNT), store.redis.register_script(WRITE_TASK))
    read, write = scripts
    account = store._key("account", appkey)
    while True:
        last, records = read(keys=[account], args=[store.prefix])
        task = build([loads(Task, text) for text in records if text])
        due = task.finish_at if task.payload.get("CallbackUrl") and task.finish_at != NEVER else ""
        owed = task.finish_at if task.uploads and task.finish_at != NEVER else ""  # uploads to the caller's storage
        media = json.dumps([task.finish_at, task.photo, task.audio, task.video])
        if write(keys=[account], args=[len(records), last, store.prefix, task.task_id, appkey, dumps(task), media,
                                      due, owed]):
            if journal is not None:  # the journal's bounds are kept by its own script (record)
                store.record(journal(task))
            return task
