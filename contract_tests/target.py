"""The target of the contract suite: the mock in-process, or any server given its URL.

Both are reached through a requests session, so every test runs the same code against either. A target that
answers the control API (`/__mock__/`) is a mock whose clock and scenarios the suite may steer.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from ivh_mock.client import APIError, Client, IvhError
from ivh_mock.proxy import redact
from ivh_mock.proxy.checks import ExchangeChecker
from ivh_mock.proxy.forward import RECORDED_BODY_BYTES, parsed_body, recorded_body
from ivh_mock.proxy.report import Aggregate
from ivh_mock.spec import deadline
from ivh_mock.spec.signing import signed_query
from ivh_mock.spec.urls import http_url_problem

from ivh_mock import spec as spec_module

SUBMIT = "phototovideonotrain"
# A photo URL on a reserved, never-resolving domain: should a live API accept a probe the docs say it refuses, the
# task fails on download instead of rendering a video.
UNREACHABLE_PHOTO = "https://ivh-contract-probe.invalid/photo.jpg"
ANSWER_SECONDS = 30  # how long a call waits for the target's answer
# How long a run's hold on a mock's clock lasts past its last move, each of which holds it anew: two runs steering one
# mock's clock had moved it under each other, and the second to end put back the clock frozen as it found it
HOLD_SECONDS = 600


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any

    @property
    def code(self) -> int | None:
        try:
            return self.body["Header"]["Code"]
        except (TypeError, KeyError):
            return None

    @property
    def message(self) -> str:
        try:
            return self.body["Header"]["Message"]
        except (TypeError, KeyError):
            return ""

    @property
    def payload(self) -> dict[str, Any]:
        payload = self.body.get("Payload") if isinstance(self.body, dict) else None  # a page's text has none
        return payload if isinstance(payload, dict) else {}

    @property
    def shown(self) -> str:
        """The Header.Code, or, for an answer that is not the API's envelope, its status and the start of its body:
        what a probe reports the target answered."""
        if isinstance(self.code, int):
            return str(self.code)
        text = self.body if isinstance(self.body, str) else json.dumps(self.body, ensure_ascii=False)
        return f"HTTP {self.status}, not the API's envelope: {text[:60]!r}"


class SpendGuard:
    """Counts accepted submissions and refuses to send one that could be accepted beyond the allowance.

    `allowance` None means no limit (the in-process mock). A submission "could be accepted" when the spec finds
    nothing wrong with it: such are sent while fewer than the allowance were accepted. One the spec refuses costs
    nothing, and is sent until the target accepts one such (drift that bills): after that, nothing the spec refuses
    is sent any more. At most the allowance and one such acceptance are billed."""

    def __init__(self, allowance: int | None):
        self.allowance = allowance
        self.accepted = 0
        self.unforeseen = 0  # of them, submissions the spec refuses
        self.unanswered = 0  # of them, submissions with no answer that says whether (counted: they may be billed)
        self.spec = spec_module.load()

    def could_be_accepted(self, body: Any) -> bool:
        return isinstance(body, dict) and not self.spec.validate(SUBMIT, body)

    def allows(self, body: Any) -> bool:
        """Tell whether `body` may be submitted under the allowance."""
        if self.allowance is None:
            return True
        if self.could_be_accepted(body):
            return self.accepted < self.allowance
        return not self.unforeseen

    def check(self, body: Any) -> None:
        """Skip the test rather than send a submission the allowance does not cover."""
        if not self.allows(body):
            pytest.skip(f"spend guard: {self._count()}; this submission could be billed")

    def check_allowance(self, billed_only: bool = True, needed: int = 1) -> None:
        """Skip a test that submits what could be billed when the allowance left is less than the `needed`
        submissions it makes for sure (its explicit examples'); with `billed_only` False, a test of refusals, once
        the target accepted a submission the spec refuses: nothing the spec refuses is sent any more, and the test
        would pass having checked only what it accepts."""
        if self.allowance is None:
            return
        if billed_only and self.accepted + max(needed, 1) > self.allowance:
            pytest.skip(f"spend guard: {self._count()}; this test submits what could be billed"
                        + (f", {needed} times at least" if needed > 1 else ""))
        if not billed_only and self.unforeseen:
            pytest.skip(f"spend guard: {self._count()}, {self.unforeseen} of them of what the spec refuses; nothing "
                        f"it refuses is submitted any more")

    def record(self, answer: Answer, body: Any) -> None:
        """Count a submission's answer: accepted (Code 0), refused (the API's envelope with another code), or neither
        (a gateway's page, a body that is no envelope), which may have been billed all the same."""
        if answer.code == 0:
            self._billed(body)
        elif not isinstance(answer.code, int):
            self.unsure(body)

    def unsure(self, body: Any) -> None:
        """A submission sent whose outcome no answer tells (a timeout, a connection cut, a gateway's 502): counted as
        accepted, as it may have been billed. Counted only as accepted ones, these had let 31 be billed under an
        allowance of 1."""
        self.unanswered += 1
        self._billed(body)

    def _billed(self, body: Any) -> None:
        self.accepted += 1
        self.unforeseen += not self.could_be_accepted(body)

    def _count(self) -> str:
        unanswered = f" ({self.unanswered} of them unanswered, counted as billed)" if self.unanswered else ""
        return f"{self.accepted} accepted{unanswered} of --ivh-allow-spend {self.allowance}"


class Observed:
    """Every answer of an API operation the suite gets, through its raw calls and its clients alike (a response
    hook of the target's session), checked as the recording proxy checks real traffic (proxy/checks.py): an
    undocumented field, a value outside an enum, a request the spec refuses accepted. Added up for the drift
    report's findings; the suite's own assertions check less (an added field breaks none of them)."""

    def __init__(self, spec: spec_module.Spec):
        self.checker, self.aggregate, self.count = ExchangeChecker(spec), Aggregate(), 0

    def response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        split = urlsplit(request.url or "")
        operation = self.checker.operation(request.method or "", split.path)
        if operation is None:  # a result file, the control API
            return
        self.count += 1
        pairs = parse_qsl(split.query, keep_blank_values=True)
        sent = request.body.encode() if isinstance(request.body, str) else request.body or b""
        body, body_is_json = parsed_body(sent)  # as the proxy reads traffic: bounded in size and depth
        data = response.content  # read here, and kept for the caller's own reading (a client's size bound)
        if len(data) > RECORDED_BODY_BYTES:  # as the proxy marks it: unchecked (no answer of the API's is that large)
            return
        answer, answer_is_json = parsed_body(data)
        verdict = self.checker.request(operation, dict(pairs), request.headers.get("Content-Type"), body,
                                       body_is_json)
        findings = self.checker.answer(operation, response.status_code, answer, answer_is_json, verdict,
                                       response.headers.get("Content-Type"))
        if not findings:  # an example is only made for a report to show (it was a twentieth of a run's CPU)
            return
        # the example a report shows, redacted as the proxy's recordings are (a MediaUrl's signature, a pre-signed
        # storage URL): reports are shared
        record = {"time": datetime.now(timezone.utc).isoformat(timespec="seconds"), "operation": operation,
                  "request": {"query": redact.query(pairs), **recorded_body(sent, body, body_is_json)},
                  "response": {"status": response.status_code, **recorded_body(data, answer, answer_is_json)}}
        for finding in findings:
            self.aggregate.add(finding.as_dict(), record)

    def findings(self) -> list[dict[str, Any]]:
        return self.aggregate.findings()


class GuardedClient(Client):
    """A Client whose submissions are counted, and refused beyond the allowance, by a SpendGuard."""

    def __init__(self, guard: SpendGuard, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.guard = guard

    def phototovideonotrain(self, payload=None, **kwargs: Any):
        fields = {key: value for key, value in kwargs.items() if key not in ("request_id", "scenario")}
        body = {"Header": {}, "Payload": {**(payload or {}), **fields}}
        self.guard.check(body)
        try:
            submitted = super().phototovideonotrain(payload, **kwargs)
        except APIError as error:  # the API's refusal; or no envelope of its (a gateway's 5xx), perhaps billed
            if error.body is None and not error.preflight:
                self.guard.unsure(body)
            raise
        except IvhError:  # no answer (a timeout, a connection cut): it may have been billed
            self.guard.unsure(body)
            raise
        self.guard.record(Answer(200, {"Header": {"Code": 0}}), body)
        return submitted


class Target:
    def __init__(self, base_url: str, session: requests.Session, *, label: str, guard: SpendGuard,
                 appkey: str, accesstoken: str, control_token: str | None = None):
        self.base_url, self.session, self.label, self.guard = base_url.rstrip("/"), session, label, guard
        self.default_appkey, self.accesstoken, self.control_token = appkey, accesstoken, control_token
        self.spec = spec_module.load()
        self.control_refused: str | None = None  # a mock's control API that refused the token (_control)
        self.unanswered: str | None = None  # the target did not answer the probe of its control API in time
        self.observed = Observed(self.spec)
        session.hooks["response"].append(self.observed.response)
        start = self._control("GET", "clock", probing=True)
        # a mock's clock, or no control API: a gateway may answer any path with 200 (an HTML page, or the API's own
        # error envelope, D01), and a target taken for a mock would be sent fresh appkeys it never issued
        if not (isinstance(start, dict) and type(start.get("now")) in (int, float)
                and isinstance(start.get("frozen"), bool)):
            start = None
        self.has_control = start is not None
        self._frozen_at: float | None = None
        self._appkeys: list[str] = []  # the accounts handed to tests on a mock (forget_accounts)
        # What each request a Hypothesis example sent was answered (or how it failed), for the example's replay when
        # it failed (`send`); forgotten at each test's start (forget_answers)
        self._answered: dict[tuple[Any, ...], Answer | AssertionError] = {}
        # The target's clock as the suite found it, to put it back when the suite ends (restore_clock).
        self._clock_at_start = (start, time.time()) if start is not None else None
        self.run_id = f"contract-suite-{uuid.uuid4().hex[:8]}"  # who holds a mock's clock while this run steers it
        self._holding = True  # whether the mock takes a hold (hold_clock)
        held = start.get("held") if start is not None else None
        self.held_by = held if isinstance(held, dict) else None  # another run's hold, as the suite found the clock

    # -- time and identity ---------------------------------------------------------------------------------------
    def now(self) -> float:
        """The target's time: the frozen mock clock when the suite froze it, else this machine's."""
        return self._frozen_at if self._frozen_at is not None else time.time()

    def appkey(self, hint: str = "") -> str:
        """An appkey for one test: unique on a mock (isolation by appkey), the given one on any other server."""
        if not self.has_control:
            return self.default_appkey
        name = "".join(ch if ch.isalnum() else "-" for ch in hint)[:40]
        self._appkeys.append(f"ct-{name}-{uuid.uuid4().hex[:8]}")
        return self._appkeys[-1]

    def forget_accounts(self) -> None:
        """Reset the accounts handed to tests on a mock: a served mock keeps them, and dozens of them, tasks and
        requests included, would crowd its dashboard after every run."""
        while self._appkeys:
            self._control("POST", "reset", {"appkey": self._appkeys.pop()})

    def client(self, appkey: str | None = None, *, validate: bool = True, **options: Any) -> Client:
        """A client of the target whose submissions pass the spend guard; on a mock it waits by moving the clock."""
        return GuardedClient(self.guard, appkey or self.default_appkey, self.accesstoken, self.base_url,
                             session=self.session, validate=validate, clock=self.now,
                             sleep=self.advance if self.has_control else time.sleep,
                             monotonic=self.now if self.has_control else time.monotonic, **options)

    # -- raw calls ---------------------------------------------------------------------------------------------
    def send(self, operation_id: str, body: Any, *, appkey: str | None = None, query: str | None = None,
             scenario: str | None = None, content_type: str = "application/json;charset=utf-8",
             headers: dict[str, str] | None = None) -> Answer:
        """Sign and send one request as given (body: JSON value, or raw bytes); submissions pass the spend guard.

        Hypothesis runs a failing example once more to report it: what that replay would send again is answered as
        it was the first time (or fails as it did), not sent. Sent again, it was another call to the target, another
        submission that may be billed; and when the spend guard stopped it, the failure was reported as the target's
        flakiness ("failed on the first call but did not on a subsequent one")."""
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
        fresh = appkey in self._appkeys  # one made for the example (appkey()): its replay is given another
        asked = (operation_id, data, None if fresh else appkey, query, scenario, content_type,
                 tuple(sorted((headers or {}).items())))
        example = _example()
        if example is not None and example.is_final and asked in self._answered:
            kept = self._answered[asked]
            if isinstance(kept, AssertionError):
                raise AssertionError(*kept.args)
            return kept
        try:
            answer = self._send(operation_id, body, data, appkey, query, scenario, content_type, headers)
        except AssertionError as failed:
            if example is not None:
                self._answered[asked] = failed
            raise
        if example is not None:
            self._answered[asked] = answer
        return answer

    def forget_answers(self) -> None:
        """Forget the answers kept for replays (`send`): a test's examples are its own."""
        self._answered.clear()

    def _send(self, operation_id: str, body: Any, data: bytes, appkey: str | None, query: str | None,
              scenario: str | None, content_type: str, headers: dict[str, str] | None) -> Answer:
        if operation_id == SUBMIT:
            self.guard.check(body)
        query = query if query is not None else signed_query(appkey or self.default_appkey, self.accesstoken,
                                                             int(self.now()))
        all_headers = {"Content-Type": content_type, **(headers or {})}
        if scenario:
            all_headers["X-Mock-Scenario"] = scenario
        path = self.spec.operations[operation_id].path
        url = f"{self.base_url}{path}"
        try:  # a redirect is the answer: the API never sends one, and its target's answer is another server's
            response = self.session.post(f"{url}?{query}", data=data, headers=all_headers, timeout=ANSWER_SECONDS,
                                         allow_redirects=False)
        except requests.RequestException as error:  # its text quotes the signed URL: good for any call for minutes
            if operation_id == SUBMIT:  # sent, perhaps, and billed: no answer says otherwise
                self.guard.unsure(body)
            note = deadline.proxy_note(self.session, url, error)
            if isinstance(error, requests.Timeout):
                raise AssertionError(f"{self.label} did not answer {operation_id} within {ANSWER_SECONDS} s"
                                     f"{note}") from None
            raise AssertionError(f"{self.label} could not be asked {operation_id}: {redact.text(str(error))}"
                                 f"{note}") from None
        parsed, is_json = parsed_body(response.content)  # bounded in depth: a deep answer had raised RecursionError
        answer = Answer(response.status_code, parsed if is_json else response.text)
        if operation_id == SUBMIT:
            self.guard.record(answer, body)
        return answer

    def get(self, url: str) -> requests.Response:
        return self.session.get(url, timeout=30)

    # -- the control API (mock targets only) ----------------------------------------------------------------------
    def require_control(self) -> None:
        if not self.has_control:
            pytest.skip(f"{self.label} has no control API (/__mock__/): clock and scenarios cannot be steered")

    def hold_clock(self) -> str | None:
        """Hold a mock's clock for this run (the moves of any other are refused meanwhile); why it cannot, or None."""
        if not self.has_control:
            return None
        try:
            self._move({})
        except AssertionError as refused:
            if str(refused).startswith("control API POST clock: 409 the clock is held by "):  # another run's
                return str(refused).removeprefix("control API POST clock: 409 ")
            # a mock of a version before holds (D89), which refuses their fields (400), or whose clock cannot be
            # moved at all (409, said by the tests that move it): steered as it comes, held by no one
            self._holding = False
        return None

    def _move(self, body: dict[str, Any]) -> Any:
        """Move a mock's clock as `body` asks, holding it for this run HOLD_SECONDS more."""
        held = {"by": self.run_id, "hold": HOLD_SECONDS} if self._holding else {}
        return self._control("POST", "clock", {**body, **held})

    def freeze(self) -> None:
        self._frozen_at = self._move({"frozen": True})["now"]

    def restore_clock(self) -> None:
        """Put a mock's clock back as the suite found it: running with the time it had then plus the time since, or
        frozen where it stood; a served mock keeps its clock in its store, so a moved clock would outlive the run."""
        if self._clock_at_start is None:
            return
        start, wall = self._clock_at_start
        when = start["now"] if start["frozen"] else start["now"] + (time.time() - wall)
        released = {"by": self.run_id, "release": True} if self._holding else {}
        self._control("POST", "clock", {"frozen": start["frozen"], "set": when, **released})
        self._frozen_at = start["now"] if start["frozen"] else None

    def advance(self, seconds: float) -> None:
        answer = self._move({"advance": seconds})
        if self._frozen_at is not None:
            self._frozen_at = answer["now"]

    def clock_now(self) -> float:
        """The mock's clock as it stands (control API)."""
        return self._control("GET", "clock")["now"]

    def set_clock(self, when: float) -> None:
        """Put the mock's clock at `when`, frozen or running as it was."""
        answer = self._move({"set": when})
        if self._frozen_at is not None:
            self._frozen_at = answer["now"]

    def reset(self, appkey: str) -> None:
        self._control("POST", "reset", {"appkey": appkey})

    def _control(self, method: str, route: str, body: Any = None, probing: bool = False) -> Any:
        """The control API's answer; None, when `probing` whether there is one at all, for a target without it."""
        headers = {"X-Mock-Token": self.control_token} if self.control_token else {}
        url = f"{self.base_url}/__mock__/{route}"
        try:  # a redirect is no answer of a mock's: another server's page had been taken for the target's
            response = self.session.request(method, url, json=body, headers=headers, timeout=ANSWER_SECONDS,
                                            allow_redirects=False)
        except requests.Timeout as error:
            note = deadline.proxy_note(self.session, url, error)
            if probing:
                self.unanswered = f"{self.label} did not answer GET /__mock__/clock within {ANSWER_SECONDS} s{note}"
                return None
            raise AssertionError(f"{self.label} did not answer the control API's {method} {route} within "
                                 f"{ANSWER_SECONDS} s{note}") from None
        except requests.RequestException as error:  # no server there (any more): a mock stopped mid-run
            if probing:
                return None
            raise AssertionError(f"{self.label} could not be asked the control API's {method} {route}: "
                                 f"{redact.text(str(error))}{deadline.proxy_note(self.session, url, error)}") from None
        # a mock's control API refuses a missing or wrong token (401), or a clock another run holds (409), in its
        # own words
        value, is_json = parsed_body(response.content) if response.status_code in (200, 401, 409) else (None, False)
        error = value.get("error") if is_json and isinstance(value, dict) else None
        said = error.get("message") if isinstance(error, dict) and isinstance(error.get("message"), str) else None
        if response.status_code == 401 and probing and said is not None and "control token" in said:
            self.control_refused = said
        answer = value if is_json and response.status_code == 200 else None
        if answer is None and not probing:
            raise AssertionError(f"control API {method} {route}: {response.status_code} "
                                 f"{said[:600] if said is not None else response.text[:300]}")
        return answer


def _example() -> Any:
    """Hypothesis's context of the example running now (its `is_final`: the replay of a failing example, to report
    it), or None outside one."""
    try:
        from hypothesis.control import current_build_context
        from hypothesis.errors import InvalidArgument
    except ImportError:  # the suite's extra is missing: it says so before any test runs
        return None
    try:
        return current_build_context()
    except InvalidArgument:  # no example runs
        return None


def remote_session() -> requests.Session:
    """The session the suite calls a server across the network with: the client's own, which takes the
    environment's proxy and CA settings once per host (D83) where requests.Session read them twice per call."""
    return deadline.session(trust_env=True)


def preflight(base_url: str, appkey: str, accesstoken: str, control_token: str | None = None, *,
              parallel: bool = False, spend: int = 0) -> str | None:
    """Why the suite cannot be run against `base_url`, or None. A URL that is no server's, credentials the server
    refuses, a path where no API answers or a served mock's control token missing would otherwise fail most tests
    and fill the drift report with "differs": drift that is the run's own set-up. Asks the server one call that
    costs nothing (getprogress of a task that is no one's, in the submissions' own service) and, as every run does,
    whether it is a mock (GET /__mock__/clock). `parallel`: the run is split over xdist workers; `spend`: its
    --ivh-allow-spend."""
    problem = http_url_problem(base_url)
    if problem:
        return f"--ivh-base-url: the URL {problem}"
    target = Target(base_url, remote_session(), label=redact.url(base_url), guard=SpendGuard(0), appkey=appkey,
                    accesstoken=accesstoken, control_token=control_token)
    if target.unanswered is not None:  # the call below would wait as long again
        return target.unanswered
    if target.control_refused is not None:
        return (f"{base_url} is a mock whose control API refused the suite: {target.control_refused}. "
                + ("IVH_MOCK_CONTROL_TOKEN is set, but not to its --control-token" if control_token else
                   "Set IVH_MOCK_CONTROL_TOKEN to its --control-token"))
    if target.held_by is not None:  # its moves would be refused: the first one failed its test, and so on
        return (f"{base_url} is a mock whose clock another run is steering ({target.held_by['by']!r}, its hold "
                f"lapsing at {target.held_by.get('iso')} unless it moves it again): run the suite once it has ended, "
                f"or give each run a mock of its own; a hold whose run was killed is let go by a POST to "
                f"/__mock__/clock of {{\"by\": <its holder>, \"release\": true}}, or a reset of everything")
    if target.has_control and parallel:  # each worker froze, moved and put back the one clock of the mock
        return (f"{base_url} is a served mock: the suite steers its one clock, which tests in parallel workers "
                f"(-n) would move under each other; run the suite against it without -n")
    if parallel and spend and not target.has_control:  # each worker has a spend guard of its own
        return (f"--ivh-allow-spend {spend} is counted by each worker: split over workers (-n), the run could be "
                f"billed for that many in each; run a paying run without -n")
    try:
        answer = target.send("getprogress", {"Header": {}, "Payload": {"TaskId": "0" * 32}})
    except AssertionError as error:  # no answer (send says why, without the signed query)
        return str(error)
    if not isinstance(answer.code, int):
        return f"{base_url} does not answer getprogress as the API does ({answer.shown}); check the URL"
    if target.spec.errors.family(answer.code) == "authentication":
        return (f"{base_url} refused the credentials (IVH_APPKEY, IVH_ACCESSTOKEN): {answer.code} "
                f"{answer.message}"[:600])
    if answer.code == target.spec.errors.by_name["NoSuchRoute"]:
        return f"{base_url} has no API at {target.spec.operations['getprogress'].path}; check the URL's path"
    if target.has_control:  # on a mock each test has an account of its own (appkey()), signed with the same token
        fresh = target.send("getprogress", {"Header": {}, "Payload": {"TaskId": "0" * 32}},
                            appkey=target.appkey("preflight"))
        target.forget_accounts()
        if isinstance(fresh.code, int) and target.spec.errors.family(fresh.code) == "authentication":
            return (f"{base_url} is a mock that refuses the accounts the suite makes for its tests (ct-..., signed "
                    f"with IVH_ACCESSTOKEN): {fresh.code} {fresh.message}"[:400] + ". Run the suite against a mock "
                    "that takes any appkey with that accesstoken: started without --accounts, its "
                    "--default-accesstoken IVH_ACCESSTOKEN")
    return None


def remote_credentials() -> tuple[str, str]:
    appkey, token = os.environ.get("IVH_APPKEY"), os.environ.get("IVH_ACCESSTOKEN")
    if not appkey or not token:
        raise pytest.UsageError("--ivh-base-url needs IVH_APPKEY and IVH_ACCESSTOKEN in the environment")
    return appkey, token
