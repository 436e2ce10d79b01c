"""Serve a mock over HTTP: one master process and N worker processes, each running waitress with its own threads.

The master binds the listening socket and forks the workers; every worker builds its own app (its own store
connections, callback dispatcher and renderer) after the fork, so they share state only through the store and the
data directory and whichever worker answers, the answer is the same. The master restarts a worker that dies and,
on SIGTERM, SIGINT or SIGHUP, stops them all.

Why waitress (DECISIONS.md D56): it reads each request, headers and body, in an event loop and hands it to a thread
only once it is whole, so connections that dawdle (a header byte every few seconds, a body that never ends, idle
keep-alive) cost a socket, never a thread; gunicorn's gthread worker gave each one a thread, and 8 such sockets
stopped the default mock. Its own refusals (an oversized request line or headers: 431; a body past the cap: 413)
answer in the format of the routes the request names (`unread`), else in plain text, not HTML.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import resource
import select
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any, Callable

import waitress
from waitress import receiver as _waitress_receiver
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser, ParsingError, TransferEncodingNotImplemented
from waitress.rfc7230 import CHUNK_EXT_RE, HEADER_FIELD_RE
from waitress.task import ErrorTask, ThreadedTaskDispatcher, WSGITask
from waitress.utilities import BadRequest, RequestEntityTooLarge, RequestHeaderFieldsTooLarge

from ivh_mock.spec.deadline import arrival_due

from ..errors import body_past
from . import balance, collector, dispatch, unread
from .streams import say

BACKLOG = 1024  # connections the kernel queues before a worker accepts them
CONNECTIONS = 1000  # open connections a worker keeps at once (each costs a socket and a buffer, not a thread)
HEADER_BYTES = unread.HEADER_BYTES
BUFFERED_BYTES = 65_536  # a body past this waits in a temporary file, not in memory
IDLE_SECONDS = 30  # a connection that sends nothing for this long (idle keep-alive included) is closed
UNSENT_BYTES = 1_048_576  # answers a connection has not taken past this wait for it: the next request, unthreaded
GRACE_SECONDS = 10  # the least time stopping workers get to end what is under way (Server's grace_seconds: more)
MASTER_CHECK_SECONDS = 0.5  # how often a worker looks whether its master is still there
WAIT_SAID_SECONDS = 1.0  # a stop that waits longer for its workers says what it waits for
LINGER_SECONDS = 2  # how long a refused request's rest is read and dropped after its answer, before the close
LINGER_BYTES = 4 * 1_048_576  # and how much of it at most
# A chunked body's framing (its size lines, their extensions, its trailer) beyond its data: at most this, and
# FRAMING_PER_BYTE bytes per byte of data, so that chunks of a byte each still go (5 bytes of framing apiece); a size
# line at most CHUNK_LINE_BYTES (waitress bounded neither, and reread what it held of a line on each read: a 16 MB
# extension cost 15 s of the worker's processor)
FRAMING_BYTES = 65_536
FRAMING_PER_BYTE = 8
CHUNK_LINE_BYTES = 4096
# How long a worker leaves its listening socket alone when it has no file descriptor left for a new connection: the
# connection stays queued, and the worker had polled the socket again at once, at 100% of a processor, serving nothing
FULL_REST_SECONDS = 0.1


# What stops the master besides SIGTERM: Ctrl-C, a terminal's hang-up (which had killed the master alone, its workers
# left to serve on until they saw it gone) and its quit (Ctrl-\, which had dumped the master's core). The workers
# ignore them: the master stops them.
_STOP_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
STOP_SIGNALS = (signal.SIGTERM, *_STOP_SIGNALS)  # every signal that stops the master (and its start, cli.py)
# Signals other servers give a meaning (gunicorn's reopen of its logs, its new binary) that the mock has no use for:
# the master says so and serves on, where each had ended it by the signal, its workers stopping on their own.
_IGNORED_SIGNALS = (signal.SIGUSR1, signal.SIGUSR2)


class Server:
    """Serve the WSGI app `load()` builds (called once in each worker, after the fork) on `bind` ("host:port",
    "[v6]:port"; port 0 picks a free one); `ready(port)` runs in the master once it listens. `max_body_bytes` is
    the largest request body a worker reads (the app's own, smaller limits answer in its own format), and
    `largest_body(path)` the largest the route at a path takes: no more than a byte past it is kept (D76). With
    `hold_queue`, a running request holds the worker's queue for its thread (D68); without, waitress wakes a thread
    for each request. `on_stop(app)` runs in each worker once it stops serving; a stop gives the workers
    `grace_seconds` (at least GRACE_SECONDS) to end what is under way before they are killed."""

    def __init__(self, load: Callable[[], Any], bind: str, *, workers: int = 1, threads: int = 8,
                 ready: Callable[[int], None] | None = None, max_body_bytes: int = 128 * 1_048_576,
                 hold_queue: bool = True, largest_body: Callable[[str], int] | None = None,
                 on_stop: Callable[[Any], None] | None = None, grace_seconds: float = GRACE_SECONDS,
                 lost_with_a_worker: str | None = None):
        host, _, port = bind.rpartition(":")
        self.host, self.port = host.strip("[]"), int(port)
        self._load, self._workers, self._threads, self._ready = load, workers, threads, ready
        self._max_body_bytes, self._hold_queue, self._largest_body = max_body_bytes, hold_queue, largest_body
        self._on_stop, self._grace_seconds = on_stop, max(GRACE_SECONDS, grace_seconds)
        self._wakeup: tuple[int, ...] = ()  # the pipe signals wake the master's wait through (run)
        self._lost = lost_with_a_worker  # what a worker that dies takes with it, said as it is replaced

    def run(self) -> int:
        """Serve until SIGTERM, SIGINT, SIGHUP or SIGQUIT; return the exit status (0 after a clean stop). Once the
        workers have ended, those signals are ignored: what is left is the process's own cleanup."""
        listener = socket.socket(socket.AF_INET6 if ":" in self.host else socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((self.host, self.port))
        listener.listen(BACKLOG)
        listener.set_inheritable(True)
        raise_open_files_limit()
        workers: dict[int, tuple[float, int]] = {}  # pid -> when it started, and its slot in `shares`
        shares = balance.Shares(self._workers) if self._workers > 1 else None
        stopping: list[int] = []  # SIGTERM, SIGINT, SIGHUP or SIGQUIT came
        hurry: list[int] = []  # one came again during the stop: what is under way is not waited for
        ignored: list[int] = []  # SIGUSR1 or SIGUSR2 came, not yet said

        def asked(signum: int, frame: Any) -> None:
            # never raises: an exception a handler raises in a finalizer or a collector's callback is ignored (Python
            # prints it and goes on), and the stop was lost; the wait below sees the list
            (hurry if stopping else stopping).append(signum)

        # every signal writes its number to this pipe as it arrives, whatever code its handler then runs in: the wait
        # for the next signal reads the pipe, and so never sleeps through one
        self._wakeup = os.pipe()
        os.set_blocking(self._wakeup[1], False)
        previous = {number: signal.getsignal(number)
                    for number in (*STOP_SIGNALS, *_IGNORED_SIGNALS, signal.SIGCHLD)}
        previous_wakeup = signal.set_wakeup_fd(self._wakeup[1])
        for number in STOP_SIGNALS:
            # a hang-up ignored from the start stays ignored: that is what `nohup ivh-mock serve &` asks for (a
            # closed terminal had stopped a server started so)
            if not (number == signal.SIGHUP and previous[number] is signal.SIG_IGN):
                signal.signal(number, asked)
        for number in _IGNORED_SIGNALS:
            signal.signal(number, lambda signum, frame: ignored.append(signum))
        signal.signal(signal.SIGCHLD, _noticed)  # a worker's death writes to the pipe too (no handler: nothing does)
        try:
            for slot in range(self._workers):
                self._spawn(listener, workers, shares, slot)
            if self._ready:
                self._ready(listener.getsockname()[1])
            while not stopping:
                self._replace_dead(listener, workers, shares)
                while ignored:
                    say(f"ivh-mock: {signal.Signals(ignored.pop(0)).name} ignored; SIGTERM, SIGINT (Ctrl-C), SIGHUP "
                        f"or SIGQUIT stop the server")
                os.read(self._wakeup[0], 512)  # until the next signal: a stop, a worker's death, one ignored
        finally:
            # the master's copy of the socket goes first: with the workers' closed as they begin to stop, the port is
            # free at once (a restart had waited out the whole grace) and a new connection is refused, not left in
            # the backlog to be reset when the last copy closed
            listener.close()
            _stop_all(workers, self._grace_seconds, hurry, woken=self._wakeup[0])
            signal.set_wakeup_fd(previous_wakeup)
            for number, handler in previous.items():
                # a stop signal that comes now has nothing left to stop: given back its default, one sent a moment
                # after the first (Ctrl-C, then SIGTERM to the group) had killed the master as it removed its scratch
                # folder, the folder left behind and the exit status SIGTERM's
                signal.signal(number, signal.SIG_IGN if number in STOP_SIGNALS else handler)
            for end in self._wakeup:
                os.close(end)
        return 0

    def _replace_dead(self, listener: socket.socket, workers: dict[int, tuple[float, int]],
                      shares: balance.Shares | None) -> None:
        """Start a worker in place of each that died, not in a tight loop should it die at once."""
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:  # none left at all
                return
            if pid == 0:
                return
            dead = workers.pop(pid, None)
            if dead is None:
                continue
            # said, with how it ended: one the system killed for its memory had been replaced unseen
            say(f"ivh-mock: worker {pid} {_ended(status)}; starting another"
                + (f": {self._lost}" if self._lost else ""))
            started, slot = dead
            if shares is not None:
                shares.clear(slot)
            if time.monotonic() - started < 1:
                time.sleep(1)
            self._spawn(listener, workers, shares, slot)

    def _spawn(self, listener: socket.socket, workers: dict[int, tuple[float, int]],
               shares: balance.Shares | None, slot: int) -> None:
        """Fork a worker, the one in `slot` of `shares`, and note it in `workers`. The signals that stop wait meanwhile:
        in the child, one that came before its own handlers would run the master's."""
        master = os.getpid()  # not the child's getppid(): should the master die first, that is already init's pid
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))
        try:
            pid = os.fork()
            if pid:
                workers[pid] = time.monotonic(), slot
                return
        finally:
            if os.getpid() == master:  # a pending stop is noted here, once the worker is
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        status = 1
        # SIGTERM came: the worker stops as soon as its server is built. A start is not cut short midway: an exception
        # raised wherever it happened to be was ignored in a finalizer or a collector's callback (the stop was lost),
        # and in a thread's start or an object's construction left a traceback
        asked: list[int] = []
        try:
            signal.set_wakeup_fd(-1)  # the master's pipe and its SIGCHLD are its own
            for end in self._wakeup:
                os.close(end)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            for number in (*_STOP_SIGNALS, *_IGNORED_SIGNALS):  # Ctrl-C or a terminal's hang-up reaches the master
                signal.signal(number, signal.SIG_IGN)  # too, which stops the workers (a whole group's SIGHUP had
                # killed them mid-request)
            signal.signal(signal.SIGTERM, lambda signum, frame: asked.append(signum))
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            threading.Thread(target=_stop_with_master, args=(master,), name="ivh-master-watch",
                             daemon=True).start()
            self._serve(listener, shares, slot, asked)
            status = 0
        except SystemExit:  # the app's own code ended the process (no handler raises it)
            status = 0
        except BaseException:  # a worker must leave by os._exit, never return into the master's code
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):  # None when the server was started with it closed
                with contextlib.suppress(Exception):  # (AttributeError had taken the worker into the master's code)
                    stream.flush()
            os._exit(status)

    def _serve(self, listener: socket.socket, shares: balance.Shares | None, slot: int, asked: list[int]) -> None:
        logging.getLogger("waitress").setLevel(logging.ERROR)  # not a warning per queued request under load
        collector.bound_pauses()  # a worker is a process of its own: its collector never walks all its tasks (D80)
        app = self._load()
        server = waitress_server(app, listener, threads=self._threads, max_body_bytes=self._max_body_bytes,
                                 hold_queue=self._hold_queue, largest_body=self._largest_body)
        if shares is not None:  # a connection goes to the worker holding fewest (D79)
            balance.balanced(server, shares, slot)
        try:
            if self._hold_queue:  # until SIGTERM (now, if it came during the start); then the requests under way end
                dispatch.serve(server, stop_asked=lambda: bool(asked))
            else:
                _run(server, asked)
        finally:  # the app's background work: what it sends under way ends and is recorded (the master's grace
            if self._on_stop is not None:  # bounds it: past it, the worker is killed, and a lapsed claim resent)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM (its master gone) waits too
                self._on_stop(app)


