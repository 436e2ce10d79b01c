"""The HTTP benchmark, one command: `make bench` (or `python -m bench`).

Everything runs on loopback on this machine: wrk (Debian's package, installed when missing) loads each server in
turn; Prism is installed from npm into bench/.prism on first use. Prints each result as it comes and writes the
tables, the goals and the machine's description to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import requests
from ivh_mock.mock_server.serving.testing import RedisServer, debian_command, free_port, guard

from . import account, fixtures, inprocess, load, peers, report
from . import proxy as proxy_bench
from .fill import fill

ROOT = Path(__file__).resolve().parents[1]
REPORT = ROOT / "docs" / "benchmarks.md"
SCALE = 100_000


def machine() -> dict[str, str]:
    cpu = report.processor()
    memory = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))

    def version(command: list[str]) -> str:
        try:
            out = subprocess.run(command, capture_output=True, text=True, timeout=30)
            return (out.stdout or out.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.SubprocessError):
            return "not found"

    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "Memory": f"{memory / 1_048_576:.1f} GiB",
        "OS": f"{platform.system()} {platform.release()} ({platform.machine()})",
        "Python": platform.python_version(),
        "wrk": version(["wrk", "--version"]),
        "Redis": version(["redis-server", "--version"]),
        "Node.js": version(["node", "--version"]),
        "Prism": peers.prism_version(),
    }


@contextmanager
def target(kind: str, workers: int, store: str = "") -> Iterator[tuple[str, subprocess.Popen]]:
    """Start one server of the plan; yield its URL and its process, the leader of its process group."""
    port = free_port()
    if kind == "ivh-mock":
        with peers.ivh_mock_started(workers, store, port) as (url, process):
            yield url, process
    else:
        command = peers.ceiling_command(port, workers) if kind == "flask" else peers.prism_command(port)
        with peers.started(command, port) as process:
            yield f"http://127.0.0.1:{port}", process


@contextmanager
def running(process: subprocess.Popen) -> Iterator[None]:
    """Let a paused server run (SIGCONT to its process group) for the block, then pause it again (SIGSTOP)."""
    os.killpg(process.pid, signal.SIGCONT)
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):  # a server that died: its run's error says so
            os.killpg(process.pid, signal.SIGSTOP)


def submit_some(url: str, count: int, prefix: str) -> list[tuple[str, str]]:
    """Submit one task for each of `count` accounts over HTTP; return their (TaskId, appkey) pairs."""
    tasks = []
    for n in range(count):
        path, body = load.submission(f"{prefix}-{n}")
        answer = requests.post(url + path, data=body.encode(), timeout=30,
                               headers={"Content-Type": "application/json;charset=utf-8"}).json()
        tasks.append((answer["Payload"]["TaskId"], f"{prefix}-{n}"))
    return tasks


def _resume(process: subprocess.Popen) -> None:
    with contextlib.suppress(ProcessLookupError):  # gone already: what went wrong is told by the error that follows
        os.killpg(process.pid, signal.SIGCONT)


def _show_run(step: tuple[str, str, int, str], round_: int, rounds: int, operation: str, result: load.Result) -> None:
    print(f"  round {round_}/{rounds}  {step[0]:<28} {step[2]}w  {operation} {result.rate:8.0f}/s", flush=True)


def side_by_side(wrk: str, plan: list[tuple[str, str, int, str]], seconds: float, rounds: int = 3) -> list[dict]:
    """Throughput and latency of every server in `plan`, measured across the same minutes: all are started at once
    and paused (SIGSTOP) but the one under load, and each round loads every server in turn, so that a change in the
    machine's speed falls on all of them alike, not on whichever was measured last. Each result is the run of
    median throughput among the server's `rounds` runs."""
    with ExitStack() as stack:
        servers = [stack.enter_context(target(kind, workers, store)) for _, kind, workers, store in plan]
        for _, process in servers:
            os.killpg(process.pid, signal.SIGSTOP)
            stack.callback(_resume, process)  # before it is stopped, which waits for it
        for url, process in servers:
            with running(process):
                load.run(wrk, url, load.submit_requests(), seconds=2)  # warm up
        submits: list[list[load.Result]] = [[] for _ in plan]
        for round_ in range(1, rounds + 1):
            for step, runs, (url, process) in zip(plan, submits, servers):
                with running(process):
                    runs.append(load.run(wrk, url, load.submit_requests(), seconds=seconds))
                _show_run(step, round_, rounds, "submit", runs[-1])
        probes = []
        for (_, kind, _, _), (url, process) in zip(plan, servers):
            with running(process):
                probes.append(submit_some(url, 10, "probe") if kind == "ivh-mock" else [("0" * 32, "probe-0")])
        progresses: list[list[load.Result]] = [[] for _ in plan]
        for round_ in range(1, rounds + 1):
            for step, runs, tasks, (url, process) in zip(plan, progresses, probes, servers):
                with running(process):
                    runs.append(load.run(wrk, url, load.progress_requests(tasks), seconds=seconds))
                _show_run(step, round_, rounds, "getprogress", runs[-1])
    rows = []
    for (name, _, workers, _), submit_runs, progress_runs in zip(plan, submits, progresses):
        submit, progress = load.median_of(submit_runs), load.median_of(progress_runs)
        rows.append({"server": name, "workers": workers, "submit": submit, "progress": progress})
        print(f"{name:<28} {workers}w  submit {submit.rate:8.0f}/s p50 {submit.p50:6.2f} p99 {submit.p99:7.2f} ms "
              f"bad {submit.bad:<6} getprogress {progress.rate:8.0f}/s p50 {progress.p50:6.2f} p99 "
              f"{progress.p99:7.2f} ms bad {progress.bad}", flush=True)
    return rows


