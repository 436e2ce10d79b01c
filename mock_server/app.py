"""The application factory: `create_app(config, store=..., clock=...)` builds one independent mock."""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from typing import Any, Mapping

import orjson
from flask import Flask, Response, jsonify, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadHost, HTTPException, RequestedRangeNotSatisfiable
from werkzeug.routing import Rule

from ivh_mock import spec as spec_module
from ivh_mock.spec.validation import cut

from .accounts import Accounts
from .clock import Clock, StoredClock
from .config import Config
from .context import MockContext
from .errors import ApiError, InternalError, NoSuchRoute, ParameterFormatError, body_past
from .lifecycle.callbacks import CallbackDispatcher
from .lifecycle import scenarios
from .lifecycle.uploads import Uploader
from .media_in.assets import PREFIX as ASSETS, AssetHost
from .deadline import Waits
from .media_in.fetch import Fetcher, Limits
from .media_in.intake import Intake
from .media_out.render import Renderer
from .media_out.results import Retention
from .routes import api, control, envelope, results
from .routes.guard import host_url, sent_host
from .store import JournalLimits, Store, new_id, open_store, outage_of
from .store.base import STORAGE_FIELDS
from .store.blobs import Blobs
from .timbres import catalogue

log = logging.getLogger("ivh_mock")
PATH_SHOWN = 200  # characters of a path that no route takes quoted in the answer


def create_app(config: Config | Mapping[str, Any] | None = None, *, store: Store | str | None = None,
               clock: Clock | None = None, scratch_in: str | os.PathLike[str] | None = None) -> Flask:
    """Build a mock: `config` (a Config or a mapping of its fields), a store (a Store, or its URL as `config.store`
    takes it: memory, sqlite:PATH, redis://...; default: `config.store`) and a clock
    (default: a StoredClock, kept in the store and running in step with real time, which the control API can freeze,
    set and advance for every worker sharing the store).

    With `config.background` (the default) a callback dispatcher thread runs; `stop_app(app)` stops it, as a stop
    should, and removes the scratch folder the app made when no `data_dir` was given (in `scratch_in`, else in the
    system's temporary folder)."""
    if not isinstance(config, Config):
        config = Config.from_mapping(config)
    contract = spec_module.load(config.spec_dir)
    try:
        default_scenario = scenarios.setting(contract, config.default_scenario)
    except scenarios.ScenarioError as error:
        raise ValueError(f"default_scenario: {error}") from None
    defaults = {
        "accesstoken": config.default_accesstoken,
        "concurrency": contract.service["defaultConcurrency"],
        "exclusive_concurrency": config.exclusive_concurrency,
        "hourly_package_seconds": config.hourly_package_seconds,
        "max_pending": config.max_pending,
        "scenario": default_scenario,
    }
    accounts = (Accounts.from_file(config.accounts_file, defaults, functools.partial(scenarios.setting, contract))
                if config.accounts_file else Accounts(defaults))
    try:
        profile = contract.profile(config.profile)
    except KeyError as error:
        raise ValueError(f"profile: {error.args[0]}") from None
    scratch = None if config.data_dir else tempfile.TemporaryDirectory(prefix="ivh-mock-", dir=scratch_in,
                                                                       ignore_cleanup_errors=True)
    try:  # a refused start leaves no scratch folder (a ResourceWarning, and the folder itself should the process die)
        blobs = Blobs(config.data_dir or scratch.name)
        if store is None or isinstance(store, str):  # a store's URL, as config.store and `ivh-mock serve --store` take
            store = open_store(config.store if store is None else store, JournalLimits(
                config.journal_limit, config.journal_total_limit, config.journal_total_bytes,
                config.journal_body_bytes))
    except BaseException:
        if scratch is not None:
            scratch.cleanup()
        raise
    assets = AssetHost(blobs, config, profile)
    waits = Waits(config.slow_waits) if config.slow_waits else None
    limits = Limits(config.fetch_connect_timeout_seconds, config.fetch_total_timeout_seconds, config.fetch_redirects)
    fetcher = Fetcher(limits, waits)
    ctx = MockContext(
        spec=contract,
        config=config,
        profile=profile,
        store=store,
        clock=clock if clock is not None else StoredClock(store),
        accounts=accounts,
        timbres={timbre["TimbreKey"]: timbre for timbre in catalogue(contract)},
        blobs=blobs,
        intake=Intake(fetcher, assets, blobs, profile),
        assets=assets,
        renderer=Renderer(blobs, waits),
        retention=Retention(store, blobs, contract.service["retentionSeconds"]),
        waits=waits,
    )

    app = _MockFlask(__name__, static_folder=None)  # no /static route: the dashboard has its own
    app.url_map.merge_slashes = False  # `a//b` is no route (404 in its format), not an HTML redirect to `a/b`
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.extensions["ivh_mock"] = ctx
    app.wsgi_app = _clock_pinned_per_request(app.wsgi_app)
    app.extensions["ivh_mock_scratch"] = scratch  # the temporary data directory lives as long as the app
    api.register(app, ctx)
    results.register(app, ctx)
    dispatcher = CallbackDispatcher(ctx, uploader=Uploader(ctx, limits))  # uploads obey the download rules
    app.extensions["ivh_mock_dispatcher"] = dispatcher
    control.register(app, ctx, dispatcher)
    _register_error_handlers(app, ctx)
    if config.background:
        dispatcher.start()
    return app


