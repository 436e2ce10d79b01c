"""Time as the mock sees it. Task state is derived from stored timestamps and a clock, never from sleeps."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Return the current time as Unix seconds."""


class SystemClock:
    """The machine's wall clock."""

    def now(self) -> float:
        return time.time()


class VirtualClock:
    """A clock tests control: frozen, set and advanced at will; when running it ticks with real time."""

    def __init__(self, start: float | None = None, frozen: bool = True, source=time.time):
        self._source = source
        self._lock = threading.Lock()
        self._base = start if start is not None else source()
        self._anchor = source()
        self._frozen = frozen

    @property
    def frozen(self) -> bool:
        return self._frozen

    def now(self) -> float:
        with self._lock:
            return self._current()

    def _current(self) -> float:
        return self._base if self._frozen else self._base + (self._source() - self._anchor)

    def set(self, when: float) -> None:
        """Jump to `when` (Unix seconds); time may go backwards only by an explicit set."""
        with self._lock:
            self._base, self._anchor = float(when), self._source()

    def advance(self, seconds: float) -> float:
        """Move forward by `seconds` and return the new time."""
        if seconds < 0:
            raise ValueError("a clock only advances forward; use set() to go back")
        with self._lock:
            self._base, self._anchor = self._current() + seconds, self._source()
            return self._base

    def freeze(self, frozen: bool = True) -> None:
        """Stop (or restart) the clock at the current time."""
        with self._lock:
            self._base, self._anchor, self._frozen = self._current(), self._source(), frozen
