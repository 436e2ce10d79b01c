"""The control API under /__mock__/: steer the clock, inspect tasks, callbacks and requests, configure accounts;
and the dashboard at /__mock__/ui, which uses nothing but these routes and the public result URLs.

JSON in and out; errors are `{"error": {"message": ...}}` with an HTTP status. When the mock runs with a control
token, every route demands it (`Authorization: Bearer <token>` or `X-Mock-Token`).
"""

from __future__ import annotations

import dataclasses
import functools
import hmac
import math
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from flask import Flask, Response, jsonify, redirect, request, send_from_directory
from werkzeug.routing import PathConverter
from ivh_mock.spec import mediatype, read_yaml
from ivh_mock.spec.urls import host_problem
from ivh_mock.spec.validation import cut

from .. import deadline
from ..accounts import SETTINGS_SCHEMA, SHOWN, pace_problem, schema_problem
from ..clock import Held, MovableClock, moved_by
from ..lifecycle import trajectory, uploads
from ..lifecycle.scenarios import CATALOGUE, ScenarioError, setting
from ..media_out.results import FilesOf
from ..store import Backlog
from . import assets, envelope, guard, results
from .auth import account_of

if TYPE_CHECKING:
    from ..context import MockContext
    from ..lifecycle.callbacks import CallbackDispatcher
    from ..store import Task

PREFIX = "/__mock__"
UI_DIR = Path(__file__).with_name("ui")
UI_FILES = {"dashboard.js", "dashboard.css"}
SCHEMAS = read_yaml(Path(__file__).with_name("control.schema.yaml"))["$defs"]
# an appkey in a control URL's path or a reset's body, by the accounts' rule (the API's, D58): written once, there
SCHEMAS["reset"]["properties"]["appkey"] = SETTINGS_SCHEMA["properties"]["appkey"]
DEFAULT_LIMIT = 500
REAL_TIME_TOLERANCE = 1.0  # seconds a running clock may be off real time and still count as real time
RECENT_REQUESTS = 1000  # the journal entries that tell which accounts were active last
# The longest a move of the clock waits for the uploads it made due, so that the next poll sees their outcome: a
# healthy storage host takes milliseconds for a video, and one that hangs had held the move for up to 95 s.
SETTLE_SECONDS = 5.0


class ControlError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status, self.message = status, message


def is_control_path(path: str) -> bool:
    """Whether `path` is the control API's (its errors answer in its JSON, not the API's envelope)."""
    return path == PREFIX or path.startswith(PREFIX + "/")


class _Appkey(PathConverter):
    """An appkey in a control URL: any characters the API takes in one, a `/` (sent as %2F) and a control character
    (`a%0Ab`) among them; werkzeug's `path` stops at a line break, and such an account could not be read or set."""

    regex = "[^/][\\s\\S]*?"


def register(app: Flask, ctx: MockContext, dispatcher: CallbackDispatcher) -> None:
    routes = _Routes(ctx, dispatcher)
    app.url_map.converters["appkey"] = _Appkey
    for rule, name, methods in [
        ("/reset", "reset", ["POST"]),
        ("/clock", "get_clock", ["GET"]),
        ("/clock", "set_clock", ["POST"]),
        ("/tasks", "tasks", ["GET"]),
        ("/tasks/<task_id>", "task", ["GET"]),
        ("/callbacks", "callbacks", ["GET"]),
        ("/requests", "requests", ["GET"]),
        ("/accounts", "accounts", ["GET"]),
        ("/accounts/<appkey:appkey>", "account", ["GET"]),
        ("/accounts/<appkey:appkey>", "put_account", ["PUT"]),
        ("/scenarios", "scenarios", ["GET"]),
    ]:
        app.add_url_rule(PREFIX + rule, f"control_{name}", routes.guarded(getattr(routes, name)), methods=methods)
    # The dashboard: its page demands the token like every control route (a browser may pass it as ?token=);
    # its script and style hold no data and are served to anyone.
    app.add_url_rule(PREFIX + "/ui", "control_ui", routes.guarded(routes.ui, query_token=True), methods=["GET"])
    app.add_url_rule(PREFIX + "/ui/<name>", "control_ui_file", routes.ui_file, methods=["GET"])
    assets.register(app, ctx, routes.guarded, ControlError)
    for rule, name in (("/", "root"), (PREFIX, "control_root"), (PREFIX + "/", "control_root_slash"),
                       (PREFIX + "/ui/", "control_ui_slash")):  # the banner names the control API by its prefix
        app.add_url_rule(rule, name, lambda: redirect(PREFIX + "/ui" + _query_suffix()), methods=["GET"])


