"""The recording proxy's own cost: `python -m bench.proxy` (also part of `make bench`).

The mock (`ivh-mock serve`, memory store) is the upstream; the same getprogress request goes to it directly and
through `ivh-mock proxy` (recording, checking), alternately, one at a time over kept-alive connections. Prints the
p50 and p99 of both side by side and what the proxy adds; writes them into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import requests
from ivh_mock.mock_server.serving.testing import free_port
from ivh_mock.spec.signing import signed_query

from ivh_mock import spec as spec_module

from . import peers, report

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(count: int = 2000) -> dict:
    """Return p50/p99 in ms of `count` getprogress calls made directly and through the proxy."""
    path = spec_module.load().operations["getprogress"].path
    body = json.dumps({"Header": {}, "Payload": {"TaskId": "0" * 32}}).encode()
    headers = {"Content-Type": "application/json;charset=utf-8"}
    times: dict[str, list[float]] = {"direct": [], "proxied": []}
    with peers.ivh_mock(1, "memory") as upstream, tempfile.TemporaryDirectory(prefix="ivh-bench-proxy-") as record:
        port = free_port()
        command = [str(Path(sys.executable).with_name("ivh-mock")), "proxy", "--upstream", upstream, "--port",
                   str(port), "--record", record]
        with peers.started(command, port):
            bases = {"direct": upstream, "proxied": f"http://127.0.0.1:{port}"}
            sessions = {name: requests.Session() for name in bases}
            for step in range(count + 100):  # the first 100 of each warm up
                for name, base in bases.items():
                    url = f"{base}{path}?{signed_query('bench-proxy', 'mock-accesstoken', int(time.time()))}"
                    started = time.perf_counter()
                    answer = sessions[name].post(url, data=body, headers=headers, timeout=30)
                    elapsed = (time.perf_counter() - started) * 1000
                    if answer.status_code != 200:
                        raise RuntimeError(f"{name}: HTTP {answer.status_code}")
                    if step >= 100:
                        times[name].append(elapsed)
    result = {"requests": count, "operation": "getprogress"}
    for name, values in times.items():
        result[name] = {"p50": round(statistics.median(values), 3), "p99": round(_percentile(values, 0.99), 3)}
    result["added"] = {key: round(result["proxied"][key] - result["direct"][key], 3) for key in ("p50", "p99")}
    return result


def show(result: dict) -> None:
    print(f"{'':<10} {'p50':>9} {'p99':>9}   ({result['requests']} {result['operation']} calls each, one at a time)")
    for name in ("direct", "proxied", "added"):
        print(f"{name:<10} {result[name]['p50']:>6.2f} ms {result[name]['p99']:>6.2f} ms", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=2000, help="calls each way (default: %(default)s)")
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    result = measure(args.requests)
    show(result)
    if not args.no_report:
        raw = REPORT.with_suffix(".json")
        results = report.load_results(raw)
        results["proxy"] = result
        report.save(raw, results)
        report.write(REPORT, **results)
        print(f"written to {REPORT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