class _LazyBuildRule(Rule):
    """A URL rule that writes its URL builder (code werkzeug generates and compiles for `url_for`) on first use, not
    when the route is registered: that code generation was four fifths of the time `create_app` took, which every
    test that builds a mock pays, while the mock itself never builds a URL from a rule."""

    def _compile_builder(self, append_unknown: bool = True):
        compiled = None

        def build(rule, *args, **kwargs):
            nonlocal compiled
            if compiled is None:
                compiled = Rule._compile_builder(rule, append_unknown)
            return compiled(rule, *args, **kwargs)

        return build


class _JSONProvider(DefaultJSONProvider):
    """Answers written by orjson: the text Flask's own provider writes (UTF-8, keys in their order, compact, a final
    newline) in a fraction of the time; what orjson does not take (an integer past 64 bits, a key that is not a
    string) and debug mode's indented output go through Flask's."""

    sort_keys = False
    ensure_ascii = False

    def response(self, *args: Any, **kwargs: Any):
        if self._app.debug or self.compact is False:
            return super().response(*args, **kwargs)
        try:
            body = orjson.dumps(self._prepare_response_obj(args, kwargs), option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:
            return super().response(*args, **kwargs)
        return self._app.response_class(body, mimetype=self.mimetype)


def stop_app(app: Flask) -> None:
    """Stop a mock's background work as a stop should: no callback or upload is claimed any more, and the ones under
    way end (each within its own limit) and are recorded, so none is sent again by the next start; then its scratch
    folder, if it made one, is removed."""
    app.extensions["ivh_mock_dispatcher"].stop()
    app.extensions["ivh_mock"].renderer.stop()  # a render under way ends before its folder goes
    scratch = app.extensions.get("ivh_mock_scratch")
    if scratch is not None:  # else it is removed when collected, with a ResourceWarning
        scratch.cleanup()


STOP_MARGIN_SECONDS = 5.0  # beyond the longest exchange under way, what a stopping worker has to record it


def stop_seconds(config: Config) -> float:
    """The longest `stop_app` may take: the longer of a callback delivery (its timeout) and a task's uploads (each
    file's deadline), and a margin to record them (D49). A server that gives its stop less kills deliveries that
    could still succeed: unrecorded, they are sent again after the restart."""
    uploads = len(STORAGE_FIELDS) * config.fetch_total_timeout_seconds
    return max(config.callback_timeout_seconds, uploads) + STOP_MARGIN_SECONDS


def _clock_pinned_per_request(wsgi_app):
    """Each request reads one time of the stored clock (StoredClock.pinned). And a request-target with no path
    (`GET ?a`) is read as `/`, as one without its leading slash (`GET a`) is read as `/a`: werkzeug answered it
    with a redirect of its own (308) to `/` on the Host the client sent."""
    def pinned(environ, start_response):
        if not environ.get("PATH_INFO"):
            environ["PATH_INFO"] = "/"
        with StoredClock.pinned():
            return wsgi_app(environ, start_response)
    return pinned


def largest_body(config: Config, path: str) -> int:
    """The largest request body the route at `path` takes: an upload to the asset host `asset_max_bytes`, any other
    `max_body_bytes` (Flask's MAX_CONTENT_LENGTH; the API refuses more with 100003). A server need keep no more of a
    body than a byte past it: the route refuses it as it refuses the whole (serving/server.py, D76)."""
    return config.asset_max_bytes if path == ASSETS else config.max_body_bytes


def _register_error_handlers(app: Flask, ctx: MockContext) -> None:
    """Answer every error in the format of the route family it hit: the API's envelope, the control API's
    `{"error": {"message"}}`, or the object store's XML for result URLs; a 405 names the allowed methods (Allow)."""
    longest_id = envelope.longest_request_id(ctx.spec)

    def echoed_request_id() -> str:
        """The RequestID of an envelope the app's handlers make: the request's own when its body names one (D03,
        D14), also for a body no API route read (a wrong path) or one a store failed to answer (-101000)."""
        known = request.environ.get(envelope.REQUEST_ID_KEY)
        if known is not None:
            return known
        length = request.content_length
        if length is not None and 0 < length <= ctx.config.max_body_bytes:
            try:
                body = envelope.parse_json(request.get_data(cache=True), ctx.config.max_json_depth)
            except envelope.MalformedJson:
                body = None
            return envelope.request_id_of(body, longest_id) or new_id()
        return new_id()

    def render(error: ApiError, status: int) -> Response:
        if control.is_control_path(request.path):
            return control.error_response(status, error.message)
        if request.path.startswith(results.PREFIX):
            return results.error_response(status, _S3_CODES.get(status, "InvalidRequest"), error.message)
        response = jsonify(envelope.envelope(error.code, error.message, echoed_request_id()))
        response.status_code = status
        return response

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        status = exc.code or 400
        asked = f"{cut(request.method)} {cut(request.path, PATH_SHOWN)}"  # as sent: cut, never echoed whole
        if exc.code in (404, 405) and control.is_control_path(request.path):
            error = NoSuchRoute(f"no control route {asked}; the README's control API section lists them")
        elif exc.code in (404, 405) and request.path.startswith(results.PREFIX):  # answered as an object store does
            error = NoSuchRoute(f"{asked}: a result file is read with GET or HEAD" if exc.code == 405
                                else f"no result file at {cut(request.path, PATH_SHOWN)}")
        elif exc.code in (404, 405):
            operations = ", ".join(f"{op.method} {op.path}" for op in ctx.spec.operations.values())
            error = NoSuchRoute(f"no API operation {asked}; the API has {operations}")
        elif isinstance(exc, BadHost):  # werkzeug read no host in the Host header (`a..b`): it names it (D75)
            try:
                host_url(request.environ)
                problem = f"the Host header {sent_host(request.environ)[:100]!r} is not a host name"
            except ValueError as refused:
                problem = str(refused)
            error = ParameterFormatError(problem)
            if not control.is_control_path(request.path) and not request.path.startswith(results.PREFIX):
                status = error.http_status  # the API's refusal, as when its own route finds the header (D01)
        elif exc.code == 412:  # a result URL's If-Match or If-Unmodified-Since (routes/sendfile.py)
            error = ParameterFormatError(exc.description or "precondition failed")
        elif exc.code == 413:  # a body past the route's limit, found by werkzeug (chunked, or a control route's)
            error = ParameterFormatError(body_past(largest_body(ctx.config, request.path)))
        else:  # named by its status: a 416 is no bad request
            error = ParameterFormatError(f"{'bad request' if status == 400 else exc.name}: {exc.description}")
        response = render(error, status)
        allowed = getattr(exc, "valid_methods", None)
        if allowed:
            response.headers["Allow"] = ", ".join(allowed)
        if isinstance(exc, RequestedRangeNotSatisfiable) and exc.length is not None:  # the file's size (RFC 9110)
            response.headers["Content-Range"] = f"{exc.units} */{exc.length}"
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        # a store that cannot be written in time (StoreBusy) or reached at all: not the mock's fault, and no
        # traceback helps; the message says what, the log says it in one line
        outage = outage_of(ctx.store, exc)
        if outage:
            log.warning("%s %s answered -101000: %s", request.method, request.path, outage)
            # "retry", but not for a submission that may have been kept, nor to a store that would refuse it the same
            advice = getattr(exc, "advice", "retry")
            return render(InternalError(f"internal error in ivh-mock: {outage}{'; ' + advice if advice else ''}"),
                          InternalError.http_status)
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return render(InternalError("internal error in ivh-mock; the server log has the details"),
                      InternalError.http_status)


_S3_CODES = {404: "NoSuchKey", 405: "MethodNotAllowed", 412: "PreconditionFailed", 413: "EntityTooLarge",
              416: "InvalidRange", 500: "InternalError", 503: "SlowDown"}


class _MockFlask(Flask):
    url_rule_class = _LazyBuildRule
    json_provider_class = _JSONProvider

    def make_default_options_response(self) -> Response:
        """Answer OPTIONS with 204 and the route's methods in Allow (Flask's default is an empty HTML 200)."""
        response = super().make_default_options_response()
        response.status_code = 204
        del response.headers["Content-Type"]
        return response