class _Routes:
    def __init__(self, ctx: MockContext, dispatcher: CallbackDispatcher):
        self.ctx, self.dispatcher = ctx, dispatcher

    def guarded(self, handler, query_token: bool = False, open_to_all: bool = False):
        """Wrap a view: refuse other sites' pages (by Host and Origin, DECISIONS.md D57) and demand the control
        token, unless `open_to_all` (files anyone may fetch); answer ControlError in JSON."""
        config = self.ctx.config
        token = config.control_token
        public = urlsplit(config.public_url or "").hostname
        allowed_hosts = (*config.allowed_hosts, public or "")

        def view(**kwargs):
            try:
                if not open_to_all:
                    try:  # a Host that names no host (`[::1`, `h:99999`, empty) is refused as the API's routes do
                        guard.host_url(request.environ)
                    except ValueError as refused:
                        raise ControlError(400, str(refused)) from None
                    problem = (host_problem(guard.sent_host(request.environ), allowed_hosts)
                               or guard.origin_problem(request.method, request.headers.get("Origin"),
                                                       (request.host_url, config.public_url)))
                    if problem:
                        raise ControlError(403, problem)
                refused = None if token is None or open_to_all else _token_problem(token, query_token)
                if refused:
                    raise ControlError(401, refused)
                return handler(**kwargs)
            except ControlError as error:
                response = error_response(error.status, error.message)
                if error.status == 401:  # the scheme the token goes in (RFC 9110 11.6.1 asks every 401 to say it)
                    response.headers["WWW-Authenticate"] = 'Bearer realm="ivh-mock control API"'
                return response

        view.__name__ = handler.__name__
        return view

    def _body(self, schema: dict[str, Any], optional: bool = False) -> dict[str, Any]:
        """Return the request's JSON body, checked against `schema`; with `optional`, no body at all reads as {}.

        The body is decoded as strictly as the API's (no NaN, Infinity, out-of-range numbers, lone surrogates or deep
        nesting), so nothing a control route keeps can break a later answer. Only `application/json` is read: a
        browser can send a form or text/plain across sites without asking, JSON it cannot (DECISIONS.md D57)."""
        data = request.get_data(cache=False)
        mimetype, charset = mediatype.read(request.headers.get("Content-Type", ""))  # as the API reads it (D07)
        if mimetype != envelope.JSON_MIMETYPE:
            if request.content_type or data:
                raise ControlError(415, f"the body must be JSON sent as Content-Type: application/json, "
                                        f"got {mimetype or 'no Content-Type'!r}")
            if optional:
                return {}
            raise ControlError(400, "the body must be a JSON object (Content-Type: application/json)")
        problem = (envelope.charset_problem(charset)
                   or envelope.coding_problem(request.headers.get("Content-Encoding")))
        if problem:
            raise ControlError(415, problem)
        if optional and not data.strip():
            return {}
        try:
            body = envelope.parse_json(data, self.ctx.config.max_json_depth)
        except envelope.MalformedJson as error:
            raise ControlError(400, str(error)) from None
        problem = schema_problem(schema, body)
        if problem is not None:
            where, message = problem
            raise ControlError(400, f"body{'/' + where if where else ''}: {message}")
        return body

    # -- state ------------------------------------------------------------------------------------------------
    def reset(self):
        body = self._body(SCHEMAS["reset"], optional=True)
        everything = "appkey" not in body and isinstance(self.ctx.clock, MovableClock)
        if everything:  # the clock too returns to real time, before the store forgets: a submission written between
            self.ctx.clock.restart(let_go=True)  # the two is forgotten, and one written after finds the clock moved
            # since it read it, and plans again (the store's check), not on a clock ten days on that a reset had left
            # behind; held by no one (a hold whose run is gone goes too)
        appkey = body.get("appkey")
        # the files of the tasks it removes; of every task, their names alone (each task's record decoded, a reset of
        # everything took 1.7 s on a SQLite store of 50,000)
        removed = self.ctx.store.tasks(appkey) if appkey is not None else \
            [FilesOf(photo, audio, video) for _, photo, audio, video in self.ctx.store.media_refs()]
        self.ctx.store.reset(appkey)
        if everything:
            self.dispatcher.wake()
        results.sweep(self.ctx, removed)
        return jsonify({"reset": body.get("appkey", "all")})

    def get_clock(self):
        return jsonify(self._clock_view())

    def set_clock(self):
        body = self._body(SCHEMAS["clock"])
        clock = self.ctx.clock
        if not isinstance(clock, MovableClock):
            raise ControlError(409, "this mock runs on a clock that cannot be moved")
        by = body.get("by")
        if by is not None and not (by.isprintable() and by.strip()):  # printed by the suite, the banner, the page
            raise ControlError(400, f"body/by: {cut(by)!r} is no name: printable characters, not only blanks")
        if by is None and ("hold" in body or "release" in body):
            asked = "hold" if "hold" in body else "release"
            raise ControlError(400, f"body/{asked} needs body/by: who holds the clock")
        latest = SCHEMAS["clock"]["properties"]["set"]["maximum"]
        if "advance" in body:  # from where the moves before it leave the clock (a `set` is within range already)
            start = body["set"] if "set" in body else clock.wall() if body.get("real") else clock.now()
            if start + body["advance"] > latest:  # refused before any move of the body is made, or its hold taken
                raise ControlError(400, f"body/advance: {body['advance']} would move the clock past {latest} "
                                        f"({iso_time(latest)}), the latest time it takes")
        # each move refused while another than `by` holds the clock, checked in the same step as the move
        with moved_by(by):
            try:
                if "hold" in body:  # taken first, in one step with its check: of two runs at once, one holds it
                    clock.hold(by, body["hold"])
                if body.get("real"):  # in this order, so that {"set": t, "frozen": true} stops at t exactly
                    clock.restart()
                if "frozen" in body:
                    clock.freeze(body["frozen"])
                if "set" in body:
                    clock.set(body["set"])
                if "advance" in body:  # checked above, from where the body's own moves leave the clock: a running
                    clock.advance(body["advance"], math.inf)  # one has moved on since, a refusal now would follow
                if body.get("release"):
                    clock.release(by)
            except Held as held:  # (another's hold taken between two moves of the body stops the rest)
                raise ControlError(409, str(held)) from None
        self.dispatcher.wake()
        pending = self._settle()
        results.sweep(self.ctx)
        return jsonify({**self._clock_view(), "uploads_pending": pending})

    def _settle(self) -> int:
        """Wait for the uploads due by the clock, SETTLE_SECONDS at most, so that the next poll sees their outcome;
        return how many tasks' uploads are still to be recorded. The wait holds one of the slots of requests that wait
        on something slow (D44): moves while a storage host hangs never hold a worker's last threads. With no slot
        free within a quarter of a second, it does not wait."""
        if not self.dispatcher.uploads_pending():  # the common case: no slot taken, the loop not handed over
            return 0
        try:
            with deadline.holding(self.ctx.waits, _NoSlot):
                self.dispatcher.settle(SETTLE_SECONDS)
        except _NoSlot:
            pass
        return self.dispatcher.uploads_pending()

    def _clock_view(self) -> dict[str, Any]:
        return clock_view(self.ctx.clock)

    # -- inspection -------------------------------------------------------------------------------------------
    def tasks(self):
        now = self.ctx.clock.now()
        found = self.ctx.store.tasks(_listed_appkey(), limit=_limit())
        unstarted = functools.cache(lambda appkey: self.ctx.store.unstarted(appkey, now))  # once per account
        return jsonify({"tasks": [self._summary(task, now, unstarted) for task in found]})

    def task(self, task_id: str):
        task = self.ctx.store.get_task(task_id)
        if task is None:
            raise ControlError(404, f"no task {cut(task_id, SHOWN)!r}")  # (an id of 20,000 characters came back whole)
        now = self.ctx.clock.now()
        upload = trajectory.upload_of(self.ctx, task)
        return jsonify({
            **self._summary(task, now),
            "request": task.payload,
            "request_id": task.request_id,
            "concurrency_type": task.concurrency_type,
            "plan": {"start_at": _time(task.start_at), "finish_at": _time(task.finish_at),
                     "render_seconds": task.render_seconds, "outcome": task.outcome, "fail_code": task.fail_code},
            "timeline": trajectory.timeline(task, now, upload),
            "progress": trajectory.report(self.ctx, task, now),
            "callbacks": [dataclasses.asdict(a) for a in self.ctx.store.callbacks_of(task)],
            "uploads": _uploads_view(task, upload),
        })

    def _summary(self, task: Task, now: float, unstarted=None) -> dict[str, Any]:
        report = trajectory.report(self.ctx, task, now, unstarted)
        return {"task_id": task.task_id, "appkey": task.appkey, "status": report["Status"],
                "progress": report["Progress"], "array_count": report["ArrayCount"],
                "duration_ms": task.duration_ms, "driver_type": task.payload["DriverType"],
                "scenario": task.scenario, "submitted_at": task.submitted_at}

    def callbacks(self):
        attempts = self.ctx.store.callbacks(_listed_appkey(), _limit())
        return jsonify({"callbacks": [dataclasses.asdict(a) for a in attempts]})

    def requests(self):
        entries = self.ctx.store.journal(_listed_appkey(), _limit())
        return jsonify({"requests": [{**dataclasses.asdict(e), "verdict": e.verdict} for e in entries]})

    # -- accounts ---------------------------------------------------------------------------------------------
    def accounts(self):
        listed = set(self.ctx.accounts.listed())
        keys = sorted(listed | set(self.ctx.store.appkeys()))
        if self.ctx.accounts.strict:  # a store kept from a run without an accounts file holds accounts it refuses
            keys = [key for key in keys if key in listed or account_of(self.ctx, key) is not None]
        total = len(keys)
        if "limit" in request.args:  # the most recently active first (what the dashboard polls every second)
            recent = [e.appkey for e in reversed(self.ctx.store.journal(limit=RECENT_REQUESTS)) if e.authenticated]
            known = set(keys)
            keys = list(dict.fromkeys([key for key in recent if key in known] + keys))
        # without a limit, the first 500 by appkey, as every list route: each account's view reads its tasks, and a
        # store of 1,000 accounts and 50,000 tasks took 1.5 s to list whole
        views = [self._account_view(key) for key in keys[:_limit()]]
        return jsonify({"strict": self.ctx.accounts.strict, "accounts": [v for v in views if v], "total": total})

    def account(self, appkey: str):
        _check_appkey(appkey)
        view = self._account_view(appkey)
        if view is None:
            raise ControlError(404, f"no account {appkey!r} (strict accounts mode)")
        return jsonify(view)

    def put_account(self, appkey: str):
        _check_appkey(appkey)
        body = self._body(SETTINGS_SCHEMA)
        problem = pace_problem(body)
        if problem:
            raise ControlError(400, problem)
        if body.get("appkey", appkey) != appkey:
            raise ControlError(400, f"body appkey {body['appkey']!r} differs from the URL's {appkey!r}")
        if "scenario" in body and body["scenario"] is None:  # back to the accounts file's, else the server's: kept
            below = self.ctx.accounts.get(appkey)  # as its name (a mock of before on the same store reads no null)
            body["scenario"] = below.scenario if below is not None else self.ctx.accounts.defaults["scenario"]
        elif "scenario" in body:
            try:
                body["scenario"] = setting(self.ctx.spec, body["scenario"])
            except ScenarioError as error:
                raise ControlError(400, f"body/scenario: {error}") from None
        if account_of(self.ctx, appkey) is None and "accesstoken" not in body:
            raise ControlError(400, f"a new account {appkey!r} needs an accesstoken (strict accounts mode)")
        self.ctx.store.put_account_settings(appkey, {k: _no_minus_zero(v) for k, v in body.items() if k != "appkey"})
        return jsonify(self._account_view(appkey))

    def _account_view(self, appkey: str) -> dict[str, Any] | None:
        account = account_of(self.ctx, appkey)
        if account is None:
            return None
        now = self.ctx.clock.now()
        tasks = self.ctx.store.tasks(appkey)
        states = [trajectory.state(self.ctx, task, now) for task in tasks]
        left = (None if account.hourly_package_seconds is None
                else Backlog.of(tasks, now).package_left_ms(account.hourly_package_seconds) / 1000)
        return {**account.view(), "slots": account.slots, "balance_left_seconds": left,
                "tasks": {state: states.count(state) for state in ("COMMIT", "MAKING", "SUCCESS", "FAIL")}}

    def scenarios(self):
        return jsonify({"header": "X-Mock-Scenario", "scenarios": CATALOGUE})

    def ui(self):
        page = send_from_directory(UI_DIR, "index.html", max_age=0)
        # no other site may show it in a frame: a page framing it could have a visitor click its buttons (Reset,
        # Advance), which the Origin check lets through, the dashboard's own requests being same-origin (D57)
        page.headers["X-Frame-Options"] = "DENY"
        page.headers["Content-Security-Policy"] = "frame-ancestors 'none'"
        return page

    def ui_file(self, name: str):
        if name not in UI_FILES:
            return error_response(404, f"no dashboard file {cut(name, SHOWN)!r}")
        return send_from_directory(UI_DIR, name, max_age=0)


