"""`ivh-mock serve`: run the mock over HTTP."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
import functools
import json
import math
import os
import pwd
import re
import secrets
import shlex
import signal
import socket
import sqlite3
import sys
import tempfile
import time
from typing import Any, Iterable
from urllib.parse import urlsplit

import yaml

from ivh_mock import __version__
from ivh_mock import spec as spec_module
from ivh_mock.spec import deadline
from ivh_mock.spec.jsontext import not_utf8, plain
from ivh_mock.spec.urls import host_name_ok, http_url_problem, without_query

from ..accounts import SETTINGS_SCHEMA, Accounts, AccountsFileError, schema_problem
from ..app import create_app, largest_body, stop_app, stop_seconds
from ..config import DEFAULT_ACCESSTOKEN, Config, token_problem
from ..lifecycle import scenarios
from ..pace import DEFAULT as DEFAULT_PACE
from ..pace import FIELDS as PACE_FIELDS
from ..pace import PRESETS, PaceError
from ..pace import resolve as resolve_pace
from ..routes.control import clock_view, iso_time
from ..routes.guard import bracketed, is_loopback
from ..store import StoreBusy
from ..store.sqlite import close_log, file_identity
from .dispatch import STALL_SECONDS, STOP_SECONDS
from .owner import ORPHANS_SECONDS, StoreInUse, StoreOwner, in_use
from .server import STOP_SIGNALS, WAIT_SAID_SECONDS, Server, raise_open_files_limit
from .streams import printed, say, standard_streams_open

DATA_DIR_SHOWN = "$XDG_STATE_HOME/ivh-mock, else ~/.local/state/ivh-mock"
# How long a start waits for a port in use to be freed: the workers of a master killed alone notice within half a
# second (MASTER_CHECK_SECONDS) and close their copies of its socket (balance.stop_listening)
PORT_WAIT_SECONDS = 5.0


def default_data_dir() -> str:
    """Where an installed tool keeps its state: $XDG_STATE_HOME/ivh-mock, else ~/.local/state/ivh-mock."""
    state_home = os.environ.get("XDG_STATE_HOME", "")
    if not os.path.isabs(state_home):  # the XDG spec: a relative path is invalid and is ignored
        home = os.environ.get("HOME", "")
        if not os.path.isabs(home):  # unset, empty (it had made /.local/state/ivh-mock) or relative: the account's
            with contextlib.suppress(KeyError):  # (a uid the password database does not know keeps what it had)
                home = pwd.getpwuid(os.getuid()).pw_dir
        state_home = os.path.join(home, ".local", "state")
    return os.path.join(state_home, "ivh-mock")


def _help(meaning: str, default: Any) -> str:
    return f"{meaning} (default: {default})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivh-mock", description="A local mock of the IVH photo-to-video API.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the mock over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help=_help("address to listen on", "127.0.0.1"))
    serve.add_argument("--port", type=_port, default=8080, help=_help("port to listen on (0 picks a free one)", 8080))
    serve.add_argument("--profile", choices=spec_module.load().profile_names, default=None,
                       help=_help("limit profile: intl (the international page) or cn (the China page: 6 MB photos, "
                                  "10 MB audio, side and aspect limits only advisory)", "intl"))
    serve.add_argument("--accounts", metavar="FILE", default=None,
                       help=_help("strict mode: only the accounts in this YAML or JSON file are accepted, each with "
                                  "its own accesstoken", "none"))
    serve.add_argument("--default-accesstoken", type=_accesstoken, default=DEFAULT_ACCESSTOKEN,
                       help=_help("the accesstoken of every appkey when not in strict mode", DEFAULT_ACCESSTOKEN))
    timing = serve.add_argument_group("task timing", "a pace preset or file, then any of its three figures changed")
    timing.add_argument("--pace", metavar="NAME|FILE", default=DEFAULT_PACE,
                        help=_help("how fast tasks queue and render: fast (quick local runs) or live (the live "
                                   "service's reported times; see Pace), or a pace file as ivh-mock drift writes "
                                   "(see Validating the live API)", DEFAULT_PACE))
    fast = PRESETS[DEFAULT_PACE]
    timing.add_argument("--queue-seconds", type=_seconds, default=None,
                        help=_help("least time a task waits in COMMIT", f"the pace's ({fast['queue_seconds']})"))
    timing.add_argument("--render-speed", type=_seconds, default=None,
                        help=_help("render seconds per second of output video",
                                   f"the pace's ({fast['render_speed']})"))
    timing.add_argument("--render-startup", type=_seconds, default=None,
                        help=_help("fixed render start-up, in seconds",
                                   f"the pace's ({fast['render_startup_seconds']})"))
    serve.add_argument("--replay", metavar="DIR", default=None,
                       help=_help("answer requests matching an exchange recorded by ivh-mock proxy in DIR (or in one "
                                  "recording file) with the recorded answer, the rest as usual (see Validating the "
                                  "live API); one worker only",
                                  "none"))
    serve.add_argument("--public-url", type=_public_url, default=None,
                       help=_help("scheme://host[:port][/path] that MediaUrl, SubtitlesUrl and asset URLs point to "
                                  "(a path for a reverse proxy that passes requests on without it); no user info, "
                                  "query or character a URL does not hold as it is", "the request's host"))
    serve.add_argument("--data-dir", default=None,
                       help=_help("where fetched media, uploads, rendered videos and the default store are kept",
                                  f"{DATA_DIR_SHOWN} (with --store memory, a temporary folder removed at the stop)"))
    serve.add_argument("--store", default=None,
                       help=_help("where tasks, the request journal, callbacks, account settings and the clock are "
                                  "kept: memory, sqlite:PATH (one server at a time), "
                                  "redis://HOST:PORT/DB[?prefix=NAME] or unix:///PATH?db=N[&prefix=NAME] "
                                  "(see Deployment)",
                                  "sqlite:DATA_DIR/ivh-mock.sqlite3"))
    serve.add_argument("--workers", type=_count, default=1,
                       help=_help("worker processes sharing the store; more than one needs sqlite: or "
                                  "redis://", 1))
    serve.add_argument("--threads", type=_count, default=8,
                       help=_help("threads per worker, each answering one whole request at a time: the event "
                                  "loop's own thread runs requests while it keeps up, another starts once the running "
                                  "ones have started nothing for "
                                  f"{STALL_SECONDS * 1000:g} ms or wait on a download or a render (connections that "
                                  "are slow to send their request wait without a thread); at most this many less two "
                                  "wait on a download or a render at once, so two stay free", 8))
    serve.add_argument("--callback-timeout", type=_timeout, default=Config.callback_timeout_seconds,
                       help=_help("seconds one callback delivery may take (more than 0)",
                                  Config.callback_timeout_seconds))
    serve.add_argument("--control-token", type=_control_token, default=None,
                       help=_help("token the control API demands, printable ASCII without spaces; generated when "
                                  "listening beyond loopback", "none on loopback"))
    serve.add_argument("--allow-host", metavar="NAME", type=_host_name, action="append", default=None,
                       help=_help("a host name the control API answers to besides IP addresses, localhost, --host "
                                  "and --public-url's host (repeatable; *: any)", "none"))
    _add_proxy_commands(commands)
    return parser


def timing_of(args: argparse.Namespace) -> dict[str, float]:
    """The pace's three figures (a preset, or a pace file over the default preset), each replaced by its option
    when given; a pace that cannot be used raises PaceError naming what is allowed."""
    if args.pace in PRESETS:
        base = PRESETS[args.pace]
    else:
        try:
            base = resolve_pace(_pace_file(args.pace))
        except PaceError as error:
            message = str(error)
            raise PaceError(message if message.startswith("--pace ") else f"--pace {args.pace}: {message}") from None
    return {**base, **_figures_given(args)}


def _figures_given(args: argparse.Namespace) -> dict[str, float]:
    """The pace's figures given as options (--queue-seconds, --render-speed, --render-startup)."""
    given = {"queue_seconds": args.queue_seconds, "render_speed": args.render_speed,
             "render_startup_seconds": args.render_startup}
    return {name: value for name, value in given.items() if value is not None}


