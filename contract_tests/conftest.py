"""The contract suite's fixtures. Its options and Hypothesis profiles come from the plugin (plugin.py), which the
`pytest11` entry point loads before any test is collected."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest
from ivh_mock.contract_tests import missing_extra

try:  # the plugin says so first when the suite is named on the command line
    from hypothesis import HealthCheck, Phase, settings
    import schemathesis  # noqa: F401 - test_schemathesis.py's; missing, it would fail that module alone
except ImportError as missing:  # the base install: the suite's own dependencies are an extra
    raise pytest.UsageError(missing_extra(missing.name)) from None
from ivh_mock.contract_tests.target import SpendGuard, Target, remote_credentials, remote_session
from ivh_mock.proxy import redact
from ivh_mock.mock_server.serving.receiver import CallbackReceiver

IN_PROCESS_URL = "http://ivh-mock.localhost"


# The Hypothesis profile the suite's tests run with: `ivh-ci` (registered by the plugin), or --hypothesis-profile's.
# Hypothesis gives a test the profile loaded when its module is imported, so the suite loads its own only while its
# modules are imported: loaded for the whole session, it had become that of an app's own tests collected beside it.
_profile = "ivh-ci"


@pytest.hookimpl(trylast=True)  # after Hypothesis's own plugin has loaded a --hypothesis-profile
def pytest_configure(config):
    global _profile
    _print_examples()
    chosen = config.getoption("hypothesis_profile", default=None) or "ivh-ci"
    # what the suite needs of any profile, on top of the one chosen: its tests take function-scoped fixtures (a fresh
    # appkey, a receiver) and wait on a server; under an app's own profile (Hypothesis's `ci`, a project's `dev`)
    # every generated test had failed a health check (FailedHealthCheck: function_scoped_fixture)
    parent = settings.get_profile(chosen)
    settings.register_profile("ivh-chosen", parent=parent, deadline=None, suppress_health_check=[
        *parent.suppress_health_check, HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    _profile = "ivh-chosen"
    if config.getoption("--ivh-base-url"):
        # Against a server across the network a failing example is not shrunk: each replay is another call (another
        # 30 s wait on a target that does not answer, another billed call on the live API). It is reported as found.
        parent = settings.get_profile(_profile)
        settings.register_profile("ivh-remote", parent=parent,
                                  phases=[phase for phase in parent.phases if phase is not Phase.shrink])
        _profile = "ivh-remote"


def _print_examples() -> None:
    """Let Hypothesis print a failing example's values again. Schemathesis, once imported, swaps Hypothesis's
    printer for one that prints nothing (it is slow on large schemas), and every failure of the suite read
    `Failing test case: test_...(target=, data=,)`: against a remote target, which is never shrunk, the example
    printed is the one way to see what was sent. The suite's values are small; its run takes no longer."""
    from hypothesis import core
    from hypothesis.vendor import pretty

    if core.RepresentationPrinter is not pretty.RepresentationPrinter:
        core.RepresentationPrinter = pretty.RepresentationPrinter


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector):
    """Import each of the suite's modules (this conftest's hooks see no other) under the suite's profile."""
    if not isinstance(collector, pytest.Module):
        return (yield)
    loaded = getattr(settings, "get_current_profile_name", lambda: settings._current_profile)()
    settings.load_profile(_profile)
    try:
        return (yield)
    finally:
        settings.load_profile(loaded)


FIRST, LAST = "test_an_accepted_task_is_reported_in_the_spec_s_terms", "test_drift_report"


def pytest_collection_modifyitems(items):
    """The first acceptance the spend guard allows goes to the test that polls its task (the constraint tests' edge
    examples would use any allowance up); the drift report is written last, so that its findings are those of every
    answer the run got. Sorting is stable: the other tests keep their order."""
    items.sort(key=lambda item: (item.name != FIRST, item.name == LAST))


@pytest.fixture(scope="session")
def target(request):
    base_url = request.config.getoption("--ivh-base-url")
    if base_url is None:  # the mock in this process: imported only here (Flask, Pillow, PyAV), not for a remote run
        from ivh_mock.mock_server import VirtualClock, create_app, stop_app
        from ivh_mock.mock_server.config import DEFAULT_ACCESSTOKEN
        from ivh_mock.mock_server.serving.testing import in_process_session

        clock = VirtualClock()
        app = create_app({"spec_dir": request.config.getoption("--ivh-spec-dir")}, clock=clock)
        yield Target(IN_PROCESS_URL, in_process_session(app, IN_PROCESS_URL), label="in-process mock",
                     guard=SpendGuard(None), appkey="contract", accesstoken=DEFAULT_ACCESSTOKEN)
        stop_app(app)
        return
    appkey, token = remote_credentials()
    allowance = request.config.getoption("--ivh-allow-spend") or 0
    remote = Target(base_url, remote_session(), label=redact.url(base_url), guard=SpendGuard(allowance),
                    appkey=appkey, accesstoken=token, control_token=os.environ.get("IVH_MOCK_CONTROL_TOKEN"))
    # SIGTERM (a CI job's timeout, `timeout`) ends the run as Ctrl-C does, with this teardown: it had ended the
    # process at once, leaving a served mock's clock frozen hours ahead, in its store, for whatever ran next
    refused = remote.hold_clock()  # another run that began since the preflight's look holds it
    if refused is not None:
        pytest.exit(f"{redact.url(base_url)} is a mock whose clock another run is steering: {refused}", returncode=4)
    main = threading.current_thread() is threading.main_thread()  # (only there can a handler be set)
    previous = signal.signal(signal.SIGTERM, signal.default_int_handler) if main else None
    try:
        yield remote
    finally:
        if main:
            signal.signal(signal.SIGTERM, previous)
    remote.restore_clock()  # the clock as the suite found it: a served mock keeps it in its store
    if not request.session.testsfailed:  # after a failure, what the tests' accounts hold is kept to look into
        remote.forget_accounts()


@pytest.fixture(autouse=True)
def answers_of_its_own(request):
    """Each test's replays are answered from its own examples' answers (Target.send)."""
    if "target" in request.fixturenames:
        request.getfixturevalue("target").forget_answers()


@pytest.fixture(autouse=True)
def spend_guard_first(request):
    """A test marked `spends` is skipped before it starts once the allowance left cannot pay for its explicit
    examples (one submission each, at least one): skipped from inside one of Hypothesis's explicit examples, it was
    also reported as a failing example. A test that also needs the control API is skipped for the lack of it first:
    no allowance would let it run."""
    if request.node.get_closest_marker("spends") is not None:
        target = request.getfixturevalue("target")
        if request.node.get_closest_marker("control") is not None:
            target.require_control()
        examples = getattr(getattr(request.node, "function", None), "hypothesis_explicit_examples", ())
        target.guard.check_allowance(needed=len(examples))


@pytest.fixture
def frozen(target):
    """A target whose clock the test steers (skipped when the target has no control API)."""
    target.require_control()
    target.freeze()
    yield target


@pytest.fixture
def receiver():
    receiver = CallbackReceiver()
    yield receiver
    receiver.close()


@pytest.fixture(scope="session")
def report_dir(request) -> Path:
    path = Path(request.config.getoption("--ivh-report-dir"))
    path.mkdir(parents=True, exist_ok=True)
    return path
