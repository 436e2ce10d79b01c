"""Build request payloads for tests: a copy of a base with some fields changed or removed."""

from __future__ import annotations

import copy
from typing import Any


def patched(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """Return a copy of `base` with each change applied; `SpeechParam__Speed=2` sets a nested field (creating the
    parents), a value of `...` removes the field."""
    payload = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = payload
        for name in parents:
            node = node.setdefault(name, {})
        if value is ...:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return payload