def _paced(args: argparse.Namespace) -> bool:
    """Whether the pace was chosen (a preset or file other than the default, or a figure given)."""
    return args.pace != DEFAULT_PACE or bool(_figures_given(args))


def _pace_shown(args: argparse.Namespace, timing: dict[str, float]) -> str:
    """The banner's pace line: what was chosen, and the figures it comes to (a pace file's had not been shown)."""
    return (f"{plain(args.pace)}: {timing['queue_seconds']:g} s in the queue, then a render of "
            f"{timing['render_startup_seconds']:g} s + {timing['render_speed']:g} s a second of video")


def _pace_file(path: str) -> object:
    """Read a pace file (JSON or YAML); what it holds is checked by resolve_pace."""
    if not os.path.isfile(path):
        why = "no such file" if not os.path.lexists(path) else "not a regular file"
        raise PaceError(f"--pace {path!r} is neither a preset ({', '.join(PRESETS)}) nor a pace file ({why})")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise PaceError(f"--pace {path}: cannot read it: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise PaceError(f"--pace {path}: not UTF-8 text, as JSON and YAML are") from None
    try:
        pace = yaml.load(text, Loader=spec_module.StrictLoader)  # noqa: S506 - a safe loader; JSON is YAML
    except yaml.constructor.ConstructorError as error:  # read, but one of its keys given twice
        raise PaceError(f"--pace {path}: {spec_module.yaml_problem(error)}") from None
    except yaml.YAMLError as error:
        raise PaceError(f"--pace {path}: not JSON or YAML: {spec_module.yaml_problem(error)}") from None
    if not isinstance(pace, dict):  # a word in a file is no preset's name: say what a file is to hold
        raise PaceError(f"--pace {path}: holds no pace, a mapping of {', '.join(PACE_FIELDS)} (as ivh-mock drift "
                        f"writes)")
    return pace


def _add_proxy_commands(commands) -> None:
    proxy = commands.add_parser("proxy", help="pass an app's traffic to the live API, check it against the spec and "
                                              "record it")
    proxy.add_argument("--upstream", type=_http_url, default=None,
                       help="where to forward (default: the live API of --profile, from the spec's servers)")
    proxy.add_argument("--profile", choices=spec_module.load().profile_names, default=None,
                       help="which live API is the default upstream: intl (default) or cn")
    proxy.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    proxy.add_argument("--port", type=_port, default=8081, help="port to listen on; 0 picks a free one "
                                                              "(default: %(default)s)")
    proxy.add_argument("--record", metavar="DIR", required=True, help="directory of the recordings (created 0700)")
    proxy.add_argument("--per", choices=("day", "run"), default="day",
                       help="one recording file per UTC day or per run (default: %(default)s)")
    proxy.add_argument("--max-file-mb", type=_count, default=64,
                       help="start a new file past this size (default: %(default)s)")
    proxy.add_argument("--max-total-mb", type=int, default=1024,
                       help="delete the oldest files past this total (default: %(default)s)")
    proxy.add_argument("--timeout", type=_timeout, default=30.0,
                       help="seconds the upstream may stay silent: for the head of its answer, then between the "
                            "pieces of its body, as a client's read timeout counts (default: %(default)s)")
    proxy.add_argument("--connect-timeout", type=_timeout, default=10.0,
                       help="seconds to wait for a connection to the upstream (default: %(default)s)")
    proxy.add_argument("--callback-relay", action="store_true",
                       help="replace CallbackUrl by the proxy's own URL, record each callback and forward it to the "
                            "app's URL (changes the submission; off by default)")
    proxy.add_argument("--public-url", type=_public_url, default=None,
                       help="scheme://host[:port] the upstream reaches the proxy at, for --callback-relay "
                            "(default: http://HOST:PORT)")
    proxy.add_argument("--allow-host", metavar="NAME", type=_host_name, action="append", default=None,
                       help="a host name a mock's control API answers to through the proxy besides IP addresses, "
                            "localhost, --host and --public-url's host (repeatable; *: any)")
    drift = commands.add_parser("drift", help="report what recordings (and contract suite reports) show against the "
                                              "spec; exit 1 on any finding")
    drift.add_argument("recordings", metavar="DIR", help="a directory recorded by `ivh-mock proxy` (or one file)")
    drift.add_argument("--suite-report", metavar="FILE", action="append", default=[],
                       help="a contract suite drift-report.json to merge in (repeatable)")
    drift.add_argument("--out", metavar="DIR", default=None,
                       help="where drift-report.json/.md and pace.json go (default: DIR)")
    drift.add_argument("--pace-file", metavar="FILE", default=None, help="where to write the pace (default: "
                                                                        "OUT/pace.json)")


def _seconds(text: str) -> float:
    value = _number(text)
    if not 0 <= value <= 86_400:  # (argparse had said "invalid _seconds value" of what float() refuses)
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 86400")
    return value


def _timeout(text: str) -> float:
    """Seconds something may take: 0 would have every delivery or call time out at once."""
    value = _number(text)
    if not 0 < value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0 and at most 86400")
    return value


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan  # within no bounds


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65_535:  # bind() would refuse it with a traceback, after the app was built
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0 to 65535)")
    return value


