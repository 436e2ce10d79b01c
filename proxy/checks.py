"""Checks of real traffic against the spec: each exchange on its own (ExchangeChecker), and each task across its
polls and its callback (Lifecycle). Every check returns Findings; none raises, none changes what passes through."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import unquote

from ivh_mock import spec as spec_module
from ivh_mock.spec.mediatype import JSON as JSON_MEDIA_TYPE, is_json
from ivh_mock.spec.validation import RequestValidator, cut, reference

from . import redact

# The order of a task's states; SUCCESS and FAIL are both final.
STATE_RANK = {"COMMIT": 0, "MAKING": 1, "SUCCESS": 2, "FAIL": 2}
SUBJECT_CHARS, DETAIL_CHARS = 200, 1000  # of a finding's subject and detail: an answer's whole text had been quoted
UNDOCUMENTED_LISTED = 20  # undocumented fields of one answer listed one by one; the rest counted in one finding
@dataclass(frozen=True)
class Finding:
    """One thing the target did that the spec does not allow. Findings with the same (kind, operation, subject)
    are the same problem seen again; `detail` says it in words for the first one seen."""

    kind: str
    subject: str
    detail: str
    operation: str | None = None
    task: str | None = None

    def __post_init__(self) -> None:
        # what a finding quotes of an exchange (a FailMessage, a Message, a refused value, a field's name) is
        # redacted as a recording is, and cut: findings go into recordings, drift reports and the terminal
        for name in ("subject", "detail"):
            text = redact.text(str(getattr(self, name)))
            limit = SUBJECT_CHARS if name == "subject" else DETAIL_CHARS
            object.__setattr__(self, name, cut(text, limit))

    @property
    def key(self) -> tuple[str, str | None, str]:
        return self.kind, self.operation, self.subject

    def as_dict(self) -> dict[str, Any]:
        return {name: item for name, item in asdict(self).items() if item is not None}


@dataclass
class RequestVerdict:
    """What the spec says of a request: refused (and why) or acceptable."""

    refused: bool
    reasons: list[str] = field(default_factory=list)


class ExchangeChecker:
    """Check requests and answers of the spec's operations (and callback bodies) against the spec and catalogue."""

    def __init__(self, spec: spec_module.Spec | None = None):
        self.spec = spec or spec_module.load()
        self.by_route = {(op.method, op.path): op for op in self.spec.operations.values()}
        self._branches = {(op.operation_id, success): [self.spec.response_branch(op.operation_id, success)]
                          for op in self.spec.operations.values() for success in (True, False)}
        self._documented = {op.operation_id: {int(code) for code in
                                              self.spec.document["paths"][op.path][op.method.lower()]["responses"]}
                            for op in self.spec.operations.values()}
        self._callback = RequestValidator(self.spec, reference("#/components/schemas/CallbackBody"), root="callback")
        self._callback_schema = [self.spec.resolve("#/components/schemas/CallbackBody")]
        catalogue = self.spec.errors
        # codes that mean "the request's shape is wrong" (missing, undocumented, wrong type): what the spec decides
        self.shape_codes = {catalogue.code_for_keyword(k) for k in ("required", "additionalProperties", "type")}
        status = self.spec.resolve("#/components/schemas/TaskStatus")
        self.statuses = set(status["enum"])

    def operation(self, method: str, path: str) -> str | None:
        """Return the operationId of a route, or None when it is no operation of the spec. The path is read as the
        mock routes it, percent-decoded (`get%70rogress` had been passed unchecked, and the mock answers it)."""
        op = self.by_route.get((method.upper(), unquote(path)))
        return op.operation_id if op else None

    # -- requests --------------------------------------------------------------------------------------------
    def request(self, operation_id: str, query: dict[str, str], content_type: str | None,
                body: Any, body_is_json: bool) -> RequestVerdict:
        """Say whether the spec refuses a request (query, Content-Type, body) and why."""
        reasons = [v.message for v in self.spec.validate_query(operation_id, query)]
        if "signature" not in query:
            reasons.append("query.signature is required")
        if not is_json(content_type):
            reasons.append(f"Content-Type must be {JSON_MEDIA_TYPE} (UTF-8), got {content_type!r}")
        if not body_is_json:
            reasons.append("the body must be JSON")
        else:
            reasons += [v.message for v in self.spec.validate(operation_id, body)]
        return RequestVerdict(bool(reasons), reasons)

    # -- answers ---------------------------------------------------------------------------------------------
    def answer(self, operation_id: str, status: int, body: Any, body_is_json: bool,
               verdict: RequestVerdict | None, content_type: str | None = JSON_MEDIA_TYPE,
               unreadable: tuple[str, str] | None = None) -> list[Finding]:
        """Return what is wrong with an operation's answer, and with the request's fate under the spec.
        `unreadable`: why a body that is no JSON object is not, as a subject and words, if known."""
        found: list[Finding] = []

        def add(kind: str, subject: str, detail: str) -> None:
            found.append(Finding(kind, subject, detail, operation_id))

        found += self.status(operation_id, status)
        if not body_is_json or not isinstance(body, dict):
            subject, why = unreadable or ("body", "")
            add("not-an-envelope", subject,
                "the answer is not a JSON {Header, Payload} envelope" + (why and ": " + why))
            return found
        if not is_json(content_type):  # an app's client may go by it: JSON sent as text/html is not read as JSON
            add("response-content-type", str(content_type)[:60], f"the answer is a JSON envelope, but its Content-Type "
                                                                  f"is {content_type!r}, not {JSON_MEDIA_TYPE} (UTF-8)")
        header = body.get("Header") if isinstance(body.get("Header"), dict) else {}
        code = header.get("Code")
        success = code == 0
        for violation in self.spec.check_response(operation_id, body):
            if violation.field == "response.Payload.Status" and violation.keyword == "enum":
                continue  # reported as unknown-status below
            add("response-schema", f"{violation.field} {violation.rule}", violation.message)
        undocumented = self._undocumented(self._branches[operation_id, success], body, "response")
        for path in undocumented[:UNDOCUMENTED_LISTED]:
            add("undocumented-field", path, f"{path} is not a documented field of {operation_id}'s answer")
        if len(undocumented) > UNDOCUMENTED_LISTED:  # 3,000 of them had made a drift report of 1.5 GB
            add("undocumented-field", "more fields", f"{len(undocumented) - UNDOCUMENTED_LISTED} more undocumented "
                                                     f"fields in one answer of {operation_id}, not listed one by one")
        if isinstance(code, int) and code not in self.spec.errors.header:
            add("unknown-header-code", str(code), f"Header.Code {code} is not in error-codes.yaml "
                                                  f"(Message {header.get('Message', '')!r})")
        payload = body.get("Payload") if isinstance(body.get("Payload"), dict) else {}
        if success and operation_id == "getprogress":
            found += self._progress_values(operation_id, payload)
        if verdict is not None and isinstance(code, int):
            if success and verdict.refused:
                add("accepted-what-the-spec-refuses", verdict.reasons[0].split(", got ")[0],  # the rule, not the
                    # value: five timestamps in milliseconds had been five problems, each printed
                    f"the server accepted a request the spec refuses: {'; '.join(verdict.reasons[:3])}")
            elif not verdict.refused and code in self.shape_codes:
                add("refused-what-the-spec-accepts", str(code),
                    f"the server refused with {code} ({header.get('Message', '')!r}) a request the spec accepts")
        return found

    def status(self, operation_id: str, status: int) -> list[Finding]:
        """What is wrong with an answer's HTTP status alone (all that is checked of an answer too large to read)."""
        if status in self._documented[operation_id]:
            return []
        return [Finding("undocumented-http-status", str(status), f"HTTP {status} is not a documented answer of "
                                                                  f"{operation_id}", operation_id)]

    def _progress_values(self, operation_id: str, payload: dict[str, Any]) -> list[Finding]:
        found = []
        status = payload.get("Status")
        if isinstance(status, str) and status not in self.statuses:
            found.append(Finding("unknown-status", status, f"Status {status!r} is not one of "
                                 f"{', '.join(sorted(self.statuses))}", operation_id, payload.get("TaskId")))
        fail_code = payload.get("FailCode")
        if isinstance(fail_code, int) and fail_code not in self.spec.errors.fail:
            found.append(Finding("unknown-fail-code", str(fail_code), f"FailCode {fail_code} is not in "
                                 f"error-codes.yaml (FailMessage {payload.get('FailMessage', '')!r})", operation_id))
        return found

    def callback(self, body: Any) -> list[Finding]:
        """Return what is wrong with a callback body."""
        if not isinstance(body, dict):
            return [Finding("callback-schema", "body", "the callback body is not a JSON object", "callback")]
        found = [Finding("callback-schema", f"{v.field} {v.rule}", v.message, "callback")
                 for v in self._callback.violations(body)]
        found += [Finding("undocumented-field", path, f"{path} is not a documented field of the callback", "callback")
                  for path in self._undocumented(self._callback_schema, body, "callback")]
        return found

    # -- undocumented fields -----------------------------------------------------------------------------------
    def _expand(self, schemas: list[Any]) -> list[dict[str, Any]]:
        """Return the schemas with $refs resolved and allOf/oneOf/anyOf flattened (every branch counts)."""
        out, todo = [], list(schemas)
        while todo:
            schema = todo.pop()
            if not isinstance(schema, dict):
                continue
            if "$ref" in schema:
                todo.append(self.spec.resolve("#" + schema["$ref"].split("#", 1)[1]))
            for combinator in ("allOf", "oneOf", "anyOf"):
                todo += schema.get(combinator, [])
            out.append(schema)
        return out

    def _undocumented(self, schemas: list[Any], instance: Any, path: str) -> list[str]:
        expanded = self._expand(schemas)
        if isinstance(instance, dict):
            properties: dict[str, list[Any]] = {}
            described = False
            for schema in expanded:
                if "properties" in schema:
                    described = True
                    for name, sub in schema["properties"].items():
                        properties.setdefault(name, []).append(sub)
            if not described:
                return []
            found = []
            for name, item in instance.items():
                if name not in properties:
                    found.append(f"{path}.{name}")
                else:
                    found += self._undocumented(properties[name], item, f"{path}.{name}")
            return found
        if isinstance(instance, list):
            items = [schema["items"] for schema in expanded if "items" in schema]
            found = []
            for element in instance:
                for problem in self._undocumented(items, element, f"{path}[]"):
                    if problem not in found:
                        found.append(problem)
            return found
        return []


