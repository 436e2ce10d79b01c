"""How long `make test` takes from a fresh clone of this repository, its virtualenv created first: clones the
committed HEAD into a temporary folder, times `make test` there, and keeps the result in docs/benchmarks.json (the
report shows it; `make bench` keeps the last one).

    python -m bench.testtime
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "benchmarks.json"


def measure() -> dict:
    with tempfile.TemporaryDirectory(prefix="ivh-make-test-") as folder:
        clone = Path(folder) / "clone"
        head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True, capture_output=True,
                              text=True).stdout.strip()
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)], check=True, timeout=300)
        subprocess.run(["git", "-C", str(clone), "checkout", "--quiet", head], check=True, timeout=60)
        started = time.monotonic()
        completed = subprocess.run(["make", "test", "ARGS=-q -p no:cacheprovider --durations=15"], cwd=clone,
                                   capture_output=True, text=True, timeout=3600,
                                   env={**os.environ, "PYTHON": _base_python()})
        seconds = time.monotonic() - started
    summary = next((line for line in reversed(completed.stdout.splitlines()) if re.search(r"\d+ passed", line)), "")
    if completed.returncode != 0:
        raise RuntimeError(f"make test failed in the clone:\n{completed.stdout[-4000:]}{completed.stderr[-2000:]}")
    slowest = [line for line in completed.stdout.splitlines() if re.match(r"^\d+\.\d+s (call|setup|teardown)", line)]
    print("\n".join(slowest), file=sys.stderr)
    return {"seconds": seconds, "when": datetime.date.today().isoformat(), "cores": os.cpu_count(),
            "detail": f"{report.processor()}, {os.cpu_count()} cores, {summary.strip('= ')}", "slowest": slowest}


def _base_python() -> str:
    """The interpreter the virtualenv was made from (make creates the clone's own venv with it)."""
    return getattr(sys, "_base_executable", None) or "python3"


def main() -> None:
    result = measure()
    print(f"make test from a fresh clone: {result['seconds']:.0f} s ({result['detail']})")
    results = report.load_results(RESULTS)
    results["make_test"] = result
    report.save(RESULTS, results)
    report.write(RESULTS.with_suffix(".md"), **results)


if __name__ == "__main__":
    main()