def _http_url(text: str) -> str:
    problem = http_url_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _public_url(text: str) -> str:
    """A --public-url: an http(s) URL without user info, which every MediaUrl and sample URL made from it would
    carry (`http://user:pw@host` had been written into each)."""
    if "@" in urlsplit(_http_url(text)).netloc:
        raise argparse.ArgumentTypeError(f"{without_query(text)!r} holds user info (name:password@), which every URL "
                                         f"the mock writes from it would carry; give the scheme, host, port and path")
    return text


def _control_token(text: str) -> str:
    problem = token_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 256")
    return value


def _accesstoken(text: str) -> str:
    """The default accesstoken, held to the accounts file's rule for one (an empty one had been taken, and one not
    UTF-8 had been taken and then failed every signed request with 500)."""
    problem = not_utf8(text)
    if problem is None:
        refused = schema_problem(SETTINGS_SCHEMA, {"accesstoken": text})
        problem = refused[1] if refused else None
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _host_name(text: str) -> str:
    """An --allow-host: a host name, an IP address or "*" (any); an empty one or one with a space had been taken."""
    if text != "*" and not host_name_ok(text.lower()):
        raise argparse.ArgumentTypeError(f"{text!r} is not a host name, an IP address or *")
    return text


def _holds_queue(store: str) -> bool:
    """Whether a worker's running request is to hold its queue (D68): not with Redis on another host, where every
    request waits on the network and the threads are to overlap those waits."""
    if not store.startswith(("redis://", "rediss://")):  # in the process, in a local file, or on a Unix socket
        return True
    return is_loopback(urlsplit(store).hostname or "localhost")


