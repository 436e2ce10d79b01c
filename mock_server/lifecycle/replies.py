"""What the mock keeps of the answers to the requests it sends out itself (callbacks, uploads): a few KiB, read by a
deadline, so a target that drips bytes or answers without end costs nothing."""

from __future__ import annotations

import time

import requests

RESPONSE_KEPT_BYTES = 2048


def read_some(response: requests.Response, deadline: float) -> str:
    """Read at most RESPONSE_KEPT_BYTES of the reply, giving up at the deadline (a target may drip bytes)."""
    kept = b""
    for chunk in response.iter_content(chunk_size=512):
        kept += chunk
        if len(kept) >= RESPONSE_KEPT_BYTES or time.monotonic() > deadline:
            break
    return kept[:RESPONSE_KEPT_BYTES].decode("utf-8", "replace")