def waitress_server(app: Any, listener: socket.socket, *, threads: int, max_body_bytes: int,
                    hold_queue: bool = True, largest_body: Callable[[str], int] | None = None) -> Any:
    """waitress serving `app` on `listener` as a worker does; run it with `dispatch.serve` when `hold_queue`
    (its requests then run in the loop's thread or go to `threads` threads, as D68 and D71 say), else with its own
    run()."""
    dispatcher = dispatch.Dispatcher() if hold_queue else ThreadedTaskDispatcher()
    dispatcher.set_thread_count(threads)
    server = waitress.create_server(
        app, _dispatcher=dispatcher, sockets=[listener], threads=threads, backlog=BACKLOG,
        connection_limit=CONNECTIONS, max_request_header_size=HEADER_BYTES, max_request_body_size=max_body_bytes,
        inbuf_overflow=BUFFERED_BYTES, channel_timeout=IDLE_SECONDS, cleanup_interval=min(10, IDLE_SECONDS),
        asyncore_use_poll=True, clear_untrusted_proxy_headers=True, outbuf_high_watermark=UNSENT_BYTES)
    server.channel_class = _Channel
    server.largest_body = largest_body  # what each request's parser keeps of a body (_Parser)
    keep_up = server.maintenance

    def maintenance(now: float) -> None:  # waitress closes idle connections only when no request waits on them
        keep_up(now)
        for channel in list(server.active_channels.values()):
            if getattr(channel, "parked", False) and channel.last_activity < now - server.adj.channel_timeout:
                channel.will_close = True
            due = None if channel.requests else _due(channel.request)  # nothing of it runs: the client dawdles
            if due is not None and now > due:
                channel.will_close = True
            elif due is not None:  # the upkeep that closes it comes then, not at its usual 10 s (a close had come 20
                server.next_channel_cleanup = min(server.next_channel_cleanup, due)  # to 30 s after the first byte)
            linger_until = getattr(channel, "linger_until", 0.0)
            if linger_until and now > linger_until:  # a client that sends nothing
                HTTPChannel.handle_close(channel)
            elif linger_until:  # the next upkeep comes as it ends (waitress set it 10 s on, just before)
                server.next_channel_cleanup = min(server.next_channel_cleanup, linger_until)

    server.maintenance = maintenance
    take, readable = server.accept, server.readable

    def accept() -> tuple[socket.socket, Any] | None:
        try:
            return take()
        except OSError as error:
            if error.errno not in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                raise
            server.full_until = time.monotonic() + FULL_REST_SECONDS  # looked at again within the loop's timeout
            return None

    server.full_until = 0.0  # apart from balance's rests: a worker out of descriptors is not accepting (D79)
    server.accept = accept
    server.readable = lambda: readable() and time.monotonic() >= server.full_until
    return server


