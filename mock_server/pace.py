"""Paces: how long tasks queue and render, as data (paces.yaml), so a preset, an account setting, one request or a
file can each supply the same three Config fields. A file of calibrated figures is a mapping of the same keys:
`resolve(yaml.safe_load(text))` checks it and fills what it leaves out from the fast preset."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import yaml

FIELDS = ("queue_seconds", "render_speed", "render_startup_seconds")
PRESETS: dict[str, dict[str, float]] = yaml.safe_load(
    Path(__file__).with_name("paces.yaml").read_text(encoding="utf-8"))
DEFAULT = "fast"
MAX_SECONDS = 86_400.0  # no field may exceed a day (of queueing, of rendering per second of video, of start-up)


class PaceError(ValueError):
    """A pace name or mapping that cannot be used; the message names what is allowed."""


def resolve(pace: str | Mapping[str, Any], base: Mapping[str, float] | None = None) -> dict[str, float]:
    """Return the three timing fields of `pace`, a preset name or a mapping of some of them over `base` (default:
    the fast preset)."""
    if isinstance(pace, str):
        if pace not in PRESETS:
            raise PaceError(f"pace {pace!r} is not a preset; known: {', '.join(PRESETS)}")
        return dict(PRESETS[pace])
    if not isinstance(pace, Mapping):
        raise PaceError(f"a pace is a preset name ({', '.join(PRESETS)}) or a mapping of {', '.join(FIELDS)}")
    unknown = sorted(set(pace) - set(FIELDS))
    if unknown:
        raise PaceError(f"pace field(s) {', '.join(map(str, unknown))} unknown; a pace takes {', '.join(FIELDS)}")
    timing = dict(base if base is not None else PRESETS[DEFAULT])
    for name, value in pace.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= MAX_SECONDS:
            raise PaceError(f"pace field {name} must be a number from 0 to {MAX_SECONDS:g}, got {value!r}")
        timing[name] = float(value)
    return timing


def of_config(config: Any) -> dict[str, float]:
    """The server's own pace: the three fields as the Config has them."""
    return {name: getattr(config, name) for name in FIELDS}


def effective(config: Any, *overrides: str | Mapping[str, Any] | None) -> dict[str, float]:
    """The pace a task runs at: the server's, then each override given (account, then request) on top."""
    timing = of_config(config)
    for override in overrides:
        if override is not None:
            timing = resolve(override, timing)
    return timing
