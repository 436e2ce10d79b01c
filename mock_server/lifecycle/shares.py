"""A pool's threads shared among the hosts it sends to (callbacks, uploads): claims are taken only for a free thread,
a target holds a quarter of them at most, and the targets with the fewest sends under way, then the one served
longest ago, go first."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, OrderedDict
from concurrent.futures import Executor
from typing import Any, Callable, Iterable, TypeVar
from urllib.parse import urlsplit

from ..store import outage_of

log = logging.getLogger("ivh_mock.sends")
RECORD_AGAIN_SECONDS = 0.5  # how often the record of a send made is tried again while the store is out of reach
SHARE = 0.25  # of the pool's threads, the most that send to one target (scheme://host:port) at once
SERVED_KEPT = 4096  # targets whose last turn is remembered; one forgotten goes first, as a new one does
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

    def _take_into(self, taken: list[tuple[Item, str]], due: Iterable[Item], target: Callable[[Item], str],
                   claim: Callable[[Item], bool]) -> None:
        """Claim what of `due` the free threads can send now, none beyond a target's share: first the items of the
        targets with the fewest sends under way, then of the target served longest ago (a slow target's backlog
        waits behind a target it has not met, also when the slow target's threads have just come free).
        `claim(item)` takes it in the store; each (item, target) pair claimed is added to `taken` as it is, holding a
        thread until `free(target)`: what was claimed before a claim raised (the store out of reach) is there to be
        sent, and the one that raised holds no thread."""
        targeted = [(item, target(item)) for item in due]  # outside the lock, which every send's end takes
        with self._lock:
            waiting = sorted(((self._busy[where], self._served.get(where, -1), order, item, where)
                              for order, (item, where) in enumerate(targeted)), key=lambda entry: entry[:3])
        for *_, item, where in waiting:
            with self._lock:
                if sum(self._busy.values()) >= self.threads:
                    break
                if self._busy[where] >= self.share:
                    continue
                self._busy[where] += 1
                self._turn += 1
                self._served[where] = self._turn
                self._served.move_to_end(where)
                if len(self._served) > SERVED_KEPT:  # hosts are the callers' to choose: remember a bounded number
                    self._served.popitem(last=False)
            try:
                claimed = claim(item)
            except BaseException:  # its thread had stayed taken: eight failed claims and its target got no more
                self.free(where)
                raise
            if claimed:
                taken.append((item, where))
            else:
                self.free(where)

    def start(self, pool: Executor, due: Iterable[Item], target: Callable[[Item], str], claim: Callable[[Item], bool],
              work: Callable[[Item], Any], done: Callable[[], Any] = lambda: None) -> int:
        """Claim what of `due` the free threads can send now (`_take_into`) and run `work(item)` for each on `pool`;
        when it ends, its thread is free again and `done()` is called. Return how many were started."""
        taken: list[tuple[Item, str]] = []
        try:
            self._take_into(taken, due, target, claim)
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
