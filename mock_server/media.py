"""Serve finished tasks' results where the service keeps them, and delete them when retention ends.

Paths follow the vendor's result URLs (`/broadcast/Basic/video/<TaskId>.mp4`, `/broadcast/Basic/subtitle/<TaskId>.srt`).
The video is rendered in the background from the task's inputs (render.py); a download that comes before the render
has finished waits for it. Downloads honour Range requests. After the retention period the files are deleted and
the URLs answer as an object store does for a deleted key (DECISIONS.md D36).
"""

from __future__ import annotations

import io
import logging
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

from flask import Flask, Response, request, send_file
from PIL import Image

from . import lifecycle
from .envelope import new_id
from .mediacheck import displayed_size
from .render import Job, output_size
from .speech import srt

if TYPE_CHECKING:
    from .app import MockContext
    from .store import Task

log = logging.getLogger("ivh_mock.media")


def job(ctx: MockContext, payload: dict[str, Any], photo: str, photo_size: tuple[int, int], audio: str,
        duration_ms: int) -> Job:
    """Return the render job of a task: every input its video depends on."""
    speech = ctx.speech_of(payload)
    words = tuple((word["StartTimestamp"], word["EndTimestamp"], word["Word"])
                  for sentence in (speech.sentences if speech else []) for word in sentence["Words"])
    width, height = output_size(*photo_size, payload.get("VideoParam", {}).get("Resolution", 0))
    return Job(photo=photo, width=width, height=height, duration_ms=duration_ms, audio=audio or None, words=words)


def job_of(ctx: MockContext, task: Task) -> Job:
    """Return the render job of an accepted task (its photo must still be kept)."""
    with Image.open(ctx.blobs.path("media", task.photo)) as image:
        size = displayed_size(image)
    return job(ctx, task.payload, task.photo, size, task.audio, task.duration_ms)


def register(app: Flask, ctx: MockContext) -> None:
    def video(task_id: str):
        task = _available(ctx, task_id)
        if task is None or not ctx.blobs.exists("media", task.photo):
            return _no_such_key()
        try:
            path = ctx.renderer.video(job_of(ctx, task), ctx.config.render_wait_seconds)
        except FutureTimeout:
            return _error(503, "SlowDown", "the video is still rendering; retry shortly")
        except FileNotFoundError:
            return _no_such_key()
        return send_file(path, mimetype="video/mp4", conditional=True, etag=path.name, download_name=f"{task_id}.mp4",
                         max_age=0)

    def subtitles(task_id: str):
        task = _available(ctx, task_id)
        speech = ctx.speech_of(task.payload) if task else None
        if speech is None:
            return _no_such_key()
        data = srt(speech.sentences).encode("utf-8")
        return send_file(io.BytesIO(data), mimetype="application/x-subrip", conditional=True, etag=f"{task_id}-s",
                         download_name=f"{task_id}.srt", max_age=0)

    app.add_url_rule(lifecycle.VIDEO_PATH.replace("{task_id}", "<task_id>"), "media_video", video,
                     methods=["GET", "HEAD"])
    app.add_url_rule(lifecycle.SUBTITLE_PATH.replace("{task_id}", "<task_id>"), "media_subtitles", subtitles,
                     methods=["GET", "HEAD"])


def expires_at(ctx: MockContext, finish_at: float) -> float:
    """When the files of a task that finishes at `finish_at` stop being served and may be deleted."""
    return finish_at + ctx.spec.service["retentionSeconds"]


def _available(ctx: MockContext, task_id: str) -> Task | None:
    """Return the task when its result exists now: it succeeded, and retention has not run out."""
    task = ctx.store.get_task(task_id)
    now = ctx.clock.now()
    if task is None or lifecycle.status(task, now) != "SUCCESS" or now >= expires_at(ctx, task.finish_at):
        return None
    return task


def sweep(ctx: MockContext, removed: list[Task] | tuple[Task, ...] = ()) -> float:
    """Delete the files (inputs and rendered videos) that only tasks past their retention, or `removed` tasks no
    longer in the store, refer to. Return when, on the mock's clock, the next file can expire: no sweep before then
    can delete anything (a task accepted later finishes later still, unless the clock is set back)."""
    now = ctx.clock.now()
    kept: set[tuple[str, str]] = set()
    gone: set[tuple[str, str]] = {name for task in removed for name in _files(task.photo, task.audio, task.video)}
    next_due = expires_at(ctx, now)
    for finish_at, photo, audio, video in ctx.store.media_refs():
        expires = expires_at(ctx, finish_at)
        if now >= expires:
            gone.update(_files(photo, audio, video))
        else:
            kept.update(_files(photo, audio, video))
            next_due = min(next_due, expires)
    deleted = sum(ctx.blobs.delete(kind, name) for kind, name in gone - kept)
    if deleted:
        log.info("retention: deleted %d files", deleted)
    return next_due


def _files(photo: str, audio: str, video: str) -> set[tuple[str, str]]:
    return {(kind, name) for kind, name in (("media", photo), ("media", audio), ("videos", video)) if name}


def _no_such_key() -> Response:
    return _error(404, "NoSuchKey", "The specified key does not exist.")


def _error(status: int, code: str, message: str) -> Response:
    body = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{escape(message)}</Message>'
        f"<Resource>{escape(request.path)}</Resource><RequestId>{new_id()}</RequestId></Error>"
    )
    return Response(body, status=status, mimetype="application/xml")
