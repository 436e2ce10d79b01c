"""pytest fixtures that put the mock one fixture away (registered by the `pytest11` entry point `ivh_mock`).

- `ivh_mock`: a fresh mock on a loopback port, in-memory store, frozen virtual clock (a `MockServer`).
- `ivh_client`: a `client.Client` bound to it, with an appkey unique to the test; its `wait()` advances the mock's
  clock instead of sleeping.
- `ivh_callback_receiver`: a local endpoint that records callbacks (a `CallbackReceiver`).

Each test gets its own server, so the fixtures work under pytest-xdist as they are. A run none of whose tests uses
`ivh_mock` never imports the mock; one that does imports it and reads the spec once, after collection, rather than
in the first test's setup.
"""

from __future__ import annotations

import uuid

import pytest


def pytest_collection_modifyitems(items):
    if any("ivh_mock" in getattr(item, "fixturenames", ()) for item in items):
        from ivh_mock import spec

        from . import testing  # noqa: F401 - imported once here, not in the first test's setup

        spec.load()


@pytest.fixture
def ivh_mock():
    from .testing import MockServer  # imported on use, so installing the plugin costs other test runs nothing

    with MockServer() as server:
        yield server


@pytest.fixture
def ivh_client(ivh_mock, request):
    name = "".join(ch if ch.isalnum() else "-" for ch in request.node.name)[:60]
    return ivh_mock.client(f"{name}-{uuid.uuid4().hex[:8]}")


@pytest.fixture
def ivh_callback_receiver():
    from .receiver import CallbackReceiver

    receiver = CallbackReceiver()
    yield receiver
    receiver.close()
