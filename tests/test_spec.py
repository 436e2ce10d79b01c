"""The spec itself: a valid OpenAPI 3.1 document whose samples, catalogue and profiles say what the vendor says."""

import pytest
from ivh_mock.mock_server.errors import ERROR_CLASSES, ApiError

from ivh_mock import spec as spec_module

SPEC = spec_module.load()


def test_the_document_is_valid_openapi_3_1():
    from openapi_spec_validator import validate  # half a second of imports (pydantic): only this test's worker's

    assert SPEC.document["openapi"].startswith("3.1")
    validate(SPEC.document)


def test_operations_are_the_three_documented_ones():
    assert {op.operation_id: op.path for op in SPEC.operations.values()} == {
        "phototovideonotrain": "/v2/ivh/videomaker/broadcastservice/phototovideonotrain",
        "getprogress": "/v2/ivh/videomaker/broadcastservice/getprogress",
        "describetimbre": "/v2/ivh/crmserver/customerassetservice/describetimbre",
    }
    assert {op.method for op in SPEC.operations.values()} == {"POST"}


def _examples(kind):
    for item in SPEC.document["paths"].values():
        operation = item["post"]
        if kind == "request":
            media = operation["requestBody"]["content"]["application/json"]
        else:
            media = operation["responses"]["200"]["content"]["application/json"]
        for name, example in media.get("examples", {}).items():
            yield pytest.param(operation["operationId"], media["schema"]["$ref"], example["value"],
                               id=f"{operation['operationId']}-{name}")


@pytest.mark.parametrize("operation_id, pointer, example", list(_examples("request")))
def test_request_examples_validate(operation_id, pointer, example):
    assert SPEC.validate(operation_id, example) == []


@pytest.mark.parametrize("operation_id, pointer, example", list(_examples("response")))
def test_response_examples_validate(operation_id, pointer, example):
    assert SPEC.check(pointer, example) == []


def test_the_seed_samples_are_the_examples():
    request_examples = {p.id: p.values[2] for p in _examples("request")}
    text = request_examples["phototovideonotrain-text"]["Payload"]
    assert text["InputSsml"] == 'Hello, I am the virtual <phoneme alphabet="py" ph="fu4">anchor</phoneme>'
    assert text["SpeechParam"] == {"TimbreKey": "female_1", "Volume": 1, "Speed": 1.0}
    assert request_examples["phototovideonotrain-audio"]["Payload"]["DriverType"] == "OriginalVoice"
    response = {p.id: p.values[2] for p in _examples("response")}["phototovideonotrain-accepted"]
    assert response["Payload"]["TaskId"] == "81883d47c6154edf8e276531f09227b6"


def test_a_response_that_breaks_the_contract_is_caught():
    pointer = SPEC.operations["phototovideonotrain"].response_schema
    assert SPEC.check(pointer, {"Header": {"Code": 0, "Message": "", "RequestID": "r"}, "Payload": {}})
    assert SPEC.check(pointer, {"Header": {"Code": 100002, "Message": "m", "RequestID": "r"}, "Payload": {"x": 1}})


def test_every_error_class_is_in_the_catalogue_under_its_name():
    for code, cls in ERROR_CLASSES.items():
        assert code in SPEC.errors.header, f"{cls.__name__} raises {code}, which the catalogue lacks"
        assert SPEC.errors.header[code].get("name") == cls.__name__
    named = {code for code, entry in SPEC.errors.header.items() if "name" in entry}
    assert named == set(ERROR_CLASSES)
    assert all(issubclass(cls, ApiError) for cls in ERROR_CLASSES.values())


def test_each_keyword_maps_to_exactly_one_code():
    seen = {}
    for code, entry in SPEC.errors.header.items():
        for keyword in entry.get("keywords", ()):
            assert keyword not in seen, f"{keyword} maps to both {seen[keyword]} and {code}"
            seen[keyword] = code
    assert {"required", "type", "enum", "minimum", "maxLength", "pattern", "x-ivh-ssml"} <= set(seen)


def test_the_catalogue_has_every_documented_code():
    header = {0, -101000, -101001, -101002, -101003, 100001, 100002, 100003, 100005, 100008, 100009, 110005,
              110006, 110007, 100013, 100015, 100016, 801000, 801002, 801004, 801005}
    fail = {0, 801000, 801001, 801002, 801003, 801004, 801005, 801006, 801007, 801008, 801009, 801010, 801012,
            801014, 801015, 801401, 801402, 801403, 801404}
    assert header <= set(SPEC.errors.header)
    assert fail <= set(SPEC.errors.fail)
    assert all(entry["meaning"] for entry in [*SPEC.errors.header.values(), *SPEC.errors.fail.values()])


def test_the_profiles_state_each_sites_limits():
    intl, cn = SPEC.profile("intl"), SPEC.profile("cn")
    assert SPEC.default_profile == "intl"
    assert intl["photo"]["maxBytes"] == 10 * 1024 * 1024 and cn["photo"]["maxBytes"] == 6 * 1024 * 1024
    assert intl["audio"]["maxBytes"] == 20 * 1024 * 1024 and cn["audio"]["maxBytes"] == 10 * 1024 * 1024
    for profile in (intl, cn):
        assert set(profile["photo"]["formats"]) == {"jpg", "jpeg", "png", "bmp", "webp"}
        assert set(profile["audio"]["formats"]) == {"wav", "mp3", "wma", "m4a", "aac", "ogg"}
        assert profile["photo"]["sidePixels"]["minimum"] == 192 and profile["photo"]["sidePixels"]["maximum"] == 4096
        assert profile["photo"]["aspectRatio"]["minimum"] == 0.5 and profile["photo"]["aspectRatio"]["maximum"] == 2
        assert profile["audio"]["durationSeconds"] == {"minimum": 2, "maximum": 60}
        assert profile["speech"]["maxSeconds"] == 60
    assert intl["photo"]["sidePixels"]["enforced"] and intl["photo"]["aspectRatio"]["enforced"]
    assert not cn["photo"]["sidePixels"]["enforced"] and not cn["photo"]["aspectRatio"]["enforced"]
    assert "cartoon animal" in cn["photo"]["subjects"] and "cartoon animal" not in intl["photo"]["subjects"]


def test_an_unknown_profile_is_refused_by_name():
    with pytest.raises(KeyError, match="unknown profile 'eu'; the spec defines intl, cn"):
        SPEC.profile("eu")


def test_fields_json_schema_cannot_judge_carry_named_extensions():
    schemas = SPEC.document["components"]["schemas"]
    assert schemas["PhotoUrl"]["x-ivh-media"] == "photo"
    assert schemas["AudioUrl"]["x-ivh-media"] == "audio"
    assert schemas["InputSsml"]["x-ivh-ssml"] is True
    assert schemas["InputSsml"]["x-ivh-spoken-duration"] == "speech"
    assert schemas["SpeechParam"]["properties"]["TimbreKey"]["x-ivh-timbre"] is True


def test_the_callback_is_described():
    callback = SPEC.document["paths"][SPEC.operations["phototovideonotrain"].path]["post"]["callbacks"]
    body = {"Payload": {"Progress": 100, "MediaUrl": "https://x/v.mp4", "SubtitlesUrl": "", "Status": "SUCCESS",
                        "FailMessage": "", "TaskId": "25215772ab424ad38858f6b692426989"}}
    assert "{$request.body#/Payload/CallbackUrl}" in callback["taskFinished"]
    assert SPEC.check("#/components/schemas/CallbackBody", body) == []
    assert SPEC.check("#/components/schemas/CallbackBody", {"Payload": {**body["Payload"], "Status": "MAKING"}})
