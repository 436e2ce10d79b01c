"""`ivh-mock serve`: run the mock over HTTP."""

from __future__ import annotations

import argparse
import ipaddress
import secrets
import signal
import sys

from werkzeug.serving import make_server

import spec as spec_module

from .accounts import AccountsFileError
from .app import create_app
from .config import DEFAULT_ACCESSTOKEN, Config


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
    timing = serve.add_argument_group("task timing")
    timing.add_argument("--queue-seconds", type=_seconds, default=Config.queue_seconds,
                        help="least time a task waits in COMMIT (default: %(default)s)")
    timing.add_argument("--render-speed", type=_seconds, default=Config.render_speed,
                        help="render time per second of output video (default: %(default)s)")
    timing.add_argument("--render-startup", type=_seconds, default=Config.render_startup_seconds,
                        help="fixed render start-up in seconds (default: %(default)s)")
    serve.add_argument("--public-url", default=None,
                       help="scheme://host[:port] media URLs point to (default: the host each request was sent to)")
    serve.add_argument("--data-dir", default="data",
                       help="where fetched media, uploads and rendered videos are kept (default: %(default)s)")
    serve.add_argument("--control-token", default=None,
                       help="token the control API (/__mock__/) demands; generated when listening beyond loopback")
    return parser


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 86400")
    return value


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    token = args.control_token
    if token is None and not _is_loopback(args.host):
        token = secrets.token_urlsafe(18)  # beyond loopback the control API is never open
    config = Config(profile=args.profile, accounts_file=args.accounts, default_accesstoken=args.default_accesstoken,
                    queue_seconds=args.queue_seconds, render_speed=args.render_speed,
                    render_startup_seconds=args.render_startup, public_url=args.public_url, control_token=token,
                    data_dir=args.data_dir)
    try:
        app = create_app(config)
    except AccountsFileError as error:
        print(f"ivh-mock: {error}", file=sys.stderr)
        return 2
    try:
        server = make_server(args.host, args.port, app, threaded=True)
    except (OSError, SystemExit) as error:  # werkzeug exits by itself when the port is taken
        reason = getattr(error, "strerror", None) or "address in use or not available"
        print(f"ivh-mock: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # stop as cleanly on SIGTERM as on Ctrl-C, from the first banner line
    ctx = app.extensions["ivh_mock"]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"ivh-mock listening on http://{host}:{server.server_port}", flush=True)
    print(f"  profile:     {config.profile or ctx.spec.default_profile}", flush=True)
    print(f"  credentials: {ctx.accounts.describe()}", flush=True)
    control = f"token {token!r} (Authorization: Bearer ...)" if token else "open (loopback only)"
    print(f"  control API: http://{host}:{server.server_port}/__mock__/ {control}", flush=True)
    print(f"  data:        {args.data_dir}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
