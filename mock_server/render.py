"""Encode the result video: a real MP4 (H.264 + AAC) of exactly the task's duration.

For now the picture is a still neutral frame and the sound is silence; both streams are real, so players, browsers
and media libraries treat the file as the service's result.
"""

from __future__ import annotations

import functools
import io

import av

FPS = 25
WIDTH, HEIGHT = 320, 320
SAMPLE_RATE = 24_000
AUDIO_FRAME = 1024


@functools.lru_cache(maxsize=32)
def still_video(duration_ms: int) -> bytes:
    """Return MP4 bytes of `duration_ms` milliseconds (cached per duration: the content depends on nothing else)."""
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        video.options = {"preset": "ultrafast", "tune": "stillimage"}
        audio = container.add_stream("aac", rate=SAMPLE_RATE)
        audio.layout = "mono"

        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        for plane in frame.planes:
            plane.update(bytes([128]) * plane.buffer_size)
        for index in range(max(1, round(duration_ms * FPS / 1000))):
            frame.pts = index
            container.mux(video.encode(frame))
        container.mux(video.encode())

        silence = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME)
        silence.sample_rate = SAMPLE_RATE
        for plane in silence.planes:
            plane.update(bytes(plane.buffer_size))
        total = duration_ms * SAMPLE_RATE // 1000
        for start in range(0, total, AUDIO_FRAME):
            silence.pts = start
            container.mux(audio.encode(silence))
        container.mux(audio.encode())
    return buffer.getvalue()
