"""MockContext: every dependency of the routes and services of one mock, passed explicitly (no module state, no
Flask globals). It holds dependencies only; what is done with them lives with the modules that do it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ivh_mock.spec import Spec

from .accounts import Accounts
from .clock import Clock
from .config import Config
from .deadline import Waits
from .media_in.assets import AssetHost
from .media_in.intake import Intake
from .media_out.render import Renderer
from .media_out.results import Retention
from .store import Store
from .store.blobs import Blobs


@dataclass(frozen=True)
class MockContext:
    spec: Spec
    config: Config
    profile: dict[str, Any]  # the active limit profile (x-ivh-profiles)
    store: Store
    clock: Clock
    accounts: Accounts
    timbres: dict[str, dict[str, Any]]  # the timbre catalogue, by TimbreKey
    blobs: Blobs
    intake: Intake
    assets: AssetHost
    renderer: Renderer
    retention: Retention  # the sweeps of files past their retention made at clock moves and resets
    waits: Waits | None = None  # the slots of requests that wait on something slow (deadline.holding)
