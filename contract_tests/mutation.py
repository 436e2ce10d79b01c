"""Break one constraint at a time in a copy of the spec, give that copy to the in-process mock, and check that the
named constraint tests catch every break.

    python -m ivh_mock.contract_tests.mutation            # prints a table; exits 1 if any mutation survives
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from ivh_mock import spec as spec_module

SCHEMAS = ("components", "schemas")
PAYLOAD = (*SCHEMAS, "PhotoToVideoNoTrainPayload")
SPEECH = (*SCHEMAS, "SpeechParam", "properties")
DELETE = object()

# (what breaks, path in openapi.yaml, new value or DELETE)
MUTATIONS: list[tuple[str, tuple[Any, ...], Any]] = [
    ("Speed maximum 1.5 -> 1.6", (*SPEECH, "Speed", "maximum"), 1.6),
    ("Speed minimum 0.5 -> 0.4", (*SPEECH, "Speed", "minimum"), 0.4),
    ("Volume maximum 10 -> 11", (*SPEECH, "Volume", "maximum"), 11),
    ("Volume minimum 0 -> 1", (*SPEECH, "Volume", "minimum"), 1),
    ("EmotionIntensity minimum 50 -> 40", (*SPEECH, "EmotionIntensity", "minimum"), 40),
    ("EmotionIntensity maximum 200 -> 250", (*SPEECH, "EmotionIntensity", "maximum"), 250),
    ("EmotionLevel also 4", (*SCHEMAS, "VideoParam", "properties", "EmotionLevel", "enum"), [1, 2, 3, 4]),
    ("InputSsml minLength 4 -> 3", (*SCHEMAS, "InputSsml", "minLength"), 3),
    ("InputSsml maxLength 300 -> 301", (*SCHEMAS, "InputSsml", "maxLength"), 301),
    ("InputSsml line breaks allowed", (*SCHEMAS, "InputSsml", "pattern"), DELETE),
    ("InputSsml SSML not checked", (*SCHEMAS, "InputSsml", "x-ivh-ssml"), False),
    ("break time up to 10s", ("x-ivh-ssml", "tags", "break", "attributes", "time", "schema", "pattern"),
     "^([1-9]|10)s$|^[0-9]+ms$"),
    ("CallbackUrl maxLength 999 -> 1000", (*PAYLOAD, "properties", "CallbackUrl", "maxLength"), 1000),
    ("DriverType also ModulatedVoice", (*PAYLOAD, "properties", "DriverType", "enum"),
     ["Text", "OriginalVoice", "ModulatedVoice"]),
    ("ConcurrencyType also Both", (*PAYLOAD, "properties", "ConcurrencyType", "enum"), ["Exclusive", "Shared", "Both"]),
    ("RefPhotoUrl optional", (*PAYLOAD, "required"), ["DriverType"]),
    ("RefPhotoUrl any scheme", (*SCHEMAS, "PhotoUrl", "pattern"), "^.+$"),
    ("Text without InputSsml", (*PAYLOAD, "allOf", 0, "then", "required"), ["SpeechParam"]),
    ("Text without TimbreKey", (*PAYLOAD, "allOf", 0, "then", "properties", "SpeechParam", "required"), ["Speed"]),
    ("OriginalVoice without InputAudioUrl", (*PAYLOAD, "allOf", 1, "then", "required"), []),
    ("male_21 exists", ("x-ivh-builtin-timbres", "families", 0, "last"), 21),
]


def mutate(source: Path, target: Path, path: tuple[Any, ...], value: Any) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    document = yaml.safe_load((target / "openapi.yaml").read_text(encoding="utf-8"))
    node = document
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    (target / "openapi.yaml").write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False),
                                         encoding="utf-8")


def run_one(mutation: tuple[str, tuple[Any, ...], Any], workdir: Path) -> tuple[str, bool, str]:
    name, path, value = mutation
    copy = workdir / name.replace(" ", "_").replace(">", "").replace("/", "_")
    mutate(spec_module.SPEC_DIR, copy, path, value)
    tests = Path(__file__).with_name("test_constraints.py")
    result = subprocess.run([sys.executable, "-m", "pytest", str(tests), "-q", "-x", "-p", "no:cacheprovider",
                             "-p", "no:schemathesis",
                             "--ivh-spec-dir", str(copy), "--hypothesis-profile", "ivh-mutation"],
                            capture_output=True, text=True, timeout=600)
    failed = [line.split(" ", 1)[1].split(" - ")[0] for line in result.stdout.splitlines()
              if line.startswith("FAILED ")]
    return name, result.returncode == 1 and bool(failed), ", ".join(t.split("::")[-1] for t in failed)


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda m: run_one(m, Path(tmp)), MUTATIONS))
    width = max(len(name) for name, _, _ in results)
    for name, killed, by in results:
        print(f"{name:<{width}}  {'caught by ' + by if killed else 'SURVIVED'}")
    survivors = [name for name, killed, _ in results if not killed]
    print(f"{len(results) - len(survivors)} of {len(results)} mutations caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())
