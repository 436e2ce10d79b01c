"""The public API routes: one per operation of the spec. Routes parse and serialise; services do the work."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from flask import Flask, jsonify, request
from ivh_mock.spec import mediatype

from ..clock import StoredClock
from ..errors import ApiError, ParameterFormatError, ParameterValueError, body_past, from_violations, refusal
from ..lifecycle.scenarios import HEADER, ScenarioError, scenario_of
from ..operations import OPERATIONS, Call
from ..store import JournalEntry, StaleRead, new_id
from . import envelope
from .auth import authenticate
from .guard import as_written, host_url

if TYPE_CHECKING:
    from ..context import MockContext


def register(app: Flask, ctx: MockContext) -> None:
    """Add one route per operation of the spec."""
    for operation in ctx.spec.operations.values():
        app.add_url_rule(
            operation.path,
            endpoint=operation.operation_id,
            view_func=_view(operation.operation_id, ctx),
            methods=[operation.method],
        )


def _view(operation_id: str, ctx: MockContext):
    service = OPERATIONS[operation_id]
    longest_id = envelope.longest_request_id(ctx.spec)

    def view():
        body = _read_body(ctx)
        request_id = envelope.request_id_of(body.value, longest_id) or new_id()
        request.environ[envelope.REQUEST_ID_KEY] = request_id  # for an answer the app's error handlers make
        query = _query()
        appkey = sys.intern(query.get("appkey", ""))  # kept by each task and journal entry: share it
        # a getprogress the compiled validator accepts names the task the store may read ahead (a refused one is
        # explained below, in its turn, and only once authenticated)
        valid = operation_id == "getprogress" and body.error is None and ctx.spec.surely_valid(operation_id, body.value)
        named = envelope.task_id_of(body.value) if valid else None
        made: dict[str, Any] = {}  # what the request's steps came to, for each answer (Call.made)
        while True:
            # the clock is read anew by each answer: one that what it read ahead changed before its write is
            # answered again, with nothing written (D70)
            with StoredClock.pinned():
                try:
                    return answer(body, request_id, query, appkey, valid, named, made)
                except StaleRead:
                    continue

    def answer(body: envelope.Body, request_id: str, query: dict[str, str], appkey: str, valid: bool,
               named: str | None, made: dict[str, Any]):
        code, message, payload, scenario_text = 0, "", {}, request.headers.get(HEADER)
        if scenario_text is not None:
            scenario_text = as_written(scenario_text)
        account = None
        journaled: list[str] = []

        def entry(task_id: str | None = None) -> JournalEntry:
            return JournalEntry(at=ctx.clock.now(), appkey=appkey, operation=operation_id, request_id=request_id,
                                code=code, message=message, body=body.value, task_id=task_id, scenario=scenario_text,
                                authenticated=account is not None)  # a refused appkey or signature makes no account

        def accepted(task) -> JournalEntry:  # kept by the store with the task it creates
            journaled.append(task.task_id)
            return entry(task.task_id)

        # a store across a network takes what the request needs from one round trip, or from what it saw before
        with ctx.store.read_ahead(appkey, tasks=operation_id == "phototovideonotrain", task_id=named):
            try:
                account = authenticate(operation_id, query, ctx)
                if body.error is not None:
                    raise body.error
                scenario_text = scenario_text or account.scenario
                scenario = _scenario(ctx, scenario_text)
                if scenario.reject is not None and scenario.scope == "all":
                    raise refusal(ctx.spec, scenario.reject, account.max_pending)
                # a getprogress the compiled validator accepted above needs no second look at the same body
                violations = [] if valid else ctx.spec.validate(operation_id, body.value)
                if violations:
                    raise from_violations(violations)
                base_url = _base_url(request.environ)
                call = Call(request_id, scenario, base_url, accepted, made)
                payload = service(ctx, account, body.value["Payload"], call)
                status = 200
            except ApiError as error:
                code, message, status = error.code, error.message, error.http_status
            if code != 0 or not journaled:  # not accepted, or accepted without a task the store journaled with
                ctx.store.record(entry(payload.get("TaskId")))
            return jsonify(envelope.envelope(code, message, request_id, payload)), status

    view.__name__ = operation_id
    return view


def _query() -> dict[str, str]:
    """The query parameters as `request.args` reads them (the first of a repeated name), as a plain dict: werkzeug's
    MultiDict cost a few percent of a getprogress call to build."""
    pairs = parse_qsl(request.query_string.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
    return dict(reversed(pairs))


_BASE_URLS: dict[tuple[Any, ...], str] = {}
_URL_PARTS = ("wsgi.url_scheme", "HTTP_HOST", "SERVER_NAME", "SERVER_PORT", "SCRIPT_NAME")


def _base_url(environ: dict[str, Any]) -> str:
    """scheme://host the request was sent to, kept by each task as its media host. Werkzeug works it out anew for
    every request (a few percent of a submission); the few that a mock ever sees are remembered."""
    key = tuple(environ.get(part) for part in _URL_PARTS)
    url = _BASE_URLS.get(key)
    if url is None:
        try:
            url = sys.intern(host_url(environ))  # one string shared by every task with this host
        except ValueError as error:
            raise ParameterFormatError(str(error)) from None
        if len(_BASE_URLS) < 256:  # Host headers are the caller's to choose: keep a bounded number
            _BASE_URLS[key] = url
    return url


def _scenario(ctx: MockContext, text: str):
    try:
        return scenario_of(ctx.spec, text)
    except ScenarioError as error:
        raise ParameterValueError(str(error)) from None


def _read_body(ctx: MockContext) -> envelope.Body:
    coding = envelope.coding_problem(request.environ.get("HTTP_CONTENT_ENCODING"))  # the environ: cheaper than headers
    if coding:
        return envelope.Body(error=ParameterFormatError(coding))
    limit = ctx.config.max_body_bytes
    too_large = envelope.Body(error=ParameterFormatError(body_past(limit)))
    length, stream = request.content_length, request.environ["wsgi.input"]
    if length is None and request.environ.get("wsgi.input_terminated"):
        # A chunked body has no length to check up front: read one byte past the cap to see if it is over.
        data = _read_at_most(stream, limit + 1)
        if len(data) > limit:
            return too_large
    elif length is not None and length > limit:
        return too_large
    else:  # the server's input holds the body: read it whole, and no more than its length (PEP 3333)
        data = _read_at_most(stream, length or 0)
    return envelope.read_body(*mediatype.read(request.headers.get("Content-Type", "")), data,
                              ctx.config.max_json_depth)


def _read_at_most(stream, size: int) -> bytes:
    parts, total = [], 0
    while total < size:
        part = stream.read(min(65536, size - total))
        if not part:
            break
        parts.append(part)
        total += len(part)
    return b"".join(parts)