def scale(wrk: str, name: str, store: str, seconds: float, size: int) -> dict:
    """getprogress latency of the same ten tasks with 10 and with `size` tasks in the store."""
    with tempfile.TemporaryDirectory(prefix="ivh-bench-scale-") as data:
        store = store.format(data=data)
        port = free_port()
        with peers.started(peers.ivh_mock_command(port, 1, store, data), port):
            url = f"http://127.0.0.1:{port}"
            probes = submit_some(url, 10, "probe")
            requests.post(f"{url}/__mock__/clock", json={"advance": 60, "frozen": True}, timeout=30)
            now = requests.get(f"{url}/__mock__/clock", timeout=30).json()["now"]
            calls = load.progress_requests(probes, now)
            load.run(wrk, url, calls, seconds=2)
            small = load.median_run(wrk, url, calls, seconds=seconds)
            started = time.monotonic()
            fill(store, size - 10, data)
            filled_in = time.monotonic() - started
            load.run(wrk, url, calls, seconds=2)
            large = load.median_run(wrk, url, calls, seconds=seconds)
    print(f"{name:<28} getprogress p99 at 10 tasks {small.p99:6.2f} ms, at {size:,} {large.p99:6.2f} ms "
          f"(filled in {filled_in:.0f} s)", flush=True)
    return {"store": name, "small": small, "large": large, "fill_seconds": filled_in, "size": size}


def cold_start(name: str, command_of, repeats: int = 3) -> float:
    """Median seconds from process start to the first answered getprogress."""
    times = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory(prefix="ivh-bench-cold-") as data, ExitStack() as stack:
            port = free_port()
            watch = stack.enter_context(guard())
            started = time.monotonic()
            process = subprocess.Popen(command_of(port, data), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                       cwd=ROOT, start_new_session=True)
            watch(process.pid)
            try:
                path, body = load.progress_requests([("0" * 32, "cold")])[0]
                while True:
                    try:
                        requests.post(f"http://127.0.0.1:{port}{path}", data=body, timeout=5,
                                      headers={"Content-Type": "application/json;charset=utf-8"})
                        break
                    except requests.ConnectionError:
                        if process.poll() is not None:
                            raise RuntimeError(f"{name} exited during start") from None
                        time.sleep(0.002)
                times.append(time.monotonic() - started)
            finally:
                os.killpg(process.pid, 9)
                process.wait()
    print(f"{name:<28} cold start {statistics.median(times):.2f} s", flush=True)
    return statistics.median(times)