def _check_port(host: str, port: int) -> str | None:
    """Return why `host:port` cannot be listened on, or None (checked before anything is made; with port 0, that the
    host is one of this machine's: a name that does not resolve had ended the start in a traceback)."""
    if not host.strip():  # an unset $VARIABLE: bound, it had listened on every address, not the default's loopback
        return "--host is empty: give an address, or leave the option out for 127.0.0.1"
    if not_text := not_utf8(host):  # bind() had raised TypeError ("encoding of hostname failed"), a traceback
        return f"--host {host!r} {not_text}"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    started = time.monotonic()
    said = False
    while True:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
                return None
            except (OSError, OverflowError) as error:
                # in use: perhaps by the workers of a master killed alone, which free it as they notice (D55)
                waited = time.monotonic() - started
                if getattr(error, "errno", None) == errno.EADDRINUSE and waited < PORT_WAIT_SECONDS:
                    if waited > WAIT_SAID_SECONDS and not said:  # a start that waits says for what
                        say(f"ivh-mock: {host}:{port} is in use; waiting up to {PORT_WAIT_SECONDS:g} s for it to be "
                            "freed, as a stopping server frees it")
                        said = True
                    time.sleep(0.1)
                    continue
                return _cannot_listen(host, port, getattr(error, "strerror", None) or "address in use or not available")


def _cannot_listen(host: str, port: int, reason: str) -> str:
    return f"cannot listen on {host}:{port}: {reason}"


def _stop_worker(app: Any) -> None:
    """What a worker does once it stops serving: its app's background work ends (stop_app), then it closes its
    store. The last connection to a SQLite database to close removes the write-ahead log, which held what a copy of
    the database file alone would lack: a stopped server had left the log and its index beside the database."""
    stop_app(app)
    app.extensions["ivh_mock"].store.close()


_STORE_FILES = ("", "-wal", "-shm", "-journal", ".lock", ".owner")  # a SQLite store's database and what goes with it


def _store_files_missing(database: str) -> list[str]:
    """The files of a SQLite store (`database`, its logs, lock and owner files) that are not there yet: the ones a
    start that is refused made, and removes."""
    if database in ("", ":memory:"):
        return []
    return [database + suffix for suffix in _STORE_FILES if not os.path.exists(database + suffix)]


def _start_interrupted(signum: int, frame: Any) -> None:
    """A stop signal's handler while `ivh-mock serve` starts: as Ctrl-C, the start ends and undoes what it made."""
    raise KeyboardInterrupt


def _undo_start(owner: StoreOwner | None, made: list[str], files: list[str]) -> None:
    """Remove what a start that stops before serving made (`_unmake`), and let the store go."""
    if owner is not None:  # held: no other server uses the store files this start made
        _unmake(made, files)
        owner.release()
    else:  # another server may have made the same folders meanwhile: only empty ones go
        _unmake(made, [])


def _unmake(made: list[str], files: list[str]) -> None:
    """Remove what a refused start made: the store's `files` (a database it made, or the logs SQLite made beside a
    database it could not write), and the folders it made (`made`) as far as they are empty then."""
    for path in files:
        with contextlib.suppress(OSError):
            os.unlink(path)
    for top in made:
        for folder, _, _ in os.walk(top, topdown=False):  # the deepest first
            with contextlib.suppress(OSError):  # not empty: another's
                os.rmdir(folder)


def _empty(options: Iterable[tuple[str, str | None]]) -> str | None:
    """The name of the first of `options` (name, value) given empty or blank, or None: an unset $VARIABLE in a
    script, which is not the default it meant."""
    return next((name for name, value in options if value is not None and not value.strip()), None)


def _first_missing(path: str) -> str:
    """The outermost folder of `path` that does not exist yet (what making `path` makes). A relative path's top
    folder has no parent to look for: `sqlite:new/db.sqlite3` had looked for the parent of "" for ever, at start."""
    while (parent := os.path.dirname(path)) and parent != path and not os.path.exists(parent):
        path = parent
    return path


