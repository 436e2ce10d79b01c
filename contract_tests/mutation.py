"""Break one constraint at a time in a copy of the spec, give that copy to the in-process mock, and check that the
named constraint tests catch every break. Two processes share the mutations; each runs one pytest session per
mutation, so the suite is imported twice, not once per mutation.

    python -m ivh_mock.contract_tests.mutation            # prints a table; exits 1 if any mutation survives
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

from ivh_mock import spec as spec_module
from ivh_mock.contract_tests import missing_extra

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
    ("InputSsml markup not checked", (*SCHEMAS, "InputSsml", "x-ivh-ssml"), False),
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
    ("spoken text up to 61 s", ("x-ivh-profiles", "intl", "speech", "maxSeconds"), 61),
]


# libyaml's emitter where PyYAML has it (the spec is read with its parser, spec.read_yaml): the pure-Python ones
# were an eighth of the check's time
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def mutate(source: Path, target: Path, path: tuple[Any, ...], value: Any) -> None:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    document = spec_module.read_yaml(target / "openapi.yaml")
    node = document
    for key in path[:-1]:
        node = node[key]
    if value is DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    (target / "openapi.yaml").write_text(yaml.dump(document, Dumper=_DUMPER, allow_unicode=True, sort_keys=False),
                                         encoding="utf-8")


PROCESSES = 2
RESULT = "MUTATION-RESULT "
NOT_RUN = "NOT RUN"  # a mutation whose constraint tests did not run (a usage error, a failed collection)


class _Failures:
    """A pytest plugin that notes the tests that failed, and runs first the tests named after the field the mutation
    breaks, of those first the ones named after the rule too (`InputSsml markup ...`: the markup test, not the
    length test, which also catches it): the session stops at the first failure; which tests run is the same, only
    sooner when caught, and the one named is the constraint's own."""

    def __init__(self, mutation_name: str):
        self.failed: list[str] = []
        field, *rule = mutation_name.split()
        self.hint = re.sub(r"(?<!^)(?=[A-Z])", "_", field).lower()
        self.rule = [word.lower() for word in rule if len(word) > 3]

    def pytest_collection_modifyitems(self, items):
        items.sort(key=lambda item: (self.hint not in item.name, not any(word in item.name for word in self.rule)))

    def pytest_runtest_logreport(self, report):
        if report.failed:
            self.failed.append(report.nodeid.split("::")[-1])


def run_one(mutation: tuple[str, tuple[Any, ...], Any], workdir: Path) -> tuple[str, bool, str]:
    """Run the constraint tests against the mock given a copy of the spec with `mutation`; return (name, caught,
    the tests that caught it). Runs in this process: one pytest session per mutation, without a new interpreter."""
    import pytest

    name, path, value = mutation
    copy = workdir / name.replace(" ", "_").replace(">", "").replace("/", "_")
    mutate(spec_module.SPEC_DIR, copy, path, value)
    tests = Path(__file__).with_name("test_constraints.py")
    failures = _Failures(name)
    # what a session would print is thrown away: no traceback is formatted for it (--tb=no), and no session ends
    # with pytest's five full garbage collections looking for unraisable exceptions (a fifth of the check's CPU)
    code = pytest.main([str(tests), "-q", "-x", "-p", "no:cacheprovider", "-p", "no:schemathesis", "-p", "no:xdist",
                        "-p", "no:unraisableexception", "--tb=no", "--no-header", "--no-summary", "-o",
                        "console_output_style=classic",
                        "--ivh-spec-dir", str(copy), "--hypothesis-profile", "ivh-mutation"], plugins=[failures])
    if code not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):  # the suite did not run: nothing was shown
        return name, False, f"{NOT_RUN}: pytest exit code {int(code)}"
    return name, code == 1 and bool(failures.failed), ", ".join(failures.failed)


def _run_share(indexes: list[int], workdir: Path) -> None:
    """Run the mutations at `indexes` one after another in this process and print each result on a line."""
    for index in indexes:
        with contextlib.redirect_stdout(io.StringIO()):  # pytest's own output: only the results are read
            result = run_one(MUTATIONS[index], workdir)
        print(RESULT + json.dumps([index, *result]), flush=True)


def run_all(processes: int = PROCESSES) -> list[tuple[str, bool, str]]:
    """Run every mutation, shared among `processes` interpreters (each imports the suite once for all its share)."""
    with tempfile.TemporaryDirectory() as tmp:
        shares = [list(range(n, len(MUTATIONS), processes)) for n in range(processes)]
        workers = [subprocess.Popen([sys.executable, "-m", "ivh_mock.contract_tests.mutation", "--share",
                                     ",".join(map(str, share)), "--workdir", tmp], stdout=subprocess.PIPE, text=True)
                   for share in shares if share]
        found: dict[int, tuple[str, bool, str]] = {}
        for worker in workers:
            out, _ = worker.communicate(timeout=1800)
            for line in out.splitlines():
                if line.startswith(RESULT):
                    index, name, caught, by = json.loads(line.removeprefix(RESULT))
                    found[index] = (name, caught, by)
    # a mutation whose process died without a result counts as surviving: nothing showed it was caught
    return [found.get(index, (MUTATIONS[index][0], False, "")) for index in range(len(MUTATIONS))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--share", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.share is not None:
        _run_share([int(index) for index in args.share.split(",")], Path(args.workdir))
        return 0
    for module in ("pytest", "hypothesis", "schemathesis"):
        if importlib.util.find_spec(module) is None:
            print(f"the mutation check runs the contract suite, and {missing_extra(module)}", file=sys.stderr)
            return 2
    results = run_all()
    width = max(len(name) for name, _, _ in results)
    for name, killed, by in results:
        print(f"{name:<{width}}  {'caught by ' + by if killed else by if by.startswith(NOT_RUN) else 'SURVIVED'}")
    not_run = [name for name, _, by in results if by.startswith(NOT_RUN)]
    if not_run:  # "0 of 21 caught" would say the suite catches nothing, when it never ran
        print(f"{len(not_run)} of {len(results)} mutations could not be checked: the suite did not run (run "
              f"pytest --pyargs ivh_mock.contract_tests to see why)")
        return 2
    survivors = [name for name, killed, _ in results if not killed]
    print(f"{len(results) - len(survivors)} of {len(results)} mutations caught")
    return 1 if survivors else 0


if __name__ == "__main__":
    raise SystemExit(main())