def memory_per_scale(size: int) -> dict:
    completed = subprocess.run([sys.executable, "-m", "bench.fill", "--memory", "--count", str(size)],
                               capture_output=True, text=True, cwd=ROOT, check=True, timeout=1800)
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    print(f"{'memory store':<28} {result['tasks']:,} tasks and {result['journal']:,} journal entries: "
          f"{result['mb']:.0f} MB resident", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="length of each measured load run (each "
                                                                   "measurement is the median of three)")
    parser.add_argument("--no-report", action="store_true", help="print only; leave docs/benchmarks.md alone")
    parser.add_argument("--tasks", type=int, default=SCALE, help="store size of the scale and memory runs "
                                                                 "(default: %(default)s)")
    parser.add_argument("--note", default="", help="a remark printed under the report's title (what else ran)")
    args = parser.parse_args()
    # SIGTERM (a CI job cancelled, `timeout`) unwinds as Ctrl-C does: servers paused for a round are let go and stopped
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(f"bench: stopped by signal {signum}"))
    wrk = debian_command("wrk")
    if wrk is None:
        sys.exit("bench: wrk is missing and cannot be installed here: apt-get install wrk")
    prism = peers.prism_binary() is not None
    workers = os.cpu_count() or 2
    with ExitStack() as stack:
        redis_url = stack.enter_context(RedisServer()).url
        about = machine()
        print("# " + ", ".join(f"{key}: {value}" for key, value in about.items()), flush=True)
        stores = {"memory": "memory", "sqlite": "sqlite:{data}/ivh-mock.sqlite3"}
        plan = [("ivh-mock, memory", "ivh-mock", 1, stores["memory"])]
        for count in (1, workers):
            plan += [("ivh-mock, sqlite", "ivh-mock", count, stores["sqlite"]),
                     ("ivh-mock, redis", "ivh-mock", count, f"{redis_url}?prefix=b{count}"),
                     ("bare Flask (ceiling)", "flask", count, "")]
        if prism:
            plan.append(("Prism", "prism", 1, ""))
        rows = side_by_side(wrk, plan, args.seconds)
        scales = [scale(wrk, "sqlite", stores["sqlite"], args.seconds, args.tasks),
                  scale(wrk, "redis", f"{redis_url}?prefix=scale", args.seconds, args.tasks)]
        colds = {
            "ivh-mock, sqlite, 1 worker": cold_start("ivh-mock 1 worker", lambda port, data: peers.ivh_mock_command(
                port, 1, f"sqlite:{data}/s.sqlite3", data)),
            f"ivh-mock, sqlite, {workers} workers": cold_start(f"ivh-mock {workers} workers",
                                                               lambda port, data: peers.ivh_mock_command(
                                                                   port, workers, f"sqlite:{data}/s.sqlite3", data)),
            "bare Flask, 1 worker": cold_start("bare Flask", lambda port, data: peers.ceiling_command(port, 1)),
        }
        if prism:
            colds["Prism"] = cold_start("Prism", lambda port, data: peers.prism_command(port))
        memory = memory_per_scale(args.tasks)
        accounts = [account.measure(store) for store in ("memory", stores["sqlite"], f"{redis_url}?prefix=account")]
        for row in accounts:
            account.show(row)
        proxy = proxy_bench.measure()
        proxy_bench.show(proxy)
    in_process = inprocess.measure()
    in_process["profile"] = inprocess.profile(in_process["count"])
    print(f"{'in-process submission':<28} ivh-mock {in_process['mock_ms']:.3f} ms, bare Flask "
          f"{in_process['bare_ms']:.3f} ms: {in_process['ratio']:.2f}x", flush=True)
    fixture_costs = [fixtures.measure(), fixtures.measure(workers)]
    for row in fixture_costs:
        print(f"{'ivh_mock fixture':<28} {row['workers']} process(es): {row['mean_ms']:.1f} ms a test", flush=True)
    if not args.no_report:
        earlier = report.load_results(REPORT.with_suffix(".json")) if REPORT.with_suffix(".json").exists() else {}
        results = {"about": about, "workers": workers, "rows": rows, "scales": scales, "colds": colds,
                   "memory": memory, "seconds": args.seconds, "inprocess": in_process, "fixtures": fixture_costs,
                   "make_test": earlier.get("make_test"),  # measured apart: python -m bench.testtime
                   "note": args.note, "proxy": proxy, "accounts": accounts,
                   "date": datetime.date.today().isoformat()}
        report.save(REPORT.with_suffix(".json"), results)
        report.write(REPORT, **results)
        print(f"written to {REPORT.relative_to(ROOT)} (raw numbers: {REPORT.with_suffix('.json').relative_to(ROOT)})")


if __name__ == "__main__":
    main()
