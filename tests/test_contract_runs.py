"""The contract suite's other modes: against a mock over HTTP (as against any server), with and without a spend
allowance, and against mutated copies of the spec."""

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests

from .conftest import STORES, ServeProcess

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(params=STORES)
def remote_mock(request, tmp_path):
    """A mock over HTTP on each store backend (the suite runs once per store)."""
    store = {"memory": "memory", "sqlite": f"sqlite:{tmp_path / 'store.sqlite3'}"}.get(request.param)
    if store is None:
        store = f"{request.getfixturevalue('redis_server').url}?prefix=c{uuid.uuid4().hex[:12]}"
    with ServeProcess(tmp_path / "data", "--queue-seconds", "0.5", "--render-startup", "1", "--store", store) as served:
        yield served.url


def run_suite(url, report_dir, *extra):
    env = {**os.environ, "IVH_APPKEY": "contract-ci", "IVH_ACCESSTOKEN": "mock-accesstoken"}
    return subprocess.run([sys.executable, "-m", "pytest", "contract_tests", "-q", "-p", "no:cacheprovider", "-rs",
                           "--ivh-base-url", url, "--ivh-report-dir", str(report_dir), *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_the_suite_passes_against_a_mock_over_http(remote_mock, tmp_path):
    result = run_suite(remote_mock, tmp_path, "--ivh-allow-spend", "100000")
    assert result.returncode == 0, result.stdout[-4000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout.splitlines()[-1]
    report = json.loads((tmp_path / "drift-report.json").read_text())
    assert report["target"] == remote_mock and report["is_mock"]
    assert {row["verdict"] for row in report["probes"]} == {"agree"}
    assert (tmp_path / "drift-report.md").read_text().count("| agree |") == len(report["probes"])


@pytest.mark.slow
def test_without_a_spend_allowance_nothing_acceptable_is_submitted(remote_mock, tmp_path):
    result = run_suite(remote_mock, tmp_path)
    assert result.returncode == 0, result.stdout[-4000:]
    assert "spend guard" in result.stdout  # the tests that would be billed were skipped, and say why
    journal = requests.get(f"{remote_mock}/__mock__/requests?limit=100000", timeout=10).json()["requests"]
    submissions = [entry for entry in journal if entry["operation"] == "phototovideonotrain"]
    assert submissions, "the suite should still send the submissions the API refuses"
    accepted = [entry for entry in submissions if entry["code"] == 0]
    assert accepted == [], f"{len(accepted)} submission(s) were accepted without an allowance"


@pytest.mark.slow
def test_breaking_any_constraint_in_the_spec_fails_a_named_test():
    result = subprocess.run([sys.executable, "-m", "ivh_mock.contract_tests.mutation"], cwd=ROOT, capture_output=True,
                            text=True, timeout=900)
    assert result.returncode == 0, result.stdout
    assert "SURVIVED" not in result.stdout
    assert re.search(r"(\d+) of \1 mutations caught", result.stdout), result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("frozen_at_start", [False, True])
def test_the_suite_puts_a_served_mocks_clock_back_as_it_found_it(frozen_at_start, tmp_path):
    with ServeProcess(tmp_path / "data") as served:
        clock = f"{served.url}/__mock__/clock"
        if frozen_at_start:
            requests.post(clock, json={"set": 1_900_000_000, "frozen": True}, timeout=10)
        result = run_suite(served.url, tmp_path, "--ivh-allow-spend", "1000", "-k",
                           "test_spoken_text_longer_than_60_seconds_fails")
        assert result.returncode == 0 and " passed" in result.stdout, result.stdout[-3000:]
        after = requests.get(clock, timeout=10).json()
    if frozen_at_start:
        assert after["frozen"] is True and after["now"] == 1_900_000_000
    else:
        assert after["real"] is True, after  # the test advanced the clock by 600 s at least
