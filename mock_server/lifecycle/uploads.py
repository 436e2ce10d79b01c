"""Upload a rendered task's results to the caller's storage (VideoStorageS3Url, SubtitleStorageS3Url), once.

As a pre-signed S3 PUT URL expects: one HTTP PUT of the file's bytes with its Content-Type. The uploads obey the
download rules (`media_in.fetch.Limits`): http or https on every hop, at most `redirects` redirects (the PUT is sent
again to the new location), a connect timeout and a deadline for each file; the answer is read up to a few KiB. They
run in the background, claimed in the store with a lease like callbacks, so each task's files go out once however
many workers share the store, and again after a crash only if the outcome was never recorded. The recorded outcome
decides the task's end (trajectory.status): SUCCESS when every file was accepted (2xx), else FAIL 801015 with a
FailMessage naming each URL and what it answered (DECISIONS.md D52).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import requests
from ivh_mock.spec.urls import shown_url as shown  # a pre-signed URL's query is a secret

from .. import deadline
from ..media_in.fetch import Limits
from ..media_out import results
from ..store import Task, UploadRecord
from ..store.base import STORAGE_FIELDS
from .replies import read_some
from .shares import Backlog, Shares, record_made, target_of
from .speech import srt

if TYPE_CHECKING:
    from ..context import MockContext

log = logging.getLogger("ivh_mock.uploads")
CONTENT_TYPES = {"video": "video/mp4", "subtitles": "application/x-subrip"}
S3_ERROR = re.compile(r"<Code>([^<]{1,100})</Code>(?:.*?<Message>([^<]{0,200})</Message>)?", re.S)




class Uploader:
    def __init__(self, ctx: MockContext, limits: Limits, workers: int = 8):
        self.ctx, self.limits = ctx, limits
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ivh-upload")
        self._shares = Shares(workers)  # uploads under way, by the video's storage host: a quarter each at most
        self.backlog = Backlog(lambda: ctx.store.due_uploads(ctx.clock.now()),
                               lambda task: target_of(task.uploads[0][1]))
        self.stopping = threading.Event()  # set as the mock stops: a record waiting for the store gives up

    @property
    def lease_seconds(self) -> float:
        """How long a claim holds: the longest wait for the render, then each file's whole deadline."""
        return self.ctx.config.render_wait_seconds + len(STORAGE_FIELDS) * self.limits.total_timeout + 5

    def dispatch_due(self) -> int:
        """Claim tasks whose uploads are due for the free threads and hand them to the pool; return how many were
        claimed. As for callbacks (shares.py), a claim never waits in a queue while its lease runs out (it had, behind
        storage hosts that hang, and was then claimed and sent again), and a slow storage host holds a quarter of the
        threads at most, its backlog waiting behind other hosts."""
        store, lease, now = self.ctx.store, self.lease_seconds, self.ctx.clock.now()
        # due still: the backlog was read before the clock's last move, perhaps back by another worker
        return self._shares.start(self._pool, self.backlog, lambda task: task.finish_at <= now and
                                  store.claim_upload(task.task_id, lease), self.upload)

    def pending(self) -> int:
        """How many tasks' uploads due by the mock's clock are still to be made or under way."""
        return len(self.ctx.store.due_uploads(self.ctx.clock.now(), claimed=True))

    def upload(self, task: Task) -> UploadRecord | None:
        """PUT each of the task's files to its URL and record the outcome, whatever happens; unless the video was
        not rendered in time (the mock's own backlog, no fault of the task's): then nothing is recorded, and the
        uploads are made again once the claim's lease lapses."""
        ctx, started = self.ctx, time.monotonic()  # the claim was taken as this began
        try:
            files = self._put_all(task)
        except _NotRendered:
            log.warning("the video of task %s was not rendered within %g s: its uploads wait for the next claim",
                        task.task_id, ctx.config.render_wait_seconds)
            return None
        except Exception as exc:  # an upload must never take the dispatcher down; the task then fails, saying why
            log.exception("uploads of task %s failed unexpectedly", task.task_id)
            files = [{"field": field, "url": shown(url), "file": kind, "status": None,
                      "error": f"the file could not be produced ({type(exc).__name__})"} for field, url, kind
                     in task.uploads]
        failed = [entry for entry in files if not _accepted(entry)]
        record = UploadRecord(task_id=task.task_id, appkey=task.appkey, at=ctx.clock.now(), ok=not failed,
                              files=files, fail_message="; ".join(_described(entry) for entry in failed))
        record_made(ctx.store, lambda: ctx.store.record_upload(record), started + self.lease_seconds - 1,
                    self.stopping, f"the uploads of task {task.task_id}")
        return record

    def _put_all(self, task: Task) -> list[dict[str, Any]]:
        ctx, files = self.ctx, []
        for field, url, kind in task.uploads:
            if kind == "video":
                # not `limited`: the request threads' wait slots (downloads, first downloads of videos) are no
                # concern of this background thread, and a task had failed 801015 whenever they were taken
                try:
                    path = ctx.renderer.video(results.job_of(ctx.blobs, task), ctx.config.render_wait_seconds,
                                              limited=False)
                except TimeoutError:  # the render's, not an upload's (a file system's ETIMEDOUT is one too)
                    raise _NotRendered from None
                data = path.read_bytes()
            else:
                data = srt(task.sentences).encode("utf-8")
            files.append({"field": field, "url": shown(url), "file": kind,
                          **self.put(url, data, CONTENT_TYPES[kind])})
        return files

    def put(self, url: str, data: bytes, content_type: str) -> dict[str, Any]:
        """PUT `data` to `url` under the download rules; return what happened (status or error, reply, latency)."""
        limits = self.limits
        started = time.monotonic()
        outcome: dict[str, Any] = {"content_type": content_type, "bytes": len(data), "status": None, "error": None,
                                   "reply": ""}
        too_long = f"took longer than the upload limit of {limits.total_timeout:g} s"

        def put(hop: str, timeout: tuple[float, float]) -> requests.Response:
            return session.put(hop, data=data, headers={"Content-Type": content_type}, stream=True,
                               allow_redirects=False, timeout=timeout)

        # one wall-clock deadline for the whole exchange, redirects included (each sends the PUT again): a storage
        # host that reads or answers a byte at a time is cut off at the limit, as a download is (deadline.py). Its
        # connections are its own, closed after it, as a callback's are (a pooled one the host closed stayed in
        # CLOSE_WAIT); whole-exchange deadlines, no proxy settings
        with deadline.within(limits.total_timeout) as limit, deadline.session(pool_size=1) as session:
            try:
                with deadline.followed(put, url, limits.redirects, limits.connect_timeout, limit) as (_, reply):
                    outcome["status"], outcome["reply"] = reply.status_code, read_some(reply, limit.at)
            except deadline.Hop as hop:
                led = "a redirect led to" if hop.redirected else "the upload went to"
                outcome["error"] = {"scheme": f"{led} {shown(hop.url)}, not an http or https URL",
                                    "host": f"{led} a URL whose host cannot be parsed",
                                    "location": "a redirect led to a URL whose host cannot be parsed",
                                    "slow": too_long}.get(hop.kind, f"more than {limits.redirects} redirects")
            except requests.RequestException as exc:
                outcome["error"] = too_long if limit.expired else f"could not be reached ({type(exc).__name__})"
            if limit.expired and outcome["status"] is not None and outcome["error"] is None:
                outcome["status"], outcome["error"] = None, too_long  # the answer was cut off: not an answer
        outcome["latency_ms"] = round((time.monotonic() - started) * 1000, 1)
        return outcome

    def stop(self) -> None:
        self.stopping.set()
        self._pool.shutdown(wait=True)


class _NotRendered(Exception):
    """The task's video was not rendered within the render wait."""


def _accepted(entry: dict[str, Any]) -> bool:
    return entry["status"] is not None and 200 <= entry["status"] < 300


def _described(entry: dict[str, Any]) -> str:
    """`Payload.VideoStorageS3Url (http://host/bucket/key.mp4) answered HTTP 403 AccessDenied: Request has expired`."""
    where = f"Payload.{entry['field']} ({entry['url']})"
    if entry["status"] is None:
        return f"{where} {entry['error']}"
    found = S3_ERROR.search(entry.get("reply", ""))
    detail = f" {found.group(1)}" + (f": {found.group(2)}" if found.group(2) else "") if found else ""
    return f"{where} answered HTTP {entry['status']}{detail}"
