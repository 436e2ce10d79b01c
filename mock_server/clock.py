"""Time as the mock sees it. Task state is derived from stored timestamps and a clock, never from sleeps."""

from __future__ import annotations

import contextlib
import math
import numbers
import threading
import time
from contextvars import ContextVar
from typing import Any, Callable, Iterator, Protocol

# The stored clock's state as read once for the request being answered (see StoredClock.pinned).
_PINNED: ContextVar[dict[str, Any] | None] = ContextVar("ivh_clock_state", default=None)


# The last second of the year 9999: the latest time an ISO date (and the dashboard) shows, and the control API takes.
LATEST = 253_402_300_799.0


class PastLatest(ValueError):
    """A move would take the clock past the latest time it was allowed to reach; nothing moved."""

    def __init__(self, when: float, latest: float = LATEST):
        shown = " (9999-12-31T23:59:59Z), the latest time it takes" if latest == LATEST else ""
        to = f"to {when:.0f}, " if math.isfinite(when) else ""
        super().__init__(f"the move would take the clock {to}past {latest:.0f}{shown}")


class Held(Exception):
    """The clock is held by another (`MovableClock.hold`): what was asked of it was refused, and nothing moved."""

    def __init__(self, hold: dict[str, Any], now: float):
        self.hold = hold
        super().__init__(f"the clock is held by {hold['by']!r} for {max(math.ceil(hold['until'] - now), 1)} s more "
                         f"(a run steering this mock, such as the contract suite, holds it while it runs): wait for it "
                         f"to end, or give each run a mock of its own; a hold whose run is gone is let go by a POST of "
                         f'{{"by": <its holder>, "release": true}} or a reset of everything, or lapses')


# Who asks for the moves made in this context (the control API's `by`), held to a hold (`MovableClock.hold`) in the
# same step as each move; unset, the moves are the process's own (the fixtures', a reset's) and no hold stops them.
_MOVER: ContextVar[tuple[str | None] | None] = ContextVar("ivh_clock_mover", default=None)


@contextlib.contextmanager
def moved_by(by: str | None) -> Iterator[None]:
    """Within the block, each move of a clock is refused (Held, nothing of that move made) when another than `by`
    holds it, checked in the same step as the move: a hold taken meanwhile by another stops what follows."""
    token = _MOVER.set((by,))
    try:
        yield
    finally:
        _MOVER.reset(token)


