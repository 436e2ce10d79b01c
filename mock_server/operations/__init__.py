"""One module per API operation, named by its operationId. Each exposes `run(ctx, account, payload) -> payload`.

Services are plain functions: they get the store, clock and settings through `ctx` and never touch Flask.
"""

from . import describetimbre, getprogress, phototovideonotrain

OPERATIONS = {
    "phototovideonotrain": phototovideonotrain.run,
    "getprogress": getprogress.run,
    "describetimbre": describetimbre.run,
}
