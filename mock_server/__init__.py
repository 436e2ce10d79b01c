"""ivh-mock: a faithful local stand-in for Tencent Cloud AI Digital Human's photo-to-video API."""

from .app import MockContext, create_app
from .clock import SystemClock, VirtualClock
from .config import Config

__all__ = ["Config", "MockContext", "SystemClock", "VirtualClock", "create_app"]
