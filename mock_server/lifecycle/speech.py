"""The mock's stand-in for text-to-speech timing: how long InputSsml takes to speak, and when each unit is spoken.

Deterministic and documented (DECISIONS.md D33): Chinese characters at `cjk_chars_per_second`, words of other
scripts at `latin_words_per_second`, both divided by Speed; `<break>` adds its pause; `<sub>` speaks its alias.
"""

from __future__ import annotations

import functools
import math
import re
import sys
import unicodedata
from dataclasses import dataclass
from typing import Any

import orjson

from ivh_mock.spec import Spec
from ivh_mock.spec.ssml import Segment

TICKS_PER_SECOND = 10_000_000  # TextTimestampResult counts in units of 100 ns
CJK = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af"
TOKEN = re.compile(
    rf"(?P<cjk>[{CJK}])|(?P<word>[^\W_{CJK}]+(?:['\u2019\-][^\W_{CJK}]+)*)|(?P<end>[。！？；.!?;…])|(?P<other>.)",
    re.S,
)
# Pause of a <break> given by strength only (the SSML page names the strengths, not their lengths).
STRENGTH_SECONDS = {"x-weak": 0.1, "weak": 0.25, "medium": 0.5, "strong": 0.75, "x-strong": 1.0}
DEFAULT_STRENGTH = "medium"
OPENING = ("Ps", "Pi")  # Unicode's opening punctuation and initial quotes: `（`, `「`, `“`, `(`
REMEMBERED_CHARACTERS = 500  # the longest InputSsml whose speech a worker remembers (D66)


@dataclass(frozen=True)
class Rates:
    cjk_chars_per_second: float
    latin_words_per_second: float


@dataclass(frozen=True)
class Speech:
    """The estimated result of speaking a text: sentences with per-unit timestamps, and the total in ticks."""

    sentences: list[dict[str, Any]]
    ticks: int
    text: str  # the sentences as JSON text, as a task keeps them

    @property
    def duration_ms(self) -> int:
        return max(1, math.ceil(self.ticks / (TICKS_PER_SECOND // 1000)))

    @property
    def seconds(self) -> float:
        return self.ticks / TICKS_PER_SECOND


def pause_seconds(attributes: dict[str, str]) -> float:
    """Return the pause of a `<break>` with these attributes."""
    time = attributes.get("time")
    if time is not None:
        return int(time[:-2]) / 1000 if time.endswith("ms") else float(time[:-1])
    return STRENGTH_SECONDS[attributes.get("strength", DEFAULT_STRENGTH)]


def speak(segments: list[Segment], speed: float, rates: Rates) -> Speech:
    """Lay out `segments` on a timeline: one Word per Chinese character or per word of other scripts, sentences
    split after sentence-ending punctuation (D33)."""
    per_second = {"cjk": rates.cjk_chars_per_second * speed, "word": rates.latin_words_per_second * speed}
    spoken = dict.fromkeys(per_second, 0)  # the units of each kind spoken so far
    paused = 0  # the ticks of the pauses so far

    def at() -> int:
        """The time after what was spoken so far, worked out from the counts, not added up unit by unit: a unit's
        length rounded to whole ticks had added up past 60 s for a text of exactly 60 s (216 characters at 0.9)."""
        return paused + round(sum(count * TICKS_PER_SECOND / per_second[kind] for kind, count in spoken.items()))

    now, sentences, text, words = 0, [], "", []
    # the sentence's end was read: what follows it directly (`!"`, `！！`, `……`, `。”`) is still the sentence's, up to
    # a space, an opening bracket or quote (`。“`), or the next spoken unit
    ended = False
    previous = None  # the kind of the token before, in the same segment: "mark" for a mark a word took in

    def close():
        nonlocal text, words
        if words:
            sentences.append({"Sentence": text.strip(), "Words": words})
            text, words = "", []

    for segment in segments:
        if segment.pause is not None:
            paused += round(pause_seconds(segment.pause) * TICKS_PER_SECOND)
            now = at()
            previous = "pause"
            continue
        for match in TOKEN.finditer(segment.text):
            kind, value = match.lastgroup, match.group()
            if ended and (kind in spoken or value.isspace() or unicodedata.category(value) in OPENING):
                close()
                ended = False
            if kind == "other" and previous in ("word", "mark") and unicodedata.category(value)[0] == "M":
                kind = "mark"  # a combining mark (a decomposed accent, an Indic vowel sign) is part of its word
                words[-1]["Word"] += value
            elif kind == "word" and previous == "mark":  # the same word goes on after it (`cre` + U+0300 + `me`)
                words[-1]["Word"] += value
                kind = "mark"
            elif kind in spoken:
                if previous == "pause" and kind == "word" and text and not text[-1].isspace():
                    text += " "  # `Hello<break/>world`: two words, read as such
                spoken[kind] += 1
                start, now = now, at()
                words.append({"Word": value, "StartTimestamp": start, "EndTimestamp": now})
            elif kind == "end" and words:
                ended = True
            text += value
            previous = kind
    if not words and text.strip() and sentences:  # what follows the last sentence and speaks no word (`🙂`) is its
        sentences[-1]["Sentence"] += text.rstrip()  # own, never dropped
    close()
    # one string for every task that speaks the same text; integers and strings only, which orjson writes as json does
    return Speech(sentences, now, sys.intern(orjson.dumps(sentences).decode()))


def estimate(spec: Spec, rates: Rates, payload: dict[str, Any]) -> Speech | None:
    """Return the estimated speech of a Text task's payload (None for audio-driven tasks)."""
    if payload.get("DriverType") != "Text":
        return None
    text, speed = payload["InputSsml"], payload["SpeechParam"]["Speed"]
    if len(text) > REMEMBERED_CHARACTERS:
        return speak(spec.ssml_checker.segments(text), speed, rates)
    return _spoken(spec.ssml_checker, text, speed, rates)


@functools.lru_cache(maxsize=32)
def _spoken(checker: Any, text: str, speed: float, rates: Rates) -> Speech:
    """The speech of `text`, remembered: a test suite or a demo sends the same few texts again and again, and the
    same text at the same speed always speaks the same. A Speech is never changed once made. At most 32 texts of
    at most REMEMBERED_CHARACTERS: a Chinese character's word costs about half a kilobyte, so the table stays under
    8 MB."""
    return speak(checker.segments(text), speed, rates)


def srt(sentences: list[dict[str, Any]]) -> str:
    """Return SubRip subtitles with one cue per sentence, timed by its first and last word."""
    cues = []
    for number, sentence in enumerate(sentences, start=1):
        start, end = sentence["Words"][0]["StartTimestamp"], sentence["Words"][-1]["EndTimestamp"]
        cues.append(f"{number}\n{_srt_time(start)} --> {_srt_time(end)}\n{sentence['Sentence']}\n")
    return "\n".join(cues)


def _srt_time(ticks: int) -> str:
    ms = ticks // 10_000
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    seconds, millis = divmod(rest, 1000)
    return f"{hours:02}:{minutes:02}:{seconds:02},{millis:03}"
