"""Fill a store with real submissions, in-process, the way the API makes them (validated, signed, stored).

    python -m bench.fill --store sqlite:PATH --count 100000     # two processes share the work
    python -m bench.fill --memory --count 100000                # prints the resident memory the tasks cost
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import tempfile

from ivh_mock.mock_server import create_app

from .load import submission

APPKEYS = 1000  # the tasks are spread over this many accounts, as a shared team mock's would be


def submit(store: str, first: int, count: int, data_dir: str) -> None:
    """Submit `count` tasks through the real app, for accounts fill-(first+n) mod APPKEYS."""
    app = create_app({"store": store, "background": False, "data_dir": data_dir})
    send = sender(app)
    for n in range(first, first + count):
        header = send(n)
        if header["Code"] != 0:
            raise RuntimeError(f"submission {n} refused: {header}")


def sender(app):
    """Return send(n): submit task n of the fill through `app` in-process, signed for its clock; its Header."""
    clock, client = app.extensions["ivh_mock"].clock, app.test_client()

    def send(n: int) -> dict:
        path, body = submission(f"fill-{n % APPKEYS}", clock.now())
        answer = client.post(path, data=body.encode(), headers={"Content-Type": "application/json"})
        return answer.get_json()["Header"]

    return send


def fill(store: str, count: int, data_dir: str, processes: int = 2) -> None:
    """Submit `count` tasks to a store shared across processes (sqlite, redis), `processes` at a time."""
    context = multiprocessing.get_context("spawn")
    share = count // processes
    workers = [context.Process(target=submit, args=(store, n * share, share if n < processes - 1 else
                                                    count - share * (processes - 1), data_dir))
               for n in range(processes)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
        if worker.exitcode != 0:
            raise RuntimeError(f"a fill process failed with exit code {worker.exitcode}")


def resident_bytes() -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmRSS:"))
    return int(line.split()[1]) * 1024


def memory_cost(count: int) -> dict[str, float]:
    """Resident memory of `count` tasks (and their journal entries) in the memory store, in this process."""
    with tempfile.TemporaryDirectory() as data_dir:
        app = create_app({"store": "memory", "background": False, "data_dir": data_dir})
        send = sender(app)
        for n in range(200):  # warm every cache before the first reading
            send(n)
        app.extensions["ivh_mock"].store.reset()
        gc.collect()
        before = resident_bytes()
        for n in range(count):
            send(n)
        gc.collect()
        after = resident_bytes()
        tasks = len(app.extensions["ivh_mock"].store.tasks())
        journal = len(app.extensions["ivh_mock"].store.journal())
    return {"tasks": tasks, "journal": journal, "mb": (after - before) / 1_048_576}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--store", help="sqlite:PATH or redis://HOST:PORT/DB")
    parser.add_argument("--memory", action="store_true", help="measure the memory store instead")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(memory_cost(args.count)))
        return
    with tempfile.TemporaryDirectory() as scratch:
        fill(args.store, args.count, args.data_dir or scratch)


if __name__ == "__main__":
    main()
