"""What a submission costs in-process, with no sockets: ivh-mock's app against the bare Flask endpoint, both called
through Flask's test client with the same signed requests, and where ivh-mock's time goes.

    python -m bench.inprocess              # prints both times and their ratio (goal: at most 2x)
    python -m bench.inprocess --profile    # and the functions that take the most time
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time

from . import load, peers

GOAL_RATIO = 2.0
APPKEYS = 500


def _client_and_calls(kind: str):
    if kind == "ivh-mock":
        from ivh_mock.mock_server import create_app

        app = create_app({"background": False, "store": "memory"})
    else:
        app = peers.ceiling_app()
    return app.test_client(), load.submit_requests(APPKEYS)


def _send(client, calls, count: int) -> None:
    headers = {"Content-Type": "application/json;charset=utf-8"}
    for n in range(count):
        path, body = calls[n % len(calls)]
        response = client.post(path, data=body.encode(), headers=headers)
        if response.status_code != 200 or response.get_json()["Header"]["Code"] != 0:
            raise RuntimeError(f"the benchmark's submission was refused: {response.get_data(as_text=True)[:300]}")


def per_request_ms(kind: str, count: int, repeats: int = 5) -> float:
    """The best of `repeats` runs of `count` submissions, in milliseconds per submission (the best run is the one
    the machine's other work disturbed least)."""
    client, calls = _client_and_calls(kind)
    _send(client, calls, min(count, 200))  # warm up
    best = float("inf")
    for _ in range(repeats):
        client, calls = _client_and_calls(kind)  # a fresh store each run, so runs are alike
        started = time.perf_counter()
        _send(client, calls, count)
        best = min(best, (time.perf_counter() - started) / count)
    return best * 1000


def profile(count: int, top: int = 15) -> list[dict]:
    """Profile ivh-mock's submissions; return the `top` functions by time spent in them and what they call."""
    client, calls = _client_and_calls("ivh-mock")
    _send(client, calls, 200)
    profiler = cProfile.Profile()
    profiler.enable()
    _send(client, calls, count)
    profiler.disable()
    stats = pstats.Stats(profiler, stream=io.StringIO())
    total = sum(entry[2] for entry in stats.stats.values())  # the sum of own times is the profiled time
    rows = []
    for (filename, line, name), (_, calls_, own, cumulative, _) in stats.stats.items():
        where = filename.split("site-packages/")[-1].split("/ivh_mock/")[-1].split("wt-")[-1]
        rows.append({"function": f"{name} ({where.rsplit('/', 2)[-2:] and '/'.join(where.rsplit('/', 2)[-2:])}:{line})",
                     "own_share": own / total, "cumulative_share": cumulative / total, "calls_per_request":
                     calls_ / count})
    return sorted(rows, key=lambda row: row["cumulative_share"], reverse=True)[:top]


def measure(count: int = 2000) -> dict:
    mock, bare = per_request_ms("ivh-mock", count), per_request_ms("flask", count)
    return {"mock_ms": mock, "bare_ms": bare, "ratio": mock / bare, "count": count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    result = measure(args.count)
    verdict = "met" if result["ratio"] <= GOAL_RATIO else "missed"
    print(f"in-process submission: ivh-mock {result['mock_ms']:.3f} ms, bare Flask {result['bare_ms']:.3f} ms: "
          f"{result['ratio']:.2f}x (goal <= {GOAL_RATIO:.0f}x: {verdict})", file=sys.stderr)
    if args.profile:
        result["profile"] = profile(args.count)
        for row in result["profile"]:
            print(f"{row['cumulative_share']:6.1%} {row['own_share']:6.1%}  {row['function']}", file=sys.stderr)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