@dataclass
class TaskTrail:
    """What was seen of one task, in order: (time, Status, Progress, ArrayCount, Duration, MediaUrl)."""

    task_id: str
    submitted_at: float | None = None  # when its submission was answered
    sent_at: float | None = None  # when its submission was sent (a clock moved from then on may have moved the task)
    seen: list[tuple[float, Any, Any, Any, Any, Any]] = field(default_factory=list)
    callback: dict[str, Any] | None = None


class Lifecycle:
    """Follow each TaskId across its getprogress answers and its callback; report what the lifecycle forbids:
    status moving backwards, Progress falling, ArrayCount rising, Duration or MediaUrl changing after SUCCESS, a
    final state changing, a callback that disagrees with the final answer."""

    def __init__(self, max_tasks: int = 100_000, keep_polls: int | None = None):
        self.tasks: dict[str, TaskTrail] = {}
        self.max_tasks, self.keep_polls = max_tasks, keep_polls  # keep_polls None: every poll (for calibration)

    def trail(self, task_id: str) -> TaskTrail:
        if task_id not in self.tasks:
            if len(self.tasks) >= self.max_tasks:  # forget the oldest: a long-running proxy stays bounded
                self.tasks.pop(next(iter(self.tasks)))
            self.tasks[task_id] = TaskTrail(task_id)
        return self.tasks[task_id]

    def submitted(self, task_id: str, at: float, sent: float | None = None) -> None:
        trail = self.trail(task_id)
        trail.submitted_at, trail.sent_at = at, at if sent is None else sent

    def observe(self, task_id: str, payload: dict[str, Any], at: float) -> list[Finding]:
        """Take one successful getprogress answer of `task_id` and return what it breaks."""
        trail = self.trail(task_id)
        now = (at, payload.get("Status"), payload.get("Progress"), payload.get("ArrayCount"), payload.get("Duration"),
               _without_query(payload.get("MediaUrl")))
        found = []
        if trail.seen:
            found = self._compare(task_id, trail.seen[-1], now)
        trail.seen.append(now)
        if self.keep_polls is not None and len(trail.seen) > self.keep_polls:
            del trail.seen[: -self.keep_polls]
        return found

    @staticmethod
    def _compare(task_id: str, before: tuple, after: tuple) -> list[Finding]:
        _, status0, progress0, count0, duration0, media0 = before
        _, status1, progress1, count1, duration1, media1 = after
        found = []

        def add(kind: str, subject: str, detail: str) -> None:
            found.append(Finding(kind, subject, detail, "getprogress", task_id))

        rank0, rank1 = STATE_RANK.get(status0), STATE_RANK.get(status1)
        if rank0 is not None and rank1 is not None:
            if rank1 < rank0:
                add("lifecycle-status-backwards", f"{status0} -> {status1}", f"Status went back from {status0} to "
                                                                              f"{status1}")
            elif rank0 == rank1 == 2 and status0 != status1:
                add("lifecycle-final-status-changed", f"{status0} -> {status1}",
                    f"a finished task changed from {status0} to {status1}")
        if (isinstance(progress0, int) and isinstance(progress1, int) and progress1 < progress0
                and not (status1 == "FAIL" and progress1 == -1)):  # a failed task's Progress is -1, and only that
            add("lifecycle-progress-fell", "Progress", f"Progress fell from {progress0} to {progress1}")
        if (status0 == status1 == "COMMIT" and isinstance(count0, int) and isinstance(count1, int)
                and count1 > count0):
            add("lifecycle-arraycount-rose", "ArrayCount", f"ArrayCount rose from {count0} to {count1} in COMMIT")
        if status0 == status1 == "SUCCESS":
            if duration0 != duration1:
                add("lifecycle-changed-after-success", "Duration", f"Duration changed after SUCCESS: {duration0} -> "
                                                                   f"{duration1}")
            if media0 != media1:
                add("lifecycle-changed-after-success", "MediaUrl", "MediaUrl changed after SUCCESS")
        return found

    def callback(self, payload: dict[str, Any], at: float) -> list[Finding]:
        """Take a callback body's Payload and return where it disagrees with the task's final answer."""
        task_id = payload.get("TaskId")
        if not isinstance(task_id, str):
            return []
        trail = self.trail(task_id)
        found = []
        if trail.callback is not None:
            found.append(Finding("callback-repeated", "callback", "a second callback arrived for one task",
                                 "callback", task_id))
        trail.callback = {"at": at, **payload}
        finished = [seen for seen in trail.seen if STATE_RANK.get(seen[1]) == 2]
        if finished and finished[-1][1] != payload.get("Status"):
            found.append(Finding("callback-mismatch", "Status", f"the callback says {payload.get('Status')} but "
                                 f"getprogress said {finished[-1][1]}", "callback", task_id))
        elif finished:  # the same final state: the same Progress and video (a pre-signed URL's query may differ)
            _, _, progress, _, _, media = finished[-1]
            for name, said, sent in (("Progress", progress, payload.get("Progress")),
                                     ("MediaUrl", media, _without_query(payload.get("MediaUrl")))):
                if name in payload and sent != said:
                    found.append(Finding("callback-mismatch", name, f"the callback's {name} is {sent!r} but "
                                         f"getprogress said {said!r}", "callback", task_id))
        return found


def task_of(operation: str | None, request: Any, answer: Any) -> tuple[str | None, dict[str, Any]]:
    """Return the TaskId a successful answer is about (a submission's new task, or the task a getprogress asked
    for) and the answer's Payload; (None, {}) for anything else."""
    if not isinstance(answer, dict) or not isinstance(answer.get("Header"), dict):
        return None, {}
    payload = answer.get("Payload")
    if answer["Header"].get("Code") != 0 or not isinstance(payload, dict):
        return None, {}
    if operation == "phototovideonotrain":
        task_id = payload.get("TaskId")
    elif operation == "getprogress" and isinstance(request, dict) and isinstance(request.get("Payload"), dict):
        task_id = request["Payload"].get("TaskId")
    else:
        return None, {}
    return (task_id, payload) if isinstance(task_id, str) else (None, {})


def _without_query(media_url: Any) -> Any:
    return media_url.split("?", 1)[0] if isinstance(media_url, str) else media_url


def canonical(value: Any) -> str:
    """Return one text per JSON value (keys sorted), for matching bodies."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
