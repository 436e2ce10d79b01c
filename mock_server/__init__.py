"""ivh-mock: a faithful local stand-in for Tencent Cloud AI Digital Human's photo-to-video API."""

from .app import create_app
from .clock import SystemClock, VirtualClock
from .config import Config
from .context import MockContext
from .serving.testing import CallbackReceiver, MockServer, in_process_session

__all__ = ["CallbackReceiver", "Config", "MockContext", "MockServer", "SystemClock", "VirtualClock", "create_app",
           "in_process_session"]
