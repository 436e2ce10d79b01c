"""pytest fixtures that put the mock one fixture away (registered by the `pytest11` entry point `ivh_mock`).

- `ivh_mock`: a fresh mock on a loopback port, in-memory store, frozen virtual clock (a `MockServer`).
- `ivh_client`: a `client.Client` bound to it, with an appkey unique to the test; its `wait()` advances the mock's
  clock instead of sleeping.
- `ivh_callback_receiver`: a local endpoint that records callbacks (a `CallbackReceiver`).

Each test gets its own server, so the fixtures work under pytest-xdist as they are. A run none of whose tests uses
`ivh_mock` never imports the mock (nor one whose tests that do are deselected, `-k`, `-m`); one that does imports it
and reads the spec once, after collection, rather than in the first test's setup. While a test's mock serves,
SIGTERM (a CI job's timeout) ends the run as Ctrl-C does, so that the mock is stopped and its scratch folder removed
(unless the run has a SIGTERM handler of its own); under pytest-xdist, the controller does likewise once a worker's
mock has served.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import uuid
from typing import Iterator

import pytest


# Set on a test (its node) once its mock serves, and on its reports from then on: a pytest-xdist worker's reports
# reach the controller, which then takes SIGTERM as Ctrl-C too.
SERVED = "ivh_mock_served"


def pytest_configure(config):
    if not hasattr(config, "workerinput"):  # the run's own process (under xdist, the controller, which runs no test)
        config.pluginmanager.register(_ControllerInterruptedBySigterm(), "ivh_mock_controller_sigterm")


@pytest.hookimpl(hookwrapper=True)  # (the old style, which every pytest an app may have takes)
def pytest_runtest_makereport(item, call):
    outcome = yield
    if getattr(item, SERVED, False) and hasattr(item.config, "workerinput"):
        setattr(outcome.get_result(), SERVED, True)


class _ControllerInterruptedBySigterm:
    """Under pytest-xdist, SIGTERM to the controller (a CI job's timeout, alone or with its workers) killed it at
    once (exit status -15): its workers, orphaned, served their mocks until their tests ended, and those of the
    process group raised tracebacks at a controller gone. From the first report of a test whose mock served in a
    worker (its setup's, for a test that names the fixture), the controller takes SIGTERM as Ctrl-C (unless the run
    set a handler of its own): it stops its workers as Ctrl-C does and ends the run with exit status 2."""

    def __init__(self):
        self.taken = False

    def pytest_runtest_logreport(self, report):
        if not self.taken and getattr(report, SERVED, False):
            self.taken = _take_sigterm()

    def pytest_unconfigure(self, config):
        if self.taken:
            _give_sigterm_back()


@pytest.hookimpl(trylast=True)  # after -k, -m and --deselect have taken out what will not run
def pytest_collection_modifyitems(items):
    if any("ivh_mock" in getattr(item, "fixturenames", ()) for item in items):
        from ivh_mock import spec

        from . import testing  # noqa: F401 - imported once here, not in the first test's setup

        spec.load()


@pytest.fixture
def ivh_mock(request):
    """A fresh mock on a free loopback port (a `MockServer`: in-memory store, frozen virtual clock), stopped after
    the test: `base_url`, `advance(seconds)`, `now()`, `client(appkey)`, `tasks()`, `callbacks()`, `reset()`, ..."""
    from .testing import MockServer  # imported on use, so installing the plugin costs other test runs nothing

    with _terminated_as_interrupted(), MockServer(scratch_in=_base_temp(request)) as server:
        # (set here, so that a test whose mock never started, skipped or failed to, says nothing of one served, and
        # one that asks for it as it runs, request.getfixturevalue, says so too)
        setattr(request.node, SERVED, True)
        yield server


def _base_temp(request) -> str | None:
    """The run's temporary folder (pytest's basetemp, of which pytest keeps the last few runs'), for the mock's
    scratch folder: a process that died in a test (a timeout's os._exit, a crashed xdist worker) had left it in the
    system's temporary folder for good. None (the system's temporary folder) where pytest's tmp_path plugin is turned
    off (-p no:tmpdir), or its basetemp cannot be made (--basetemp on a read-only place, or in a missing folder)."""
    try:
        return str(request.getfixturevalue("tmp_path_factory").getbasetemp())
    except (pytest.FixtureLookupError, OSError):
        return None


@pytest.fixture
def ivh_client(ivh_mock, request):
    """A `Client` of the test's `ivh_mock`, with an appkey of the test's own; its `wait()` advances the mock's clock
    instead of sleeping."""
    name = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:60]
    return ivh_mock.client(f"{name}-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def ivh_callback_receiver():
    """A local endpoint that records the callbacks POSTed to its `url` (a `CallbackReceiver`), closed after the
    test."""
    from .receiver import CallbackReceiver

    receiver = CallbackReceiver()
    yield receiver
    receiver.close()


@contextlib.contextmanager
def _terminated_as_interrupted() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt, as Ctrl-C does: pytest then tears the fixtures down. It had
    killed the run where it stood, leaving the mock's scratch folder behind. A handler of the run's own stays, set
    before the block or within it, and one can be set only in the main thread."""
    taken = _take_sigterm()
    try:
        yield
    finally:
        if taken:
            _give_sigterm_back()


def _take_sigterm() -> bool:
    """Make SIGTERM raise KeyboardInterrupt, as Ctrl-C does, unless the run has a handler of its own (or this is not
    the main thread, the only one that can set one); return whether it did."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        return False
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    return True


def _give_sigterm_back() -> None:
    """Put SIGTERM's default back after `_take_sigterm`, unless a handler of the run's own was set meanwhile (an app's
    graceful stop), which stays."""
    if signal.getsignal(signal.SIGTERM) is signal.default_int_handler:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