def _no_minus_zero(value: Any) -> Any:
    """A setting as kept: -0.0 (a number the schema takes) as 0.0, which the views and the dashboard show."""
    if isinstance(value, dict):
        return {key: _no_minus_zero(item) for key, item in value.items()}
    return value + 0.0 if type(value) is float else value


class _NoSlot(Exception):
    """Every slot of the requests that wait on something slow stayed taken (deadline.holding gives it the limit)."""


def error_response(status: int, message: str) -> Response:
    """The control API's error answer: `{"error": {"message": ...}}`."""
    response = jsonify({"error": {"message": message}})
    response.status_code = status
    return response


def clock_view(clock) -> dict[str, Any]:
    """What GET /__mock__/clock answers: the time, whether it is frozen, and how far it is from real time."""
    now = clock.now()
    offset = round(now - clock.wall(), 3) + 0.0  # + 0.0: never -0.0
    frozen = getattr(clock, "frozen", False)
    view = {"now": now, "iso": iso_time(now), "frozen": frozen,
            "offset": offset, "real": not frozen and abs(offset) < REAL_TIME_TOLERANCE}
    holder = clock.holder() if isinstance(clock, MovableClock) else None
    if holder is not None:  # only while held: a run steering it (the contract suite), and until when in real time
        view["held"] = {**holder, "iso": iso_time(holder["until"])}
    return view


