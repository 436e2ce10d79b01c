"""Serve finished tasks' results where the service keeps them, until retention ends.

Paths follow the vendor's result URLs (`/broadcast/Basic/video/<TaskId>.mp4`, `/broadcast/Basic/subtitle/<TaskId>.srt`).
The video is rendered from the task's inputs (media_out/render.py) when it is first asked for; the download that
asks waits for the render. Downloads honour Range requests. After the retention period the files are
deleted (media_out/results.py) and the URLs answer as an object store does for a deleted key (DECISIONS.md D36).
"""

from __future__ import annotations

import io
import os
import re
import time
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from flask import Flask, Response, request

from ..clock import MovableClock
from ..lifecycle import trajectory
from ..lifecycle.speech import srt
from ..media_out import results
from ..store import new_id
from .sendfile import send

if TYPE_CHECKING:
    from ..context import MockContext
    from ..store import Task

PREFIX = os.path.commonprefix([trajectory.VIDEO_PATH, trajectory.SUBTITLE_PATH])  # where every result URL lives


def register(app: Flask, ctx: MockContext) -> None:
    def video(task_id: str):
        task = _available(ctx, task_id)
        if task is None or not ctx.blobs.exists("media", task.photo):
            return _no_such_key()
        try:
            path = ctx.renderer.video(results.job_of(ctx.blobs, task), ctx.config.render_wait_seconds)
        except FutureTimeout:
            return error_response(503, "SlowDown", "the video is still rendering; retry shortly")
        except FileNotFoundError:
            return _no_such_key()
        try:
            return send(path, mimetype="video/mp4", etag=path.name, download_name=f"{task_id}.mp4", max_age=0)
        except FileNotFoundError:  # swept since, or the mock stopped and its scratch folder went: answered 500
            return _no_such_key()

    def subtitles(task_id: str):
        task = _available(ctx, task_id)
        # the task's files swept (the clock set back after they expired): gone with the video, as an object store's
        if task is None or task.payload["DriverType"] != "Text" or not ctx.blobs.exists("media", task.photo):
            return _no_such_key()
        data = srt(task.sentences).encode("utf-8")
        # made anew on each request, so dated when its task finished (by the mock's clock): when an object store
        # would have been given it. Without a date, If-Modified-Since and If-Unmodified-Since went unjudged. But never
        # later than the answer's Date, the real time (RFC 9110 8.8.2.1): a clock moved ahead (as tests move it) had
        # dated it in the future, and one near its latest time (D58) in the year 10000, which no HTTP date names.
        # its charset said: a client guessing it took an emoji's UTF-8 bytes for Cyrillic (cp1125)
        return send(io.BytesIO(data), mimetype="application/x-subrip; charset=utf-8", etag=f"{task_id}-s",
                    download_name=f"{task_id}.srt", max_age=0, last_modified=min(task.finish_at, time.time()))

    app.add_url_rule(trajectory.VIDEO_PATH.replace("{task_id}", "<task_id>"), "media_video", video,
                     methods=["GET", "HEAD"])
    app.add_url_rule(trajectory.SUBTITLE_PATH.replace("{task_id}", "<task_id>"), "media_subtitles", subtitles,
                     methods=["GET", "HEAD"])


def expires_at(ctx: MockContext, finish_at: float) -> float:
    """When the files of a task that finishes at `finish_at` stop being served and may be deleted."""
    return finish_at + ctx.spec.service["retentionSeconds"]


def _available(ctx: MockContext, task_id: str) -> Task | None:
    """Return the task when its result exists now: it succeeded, and retention has not run out."""
    task = ctx.store.get_task(task_id)
    now = ctx.clock.now()
    if task is None or trajectory.state(ctx, task, now) != "SUCCESS" or now >= expires_at(ctx, task.finish_at):
        return None
    return task


def sweep(ctx: MockContext, removed: results.Removed = ()) -> float:
    """Delete the files that only expired or `removed` tasks refer to (see media_out.results.sweep), unless nothing
    can have expired since the last sweep that read the tasks (media_out.results.Retention)."""
    clock = ctx.clock
    now, setbacks = clock.now_and_setbacks() if isinstance(clock, MovableClock) else (clock.now(), None)
    return ctx.retention.sweep(now, setbacks, removed)


def _no_such_key() -> Response:
    return error_response(404, "NoSuchKey", "The specified key does not exist.")


RETRY_AFTER_SECONDS = 1  # what a 503 (a video still rendering, or every slow wait taken) asks a client to wait


def error_response(status: int, code: str, message: str) -> Response:
    """Answer as an object store does: S3's XML error document; a 503 says when to retry (Retry-After, which
    urllib3's `Retry` honours when retries are enabled)."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if status == 503 else None
    return Response(error_document(code, message, request.path), status=status, mimetype="application/xml",
                    headers=headers)


def error_document(code: str, message: str, resource: str) -> str:
    """S3's XML error document for a request of `resource` (its path)."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{_xml(message)}</Message>'
            f"<Resource>{_xml(resource)}</Resource><RequestId>{new_id()}</RequestId></Error>")


def _xml(text: str) -> str:
    """`text` as XML character data: escaped, and each character XML 1.0 cannot hold at all (a path's %00 decodes to
    one) shown as its \\u escape, so that the document stays well-formed."""
    return _NOT_XML.sub(lambda match: f"\\u{ord(match.group()):04x}", escape(text))


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