def _due(request: Any) -> float | None:
    """When a request still arriving is overdue (`arrival_due`: 20 s, and a second per 500 bytes, after its start;
    None: it is not arriving, or holds a blank line alone, which the idle timeout judges unless blank lines keep
    coming)."""
    if request is None or request.completed or not isinstance(request, _Parser):
        return None
    if request.body_rcv is None and not request.header_plus.strip() and not request.counts_blanks:
        return None  # a client's CRLF after a body (RFC 9112 2.2): the next request may come as late as keep-alive lets
    arrived = request.header_bytes_received + request.body_bytes_received
    return arrival_due(request.started, arrived)


def _run(server: Any, asked: list[int]) -> None:
    """waitress's own loop (its run()), polling no longer than a rest from the listening socket (balance), until
    SIGTERM (at once if `asked` holds one already); then the requests under way end."""
    def stop(signum: int, frame: Any) -> None:  # never raises: one raised in a finalizer or a collector's callback
        asked.append(signum)  # is ignored, and the stop was lost
        server.accepting = False
        balance.withdraw(server)  # other workers wait on this one no more while it finishes its requests
        server.pull_trigger()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        while server._map and not asked:
            server.asyncore.poll2(balance.within(server, server.adj.asyncore_loop_timeout), server._map)
    finally:
        signal.signal(signal.SIGTERM, previous)
    balance.withdraw(server)
    balance.stop_listening(server)
    server.task_dispatcher.shutdown()


