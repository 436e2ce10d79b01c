"""The proxy's HTTP server: a threaded http.server whose handler writes the status line and headers itself.

Why not a WSGI server (DECISIONS.md D61): gunicorn and werkzeug add a Server and a Date header of their own to every
answer, waitress a Via or a Date, while the proxy must return the upstream's headers unchanged. One process with a
thread per connection is enough: the time of an exchange is the upstream's; the recorder and the live lifecycle
warnings live in that process. Connections are kept alive (HTTP/1.1).
"""

from __future__ import annotations

import contextlib
import errno
import io
import re
import socket
import sys
import threading
import time
from email.errors import MultipartInvariantViolationDefect, StartBoundaryNotFoundDefect
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator
from urllib.parse import urlsplit

from ivh_mock.spec.deadline import arrival_due

from .forward import Proxy, header_tokens, own_error

# What the email package's parser says of a multipart Content-Type's headers read alone, without their body: no
# defect of the head (urllib3's own check of headers passes them over likewise)
_BODY_DEFECTS = (StartBoundaryNotFoundDefect, MultipartInvariantViolationDefect)

MAX_REQUEST_BODY = 32 * 1_048_576  # a request body larger than this is refused (an API request is a few kB)
# The request bodies held at once, all connections together, each until its exchange ends: a body whose next piece
# would take them past it is answered 503 (each connection could hold 32 MiB, 1000 of them). A body's first piece is
# not counted: an API request (a few kB) is never refused for what other, larger bodies hold.
MAX_BODIES_HELD = 8 * MAX_REQUEST_BODY
READ_PIECE = 65_536  # a body is held and read this much at a time
LINGER_SECONDS = 1.0  # after a refusal, how long what the app still sends is read and dropped before the close
IDLE_SECONDS = 30  # a connection that sends nothing for this long (idle keep-alive included) is closed, as the mock's
MAX_CONNECTIONS = 1000  # connections served at once (a thread each); one past it is answered 503 and closed
ACCEPT_BACKOFF_SECONDS = 0.05  # how long the server waits to accept again when the process has no descriptor free


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ProxyServer

    def setup(self) -> None:
        self.timeout = self.server.idle_seconds  # StreamRequestHandler puts it on the socket
        super().setup()
        self.rfile.close()  # makefile's, unread: open, it would hold the socket open past its close
        self.arrival = _Arrival(self.connection, self.server.idle_seconds)
        self.rfile = io.BufferedReader(self.arrival)  # (reads the socket as makefile's did, each read timed)
        # the head and the body go out in separate writes: without this, Nagle's algorithm holds the body back
        # until the app's delayed ACK (40 ms)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        if not self.server.note(self, waiting=True):  # stopping: no new request is read on a kept-alive connection
            self.close_connection = True
            return
        super().handle_one_request()

    def finish(self) -> None:
        self.server.forget(self)
        super().finish()
        if self.linger:
            self._linger()

    linger = False  # whether the connection closes on a refusal: what the app still sends is read first (`_linger`)

    def _linger(self) -> None:
        """Read and drop what the app still sends, for LINGER_SECONDS at most, after a refusal and before the close:
        closed with bytes of it unread, the connection was reset, and an app still sending its body got a broken
        pipe or a reset instead of the refusal (http.client, for a body of a few MiB)."""
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)  # the answer ends here: the app reads it whole
            until = time.monotonic() + LINGER_SECONDS
            while (left := until - time.monotonic()) > 0:
                self.connection.settimeout(left)
                if not self.connection.recv(65_536):
                    return

    def parse_request(self) -> bool:
        """http.server's own parse, given what it would misread made safe first. It splits the request line as
        Latin-1 text, where \\x85 and \\xa0 are spaces, so the target's bytes past printable ASCII are
        percent-encoded before it sees them (and a lone '%', which urllib3 would take as the sign to encode every
        escape again, becomes %25), and the target is kept as sent, where it folds a leading '//'. Its header parser
        takes a bare CR for a line break (a header the app never sent): the header block is read here first, and a
        line holding a control character is refused before anything else (D61)."""
        self._target = self._fault = None
        self.server.note(self, waiting=False)  # a request under way: the stop waits for it
        if self.raw_requestline in (b"\r\n", b"\n"):  # RFC 9112 2.2: an empty line before a request is skipped
            self.raw_requestline = self.rfile.readline(65537)
        words = self.raw_requestline.rstrip(b"\r\n").split(b" ")
        if len(words) == 2 and len(self.raw_requestline) <= 65536:  # http.server would wait for headers it never gets
            self.command, self.request_version = None, self.protocol_version
            self._refuse(400, "an HTTP/0.9 request is not forwarded: send HTTP/1.1")
            return False
        if len(words) != 3 or len(self.raw_requestline) > 65536:
            return super().parse_request()  # malformed, HTTP/0.9 or too long: http.server answers it
        words[1] = _LONE_PERCENT.sub(b"%25", _PAST_ASCII.sub(lambda past: b"%%%02X" % past.group()[0], words[1]))
        real, block = self.rfile, []
        if not self.raw_requestline.endswith(b"\r\n"):  # a bare LF: refused, as the mock refuses it (D76)
            self._fault = (400, _BARE_LF)
        self.raw_requestline, self._target = b" ".join(words) + b"\r\n", words[1].decode("ascii")
        while len(block) <= 100:  # http.client's bound on header lines, past which it answers 431 itself
            line = real.readline(65537)
            block.append(line)
            if line.endswith(b"\n") and not line.endswith(b"\r\n") and self._fault is None:
                self._fault = (400, _BARE_LF)
            if line in (b"\r\n", b"\n", b"") or len(line) > 65536:
                break
            if _CONTROL.search(line.rstrip(b"\n").removesuffix(b"\r")) and self._fault is None:
                self._fault = (400, f"header line {_shown(line.split(b':')[0].decode('latin-1'))} holds a control "
                                    f"character (a bare CR, a NUL, ...)")
        if block[-1] == b"" and self._fault is None:  # http.server reads the end of input as the blank line
            self._fault = (400, "the request's head ended before its blank line (the connection was closed while it "
                                "was sent): nothing was forwarded")
        self.rfile = io.BytesIO(b"".join(block))
        try:
            parsed = super().parse_request()
        finally:
            self.rfile = real
        if not parsed:  # http.server answered (431, 400, ...), or the refusal of an Expect: 100-continue did
            return False
        fault = self._head_fault()
        if fault is not None:
            self._refuse(*fault)
            return False
        if "close" in header_tokens(self.headers.get_all("Connection") or ()):  # http.server wants just "close"
            self.close_connection = True
        if self.server.stopping:  # read as the stop began: not sent on, so nothing is billed for it
            self._refuse(503, "the proxy is stopping: nothing was forwarded; send the request again once it is back")
            return False
        return True

    def _head_fault(self) -> tuple[int, str] | None:
        """Why the request's line and headers are refused (status, message) before its body is read, if they are."""
        if self._fault is not None:
            return self._fault
        # http.client stops reading headers at a line it cannot parse and keeps the rest as a body, and keeps a folded
        # line's break in its value: either would send upstream something other than what the app sent
        if any(not isinstance(defect, _BODY_DEFECTS) for defect in self.headers.defects) or self.headers.get_payload():
            return 400, "a header line is not 'name: value' (no space before the colon)"
        if any("\r" in value or "\n" in value for value in self.headers.values()):
            return 400, "a header line is folded onto the next (obs-fold)"
        hosts = self.headers.get_all("Host") or ()
        if len(hosts) > 1 or (not hosts and self.request_version == "HTTP/1.1"):  # RFC 9112 3.2
            return 400, "a request names its Host once, and an HTTP/1.1 request must name it"
        target = self._target
        if not target.startswith("/"):
            parts = urlsplit(target)
            if not parts.scheme or not parts.netloc:
                return 400, f"request target {_shown(target)} is neither a path nor an absolute URL"
        framing = self._framing()
        return framing if isinstance(framing[0], int) else None

    def _framing(self) -> tuple[Any, Any]:
        """How the body is framed: ("chunked", None) or ("length", n), or the refusal (status, message)."""
        codings = header_tokens(self.headers.get_all("Transfer-Encoding") or ())
        if codings:  # RFC 9112 6.1 and 6.3: chunked must come last, and a length beside it is not to be trusted
            shown = _shown(", ".join(codings))
            if self.request_version == "HTTP/1.0":
                return 400, "Transfer-Encoding is not HTTP/1.0's: send a Content-Length"
            if self.headers.get_all("Content-Length"):
                return 400, "Content-Length and Transfer-Encoding are both given"
            if codings[-1] != "chunked":
                return 400, f"Transfer-Encoding {shown} does not end in chunked"
            if codings != ["chunked"]:
                return 501, f"Transfer-Encoding {shown} is not supported: only chunked is"
            return "chunked", None
        given = [value.strip(" \t") for value in self.headers.get_all("Content-Length") or ()]
        if len(set(given)) > 1:
            return 400, "Content-Length is given more than once, with different values"
        text = given[0] if given else "0"
        if not text.isascii() or not text.isdigit():
            return 400, f"Content-Length {_shown(text)} is not a number of bytes"
        digits = text.lstrip("0") or "0"  # leading zeros are allowed, and too many digits for int() are a size
        if len(digits) > len(str(MAX_REQUEST_BODY)) or int(digits) > MAX_REQUEST_BODY:
            return 413, "request body larger than 32 MiB"
        return "length", int(digits)

    def handle_expect_100(self) -> bool:
        """Ask for the body only of a request that will be taken: one refused is refused at once."""
        fault = self._head_fault()
        if fault is not None:
            self._refuse(*fault)
            return False
        return super().handle_expect_100()

    def _serve(self) -> None:
        target = self._target
        if target is None:  # a request line http.server took but the proxy did not: HTTP/0.9, or spaces doubled
            return self._refuse(400, "an HTTP/0.9 request is not forwarded: send HTTP/1.1"
                                if self.request_version == "HTTP/0.9" else
                                "the request line is not 'method target version', one space apart")
        if self.request_version != "HTTP/1.1":  # its answer ends where the connection does (no chunks in HTTP/1.0)
            self.close_connection = True
        if not target.startswith("/"):  # absolute form (the app uses the proxy as an HTTP proxy): keep path + query
            parts = urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            body = self._read_body()
            if body is None:
                return
            self.arrival.arrived()  # what follows is the answer's time: the idle timeout bounds each of its writes
            self.server.proxy.handle(self.command, target, list(self.headers.items()), body, _Responder(self))
        finally:
            self.server.let_go(self.held)
            self.held = self.received = 0

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _serve

    def _read_body(self) -> bytes | None:
        """The request's body, or None when the app hung up mid-body (or a chunk is malformed, which the proxy
        answers): nothing then goes upstream. Its framing was checked with the headers (`_framing`)."""
        kind, length = self._framing()
        # one buffer for the whole body: a list of its parts, for a body sent in 2-byte chunks, took 30 times its size
        body = bytearray()
        if kind == "chunked":
            return self._read_chunks(body)
        return bytes(body) if self._read_held(length or 0, body) else None

    def _read_held(self, length: int, body: bytearray) -> bool:
        """Read `length` more bytes of the body onto `body`, each piece held (`_hold`) before it is read, past the
        body's first: what a body holds is what came of it, give or take a piece, not what its head or a chunk's size
        line announced (eight heads announcing 32 MiB would have held every other body off). False if it was refused,
        or the app hung up."""
        while length:
            piece = min(length, READ_PIECE)
            counted = min(piece, self.received + piece - READ_PIECE)  # past the body's first READ_PIECE bytes
            if counted > 0 and not self._hold(counted):
                return False
            data = self.rfile.read(piece)
            body += data
            self.received += len(data)
            if len(data) < piece:
                self._hung_up()
                return False
            length -= piece
        return True

    held = 0  # the bytes of the request's body this connection holds of the server's MAX_BODIES_HELD
    received = 0  # the bytes of the request's body read

    def _hold(self, size: int) -> bool:
        """Take `size` more bytes of the bodies the server holds for this request's body; if they are not free,
        refuse it (503, nothing forwarded) and return False."""
        if self.server.hold(size):
            self.held += size
            return True
        bound = self.server.bodies_held
        shown = f"{bound // 1_048_576} MiB" if bound % 1_048_576 == 0 else f"{bound} bytes"
        self._refuse(503, f"the proxy holds as many request bodies as it takes at once ({shown} in all): nothing was "
                          f"forwarded; send the request again", retry_after=1)
        return False

    def _read_chunks(self, body: bytearray) -> bytes | None:
        size = 0
        while True:
            line = self.rfile.readline(1024)
            text = line.split(b";")[0].strip()
            if not line.endswith(b"\n"):
                return self._hung_up() if len(line) < 1024 else self._refuse(400, "a chunk size line is longer "
                                                                                   "than 1024 bytes")
            if not _HEX.fullmatch(text):
                return self._refuse(400, f"chunk size {_shown(text.decode('latin-1'))} is not a hexadecimal number")
            length = int(text, 16)
            if length == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return bytes(body)
            size += length
            if size > MAX_REQUEST_BODY:
                return self._refuse(413, "request body larger than 32 MiB")
            if not self._read_held(length, body):
                return None
            end = self.rfile.readline(3)
            if not end:
                return self._hung_up()
            if end not in (b"\r\n", b"\n"):
                return self._refuse(400, f"a chunk of {length} bytes is not followed by a line break")

    def _hung_up(self) -> None:
        self.close_connection = True

    def _refuse(self, status: int, message: str, retry_after: int | None = None) -> None:
        """Answer the proxy's own refusal (nothing goes upstream) and close the connection, whose remaining bytes
        cannot be trusted to start a request."""
        text = own_error(message)
        if self.request_version == "HTTP/0.9":  # a request line too malformed to name a version still gets a head
            self.request_version = self.protocol_version
        self.send_response_only(status)
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(text)))
        self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(text)
        self.close_connection = self.linger = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's own refusals (a malformed request line, a line or headers too long, an unknown method) in
        the proxy's JSON, not its HTML page."""
        self._refuse(code, message or self.responses.get(code, ("",))[0] or f"HTTP {code}")

    def log_message(self, format: str, *args) -> None:  # the recording is the log
        pass


