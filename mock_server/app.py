"""The application factory: `create_app(config, store=..., clock=...)` builds one independent mock."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

import spec as spec_module
from spec import Spec

from . import api, envelope
from .accounts import Accounts
from .clock import Clock, SystemClock
from .config import Config
from .errors import ApiError, InternalError, NoSuchRoute, ParameterFormatError
from .store import MemoryStore, Store
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


def create_app(config: Config | Mapping[str, Any] | None = None, *, store: Store | None = None,
               clock: Clock | None = None) -> Flask:
    """Build a mock: `config` (a Config or a mapping of its fields), a store (default: in memory) and a clock
    (default: the system clock)."""
    if not isinstance(config, Config):
        config = Config.from_mapping(config)
    contract = spec_module.load(config.spec_dir)
    accounts = (Accounts.from_file(config.accounts_file, config.default_accesstoken) if config.accounts_file
                else Accounts(config.default_accesstoken))
    ctx = MockContext(
        spec=contract,
        config=config,
        profile=contract.profile(config.profile),
        store=store if store is not None else MemoryStore(config.journal_limit),
        clock=clock if clock is not None else SystemClock(),
        accounts=accounts,
        timbres={timbre["TimbreKey"]: timbre for timbre in catalogue(contract)},
    )

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    app.json.ensure_ascii = False
    app.extensions["ivh_mock"] = ctx
    api.register(app, ctx)
    _register_error_handlers(app, ctx)
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