class _Task(WSGITask):
    """waitress's task, but the head goes out with the body's first write (all of an API or control answer's body) in
    one send: waitress sent the head, then the body, each with a system call of its own. And a 204 or 304, which ends
    with its head, keeps the connection: waitress closed it after any answer with no Content-Length, so each
    revalidation of a video (If-None-Match) or OPTIONS cost the client a new connection."""

    _bodiless_head = False  # building the head of an answer that has no body (RFC 9112 6.3: it needs no length)

    def build_response_header(self) -> bytes:
        self._bodiless_head = not self.has_body and self.version == "1.1"
        try:
            if self.version == "1.1" and self.request.connection_close:  # `close` among its tokens (_Parser)
                self.set_close_on_finish()
            return super().build_response_header()
        finally:
            self._bodiless_head = False

    def set_close_on_finish(self) -> None:
        if self._bodiless_head and not self.request.connection_close:
            return
        super().set_close_on_finish()

    def write(self, data: bytes) -> None:
        length = self.content_length
        if (self.wrote_header or not data or not self.complete or not self.has_body or self.chunked_response
                or length is None or len(data) > length):
            return super().write(data)  # waitress's own way, which also cuts a body longer than its length
        head = self.build_response_header()
        self.wrote_header = True
        self.content_bytes_written += len(data)
        self.channel.write_soon(head + data)


class _RouteErrorTask(ErrorTask):
    """waitress's answer to a request it could not read (duplicate or bad Content-Length, a bad chunk, a body past
    the largest any route takes, a bare LF, a head past HEADER_BYTES), in the format of the routes the request line
    named (`unread.answer`); waitress's plain text for anything else (to a HEAD, its head alone: waitress sent the
    text too). The connection is closed after it, as waitress closes it."""

    def execute(self) -> None:
        self.channel.refused = True  # what the client still sends is dropped before the close (_Channel.handle_close)
        error = self.request.error
        refusal = unread.answer(self.request.path or "", error.code, error.reason, error.body)
        if refusal is None:
            status, kind = error.code, "text/plain; charset=utf-8"  # waitress's own answer: a HEAD's with no body
            data = error.to_response(self.channel.server.adj.ident)[2]
        else:
            status, kind, data = refusal
        self.status = f"{status} {'OK' if status == 200 else error.reason}"
        self.response_headers.append(("Content-Type", kind))
        self.set_close_on_finish()
        self.content_length = len(data)
        if getattr(self.request, "command", None) != "HEAD":  # its head alone (waitress leaves that to the app)
            self.write(data)


