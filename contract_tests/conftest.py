"""The contract suite's switches, Hypothesis profiles and fixtures.

    pytest contract_tests                                   # the mock, in-process
    pytest contract_tests --ivh-base-url URL                # any server; IVH_APPKEY / IVH_ACCESSTOKEN
    pytest contract_tests --ivh-base-url URL --ivh-allow-spend 3
    pytest contract_tests --hypothesis-profile deep         # many more examples
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from ivh_mock.mock_server import VirtualClock, create_app
from ivh_mock.mock_server.config import DEFAULT_ACCESSTOKEN
from ivh_mock.mock_server.serving.testing import CallbackReceiver, in_process_session

from .target import SpendGuard, Target, remote_credentials

IN_PROCESS_URL = "http://ivh-mock.local"

settings.register_profile("ci", max_examples=25, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("deep", max_examples=400, deadline=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def pytest_addoption(parser):
    group = parser.getgroup("ivh", "ivh-mock contract suite")
    group.addoption("--ivh-base-url", default=None,
                    help="run against this server (live API or a mock elsewhere) instead of the in-process mock")
    group.addoption("--ivh-allow-spend", type=int, default=None,
                    help="with --ivh-base-url: how many submissions may be accepted (and billed); default 0")
    group.addoption("--ivh-spec-dir", default=None, help="give the in-process mock this copy of spec/")
    group.addoption("--ivh-report-dir", default="reports", help="where the drift report is written")


def pytest_configure(config):
    # Also declared in pyproject.toml; here for runs of the installed suite (`pytest --pyargs contract_tests`).
    config.addinivalue_line("markers", "control: needs the mock's control API (clock, scenarios)")
    config.addinivalue_line("markers", "spends: submits requests that are accepted (billed on a live API)")
    if not config.getoption("hypothesis_profile", default=None):
        settings.load_profile("ci")


@pytest.fixture(scope="session")
def target(request):
    base_url = request.config.getoption("--ivh-base-url")
    if base_url is None:
        clock = VirtualClock()
        app = create_app({"spec_dir": request.config.getoption("--ivh-spec-dir")}, clock=clock)
        yield Target(IN_PROCESS_URL, in_process_session(app, IN_PROCESS_URL), label="in-process mock",
                     guard=SpendGuard(None), appkey="contract", accesstoken=DEFAULT_ACCESSTOKEN)
        app.extensions["ivh_mock_dispatcher"].stop()
        return
    import requests

    appkey, token = remote_credentials()
    allowance = request.config.getoption("--ivh-allow-spend") or 0
    remote = Target(base_url, requests.Session(), label=base_url, guard=SpendGuard(allowance), appkey=appkey,
                    accesstoken=token, control_token=os.environ.get("IVH_MOCK_CONTROL_TOKEN"))
    yield remote
    if remote.has_control and remote._frozen_at is not None:
        remote.unfreeze()


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
