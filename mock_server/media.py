"""Serve finished tasks' results where the service keeps them, and stop serving them when retention ends.

Paths follow the vendor's result URLs (`/broadcast/Basic/video/<TaskId>.mp4`, `/broadcast/Basic/subtitle/<TaskId>.srt`).
After the retention period the URLs answer as an object store does for a deleted key (DECISIONS.md D36).
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from flask import Flask, Response, request, send_file

from . import lifecycle, render
from .envelope import new_id
from .speech import srt

if TYPE_CHECKING:
    from .app import MockContext
    from .store import Task


def register(app: Flask, ctx: MockContext) -> None:
    def video(task_id: str):
        task = _available(ctx, task_id)
        if task is None:
            return _no_such_key()
        data = render.still_video(task.duration_ms)
        return send_file(io.BytesIO(data), mimetype="video/mp4", conditional=True, etag=f"{task_id}-v",
                         download_name=f"{task_id}.mp4", max_age=0)

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


def _available(ctx: MockContext, task_id: str) -> Task | None:
    """Return the task when its result exists now: it succeeded, and retention has not run out."""
    task = ctx.store.get_task(task_id)
    now = ctx.clock.now()
    if task is None or lifecycle.status(task, now) != "SUCCESS":
        return None
    if now >= task.finish_at + ctx.spec.service["retentionSeconds"]:
        return None
    return task


def _no_such_key() -> Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
        "<Message>The specified key does not exist.</Message>"
        f"<Resource>{escape(request.path)}</Resource><RequestId>{new_id()}</RequestId></Error>"
    )
    return Response(body, status=404, mimetype="application/xml")