class _Parser(HTTPRequestParser):
    """waitress's request parser, but one that refuses a head whose lines end in a bare LF as soon as one arrives, or
    that frames its body by both Content-Length and Transfer-Encoding (or by Transfer-Encoding in HTTP/1.0), and
    keeps of a body no more than one byte past the largest its route takes (`largest_body(path)`, D76).

    waitress looks for CRLF CRLF to end a head: one sent with bare LFs (a hand-written client's) waited IDLE_SECONDS
    for it and was closed unanswered. And it kept every request's body up to the largest any route takes (the asset
    host's uploads, 64 MiB) before the app could refuse it: ten connections sending 60 MB each held 600 MB of
    temporary files. The route refuses such a body as it refused it whole: by its declared length, or, chunked, by
    the length kept, which is past its limit.

    It also refuses what waitress let through or waited on: a request line with no HTTP version (400) or a major
    version other than 1 (505; a later 1.x is read as 1.1), and a chunked body whose framing ends a line in a bare LF,
    grows past its bounds or has a trailer line that is no field (`_check_framing`). A request with no body is not
    asked for one by `100 Continue`, and `Connection: close` is heard among other tokens."""

    path = ""  # until a head's request line is read: one refused before that (a bad header line) names none
    _wrong_version = False  # its request line names an HTTP version whose major number is not 1 (answered 505)

    def __init__(self, adj: Any, largest_body: Callable[[str], int] | None = None, channel: Any = None):
        super().__init__(adj)
        self._largest_body, self._channel = largest_body, channel
        # made as its first bytes come (`_due`), or as the blank lines before them did: each blank line ends a
        # request of its own, which waitress drops, and a CRLF every 25 s had held a connection for ever
        self.counts_blanks = bool(channel is not None and channel.blank_since)  # its blank lines count (`_due`)
        self.started = channel.blank_since if self.counts_blanks else time.time()

    def received(self, data: bytes) -> int:
        if self.body_rcv is None and not self.counts_blanks and not self.header_plus.strip() and data.strip():
            self.started = time.time()  # its first bytes: a blank line before them is a client's CRLF after a body
        # in a head whose end (CRLF CRLF) is not in sight, look at what arrived, and the CR before it (a head that
        # ends is waitress's to read, and it refuses a bare LF in it)
        if self.body_rcv is None and not self.completed:
            seen = self.header_plus[-3:]
            window = seen + data
            bare = _BARE_LF.search(window, len(seen)) if b"\r\n\r\n" not in window else None
            if bare is not None and (self.header_plus + window[len(seen):bare.start()]).strip():
                self._refuse((self.header_plus + data).lstrip())  # blank lines before a request are ignored
                return len(data)
        before, refused = self.header_plus, self.error
        consumed = super().received(data)
        if self.chunked and self.error is None:  # (a chunked body under way, or just ended)
            kept, announced = self.body_rcv.buf, self.body_rcv.chunk_remainder
            if not self.completed and isinstance(kept, _Kept) and kept.seen + announced > kept.limit:
                # a chunk announced past the route's limit is refused when its size line comes, as a Content-Length
                # past it is: the client had been left to send it all (or to wait for an answer until the idle timeout)
                self.error, self.completed = self._too_large(), True
            else:
                self._check_framing()
        if self.completed and self._channel is not None:
            self._channel.came(self)
        if self._wrong_version and type(self.error) is BadRequest:
            self.error = _HTTPVersionNotSupported(self.error.body)
        if refused is None and isinstance(self.error, RequestHeaderFieldsTooLarge):
            # waitress refuses a head past HEADER_BYTES as if it were `GET /`: name the route it was for from what came
            self.path, self.version = "", "1.1"  # the server's own, where the line was cut before its version
            self._name_route((before + data).lstrip())
            self.error = RequestHeaderFieldsTooLarge(f"the request line and headers are larger than "
                                                     f"{self.adj.max_request_header_size} bytes")
        if isinstance(self.error, RequestEntityTooLarge) and self._largest_body is not None:
            self.error = self._too_large()  # the route's limit, as the app names it: not the largest of any route
        if self.error is not None:  # refused: a client waiting on `Expect: 100-continue` is not asked for its body
            self.expect_continue = False  # (waitress asked for it, then refused it once it had all come)
        return consumed

    def _check_framing(self) -> None:
        """Refuse a chunked body whose size line or trailer ends in a bare LF (waitress waited for a CRLF until the
        connection's idle timeout), whose trailer has a line that is no field, or whose framing has grown past its
        bounds (FRAMING_BYTES, CHUNK_LINE_BYTES)."""
        receiver = self.body_rcv
        line, trailer = receiver.control_line, receiver.trailer
        data = receiver.buf.seen if isinstance(receiver.buf, _Kept) else len(receiver.buf)
        problem = None
        if b"\n" in line or _BARE_LF.search(trailer) or _BARE_CR.search(trailer):
            problem = ("a line of the chunked body (a chunk's size, the trailer) ends in a bare LF or CR; HTTP needs "
                       "CRLF")
        elif len(line) > CHUNK_LINE_BYTES:
            problem = f"a chunk's size line, with its extensions, is longer than {CHUNK_LINE_BYTES} bytes"
        elif self.body_bytes_received - data > FRAMING_BYTES + FRAMING_PER_BYTE * data:
            problem = (f"the chunked body's framing (chunk sizes, extensions, trailer) is larger than "
                       f"{FRAMING_BYTES} bytes and {FRAMING_PER_BYTE} per byte of its data")
        elif receiver.completed and not all(HEADER_FIELD_RE.match(field) for field in trailer.split(b"\r\n") if field):
            problem = "a line of the chunked body's trailer is no field (name: value)"
        if problem is not None:
            self.error, self.completed = BadRequest(problem), True

    def _too_large(self) -> RequestEntityTooLarge:
        return RequestEntityTooLarge(body_past(self._largest_body(self.path)))

    def _name_route(self, head: bytes) -> None:
        """Take the path and the version (in which the refusal's status line answers) from a refused head's request
        line: they say whose format the refusal is answered in (_RouteErrorTask)."""
        line, ended, _ = head.partition(b"\n")
        method, self.path, version = unread.route_of(line, bool(ended))
        if method:  # a HEAD's refusal has no body (_RouteErrorTask)
            self.command = method.upper()
        self.version = version or self.version

    def _refuse(self, head: bytes) -> None:
        line = head.split(b"\n", 1)[0].rstrip(b"\r")
        with contextlib.suppress(ParsingError, TransferEncodingNotImplemented):  # the path is kept (parse_header)
            self.parse_header(line + b"\r\n")  # the request line alone
        self.error = BadRequest("a line of the request's head ends in a bare LF; HTTP needs CRLF (\\r\\n)")
        self.completed = True

    def parse_header(self, header_plus: bytes) -> None:
        line = header_plus.partition(b"\r\n")[0]
        version = _VERSION.search(line)
        if version is not None and version[1] == b"1" and version[2] > b"1":  # HTTP/1.2: read as the 1.1 it extends
            header_plus = line[:version.start()] + b" HTTP/1.1" + header_plus[len(line):]  # (RFC 9110 2.5)
        try:
            super().parse_header(header_plus)
        except (ParsingError, TransferEncodingNotImplemented, ValueError) as error:
            # waitress refuses a head (a header line without a colon, a bare CR) before it reads the path, which says
            # whose format the refusal is answered in (_RouteErrorTask): it is read from the request line here
            if not self.path:
                self._name_route(header_plus)
            if type(error) is ValueError:  # urllib's, on a target it cannot split (`http://[::1/x`): waitress let it
                # through, and the connection was closed unanswered, with the requests before it on it
                raise ParsingError(f"the request target cannot be read as a URL: {error}") from None
            raise
        if version is None:  # waitress served `GET /` (HTTP/0.9's line) as HTTP/1.0
            raise ParsingError("the request line has no HTTP version: send METHOD TARGET HTTP/1.1")
        if version[1] != b"1":  # waitress answered HTTP/2.0 and HTTP/3.0 as if they were 1.0
            self.version, self._wrong_version = "1.1", True  # the refusal's own version, and its status (505)
            raise ParsingError(f"HTTP/{version[1].decode()}.{version[2].decode()} is not served here: send "
                               f"HTTP/1.1 (or 1.0)")
        if self.body_rcv is None:  # no body to ask for: waitress sent `100 Continue` anyway, then read the next
            self.expect_continue = False  # request's head into this one's, and left this one unanswered
        if "close" in _tokens(self.headers.get("CONNECTION", "")):  # `Connection: TE, close` too (RFC 9112 9.6):
            self.connection_close = True  # waitress closed only on a header that said `close` alone (_Task reads it)
        if self.chunked and "CONTENT_LENGTH" in self.headers:  # waitress went by the chunks, and kept the connection
            raise ParsingError("both Content-Length and Transfer-Encoding frame the body: a proxy before the server "
                               "may have read another request in it (RFC 9112 6.1)")
        if self.proxy_scheme or self.proxy_netloc:  # an absolute-form target: `GET http://host:port/path`
            if self.proxy_scheme.lower() not in ("http", "https"):
                raise ParsingError(f"the request target's scheme {self.proxy_scheme[:20]!r} is not http or https")
            # its authority is the request's host, whatever Host says (RFC 9112 3.2.2): the control API's check of the
            # host (D57) and the URLs a task keeps (D75) had read Host, and waitress left the authority unread
            self.headers["HOST"] = self.proxy_netloc
        named = _TRANSFER_ENCODING.findall(header_plus)
        codings = [coding.strip(b" \t").lower() for value in named for coding in value.split(b",")
                   if coding.strip(b" \t")]
        if named and self.version == "1.1" and codings != [b"chunked"]:
            # waitress read an empty Transfer-Encoding as none (the Content-Length beside it framed the body) and
            # `chunked, chunked` as chunked once; a proxy before the server may read either otherwise
            raise ParsingError("Transfer-Encoding must name chunked, once and last, or be left out (RFC 9112 6.1, "
                               "6.3, 7): the body's framing is faulty")
        if "TRANSFER_ENCODING" in self.headers:  # left by waitress in HTTP/1.0, which it reads by the length alone
            raise ParsingError("Transfer-Encoding is not HTTP/1.0's: the body's framing is faulty (RFC 9112 6.1); "
                               "send a Content-Length")
        if self.body_rcv is not None and self._largest_body is not None:
            limit = self._largest_body(self.path)
            self.body_rcv.buf = _Kept(self.body_rcv.buf, limit)
            if self.expect_continue and self.content_length > limit:  # refused by its length before it is sent
                self.error, self.completed = self._too_large(), True


