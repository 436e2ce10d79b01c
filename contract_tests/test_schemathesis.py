"""Schemathesis generates requests for every operation of the spec, valid and invalid; the target must answer each
in the API's envelope: never a 5xx, always a response the spec describes, Code 0 for a valid request, a documented
non-zero Code for an invalid one.

Whether a request is valid is decided from the request actually sent (the spec's own validator, SSML included),
because the suite signs every request itself and points URLs at loopback, which can turn a generated "negative"
case into a valid one. A valid media URL is replaced by the suite's sample, and a valid callback or storage URL by
a local receiver, so nothing is fetched from or sent outside.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import pytest
import schemathesis
from hypothesis import given, note
from hypothesis import strategies as st
from ivh_mock.contract_tests.payloads import AUDIO, PHOTO
from ivh_mock.contract_tests.target import SUBMIT
from schemathesis.generation import GenerationMode

from ivh_mock import spec as spec_module

SPEC = spec_module.load()
SCHEMA = schemathesis.openapi.from_path(spec_module.SPEC_DIR / "openapi.yaml")
OPERATIONS = {op.definition.raw["operationId"]: op for op in (r.ok() for r in SCHEMA.get_all_operations())}
MEDIA = {"RefPhotoUrl": ("PhotoUrl", PHOTO), "InputAudioUrl": ("AudioUrl", AUDIO)}
# For a valid request, what else than Code 0 the target may answer without breaking the contract.
STATE_CODES = {"getprogress": (110006,)}  # a generated TaskId names no task of ours


def normalise(operation_id: str, body: Any, callback_url: str) -> Any:
    """Keep the generated request's validity, but let it touch nothing outside this machine or the account."""
    if not (isinstance(body, dict) and isinstance(body.get("Payload"), dict)):
        return body
    body = copy.deepcopy(body)
    payload = body["Payload"]
    for field, (pointer, sample) in MEDIA.items():
        if field in payload and not SPEC.check(f"#/components/schemas/{pointer}", payload[field]):
            payload[field] = sample
    if isinstance(payload.get("CallbackUrl"), str) and not SPEC.check(
            "#/components/schemas/PhotoToVideoNoTrainPayload/properties/CallbackUrl", payload["CallbackUrl"]):
        payload["CallbackUrl"] = callback_url
    for field in ("VideoStorageS3Url", "SubtitleStorageS3Url"):  # uploads go to loopback (which refuses a PUT)
        if isinstance(payload.get(field), str) and not SPEC.check("#/components/schemas/StorageUrl", payload[field]):
            payload[field] = callback_url
    speech = payload.get("SpeechParam")
    if isinstance(speech, dict) and isinstance(speech.get("TimbreKey"), str) and speech["TimbreKey"]:
        speech["TimbreKey"] = "female_1"  # a timbre every account has
        speech.pop("EmotionCategory", None)  # female_1 has no emotions or languages to choose from
        speech.pop("TimbreLanguage", None)
    if payload.get("ConcurrencyType") == "Exclusive":
        payload["ConcurrencyType"] = "Shared"  # Exclusive depends on what the account bought
    return body


@functools.cache
def cases(operation_id: str, mode: GenerationMode) -> st.SearchStrategy:
    """One strategy per operation and mode, built once: Hypothesis validates a strategy at its first draw, and one
    built anew for each example was validated for each (about 0.5 s of this module's 6 s against a served mock)."""
    return OPERATIONS[operation_id].as_strategy(generation_mode=mode)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
@pytest.mark.parametrize("operation_id", sorted(OPERATIONS))
@given(data=st.data())
def test_generated_requests_get_the_documented_answer(target, receiver, request, operation_id, mode, data):
    case = data.draw(cases(operation_id, mode))
    body = normalise(operation_id, case.body, receiver.url)
    sendable = body if isinstance(body, (bytes, dict, list, str, int, float, bool)) or body is None else b""
    valid = not isinstance(sendable, bytes) and not SPEC.validate(operation_id, sendable)
    if operation_id == SUBMIT and not target.guard.allows(sendable):
        if not getattr(request.node, "ivh_sent", False):  # nothing checked yet: a pass would say what is untrue
            pytest.skip(f"spend guard: every {mode.value} submission generated until now could be billed "
                        f"({target.guard.accepted} accepted of --ivh-allow-spend {target.guard.allowance})")
        return  # the spend guard: the examples sent before it stand
    request.node.ivh_sent = True
    # what was sent, for a failure's report: schemathesis's case prints nothing (its `Draw 1: ` stood alone)
    note(f"sent {operation_id} ({mode.value}): {sendable!r:.2000}")
    answer = target.send(operation_id, sendable, appkey=target.appkey(operation_id))

    assert answer.status < 500, f"{answer.status} for {sendable!r:.300}"
    assert answer.status == 200, answer.body
    schema_problems = SPEC.check_response(operation_id, answer.body)  # by the branch its Header.Code selects
    assert not schema_problems, [p.message for p in schema_problems]
    if valid:
        assert answer.code in (0, *STATE_CODES.get(operation_id, ())), (
            f"a valid request was refused: {answer.code} {answer.message} for {sendable!r:.300}")
    else:
        assert answer.code not in (0, None), f"an invalid request was accepted: {sendable!r:.300}"
        assert answer.code in SPEC.errors.header, f"undocumented code {answer.code}"
