"""One named property test per documented constraint: values at, just inside and just outside each edge, the
target's verdict, and the client's pre-flight verdict, which must agree with it.

The limits are written here as the vendor's page states them, not read from the spec, so that a spec (or a mock)
that drifts from the page fails here.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from ivh_mock.client import ParameterError, TaskFailedError
from ivh_mock.contract_tests.payloads import AUDIO, PHOTO, patched
from ivh_mock.contract_tests.target import SUBMIT

from ivh_mock import spec as spec_module

CATALOGUE = spec_module.load().errors.header
TEXT = {"RefPhotoUrl": PHOTO, "DriverType": "Text", "InputSsml": "Hello, I am the virtual anchor",
        "SpeechParam": {"TimbreKey": "female_1", "Speed": 1.0}}
AUDIO_DRIVEN = {"RefPhotoUrl": PHOTO, "DriverType": "OriginalVoice", "InputAudioUrl": AUDIO}
BUILT_IN_TIMBRES = {f"male_{n}" for n in range(1, 21)} | {f"female_{n}" for n in range(1, 24)}
# each one code point, one or two UTF-16 units; all spoken but the emoji
SPEAKABLE = st.sampled_from(["a", "B", "z", "好", "字", "é", "\U0001f600", "\U00020000"])


@pytest.fixture
def verdict(target, request):
    """Send a payload and check the target's and the pre-flight verdicts against the expected one. Once the spend
    guard sends nothing more at all, the test is skipped as it starts: it would otherwise pass having sent nothing."""
    target.guard.check_allowance(billed_only=False)
    appkey = target.appkey(request.node.name)
    preflight = target.client(appkey)

    def check(payload: dict[str, Any], valid: bool, field: str, *, schema_rule: bool = True,
              also_ok: tuple[int, ...] = ()) -> None:
        body = {"Header": {}, "Payload": payload}
        try:
            preflight.preflight(SUBMIT, body)
            refused_before_sending = None
        except ParameterError as error:
            refused_before_sending = error
        if schema_rule:
            assert (refused_before_sending is None) == valid, (
                f"pre-flight {'refused' if refused_before_sending else 'accepted'} {field}: "
                f"{refused_before_sending}")
        if not target.guard.allows(body):  # valid, or one the spec lets through and the target may accept
            return  # the spend guard: this example could be billed
        answer = target.send(SUBMIT, body, appkey=appkey)
        assert answer.status < 500, answer
        if valid:
            assert answer.code in (0, *also_ok), f"{field}: expected acceptance, got {answer.code} {answer.message}"
        else:
            assert answer.code not in (0, None), f"{field}: expected a refusal, got {answer.body}"
            assert answer.code in CATALOGUE, f"undocumented code {answer.code}"
            assert field in answer.message, f"the message does not name {field}: {answer.message}"
            if refused_before_sending is not None and target.has_control:
                assert (refused_before_sending.code, refused_before_sending.message) == (answer.code, answer.message)

    return check


@given(st.one_of(st.just(...), st.sampled_from([PHOTO, PHOTO + "?v=2", "http://x.invalid/y.png", "", "ftp://x/p.jpg",
                                                "https://has space/p.jpg", 42, None])))
def test_ref_photo_url_is_required_and_an_http_url(verdict, value):
    valid = isinstance(value, str) and value.startswith(("http://", "https://")) and " " not in value and len(value) > 8
    # a well-formed URL that leads nowhere is answered with the documented download failure
    verdict(patched(TEXT, RefPhotoUrl=value), valid, "Payload.RefPhotoUrl", also_ok=(-101002,))


@given(st.one_of(st.sampled_from(["Text", "OriginalVoice", "", "text", "ORIGINALVOICE", "ModulatedVoice", ...]),
                 st.text(max_size=12)))
def test_driver_type_is_text_or_original_voice(verdict, value):
    payload = patched(TEXT, InputAudioUrl=AUDIO, DriverType=value)  # both drives' fields, so only the type decides
    verdict(payload, value in ("Text", "OriginalVoice"), "Payload.DriverType")


@given(ssml=st.booleans(), speech=st.booleans(), speed=st.booleans(), timbre=st.booleans())
def test_text_needs_ssml_and_speech_param_with_speed_and_timbre(verdict, ssml, speech, speed, timbre):
    payload = patched(TEXT, InputSsml=TEXT["InputSsml"] if ssml else ...,
                    SpeechParam={**({"Speed": 1.0} if speed else {}), **({"TimbreKey": "female_1"} if timbre else {})}
                    if speech else ...)
    missing = next((f for f, present in (("Payload.InputSsml", ssml), ("Payload.SpeechParam", speech),
                                          ("Payload.SpeechParam.Speed", speech and speed),
                                          ("Payload.SpeechParam.TimbreKey", speech and timbre)) if not present), "")
    verdict(payload, not missing, missing or "-")


@given(st.booleans())
def test_original_voice_needs_input_audio_url(verdict, present):
    verdict(patched(AUDIO_DRIVEN, InputAudioUrl=AUDIO if present else ...), present, "Payload.InputAudioUrl")


@given(st.lists(SPEAKABLE, min_size=0, max_size=310))
@example(["好"] * 3)
@example(["好"] * 4)
@example(["\U0001f600"] * 3 + ["a"])  # 4 code points, 7 UTF-16 units
@example(["\U0001f600"] * 4)  # 4 code points, nothing to say
@example(["a"] * 300)
@example(["a"] * 301)
@example(["\U00020000"] * 300)
def test_input_ssml_is_4_to_300_unicode_code_points(verdict, characters):
    text = "".join(characters)
    spoken = any(character != "\U0001f600" for character in characters)  # emoji alone say nothing (D18)
    verdict(patched(TEXT, InputSsml=text), 4 <= len(text) <= 300 and spoken, "Payload.InputSsml")


# (the character references are the markup's own way of writing one, D17)
@given(st.text(alphabet="abc好", min_size=4, max_size=40),
       st.sampled_from(["", "\n", "\r", "\r\n", "\x85", "\u2028", "\u2029", "&#10;", "&#xD;", "&#x2028;"]),
       st.data())
def test_input_ssml_has_no_line_breaks(verdict, text, line_break, data):
    at = data.draw(st.integers(0, len(text)))
    verdict(patched(TEXT, InputSsml=text[:at] + line_break + text[at:]), not line_break, "Payload.InputSsml")


SSML_CASES = [
    ('<speak>你好，我是虚拟主播。</speak>', True),
    ('本行将每月定期上<phoneme alphabet="py" ph="chuan2">传</phoneme>记录', True),
    ('你好<break time="100ms"/>世界', True),
    ('你好<break time="9s"/>世界', True),
    ('你好<break strength="x-weak"/>世界', True),
    ('<sub alias="语音合成">TTS</sub>很好', True),
    ('<say-as interpret-as="cardinal">123</say-as>个', True),
    ('Tom &amp; Jerry', True),
    ('<sub alias="语音&#10;合成">TTS</sub>很好', False),  # a line break in what is spoken (D17)
    ("<speak>" + "a" * 290 + "</speak>", False),  # tags count toward 300
    ('你好<break time="10s"/>世界', False),
    ('你好<break time="49ms"/>世界', False),
    ('<phoneme alphabet="py" ph="chuan2 a1">传</phoneme>记录', False),
    ('<phoneme ph="chuan2">传</phoneme>记录', False),
    ('<say-as interpret-as="money">1</say-as>元', False),
    ('<sub>TTS</sub>很好', False),
    ("<foo>bar</foo>好的", False),
    ("Tom & Jerry", False),
    ('<!DOCTYPE x [<!ENTITY a "b">]>&a;好的', False),
    ("<speak>a</speak><speak>b</speak>", False),
]


@given(st.sampled_from(SSML_CASES))
@example(SSML_CASES[0])
@example(next(case for case in SSML_CASES if "10s" in case[0]))
@example(SSML_CASES[8])  # tags count toward 300
def test_input_ssml_markup_follows_the_ssml_rules(verdict, case):
    text, valid = case
    verdict(patched(TEXT, InputSsml=text), valid, "Payload.InputSsml")


def _edges(low: float, high: float, step: float, strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(st.sampled_from([low, high, low - step, high + step, low + step, high - step]), strategy)


@given(_edges(0.5, 1.5, 0.01, st.floats(0, 3, allow_nan=False)))
@example(0.5)
@example(1.5)
@example(0.49)
@example(1.51)
def test_speed_is_between_0_5_and_1_5(verdict, speed):
    verdict(patched(TEXT, SpeechParam__Speed=speed), 0.5 <= speed <= 1.5, "Payload.SpeechParam.Speed")


@given(_edges(0, 10, 1, st.integers(-20, 30)))
@example(0)
@example(10)
@example(-1)
@example(11)
def test_volume_is_between_0_and_10(verdict, volume):
    verdict(patched(TEXT, SpeechParam__Volume=volume), 0 <= volume <= 10, "Payload.SpeechParam.Volume")


@given(_edges(50, 200, 1, st.integers(-10, 400)))
@example(50)
@example(200)
@example(49)
@example(201)
def test_emotion_intensity_is_between_50_and_200(verdict, intensity):
    verdict(patched(TEXT, SpeechParam__EmotionIntensity=intensity), 50 <= intensity <= 200,
            "Payload.SpeechParam.EmotionIntensity")


@given(st.integers(-2, 6))
@example(0)
@example(1)
@example(3)
@example(4)
def test_video_emotion_level_is_1_2_or_3(verdict, level):
    verdict(patched(TEXT, VideoParam__EmotionLevel=level), level in (1, 2, 3), "Payload.VideoParam.EmotionLevel")


@given(st.one_of(st.sampled_from(["Exclusive", "Shared", "", "shared", "EXCLUSIVE", "Both"]), st.text(max_size=10)))
def test_concurrency_type_is_exclusive_or_shared(verdict, value):
    # Whether an account may use Exclusive depends on what it bought: 100014 is the documented refusal.
    verdict(patched(TEXT, ConcurrencyType=value), value in ("Exclusive", "Shared"), "Payload.ConcurrencyType",
            also_ok=(100014,) if value == "Exclusive" else ())


@given(_edges(999, 999, 1, st.integers(960, 1040)))
@example(999)
@example(1000)
def test_callback_url_is_shorter_than_1000_characters(verdict, length):
    url = "http://127.0.0.1:9/" + "c" * (length - len("http://127.0.0.1:9/"))
    verdict(patched(TEXT, CallbackUrl=url), length < 1000, "Payload.CallbackUrl")


@given(st.one_of(st.sampled_from(sorted(BUILT_IN_TIMBRES | {"male_0", "male_21", "female_0", "female_24",
                                                            "FEMALE_1", "female-1"})),
                 st.text(alphabet="abcdefmlz_0123456789", min_size=1, max_size=12)))
@example("male_1")
@example("male_20")
@example("male_21")
@example("female_23")
@example("female_24")
@example("male_0")
@pytest.mark.spends  # the spec lets every key through: each example could be billed
def test_timbre_key_is_one_the_account_has(verdict, key):
    # Only the target knows the account's timbres: pre-flight lets every key through.
    verdict(patched(TEXT, SpeechParam__TimbreKey=key), key in BUILT_IN_TIMBRES, "Payload.SpeechParam.TimbreKey",
            schema_rule=False)


@pytest.mark.control
@pytest.mark.spends
@given(st.integers(230, 250))
@example(240)
@example(241)
def test_spoken_text_longer_than_60_seconds_fails(frozen, request, characters):
    # The mock speaks 4 Chinese characters a second (DECISIONS.md D33), so 240 is exactly 60 s.
    client = frozen.client(frozen.appkey(request.node.name))
    task = client.phototovideonotrain(patched(TEXT, InputSsml="好" * characters))
    try:  # polled as the clock moves, for as long as the mock's pace takes (a fixed 600 s fell short of `live`'s)
        final = client.wait(task.task_id, timeout=86_400)
    except TaskFailedError as failed:
        final = failed.progress
    if characters <= 240:
        assert final.status == "SUCCESS"
    else:
        assert (final.status, final.fail_code) == ("FAIL", 801009)