def _number(value: object, finite: bool = False) -> bool:
    """Whether `value` is a real number that is not NaN (an int of any size, a float, a numpy number...) and, with
    `finite`, not infinite either."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value) if finite else not math.isnan(value)
    except OverflowError:  # an int too large for a float: finite, and no NaN
        return True


class Clock(Protocol):
    def now(self) -> float:
        """Return the current time as Unix seconds."""

    def wall(self) -> float:
        """Return real time (the wall clock the mock's time is kept against), as Unix seconds."""


class SystemClock:
    """The machine's wall clock."""

    def now(self) -> float:
        return time.time()

    def wall(self) -> float:
        return time.time()


class MovableClock:
    """A clock that can be frozen, set and advanced: its state is a base time, the source's time when the base was
    taken (the anchor), and whether it is frozen. Subclasses say where the state is kept."""

    starts_frozen = False  # what restart() returns to: running with real time, or frozen at it

    def __init__(self, source=time.time):
        self._source = source

    def _load(self) -> dict[str, Any]:
        raise NotImplementedError

    def _update(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Keep `change(state)` as the state, reading and writing it in one step; return it."""
        raise NotImplementedError

    def _move(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """`_update` for a move, which `moved_by` holds to the clock's hold in the same step, and which counts the
        moves that took the clock back (`now_and_setbacks`)."""
        mover = _MOVER.get()

        def moved(state: dict[str, Any]) -> dict[str, Any]:
            if mover is not None:
                self._check_holder(state, mover[0])
            before = self._current(state)  # read first: a running clock read after the move had gone on since, and
            new = change(state)  # a freeze (at the time it read) looked like a move back
            back = state.get("back", 0) + (self._current(new) < before)
            return {**new, "back": back} if back else new

        return self._update(moved)

    def now_and_setbacks(self) -> tuple[float, int]:
        """The time, and how many moves took the clock back (kept with its state, so every worker sharing the store
        counts them), from one read of the state: what a sweep that remembers the time it read the tasks at checks
        (media_out.results.Retention)."""
        state = self._load()
        return self._current(state), state.get("back", 0)

    def _current(self, state: dict[str, Any]) -> float:
        return state["base"] if state["frozen"] else state["base"] + (self._source() - state["anchor"])

    @property
    def frozen(self) -> bool:
        return self._load()["frozen"]

    def now(self) -> float:
        return self._current(self._load())

    def wall(self) -> float:
        """Real time, whatever the clock was moved to: what a client signing with its own clock reads."""
        return self._source()

    def set(self, when: float) -> None:
        """Jump to `when` (Unix seconds from 0 to LATEST); time may go backwards only by an explicit set."""
        if not (_number(when) and 0 <= when <= LATEST):
            raise ValueError(f"a clock is set to Unix seconds from 0 to {LATEST:.0f} (9999-12-31T23:59:59Z), "
                             f"got {when!r}")
        self._move(lambda state: {**state, "base": float(when), "anchor": self._source()})

    def advance(self, seconds: float, latest: float = LATEST) -> float:
        """Move forward by `seconds` and return the new time; raise PastLatest, moving nothing, when that would be
        past `latest` (checked against the state kept, which another worker may have moved meanwhile)."""
        if not _number(seconds, finite=True):
            raise ValueError(f"a clock advances by a finite number of seconds, got {seconds!r}")
        if seconds < 0:
            raise ValueError("a clock only advances forward; use set() to go back")
        if seconds > latest:  # past it from any time (and perhaps too large for a float: compared exactly)
            raise PastLatest(math.inf, latest)

        def advanced(state: dict[str, Any]) -> dict[str, Any]:
            base = self._current(state) + seconds
            if base > latest:
                raise PastLatest(base, latest)
            return {**state, "base": base, "anchor": self._source()}

        return self._move(advanced)["base"]

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or restart) the clock at the current time."""
        self._move(lambda state: {**state, "base": self._current(state), "anchor": self._source(), "frozen": frozen})

    def restart(self, let_go: bool = False) -> None:
        """Return to real time, as the clock started: running in step with it, or frozen at it for a clock made
        frozen (the pytest fixtures'); with `let_go`, whoever held it holds it no more."""
        def restarted(state: dict[str, Any]) -> dict[str, Any]:
            now = self._source()
            kept = {} if let_go or "hold" not in state else {"hold": state["hold"]}
            return {**kept, "base": now, "anchor": now, "frozen": self.starts_frozen}

        self._move(restarted)

    # A hold: a run that steers the clock (the contract suite) keeps others from moving it under it. It is kept with
    # the clock's state, so every worker and host sharing the store sees it, and lapses by real time.
    def holder(self) -> dict[str, Any] | None:
        """Who holds the clock, and until when (`{"by": name, "until": Unix seconds of real time}`), or None."""
        hold = self._load().get("hold")
        return hold if hold is not None and hold["until"] > self._source() else None

    def hold(self, by: str, seconds: float) -> None:
        """Hold the clock for `by` until `seconds` of real time from now (a hold of its own already: until then, not
        longer); raise Held when another holds it (checked and taken in one step: of two runs starting at once, one
        holds it)."""
        def held(state: dict[str, Any]) -> dict[str, Any]:
            self._check_holder(state, by)
            return {**state, "hold": {"by": by, "until": self._source() + seconds}}

        self._update(held)

    def release(self, by: str) -> None:
        """Let go of `by`'s hold; raise Held when another holds the clock."""
        def released(state: dict[str, Any]) -> dict[str, Any]:
            self._check_holder(state, by)
            return {key: value for key, value in state.items() if key != "hold"}

        self._update(released)

    def _check_holder(self, state: dict[str, Any], by: str | None) -> None:
        hold, now = state.get("hold"), self._source()
        if hold is not None and hold["until"] > now and hold["by"] != by:
            raise Held(hold, now)


class VirtualClock(MovableClock):
    """A clock tests control, kept in this process: frozen, set and advanced at will; when running it ticks with
    real time."""

    def __init__(self, start: float | None = None, frozen: bool = True, source=time.time):
        super().__init__(source)
        self.starts_frozen = frozen
        anchor = source()
        self._state = {"base": start if start is not None else anchor, "anchor": anchor, "frozen": frozen}
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        return self._state

    def _update(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        with self._lock:
            self._state = change(self._state)
            return self._state


class StoredClock(MovableClock):
    """A virtual clock kept in the store, so every worker and host sharing the store sees one time; it starts
    running in step with the wall clock. Hosts need their wall clocks in step (NTP), as for the signature check."""

    def __init__(self, store, source=time.time):
        super().__init__(source)
        self._store = store
        if store.clock_state() is None:  # the first process on a new store starts the clock: running, from now
            self._update(lambda state: state)

    @staticmethod
    @contextlib.contextmanager
    def pinned() -> Iterator[None]:
        """Within this block (one HTTP request) the state is read from the store once: a move by another worker
        meanwhile counts as made after it, and a request costs one read of the store for its clock, not one per use."""
        token = _PINNED.set({})
        try:
            yield
        finally:
            _PINNED.reset(token)

    def _load(self) -> dict[str, Any]:
        pin = _PINNED.get()
        if pin is not None and "state" in pin:
            return pin["state"]
        state = self._usable(self._store.clock_state())
        if pin is not None:
            pin["state"] = state
        return state

    def _update(self, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        # from the state kept now, not the one this request read as it started: a move made meanwhile is kept too
        state = self._store.update_clock_state(lambda kept: change(self._usable(kept)))
        pin = _PINNED.get()
        if pin is not None:
            pin["state"] = state
        return state

    def _usable(self, state: dict[str, Any] | None) -> dict[str, Any]:
        """The kept state, or real time, running, when none is kept (emptied under us) or it was poisoned by an
        older version (a base that is not a finite number)."""
        if state is None or not math.isfinite(state["base"]):
            now = self._source()
            return {"base": now, "anchor": now, "frozen": False}
        return state