_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_CR = re.compile(rb"\r(?=[^\n])")  # (one at the very end waits for its LF, in the next read)
# waitress reads a chunk's size and its extensions with patterns ending in `$`, which also matches before a final
# newline: `5\n` passed for 5, a bare LF before the CRLF, but only when the line came in one read (split, it was
# refused, `_check_framing`). The same patterns, ending at the line's very end and bounded as a line is.
_waitress_receiver.ONLY_HEXDIG_RE = re.compile(rb"[0-9a-fA-F]{1,%d}\Z" % CHUNK_LINE_BYTES)
_waitress_receiver.CHUNK_EXT_RE = re.compile(rb"(?=.{0,%d}\Z)" % CHUNK_LINE_BYTES
                                             + CHUNK_EXT_RE.pattern.removeprefix(b"^").removesuffix(b"$") + rb"\Z")
_VERSION = re.compile(rb" HTTP/([0-9])\.([0-9])$")
_TRANSFER_ENCODING = re.compile(rb"\r\ntransfer-encoding[ \t]*:([^\r\n]*)", re.IGNORECASE)


def _tokens(value: str) -> set[str]:
    """The tokens of a comma-separated header's value, in lower case (a header given twice is one, joined by commas)."""
    return {token.strip(" \t").lower() for token in value.split(",")}