_HEX = re.compile(rb"[0-9A-Fa-f]+")
_BARE_LF = "a line of the request's head ends in a bare LF; HTTP needs CRLF (\\r\\n)"
_PAST_ASCII = re.compile(rb"[^\x21-\x7e]")
_LONE_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
_CONTROL = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")  # any but HTAB, in a header line without its line break


class _Arrival(io.RawIOBase):
    """The connection's reads, a request's each given what is left of its time to arrive (`arrival_due`, as the
    mock's own server gives it, from its first byte: a head sent a byte every 15 s had held its thread for ever), at
    most the idle timeout; past it, TimeoutError, which ends the connection as http.server ends an idle one.
    `arrived()` once a request is read whole: the next one's time starts at its first byte."""

    def __init__(self, connection: socket.socket, idle_seconds: float):
        self.connection, self.idle_seconds = connection, idle_seconds
        self.started: float | None = None
        self.received = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self.started is not None:
            left = arrival_due(self.started, self.received) - time.monotonic()
            if left <= 0:
                raise TimeoutError("a request still arriving past its time to arrive")
            self.connection.settimeout(min(self.idle_seconds, left))
        count = self.connection.recv_into(buffer)
        # a client's CRLF after a body (RFC 9112 2.2) starts no request: left to the idle timeout, as the mock does
        if count and self.started is None and bytes(memoryview(buffer)[:count]).strip(b"\r\n"):
            self.started = time.monotonic()
        self.received += count
        return count

    def arrived(self) -> None:
        self.started, self.received = None, 0
        self.connection.settimeout(self.idle_seconds)


