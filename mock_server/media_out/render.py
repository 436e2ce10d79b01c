"""Render the result video of a task: the reference photo at the output resolution, with the voice track, as a real
MP4 (H.264 + AAC) lasting the task's Duration.

The picture keeps the photo's aspect ratio at about the pixel count of 1280x720 (720P) or 1920x1080 (1080P), each
side rounded up to a multiple of 32, as the live service was seen to do (DECISIONS.md D47). The sound is the driving
audio for OriginalVoice tasks and the placeholder voice (`synth.voice`) for Text tasks. A video is rendered when it is
first asked for, on a background thread (never while a submission waits), and kept under a key derived from every
input, so equal inputs render once.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import io
import logging
import math
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

import orjson
from PIL import Image, ImageOps

from ..deadline import Waits, holding
from ..store.base import fields_of
from ..store.blobs import Blobs
from . import synth

if TYPE_CHECKING:  # PyAV is imported on first use: a server that never meets audio or renders never loads it
    import av

log = logging.getLogger("ivh_mock.render")
VERSION = 1  # part of every key: a change to the output format renders anew
FPS = 25
STILL_EVERY = FPS  # the picture does not move, so one frame a second is encoded (variable frame rate)
SAMPLE_RATE = 24_000
PIXELS = {0: 1280 * 720, 1: 1920 * 1080}  # VideoParam.Resolution 0 = 720P, 1 = 1080P
TICKS_PER_SECOND = 10_000_000
# A photo that decodes to more bytes than this (a phone's 12 MP photo at 48 MB, the intl profile's 4096 px square
# at 64 MB) is decoded only while no other such photo is decoding in the process, whether to check it or to render
# it: ten of them at once had taken a worker to 780 MB (the cn profile only recommends the sides: 81 MP took 1.7 GB).
LARGE_BYTES = 32 * 1_048_576
_LARGE_DECODE = threading.Lock()
GREYS_16 = {"I", "I;16", "I;16B", "I;16L", "I;16N"}  # 16-bit (and 32-bit) greys, which convert("RGB") clips white


def displayed_size(image: Image.Image) -> tuple[int, int]:
    """Return an image's width and height as shown, after its EXIF orientation turns it."""
    width, height = image.size
    return (height, width) if image.getexif().get(ORIENTATION) in TURNED else (width, height)


def decoded_bytes(image: Image.Image) -> int:
    """About what decoding `image` takes: its pixels times the bytes Pillow keeps for one (one for a single 8-bit
    band, two for 16-bit greys, four for anything else: RGB is stored in four)."""
    if image.mode in ("1", "L", "P"):
        return image.width * image.height
    return image.width * image.height * (2 if image.mode.startswith("I;16") else 4)


@contextlib.contextmanager
def decoding(image: Image.Image) -> Iterator[None]:
    """Decode a large photo (one that takes more than LARGE_BYTES) only while no other large one is decoding in this
    process, and hand its memory back to the system afterwards: eight at once would take eight times the memory."""
    if decoded_bytes(image) <= LARGE_BYTES:
        yield
        return
    with _LARGE_DECODE:
        try:
            yield
        finally:
            _trim()


def _trim() -> None:
    """Return freed heap memory to the system (glibc keeps large freed blocks of each thread's arena otherwise)."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass


def _rgb(image: Image.Image) -> Image.Image:
    """`image` in RGB; a 16-bit grey scaled to 8 bits first (convert clips it: a mid grey came out white)."""
    if image.mode in GREYS_16:
        image = image.point(lambda value: value * (1 / 256)).convert("L")
    return image.convert("RGB")


def output_size(width: int, height: int, resolution: int = 0) -> tuple[int, int]:
    """Return the video size for a photo: its aspect ratio at about PIXELS[resolution] pixels, each side rounded
    up to a multiple of 32 (within 32..4096)."""
    scale = math.sqrt(PIXELS[resolution] / (width * height))

    def side(value: int) -> int:
        return min(4096, max(32, math.ceil(value * scale / 32) * 32))

    return side(width), side(height)

ORIENTATION, TURNED = 0x0112, {5, 6, 7, 8}  # EXIF orientations that swap width and height


@dataclass(frozen=True)
class Job:
    """Everything the video depends on; its key names the result."""

    photo: str  # SHA-256 of the photo in the blob store
    width: int
    height: int
    duration_ms: int
    audio: str | None = None  # SHA-256 of the driving audio (OriginalVoice)
    words: tuple[tuple[int, int, str], ...] = ()  # (start, end, text) in 100 ns ticks (Text)

    @property
    def key(self) -> str:  # not a cached_property: on Python 3.11 its first read takes a lock all instances share
        text = orjson.dumps([VERSION, fields_of(self)], option=orjson.OPT_SORT_KEYS)  # computed for every submission
        return sys.intern(hashlib.sha256(text).hexdigest())  # shared by tasks of the same inputs


def encode(job: Job, photo: bytes, audio: bytes | None, target: Path) -> None:
    """Write the MP4 of `job` to `target` (a file: the index moves to the front, so players start at once)."""
    import av

    with Image.open(io.BytesIO(photo)) as image:
        # a JPEG decodes at the smallest scale (1/2, 1/4, 1/8) still larger than the video on both sides (either way
        # round, before its EXIF turn): a phone's photo decodes in a quarter of the memory and a third of the time,
        # and, so sized, may need no turn at the large-decode lock
        image.draft("RGB", (max(job.width, job.height),) * 2)
        with decoding(image):
            picture = _rgb(ImageOps.exif_transpose(image)).resize((job.width, job.height), Image.LANCZOS)
    frame_count = max(1, round(job.duration_ms * FPS / 1000))
    samples = round(job.duration_ms * SAMPLE_RATE / 1000)
    pcm = _driving_pcm(audio, samples) if audio is not None else synth.voice(
        ((start / TICKS_PER_SECOND, end / TICKS_PER_SECOND, text) for start, end, text in job.words),
        samples / SAMPLE_RATE, SAMPLE_RATE)
    with av.open(str(target), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = job.width, job.height, "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "stillimage", "x264-params": f"keyint={2 * FPS}"}
        sound = container.add_stream("aac", rate=SAMPLE_RATE)
        sound.layout = "mono"
        sound.options = {"aac_coder": "fast"}
        frame = av.VideoFrame.from_image(picture).reformat(format="yuv420p")
        stills = sorted({*range(0, frame_count, STILL_EVERY), frame_count - 1})
        for index, pts in enumerate(stills):
            frame.pts = pts
            for packet in video.encode(frame):
                _mux(container, packet, stills, index)
        for packet in video.encode(None):
            _mux(container, packet, stills, len(stills) - 1)
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=SAMPLE_RATE, frame_size=1024)
        for chunk in [*synth.frames(pcm, SAMPLE_RATE), None]:
            for out in resampler.resample(chunk):
                container.mux(sound.encode(out))
        container.mux(sound.encode(None))


def _mux(container: av.container.OutputContainer, packet: av.Packet, stills: list[int], index: int) -> None:
    """Mux a still's packet with its duration: until the next still, one frame for the last."""
    if packet.pts is not None:
        position = stills.index(packet.pts) if packet.pts in stills else index
        following = stills[position + 1] if position + 1 < len(stills) else stills[position] + 1
        packet.duration = following - stills[position]
    container.mux(packet)


