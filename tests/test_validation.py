"""Every documented constraint, at its edge and just past it: accepted, or refused with the field and rule named.

The limits are written here as the seed page states them, independently of the spec, so that a wrong spec fails.
"""

import pytest
from ivh_mock.contract_tests.payloads import patched
from ivh_mock.spec import validation

from ivh_mock import spec as spec_module

from .conftest import AUDIO_PAYLOAD, TEXT_PAYLOAD

OK = 0


def text(**changes):
    return patched(TEXT_PAYLOAD, **changes)


def audio(**changes):
    return patched(AUDIO_PAYLOAD, **changes)


CASES = [
    # RefPhotoUrl: required, an http(s) URL
    ("photo url https", text(RefPhotoUrl="https://localhost/__mock__/assets/samples/photo.png"), OK, None),
    ("photo url missing", text(RefPhotoUrl=...), 100001, "Payload.RefPhotoUrl is required"),
    ("photo url empty", text(RefPhotoUrl=""), 100002, "Payload.RefPhotoUrl"),
    ("photo url ftp", text(RefPhotoUrl="ftp://example.com/p.png"), 100002, "Payload.RefPhotoUrl must be an http"),
    ("photo url number", text(RefPhotoUrl=42), 100003, "Payload.RefPhotoUrl must be of type string"),
    # DriverType: required, Text | OriginalVoice
    ("driver missing", text(DriverType=...), 100001, "Payload.DriverType is required"),
    ("driver empty", text(DriverType=""), 100002, "Payload.DriverType must be one of"),
    ("driver lower case", text(DriverType="text"), 100002, "Payload.DriverType must be one of"),
    ("driver ModulatedVoice", text(DriverType="ModulatedVoice"), 100002, "Payload.DriverType"),
    ("driver original voice", AUDIO_PAYLOAD, OK, None),
    # Text needs InputSsml and SpeechParam with Speed and TimbreKey
    ("text without ssml", text(InputSsml=...), 100001, "Payload.InputSsml is required when DriverType is Text"),
    ("text without speech", text(SpeechParam=...), 100001,
     "Payload.SpeechParam is required when DriverType is Text"),
    ("text without speed", text(SpeechParam__Speed=...), 100001,
     "Payload.SpeechParam.Speed is required when DriverType is Text"),
    ("text without timbre", text(SpeechParam__TimbreKey=...), 100001,
     "Payload.SpeechParam.TimbreKey is required when DriverType is Text"),
    ("text without volume", text(SpeechParam__Volume=...), OK, None),
    # OriginalVoice needs InputAudioUrl
    ("audio without url", audio(InputAudioUrl=...), 100001,
     "Payload.InputAudioUrl is required when DriverType is OriginalVoice"),
    ("audio url not http", audio(InputAudioUrl="file:///etc/passwd"), 100002, "Payload.InputAudioUrl"),
    ("audio with ssml ignored", audio(InputSsml="hello there"), OK, None),
    # InputSsml: 4..300 Unicode code points, no line breaks
    ("ssml 3 chars", text(InputSsml="abc"), 100002, "Payload.InputSsml must be at least 4 characters"),
    ("ssml 4 chars", text(InputSsml="abcd"), OK, None),
    ("ssml 300 chars", text(InputSsml="a" * 300), OK, None),
    ("ssml 301 chars", text(InputSsml="a" * 301), 100002, "Payload.InputSsml must be at most 300 characters"),
    ("ssml 4 hanzi", text(InputSsml="你好世界"), OK, None),
    ("ssml 3 hanzi", text(InputSsml="你好世"), 100002, "Payload.InputSsml must be at least 4"),
    ("ssml 300 hanzi", text(InputSsml="好" * 300), OK, None),
    ("ssml 301 hanzi", text(InputSsml="好" * 301), 100002, "Payload.InputSsml must be at most 300"),
    # counted in code points: four characters past the BMP (CJK Extension B, spoken) are four, not eight
    ("ssml 4 astral code points", text(InputSsml="\U00020000" * 4), OK, None),
    ("ssml 3 astral code points", text(InputSsml="\U00020000" * 3), 100002, "Payload.InputSsml"),
    ("ssml line feed", text(InputSsml="hello\nworld"), 100002, "Payload.InputSsml must not contain line breaks"),
    ("ssml carriage return", text(InputSsml="hello\rworld"), 100002, "must not contain line breaks"),
    ("ssml trailing line feed", text(InputSsml="hello world\n"), 100002, "must not contain line breaks"),
    # ... written as character references too: `&#10;` had put a line break (and a cue of its own) into the subtitles
    ("ssml line feed reference", text(InputSsml="One&#10;&#10;2&#10;00:00:00,000 --> 00:00:09,000&#10;X"), 100002,
     "Payload.InputSsml must not contain line breaks, character references (&#10; and the like) included"),
    ("ssml CR LF references", text(InputSsml="Hello&#13;&#10;there"), 100002, "must not contain line breaks"),
    ("ssml U+2028 reference", text(InputSsml="Hello &#x2028; there"), 100002, "must not contain line breaks"),
    ("ssml line feed in an alias", text(InputSsml='<sub alias="one&#10;two">X</sub> words'), 100002,
     "must not contain line breaks"),
    ("ssml tab reference", text(InputSsml="Hello&#9;there"), OK, None),
    ("photo url trailing line feed", text(RefPhotoUrl="https://example.com/p.png\n"), 100002,
     "Payload.RefPhotoUrl must be an http"),
    ("ssml tags count", text(InputSsml="<speak>" + "a" * 290 + "</speak>"), 100002, "at most 300"),
    ("ssml number", text(InputSsml=1234), 100003, "Payload.InputSsml must be of type string"),
    # Speed 0.5..1.5
    ("speed 0.5", text(SpeechParam__Speed=0.5), OK, None),
    ("speed 1.5", text(SpeechParam__Speed=1.5), OK, None),
    ("speed integer 1", text(SpeechParam__Speed=1), OK, None),
    ("speed 0.49", text(SpeechParam__Speed=0.49), 100002, "Payload.SpeechParam.Speed must be at least 0.5"),
    ("speed 1.51", text(SpeechParam__Speed=1.51), 100002, "Payload.SpeechParam.Speed must be at most 1.5"),
    ("speed string", text(SpeechParam__Speed="1.0"), 100003, "Payload.SpeechParam.Speed must be of type number"),
    ("speed boolean", text(SpeechParam__Speed=True), 100003, "Payload.SpeechParam.Speed must be of type number"),
    # Volume 0..10, integer
    ("volume 0", text(SpeechParam__Volume=0), OK, None),
    ("volume 10", text(SpeechParam__Volume=10), OK, None),
    ("volume -1", text(SpeechParam__Volume=-1), 100002, "Payload.SpeechParam.Volume must be at least 0"),
    ("volume 11", text(SpeechParam__Volume=11), 100002, "Payload.SpeechParam.Volume must be at most 10"),
    ("volume fraction", text(SpeechParam__Volume=1.5), 100003, "Payload.SpeechParam.Volume must be of type integer"),
    ("volume integral float", text(SpeechParam__Volume=1.0), 100003, "Payload.SpeechParam.Volume must be of type "
                                                                     "integer, got number 1.0"),
    # EmotionIntensity 50..200
    ("intensity 50", text(SpeechParam__EmotionIntensity=50), OK, None),
    ("intensity 200", text(SpeechParam__EmotionIntensity=200), OK, None),
    ("intensity 49", text(SpeechParam__EmotionIntensity=49), 100002, "Payload.SpeechParam.EmotionIntensity"),
    ("intensity 201", text(SpeechParam__EmotionIntensity=201), 100002, "must be at most 200"),
    # VideoParam.EmotionLevel 1..3
    ("level 1", text(VideoParam__EmotionLevel=1), OK, None),
    ("level 3", text(VideoParam__EmotionLevel=3), OK, None),
    ("level 0", text(VideoParam__EmotionLevel=0), 100002, "Payload.VideoParam.EmotionLevel must be one of 1, 2, 3"),
    ("level 4", text(VideoParam__EmotionLevel=4), 100002, "Payload.VideoParam.EmotionLevel"),
    # a wrong type is 100003 even where the value breaks an enum or a bound too (D05): those had answered 100002
    ("level string", text(VideoParam__EmotionLevel="2"), 100003, "Payload.VideoParam.EmotionLevel must be of type "
                                                                 "integer"),
    ("level 1e2", text(VideoParam__EmotionLevel=1e2), 100003, "Payload.VideoParam.EmotionLevel must be of type"),
    ("driver type number", text(DriverType=1), 100003, "Payload.DriverType must be of type string, got integer 1"),
    ("volume 1e2", text(SpeechParam__Volume=1e2), 100003, "Payload.SpeechParam.Volume must be of type integer"),
    ("resolution text", text(VideoParam__Resolution="720P"), 100003, "Payload.VideoParam.Resolution must be of type"),
    ("empty video param", text(VideoParam={}), OK, None),
    # ConcurrencyType Exclusive | Shared
    ("concurrency exclusive unbought", text(ConcurrencyType="Exclusive"), 100014,
     "Payload.ConcurrencyType Exclusive needs purchased concurrency"),
    ("concurrency shared", text(ConcurrencyType="Shared"), OK, None),
    ("concurrency lower", text(ConcurrencyType="shared"), 100002, "Payload.ConcurrencyType must be one of"),
    ("concurrency empty", text(ConcurrencyType=""), 100002, "Payload.ConcurrencyType"),
    # CallbackUrl shorter than 1000
    ("callback 999", text(CallbackUrl="http://cb.example/" + "a" * 981), OK, None),
    ("callback 1000", text(CallbackUrl="http://cb.example/" + "a" * 982), 100002,
     "Payload.CallbackUrl must be at most 999 characters"),
    ("callback not url", text(CallbackUrl="callback me"), 100002, "Payload.CallbackUrl must be an http or https URL"),
    # Undocumented fields
    ("unknown payload field", text(Inputssml="typo"), 100001, "Payload.Inputssml is not a documented field"),
    ("unknown speech field", text(SpeechParam__Pitch=1), 100001, "Payload.SpeechParam.Pitch is not a documented"),
    # Timbres the account has
    ("timbre male_20", text(SpeechParam__TimbreKey="male_20"), OK, None),
    ("timbre male_21", text(SpeechParam__TimbreKey="male_21"), 100002, "Payload.SpeechParam.TimbreKey 'male_21'"),
    ("timbre female_23", text(SpeechParam__TimbreKey="female_23"), OK, None),
    ("timbre female_24", text(SpeechParam__TimbreKey="female_24"), 100002, "Payload.SpeechParam.TimbreKey"),
    ("emotion on single-emotion timbre", text(SpeechParam__EmotionCategory="happy"), 100002,
     "Payload.SpeechParam.EmotionCategory"),
    ("emotion on multi-emotion timbre",
     text(SpeechParam__TimbreKey="mock_emotional_female", SpeechParam__EmotionCategory="happy"), OK, None),
    ("unknown emotion", text(SpeechParam__TimbreKey="mock_emotional_female", SpeechParam__EmotionCategory="joy"),
     100002, "Payload.SpeechParam.EmotionCategory"),
    ("multilingual without language", text(SpeechParam__TimbreKey="mock_bilingual_male"), 100002,
     "Payload.SpeechParam.TimbreLanguage is required"),
    ("multilingual with language",
     text(SpeechParam__TimbreKey="mock_bilingual_male", SpeechParam__TimbreLanguage="en-US"), OK, None),
    ("language the timbre lacks", text(SpeechParam__TimbreLanguage="fr-FR"), 100002,
     "Payload.SpeechParam.TimbreLanguage"),
]


