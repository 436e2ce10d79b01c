"""Page through the timbre catalogue, with the China page's optional filters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..accounts import Account

if TYPE_CHECKING:
    from ..context import MockContext
    from .call import Call


def run(ctx: MockContext, account: Account, payload: dict[str, Any], call: Call) -> dict[str, Any]:
    found = [timbre for timbre in ctx.timbres.values() if _matches(timbre, payload)]
    start = (payload["PageIndex"] - 1) * payload["PageSize"]
    return {"TimbreAssets": found[start:start + payload["PageSize"]], "Total": len(found)}


def _matches(timbre: dict[str, Any], payload: dict[str, Any]) -> bool:
    # an empty filter ("", []: what a serialiser writes for a field left unset) filters nothing, as if absent (D28)
    keys, key, name = payload.get("TimbreKeyList"), payload.get("TimbreKey"), payload.get("TimbreName")
    if keys:  # wins over TimbreKey, as the China page says
        if timbre["TimbreKey"] not in keys:
            return False
    elif key and timbre["TimbreKey"] != key:
        return False
    if name and name.lower() not in timbre["TimbreName"].lower():
        return False
    return "PurchaseType" not in payload or timbre["PurchaseType"] == payload["PurchaseType"]
