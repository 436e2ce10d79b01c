"""Keep a served worker's garbage-collector pauses short while its store grows (DECISIONS.md D80).

CPython's full collection walks every object it tracks, and a memory store's tasks are such objects (each task and
its payload): at 30,000 tasks a worker tracks about 120,000 objects and a full collection takes about 90 ms, paid by
whichever request triggered it. Under load the memory store's submissions had a p99 of 95 ms, all of it those pauses.

So once a full collection leaves more than `limit` objects that later full collections would walk again, they are
frozen (`gc.freeze`): the collector skips them from then on. Refcounting still frees a frozen object as soon as
nothing refers to it, and what a frozen object refers to stays alive with it, so nothing in use is lost. The cost: a
reference cycle among objects frozen while in use is never collected once it becomes garbage. A freeze comes once per
`limit` objects of growth, and what requests hold in cycles at that moment is a few objects each.
"""

from __future__ import annotations

import gc
from typing import Any

LIMIT = 10_000  # a full collection then walks about this many objects, plus what was made since: a few ms


def bound_pauses(limit: int = LIMIT) -> None:
    """From now on, freeze what a full collection leaves once it is more than `limit` objects. For a process of its
    own: the collector is the process's, and so are the cycles a freeze may keep."""
    def after(phase: str, info: dict[str, Any]) -> None:
        if phase == "stop" and info["generation"] == 2 and len(gc.get_objects(generation=2)) > limit:
            gc.freeze()

    gc.callbacks.append(after)
