"""Take in a submission's media: download the photo and the driving audio, judge them by the profile, keep them.

A photo that cannot be downloaded is refused at once with -101002 (image download failed), and one that breaks a
rule with 100002, naming the rule. Audio is part of the task's work: a download failure makes the task FAIL with
801010 and a rule broken with 801009, as rendering starts (DECISIONS.md D44, D45).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from ..errors import ImageDownloadFailed, ParameterValueError
from ..store.blobs import Blobs
from .assets import AssetHost, digest_of
from .fetch import Fetcher, FetchFailed, TooLarge
from .mediacheck import check_audio, check_photo, too_large

AUDIO_DOWNLOAD_FAIL_CODE = 801010  # fetching a URL resource failed
AUDIO_RULE_FAIL_CODE = 801009  # parameter error; see FailMessage


@dataclass(frozen=True)
class Inputs:
    photo: str  # SHA-256 of the kept photo
    width: int
    height: int
    audio: str = ""  # SHA-256 of the kept audio (OriginalVoice, when it passed)
    audio_ms: int = 0  # its measured duration
    fail_code: int = 0  # the audio's FailCode when it did not pass
    fail_message: str = ""
    notes: tuple[str, ...] = ()  # rules the profile only recommends and the photo misses
    # the bytes kept, to be kept again once the task that refers to them is stored (a sweep may have dropped them
    # meanwhile: Blobs.set_aside)
    kept: tuple[tuple[str, bytes], ...] = field(default=(), repr=False, compare=False)

    def keep_again(self, blobs: Blobs) -> None:
        for name, data in self.kept:
            blobs.put("media", data, name)


class Verdicts:
    """The verdicts on recent files, by content: the same bytes under the same rules always get the same verdict,
    so a photo every submission shares is decoded once, not once per request."""

    def __init__(self, size: int = 256):
        self._size = size
        self._cache: OrderedDict[tuple[str, str, str], Any] = OrderedDict()
        self._lock = threading.Lock()

    def judge(self, check: Callable[..., Any], data: bytes, rules: dict[str, Any], field_name: str) -> tuple[str, Any]:
        """Return the SHA-256 of `data` and `check(data, rules, field_name)`, remembered for these bytes."""
        key = (check.__name__, sys.intern(digest_of(data)), field_name)  # one string per file, however many tasks
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return key[1], self._cache[key]
        verdict = check(data, rules, field_name)
        with self._lock:
            self._cache[key] = verdict
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return key[1], verdict


class Intake:
    """Takes in submissions' media: downloads by `fetcher` (the mock's own asset URLs read from `assets`), judges by
    the `profile`'s rules, keeps what passed in `blobs`."""

    def __init__(self, fetcher: Fetcher, assets: AssetHost, blobs: Blobs, profile: dict[str, Any]):
        self.fetcher, self.assets, self.blobs, self.profile = fetcher, assets, blobs, profile
        self.verdicts = Verdicts()

    def take(self, payload: dict[str, Any], base_url: str) -> Inputs:
        """Download and judge the payload's photo (raising the refusal) and audio (reporting the FailCode)."""
        rules = self.profile
        by = time.monotonic() + self.fetcher.limits.total_timeout  # the photo and the audio share it: in all, the
        # submission's downloads stay within the limit (one after the other, each with its own, took twice as long)

        def local(url: str) -> bytes | None:
            return self.assets.lookup(url, base_url)

        field_name = "Payload.RefPhotoUrl"
        try:
            data = self.fetcher.fetch(payload["RefPhotoUrl"], rules["photo"]["maxBytes"], local, by=by)
        except TooLarge as exc:
            message = too_large("photo", field_name, f"more than {exc.limit} bytes", exc.limit).message
            raise ParameterValueError(message) from None
        except FetchFailed as exc:
            raise ImageDownloadFailed(f"{field_name}: image download failed: {exc}") from None
        fetched = time.monotonic()
        sha, verdict = self.verdicts.judge(check_photo, data, rules["photo"], field_name)
        if not verdict.ok:
            raise ParameterValueError("; ".join(problem.message for problem in verdict.problems))
        inputs = Inputs(photo=self.blobs.put("media", data, sha), width=verdict.width, height=verdict.height,
                        notes=tuple(note.message for note in verdict.notes), kept=((sha, data),))
        if payload.get("DriverType") != "OriginalVoice":
            return inputs
        by += time.monotonic() - fetched  # judging and keeping the photo is no download: the audio has that time too
        field_name = "Payload.InputAudioUrl"
        try:
            data = self.fetcher.fetch(payload["InputAudioUrl"], rules["audio"]["maxBytes"], local, by=by)
        except TooLarge as exc:
            message = too_large("audio", field_name, f"more than {exc.limit} bytes", exc.limit).message
            return _failed(inputs, AUDIO_RULE_FAIL_CODE, message)
        except FetchFailed as exc:
            return _failed(inputs, AUDIO_DOWNLOAD_FAIL_CODE, f"{field_name}: audio download failed: {exc}")
        sha, audio = self.verdicts.judge(check_audio, data, rules["audio"], field_name)
        if not audio.ok:
            return _failed(inputs, AUDIO_RULE_FAIL_CODE, "; ".join(problem.message for problem in audio.problems))
        return replace(inputs, audio=self.blobs.put("media", data, sha), audio_ms=audio.duration_ms,
                       kept=(*inputs.kept, (sha, data)))


def _failed(inputs: Inputs, code: int, message: str) -> Inputs:
    return replace(inputs, fail_code=code, fail_message=message)
