"""A pool's threads shared among the hosts it sends to (callbacks, uploads): claims are taken only for a free thread,
a target holds a quarter of them at most, and the targets with the fewest sends under way, then the one served
longest ago, go first. What is due is read from the store into a `Backlog`, by target, and a pass takes from it."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict, deque
from concurrent.futures import Executor
from typing import Any, Callable, Generic, Iterable, TypeVar
from urllib.parse import urlsplit

from ..store import outage_of

log = logging.getLogger("ivh_mock.sends")
RECORD_AGAIN_SECONDS = 0.5  # how often the record of a send made is tried again while the store is out of reach
SHARE = 0.25  # of the pool's threads, the most that send to one target (scheme://host:port) at once
SERVED_KEPT = 4096  # targets whose last turn is remembered; one forgotten goes first, as a new one does
READ_AGAIN_SECONDS = 0.05  # a backlog is read again this soon at the soonest (and never sooner than ten reads' time)
READ_AGAIN_LATEST = 1.0  # and this soon at the latest, unless a read takes half of it: then after two reads' time
Item = TypeVar("Item")


def target_of(url: str) -> str:
    """The host a send goes to (scheme://host:port), by which sends share the threads."""
    try:
        parts = urlsplit(url)
    except ValueError:  # a URL Python cannot split: its send fails and is logged, its target is the URL itself
        return url
    return f"{parts.scheme}://{parts.netloc}".lower()


class Shares:
    """Sends under way, by target, for a pool of `threads`."""

    def __init__(self, threads: int):
        self.threads, self.share = threads, max(1, int(threads * SHARE))
        self._busy: Counter[str] = Counter()
        self._served: OrderedDict[str, int] = OrderedDict()  # when each target last got a thread, oldest first
        self._turn = 0
        self._lock = threading.Lock()

    def _take_into(self, taken: list[tuple[Item, str]], backlog: Backlog[Item], claim: Callable[[Item], bool]) -> None:
        """Claim what of `backlog` the free threads can send now, none beyond a target's share: first the items of
        the targets with the fewest sends under way, then of the target served longest ago (a slow target's backlog
        waits behind a target it has not met, also when the slow target's threads have just come free), each
        target's in the order they came due. `claim(item)` takes it in the store; an item is dropped from the backlog
        once claimed, or found claimed (sent, or taken by another worker); each (item, target) pair claimed is added to
        `taken` as it is, holding a thread until `free(target)`: what was claimed before a claim raised (the store out
        of reach) is there to be sent, and the one that raised holds no thread."""
        queues = backlog.queues()
        with self._lock:
            # a pass looks at each target once (its first item), not at every item: with thousands due at once, a
            # pass at every send's end that sorted them all made their sending quadratic
            order = sorted(queues, key=lambda where: (self._busy[where], self._served.get(where, -1)))
        for where in order:
            queue = queues[where]
            while queue:
                with self._lock:
                    if sum(self._busy.values()) >= self.threads:
                        return
                    if self._busy[where] >= self.share:
                        break
                    self._busy[where] += 1
                    self._turn += 1
                    self._served[where] = self._turn
                    self._served.move_to_end(where)
                    if len(self._served) > SERVED_KEPT:  # hosts are the callers' to choose: remember a bounded number
                        self._served.popitem(last=False)
                item = queue[0]
                try:
                    claimed = claim(item)
                except BaseException:  # its thread had stayed taken: eight failed claims and its target got no more
                    self.free(where)
                    raise
                queue.popleft()
                if claimed:
                    taken.append((item, where))
                else:
                    self.free(where)
            if not queue:
                del queues[where]

    def start(self, pool: Executor, backlog: Backlog[Item], claim: Callable[[Item], bool],
              work: Callable[[Item], Any], done: Callable[[], Any] = lambda: None) -> int:
        """Claim what of `backlog` the free threads can send now (`_take_into`) and run `work(item)` for each on
        `pool`; when it ends, its thread is free again and `done()` is called. Return how many were started."""
        taken: list[tuple[Item, str]] = []
        try:
            self._take_into(taken, backlog, claim)
        finally:  # a claim that raised ends the pass: what was claimed before it is sent all the same
            for item, where in taken:
                pool.submit(self._run, work, item, where, done)
        return len(taken)

    def _run(self, work: Callable[[Item], Any], item: Item, where: str, done: Callable[[], Any]) -> None:
        try:
            work(item)
        finally:
            self.free(where)
            done()

    def free(self, target: str) -> None:
        with self._lock:
            self._busy[target] -= 1
            if self._busy[target] <= 0:
                del self._busy[target]

    def idle(self) -> bool:
        """Whether no send is under way."""
        with self._lock:
            return not self._busy


class Backlog(Generic[Item]):
    """What a pool has to send, as last read from the store (`read()`, the items due), by target, each target's in
    the order read. It is read again when it is said to be out of date (`stale()`: the clock moved), and otherwise
    once READ_AGAIN_SECONDS and ten times the last read's time have passed (READ_AGAIN_LATEST at most: what comes due
    as time runs, or by another worker's move, waits no longer): a pass at every send's end takes from what was
    read. Reading at each pass decoded every due task each time: 8,000 callbacks due at once took 157 s of
    CPU to send, most of it in reads. An item sent meanwhile by another worker, or forgotten, is found so by its
    claim; one no longer due (the clock moved back) by the dispatcher's look at the clock before it."""

    def __init__(self, read: Callable[[], Iterable[Item]], target: Callable[[Item], str]):
        self._read, self._target = read, target
        self._queues: OrderedDict[str, deque[Item]] = OrderedDict()
        self._next = 0.0  # on time.monotonic: when it is read again
        self._stale = True

    def stale(self) -> None:
        """Read it again at the next pass (another thread's call: the clock moved, what is due changed)."""
        self._stale = True

    def queues(self) -> OrderedDict[str, deque[Item]]:
        """The items due by target (the dispatcher's thread's: a pass takes from them), read again when it is time."""
        started = time.monotonic()
        if self._stale or started >= self._next:
            self._stale = False
            queues: OrderedDict[str, deque[Item]] = OrderedDict()
            for item in self._read():
                queues.setdefault(self._target(item), deque()).append(item)
            self._queues = queues
            ended = time.monotonic()
            took = ended - started
            self._next = ended + min(max(READ_AGAIN_SECONDS, 10 * took), max(READ_AGAIN_LATEST, 2 * took))
        return self._queues


def record_made(store: Any, write: Callable[[], Any], until: float, stopping: threading.Event, what: str) -> bool:
    """Make `write()`, the record of a send that was made (a callback delivered, a file uploaded), trying it again
    while the store cannot take it (`outage_of`: locked by another program, out of reach, full) until the claim's
    lease would lapse (`until`, on `time.monotonic`) or `stopping` is set. A record lost is a send made again once
    the lease lapses: a store out for 15 s during a delivery had the callback POSTed twice. Return whether it was
    recorded; what failed is logged, in a line, or with its traceback when it was no outage."""
    said = None
    while True:
        try:
            write()
            if said is not None:
                log.warning("%s: recorded, the store answering again", what)
            return True
        except Exception as error:  # a record must never take its pool's thread down: nothing would say why
            outage = outage_of(store, error)
            if outage is None:
                log.exception("%s: made, but its record failed", what)
                return False
            if time.monotonic() + RECORD_AGAIN_SECONDS >= until or stopping.is_set():
                log.warning("%s: made, but not recorded (%s): it is made again once its claim lapses", what, outage)
                return False
            if said is None:
                said = outage
                log.warning("%s: made; its record waits for the store (%s)", what, outage)
        stopping.wait(RECORD_AGAIN_SECONDS)