def _shown(value: str) -> str:
    """A value as a refusal quotes it: escaped, and cut short."""
    return repr(value[:40]) + ("..." if len(value) > 40 else "")


class _Responder:
    def __init__(self, handler: _Handler):
        self.handler, self.chunked, self.app_gone = handler, False, False

    def start(self, status: int, reason: str, headers: list[tuple[str, str]], chunked: bool,
              codings: str = "") -> None:
        if self.handler.request_version != "HTTP/1.1":  # HTTP/1.0 has no chunks: the closing connection ends it
            chunked = False
            headers = [*headers, ("Connection", "close")]
        elif self.handler.server.stopping:  # the last exchange of its connection: the app asks elsewhere next
            headers = [*headers, ("Connection", "close")]
            self.handler.close_connection = True
        with self._sending():
            self.handler.send_response_only(status, reason)  # no Server or Date of the proxy's own
            for name, value in headers:
                self.handler.send_header(name, value)
            if chunked:
                self.handler.send_header("Transfer-Encoding", f"{codings}, chunked" if codings else "chunked")
            self.chunked = chunked
            self.handler.end_headers()

    def write(self, data: bytes) -> None:
        if not data:
            return
        with self._sending():
            self.handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if self.chunked else data)
            self.handler.wfile.flush()

    def finish(self) -> None:
        with self._sending():
            if self.chunked:
                self.handler.wfile.write(b"0\r\n\r\n")
            self.handler.wfile.flush()

    def abort(self) -> None:
        self.handler.close_connection = True

    @contextlib.contextmanager
    def _sending(self) -> Iterator[None]:
        """A write that fails (the app hung up, or took no byte for the idle timeout) cuts the answer short: the
        connection cannot carry another, so it is closed once the exchange is recorded."""
        try:
            yield
        except OSError:
            self.handler.close_connection = self.app_gone = True
            raise


