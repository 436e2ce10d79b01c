"""Deterministic sound: the placeholder voice of Text tasks and the sample audio files, as 16-bit mono PCM.

A "syllable" is a short voiced tone (a fundamental and two harmonics under a rise-and-fall envelope) whose pitch
follows the unit it stands for, so the same text always sounds the same and each word is audible where
TextTimestampResult says it is spoken.
"""

from __future__ import annotations

import functools
import io
import math
import zlib
from array import array
from typing import TYPE_CHECKING, Iterable, Iterator

if TYPE_CHECKING:  # PyAV is imported on first use: a server that never meets audio or renders never loads it
    import av


RATE = 24_000
PITCHES = (150.0, 165.0, 180.0, 200.0, 220.0, 240.0)
# Encoders for the audio formats the API takes (and flac, which it does not), as (container, codec, sample rate).
ENCODINGS = {
    "wav": ("wav", "pcm_s16le", RATE),
    "mp3": ("mp3", "libmp3lame", RATE),
    "wma": ("asf", "wmav2", RATE),
    "m4a": ("ipod", "aac", RATE),
    "aac": ("adts", "aac", RATE),
    "ogg": ("ogg", "libopus", 48_000),
    "flac": ("flac", "flac", RATE),
}
# Each encoder's quickest setting: what is encoded is a test's input or a sample, listened to by nobody; FFmpeg's AAC
# encoder spent 0.6 s of CPU on a minute, 0.46 s with its fast coder, Opus 0.45 s and 0.19 s at level 0 (D65).
FASTEST = {"aac": {"aac_coder": "fast"}, "libmp3lame": {"compression_level": "9"},
           "libopus": {"compression_level": "0"}}


@functools.lru_cache(maxsize=256)
def syllable(pitch: float, samples: int, rate: int = RATE) -> bytes:
    """Return one syllable of `samples` samples: voiced for its first 85 %, then a short silence."""
    voiced = int(samples * 0.85)
    wave = array("h", bytes(2 * samples))
    for i in range(voiced):
        envelope = math.sin(math.pi * i / voiced) ** 0.5
        t = 2 * math.pi * pitch * i / rate
        wave[i] = int(9000 * envelope * (math.sin(t) + 0.5 * math.sin(2 * t) + 0.25 * math.sin(3 * t)) / 1.75)
    return wave.tobytes()


def pitch_of(text: str) -> float:
    return PITCHES[zlib.crc32(text.encode("utf-8")) % len(PITCHES)]


def voice(units: Iterable[tuple[float, float, str]], seconds: float, rate: int = RATE) -> bytes:
    """Return `seconds` of PCM with one syllable per (start, end, text) unit, silence elsewhere."""
    total = round(seconds * rate)
    pcm = bytearray(2 * total)
    for start, end, text in units:
        first = min(round(start * rate), total)
        count = min(round(end * rate), total) - first
        if count > 0:
            pcm[2 * first:2 * (first + count)] = syllable(pitch_of(text), count, rate)
    return bytes(pcm)


def babble(seconds: float, rate: int = RATE, syllables_per_second: float = 4.0) -> bytes:
    """Return `seconds` of speech-like PCM: syllables in groups of five with a pause after each group."""
    step = 1 / syllables_per_second
    units, at, index = [], 0.0, 0
    while at + step <= seconds:
        units.append((at, at + step, str(index)))
        at += step * (2 if index % 5 == 4 else 1)
        index += 1
    return voice(units, seconds, rate)


def frames(pcm: bytes, rate: int, size: int = 1024) -> Iterator[av.AudioFrame]:
    """Cut 16-bit mono PCM into PyAV frames with running timestamps (in samples)."""
    import av

    for start in range(0, len(pcm) // 2, size):
        chunk = pcm[2 * start:2 * (start + size)]
        frame = av.AudioFrame(format="s16", layout="mono", samples=len(chunk) // 2)
        frame.planes[0].update(chunk)
        frame.sample_rate, frame.pts = rate, start
        yield frame


def encode(pcm: bytes, fmt: str, rate: int = RATE) -> bytes:
    """Encode 16-bit mono PCM at `rate` as an audio file of format `fmt` (a key of ENCODINGS)."""
    import av

    container_format, codec, out_rate = ENCODINGS[fmt]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=container_format) as container:
        stream = container.add_stream(codec, rate=out_rate, options=FASTEST.get(codec, {}))
        stream.layout = "mono"
        stream.bit_rate = 64_000  # some encoders (wmav2) have no default
        resampler = av.AudioResampler(format=stream.codec_context.codec.audio_formats[0].name, layout="mono",
                                      rate=out_rate, frame_size=stream.codec_context.frame_size or None)
        if not stream.codec_context.codec.capabilities & av.codec.Capabilities.small_last_frame:  # pad the end to a whole frame
            step = 2 * (stream.codec_context.frame_size or 1) * rate // out_rate
            pcm += bytes(-len(pcm) % step)
        for frame in [*frames(pcm, rate), None]:
            for out in resampler.resample(frame):
                out.pts = None
                container.mux(stream.encode(out))
        container.mux(stream.encode(None))
    return buffer.getvalue()
