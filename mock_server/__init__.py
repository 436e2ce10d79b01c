"""ivh-mock: a faithful local stand-in for Tencent Cloud AI Digital Human's photo-to-video API.

The names below are imported when first used: the pytest plugin lives in this package, and a test run that never
uses the mock should not pay for importing it (Flask, Pillow, PyAV)."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .app import create_app, stop_app
    from .clock import SystemClock, VirtualClock
    from .config import Config
    from .context import MockContext
    from .serving.receiver import CallbackReceiver
    from .serving.testing import MockServer, in_process_session

_HOMES = {"create_app": ".app", "stop_app": ".app", "SystemClock": ".clock", "VirtualClock": ".clock",
          "Config": ".config", "MockContext": ".context", "CallbackReceiver": ".serving.receiver",
          "MockServer": ".serving.testing", "in_process_session": ".serving.testing"}

__all__ = ["CallbackReceiver", "Config", "MockContext", "MockServer", "SystemClock", "VirtualClock", "create_app",
           "in_process_session", "stop_app"]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value
    return value
