"""The mock's settings: code defaults, then whatever the caller (CLI, test, plugin) passes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

DEFAULT_ACCESSTOKEN = "mock-accesstoken"


@dataclass(frozen=True)
class Config:
    """Settings of one mock instance; see the README's configuration table."""

    profile: str | None = None  # limit profile of the spec; None means the spec's default (intl)
    accounts_file: str | None = None  # strict mode: only these accounts, each with its own token
    default_accesstoken: str = DEFAULT_ACCESSTOKEN  # the token of every appkey when not strict
    max_body_bytes: int = 1_048_576  # larger request bodies are refused with 100003
    max_json_depth: int = 32  # deeper JSON nesting is refused with 100003
    journal_limit: int = 1000  # request-journal entries kept per appkey
    spec_dir: str | None = None  # another copy of spec/ (for mutation tests); None means the packaged one

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> Config:
        """Build a Config from a mapping, refusing unknown keys by name."""
        merged = {**(values or {}), **overrides}
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise TypeError(f"unknown mock setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**merged)
