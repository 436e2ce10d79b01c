"""The mock's timbre (voice) catalogue: the built-in families the spec names, plus two mock timbres that exercise
the multi-emotion and multilingual rules. Field values the vendor does not document are recorded in DECISIONS.md.
"""

from __future__ import annotations

from typing import Any

from ivh_mock.spec import Spec

# Mock-only timbres, so that EmotionCategory and TimbreLanguage have something real to be checked against.
MOCK_TIMBRES: tuple[dict[str, Any], ...] = (
    {
        "TimbreKey": "mock_emotional_female",
        "TimbreName": "Mock emotional female",
        "TimbreGender": 2,
        "EmotionalCategories": ["neutral", "happy", "sad", "angry"],
        "TimbreLanguages": ["zh-CN"],
    },
    {
        "TimbreKey": "mock_bilingual_male",
        "TimbreName": "Mock bilingual male",
        "TimbreGender": 1,
        "EmotionalCategories": [],
        "TimbreLanguages": ["zh-CN", "en-US"],
    },
)


def catalogue(spec: Spec) -> list[dict[str, Any]]:
    """Return every timbre as a TimbreAssetDetail, built-ins first."""
    built_in = [
        {"TimbreKey": f"{family['prefix']}{n}", "TimbreName": f"{family['prefix']}{n}",
         "TimbreGender": family["gender"], "EmotionalCategories": [], "TimbreLanguages": ["zh-CN"]}
        for family in spec.builtin_timbres
        for n in range(family["first"], family["last"] + 1)
    ]
    return [_detail(entry) for entry in (*built_in, *MOCK_TIMBRES)]


def _detail(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        "TimbreSample": "",
        "TimbreDesc": "",
        "SupportVirtualmanTypeCodes": [],
        "SupportDriverTypes": ["Text"],
        "ExpireDate": "",
        "AudioDuration": 0,
        "AudioNum": 0,
        "PurchaseType": "Lease",
        "TimbreType": "SampleBasic",
        **entry,
    }
