"""Who may call the mock, and with what quotas.

By default any appkey is accepted with one shared accesstoken; `--accounts FILE` switches to strict mode. Settings
changed through the control API live in the store, so every worker sees them.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import jsonschema
import yaml
from ivh_mock.spec import StrictLoader, read_yaml, yaml_problem
from ivh_mock.spec.jsontext import lone_surrogate, plain

from ivh_mock.spec.validation import BASE, cut

from .pace import PaceError, resolve

SCHEMA = read_yaml(Path(__file__).with_name("accounts.schema.yaml"))
SETTINGS_SCHEMA = {**SCHEMA["$defs"]["settings"], "$defs": SCHEMA["$defs"]}


class AccountsFileError(ValueError):
    """The accounts file cannot be used; the message names the file, the entry and the rule."""


@dataclass(frozen=True)
class Account:
    appkey: str
    accesstoken: str
    concurrency: int
    exclusive_concurrency: int
    hourly_package_seconds: float | None
    max_pending: int
    scenario: str
    pace: str | dict[str, float] | None = None  # the account's pace (paces.yaml) over the server's; None: the server's

    @property
    def slots(self) -> int:
        """Tasks rendered at once: the default concurrency plus what was bought."""
        return self.concurrency + self.exclusive_concurrency

    def view(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def schema_problem(schema: dict[str, Any], instance: Any) -> tuple[str, str] | None:
    """Return the most relevant way `instance` breaks one of the mock's own formats (accounts file, control API
    bodies) as (path, message), the path '/'-joined and empty at the top; None when it conforms. Types are read as
    the API's are: an integer is a JSON integer (not 1.0), a number is finite."""
    error = jsonschema.exceptions.best_match(BASE(schema).iter_errors(instance))
    if error is None:
        return None
    return "/".join(str(part) for part in error.absolute_path), _json_spelled(error)


def _json_spelled(error: jsonschema.ValidationError) -> str:
    """jsonschema's message with the value it begins with written as JSON writes it (`true was expected`, `null is
    not of type 'object'`, `"5" is not of type 'number'`), not as Python does (`True`, `None`, `'5'`), and cut to
    SHOWN characters. A text too long or too short is not quoted at all: it may be a secret (an accesstoken of
    300,000 characters had come back whole in the refusal, and in the error a start prints)."""
    if error.validator in ("minLength", "maxLength") and isinstance(error.instance, str):
        words = "at least" if error.validator == "minLength" else "at most"
        return f"is {len(error.instance)} characters long; it must have {words} {error.validator_value}"
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        # each name cut, and a few of them: 90,000 unknown keys had come back in an answer of 889 KB
        known = error.schema.get("properties", {})
        extra = [key for key in error.instance if key not in known]
        named = ", ".join(repr(cut(str(key), SHOWN)) for key in extra[:NAMED])
        more = f" and {len(extra) - NAMED} more" if len(extra) > NAMED else ""
        return f"Additional properties are not allowed ({named}{more} {'was' if len(extra) == 1 else 'were'} " \
               f"unexpected)"
    for value in (error.instance, error.validator_value):
        written = repr(value)
        if error.message.startswith(written):
            try:
                shown = json.dumps(value, ensure_ascii=False)
            except (TypeError, ValueError):  # a value JSON cannot write (from YAML: a date) stays as it was
                break
            return cut(shown, SHOWN) + error.message[len(written):]
    return cut(error.message, 1000)  # whatever else a rule's message quotes of a value


SHOWN = 80  # characters of a refused value a message quotes
NAMED = 5  # unexpected fields a message names


def pace_problem(settings: dict[str, Any], where: str = "body") -> str | None:
    """Return why the settings' `pace` cannot be used, or None (the schema has its shape, paces.yaml its names)."""
    if settings.get("pace") is None:
        return None
    try:
        resolve(settings["pace"])
    except PaceError as error:
        return f"{where}/pace: {error}"
    return None


