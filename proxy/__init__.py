"""The recording proxy: sits between an app and the live API (or a shared mock), passes every exchange through
unchanged, checks it against the spec, records it safely, and turns recordings into a drift report, a pace for the
mock, and answers the mock can replay.

Layers (top may import lower): cli glue lives in mock_server/serving/cli.py; server (HTTP) > forward (one exchange)
> checks (spec, lifecycle) > recorder, redact. drift, calibrate and replay read recordings.
"""

from .checks import ExchangeChecker, Finding, Lifecycle
from .forward import Proxy
from .recorder import Recorder, read_records
from .server import ProxyServer

__all__ = ["ExchangeChecker", "Finding", "Lifecycle", "Proxy", "ProxyServer", "Recorder", "read_records"]
