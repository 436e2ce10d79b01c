"""The result files of finished tasks: the render job each video is made from, and their deletion when retention
ends (DECISIONS.md D36)."""

from __future__ import annotations

import logging
import threading
from typing import Any, Iterable, NamedTuple, Sequence

from PIL import Image

from ..store import NEVER, Store, Task
from ..store.blobs import Blobs
from .render import Job, displayed_size, output_size

log = logging.getLogger("ivh_mock.media")


def words_of(sentences: Iterable[dict[str, Any]]) -> tuple[tuple[int, int, str], ...]:
    """Return (start, end, word) of every word of a TextTimestampResult, for the render's captions."""
    return tuple((word["StartTimestamp"], word["EndTimestamp"], word["Word"])
                 for sentence in sentences for word in sentence["Words"])


def job(payload: dict[str, Any], photo: str, photo_size: tuple[int, int], audio: str, duration_ms: int,
        sentences: Iterable[dict[str, Any]] = ()) -> Job:
    """Return the render job of a task: every input its video depends on."""
    width, height = output_size(*photo_size, payload.get("VideoParam", {}).get("Resolution", 0))
    return Job(photo=photo, width=width, height=height, duration_ms=duration_ms, audio=audio or None,
               words=words_of(sentences))


def job_of(blobs: Blobs, task: Task) -> Job:
    """Return the render job of an accepted task (its photo must still be kept)."""
    with Image.open(blobs.path("media", task.photo)) as image:
        size = displayed_size(image)
    return job(task.payload, task.photo, size, task.audio, task.duration_ms, task.sentences)


class FilesOf(NamedTuple):
    """The files of a task, its record not read (Store.media_refs): what a sweep needs of a removed task."""
    photo: str
    audio: str
    video: str


Removed = Sequence[Task | FilesOf]  # the tasks a reset removed, or their files


def sweep(store: Store, blobs: Blobs, now: float, retention_seconds: float, removed: Removed = ()) -> float:
    """Delete the files (inputs and rendered videos) that only tasks past their retention, or `removed` tasks no
    longer in the store, refer to, and every video no task refers to (a render that ended after its task was reset
    or removed wrote it, and nothing would ever have deleted it). Return when, on the mock's clock, the next file can
    expire: no sweep before then can delete anything (a task accepted later finishes later still, unless the clock is
    set back)."""
    return _swept(store, blobs, now, retention_seconds, removed)[0]


def _swept(store: Store, blobs: Blobs, now: float, retention_seconds: float,
           removed: Removed) -> tuple[float, set[str]]:
    """`sweep`, returning also the videos the stored tasks keep."""
    gone = _refs_of(removed)
    expired, kept, next_due = _refs(store, now, retention_seconds)
    # every video on disk that no task keeps goes, an expired task's among them: one not on disk is gone already (a
    # try at each expired task's video had cost a system call apiece, every sweep, for as long as the store kept it)
    candidates = {MEDIA: gone[MEDIA] | expired[MEDIA], VIDEOS: gone[VIDEOS].union(blobs.names(VIDEOS))}
    aside = [(kind, name) for kind in KINDS for name in candidates[kind] - kept[kind] if blobs.set_aside(kind, name)]
    if not aside:
        return next_due, kept[VIDEOS]
    # a submission may have stored a task that refers to one since the tasks were read (it took its media in, a file
    # kept already, before): read again, and put back what one refers to now (Blobs.set_aside)
    _, kept, next_due = _refs(store, now, retention_seconds)
    deleted = 0
    for kind, name in aside:
        if name in kept[kind]:
            blobs.put_back(kind, name)
        else:
            deleted += blobs.drop_aside(kind, name)
    if deleted:
        log.info("retention: deleted %d files", deleted)
    return next_due, kept[VIDEOS]


class Retention:
    """The sweeps a mock's control API and fixtures make (at each clock move and reset), remembering what the last
    one that read the tasks found: a sweep reads every stored task, and a clock move on a store of 50,000 took 130 ms
    on SQLite, a reset as much. A sweep asked for when nothing can have expired since is skipped: no task removed, the
    clock not moved back since (`setbacks`, counted with its state, by every worker sharing the store), not yet at the
    next expiry the last read found (a task accepted since finishes later still), and each video on disk one a task
    kept then. Anything else, and every sweep of the background dispatcher, reads the tasks (`sweep`)."""

    def __init__(self, store: Store, blobs: Blobs, retention_seconds: float):
        self.store, self.blobs, self.retention_seconds = store, blobs, retention_seconds
        self._last: tuple[Any, float, float, set[str]] | None = None  # setbacks, now, next expiry, videos kept
        self._lock = threading.Lock()

    def sweep(self, now: float, setbacks: Any, removed: Removed = ()) -> float:
        """Sweep at `now` (`sweep`) unless nothing can have expired since the last sweep that read the tasks; return
        when the next file can expire."""
        with self._lock:
            last = self._last
        if not removed and last is not None and last[0] == setbacks and last[1] <= now < last[2] \
                and last[3].issuperset(self.blobs.names(VIDEOS)):
            return last[2]
        next_due, kept = _swept(self.store, self.blobs, now, self.retention_seconds, removed)
        with self._lock:
            self._last = (setbacks, now, next_due, kept)
        return next_due


MEDIA, VIDEOS = "media", "videos"  # the kinds of file a task refers to: its inputs, and its rendered video
KINDS = (MEDIA, VIDEOS)
Refs = dict[str, set[str]]  # kind -> the names of the files of that kind


def _refs(store: Store, now: float, retention_seconds: float) -> tuple[Refs, Refs, float]:
    """The files of the stored tasks past their retention and of the others, and when the next of those expires.
    It reads every task the store holds, so each costs as little as it can: its names added to a set per kind (a set
    of (kind, name) pairs made for each task and merged had cost about four times as much)."""
    expired_media, expired_videos, kept_media, kept_videos = set(), set(), set(), set()
    expired: Refs = {MEDIA: expired_media, VIDEOS: expired_videos}
    kept: Refs = {MEDIA: kept_media, VIDEOS: kept_videos}
    next_due = now + retention_seconds
    for finish_at, photo, audio, video in store.media_refs():
        if finish_at == NEVER:  # stuck in the queue: it never renders nor serves a file, and had kept them for ever
            continue  # (a video it shares with a finished task among them)
        expires = finish_at + retention_seconds
        if now >= expires:
            media, videos = expired_media, expired_videos
        else:
            media, videos = kept_media, kept_videos
            if expires < next_due:
                next_due = expires
        if photo:
            media.add(photo)
        if audio:
            media.add(audio)
        if video:
            videos.add(video)
    # a task whose uploads are still to be made renders and sends its files first: a clock moved a week on at once
    # had taken them, and failed it 801015 ("the file could not be produced"); looked at again once they are made
    for task in store.due_uploads(now, claimed=True):
        _add(kept, task.photo, task.audio, task.video)
        next_due = now
    return expired, kept, next_due


def _refs_of(tasks: Removed) -> Refs:
    refs: Refs = {MEDIA: set(), VIDEOS: set()}
    for task in tasks:
        _add(refs, task.photo, task.audio, task.video)
    return refs


def _add(refs: Refs, photo: str, audio: str, video: str) -> None:
    if photo:
        refs[MEDIA].add(photo)
    if audio:
        refs[MEDIA].add(audio)
    if video:
        refs[VIDEOS].add(video)