class _HTTPVersionNotSupported(BadRequest):
    code, reason = 505, "HTTP Version Not Supported"


class _Kept:
    """A request body's buffer that keeps no more than a byte past `limit` of what is appended to it, and counts
    all of it (`seen`)."""

    def __init__(self, buf: Any, limit: int):
        self.buf, self.limit, self.room, self.seen = buf, limit, limit + 1, 0

    def append(self, data: bytes) -> None:
        self.seen += len(data)
        if self.room > 0:
            kept = data[:self.room]
            self.buf.append(kept)
            self.room -= len(kept)

    def __len__(self) -> int:
        return len(self.buf)

    def getfile(self) -> Any:
        return self.buf.getfile()

    def close(self) -> None:
        self.buf.close()


class _Channel(HTTPChannel):
    """waitress's connection, but one whose client has not taken its earlier answers (more than UNSENT_BYTES of
    them) holds no thread for its next request: the request waits, parked, until the event loop has sent enough,
    and a connection parked with nothing sent for IDLE_SECONDS is closed. waitress held a thread in each such
    connection until its client read, so a few clients that pipeline requests and never read stopped a worker.
    Within one answer, a client slower than the app still holds the app's thread (waitress's back-pressure)."""

    parked = False
    draining = False  # its worker is stopping: it reads no new request (dispatch._drain)
    _writing = False
    refused = False  # a request of it was refused unread: its rest may still be on its way (_RouteErrorTask)
    linger_until = 0.0  # when set, the answer is out and what comes is dropped until then (time.time())
    _lingered = 0  # bytes dropped so far
    task_class = _Task
    error_task_class = _RouteErrorTask

    _blanks, _first_blank = 0, 0.0  # the blank lines read before the request now arriving, and when the first came

    @property
    def blank_since(self) -> float:
        """From when the request now arriving counts its time: its blank lines' first, once they keep coming (0: its
        own first byte). One is a client's CRLF after a body (RFC 9112 2.2); a CRLF every 25 s had held a connection
        for ever."""
        return self._first_blank if self._blanks > 1 else 0.0

    def came(self, request: _Parser) -> None:
        """Note a request read whole (a blank line is one, which waitress drops)."""
        if request.empty:
            self._blanks, self._first_blank = self._blanks + 1, self._first_blank or request.started
        else:
            self._blanks, self._first_blank = 0, 0.0

    def parser_class(self, adj: Any) -> _Parser:  # waitress makes each request's parser by calling this
        return _Parser(adj, self.server.largest_body, self)

    def service(self) -> None:
        if self.connected and self.total_outbufs_len > self.adj.outbuf_high_watermark:
            self.parked = True  # handle_write, in the event loop, hands it back (writable() says to call it)
            self.server.pull_trigger()
            return
        super().service()

    def write_soon(self, data: bytes) -> int:
        self._writing = True
        try:
            return super().write_soon(data)
        finally:
            self._writing = False

    def _flush_outbufs_below_high_watermark(self) -> None:
        if self._writing:  # within an answer: wait for the client, as waitress does
            super()._flush_outbufs_below_high_watermark()
        # between pipelined requests, waitress waited here too: the next request parks instead (service)

    def writable(self) -> bool:
        return not self.linger_until and (self.parked or super().writable())

    def readable(self) -> bool:
        return bool(self.linger_until) or (not self.draining and super().readable())

    def handle_close(self) -> None:
        """Close, but after refusing a request it could not read, first end the answer (shutdown for writing) and read
        and drop what the client still sends, until it closes, for LINGER_SECONDS or LINGER_BYTES at most: closed with
        the rest unread (a head past HEADER_BYTES, a body after a bad framing), the kernel answered with a reset, which
        reached the client before it had read the refusal, and it saw only `connection reset`."""
        if self.refused and self.connected and not self.linger_until:
            try:
                self.socket.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            else:
                self.linger_until = time.time() + LINGER_SECONDS
                # the upkeep that closes it should its client send nothing more comes then, not at its usual 10 s
                self.server.next_channel_cleanup = min(self.server.next_channel_cleanup, self.linger_until)
                return
        super().handle_close()

    def handle_read(self) -> None:
        if not self.linger_until:
            return super().handle_read()
        try:
            data = self.recv(65536)  # at the client's end (or a reset), recv closes the channel itself
        except BlockingIOError:  # nothing to read after all
            return
        except OSError:
            data = b""
        self._lingered += len(data)
        if self.connected and (not data or self._lingered > LINGER_BYTES or time.time() > self.linger_until):
            super().handle_close()

    def handle_write(self) -> None:
        super().handle_write()
        if self.parked and self.connected and self.total_outbufs_len <= self.adj.outbuf_high_watermark:
            self.parked = False
            self.server.add_task(self)


