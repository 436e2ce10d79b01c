"""`ivh-mock serve`: run the mock over HTTP."""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import os
import secrets
import socket
import sqlite3
import sys
from urllib.parse import urlsplit, urlunsplit

import redis

from ivh_mock import spec as spec_module

from ..accounts import AccountsFileError
from ..app import create_app
from ..config import DEFAULT_ACCESSTOKEN, Config
from ..pace import DEFAULT as DEFAULT_PACE
from ..pace import PRESETS
from .server import Server


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ivh-mock", description="A local mock of the IVH photo-to-video API.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve the mock over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=8080, help="port to listen on; 0 picks a free one "
                                                              "(default: %(default)s)")
    serve.add_argument("--profile", choices=spec_module.load().profile_names, default=None,
                       help="limit profile: intl (the seed page, default) or cn (the China page)")
    serve.add_argument("--accounts", metavar="FILE", default=None,
                       help="strict mode: only the accounts in this YAML/JSON file, each with its own accesstoken")
    serve.add_argument("--default-accesstoken", default=DEFAULT_ACCESSTOKEN,
                       help="the accesstoken of every appkey when not strict (default: %(default)s)")
    timing = serve.add_argument_group("task timing", "a pace preset, then any of its three figures changed")
    timing.add_argument("--pace", choices=list(PRESETS), default=DEFAULT_PACE,
                        help="how fast tasks queue and render: fast (quick local runs) or live (the live service's "
                             "reported times; see README) (default: %(default)s)")
    timing.add_argument("--queue-seconds", type=_seconds, default=None,
                        help="least time a task waits in COMMIT (default: the pace's)")
    timing.add_argument("--render-speed", type=_seconds, default=None,
                        help="render time per second of output video (default: the pace's)")
    timing.add_argument("--render-startup", type=_seconds, default=None,
                        help="fixed render start-up in seconds (default: the pace's)")
    serve.add_argument("--public-url", default=None,
                       help="scheme://host[:port] media URLs point to (default: the host each request was sent to)")
    serve.add_argument("--data-dir", default="data",
                       help="where fetched media, uploads and rendered videos are kept (default: %(default)s)")
    serve.add_argument("--store", default=None,
                       help="where tasks, journal and callbacks are kept: memory, sqlite:PATH or "
                            "redis://HOST:PORT/DB[?prefix=NAME] (default: sqlite:DATA_DIR/ivh-mock.sqlite3)")
    serve.add_argument("--workers", type=_count, default=1,
                       help="worker processes sharing the store; more than 1 needs sqlite or redis (default: 1)")
    serve.add_argument("--threads", type=_count, default=8,
                       help="threads per worker, each answering one request at a time (default: %(default)s)")
    serve.add_argument("--callback-timeout", type=_seconds, default=Config.callback_timeout_seconds,
                       help="seconds a callback delivery may take (default: %(default)s)")
    serve.add_argument("--control-token", default=None,
                       help="token the control API (/__mock__/) demands; generated when listening beyond loopback")
    return parser


def timing_of(args: argparse.Namespace) -> dict[str, float]:
    """The pace preset's three figures, each replaced by its option when given."""
    given = {"queue_seconds": args.queue_seconds, "render_speed": args.render_speed,
             "render_startup_seconds": args.render_startup}
    return {**PRESETS[args.pace], **{name: value for name, value in given.items() if value is not None}}


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 86400")
    return value


def _count(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 256:
        raise argparse.ArgumentTypeError(f"{text} is not between 1 and 256")
    return value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _check_port(host: str, port: int) -> str | None:
    """Return why `host:port` cannot be listened on, or None (gunicorn would retry a busy port for seconds)."""
    if port == 0:
        return None
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or "address in use or not available"
    return None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = args.control_token
    if token is None and not _is_loopback(args.host):
        token = secrets.token_urlsafe(18)  # beyond loopback the control API is never open
    store = args.store or f"sqlite:{os.path.join(args.data_dir, 'ivh-mock.sqlite3')}"
    if store == "memory" and args.workers > 1:
        print("ivh-mock: the memory store lives in one process; with --workers use sqlite:PATH or redis://...",
              file=sys.stderr)
        return 2
    config = Config(profile=args.profile, accounts_file=args.accounts, default_accesstoken=args.default_accesstoken,
                    **timing_of(args), public_url=args.public_url, control_token=token,
                    data_dir=args.data_dir, store=store, callback_timeout_seconds=args.callback_timeout)
    try:  # build one app here, so that a bad setting stops the start with a message rather than a worker
        ctx = create_app(dataclasses.replace(config, background=False)).extensions["ivh_mock"]
    except (AccountsFileError, ValueError, OSError, sqlite3.Error, redis.RedisError) as error:
        print(f"ivh-mock: {error}", file=sys.stderr)
        return 2
    ctx.store.close()  # the workers open their own; a SQLite connection must not cross a fork
    problem = _check_port(args.host, args.port)
    if problem:
        print(f"ivh-mock: cannot listen on {args.host}:{args.port}: {problem}", file=sys.stderr)
        return 2
    host = f"[{args.host}]" if ":" in args.host else args.host

    def banner(port: int) -> None:
        control = f"token {token!r} (Authorization: Bearer ...)" if token else "open (loopback only)"
        print(f"ivh-mock listening on http://{host}:{port}", flush=True)
        print(f"  profile:     {config.profile or ctx.spec.default_profile}", flush=True)
        print(f"  credentials: {ctx.accounts.describe()}", flush=True)
        print(f"  control API: http://{host}:{port}/__mock__/ {control}", flush=True)
        print(f"  store:       {_shown(store)}, {args.workers} worker(s) x {args.threads} threads", flush=True)
        print(f"  data:        {args.data_dir}", flush=True)

    server = Server(lambda: create_app(config), f"{host}:{args.port}", workers=args.workers, threads=args.threads,
                    ready=banner)
    try:
        server.run()
    except SystemExit as exit_:  # gunicorn leaves by sys.exit, 0 after a clean stop (SIGTERM, SIGINT)
        return exit_.code if isinstance(exit_.code, int) else 1
    return 0


def _shown(store: str) -> str:
    """The store setting without the password a Redis URL may carry."""
    parts = urlsplit(store)
    if not parts.password:
        return store
    return urlunsplit(parts._replace(netloc=parts.netloc.replace(f":{parts.password}@", ":***@")))
