"""A task's trajectory: planned once when it is accepted, then read at any moment from the plan and the clock.

COMMIT while queued behind the account's other tasks (FIFO, `Account.slots` at once), MAKING while rendering with
Progress rising from 0 towards 99, then SUCCESS (Progress 100) or FAIL (Progress -1). Nothing sleeps and no thread
moves a task along: the state is a function of the stored plan and the time.

The one outcome a plan cannot hold is that of uploads to the caller's storage (`Task.uploads`, DECISIONS.md D52):
such a task stays MAKING at Progress 99 once rendered until the outcome is recorded, then reaches SUCCESS, or FAIL
801015 when an upload failed.
"""

from __future__ import annotations

from bisect import bisect_left
from functools import partial
from itertools import compress
from operator import ne
from typing import TYPE_CHECKING, Any, Callable, Sequence

from ..store import NEVER, Task, UploadRecord
from ..store.base import FINISH_OF, START_OF

if TYPE_CHECKING:
    from ..context import MockContext

UPLOAD_FAIL_CODE = 801015  # "upload to the given S3 URL failed"
VIDEO_PATH = "/broadcast/Basic/video/{task_id}.mp4"
SUBTITLE_PATH = "/broadcast/Basic/subtitle/{task_id}.srt"


def start_time(live: Sequence[Sequence[float]], submitted_at: float, slots: int, queue_seconds: float) -> float:
    """Return when a task submitted now starts rendering: not before `queue_seconds` have passed, after every
    earlier task of the account has started (FIFO), as soon as fewer than `slots` of them are rendering. `live` holds
    (start_at, finish_at, ...) of the account's unfinished tasks (`Backlog.live`): a finished one started and ended
    before `submitted_at`, so it can neither come later nor be rendering then.

    The earliest time by those rules (`at`) comes after every start, so the tasks rendering then are those that
    finish after it; it is too early exactly when `slots` of them still render then, and the `slots`-th latest finish
    is the time one of those slots frees up. Each pass over `live` runs in C: an account may hold a thousand
    unfinished tasks."""
    starts = list(map(START_OF, live))
    finishes = list(map(FINISH_OF, live))
    if NEVER in starts:  # a task stuck in the queue never starts: it neither delays the next nor holds a slot
        finishes = list(compress(finishes, map(partial(ne, NEVER), starts)))
        starts = list(filter(partial(ne, NEVER), starts))
    at = max(submitted_at + queue_seconds, max(starts, default=-NEVER))
    if len(finishes) < slots:
        return at
    return max(at, max(finishes) if slots == 1 else sorted(finishes)[-slots])


def upload_of(ctx: MockContext, task: Task) -> UploadRecord | None:
    """The recorded outcome of the task's uploads; None when it owes none or they are not done yet."""
    return ctx.store.upload_of(task.task_id) if task.uploads else None


def status(task: Task, now: float, upload: UploadRecord | None = None) -> str:
    """The task's Status at `now`; `upload` is its recorded upload outcome (`upload_of`), if it owes uploads."""
    if now < task.start_at:
        return "COMMIT"
    if now < task.finish_at:
        return "MAKING"
    if task.uploads:  # rendered: waiting for its uploads until their outcome is recorded
        if upload is None or now < upload.at:
            return "MAKING"
        return "SUCCESS" if upload.ok else "FAIL"
    return task.outcome


def state(ctx: MockContext, task: Task, now: float) -> str:
    """The task's Status at `now`, its uploads' outcome read from the store."""
    return status(task, now, upload_of(ctx, task))


def progress_value(task: Task, now: float, max_progress: int, upload: UploadRecord | None = None) -> int:
    state = status(task, now, upload)
    if state == "COMMIT":
        return 0
    if state == "SUCCESS":
        return 100
    if state == "FAIL":
        return -1
    return min(max_progress, int(max_progress * (now - task.start_at) / task.render_seconds))


def media_urls(task: Task) -> tuple[str, str]:
    """Return the task's video URL and (Text tasks only) its subtitles URL."""
    video = task.media_base + VIDEO_PATH.format(task_id=task.task_id)
    subtitles = task.media_base + SUBTITLE_PATH.format(task_id=task.task_id)
    return video, subtitles if task.payload["DriverType"] == "Text" else ""


def report(ctx: MockContext, task: Task, now: float,
           unstarted: Callable[[str], Sequence[int]] | None = None) -> dict[str, Any]:
    """Return the getprogress Payload of `task` at `now`: every documented field, zero-valued until it applies.
    `unstarted(appkey)`, for a list of many tasks, returns what `Store.unstarted` does for `now`, read once per
    account; else the store counts the tasks queued before this one (a query each: 200 tasks queued behind 5,000 took
    the control API's list half a second on SQLite)."""
    max_progress = ctx.spec.service["progressWhileMakingMax"]
    upload = upload_of(ctx, task)
    state = status(task, now, upload)
    payload: dict[str, Any] = {
        "Progress": progress_value(task, now, max_progress, upload),
        "MediaUrl": "",
        "SubtitlesUrl": "",
        "Status": state,
        # ArrayCount: the account's tasks submitted before this one that are still queued
        "ArrayCount": 0 if state != "COMMIT" else _queued_before(ctx, task, now, unstarted),
        "FailCode": 0,
        "FailMessage": "",
        "TextTimestampResult": [],
        "Duration": 0,
    }
    if state == "SUCCESS":
        payload["MediaUrl"], payload["SubtitlesUrl"] = media_urls(task)
        payload["Duration"] = task.duration_ms
        payload["TextTimestampResult"] = task.sentences
    elif state == "FAIL" and upload is not None and not upload.ok:
        payload["FailCode"], payload["FailMessage"] = UPLOAD_FAIL_CODE, upload.fail_message
    elif state == "FAIL":
        payload["FailCode"], payload["FailMessage"] = task.fail_code, task.fail_message
    return payload


def _queued_before(ctx: MockContext, task: Task, now: float,
                   unstarted: Callable[[str], Sequence[int]] | None) -> int:
    if unstarted is None:
        return ctx.store.count_waiting(task.appkey, task.seq, now)
    return bisect_left(unstarted(task.appkey), task.seq)


def callback_body(report_payload: dict[str, Any], task: Task) -> dict[str, Any]:
    """Return the documented callback body: the final report's fields that the callback carries."""
    fields = ("Progress", "MediaUrl", "SubtitlesUrl", "Status", "FailMessage")
    return {"Payload": {**{name: report_payload[name] for name in fields}, "TaskId": task.task_id}}


def timeline(task: Task, now: float, upload: UploadRecord | None = None) -> list[dict[str, Any]]:
    """Return the states the task has reached by `now`, each with when it was reached."""
    end = (task.outcome, task.finish_at)
    if task.uploads:  # the end comes with the uploads' outcome
        end = ("SUCCESS" if upload.ok else "FAIL", max(upload.at, task.finish_at)) if upload else ("", NEVER)
    steps = [("COMMIT", task.submitted_at), ("MAKING", task.start_at), end]
    return [{"Status": name, "At": at} for name, at in steps if at <= now]
