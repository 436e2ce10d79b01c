"""A task's trajectory: planned once when it is accepted, then read at any moment from the plan and the clock.

COMMIT while queued behind the account's other tasks (FIFO, `Account.slots` at once), MAKING while rendering with
Progress rising from 0 towards 99, then SUCCESS (Progress 100) or FAIL (Progress -1). Nothing sleeps and no thread
moves a task along: the state is a function of the stored plan and the time.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..store import NEVER, Task

if TYPE_CHECKING:
    from ..context import MockContext

VIDEO_PATH = "/broadcast/Basic/video/{task_id}.mp4"
SUBTITLE_PATH = "/broadcast/Basic/subtitle/{task_id}.srt"


def start_time(earlier: list[Task], submitted_at: float, slots: int, queue_seconds: float) -> float:
    """Return when a task submitted now starts rendering: not before `queue_seconds` have passed, after every
    earlier task of the account has started (FIFO), as soon as fewer than `slots` of them are rendering."""
    started = [task for task in earlier if task.start_at != NEVER]
    at = max([submitted_at + queue_seconds, *(task.start_at for task in started)])
    busy = sorted(task.finish_at for task in started if task.start_at <= at < task.finish_at)
    return at if len(busy) < slots else busy[len(busy) - slots]


def status(task: Task, now: float) -> str:
    if now < task.start_at:
        return "COMMIT"
    if now < task.finish_at:
        return "MAKING"
    return task.outcome


def progress_value(task: Task, now: float, max_progress: int) -> int:
    state = status(task, now)
    if state == "COMMIT":
        return 0
    if state == "SUCCESS":
        return 100
    if state == "FAIL":
        return -1
    return min(max_progress, int(max_progress * (now - task.start_at) / task.render_seconds))


def balance_used(tasks: list[Task], now: float) -> float:
    """Seconds of the hourly package taken by Shared tasks; a task that has failed gives its seconds back."""
    return sum(task.duration_ms for task in tasks
               if task.concurrency_type == "Shared" and not (task.outcome == "FAIL" and task.finish_at <= now)) / 1000


def media_urls(task: Task) -> tuple[str, str]:
    """Return the task's video URL and (Text tasks only) its subtitles URL."""
    video = task.media_base + VIDEO_PATH.format(task_id=task.task_id)
    subtitles = task.media_base + SUBTITLE_PATH.format(task_id=task.task_id)
    return video, subtitles if task.payload["DriverType"] == "Text" else ""


def report(ctx: MockContext, task: Task, now: float) -> dict[str, Any]:
    """Return the getprogress Payload of `task` at `now`: every documented field, zero-valued until it applies."""
    max_progress = ctx.spec.service["progressWhileMakingMax"]
    state = status(task, now)
    payload: dict[str, Any] = {
        "Progress": progress_value(task, now, max_progress),
        "MediaUrl": "",
        "SubtitlesUrl": "",
        "Status": state,
        # ArrayCount: the account's tasks submitted before this one that are still queued
        "ArrayCount": ctx.store.count_waiting(task.appkey, task.seq, now) if state == "COMMIT" else 0,
        "FailCode": 0,
        "FailMessage": "",
        "TextTimestampResult": [],
        "Duration": 0,
    }
    if state == "SUCCESS":
        payload["MediaUrl"], payload["SubtitlesUrl"] = media_urls(task)
        payload["Duration"] = task.duration_ms
        payload["TextTimestampResult"] = task.sentences
    elif state == "FAIL":
        payload["FailCode"], payload["FailMessage"] = task.fail_code, task.fail_message
    return payload


def callback_body(report_payload: dict[str, Any], task: Task) -> dict[str, Any]:
    """Return the documented callback body: the final report's fields that the callback carries."""
    fields = ("Progress", "MediaUrl", "SubtitlesUrl", "Status", "FailMessage")
    return {"Payload": {**{name: report_payload[name] for name in fields}, "TaskId": task.task_id}}


def timeline(task: Task, now: float) -> list[dict[str, Any]]:
    """Return the states the task has reached by `now`, each with when it was reached."""
    steps = [("COMMIT", task.submitted_at), ("MAKING", task.start_at), (task.outcome, task.finish_at)]
    return [{"Status": name, "At": at} for name, at in steps if at <= now]
