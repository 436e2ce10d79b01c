"""One module per API operation, named by its operationId. Each exposes `run(ctx, account, payload, call)`.

Services are plain functions: they get the store, clock and settings through `ctx`, what the route learned from the
HTTP request through `call`, and never touch Flask.
"""

from . import describetimbre, getprogress, phototovideonotrain
from .call import Call

OPERATIONS = {
    "phototovideonotrain": phototovideonotrain.run,
    "getprogress": getprogress.run,
    "describetimbre": describetimbre.run,
}

__all__ = ["OPERATIONS", "Call"]
