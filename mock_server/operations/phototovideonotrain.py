"""Accept a photo-to-video task: the request has already passed the spec; check what depends on the account."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..accounts import Account
from ..envelope import new_id
from ..errors import ParameterValueError
from ..store import Task

if TYPE_CHECKING:
    from ..app import MockContext


def run(ctx: MockContext, account: Account, payload: dict[str, Any], request_id: str) -> dict[str, Any]:
    if payload["DriverType"] == "Text":
        _check_timbre(ctx, payload["SpeechParam"])
    task = Task(new_id(), account.appkey, payload, ctx.clock.now(), request_id)
    ctx.store.add_task(task)
    return {"TaskId": task.task_id}


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
