"""Who may call the mock: by default any appkey with one shared accesstoken; in strict mode only listed accounts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import jsonschema
import yaml

SCHEMA_PATH = Path(__file__).with_name("accounts.schema.yaml")


class AccountsFileError(ValueError):
    """The accounts file cannot be used; the message names the file, the entry and the rule."""


@dataclass(frozen=True)
class Account:
    appkey: str
    accesstoken: str


class Accounts:
    """The account table. Every piece of state the mock keeps is keyed by appkey, so appkeys isolate tests."""

    def __init__(self, default_accesstoken: str, listed: list[Account] | None = None):
        self.default_accesstoken = default_accesstoken
        self.strict = listed is not None
        self._listed = {account.appkey: account for account in listed or []}

    @classmethod
    def from_file(cls, path: str | Path, default_accesstoken: str) -> Accounts:
        """Read a YAML or JSON accounts file (format: accounts.schema.yaml) and switch to strict mode."""
        try:
            data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            raise AccountsFileError(f"cannot read accounts file {path}: {error}") from None
        schema = yaml.safe_load(SCHEMA_PATH.read_text(encoding="utf-8"))
        problem = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema).iter_errors(data))
        if problem is not None:
            where = "/".join(str(part) for part in problem.absolute_path) or "top level"
            raise AccountsFileError(f"accounts file {path}, at {where}: {problem.message}")
        entries = [Account(item["appkey"], item["accesstoken"]) for item in data["accounts"]]
        seen: set[str] = set()
        for account in entries:
            if account.appkey in seen:
                raise AccountsFileError(f"accounts file {path}: appkey {account.appkey!r} is listed twice")
            seen.add(account.appkey)
        return cls(default_accesstoken, entries)

    def get(self, appkey: str) -> Account | None:
        """Return the account of `appkey`, or None when strict mode does not know it."""
        if self.strict:
            return self._listed.get(appkey)
        return Account(appkey, self.default_accesstoken)

    def describe(self) -> str:
        """Say in one line which credentials work, for the start-up banner."""
        if self.strict:
            return f"{len(self._listed)} account(s) from the accounts file: " + ", ".join(sorted(self._listed))
        return f"any appkey, accesstoken {self.default_accesstoken!r}"