def _check_appkey(appkey: str, sent: str | None = None) -> None:
    """Refuse an appkey in a control URL longer than an appkey may be (the body's rule for one, the API's), or one
    whose bytes are no UTF-8: werkzeug reads each such byte as U+FFFD, and `ab%FFcd` and `ab%FEcd` were one account.
    `sent` is the appkey as sent, percent-encoded: by default, the URL's path."""
    if sent is None:
        sent = request.environ.get("REQUEST_URI", "").split("?", 1)[0]  # as sent: PATH_INFO may be decoded already
    try:
        unquote_to_bytes(sent.encode("latin-1")).decode("utf-8")
    except UnicodeError:
        raise ControlError(400, "the URL's appkey is not UTF-8 text: percent-encode its UTF-8 bytes") from None
    longest = SETTINGS_SCHEMA["properties"]["appkey"]["maxLength"]
    if len(appkey) > longest:
        raise ControlError(400, f"the URL's appkey is {len(appkey)} characters long; an appkey has at most {longest}")


NEEDS_TOKEN = "the control API needs the control token (Authorization: Bearer ...)"
# what a browser, which sends no header, is told: the token goes in the dashboard's URL
UI_NEEDS_TOKEN = (f"the dashboard needs the control token `ivh-mock serve` printed: open {PREFIX}/ui?token=... "
                  f"(or send Authorization: Bearer ...)")


