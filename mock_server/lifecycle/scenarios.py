"""The scenario catalogue (scenarios.yaml): named whole-task trajectories, chosen per request or per account."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivh_mock.spec import Spec, read_yaml
from ivh_mock.spec.validation import cut, shown

from ..pace import PRESETS

CATALOGUE: dict[str, dict[str, Any]] = read_yaml(Path(__file__).with_name("scenarios.yaml"))
HEADER = "X-Mock-Scenario"
NUMERIC_KEYS = ("code", "at", "factor")
PACE_KEY = "pace"  # every scenario takes it: a preset of paces.yaml for this one task
_WHOLE = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")


class ScenarioError(ValueError):
    """A scenario name or parameter the catalogue does not have; the message says what is allowed."""


@dataclass(frozen=True)
class Scenario:
    name: str
    spec: str  # its name and parameters, spelt one way ("fail:" and " fail" are "fail")
    reject: int | None = None
    scope: str = "submit"
    stuck: bool = False
    factor: float = 1.0
    outcome: str = "SUCCESS"
    code: int = 0
    at: int = 0
    message: str | None = None
    pace: str | None = None  # a preset of paces.yaml over the account's and the server's pace


def scenario_of(spec: Spec, text: str) -> Scenario:
    """Parse a scenario name with parameters under the spec's FailCodes and Progress ceiling; raises ScenarioError
    naming what is allowed."""
    return _parsed(spec, text)


def setting(spec: Spec, text: str) -> str:
    """A scenario as an account's setting keeps it (the default, the accounts file's, the control API's): its one
    spelling. ScenarioError says why it is none, without the header's name (a setting is no request's header)."""
    try:
        return scenario_of(spec, text).spec
    except ScenarioError as error:
        raise ScenarioError(str(error).removeprefix(HEADER).lstrip()) from None


@functools.lru_cache(maxsize=256)
def _parsed(spec: Spec, text: str) -> Scenario:
    """Every request names a scenario (most often the account's default), and the same text always parses the same
    under the same spec: remembered, as a Scenario is immutable. A refusal is not remembered; it raises each time."""
    return parse(text, set(spec.errors.fail), spec.service["progressWhileMakingMax"])


def parse(text: str, fail_codes: set[int], max_progress: int) -> Scenario:
    """Parse `name` or `name:key=value,...` into a Scenario, refusing anything the catalogue does not allow."""
    name, _, params = text.strip().partition(":")
    if name not in CATALOGUE:
        raise ScenarioError(f"{HEADER} {shown(name)} is not a scenario; known: {', '.join(CATALOGUE)}")
    entry = {key: value for key, value in CATALOGUE[name].items() if key != "description"}
    pace, given = None, set()
    items = [part.strip() for part in params.split(",") if part.strip()]
    for item in items:
        key, _, value = item.partition("=")
        if key in given:  # which one is meant? the last had silently won
            raise ScenarioError(f"{HEADER} parameter {cut(key)} is given twice in {shown(text.strip())}")
        given.add(key)
        if key == PACE_KEY:
            if value not in PRESETS:
                raise ScenarioError(f"{HEADER} parameter pace={shown(value)} is not a pace; known: "
                                    f"{', '.join(PRESETS)}")
            pace = value
            continue
        if key not in entry or key not in NUMERIC_KEYS:
            settable = [k for k in entry if k in NUMERIC_KEYS] + [PACE_KEY]
            raise ScenarioError(f"{HEADER} {shown(name)} has no parameter {shown(key)}; it takes: "
                                f"{', '.join(settable)}")
        # in ASCII: Python's int() and float() also take "801_000" and other scripts' digits, each its own spelling
        if key == "factor" and _DECIMAL.fullmatch(value):
            entry[key] = float(value)
        elif key != "factor" and _WHOLE.fullmatch(value):
            entry[key] = int(value)
            items[items.index(item)] = f"{key}={entry[key]}"  # "at=030" and "at=-0" are "at=30" and "at=0"
        else:
            kind = "a number" if key == "factor" else "a whole number"  # 801000.0 is a number, but no code
            raise ScenarioError(f"{HEADER} parameter {key}={shown(value)} must be {kind} in ASCII digits")
    spec = f"{name}:{','.join(items)}" if items else name  # one spelling of it: "fail:" and " fail" are "fail"
    scenario = Scenario(name=name, spec=spec, reject=entry.get("reject"), scope=entry.get("scope", "submit"),
                        stuck=entry.get("queue") == "stuck", factor=float(entry.get("factor", 1.0)),
                        outcome=entry.get("outcome", "SUCCESS"), code=entry.get("code", 0), at=entry.get("at", 0),
                        message=entry.get("message"), pace=pace)
    if scenario.outcome == "FAIL" and scenario.code not in fail_codes - {0}:
        raise ScenarioError(f"{HEADER} code={cut(str(scenario.code))} is not a documented FailCode")
    if not 0 <= scenario.at <= max_progress:
        raise ScenarioError(f"{HEADER} at={cut(str(scenario.at))} must be a Progress from 0 to {max_progress}")
    if not 0 < scenario.factor <= 1000:
        raise ScenarioError(f"{HEADER} factor={scenario.factor} must be above 0 and at most 1000")
    return scenario