@pytest.mark.parametrize("payload, code, named", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_phototovideonotrain_constraint(api, payload, code, named):
    answer = api.call("phototovideonotrain", payload)
    assert answer.status == 200
    assert answer.code == code, answer.message
    if code == OK:
        assert len(answer.payload["TaskId"]) == 32
    else:
        assert named in answer.message
        assert answer.payload == {}


ENVELOPE_CASES = [
    ("no header", {"Payload": TEXT_PAYLOAD}, 100001, "Header is required"),
    ("no payload", {"Header": {}}, 100001, "Payload is required"),
    ("neither", {}, 100001, "Header is required; Payload is required"),  # each missing field named once
    ("two payload fields missing", {"Header": {}, "Payload": {"InputSsml": "hello"}}, 100001,
     "Payload.RefPhotoUrl is required; Payload.DriverType is required"),
    ("header not object", {"Header": [], "Payload": TEXT_PAYLOAD}, 100003, "Header must be of type object"),
    ("payload null", {"Header": {}, "Payload": None}, 100003, "Payload must be of type object"),
    ("request id number", {"Header": {"RequestID": 7}, "Payload": TEXT_PAYLOAD}, 100003,
     "Header.RequestID must be of type string"),
    ("unknown top-level field", {"Header": {}, "Payload": TEXT_PAYLOAD, "Extra": 1}, 100001,
     "Extra is not a documented field"),
    ("body is an array", [], 100003, "body must be of type object"),
    ("body is a string", "hello", 100003, "body must be of type object"),
]


@pytest.mark.parametrize("body, code, named", [c[1:] for c in ENVELOPE_CASES], ids=[c[0] for c in ENVELOPE_CASES])
def test_envelope_rule(api, body, code, named):
    answer = api.call("phototovideonotrain", body=body)
    assert (answer.status, answer.code) == (200, code)
    assert named in answer.message


def test_gateway_fields_in_the_header_are_tolerated(api):
    assert api.call("phototovideonotrain", TEXT_PAYLOAD, header={"SessionID": "x", "RequestID": "r"}).code == 0


def test_several_broken_rules_are_all_named(api):
    answer = api.call("phototovideonotrain", text(SpeechParam__Speed=9, SpeechParam__Volume=99, InputSsml="ab"))
    assert answer.code == 100002
    for field in ("Payload.SpeechParam.Speed", "Payload.SpeechParam.Volume", "Payload.InputSsml"):
        assert field in answer.message


def test_each_undocumented_field_is_a_broken_rule_of_its_own(api):
    answer = api.call("phototovideonotrain", {**TEXT_PAYLOAD, **{f"k{n}": 1 for n in range(7)}})
    assert answer.code == 100001
    assert answer.message == ("Payload.k0 is not a documented field; Payload.k1 is not a documented field; "
                              "Payload.k2 is not a documented field; Payload.k3 is not a documented field; "
                              "Payload.k4 is not a documented field; and 2 more")


@pytest.mark.parametrize("where", ["Payload", "SpeechParam", "top level"])
def test_a_huge_undocumented_name_is_cut_as_a_value_is(api, where):
    name = "K" * 100_000
    body = {"Header": {}, "Payload": {**TEXT_PAYLOAD}}
    if where == "Payload":
        body["Payload"][name] = 1
    elif where == "SpeechParam":
        body["Payload"]["SpeechParam"] = {**TEXT_PAYLOAD["SpeechParam"], name: 1}
    else:
        body[name] = 1
    answer = api.call("phototovideonotrain", body=body)
    assert answer.code == 100001
    prefix = {"Payload": "Payload.", "SpeechParam": "Payload.SpeechParam.", "top level": ""}[where]
    assert answer.message == f"{prefix}{'K' * 37}... is not a documented field"


def test_a_request_id_past_its_length_is_refused_and_not_echoed(api):
    answer = api.call("getprogress", {"TaskId": "x"}, header={"RequestID": "r" * 129})
    assert answer.code == 100002
    assert answer.message == ("Header.RequestID must be at most 128 characters long (Unicode code points), got 129 "
                              "characters")
    assert len(answer.body["Header"]["RequestID"]) == 32 and answer.body["Header"]["RequestID"] != "r" * 32
    echoed = api.call("getprogress", {"TaskId": "x"}, header={"RequestID": "r" * 128})
    assert echoed.body["Header"]["RequestID"] == "r" * 128


CUT_TEXT = "'" + "k" * 36 + "..."  # a text as a message quotes it: 40 characters, the quote and "..." among them


@pytest.mark.parametrize("scenario, shown", [
    ("k" * 20_000, f"X-Mock-Scenario {CUT_TEXT} is not a scenario"),
    ("fail:" + "k" * 20_000 + "=1", f"X-Mock-Scenario 'fail' has no parameter {CUT_TEXT}; it takes"),
    ("fail:code=" + "9" * 4000, f"X-Mock-Scenario code={'9' * 37}... is not a documented FailCode"),
    ("fail:code=" + "k" * 20_000, f"X-Mock-Scenario parameter code={CUT_TEXT} must be a whole number"),
    ("fail:pace=" + "k" * 20_000, f"X-Mock-Scenario parameter pace={CUT_TEXT} is not a pace"),
    ("fail:" + ",".join(["code=1"] * 3000),
     f"X-Mock-Scenario parameter code is given twice in {chr(39)}fail:code=1,code=1,code=1,code=1,cod..."),
], ids=["name", "parameter", "long code", "code not a number", "pace", "repeated"])
def test_a_huge_scenario_header_is_quoted_cut(api, scenario, shown):
    answer = api.call("phototovideonotrain", TEXT_PAYLOAD, scenario=scenario)
    assert answer.code == 100002
    assert answer.message.startswith(shown), answer.message[:300]
    assert len(answer.message) < 300


@pytest.mark.parametrize("payload, code, named", [
    ({"TaskId": "81883d47c6154edf8e276531f09227b6"}, 110006, "does not exist"),
    ({}, 100001, "Payload.TaskId is required"),
    ({"TaskId": 123}, 100003, "Payload.TaskId must be of type string"),
    ({"TaskId": ""}, 100002, "Payload.TaskId must be at least 1"),
    ({"TaskId": "x", "Extra": 1}, 100001, "Payload.Extra is not a documented field"),
])
def test_getprogress_constraint(api, payload, code, named):
    answer = api.call("getprogress", payload)
    assert answer.code == code
    assert named in answer.message


@pytest.mark.parametrize("payload, code, named", [
    ({"PageIndex": 1, "PageSize": 1}, OK, None),
    ({"PageIndex": 1, "PageSize": 100}, OK, None),
    ({"PageIndex": 0, "PageSize": 10}, 100002, "Payload.PageIndex must be at least 1"),
    ({"PageIndex": 1, "PageSize": 0}, 100002, "Payload.PageSize must be at least 1"),
    ({"PageIndex": 1, "PageSize": 101}, 100002, "Payload.PageSize must be at most 100"),
    ({"PageIndex": 1}, 100001, "Payload.PageSize is required"),
    ({"PageSize": 10}, 100001, "Payload.PageIndex is required"),
    ({"PageIndex": "1", "PageSize": 10}, 100003, "Payload.PageIndex must be of type integer"),
    ({"PageIndex": 1, "PageSize": 1.0}, 100003, "Payload.PageSize must be of type integer, got number 1.0"),
    ({"PageIndex": 1, "PageSize": 10, "PurchaseType": "Rent"}, 100002, "Payload.PurchaseType must be one of"),
])
def test_describetimbre_constraint(api, payload, code, named):
    answer = api.call("describetimbre", payload)
    assert answer.code == code, answer.message
    if named:
        assert named in answer.message


ECMA_WHITESPACE = "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2005\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
NOT_ECMA_WHITESPACE = "\x1c\x1d\x1e\x1f\x85\u200b"


@pytest.mark.parametrize("value", [float("nan"), float("-inf")])
def test_a_number_that_is_no_json_number_is_named_so(value):
    """No JSON body carries NaN or an infinity (the mock refuses it as JSON), but a Python caller's can, and the
    client's check before sending said `Speed must be of type number, got number NaN`."""
    violations = spec_module.load().validate("phototovideonotrain",
                                             {"Header": {}, "Payload": text(SpeechParam__Speed=value)})
    assert [(v.code, v.message) for v in violations] == [
        (100003, f"Payload.SpeechParam.Speed must be a finite number, got {'NaN' if value != value else '-Infinity'}")]


@pytest.mark.parametrize("char", ECMA_WHITESPACE + NOT_ECMA_WHITESPACE,
                         ids=[f"U+{ord(c):04X}" for c in ECMA_WHITESPACE + NOT_ECMA_WHITESPACE])
def test_url_patterns_read_whitespace_as_json_schema_does(char):
    """The spec's `[^\\s]` means ECMA-262's \\s (the JSON Schema dialect), not Python's."""
    url = f"http://example.com/a{char}b.jpg"
    violations = spec_module.load().validate("phototovideonotrain", {"Header": {}, "Payload": text(RefPhotoUrl=url)})
    refused = [v for v in violations if v.field == "Payload.RefPhotoUrl"]
    assert bool(refused) == (char in ECMA_WHITESPACE), violations


@pytest.mark.parametrize("pattern, text_, matches", [
    (r"^\d+$", "123", True), (r"^\d+$", "\u0663", False), (r"^\w+$", "abc_9", True), (r"^\w+$", "\u00e9", False),
    (r"^\S+$", "a\ufeffb", False), (r"^\S+$", "a\x85b", True), (r"^a$", "a\n", False), (r"^a\$$", "a$", True),
    (r"^[\s]$", "\u3000", True), (r"^[^\s]$", "\x1f", True),
])
def test_patterns_follow_ecma_262(pattern, text_, matches):
    assert bool(validation.ecma_pattern(pattern).search(text_)) == matches
