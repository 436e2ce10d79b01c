"""The live pace, measured from recorded tasks: how long a task waits in COMMIT, how long MAKING takes per second
of video (plus a fixed start-up), how Progress moves; and the `ivh-mock serve` options that reproduce it.

Each state change is seen between two polls. When Progress rises in step with time during MAKING (a straight line
through the polls, within a few points), that line says when MAKING began (Progress 0) and ended (Progress 99),
each kept between its two polls; otherwise the change is taken at the midpoint of the two polls. With tasks of at
least two different durations, render time = startup + speed x video seconds is fitted by least squares; with one
duration only, the start-up cannot be told apart and is taken as 0.
"""

from __future__ import annotations

import bisect
import json
import math
import statistics
from itertools import pairwise
from pathlib import Path
from typing import Any, Iterable

from .checks import TaskTrail

PACE_KEYS = ("queue_seconds", "render_speed", "render_startup_seconds")
OPTION_OF = {"queue_seconds": "--queue-seconds", "render_speed": "--render-speed",
             "render_startup_seconds": "--render-startup"}
# a Duration past a day of video is none the API makes (a number past a double's range broke the fit with an
# OverflowError): such a task says nothing of the pace
LONGEST_VIDEO_MS = 86_400_000


def _changes(trail: TaskTrail) -> dict[str, float] | None:
    """Return when the task was submitted, started MAKING and finished (estimates), or None when not all seen."""
    seen = trail.seen
    if trail.submitted_at is None or not seen:
        return None
    times = [trail.submitted_at, *(entry[0] for entry in seen)]
    if not all(isinstance(at, (int, float)) and math.isfinite(at) for at in times) or times != sorted(times):
        return None  # times no proxy records (NaN, or a submission after its polls): it says nothing of the pace
    started = _crossing(trail.submitted_at, seen, lambda status: status != "COMMIT")
    finished = _crossing(None, seen, lambda status: status in ("SUCCESS", "FAIL"))
    if started is None or finished is None or seen[-1][1] != "SUCCESS":
        return None
    line = _progress_line([(at, progress) for at, status, progress, *_ in seen if status == "MAKING"])
    if line is not None:
        begin, per_point = line
        started = (_within(begin, started[1], started[2]), started[1], started[2])
        finished = (_within(begin + 99 * per_point, finished[1], finished[2]), finished[1], finished[2])
    return {"submitted": trail.submitted_at, "started": started[0], "finished": max(finished[0], started[0]),
            "gaps": (started[2] - started[1], finished[2] - finished[1])}  # how far apart the polls around each were


def _crossing(before: float | None, seen: list[tuple], reached) -> tuple[float, float, float] | None:
    """Return (the midpoint, the last poll before, the first poll after) `reached(status)` first held."""
    last_before = before
    for at, status, *_ in seen:
        if reached(status):
            low = at if last_before is None else last_before
            return (low + at) / 2, low, at
        last_before = at
    return None


def _within(value: float, low: float, high: float) -> float:
    return min(max(value, low), high)


def _progress_line(points: list[tuple[float, Any]]) -> tuple[float, float] | None:
    """Fit time = begin + per_point x (Progress + 0.5) (Progress counts whole points, so each poll is half a point
    past its value on average); return (begin, per_point), or None when Progress does not follow a line."""
    points = [(at, progress + 0.5) for at, progress in points if isinstance(progress, int) and 0 <= progress < 100]
    if len(points) < 3 or len({p for _, p in points}) < 2:
        return None
    mean_t, mean_p = statistics.mean(t for t, _ in points), statistics.mean(p for _, p in points)
    per_point = (sum((p - mean_p) * (t - mean_t) for t, p in points) / sum((p - mean_p) ** 2 for _, p in points))
    if per_point <= 0:
        return None
    begin = mean_t - per_point * mean_p
    if max(abs((t - begin) / per_point - p) for t, p in points) > 3:  # not a straight line: keep the midpoints
        return None
    return begin, per_point


def measure(trails: Iterable[TaskTrail], moved: Iterable[float] = ()) -> dict[str, Any] | None:
    """Return the pace the trails show (PACE_KEYS plus what they were measured from), or None without a finished
    task whose submission and polls were all recorded. A task during which the upstream's clock was `moved` (at those
    times: a mock's clock moved or reset through the proxy) is left out: its times are the moves', not the pace."""
    return measured(trails, moved)[0]


