"""How a server's workers spread their connections: a worker leaves a new connection to another worker that holds
fewer and is about to take it (DECISIONS.md D79).

The workers share one listening socket, and a connection went to whichever worker accepted it first: a client that
opens its connections at once (wrk's 16, a browser's 6, a pool) could find all of them on one worker, the others
idle, and be served at one worker's rate for as long as it kept them. Each worker now says, in memory the master
shares with all of them, how many connections it holds, what it does (it looks at the socket, rests from it, or is
busy: its loop's thread runs a request) and until when it promises to look again. A worker woken by a connection
leaves it to one that looks and holds fewer (or rests and holds two fewer, or is busy and holds half as many or
fewer, of four or more): it gives up the processor and looks again, then rests between looks, and takes the
connection itself after DEFER_SECONDS. A busy worker holding two fewer otherwise is left the connection for one look
only: with clients that open a connection for each request, the counts are 0 or 1 apart at every moment, and waiting
on busy workers took a bare endpoint from 7,000 to 850 requests a second.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import struct
import time

# A worker's slot is one aligned 64-bit word, written and read whole (fields written apart were read half-written):
# until when it promises to look again, in milliseconds of time.monotonic() (0: nobody is to wait on it), then two
# bits of what it does (it looks now, rests, or is busy), then COUNT_BITS bits of the connections it holds.
_WORD = struct.Struct("Q")
COUNT_BITS = 20
_COUNT = (1 << COUNT_BITS) - 1
_UNTIL_SHIFT = COUNT_BITS + 2
LOOKING, RESTING, BUSY = 1, 2, 3  # what a worker does, as it says; and what fewer_elsewhere found (0: nothing)
LATE_SECONDS = 0.5  # how late past its poll's timeout a worker may still look again before others stop waiting on it
# How long a worker that left a connection to another looks away from the socket, should the connection still wait
# when it looks again (the first time, it gives up the processor and looks again at once: the other, woken by the
# same connection, takes it within microseconds when it can).
REST_SECONDS = 0.002
# A connection found this long after the loop began to look is a new one: had the connection left to others still
# waited then, the poll would have found it at once (a poll that waited means another worker took that one).
NEW_SECONDS = 0.01
# The longest a worker leaves one waiting connection to others: one that looks but cannot accept (out of file
# descriptors) is waited on no longer than this for each connection, one that has stopped (its slot reads the same
# at the end of such a wait) for one connection only, until it goes on (D79).
DEFER_SECONDS = 0.05


class Shares:
    """Each worker's count of connections, what it does and its promise, one slot a worker, in memory shared across
    a fork."""

    def __init__(self, workers: int):
        self.workers = workers
        self._memory = mmap.mmap(-1, _WORD.size * workers)  # anonymous and shared: the forked workers see it

    def publish(self, slot: int, connections: int, until: float, doing: int = LOOKING) -> None:
        word = int(until * 1000) << _UNTIL_SHIFT | doing << COUNT_BITS | min(connections, _COUNT)
        start = slot * _WORD.size
        self._memory[start:start + _WORD.size] = _WORD.pack(word)  # one copy of 8 bytes: pack_into zeroes first

    def clear(self, slot: int) -> None:
        """The worker in `slot` is gone, or stopping: nobody is to wait on it."""
        self.publish(slot, 0, 0.0)

    def words(self) -> list[int]:
        """Every worker's slot as it reads now."""
        return [_WORD.unpack_from(self._memory, other * _WORD.size)[0] for other in range(self.workers)]

    def fewer_elsewhere(self, slot: int, connections: int, now: float, stalled: dict[int, int] | None = None) -> int:
        """Whom of the other workers that keep their promise a connection is to be left to: LOOKING when one looks
        now and holds fewer than `connections`, or rests and holds two fewer (two that rest, each for the other,
        would leave connections to nobody), or is busy and holds half as many or fewer, of four or more; else BUSY
        when one is busy and holds two fewer; else 0. A worker whose slot still reads as `stalled` says it kept
        through a whole wait is passed over (and forgotten there once its slot moves)."""
        now_ms, found = int(now * 1000), 0
        for other, word in enumerate(self.words()):
            if other != slot:
                if stalled and other in stalled:
                    if stalled[other] == word:
                        continue
                    del stalled[other]
                if word >> _UNTIL_SHIFT > now_ms:
                    doing, held = word >> COUNT_BITS & 3, word & _COUNT
                    if (doing == LOOKING and held < connections or doing == RESTING and held + 2 <= connections
                            or doing == BUSY and connections >= 4 and 2 * held <= connections):
                        return LOOKING
                    if doing == BUSY and held + 2 <= connections:
                        found = BUSY
        return found


