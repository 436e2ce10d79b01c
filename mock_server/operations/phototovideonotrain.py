"""Accept a photo-to-video task and plan its whole trajectory: queue, render, outcome.

The request has already passed the spec; this checks what depends on the account (timbre, quota, balance) and the
scenario, atomically per account so that concurrent submissions queue in a consistent FIFO order.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from typing import TYPE_CHECKING, Any, Callable

from ivh_mock.spec.validation import past

from ..accounts import Account
from ..errors import BalanceInsufficient, ConcurrencyNotPurchased, ParameterValueError, QuotaExceeded, refusal
from ..lifecycle import trajectory
from ..lifecycle.speech import Rates, estimate
from ..media_out import results
from ..pace import effective
from ..store import NEVER, Backlog, JournalEntry, Task, new_id

if TYPE_CHECKING:
    from ..context import MockContext
    from .call import Call

log = logging.getLogger(__name__)
TOO_LONG_FAIL_CODE = 801009  # "parameter error; see FailMessage" (DECISIONS.md D34)


def _noted(journal: Callable[[Task], JournalEntry], note: str, task: Task) -> JournalEntry:
    return dataclasses.replace(journal(task), note=f"accepted with a note: {note}")


def run(ctx: MockContext, account: Account, payload: dict[str, Any], call: Call) -> dict[str, Any]:
    scenario = call.scenario
    if scenario.reject is not None:
        raise refusal(ctx.spec, scenario.reject, account.max_pending)
    if payload["DriverType"] == "Text":
        _check_timbre(ctx, payload["SpeechParam"])
    inputs = call.once("inputs", lambda: ctx.intake.take(payload, call.base_url))  # downloaded once per request
    speech = estimate(ctx.spec, Rates(ctx.config.cjk_chars_per_second, ctx.config.latin_words_per_second), payload)
    sentences = speech.sentences if speech else []
    duration_ms = speech.duration_ms if speech else inputs.audio_ms
    seconds = duration_ms / 1000
    pace = effective(ctx.config, account.pace, scenario.pace)  # the server's, the account's, then the request's
    render = (pace["render_startup_seconds"] + pace["render_speed"] * seconds) * scenario.factor
    max_progress = ctx.spec.service["progressWhileMakingMax"]
    outcome, code, message, at = "SUCCESS", 0, "", max_progress
    limit = ctx.profile["speech"]["maxSeconds"]
    if inputs.fail_code:
        outcome, code, message, at = "FAIL", inputs.fail_code, inputs.fail_message, 0
    elif speech and speech.seconds > limit:
        outcome, code, at = "FAIL", TOO_LONG_FAIL_CODE, 0
        message = f"InputSsml speaks for {past(speech.seconds, limit)} s; the limit is {limit} s"
    elif scenario.outcome == "FAIL":
        outcome, code, at = "FAIL", scenario.code, scenario.at
        message = f"{scenario.message or ctx.spec.errors.fail[code]['meaning']} (scenario {scenario.spec})"
    video = (results.job(payload, inputs.photo, (inputs.width, inputs.height), inputs.audio, duration_ms, sentences)
             if outcome == "SUCCESS" else None)

    def build(backlog_at: Callable[[float], Backlog]) -> Task:
        now = ctx.clock.now()
        backlog = backlog_at(now)  # its live tasks are the unfinished ones
        if len(backlog.live) >= account.max_pending:
            raise refusal(ctx.spec, QuotaExceeded.code, account.max_pending)
        concurrency_type = _concurrency_type(payload, account, backlog, duration_ms)
        queue = pace["queue_seconds"]
        start = NEVER if scenario.stuck else trajectory.start_time(backlog.live, now, account.slots, queue)
        finish = start + render if outcome == "SUCCESS" else start + render * _failing_at(at, max_progress)
        return Task(
            task_id=new_id(), appkey=account.appkey, seq=backlog.next_seq, payload=payload,
            request_id=call.request_id, submitted_at=now, start_at=start, finish_at=finish, render_seconds=render,
            duration_ms=duration_ms, outcome=outcome, fail_code=code, fail_message=message,
            concurrency_type=concurrency_type, scenario=scenario.spec,
            media_base=ctx.config.public_url or call.base_url, photo=inputs.photo, audio=inputs.audio,
            video=video.key if video else "", speech=speech.text if speech else "",
        )

    journal = call.journal
    if inputs.notes and journal is not None:  # accepted, as the API accepts it; the journal says what it misses
        journal = functools.partial(_noted, journal, "; ".join(inputs.notes))
    task = ctx.store.add_task(account.appkey, build, journal)  # rendered when first asked for (D47)
    try:  # a sweep since they were taken in saw no task referring to them
        inputs.keep_again(ctx.blobs)
    except OSError as error:  # the task is stored, and billed: its answer stands; its video will say what is missing
        log.warning("task %s: its media could not be kept again: %s", task.task_id, error)
    return {"TaskId": task.task_id}


def _failing_at(at: int, max_progress: int) -> float:
    """The share of the render after which a task that fails when Progress reaches `at` fails: Progress shows `at` for
    one step (a poll had seen at most `at - 1`, then FAIL: a "99 %, then timed out" could not be seen), unless `at` is 0
    (as rendering starts: COMMIT, then FAIL)."""
    return (at + 1) / max_progress if at else 0.0


def _concurrency_type(payload: dict[str, Any], account: Account, backlog: Backlog, duration_ms: int) -> str:
    """Resolve ConcurrencyType as the seed describes, refusing what the account has not bought."""
    has_package = account.hourly_package_seconds is not None
    requested = payload.get("ConcurrencyType")
    if requested is None:
        if account.exclusive_concurrency:
            requested = "Exclusive"
        elif has_package:
            requested = "Shared"
        else:
            raise BalanceInsufficient(
                "Payload.ConcurrencyType is unspecified and the account has bought neither concurrency nor an hourly"
                " package: the submission fails"
            )
    if requested == "Exclusive":
        if not account.exclusive_concurrency:
            raise ConcurrencyNotPurchased(
                "Payload.ConcurrencyType Exclusive needs purchased concurrency; this account has none"
            )
        return requested
    if not has_package:
        raise BalanceInsufficient("Payload.ConcurrencyType Shared needs an hourly package; this account has none")
    left_ms = backlog.package_left_ms(account.hourly_package_seconds)
    if left_ms < duration_ms:
        raise BalanceInsufficient(f"hourly package balance insufficient: {_seconds(max(left_ms, 0))} s left, the task "
                                  f"needs {_seconds(duration_ms)} s")
    return requested


def _seconds(ms: int) -> str:
    """Milliseconds as seconds, to the tenth (`1.0`) unless that would hide a difference (`0.799`)."""
    return f"{ms / 1000:.1f}" if ms % 100 == 0 else f"{ms / 1000:.3f}".rstrip("0")


def _check_timbre(ctx: MockContext, speech: dict[str, Any]) -> None:
    key = speech["TimbreKey"]
    timbre = ctx.timbres.get(key)
    if timbre is None:
        raise ParameterValueError(
            f"Payload.SpeechParam.TimbreKey {key!r} is not a timbre of this account; describetimbre lists them"
        )
    emotions = timbre["EmotionalCategories"]
    emotion = speech.get("EmotionCategory")
    if emotion is not None and emotion not in emotions:
        allowed = ", ".join(emotions) if emotions else f"none: {key} is not a multi-emotion timbre"
        raise ParameterValueError(
            f"Payload.SpeechParam.EmotionCategory must be one of the timbre's categories ({allowed}), got {emotion!r}"
        )
    languages = timbre["TimbreLanguages"]
    language = speech.get("TimbreLanguage")
    if language is None and len(languages) > 1:
        raise ParameterValueError(
            f"Payload.SpeechParam.TimbreLanguage is required for multilingual timbre {key} (one of "
            f"{', '.join(languages)})"
        )
    if language is not None and language not in languages:
        raise ParameterValueError(
            f"Payload.SpeechParam.TimbreLanguage must be one of {', '.join(languages)} for {key}, got {language!r}"
        )
