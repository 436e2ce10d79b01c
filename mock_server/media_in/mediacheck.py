"""Judge the files behind RefPhotoUrl and InputAudioUrl by the active profile's rules (`x-ivh-profiles` in the spec).

The format is read from the bytes (Pillow for photos, PyAV for audio), never from the URL's extension. Each broken
rule becomes a Problem naming the field, the rule and what the file has; rules the profile only recommends
(`enforced: false`) become notes instead and do not refuse the file.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from ivh_mock.spec.validation import past
from PIL import Image, UnidentifiedImageError

from ..media_out.render import decoding, displayed_size

# Pillow's own decompression-bomb threshold: more pixels than this is refused before any pixel is decoded.
MAX_PIXELS = 89_478_485
# Pillow format -> the spec's names for it; PyAV container -> the spec's name (a codec check follows).
# MPO (a phone's or a stereo camera's multi-picture JPEG) is a JPEG file whose first picture is a baseline JPEG
PHOTO_FORMATS = {"JPEG": ("jpg", "jpeg"), "MPO": ("jpg", "jpeg"), "PNG": ("png",), "BMP": ("bmp",), "WEBP": ("webp",)}
AUDIO_CONTAINERS = {"wav": "wav", "mp3": "mp3", "asf": "wma", "mov,mp4,m4a,3gp,3g2,mj2": "m4a", "aac": "aac",
                    "ogg": "ogg"}
EDIT_LISTS = {"mov,mp4,m4a,3gp,3g2,mj2"}  # containers whose declared duration is exact (an ADTS one is a guess)
AUDIO_SLACK_SECONDS = 1.0  # decoding stops this far past the maximum duration: the verdict is known by then


@dataclass(frozen=True)
class Problem:
    rule: str  # the profile's rule, e.g. photo.sidePixels
    message: str


@dataclass(frozen=True)
class Verdict:
    """What a file is (format and measurements) and which rules it breaks or only misses the recommendation of."""

    kind: str
    format: str | None = None
    width: int = 0
    height: int = 0
    duration_ms: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _size(count: int) -> str:
    return f"{count / 1_048_576:g} MB" if count % 1_048_576 == 0 else f"{count} bytes"


def too_large(kind: str, field_name: str, size: str, limit: int) -> Problem:
    """The problem of a file over the profile's byte limit; `size` says how large it is ("12 bytes", "more than")."""
    return Problem(f"{kind}.maxBytes", f"{field_name}: the {kind} has {size}; at most {_size(limit)} is allowed")


def check_photo(data: bytes, rules: dict[str, Any], field_name: str = "Payload.RefPhotoUrl") -> Verdict:
    """Return the verdict on a photo's bytes under a profile's `photo` rules."""
    problems: list[Problem] = []
    notes: list[Problem] = []
    if len(data) > rules["maxBytes"]:
        problems.append(too_large("photo", field_name, f"{len(data)} bytes", rules["maxBytes"]))
    allowed = ", ".join(rules["formats"])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        problems.append(Problem("photo.pixels", f"{field_name}: the photo has more than {MAX_PIXELS} pixels (a "
                                                f"decompression bomb) and is refused undecoded"))
        return Verdict("photo", problems=problems)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        problems.append(Problem("photo.formats", f"{field_name}: the file is not an image in a supported format "
                                                 f"(read from its bytes); the photo must be one of {allowed}"))
        return Verdict("photo", problems=problems)
    with image:
        names = PHOTO_FORMATS.get(image.format or "", ())
        if not set(names) & set(rules["formats"]):
            problems.append(Problem("photo.formats", f"{field_name}: the file is {image.format} (read from its "
                                                     f"bytes); the photo must be one of {allowed}"))
            return Verdict("photo", format=image.format, problems=problems)
        # Every rule on the size is judged from the header, before a pixel is decoded: a 300 KB PNG can decode to
        # hundreds of MB, so a photo those rules refuse is never decoded.
        width, height = _undecoded_size(image)
        problems += _size_rules(width, height, rules, field_name, notes)
        if problems:
            return Verdict("photo", format=names[0], width=width, height=height, problems=problems)
        try:
            with decoding(image), warnings.catch_warnings():
                warnings.simplefilter("ignore")
                image.load()
                shown = displayed_size(image)
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            problems.append(Problem("photo.readable", f"{field_name}: the {names[0]} file is truncated or corrupt "
                                                      f"({exc})"))
            return Verdict("photo", format=names[0], width=width, height=height, problems=problems)
        if shown != (width, height):  # a PNG whose EXIF orientation came after its pixels
            width, height = shown
            notes.clear()
            problems += _size_rules(width, height, rules, field_name, notes)
    return Verdict("photo", format=names[0], width=width, height=height, problems=problems, notes=notes)


def _undecoded_size(image: Image.Image) -> tuple[int, int]:
    """The displayed size as far as the header tells: a PNG's EXIF may come after its pixels, where reading it
    would decode them, so such a PNG is taken as stored until it is decoded."""
    if image.format == "PNG" and "exif" not in image.info:
        return image.size
    return displayed_size(image)


