"""One module per API operation, named by its operationId. Each exposes `run(ctx, account, payload, call)`.

Services are plain functions: they get the store, clock and settings through `ctx`, what the route learned from the
HTTP request through `call`, and never touch Flask.
"""

from dataclasses import dataclass

from ..lifecycle.scenarios import Scenario


@dataclass(frozen=True)
class Call:
    """What a service needs to know about the HTTP request it answers."""

    request_id: str
    scenario: Scenario
    base_url: str  # scheme://host the request was sent to


from . import (
    describetimbre,
    getprogress,
    phototovideonotrain,  # noqa: E402
)

OPERATIONS = {
    "phototovideonotrain": phototovideonotrain.run,
    "getprogress": getprogress.run,
    "describetimbre": describetimbre.run,
}
