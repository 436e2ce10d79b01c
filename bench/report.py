"""Write the HTTP benchmark's results to docs/benchmarks.md: the tables, the goals met or missed, the machine."""

from __future__ import annotations

import datetime
from pathlib import Path

GOALS = {
    "prism": 1.5,  # submit throughput at least 1.5x Prism's
    "ceiling": 0.6,  # and at least 0.6x the bare Flask endpoint's at equal workers
    "scale": 1.2,  # getprogress p99 at 100,000 tasks within 1.2x of that at 10
    "cold": 1.0,  # seconds
    "memory": 200.0,  # MB per 100,000 tasks in the memory store
}


def _verdict(met: bool) -> str:
    return "met" if met else "**missed**"


def write(path: Path, about: dict, workers: int, rows: list[dict], scales: list[dict], colds: dict[str, float],
          memory: dict, seconds: float) -> None:
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` on {datetime.date.today().isoformat()}; every number below comes from that one run.",
        "Everything ran on loopback on one machine, so the load generator (wrk, one thread, 16 connections) shares",
        "the CPU with the server it measures: read the numbers side by side, not as absolutes.",
        "",
        "## Machine",
        "",
        *[f"- {key}: {value}" for key, value in about.items()],
        "",
        "## Throughput and latency",
        "",
        f"Each row is one server process tree started fresh, loaded for {seconds:g} s per operation after a 2 s warm-up.",
        "Submit requests are real signed `phototovideonotrain` calls over 2,000 appkeys; getprogress polls ten",
        "tasks submitted just before. *Bad* counts answers that were not `Code: 0` (the ceiling and Prism answer",
        "every call with a fixed or generated envelope; Prism's getprogress example carries `Code: null`).",
        "",
        "| server | workers | submit /s | p50 ms | p99 ms | bad | getprogress /s | p50 ms | p99 ms | bad |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        s, p = row["submit"], row["progress"]
        lines.append(f"| {row['server']} | {row['workers']} | {s.rate:,.0f} | {s.p50:.2f} | {s.p99:.2f} | {s.bad:,} | "
                     f"{p.rate:,.0f} | {p.p50:.2f} | {p.p99:.2f} | {p.bad:,} |")
    lines += ["", "## getprogress as the store grows", "",
              "The same ten tasks polled with 10 tasks in the store, then again after 99,990 more real submissions",
              "(spread over 1,000 accounts, made in-process by two processes sharing the store), with the mock's",
              "clock frozen so that every answer is the same in both runs.", "",
              "| store | p50 at 10 | p99 at 10 | p50 at 100,000 | p99 at 100,000 | ratio of p99 | fill time |",
              "|---|---:|---:|---:|---:|---:|---:|"]
    for row in scales:
        small, large = row["small"], row["large"]
        lines.append(f"| {row['store']} | {small.p50:.2f} ms | {small.p99:.2f} ms | {large.p50:.2f} ms | "
                     f"{large.p99:.2f} ms | {large.p99 / small.p99:.2f}x | {row['fill_seconds']:.0f} s |")
    lines += ["", "## Cold start", "", "From process start to the first answered request, median of three.", "",
              "| server | seconds |", "|---|---:|"]
    lines += [f"| {name} | {value:.2f} |" for name, value in colds.items()]
    lines += ["", "## Memory", "",
              f"Resident memory of {memory['tasks']:,} tasks submitted through the API into the memory store, with",
              f"their {memory['journal']:,} journal entries: **{memory['mb']:.0f} MB**.", ""]
    lines += ["## Goals", "", *goals(rows, scales, colds, memory, workers), ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def _best(rows: list[dict], server_prefix: str, workers: int) -> dict | None:
    matching = [row for row in rows if row["server"].startswith(server_prefix) and row["workers"] == workers]
    return max(matching, key=lambda row: row["submit"].rate, default=None)


def goals(rows: list[dict], scales: list[dict], colds: dict[str, float], memory: dict, workers: int) -> list[str]:
    out = ["| goal | measured | verdict |", "|---|---|---|"]
    prism = _best(rows, "Prism", 1)
    for count in sorted({1, workers}):
        ceiling = _best(rows, "bare Flask", count)
        for row in rows:
            if not row["server"].startswith("ivh-mock") or row["workers"] != count:
                continue
            rate = row["submit"].rate
            if prism:
                ratio = rate / prism["submit"].rate
                out.append(f"| submit >= {GOALS['prism']}x Prism ({row['server']}, {count} worker(s)) | {ratio:.2f}x | "
                           f"{_verdict(ratio >= GOALS['prism'])} |")
            if ceiling:
                ratio = rate / ceiling["submit"].rate
                out.append(f"| submit >= {GOALS['ceiling']}x bare Flask ({row['server']}, {count} worker(s)) | "
                           f"{ratio:.2f}x | {_verdict(ratio >= GOALS['ceiling'])} |")
    for row in scales:
        ratio = row["large"].p99 / row["small"].p99
        out.append(f"| getprogress p99 at 100,000 within {GOALS['scale']}x of 10 ({row['store']}) | {ratio:.2f}x | "
                   f"{_verdict(ratio <= GOALS['scale'])} |")
    for name, value in colds.items():
        if name.startswith("ivh-mock"):
            out.append(f"| cold start < {GOALS['cold']:g} s ({name}) | {value:.2f} s | {_verdict(value < GOALS['cold'])} |")
    out.append(f"| 100,000 tasks < {GOALS['memory']:g} MB (memory store) | {memory['mb']:.0f} MB | "
               f"{_verdict(memory['mb'] < GOALS['memory'])} |")
    return out