def balanced(server, shares: Shares, slot: int) -> None:
    """Have waitress's `server` (its listening dispatcher) tell the others its count each time its loop looks
    (readable(), each round), and, woken by a connection that another worker is to take (`Shares.fewer_elsewhere`),
    leave it to that one: it stops looking at the socket for REST_SECONDS (the loop polls no longer than `within`
    says), then looks again, and takes the connection itself once it has waited DEFER_SECONDS. `server.busy()` says
    its loop's thread is to run a request, and look at nothing meanwhile (other workers wait on it only past a
    margin); `withdraw(server)` that it stops."""
    readable, accept, wait = server.readable, server.handle_accept, server.adj.asyncore_loop_timeout + LATE_SECONDS
    server.rest_until = 0.0
    # since when a connection waits on others, and every slot as it read then; whether the loop looked since, and when
    deferring: dict = {"since": 0.0, "seen": [], "looked": False, "looked_at": 0.0}
    # Others whose slot did not move through a whole wait (a live worker says something new each round of its loop,
    # and one that looks is woken by the very connection left to it): stopped, or hung in one request. Each is passed
    # over while its slot reads as it did, so that connections coming together wait on it once, not one after another.
    stalled: dict[int, int] = {}

    def balanced_readable() -> bool:
        accepting = readable()  # False once it stops, or holds its limit: nobody is to wait on it then
        now = time.monotonic()
        looking = accepting and now >= server.rest_until
        shares.publish(slot, len(server.active_channels), now + wait if accepting else 0.0,
                       LOOKING if looking else RESTING)
        if looking:
            if deferring["looked"]:  # the last look found no connection waiting (no handle_accept came): another
                deferring["since"] = 0.0  # worker took the one left to it
            deferring["looked"], deferring["looked_at"] = True, now
        return looking

    def balanced_accept() -> None:
        now = time.monotonic()
        deferring["looked"] = False
        if now - deferring["looked_at"] > NEW_SECONDS:  # not the connection left to others: its wait is over
            deferring["since"] = 0.0
        since = deferring["since"] or now
        if now - since < DEFER_SECONDS:
            other = shares.fewer_elsewhere(slot, len(server.active_channels), now, stalled)
        else:
            other = 0
            stalled.update((peer, word) for peer, (word, seen) in enumerate(zip(shares.words(), deferring["seen"]))
                           if peer != slot and word == seen)
        if other == LOOKING or (other == BUSY and not deferring["since"]):  # a busy one: one look only
            if deferring["since"]:
                server.rest_until = now + REST_SECONDS
            else:
                os.sched_yield()
                deferring["seen"] = shares.words()
            deferring["since"] = since
        else:
            deferring["since"] = 0.0
            accept()

    server.readable, server.handle_accept = balanced_readable, balanced_accept
    server.busy = lambda: shares.publish(slot, len(server.active_channels), time.monotonic() + wait, BUSY)
    server.withdraw = lambda: shares.clear(slot)


def within(server, timeout: float) -> float:
    """How long `server`'s loop may poll, at most `timeout`: no longer than its rest from the listening socket."""
    rest = getattr(server, "rest_until", 0.0) - time.monotonic()
    return timeout if rest <= 0 else min(timeout, rest + 0.001)  # poll counts whole milliseconds, rounding down


def stop_listening(server) -> None:
    """Close `server`'s copy of the listening socket, once its worker has withdrawn and left its event loop (never from
    a signal handler: the loop may be walking its map). The port is free once every process holding a copy has closed
    it: when a master stops or is killed alone (D55), as soon as its workers begin to stop, not only once the requests,
    callbacks and uploads under way have ended."""
    server.accepting = False
    if server._map.get(server._fileno) is server:
        server.del_channel()
    with contextlib.suppress(OSError):
        server.socket.close()


def withdraw(server) -> None:
    """`server`'s worker stops taking connections: the other workers are to wait on it no more (a no-op for a server
    that shares nothing)."""
    say = getattr(server, "withdraw", None)
    if say is not None:
        say()