def measured(trails: Iterable[TaskTrail], moved: Iterable[float] = ()) -> tuple[dict[str, Any] | None, str | None]:
    """`measure`'s pace, and with no pace, why, when every finished task was left out for a clock `moved` while it
    was polled (said, not left silent); else None."""
    queue, making, progress_moves, progress_values, steps, gaps = [], [], 0, 0, [], []
    moved, left_out = sorted(moved), 0
    for trail in trails:
        changes = _changes(trail)
        if changes is None:
            continue
        # from the submission's start: the proxy records an exchange once it has sent its answer, by which time the
        # app may have moved the clock (a move recorded before the submission's end had been missed, now and then)
        sent = changes["submitted"] if trail.sent_at is None else min(trail.sent_at, changes["submitted"])
        if _moved_within(moved, sent, trail.seen[-1][0]):  # the contract suite's tasks, through a proxy in front of
            left_out += 1  # a mock, had made a pace of 0 s queues and no render time
            continue
        duration = trail.seen[-1][4]
        if not isinstance(duration, int) or not 0 < duration <= LONGEST_VIDEO_MS:
            continue
        gaps += changes["gaps"]
        queue.append(changes["started"] - changes["submitted"])
        making.append((duration / 1000, changes["finished"] - changes["started"]))
        during = [seen[2] for seen in trail.seen if seen[1] == "MAKING" and isinstance(seen[2], int)]
        progress_values += len(during)
        progress_moves += len(set(during)) > 1
        steps += [after - before for before, after in pairwise(during) if after > before]
    aside = (f"{left_out} task(s) left out, polled while the mock's clock was moved or reset through the proxy"
             if left_out else None)
    if not making:
        return None, aside
    speed, startup = _fit(making)
    pace = {"queue_seconds": round(statistics.median(queue), 3), "render_speed": round(speed, 4),
            "render_startup_seconds": round(startup, 3), "tasks": len(making),
            "video_seconds": sorted({round(seconds, 3) for seconds, _ in making}),
            "progress_moved_during_making": f"in {progress_moves} of {len(making)} task(s)",
            "making_polls": progress_values, "progress_step_median": statistics.median(steps) if steps else None,
            "poll_gap_median": round(statistics.median(gaps), 3)}
    sparse = _sparse(pace["poll_gap_median"], statistics.median(queue), statistics.median(s for _, s in making))
    return {**pace, **({"left_out": aside} if aside else {}), "warning": sparse}, None


def _moved_within(moved: list[float], start: float, end: float) -> bool:
    """Whether one of the sorted times `moved` lies from `start` to `end`."""
    at = bisect.bisect_left(moved, start)
    return at < len(moved) and moved[at] <= end


def _sparse(gap: float, queue: float, render: float) -> str | None:
    """Why the pace cannot be trusted when the polls that saw each change were as far apart as what was measured
    (a client waiting 2 s between polls, on a queue of 1 s, measured 2 s of it); None when they were close enough."""
    shortest = round(min(queue, render), 3)
    if gap <= max(SPARSE * shortest, CLOSE_ENOUGH):  # a queue of about 0 measured by polls 0.1 s apart is measured
        return None
    return (f"the polls around each change of status were a median {gap:g} s apart, more than "
            f"{SPARSE:.0%} of the shortest time measured ({shortest:g} s): each change is placed only somewhere "
            f"between two polls, so this pace is a guess; record tasks polled more often (every 0.25 s or so)")


SPARSE = 0.5  # a poll gap past this share of a measured time makes the pace a guess
CLOSE_ENOUGH = 0.25  # seconds: polls this close are what the warning advises, whatever they measure


def _fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least squares of making = startup + speed x seconds (startup at least 0)."""
    xs = [x for x, _ in points]
    if max(xs) - min(xs) < 0.5:
        return statistics.mean(y / x for x, y in points), 0.0
    mean_x, mean_y = statistics.mean(xs), statistics.mean(y for _, y in points)
    speed = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x in xs)
    startup = mean_y - speed * mean_x
    if speed < 0:  # longer videos made sooner: no sign of a speed per second, so one time for all (serve takes no
        return 0.0, mean_y  # negative speed, and had refused the pace drift wrote)
    if startup < 0:  # a negative start-up is noise: refit through the origin
        return sum(x * y for x, y in points) / sum(x * x for x in xs), 0.0
    return speed, startup


def serve_options(pace: dict[str, Any]) -> str:
    """Return the `ivh-mock serve` options that reproduce `pace`."""
    return " ".join(f"{OPTION_OF[key]} {pace[key]:g}" for key in PACE_KEYS)


def write_pace(pace: dict[str, Any], path: str | Path) -> Path:
    """Write the pace file `ivh-mock serve --pace FILE` reads."""
    path = Path(path)
    path.write_text(json.dumps(pace, indent=2) + "\n", encoding="utf-8")
    return path