def _start_failure(error: Exception, args: argparse.Namespace, store: str, data_dir: str | None) -> str:
    """What stopped a start, naming the setting it came from: a folder that could not be made had been said as the
    system says it (`[Errno 2] No such file or directory: '/a'`), a Redis that did not answer as redis-py does."""
    named = f"--store {_shown(store)}" if args.store else f"the store {_shown(store)} (in the data directory)"
    if isinstance(error, sqlite3.Error) or isinstance(error, _redis_errors()):
        return f"{named}: {error}"
    if not isinstance(error, OSError) or error.filename is None:
        return str(error)
    failed = os.path.abspath(os.fsdecode(error.filename))
    # a file on the way is what a user can mend: said rather than ENOTDIR's or EEXIST's words (a file refused for
    # another reason, a root-owned `.owner`, is said as the system says it)
    existing = failed if os.path.exists(failed) else os.path.dirname(_first_missing(failed))
    why = (f"{existing} is a file, not a directory"
           if error.errno in (errno.ENOTDIR, errno.EEXIST) and not os.path.isdir(existing)
           else f"{error.strerror or error} ({failed})")
    database = store.removeprefix("sqlite:") if args.store and store.startswith("sqlite:") else ""  # else in data_dir
    for path, setting in ((database, named), (data_dir, f"--data-dir {data_dir}" if args.data_dir
                          else f"the data directory {data_dir} ({DATA_DIR_SHOWN})")):
        # it, a folder it is in, or a file of its own (the database's `.owner` beside it, the data directory's files)
        if path and (path == failed or path.startswith(failed.rstrip(os.sep) + os.sep)
                     or failed.startswith((path + ".", path.rstrip(os.sep) + os.sep))):
            return f"{setting}: cannot be used: {why}"
    return f"{error.strerror or error}: {failed}"


def _redis_errors() -> tuple[type[Exception], ...]:
    """redis-py's errors, when a Redis store loaded it (it is imported only then: it costs a start 80 ms)."""
    redis = sys.modules.get("redis")
    return (redis.RedisError,) if redis is not None else ()


