"""Check the query-string signature exactly as the vendor documents it.

The timestamp is accepted within the tolerance of real time (what a client signing with its own clock sends, even
after the mock's clock was moved) or of the mock's clock (what a test signing with the mock's time sends), DECISIONS.md
D51."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Mapping

from flask import request
from ivh_mock.spec import signing

from ..accounts import Account
from ..errors import ParameterError, Unauthorized, from_violations

if TYPE_CHECKING:
    from ..context import MockContext


def account_of(ctx: MockContext, appkey: str) -> Account | None:
    """Return the account of `appkey` with its control-API settings, or None when strict mode lacks it."""
    appkey = sys.intern(appkey)  # every task and journal entry of the account keeps it: one copy for all
    return ctx.accounts.get(appkey, ctx.store.account_settings(appkey))


def authenticate(operation_id: str, query: Mapping[str, str], ctx: MockContext) -> Account:
    """Return the calling account, or raise the documented error for the first thing wrong with the query."""
    rules = ctx.spec.signature_rules
    params = {name: query[name] for name in rules["signedParameters"] if name in query}
    violations = ctx.spec.validate_query(operation_id, params)
    if violations:
        raise from_violations(violations)
    signature = query.get("signature")
    if not signature:
        raise ParameterError("query.signature is required (see the signedQuery security scheme)")

    account = account_of(ctx, params["appkey"])
    if account is None:
        raise Unauthorized(f"query.appkey {params['appkey']!r} is not a known account")

    _check_timestamp(int(params["timestamp"]), ctx, rules["timestampToleranceSeconds"])

    if not signing.verify(params, signature, account.accesstoken):
        hint = _space_hint(signature)
        raise Unauthorized(
            f"query.signature does not match{hint}; sign {signing.string_to_sign(params)!r} with HMAC-SHA256 keyed"
            " by the accesstoken, Base64 the digest, then URL-encode it"
        )
    return account


def _check_timestamp(timestamp: int, ctx: MockContext, tolerance: int) -> None:
    """Accept a timestamp within `tolerance` of real time or of the mock's clock; refuse it naming both gaps."""
    real = timestamp - int(ctx.clock.wall())  # whole seconds, as the timestamp is
    if abs(real) <= tolerance:  # most clients sign with real time: the mock's clock need not be read
        return
    mock = timestamp - int(ctx.clock.now())
    if abs(mock) <= tolerance:
        return
    skews = {"real time": real, "the mock's clock": mock}
    gaps = " and ".join(f"{abs(skew)} s {'ahead of' if skew > 0 else 'behind'} {name}" for name, skew in skews.items())
    raise Unauthorized(f"query.timestamp is {gaps}; it must be within {tolerance} s of either")


def _space_hint(signature: str) -> str:
    """Why a signature holds a space, which Base64 never does: a '+' sent as it is (a query reads it as a space), or
    a space sent encoded (%20), where the '+' it stood for is sent as %2B."""
    if " " not in signature:
        return ""
    raw = next((part for part in request.query_string.split(b"&") if part.startswith(b"signature=")), b"")
    if b"+" in raw:
        return " (it contains a space: a '+' was sent without URL-encoding)"
    return " (it contains a space, sent as %20: Base64 has none; a '+' is sent as %2B)"
