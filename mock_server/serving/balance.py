"""How a server's workers spread their connections: a worker leaves a new connection to another worker that holds
fewer, while that one is polling (DECISIONS.md D79).

The workers share one listening socket, and a connection went to whichever worker accepted it first: a client that
opens its connections at once (wrk's 16, a browser's 6, a pool) could find all of them on one worker, the others
idle, and be served at one worker's rate for as long as it kept them. Each worker now says, in memory the master
shares with all of them, how many connections it holds and until when it promises to look at the socket again; a
worker woken by a connection while another that keeps its promise holds fewer looks away for a moment, so the other
takes it, and takes it itself should it still wait after DEFER_SECONDS.
"""

from __future__ import annotations

import mmap
import struct
import time

# A worker's slot is one aligned 64-bit word, written and read whole (a pair of fields was seen half-written): until
# when it promises to look again, in milliseconds of time.monotonic() (0: nobody is to wait on it), above COUNT_BITS
# bits of the connections it holds.
_WORD = struct.Struct("Q")
COUNT_BITS = 20
LATE_SECONDS = 0.5  # how late past its poll's timeout a worker may still look again before others stop waiting on it
REST_SECONDS = 0.002  # how long a worker that left a connection to another looks away from the socket
# The longest a worker leaves one waiting connection to others: one that looks but cannot accept (out of file
# descriptors), is stopped, or runs a long request in its loop's thread is waited on no longer than this.
DEFER_SECONDS = 0.05


class Shares:
    """Each worker's count of connections and its promise, one slot a worker, in memory shared across a fork."""

    def __init__(self, workers: int):
        self.workers = workers
        self._memory = mmap.mmap(-1, _WORD.size * workers)  # anonymous and shared: the forked workers see it

    def publish(self, slot: int, connections: int, until: float) -> None:
        word = int(until * 1000) << COUNT_BITS | min(connections, (1 << COUNT_BITS) - 1)
        start = slot * _WORD.size
        self._memory[start:start + _WORD.size] = _WORD.pack(word)  # one copy of 8 bytes: pack_into zeroes first

    def clear(self, slot: int) -> None:
        """The worker in `slot` is gone, or stopping: nobody is to wait on it."""
        self.publish(slot, 0, 0.0)

    def fewer_elsewhere(self, slot: int, connections: int, now: float) -> bool:
        """Whether another worker, still looking at the socket, holds fewer than `connections`."""
        now_ms = int(now * 1000)
        for other in range(self.workers):
            if other != slot:
                (word,) = _WORD.unpack_from(self._memory, other * _WORD.size)
                if word >> COUNT_BITS > now_ms and word & ((1 << COUNT_BITS) - 1) < connections:
                    return True
        return False


def balanced(server, shares: Shares, slot: int) -> None:
    """Have waitress's `server` (its listening dispatcher) tell the others its count each time its loop looks
    (readable(), each round), and, woken by a connection while a worker that still looks holds fewer, leave it to
    that one: it stops looking at the socket for REST_SECONDS (the loop polls no longer than `within` says), then
    looks again, and takes the connection itself once it has waited DEFER_SECONDS. `server.withdraw()` says the
    worker stops: nobody is to wait on it from then on."""
    readable, accept, wait = server.readable, server.handle_accept, server.adj.asyncore_loop_timeout + LATE_SECONDS
    server.rest_until = 0.0
    deferring = {"since": 0.0, "looked": False}  # since when a connection waits on others; whether the loop looked

    def balanced_readable() -> bool:
        accepting = readable()  # False once it stops, or holds its limit: nobody is to wait on it then
        now = time.monotonic()
        shares.publish(slot, len(server.active_channels), now + wait if accepting else 0.0)
        looking = accepting and now >= server.rest_until
        if looking:
            if deferring["looked"]:  # the last look found no connection waiting (no handle_accept came): another
                deferring["since"] = 0.0  # worker took the one left to it
            deferring["looked"] = True
        return looking

    def balanced_accept() -> None:
        now = time.monotonic()
        deferring["looked"] = False
        since = deferring["since"] or now
        if now - since < DEFER_SECONDS and shares.fewer_elsewhere(slot, len(server.active_channels), now):
            deferring["since"], server.rest_until = since, now + REST_SECONDS
        else:
            deferring["since"] = 0.0
            accept()

    server.readable, server.handle_accept = balanced_readable, balanced_accept
    server.withdraw = lambda: shares.clear(slot)


def within(server, timeout: float) -> float:
    """How long `server`'s loop may poll, at most `timeout`: no longer than its rest from the listening socket."""
    rest = getattr(server, "rest_until", 0.0) - time.monotonic()
    return timeout if rest <= 0 else min(timeout, rest + 0.001)  # poll counts whole milliseconds, rounding down


def withdraw(server) -> None:
    """`server`'s worker stops taking connections: the other workers are to wait on it no more (a no-op for a
    server that shares nothing)."""
    getattr(server, "withdraw", lambda: None)()