def _ended(status: int) -> str:
    """How a process ended, from its wait status: `exited with status 1`, `was killed by SIGKILL`."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = f"signal {number}"
        return f"was killed by {name}" + (" (out of memory?)" if number == signal.SIGKILL else "")
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _noticed(signum: int, frame: Any) -> None:
    """SIGCHLD's handler in the master: it does nothing but be there, so that the signal reaches the wakeup pipe."""


def _stop_with_master(master: int) -> None:
    """Stop this worker as SIGTERM would once its master is gone (killed with SIGKILL, it cannot stop its workers):
    an orphaned worker would go on serving the port, and holding the store, with nobody to stop it."""
    while os.getppid() == master:
        time.sleep(MASTER_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def _stop_all(workers: dict[int, tuple[float, int]], grace_seconds: float = GRACE_SECONDS,
              hurry: list[int] | None = None, woken: int | None = None) -> None:
    """SIGTERM every worker, give them `grace_seconds` to finish, then SIGKILL what is left; at once as soon as
    `hurry` holds something (a second SIGTERM or Ctrl-C: the master had died of it at once, and its workers went on
    alone, writing to the terminal after its prompt came back). `woken`, the read end of the signals' wakeup pipe,
    ends each wait as soon as a signal comes (a worker's end, SIGCHLD): a stop had slept through a worker that ended
    in 9 ms, then once more with none left, 100 ms in all."""
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    began = time.monotonic()
    deadline, said = began + grace_seconds, False
    while workers and time.monotonic() < deadline and not hurry:
        for pid in list(workers):
            with contextlib.suppress(ChildProcessError):
                done, status = os.waitpid(pid, os.WNOHANG)
                if done == 0:
                    continue
                if status != 0:  # one whose request outlasted its own bound (SIGALRM) had been cut short unsaid
                    cut = os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGALRM
                    say(f"ivh-mock: stopping: worker {pid} {_ended(status)}" + (
                        f": a request it still ran {dispatch.STOP_SECONDS} s into the stop was cut short" if cut
                        else ""))
            workers.pop(pid)
        if workers and not said and time.monotonic() - began > WAIT_SAID_SECONDS:  # a stop that waits says for what
            say(f"ivh-mock: stopping: what is under way ends first: a request within {dispatch.STOP_SECONDS} s, a "
                f"callback or an upload within {grace_seconds:.0f} s; SIGTERM or Ctrl-C again stops at once")
            said = True
        if not workers:
            break
        if woken is None:
            time.sleep(0.05)
        elif select.select([woken], [], [], 0.05)[0]:
            os.read(woken, 512)
    killed = len(workers)
    for pid in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
    if killed and hurry:
        say(f"ivh-mock: stopped at once, {killed} worker(s) killed: anything they still had under way was cut short "
            "(a callback or an upload among it is sent again after the next start, once its claim lapses)")


def raise_open_files_limit() -> None:
    """Let each worker hold CONNECTIONS sockets besides its files (the soft limit is often 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = CONNECTIONS + 1024 if hard == resource.RLIM_INFINITY else min(hard, CONNECTIONS + 1024)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