WRONG_TOKEN = "the control token sent is not this server's (the --control-token `ivh-mock serve` printed)"


def _token_problem(token: str, query_token: bool = False) -> str | None:
    """Why the request does not carry the control token `token` (nothing sent, the Authorization header in another
    scheme, another token: each said as it is, a wrong token had read as a missing one), or None when it does."""
    given, where = request.headers.get("X-Mock-Token"), "X-Mock-Token"  # read first: with both, it is the one read
    authorization = request.headers.get("Authorization", "").strip()
    if not given:  # only the Bearer scheme carries the token: a bare `Authorization: <token>` is not a credential
        scheme, _, credentials = authorization.partition(" ")
        given, where = (credentials.strip() if scheme.lower() == "bearer" else ""), "Authorization"
    if not given and query_token:
        given, where = request.args.get("token", ""), "the URL's token"
    if not given:
        if authorization[:6].lower() == "bearer" and not authorization[6:7].isalnum():  # `Bearer`, `Bearer<TAB>t`
            return ("the Authorization header carries no token after Bearer and one space (Authorization: Bearer "
                    "<token>)")
        if authorization:
            return ("the control token goes in Authorization: Bearer <token>; the Authorization header sent is in "
                    "another scheme")
        return UI_NEEDS_TOKEN if query_token else NEEDS_TOKEN
    return None if hmac.compare_digest(given.encode(), token.encode()) else f"{WRONG_TOKEN}, in {where}"


