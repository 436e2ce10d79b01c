"""How a server's workers spread their connections: a worker leaves a new connection to another worker that holds
fewer, while that one is polling (DECISIONS.md D79).

The workers share one listening socket, and a connection went to whichever worker accepted it first: a client that
opens its connections at once (wrk's 16, a browser's 6, a pool) could find all of them on one worker, the others
idle, and be served at one worker's rate for as long as it kept them. Each worker now says, in memory the master
shares with all of them, how many connections it holds and until when it promises to look at the socket again; a
worker woken by a connection while another that keeps its promise holds fewer looks away for a moment, so the other
takes it.
"""

from __future__ import annotations

import mmap
import struct
import time

_SLOT = struct.Struct("qd")  # connections held, and until when (time.monotonic) the worker will look again
LATE_SECONDS = 0.5  # how late past its poll's timeout a worker may still look again before others stop waiting on it
REST_SECONDS = 0.002  # how long a worker that left a connection to another looks away from the socket


class Shares:
    """Each worker's count of connections and its promise, one slot a worker, in memory shared across a fork."""

    def __init__(self, workers: int):
        self.workers = workers
        self._memory = mmap.mmap(-1, _SLOT.size * workers)  # anonymous and shared: the forked workers see it

    def publish(self, slot: int, connections: int, until: float) -> None:
        _SLOT.pack_into(self._memory, slot * _SLOT.size, connections, until)

    def clear(self, slot: int) -> None:
        """The worker in `slot` is gone (its master reaped it): nobody is to wait on it."""
        self.publish(slot, 0, 0.0)

    def fewer_elsewhere(self, slot: int, connections: int, now: float) -> bool:
        """Whether another worker, still looking at the socket, holds fewer than `connections`."""
        for other in range(self.workers):
            if other != slot:
                held, until = _SLOT.unpack_from(self._memory, other * _SLOT.size)
                if until > now and held < connections:
                    return True
        return False


def balanced(server, shares: Shares, slot: int) -> None:
    """Have waitress's `server` (its listening dispatcher) tell the others its count each time its loop looks
    (readable(), each round), and, woken by a connection while a worker that still looks holds fewer, leave it to
    that one: it stops looking at the socket for REST_SECONDS (the loop polls no longer than `within` says), then
    looks again, and takes the connection should it still wait."""
    readable, accept, wait = server.readable, server.handle_accept, server.adj.asyncore_loop_timeout + LATE_SECONDS
    server.rest_until = 0.0

    def balanced_readable() -> bool:
        accepting = readable()  # False once it stops, or holds its limit: nobody is to wait on it then
        now = time.monotonic()
        shares.publish(slot, len(server.active_channels), now + wait if accepting else 0.0)
        return accepting and now >= server.rest_until

    def balanced_accept() -> None:
        now = time.monotonic()
        if shares.fewer_elsewhere(slot, len(server.active_channels), now):
            server.rest_until = now + REST_SECONDS
        else:
            accept()

    server.readable, server.handle_accept = balanced_readable, balanced_accept


def within(server, timeout: float) -> float:
    """How long `server`'s loop may poll, at most `timeout`: no longer than its rest from the listening socket."""
    rest = getattr(server, "rest_until", 0.0) - time.monotonic()
    return timeout if rest <= 0 else min(timeout, rest + 0.001)  # poll counts whole milliseconds, rounding down
