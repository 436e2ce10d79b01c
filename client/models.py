"""Typed results of the API, built from its JSON with the API's own meaning kept in the names."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

TERMINAL = frozenset({"SUCCESS", "FAIL"})
TICKS_PER_MS = 10_000  # TextTimestampResult counts in units of 100 ns


@dataclass(frozen=True)
class Submitted:
    task_id: str
    request_id: str


@dataclass(frozen=True)
class Word:
    word: str
    start: int  # 100 ns ticks, as the API gives them
    end: int

    @property
    def start_ms(self) -> float:
        return self.start / TICKS_PER_MS

    @property
    def end_ms(self) -> float:
        return self.end / TICKS_PER_MS


@dataclass(frozen=True)
class Sentence:
    text: str
    words: tuple[Word, ...]


@dataclass(frozen=True)
class Progress:
    """A task as getprogress reports it."""

    task_id: str
    status: str
    progress: int
    array_count: int
    media_url: str
    subtitles_url: str
    duration_ms: int
    fail_code: int
    fail_message: str
    sentences: tuple[Sentence, ...] = ()
    request_id: str = ""
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"

    @classmethod
    def from_payload(cls, task_id: str, payload: dict[str, Any], request_id: str = "") -> Progress:
        sentences = tuple(
            Sentence(s["Sentence"], tuple(Word(w["Word"], w["StartTimestamp"], w["EndTimestamp"]) for w in s["Words"]))
            for s in payload.get("TextTimestampResult") or ()
        )
        return cls(task_id=task_id, status=payload["Status"], progress=payload["Progress"],
                   array_count=payload.get("ArrayCount", 0), media_url=payload.get("MediaUrl", ""),
                   subtitles_url=payload.get("SubtitlesUrl") or "", duration_ms=payload.get("Duration", 0),
                   fail_code=payload.get("FailCode") or 0, fail_message=payload.get("FailMessage") or "",
                   sentences=sentences, request_id=request_id, raw=payload)


@dataclass(frozen=True)
class Timbre:
    key: str
    name: str
    gender: int | None
    languages: tuple[str, ...]
    emotions: tuple[str, ...]
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_detail(cls, detail: dict[str, Any]) -> Timbre:
        return cls(key=detail["TimbreKey"], name=detail["TimbreName"], gender=detail.get("TimbreGender"),
                   languages=tuple(detail.get("TimbreLanguages") or ()),
                   emotions=tuple(detail.get("EmotionalCategories") or ()), raw=detail)


@dataclass(frozen=True)
class TimbrePage:
    timbres: tuple[Timbre, ...]
    total: int
    page_index: int
    page_size: int


@dataclass(frozen=True)
class CallbackResult:
    """The body the API POSTs to CallbackUrl when a task finishes."""

    task_id: str
    status: str
    progress: int
    media_url: str
    subtitles_url: str
    fail_message: str

    @property
    def succeeded(self) -> bool:
        return self.status == "SUCCESS"
