"""What a submission costs as its account grows: in-process submissions to one account that holds 10 finished tasks,
then 10,000, in each store, the mock's clock moved a day on after every batch so that earlier tasks have finished,
as a long-lived mock's have. A submission plans against the account's kept backlog (DECISIONS.md D67), so the
second number should be the first's.

Then the same with the account's tasks unfinished, the clock still: a batch submitted behind 10 of them (10 to 109 as
it goes), then behind 890 (890 to 989; an account may hold 1,000). Those are all in the backlog, so a submission costs
more as they grow; how much more is the third number.

    python -m bench.account                    # memory and SQLite
    python -m bench.account --redis URL        # and Redis
"""

from __future__ import annotations

import argparse
import tempfile
import time

from ivh_mock.mock_server import create_app

from .load import submission

APPKEY = "grown"
BATCH = 100
SMALL, LARGE = 10, 10_000
UNFINISHED = 890  # and 100 more in the batch measured: the default max_pending is 1,000


def measure(store: str, large: int = LARGE) -> dict:
    """Milliseconds per submission (best of three batches) with SMALL and with `large` tasks in the account."""
    with tempfile.TemporaryDirectory(prefix="ivh-bench-account-") as data:
        app = create_app({"store": store.format(data=data), "background": False, "data_dir": data})
        clock, client = app.extensions["ivh_mock"].clock, app.test_client()
        client.post("/__mock__/reset", json={"appkey": APPKEY})  # a store shared with other runs (Redis)

        def submit(count: int, finish: bool = True) -> float:
            """Submit `count` tasks, then let a day pass (unless not `finish`); return the seconds the submissions
            took."""
            calls = [submission(APPKEY, clock.now()) for _ in range(count)]
            started = time.perf_counter()
            for path, body in calls:
                header = client.post(path, data=body.encode(), headers={"Content-Type": "application/json"}
                                     ).get_json()["Header"]
                if header["Code"] != 0:
                    raise RuntimeError(f"the benchmark's submission was refused: {header}")
            took = time.perf_counter() - started
            if finish:
                client.post("/__mock__/clock", json={"advance": 86_400})
            return took

        def behind_unfinished_ms(count: int) -> float:
            """Milliseconds per submission of a batch to the account holding `count` unfinished tasks (and, as the
            batch goes, up to BATCH - 1 more), best of three batches."""
            best = float("inf")
            for _ in range(3):
                client.post("/__mock__/reset", json={"appkey": APPKEY})
                submit(count, finish=False)
                best = min(best, submit(BATCH, finish=False))
            return best / BATCH * 1000

        def per_submission_ms() -> float:
            return min(submit(BATCH) for _ in range(3)) / BATCH * 1000

        submit(SMALL)
        small = per_submission_ms()
        for _ in range((large - SMALL - 3 * BATCH) // BATCH):
            submit(BATCH)
        result = {"store": store.split(":", 1)[0].split("?")[0], "small_ms": small, "large_ms": per_submission_ms(),
                  "small": SMALL, "large": large, "unfinished_small_ms": behind_unfinished_ms(SMALL),
                  "unfinished_large_ms": behind_unfinished_ms(UNFINISHED), "unfinished": UNFINISHED}
        client.post("/__mock__/reset", json={"appkey": APPKEY})
        return result


def show(row: dict) -> None:
    print(f"{'submission, ' + row['store']:<28} {row['small_ms']:.2f} ms at {row['small']:,} tasks in the account, "
          f"{row['large_ms']:.2f} ms at {row['large']:,}: {row['large_ms'] / row['small_ms']:.2f}x; behind "
          f"{row['small']:,}+ unfinished {row['unfinished_small_ms']:.2f} ms, behind {row['unfinished']:,}+ "
          f"{row['unfinished_large_ms']:.2f} ms: {row['unfinished_large_ms'] / row['unfinished_small_ms']:.2f}x",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis", help="also measure the Redis store at this URL")
    parser.add_argument("--tasks", type=int, default=LARGE, help="the larger account's tasks (default %(default)s)")
    args = parser.parse_args()
    for store in ["memory", "sqlite:{data}/ivh-mock.sqlite3", *([args.redis] if args.redis else [])]:
        show(measure(store, args.tasks))


if __name__ == "__main__":
    main()