def _size_rules(width: int, height: int, rules: dict[str, Any], field_name: str, notes: list[Problem]) -> list[Problem]:
    """Return the problems of a photo of this displayed size (Pillow's pixel limit, the profile's sides and aspect
    ratio); rules the profile only recommends go to `notes`."""
    if width * height > MAX_PIXELS:
        return [Problem("photo.pixels", f"{field_name}: the photo is {width}x{height} px, more than {MAX_PIXELS} "
                                        f"pixels; it is refused undecoded")]
    problems: list[Problem] = []
    sides = rules["sidePixels"]
    if not (sides["minimum"] <= width <= sides["maximum"] and sides["minimum"] <= height <= sides["maximum"]):
        (problems if sides["enforced"] else notes).append(Problem(
            "photo.sidePixels", f"{field_name}: the photo is {width}x{height} px; each side must be within "
                                f"{sides['minimum']}..{sides['maximum']} px"))
    aspect = rules["aspectRatio"]
    ratio = Fraction(width, height)
    low, high = Fraction(str(aspect["minimum"])), Fraction(str(aspect["maximum"]))
    if not low <= ratio <= high:
        shown = past(float(ratio), float(high if ratio > high else low), 2)  # 2.0005 had been shown as "2"
        (problems if aspect["enforced"] else notes).append(Problem(
            "photo.aspectRatio", f"{field_name}: the photo is {width}x{height} px (width/height {shown}); "
                                 f"width/height must be within {low}..{high} (1:2 to 2:1)"))
    return problems


def check_audio(data: bytes, rules: dict[str, Any], field_name: str = "Payload.InputAudioUrl") -> Verdict:
    """Return the verdict on an audio file's bytes under a profile's `audio` rules; the duration is measured by
    decoding every sample (container headers can lie)."""
    import av  # on first use: a server that never meets audio or renders never loads PyAV

    problems: list[Problem] = []
    if len(data) > rules["maxBytes"]:
        problems.append(too_large("audio", field_name, f"{len(data)} bytes", rules["maxBytes"]))
    allowed = ", ".join(rules["formats"])
    limits = rules["durationSeconds"]
    try:
        with av.open(io.BytesIO(data), "r") as container:
            name = AUDIO_CONTAINERS.get(container.format.name)
            streams = container.streams.audio
            if name is None or name not in rules["formats"] or not streams:
                # FFmpeg's name for a photo is its reader's (`piped jpeg sequence`): say first that it holds no sound
                what = (f"holds no sound: it is an image or a video ({container.format.long_name}, "
                        if not streams and container.streams.video else f"is {container.format.long_name} (")
                problems.append(Problem("audio.formats", f"{field_name}: the file {what}read from its bytes); the "
                                                         f"audio must be one of {allowed}"))
                return Verdict("audio", problems=problems)
            seconds = _decoded_seconds(container, streams[0], limits["maximum"] + AUDIO_SLACK_SECONDS)
    except (av.FFmpegError, ValueError, UnicodeDecodeError, IndexError) as exc:
        problems.append(Problem("audio.readable", f"{field_name}: the file is not readable audio, truncated or "
                                                  f"corrupt ({type(exc).__name__}); it must be one of {allowed}"))
        return Verdict("audio", problems=problems)
    if seconds == 0:
        problems.append(Problem("audio.readable", f"{field_name}: the {name} file holds no decodable sound"))
        return Verdict("audio", format=name, problems=problems)
    duration_ms = round(seconds * 1000)
    if not limits["minimum"] <= seconds <= limits["maximum"]:
        measured = f"{seconds:.3f} s" if seconds <= limits["maximum"] else f"more than {limits['maximum']} s"
        problems.append(Problem("audio.durationSeconds", f"{field_name}: the audio lasts {measured}; it must last "
                                                         f"{limits['minimum']}..{limits['maximum']} s"))
    return Verdict("audio", format=name, duration_ms=duration_ms, problems=problems)


def _decoded_seconds(container: Any, stream: Any, stop_after: float) -> float:
    """Return how long the stream plays: the samples it decodes to, cut at the duration its container declares
    (an MP4's edit list trims the encoder's padding; a header that claims more than the data holds is ignored)."""
    if stream.codec_context is None:  # a header no decoder takes (a WAV of 0 bits a sample): unreadable, said so
        raise ValueError("no decoder for its stream")
    rate = stream.codec_context.sample_rate or stream.sample_rate
    before, samples = 0.0, 0  # the seconds of the parts at earlier rates, and the samples at this one
    for frame in container.decode(stream):
        if frame.sample_rate and frame.sample_rate != rate:  # a stream may change rate as it plays (files joined)
            before, samples, rate = before + (samples / rate if rate else 0.0), 0, frame.sample_rate
        samples += frame.samples
        if samples > (stop_after - before) * rate:
            break
    seconds = before + (samples / rate if rate else 0.0)  # counted, not summed frame by frame: 2 s stays 2.0
    if container.format.name in EDIT_LISTS and stream.duration and stream.time_base:
        seconds = min(seconds, float(stream.duration * stream.time_base))
    return seconds
