"""The mock's settings: code defaults, then whatever the caller (CLI, test, plugin) passes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from .pace import DEFAULT as DEFAULT_PACE
from .pace import FIELDS as PACE_FIELDS
from .pace import PRESETS, resolve

DEFAULT_ACCESSTOKEN = "mock-accesstoken"


def token_problem(token: Any) -> str | None:
    """Why `token` cannot be the control API's token, or None. A header can carry other characters only as Latin-1,
    which requests sends but curl (UTF-8) and a browser's fetch cannot; a space at either end is lost from the header;
    an empty token would match a request that sends none."""
    if isinstance(token, str) and token and all("!" <= char <= "~" for char in token):
        return None
    return f"{token!r} is not printable ASCII without spaces (at least one character)"


@dataclass(frozen=True)
class Config:
    """Settings of one mock instance; see the README's configuration table."""

    profile: str | None = None  # limit profile of the spec; None means the spec's default (intl)
    accounts_file: str | None = None  # strict mode: only these accounts, each with its own token
    default_accesstoken: str = DEFAULT_ACCESSTOKEN  # the token of every appkey when not strict
    max_body_bytes: int = 1_048_576  # larger request bodies are refused with 100003
    max_json_depth: int = 32  # deeper JSON nesting is refused with 100003
    # the request journal (DECISIONS.md D30): entries kept per appkey, then of all appkeys together at most
    # journal_total_limit entries and journal_total_bytes bytes of JSON; a larger body is cut to journal_body_bytes
    journal_limit: int = 1000
    journal_total_limit: int = 10_000
    journal_total_bytes: int = 16 * 1_048_576
    journal_body_bytes: int = 16_384
    spec_dir: str | None = None  # another copy of spec/ (for mutation tests); None means the packaged one
    # task timing: a task waits in COMMIT at least queue_seconds (capacity is shared by all customers), then
    # render time = (render_startup_seconds + render_speed * output seconds) * scenario factor; the defaults are the
    # fast pace (paces.yaml), which accounts and requests may override
    queue_seconds: float = PRESETS[DEFAULT_PACE]["queue_seconds"]
    render_speed: float = PRESETS[DEFAULT_PACE]["render_speed"]
    render_startup_seconds: float = PRESETS[DEFAULT_PACE]["render_startup_seconds"]
    # the spoken-duration estimate of Text tasks (see DECISIONS.md D33)
    cjk_chars_per_second: float = 4.0
    latin_words_per_second: float = 2.5
    # account defaults (each account may override them)
    hourly_package_seconds: float | None = 360_000.0  # 100 hours; None means no package bought
    exclusive_concurrency: int = 0
    max_pending: int = 1000  # unfinished tasks an account may have before 100008
    default_scenario: str = "success"
    # callbacks
    callback_timeout_seconds: float = 5.0
    callback_workers: int = 32  # threads delivering callbacks; one target gets a quarter of them at most
    background: bool = True  # run the callback dispatcher thread (it makes the uploads to callers' storage too)
    # where media URLs point; None means the host the submission was sent to
    public_url: str | None = None
    # where state is kept: memory, sqlite:PATH or redis://HOST:PORT/DB (create_app's `store` argument overrides it)
    store: str = "memory"
    # files: fetched media, uploads, rendered videos; None means a temporary directory removed when the mock ends
    data_dir: str | None = None
    asset_max_bytes: int = 64 * 1_048_576  # largest upload to the asset host
    asset_total_bytes: int = 1024 * 1_048_576  # all uploads together; the least recent are deleted beyond it
    # downloading RefPhotoUrl and InputAudioUrl
    fetch_connect_timeout_seconds: float = 3.0
    fetch_total_timeout_seconds: float = 15.0
    fetch_redirects: int = 3
    # requests of a process that may wait on something slow at once (a download, a render); one more is answered at
    # once instead (-101002, 503); None: no limit. ivh-mock serve: its threads less two
    slow_waits: int | None = None
    render_wait_seconds: float = 60.0  # longest a download waits for its video to finish rendering
    control_token: str | None = None  # required on the control API when set
    # host names the control API answers besides IP addresses, localhost and public_url's host ("*": any)
    allowed_hosts: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # a negative queue or render would plan a task to start before it was submitted; the CLI and the control API
        # refuse one already, and a Config built in code (create_app, MockServer, the fixtures) is held to the same
        resolve({name: getattr(self, name) for name in PACE_FIELDS})  # raises PaceError, a ValueError, naming it
        if self.control_token is not None and token_problem(self.control_token):
            raise ValueError(f"control_token: {token_problem(self.control_token)}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> Config:
        """Build a Config from a mapping, refusing unknown keys by name. `pace` (a preset's name or a mapping of the
        three figures, as `ivh-mock serve --pace` and an account take) gives the figures not given beside it."""
        merged = {**(values or {}), **overrides}
        if "pace" in merged:
            merged = {**resolve(merged.pop("pace")), **merged}  # raises PaceError, a ValueError, naming it
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(merged) - known)
        if unknown:
            raise TypeError(f"unknown mock setting(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**merged)