def _driving_pcm(audio: bytes, samples: int) -> bytes:
    """Decode the driving audio to 16-bit mono PCM at SAMPLE_RATE, cut or padded to `samples`."""
    import av

    pcm = bytearray()
    resampler, taking = None, None
    with av.open(io.BytesIO(audio)) as container:
        for frame in container.decode(audio=0):
            # a resampler takes frames of one rate, layout and format only; a stream may change them as it plays (two
            # files joined), which the check measured: the resampler is made anew, after draining the one before
            kind = (frame.sample_rate, frame.layout.name, frame.format.name)
            if kind != taking:
                pcm += _drained(resampler)
                resampler, taking = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE), kind
            for out in resampler.resample(frame):
                pcm += bytes(out.planes[0])[:2 * out.samples]
            if len(pcm) >= 2 * samples:
                break
    return bytes(pcm[:2 * samples].ljust(2 * samples, b"\0"))


def _drained(resampler: Any) -> bytes:
    """What `resampler` (if any) still holds."""
    if resampler is None:
        return b""
    return b"".join(bytes(out.planes[0])[:2 * out.samples] for out in resampler.resample(None))


class Renderer:
    """Renders jobs one at a time on a background thread; results land in the blob store under `videos/<key>`."""

    def __init__(self, blobs: Blobs, waits: Waits | None = None):
        self.blobs = blobs
        self._waits = waits  # shared with the downloads: requests that may wait on something slow at once
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ivh-render")
        self._lock = threading.Lock()
        self._pending: dict[str, Future[Path]] = {}

    def submit(self, job: Job) -> Future[Path]:
        """Queue `job` unless its video exists or is being rendered; return its future path."""
        key = job.key
        with self._lock:
            future = self._pending.get(key)
            if future is not None:
                return future
            path = self.blobs.path("videos", key)
            if path.exists():
                future = Future()
                future.set_result(path)
                return future
            future = self._pool.submit(self._render, job)
            self._pending[key] = future
        # outside the lock: a render already over (one that failed at once) runs the callback here, in this thread,
        # and _forget takes the lock; under it, the request and then every render waited for ever
        future.add_done_callback(lambda done: self._forget(key, done))
        return future

    def video(self, job: Job, timeout: float, *, limited: bool = True) -> Path:
        """Return the path of the job's video, waiting for the render thread when it is not ready yet (raising
        TimeoutError past `timeout`, or, when `limited` (a request's thread waits), at once when too many requests
        wait already)."""
        future = self.submit(job)
        if future.done() or not limited:
            return future.result(timeout)
        with holding(self._waits, lambda limit: TimeoutError("too many requests are waiting on renders and downloads")):
            return future.result(timeout)

    def stop(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _forget(self, key: str, done: Future[Path]) -> None:
        with self._lock:
            if self._pending.get(key) is done:
                del self._pending[key]

    def _render(self, job: Job) -> Path:
        photo = self.blobs.get("media", job.photo)
        audio = self.blobs.get("media", job.audio) if job.audio else None
        if photo is None or (job.audio and audio is None):
            raise FileNotFoundError("an input of this video is no longer kept")
        key = job.key
        with self.blobs.writing("videos", key) as target:
            encode(job, photo, audio, target)
        if not (self.blobs.exists("media", job.photo) and (not job.audio or self.blobs.exists("media", job.audio))):
            # its task was reset or removed as it rendered, its inputs swept: nothing refers to the video any more
            self.blobs.delete("videos", key)
            raise FileNotFoundError("an input of this video is no longer kept")
        return self.blobs.path("videos", key)
