"""The signature algorithm against the vendor's published vectors (and two derived ones for `/` and requestid)."""

import pytest
from ivh_mock.spec.signing import sign, signed_query, string_to_sign, verify

from ivh_mock import spec as spec_module

VECTORS = spec_module.load().signature_rules["testVectors"]


def test_both_published_vectors_are_in_the_spec():
    assert [v["signature"] for v in VECTORS] == [
        "BfWuaC9kmaicCggXc693uK+sZQ8qe88O4HVQNTdwZuo=",
        "aCNWYzZdplxWVo+JsqzZc9+J9XrwWWITfX3eQpsLVno=",
    ]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["appkey"] for v in VECTORS])
def test_published_vector(vector):
    params = {"appkey": vector["appkey"], "timestamp": vector["timestamp"]}
    assert string_to_sign(params) == vector["stringToSign"]
    assert sign(params, vector["accesstoken"]) == vector["signature"]
    query = signed_query(vector["appkey"], vector["accesstoken"], vector["timestamp"])
    assert query == f"appkey={vector['appkey']}&timestamp={vector['timestamp']}&signature={vector['encoded']}"
    assert verify(params, vector["signature"], vector["accesstoken"])


def test_signature_with_slash_is_fully_url_encoded():
    params = {"appkey": "example_appkey", "timestamp": "1717639701"}
    assert sign(params, "example_accesstoken") == "6Fjb7xkPV4pxPc+/oKeDfPGQIp+//DJzEegf6DlQfEQ="
    assert signed_query("example_appkey", "example_accesstoken", 1717639701).endswith(
        "signature=6Fjb7xkPV4pxPc%2B%2FoKeDfPGQIp%2B%2F%2FDJzEegf6DlQfEQ%3D"
    )


def test_parameters_are_sorted_by_key():
    params = {"timestamp": "1717639699", "requestid": "example_requestid", "appkey": "example_appkey"}
    assert string_to_sign(params) == "appkey=example_appkey&requestid=example_requestid&timestamp=1717639699"
    assert sign(params, "example_accesstoken") == "QVenICk0VHtHGYZKXM6IC+W1CjZC1joSr/x0gfKKYT4="


def test_verify_rejects_a_wrong_token_and_a_mangled_signature():
    vector = VECTORS[1]
    params = {"appkey": vector["appkey"], "timestamp": vector["timestamp"]}
    assert not verify(params, vector["signature"], "another-token")
    assert not verify(params, vector["signature"].replace("+", " "), vector["accesstoken"])
    assert not verify(params, "", vector["accesstoken"])
    assert not verify(params, "non-ascii é", vector["accesstoken"])