class Accounts:
    """The account table: defaults, then the accounts file, then overrides kept in the store."""

    def __init__(self, defaults: dict[str, Any], listed: list[dict[str, Any]] | None = None):
        self.defaults = defaults
        self.strict = listed is not None
        self._listed = {entry["appkey"]: entry for entry in listed or []}

    @classmethod
    def from_file(cls, path: str | Path, defaults: dict[str, Any],
                  scenario: Callable[[str], str] = str) -> Accounts:
        """Read a YAML or JSON accounts file (format: accounts.schema.yaml) and switch to strict mode. `scenario`
        returns a scenario's one spelling, or raises ValueError saying why it is none."""
        data = _read(Path(path))
        surrogate = lone_surrogate(data)  # (a JSON escape or YAML's `"\\ud800"`): every request of the account, and
        if surrogate:  # the account listing, had failed with 500 as the text could not be encoded
            raise AccountsFileError(f"accounts file {path}: {surrogate}")
        problem = schema_problem(SCHEMA, data)
        if problem is not None:
            where, message = problem
            raise AccountsFileError(f"accounts file {path}, at {where or 'top level'}: {message}")
        seen: set[str] = set()
        for entry in data["accounts"]:
            if entry["appkey"] in seen:
                raise AccountsFileError(f"accounts file {path}: appkey {entry['appkey']!r} is listed twice")
            seen.add(entry["appkey"])
            problem = pace_problem(entry, f"accounts file {path}, account {entry['appkey']!r}")
            if problem:
                raise AccountsFileError(problem)
            if entry.get("scenario") is not None:  # refused at start, not on each of the account's requests
                try:
                    entry["scenario"] = scenario(entry["scenario"])
                except ValueError as error:
                    raise AccountsFileError(f"accounts file {path}, account {entry['appkey']!r}/scenario: "
                                            f"{error}") from None
        return cls(defaults, data["accounts"])

    def get(self, appkey: str, overrides: dict[str, Any] | None = None) -> Account | None:
        """Return the account of `appkey` with `overrides` (from the store) applied, or None when strict mode
        knows neither."""
        if self.strict and appkey not in self._listed and not overrides:
            return None
        merged = dict(self.defaults)
        for layer in (self._listed.get(appkey, {}), overrides or {}):  # a null scenario: the layer below's
            merged.update((key, value) for key, value in layer.items() if not (key == "scenario" and value is None))
        return Account(**{**merged, "appkey": appkey})

    def listed(self) -> list[str]:
        return sorted(self._listed)

    def describe(self) -> str:
        """Say in one line which credentials work, for the start-up banner (the first SHOWN_ACCOUNTS of a long list:
        300,000 had made a line of 2.6 MB)."""
        if self.strict:
            listed = self.listed()
            more = f", and {len(listed) - SHOWN_ACCOUNTS} more" if len(listed) > SHOWN_ACCOUNTS else ""
            shown = plain(", ".join(listed[:SHOWN_ACCOUNTS]))  # a control character in an appkey: escaped (an ESC
            # had coloured the terminal, a line break written a line of its own into the banner)
            return (f"{len(listed)} account(s) from the accounts file: {shown}{more} "
                    f"(and any account the store keeps settings for: PUT /__mock__/accounts/<appkey>)")
        return f"any appkey, accesstoken {self.defaults['accesstoken']!r}"


SHOWN_ACCOUNTS = 20
# An accounts file is a list of settings: more than this is no file a person wrote (300,000 accounts in 15 MB took a
# start 48 s and 1.25 GB), and YAML's aliases may not make more values than MAX_VALUES of it (a 337-byte file of
# nested aliases had made a billion, and 3 GB, before its refusal)
MAX_FILE_BYTES = 4 * 1_048_576
MAX_VALUES = 1_000_000


def _read(path: Path) -> Any:
    """The accounts file's content, or AccountsFileError saying why there is none to use."""
    try:  # looked at before it is opened: opening a FIFO waits for a writer, for ever
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise AccountsFileError(f"accounts file {path}: it is not a regular file")
        with open(path, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise AccountsFileError(f"cannot read accounts file {path}: {error.strerror or error}") from None
    if len(data) > MAX_FILE_BYTES:
        raise AccountsFileError(f"accounts file {path}: it is larger than {MAX_FILE_BYTES} bytes")
    try:
        content = yaml.load(data.decode("utf-8"), Loader=StrictLoader)  # noqa: S506 - a safe loader
        too_many = _values(content) > MAX_VALUES
    except (UnicodeDecodeError, yaml.YAMLError) as error:
        raise AccountsFileError(f"cannot read accounts file {path}: {yaml_problem(error)}") from None
    except RecursionError:
        raise AccountsFileError(f"cannot read accounts file {path}: it is nested too deeply") from None
    if too_many:
        raise AccountsFileError(f"accounts file {path}: its YAML aliases make more than {MAX_VALUES} values")
    return content


def _values(content: Any) -> int:
    """How many values `content` holds, a value reached twice (a YAML alias) counted each time; worked out once per
    distinct value, so a billion made of a few aliases is counted without being walked."""
    counted: dict[int, int] = {}

    def count(value: Any) -> int:
        if not isinstance(value, (dict, list)):
            return 1
        if id(value) not in counted:
            children = value.values() if isinstance(value, dict) else value
            counted[id(value)] = min(MAX_VALUES + 1, 1 + sum(map(count, children)))
        return counted[id(value)]

    return count(content)
