"""Build request payloads for tests: a copy of a base with some fields changed or removed; and the media they use.

PHOTO and AUDIO default to samples of ivh-mock's asset host on loopback, which any ivh-mock reads from itself. Against
the live API, point them at files it can download: IVH_CONTRACT_PHOTO_URL and IVH_CONTRACT_AUDIO_URL.
"""

from __future__ import annotations

import copy
import os
from typing import Any

PHOTO = os.environ.get("IVH_CONTRACT_PHOTO_URL", "http://localhost/__mock__/assets/samples/photo.jpg")
AUDIO = os.environ.get("IVH_CONTRACT_AUDIO_URL", "http://localhost/__mock__/assets/samples/audio-5s.wav")


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
