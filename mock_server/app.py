"""The application factory: `create_app(config, store=..., clock=...)` builds one independent mock."""

from __future__ import annotations

import logging
import sys
import tempfile
from dataclasses import dataclass, field
from typing import Any, Mapping

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

import spec as spec_module
from spec import Spec

from . import api, control, envelope, media
from .accounts import Account, Accounts
from .assets import AssetHost
from .blobs import Blobs
from .callbacks import CallbackDispatcher
from .clock import Clock, StoredClock
from .config import Config
from .errors import ERROR_CLASSES, ApiError, InternalError, NoSuchRoute, ParameterFormatError
from .fetch import Fetcher, Limits
from .intake import Verdicts
from .render import Renderer
from .scenarios import Scenario, parse
from .speech import Rates, Speech, speak
from .store import Store, open_store
from .timbres import catalogue

log = logging.getLogger("ivh_mock")


@dataclass(frozen=True)
class MockContext:
    """Everything a service may use, passed explicitly: no module state, no Flask globals."""

    spec: Spec
    config: Config
    profile: dict[str, Any]
    store: Store
    clock: Clock
    accounts: Accounts
    timbres: dict[str, dict[str, Any]]
    blobs: Blobs
    fetcher: Fetcher
    assets: AssetHost
    renderer: Renderer
    verdicts: Verdicts = field(default_factory=Verdicts)  # recent media verdicts, by content

    def account(self, appkey: str) -> Account | None:
        """Return the account of `appkey` with its control-API settings, or None when strict mode lacks it."""
        appkey = sys.intern(appkey)  # every task and journal entry of the account keeps it: one copy for all
        return self.accounts.get(appkey, self.store.account_settings(appkey))

    def scenario(self, text: str) -> Scenario:
        """Parse a scenario name with parameters; raises ScenarioError naming what is allowed."""
        return parse(text, set(self.spec.errors.fail), self.spec.service["progressWhileMakingMax"])

    def refusal(self, code: int, account: Account) -> ApiError:
        """Return the error answering a request refused with `code`, worded as the catalogue documents it (the
        FAQ's text where one is published)."""
        entry = self.spec.errors.header[code]
        message = entry["message"].format(limit=account.max_pending) if "message" in entry else entry["meaning"]
        return ERROR_CLASSES[code](message)

    def speech_of(self, payload: dict[str, Any]) -> Speech | None:
        """Return the estimated speech of a Text task's payload (None for audio-driven tasks)."""
        if payload.get("DriverType") != "Text":
            return None
        rates = Rates(self.config.cjk_chars_per_second, self.config.latin_words_per_second)
        segments = self.spec.ssml_checker.segments(payload["InputSsml"])
        return speak(segments, payload["SpeechParam"]["Speed"], rates)


def create_app(config: Config | Mapping[str, Any] | None = None, *, store: Store | None = None,
               clock: Clock | None = None) -> Flask:
    """Build a mock: `config` (a Config or a mapping of its fields), a store (default: `config.store`) and a clock
    (default: a StoredClock, kept in the store and running in step with real time, which the control API can freeze,
    set and advance for every worker sharing the store).

    With `config.background` (the default) a callback dispatcher thread runs; stop it with
    `app.extensions["ivh_mock_dispatcher"].stop()`."""
    if not isinstance(config, Config):
        config = Config.from_mapping(config)
    contract = spec_module.load(config.spec_dir)
    defaults = {
        "accesstoken": config.default_accesstoken,
        "concurrency": contract.service["defaultConcurrency"],
        "exclusive_concurrency": config.exclusive_concurrency,
        "hourly_package_seconds": config.hourly_package_seconds,
        "max_pending": config.max_pending,
        "scenario": config.default_scenario,
    }
    accounts = Accounts.from_file(config.accounts_file, defaults) if config.accounts_file else Accounts(defaults)
    scratch = None if config.data_dir else tempfile.TemporaryDirectory(prefix="ivh-mock-", ignore_cleanup_errors=True)
    blobs = Blobs(config.data_dir or scratch.name)
    profile = contract.profile(config.profile)
    store = store if store is not None else open_store(config.store, config.journal_limit)
    ctx = MockContext(
        spec=contract,
        config=config,
        profile=profile,
        store=store,
        clock=clock if clock is not None else StoredClock(store),
        accounts=accounts,
        timbres={timbre["TimbreKey"]: timbre for timbre in catalogue(contract)},
        blobs=blobs,
        fetcher=Fetcher(Limits(config.fetch_connect_timeout_seconds, config.fetch_total_timeout_seconds,
                               config.fetch_redirects)),
        assets=AssetHost(blobs, config, profile),
        renderer=Renderer(blobs),
    )
    ctx.scenario(config.default_scenario)  # refuse a bad default at start, not on the first request

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    app.extensions["ivh_mock"] = ctx
    app.extensions["ivh_mock_scratch"] = scratch  # the temporary data directory lives as long as the app
    api.register(app, ctx)
    media.register(app, ctx)
    dispatcher = CallbackDispatcher(ctx)
    app.extensions["ivh_mock_dispatcher"] = dispatcher
    control.register(app, ctx, dispatcher)
    _register_error_handlers(app, ctx)
    if config.background:
        dispatcher.start()
    return app


def _register_error_handlers(app: Flask, ctx: MockContext) -> None:
    def render(error: ApiError, status: int):
        body = envelope.envelope(error.code, error.message, envelope.new_id())
        return jsonify(body), status

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        if exc.code in (404, 405):
            operations = ", ".join(f"{op.method} {op.path}" for op in ctx.spec.operations.values())
            return render(NoSuchRoute(f"no API operation {request.method} {request.path}; the API has {operations}"),
                          exc.code)
        return render(ParameterFormatError(f"bad request: {exc.description}"), exc.code or 400)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unexpected error answering %s %s", request.method, request.path)
        return render(InternalError("internal error in ivh-mock; the server log has the details"),
                      InternalError.http_status)