def _query_suffix() -> str:
    query = request.query_string.decode("latin-1")
    return f"?{query}" if query else ""


def _listed_appkey() -> str | None:
    """A list route's `?appkey=`, held to the rule of one in a URL's path (`_check_appkey`): one whose bytes are no
    UTF-8 had been answered an empty list, as an account nobody has."""
    appkey = request.args.get("appkey")
    if appkey is not None:  # the first given, as request.args reads it
        pairs = (pair.partition("=") for pair in request.query_string.decode("latin-1").split("&"))
        sent = next((value for name, _, value in pairs if unquote(name.replace("+", " ")) == "appkey"), "")
        _check_appkey(appkey, sent.replace("+", " "))
    return appkey


def _limit() -> int:
    """The request's `limit`, from 1; one past the largest integer every store takes (a signed 64-bit one: SQLite's
    LIMIT, Redis's list indexes, itertools.islice) is that integer, as good as no limit. 0 and below are refused
    (they had been read as 1, unsaid)."""
    text = request.args.get("limit", str(DEFAULT_LIMIT))
    if not _WHOLE_NUMBER.fullmatch(text):  # int() also takes "1_000", " 5" and other scripts' digits ("５")
        raise ControlError(400, f"limit must be a whole number in ASCII digits, got {text[:40]!r}")
    digits = text.lstrip("+-").lstrip("0")  # int() refuses more than 4300 digits, leading zeros too (a 500)
    if text.startswith("-") or not digits:
        raise ControlError(400, f"limit must be 1 or more, got {text[:40]!r}")
    return sys.maxsize if len(digits) > 19 else min(int(digits), sys.maxsize)


_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")


def _uploads_view(task: Task, upload) -> dict[str, Any] | None:
    """The task's uploads to the caller's storage: where each file goes, and once done what each URL answered."""
    if not task.uploads:
        return None
    if upload is None:
        return {"state": "pending", "files": [{"field": field, "url": uploads.shown(url), "file": kind}
                                              for field, url, kind in task.uploads]}
    return {"state": "done" if upload.ok else "failed", "at": upload.at, "files": upload.files,
            "fail_message": upload.fail_message}


def iso_time(when: float, timespec: str = "auto") -> str | None:
    """`when` in ISO 8601, or None past the year 9999 (a running clock set close to the latest time it takes
    reaches it): ISO 8601 and Python's datetime end there, and the clock must still be shown and moved back."""
    try:
        return datetime.fromtimestamp(when, timezone.utc).isoformat(timespec=timespec)
    except (ValueError, OverflowError, OSError):
        return None


def _time(value: float) -> float | None:
    return None if value == float("inf") else value
