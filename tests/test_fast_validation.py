"""The compiled fast path of request validation never accepts what the explaining (slow) path refuses, and it does
accept the ordinary valid requests, or it would be no fast path at all.

Bodies are generated around a valid submission: each field replaced by values at and past its edges, by look-alikes
of the right type (1.0 for an integer, a line break or Unicode white space in a URL or SSML, broken markup) and by
arbitrary JSON; fields dropped and unknown ones added.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ivh_mock import spec as spec_module

from .conftest import AUDIO_PAYLOAD, TEXT_PAYLOAD

SPEC = spec_module.load()
SUBMIT = SPEC._validators["phototovideonotrain"]
# ECMA-262 white space and line terminators, and what other regex engines call white space, side by side
SPACES = ["\t", "\n", "\r", "\v", "\f", " ", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u1680", "\u2000",
          "\u200a", "\u200b", "\u2028", "\u2029", "\u202f", "\u205f", "\u3000", "\ufeff"]
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                    | st.text(max_size=8),
                    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children,
                                                                                       max_size=3), max_leaves=6)
NUMBERS = st.sampled_from([0, 1, 2, 3, 4, 10, 11, -1, 49, 50, 200, 201, 0.5, 0.4999, 1.5, 1.5001, 1.0, 2.0, 10.0,
                           50.0, 2**53, 2**53 + 1, 2**64, -(2**63), 1e308, True, False])
URLS = st.builds(lambda scheme, space, tail: f"{scheme}host{space}/{tail}",
                 st.sampled_from(["http://", "https://", "HTTP://", "ftp://", "", "https:/"]),
                 st.sampled_from(["", *SPACES]), st.text(max_size=4))
SSML = st.one_of(
    st.builds(lambda text, space: f"Hello{space}{text} there", st.text(max_size=10), st.sampled_from(["", *SPACES])),
    st.sampled_from(['<break time="1s"/>four', '<break time="11s"/>four', '<break time="50ms"/>four',
                     '<phoneme alphabet="py" ph="fu4">anchor</phoneme>', '<phoneme alphabet="py" ph="fu6">x</phoneme>',
                     "<unknown>tag</unknown>", "a < b and c", "<break", "abc", "abcd", "a" * 300, "a" * 301,
                     "\U0001f600" * 4, "\U0001f600" * 3, "text\n", "text\r\n", "好" * 301]),
)
STRINGS = st.one_of(st.text(max_size=6), st.sampled_from(["Text", "OriginalVoice", "text", "Exclusive", "Shared",
                                                          "female_1", "male_20", "", *SPACES]))
ANY = st.one_of(NUMBERS, URLS, SSML, STRINGS, JSON)
URL_FIELD, SSML_FIELD, NUMBER_FIELD, TEXT_FIELD = (st.one_of(kind, kind, kind, ANY)
                                                   for kind in (URLS, SSML, NUMBERS, STRINGS))
FIELDS = {  # each field mostly gets values of its own kind, where the two engines could disagree
    "RefPhotoUrl": URL_FIELD, "InputAudioUrl": URL_FIELD, "CallbackUrl": URL_FIELD, "InputSsml": SSML_FIELD,
    "DriverType": TEXT_FIELD, "ConcurrencyType": TEXT_FIELD, "SpeechParam.TimbreKey": TEXT_FIELD,
    "SpeechParam.EmotionCategory": TEXT_FIELD, "SpeechParam.TimbreLanguage": TEXT_FIELD,
    "SpeechParam.Speed": NUMBER_FIELD, "SpeechParam.Volume": NUMBER_FIELD, "SpeechParam.EmotionIntensity": NUMBER_FIELD,
    "VideoParam.EmotionLevel": NUMBER_FIELD, "SpeechParam.Other": ANY, "SpeechParam": ANY, "VideoParam": ANY,
    "VideoParam.Other": ANY, "Other": ANY,
}


def _with(payload: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    payload = copy.deepcopy(payload)
    *parents, name = field.split(".")
    node = payload
    for parent in parents:
        if not isinstance(node.get(parent), dict):
            node[parent] = {}
        node = node[parent]
    if value is ...:
        node.pop(name, None)
    else:
        node[name] = value
    return payload


@st.composite
def bodies(draw) -> Any:
    payload = draw(st.sampled_from([TEXT_PAYLOAD, AUDIO_PAYLOAD, {**TEXT_PAYLOAD, "VideoParam": {"EmotionLevel": 2}}]))
    for _ in range(draw(st.integers(0, 2))):
        field = draw(st.sampled_from(sorted(FIELDS)))
        payload = _with(payload, field, draw(st.one_of(st.just(...), FIELDS[field])))
    shape = draw(st.sampled_from(["envelope", "envelope", "envelope", "header", "any"]))
    if shape == "any":
        return draw(JSON)
    return {"Header": draw(st.sampled_from([{}, {"RequestID": "r"}, [], {"RequestID": 1}])) if shape == "header"
            else {}, "Payload": payload}


def slow_violations(validator, instance: Any) -> list[Any]:
    return list(validator._validator.iter_errors(instance))


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies())
def test_the_fast_path_never_accepts_what_the_slow_path_refuses(body):
    assert SUBMIT._fast is not None, "the submission schema has no fast path"
    if SUBMIT._fast(body):
        assert slow_violations(SUBMIT, body) == [], f"the fast path accepted {body!r}"
    # and the same body sent as JSON text and read back (what the mock validates) gets the same verdicts
    try:
        wire = json.loads(json.dumps(body))
    except (TypeError, ValueError):
        return
    assert SPEC.validate("phototovideonotrain", wire) == SPEC.validate("phototovideonotrain", body)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(["RefPhotoUrl", "InputAudioUrl", "CallbackUrl", "InputSsml", "SpeechParam.TimbreKey"]),
       prefix=st.sampled_from(["https://", "http://", "", "Hello "]),
       text=st.text(st.sampled_from([*SPACES, "a", "/", ".", ":", "<", ">", "&", '"', "\\", "\0", "好", "\U0001f600"]),
                    min_size=1, max_size=12))
def test_strings_with_any_white_space_are_not_let_through_by_the_fast_path(field, prefix, text):
    """Where regex engines disagree most: what counts as white space, a line break, the end of the string."""
    body = {"Header": {}, "Payload": _with({**AUDIO_PAYLOAD, "InputSsml": "Hello there",
                                            "SpeechParam": TEXT_PAYLOAD["SpeechParam"]}, field, prefix + text)}
    if SUBMIT._fast(body):
        assert slow_violations(SUBMIT, body) == [], f"the fast path accepted {body!r}"


@settings(deadline=None)  # timing belongs in bench/, not here: a busy machine must not fail this
@given(st.dictionaries(st.sampled_from(["appkey", "timestamp", "signature", "other"]),
                       st.one_of(STRINGS, NUMBERS, st.from_regex(r"\A[0-9]{1,13}\n?\Z"))))
def test_the_query_fast_path_never_accepts_what_the_slow_path_refuses(params):
    for validator in SPEC._query_validators.values():
        if validator._fast is not None and validator._fast(params):
            assert slow_violations(validator, params) == [], params


@pytest.mark.parametrize("body", [
    {"Header": {}, "Payload": TEXT_PAYLOAD},
    {"Header": {"RequestID": "abc"}, "Payload": AUDIO_PAYLOAD},
    {"Header": {}, "Payload": {**TEXT_PAYLOAD, "CallbackUrl": "https://example.com/cb", "ConcurrencyType": "Shared",
                               "VideoParam": {"EmotionLevel": 3}}},
], ids=["text", "audio", "every field"])
def test_ordinary_valid_submissions_take_the_fast_path(body):
    assert slow_violations(SUBMIT, body) == []
    assert SUBMIT._fast(body) is True


@pytest.mark.parametrize("value, why", [
    (1.0, "1.0 is an integer to JSON Schema, not to the API"),
    ((1,), "a tuple is not a JSON array to the slow path"),
    (2**60, "beyond 2**53 a double would round it"),
])
def test_values_the_engines_read_differently_go_to_the_slow_path(value, why):
    body = {"Header": {}, "Payload": {**TEXT_PAYLOAD, "SpeechParam": {**TEXT_PAYLOAD["SpeechParam"], "Volume": value}}}
    assert SUBMIT._fast(body) is False, why


@pytest.mark.parametrize("ssml", ["hello\n", "hello\r", '<break time="11s"/>four', "<unknown>tag</unknown>"])
def test_the_projects_own_rules_run_on_the_fast_path(ssml):
    """A trailing line feed passes Python's `$`; broken SSML passes plain JSON Schema: neither passes either path."""
    body = {"Header": {}, "Payload": {**TEXT_PAYLOAD, "InputSsml": ssml}}
    assert SUBMIT._fast(body) is False
    assert slow_violations(SUBMIT, body)