def main(argv: list[str] | None = None) -> int:
    standard_streams_open()
    args = build_parser().parse_args(argv)
    if args.command == "proxy":
        return _proxy(args)
    if args.command == "drift":
        from ivh_mock.proxy import report

        empty = _empty((("DIR", args.recordings), ("--out", args.out), ("--pace-file", args.pace_file),
                        *(("--suite-report", path) for path in args.suite_report or ())))
        if empty:  # `drift ''` had read the folder it ran in
            default = "" if empty == "DIR" else ", or leave the option out for the default"
            print(f"ivh-mock drift: {empty} is empty: give a path{default}", file=sys.stderr)
            return 2
        return report.run(args.recordings, suite_reports=args.suite_report, out=args.out, pace_file=args.pace_file)
    try:
        timing = timing_of(args)
    except PaceError as error:
        print(f"ivh-mock: {error}", file=sys.stderr)
        return 2
    if args.replay and args.workers > 1:
        print("ivh-mock: --replay follows each replayed task in one process; use it with one worker", file=sys.stderr)
        return 2
    empty = _empty((("--store", args.store), ("--data-dir", args.data_dir), ("--accounts", args.accounts),
                    ("--replay", args.replay)))
    if empty:  # (an empty --accounts had served any appkey)
        print(f"ivh-mock: {empty} is empty: give one, or leave the option out for the default", file=sys.stderr)
        return 2
    token = args.control_token
    if token is None and not is_loopback(args.host):
        token = secrets.token_urlsafe(18)  # beyond loopback the control API is never open
    data_dir = os.path.abspath(os.path.expanduser(args.data_dir or default_data_dir()))
    if os.path.exists(data_dir) and not os.path.isdir(data_dir):
        print(f"ivh-mock: --data-dir {data_dir}: it is a file, not a directory", file=sys.stderr)
        return 2
    store = args.store or f"sqlite:{os.path.join(data_dir, 'ivh-mock.sqlite3')}"
    if store == "memory" and args.workers > 1:
        print("ivh-mock: the memory store lives in one process; with --workers use sqlite:PATH or redis://...",
              file=sys.stderr)
        return 2
    # until the server's own handlers are set (Server.run), a stop signal ends the start as Ctrl-C does, undoing what
    # it made: the system's default had killed the process mid-start and left the memory store's scratch folder, or
    # a new data directory, behind. A hang-up ignored from the start (nohup) stays ignored; Ctrl-C raises as it is.
    for number in STOP_SIGNALS:
        if signal.getsignal(number) is signal.SIG_DFL:
            signal.signal(number, _start_interrupted)
    scratch = None
    if store == "memory" and args.data_dir is None:  # nothing kept across restarts, its files neither: a folder of
        data_dir = None  # its own, removed at the stop (they had piled up in the state directory, start after start)
        # made and removed by the master: a worker killed by a hurried stop could not remove one of its own. A stop
        # signal waits while it is made: one that came between the folder and the finalizer that removes it left it
        with deadline.signals_held(STOP_SIGNALS):
            scratch = tempfile.TemporaryDirectory(prefix="ivh-mock-", ignore_cleanup_errors=True)
    database = store.removeprefix("sqlite:") if store.startswith("sqlite:") else ""
    if database.startswith("//"):  # a URL's form: `sqlite://x.db` had made /x.db, at the root, under that banner
        print(f"ivh-mock: --store {store}: sqlite: takes a path, not a URL: sqlite:x.db (in this folder) or "
              f"sqlite:/path/to/x.db", file=sys.stderr)
        return 2
    if database not in ("", ":memory:"):  # relative to the folder it was started in, whatever the workers do
        database = os.path.abspath(os.path.expanduser(database))
        store = "sqlite:" + database
    if os.path.isdir(database):  # had been said as SQLite says it: "unable to open database file"
        why = (f"--store {store}: it is a directory: give the database file's path, such as "
               f"sqlite:{os.path.join(database, 'ivh-mock.sqlite3')}" if args.store else
               f"the store {store} (in the data directory) is a directory, where its database file goes: move it "
               f"away, or give another --data-dir")
        print(f"ivh-mock: {why}", file=sys.stderr)
        return 2
    # what can be checked without making anything is checked first: a start refused later had left a data directory,
    # a database and its owner file behind. A server holding the store first: it is likelier the one on the port too,
    # which had been waited for 5 s and said as "Address already in use", the server holding it unnamed
    problem = in_use(database) if database not in ("", ":memory:") else None
    problem = problem or _check_port(args.host, args.port)
    if problem:
        print(f"ivh-mock: {problem}", file=sys.stderr)
        return 2
    try:
        config = Config(profile=args.profile, accounts_file=args.accounts,
                        default_accesstoken=args.default_accesstoken, **timing, public_url=args.public_url,
                        control_token=token, data_dir=scratch.name if scratch else data_dir, store=store,
                        callback_timeout_seconds=args.callback_timeout,
                        slow_waits=max(1, args.threads - 2),  # two threads stay free whatever hosts or renders stall
                        allowed_hosts=(*(args.allow_host or ()), args.host))
        if args.accounts:
            Accounts.from_file(args.accounts, {}, functools.partial(scenarios.setting, spec_module.load()))
    except ValueError as error:  # AccountsFileError is one
        print(f"ivh-mock: {error}", file=sys.stderr)
        return 2
    try:
        load = _replaying(config, args.replay) if args.replay else functools.partial(create_app, config)
    except OSError as error:
        print(f"ivh-mock: --replay {args.replay}: {error}", file=sys.stderr)
        return 2
    made = [_first_missing(path) for path in (data_dir, os.path.dirname(database)) if path and not os.path.exists(path)]
    new_files = _store_files_missing(database)
    owner = None
    try:
        if database not in ("", ":memory:"):  # one server per SQLite store: a second would share its state unseen
            # the orphaned workers of a killed master end their requests, then their callbacks and uploads
            owner = StoreOwner(store.removeprefix("sqlite:"), ORPHANS_SECONDS + stop_seconds(config))
        # build one app here, so that a bad setting stops the start with a message rather than a worker
        checked = create_app(dataclasses.replace(config, background=False))
        ctx = checked.extensions["ivh_mock"]
        clock = clock_view(ctx.clock)
        served = file_identity(database) if owner is not None else None  # the file, whatever is at its path later
    except (StoreInUse, AccountsFileError, ValueError, OSError, sqlite3.Error, StoreBusy, *_redis_errors()) as error:
        _undo_start(owner, made, new_files)
        print(f"ivh-mock: {_start_failure(error, args, store, data_dir)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # Ctrl-C while the store was made: no half-made database stays (commands.py says so)
        _undo_start(owner, made, new_files)
        raise
    ctx.store.close()  # the workers open their own; a SQLite connection must not cross a fork
    stop_app(checked)
    host = bracketed(args.host)

    def banner(port: int) -> None:
        url = f"http://{host}:{port}"
        if owner is not None:
            owner.announce(url)
        control = f"token {token!r} (Authorization: Bearer ...)" if token else "open (loopback only)"
        kept = data_dir or "a temporary folder, removed at the stop (the memory store keeps nothing)"
        printed([f"ivh-mock listening on {url}",
                 f"  profile:     {config.profile or ctx.spec.default_profile}",
                 f"  credentials: {ctx.accounts.describe()}",
                 f"  control API: {url}/__mock__/ {control}",
                 f"  store:       {_shown(store)}, {args.workers} worker(s) x {args.threads} threads",
                 f"  data:        {kept}",
                 f"  clock:       {describe_clock(clock, url, token)}",
                 *([f"  pace:        {_pace_shown(args, timing)}"] if _paced(args) else []),
                 *([f"  replay:      {args.replay}"] if args.replay else [])], sys.stdout)

    largest = max(config.max_body_bytes, config.asset_max_bytes) + 65_536  # the app answers smaller excess itself
    server = Server(load, f"{host}:{args.port}", workers=args.workers, threads=args.threads, ready=banner,
                    max_body_bytes=largest, hold_queue=_holds_queue(store),
                    largest_body=functools.partial(largest_body, config), on_stop=_stop_worker,
                    # a callback or an upload under way ends and is recorded, not sent again by the next start
                    grace_seconds=stop_seconds(config),
                    # its one worker held the store: one killed had been replaced by one with none, unsaid
                    lost_with_a_worker=("the memory store's tasks, journal, clock and account settings went with "
                                        "it: the new one starts empty") if store == "memory" else None)
    try:
        return server.run()
    finally:
        if owner is not None:
            moved = close_log(database, served)  # the workers have ended: the last to close may have seen another
            if moved:  # still open
                say(f"ivh-mock: {moved}")
            owner.release()
        if scratch is not None:  # (a start refused earlier leaves it to the folder's own finalizer, at exit)
            scratch.cleanup()


def describe_clock(view: dict[str, Any], url: str, token: str | None) -> str:
    """The banner's clock line: "real time", or how the stored clock differs from it and how to bring it back; and
    who holds it (D89) and until when, the command letting go of the hold too (any other move is refused)."""
    held = view.get("held")
    if view["real"] and not held:
        return "real time"
    offset = view["offset"]
    distance = f"{_duration(abs(offset))} {'ahead of' if offset > 0 else 'behind'} real time"
    when = iso_time(view["now"], "seconds") or "a time past the year 9999"
    state = "real time" if view["real"] else f"frozen at {when} ({distance})" if view["frozen"] else distance
    if held:
        state += f", held by {held['by']!r} until {iso_time(held['until'], 'seconds')} (a run that steers it)"
    body = {"real": True, **({"by": held["by"], "release": True} if held else {})}
    auth = f" -H {shlex.quote(f'X-Mock-Token: {token}')}" if token else ""  # a token may hold a quote
    return (f"{state}, as kept in the store; {'let go' if view['real'] else 'back to real time'}: curl -X POST "
            f"{url}/__mock__/clock{auth} -H 'Content-Type: application/json' -d {shlex.quote(json.dumps(body))}")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 120:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours < 48 else f"{hours // 24} days {hours % 24} h"


_PASSWORD_PARAMETER = re.compile(r"(?i)((?:^|[?&])password=)[^&]*")


def _shown(store: str) -> str:
    """The store setting without the password a Redis URL may carry (before its host, or as `?password=`), otherwise
    as written: put together again by urlunsplit, `unix:///run/redis.sock?password=...` had lost its `//`."""
    head, mark, query = store.partition("?")
    try:
        password = urlsplit(store).password
    except ValueError:  # a URL that does not split (`redis://[::1:6379/0`) had ended its refusal in a traceback
        head = re.sub(r"//[^/]*@", "//***@", head)
    else:
        head = head.replace(f":{password}@", ":***@", 1) if password else head
    return head + mark + _PASSWORD_PARAMETER.sub(r"\1***", query)


def _replaying(config: Config, directory: str):
    """Return a loader of the mock wrapped in the replay of `directory`."""
    from ivh_mock.proxy.replay import ReplayIndex, ReplayMiddleware

    if not os.path.exists(directory):  # a folder of recordings, or one recording file (as drift reads them)
        raise OSError("no such directory or file")
    if not (os.path.isdir(directory) or os.path.isfile(directory)):  # a device, a FIFO: said as the other options say
        raise OSError("not a directory of recordings, nor a regular file")  # it ("[Errno 20] Not a directory")
    index = ReplayIndex.from_dir(directory)
    left_out = (f"{len(index.skipped)} recorded exchange(s) cannot be answered again, the first: {index.skipped[0]}"
                if index.skipped else "")
    if not len(index):  # a wrong directory would otherwise replay nothing, unseen
        raise OSError("no recorded exchange in it to replay (ivh-mock proxy --record writes ivh-proxy-*.jsonl)"
                      + (f"; {left_out}" if left_out else ""))
    if left_out:  # edited by hand: each had answered its requests with a 500
        print(f"ivh-mock: --replay {directory}: {left_out}; the mock answers what they would have", file=sys.stderr)
    if index.refused:
        print(f"ivh-mock: --replay {directory}: {len(index.refused)} recorded exchange(s) cannot be answered as "
              f"they were, and are answered 502 naming why, the first: {index.refused[0]}", file=sys.stderr)

    def load():
        app = create_app(config)
        app.wsgi_app = ReplayMiddleware(app.wsgi_app, index, app.extensions["ivh_mock"].clock.now)
        return app

    return load


def _proxy(args: argparse.Namespace) -> int:
    from ivh_mock.proxy import Proxy, ProxyServer, Recorder
    from ivh_mock.proxy.forward import environment_ca_bundle

    upstream = args.upstream or spec_module.load().server_url(args.profile)
    # refused before anything is made: a port in use had left the --record folder behind
    if args.max_total_mb < args.max_file_mb:
        print(f"ivh-mock: --max-total-mb ({args.max_total_mb}) must be at least --max-file-mb ({args.max_file_mb})",
              file=sys.stderr)
        return 2
    if _empty((("--record", args.record),)):  # it had recorded into the current folder, its banner blank
        print("ivh-mock: --record is empty: give the directory of the recordings", file=sys.stderr)
        return 2
    problem = _check_port(args.host, args.port)
    if problem:
        print(f"ivh-mock: {problem}", file=sys.stderr)
        return 2
    try:
        environment_ca_bundle()
    except ValueError as error:
        print(f"ivh-mock: {error}", file=sys.stderr)
        return 2
    try:
        recorder = Recorder(args.record, per=args.per, max_file_bytes=args.max_file_mb * 1_048_576,
                            max_total_bytes=args.max_total_mb * 1_048_576)
    except (OSError, ValueError) as error:  # what mkdir says of a file where the directory is to be: say so
        reason = "it is a file, not a directory" if isinstance(error, FileExistsError) else error
        print(f"ivh-mock: --record {args.record}: {reason}", file=sys.stderr)
        return 2
    raise_open_files_limit()  # a connection costs a descriptor, and its upstream connection another
    host = bracketed(args.host)
    public = args.public_url or f"http://{host}:{args.port}"
    proxy = Proxy(upstream, recorder, connect_timeout=args.connect_timeout, read_timeout=args.timeout,
                  callback_relay=args.callback_relay, public_url=public,
                  allowed_hosts=(args.host, *(args.allow_host or ())))
    try:
        server = ProxyServer(proxy, args.host, args.port)
    except OSError as error:
        print(f"ivh-mock: {_cannot_listen(args.host, args.port, error.strerror or str(error))}", file=sys.stderr)
        return 2
    if not args.public_url:
        proxy.public_url = f"http://{host}:{server.port}"
    # taken over before the banner, which tells a caller the proxy is ready for them (a SIGUSR1 sent on seeing it
    # had ended the proxy by the signal)
    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT):  # what is under way is recorded
        signal.signal(number, server.ask_stop)
    for number in (signal.SIGUSR1, signal.SIGUSR2):  # another server's (logs, upgrades): they had ended the proxy
        signal.signal(number, signal.SIG_IGN)
    printed([f"ivh-mock proxy listening on {server.url}",
             f"  upstream:    {without_query(upstream)}",  # its user info is a credential
             f"  recording:   {args.record} (one file per {args.per}, redacted, 0600)",
             f"  callbacks:   {'relayed through ' + proxy.public_url if args.callback_relay else 'not relayed'}"],
            sys.stdout)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()  # no new connection waits in the backlog while the last exchanges finish
        server.close_idle()  # nor a new request on a kept-alive connection
        # each exchange under way may take its whole time: a read can wait --timeout, and the next read again; a
        # second signal stops at once. A wait longer than a second says so (it had waited up to --timeout unsaid)
        limit, hurry = max(STOP_SECONDS, args.connect_timeout + args.timeout), lambda: server.stops > 1
        drained = proxy.drain(timeout=min(limit, WAIT_SAID_SECONDS), hurry=hurry)
        if not drained and not hurry() and limit > WAIT_SAID_SECONDS:
            say(f"ivh-mock proxy: stopping: the exchanges under way end first, within {limit:.0f} s; SIGTERM or "
                "Ctrl-C again stops at once")
            drained = proxy.drain(timeout=limit - WAIT_SAID_SECONDS, hurry=hurry)
        if not drained:
            say("ivh-mock proxy: stopped with exchanges still under way: they were cut short, unrecorded")
    return 0