class ProxyServer(ThreadingHTTPServer):
    """Serve `proxy` on (host, port); port 0 picks a free one (see `.port`)."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # connections the kernel queues before they are taken (socketserver's default is 5)

    def __init__(self, proxy: Proxy, host: str = "127.0.0.1", port: int = 8081, *,
                 idle_seconds: float = IDLE_SECONDS, bodies_held: int = MAX_BODIES_HELD):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)
        self.proxy, self.idle_seconds = proxy, idle_seconds
        self._thread: threading.Thread | None = None
        self.stopping = False  # (close_idle): no new request is taken, each connection closes after its exchange
        self._connections: dict[_Handler, bool] = {}  # each open connection's handler: waiting for a request?
        self._guard = threading.Lock()
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)  # connections served at once
        self.bodies_held, self._held = bodies_held, 0  # request body bytes held at once: the bound, and now

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def url(self) -> str:
        host = self.server_address[0]
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> ProxyServer:
        """Serve in a background thread (tests, benchmarks)."""
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="ivh-mock-proxy", daemon=True)
        self._thread.start()
        return self

    stops = 0  # how many times SIGTERM, SIGINT or SIGHUP came (`ask_stop`): serve_forever ends at its next turn

    def ask_stop(self, signum: int, frame: Any) -> None:
        """The stopping signals' handler in `ivh-mock proxy`: serve_forever ends within its poll interval, and a
        second signal cuts the wait for the exchanges under way short. It never raises: an exception a handler raises
        in a finalizer or a collector's callback is ignored, and the stop was lost (Ctrl-C's own KeyboardInterrupt
        too), and one raised during that wait had ended it with a traceback."""
        self.stops += 1

    def service_actions(self) -> None:  # serve_forever's thread, after each poll
        if self.stops:
            raise KeyboardInterrupt  # ends serve_forever as Ctrl-C did

    def stop(self) -> None:
        """Stop accepting, let the exchanges under way finish and be recorded, close."""
        self.shutdown()
        self.close_idle()
        self.proxy.drain()
        self.server_close()

    def close_idle(self) -> None:
        """Take no new request: close each kept-alive connection that waits for its next one, and each other after
        its exchange. A stop had let apps go on sending on their open connections until its wait ran out, then cut
        what was under way short (new submissions, billed upstream, among them)."""
        with self._guard:
            self.stopping = True
            waiting = [handler for handler, idle in self._connections.items() if idle]
        for handler in waiting:  # its read of a request line ends (as at the app's close); an answer can still go
            with contextlib.suppress(OSError):
                handler.connection.shutdown(socket.SHUT_RD)

    def note(self, handler: _Handler, waiting: bool) -> bool:
        """Note whether a connection waits for a request (True) or has one under way; False once stopping."""
        with self._guard:
            self._connections[handler] = waiting
            return not self.stopping

    def forget(self, handler: _Handler) -> None:
        with self._guard:
            self._connections.pop(handler, None)

    def hold(self, size: int) -> bool:
        """Take `size` bytes of the request bodies held at once (`bodies_held`), if they are free."""
        with self._guard:
            if self._held + size > self.bodies_held:
                return False
            self._held += size
            return True

    def let_go(self, size: int) -> None:
        with self._guard:
            self._held -= size

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on a thread of its own, unless MAX_CONNECTIONS are served already: then answer it 503
        and close it (a thread and up to a 32 MiB body per connection had no bound)."""
        if not self._slots.acquire(blocking=False):
            with contextlib.suppress(OSError):
                request.settimeout(1)  # (the accepting thread's: an app that takes none of it holds it no longer)
                text = own_error(f"{MAX_CONNECTIONS} connections are served already; try again")
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s"
                                % (len(text), text))
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # no thread started (none left to the process): its slot is not held
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept the next connection. With no descriptor free (the process's limit), the connection stays queued
        and the server waits a moment before it tries again: the listener still reads as ready, and trying again at
        once had kept a core busy until a connection closed."""
        try:
            return super().get_request()
        except OSError as error:
            if error.errno in (errno.EMFILE, errno.ENFILE):
                time.sleep(ACCEPT_BACKOFF_SECONDS)
            raise

    def handle_error(self, request, client_address) -> None:
        """An app that hung up or stopped sending is no error of the proxy's; anything else is, with its traceback."""
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
