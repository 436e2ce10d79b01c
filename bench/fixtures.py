"""What the `ivh_mock` pytest fixture costs a test: setup plus teardown, averaged over 100 tests that use it, run
by pytest as a user's suite would be, alone and under pytest-xdist.

    python -m bench.fixtures            # prints the averages as JSON
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = 100
GOAL_MS = 10.0

TEST_FILE = '''
import pytest


@pytest.mark.parametrize("n", range({tests}))
def test_uses_the_mock(ivh_mock, n):
    assert ivh_mock.base_url.startswith("http://127.0.0.1:")
'''

# Runs in the pytest process that reports (the controller under xdist): every test's setup and teardown duration.
CONFTEST = '''
import json

DURATIONS = []


def pytest_runtest_logreport(report):
    if report.when in ("setup", "teardown"):
        DURATIONS.append((report.nodeid, report.when, report.duration))


def pytest_sessionfinish(session):
    with open("durations.json", "w") as out:
        json.dump(DURATIONS, out)
'''


def measure(workers: int | None = None, tests: int = TESTS) -> dict:
    """Run `tests` tests that use `ivh_mock` (under `workers` xdist workers, or in one process) and return the mean
    setup + teardown per test in milliseconds."""
    with tempfile.TemporaryDirectory(prefix="ivh-bench-fixtures-") as folder:
        root = Path(folder)
        (root / "test_fixture_cost.py").write_text(TEST_FILE.format(tests=tests))
        (root / "conftest.py").write_text(CONFTEST)
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly", "-x"]
        if workers:
            command += ["-n", str(workers)]
        completed = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=600)
        if completed.returncode != 0:
            raise RuntimeError(f"the fixture benchmark's tests failed:\n{completed.stdout[-3000:]}")
        durations = json.loads((root / "durations.json").read_text())
    per_test: dict[str, float] = {}
    for nodeid, _, seconds in durations:
        per_test[nodeid] = per_test.get(nodeid, 0.0) + seconds
    values = sorted(per_test.values())
    return {"workers": workers or 1, "tests": len(values), "mean_ms": 1000 * sum(values) / len(values),
            "median_ms": 1000 * values[len(values) // 2], "max_ms": 1000 * values[-1]}


def main() -> None:
    results = [measure(), measure(2)]
    for result in results:
        verdict = "met" if result["mean_ms"] <= GOAL_MS else "missed"
        print(f"ivh_mock fixture, {result['workers']} process(es): setup + teardown {result['mean_ms']:.1f} ms a test "
              f"on average over {result['tests']} (median {result['median_ms']:.1f}, max {result['max_ms']:.1f}); "
              f"goal <= {GOAL_MS:.0f} ms: {verdict}", file=sys.stderr)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
