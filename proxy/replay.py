"""`ivh-mock serve --replay DIR`: answer requests that match a recorded exchange with the recorded answer, and a
recorded task's polls with its recorded trajectory, so a bug seen against the live API can be reproduced offline.

Matching (never the query string: no signature, timestamp or appkey):
  * method, path and the request body with `Header` left out, its URLs without query strings (as recorded);
  * a submission matching several recordings gets them in recorded order, then the last again;
  * getprogress of a recorded TaskId answers the poll recorded at the same time since the submission (or since the
    first poll when the submission was not recorded) on the mock's clock: the last one at or before it, or the
    first; the replayed task starts when its recorded submission is replayed, else at its first poll;
  * everything else (other bodies, the control API, result URLs) goes to the mock underneath.
"""

from __future__ import annotations

import io
import json
import re
import threading
from collections import defaultdict
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

from ivh_mock import spec as spec_module

from . import redact
from .checks import canonical, task_of
from .forward import FORWARD_REFUSED, HOP_BY_HOP, NOT_JSON, json_body, own_error
from .recorder import is_number, read_records

GETPROGRESS = spec_module.load().operations["getprogress"].path  # the one path a poll is replayed on (the mock's)
# a recorded answer's headers the replay's own answer does not repeat: its framing, its hop-by-hop headers
# (`Upgrade` from an upstream offering h2c had made waitress refuse the answer, a 500)
SKIPPED_HEADERS = {"content-length", "date", "server", "content-encoding", "x-ivh-replayed", *HOP_BY_HOP}


def _key(method: str, path: str, body: Any) -> str:
    rest = {name: item for name, item in body.items() if name != "Header"} if isinstance(body, dict) else body
    return f"{method.upper()} {path} {canonical(redact.value(rest))}"


class Answer(NamedTuple):
    """A recorded answer as the replay sends it, made once when the recordings are read."""

    status: str  # the status line's code and reason
    headers: tuple[tuple[str, str], ...]
    data: bytes
    body: Any


def _answer(response: dict[str, Any]) -> Answer | str:
    """The answer to send for a recorded `response` (its body JSON, text or empty), or what keeps it from being sent
    (a recording edited by hand: a status that is no number, a header that is no pair of texts, or one that would
    split the answer's head). Each had answered its requests with a 500 of the server's."""
    status = response.get("status")
    if type(status) is not int or not 200 <= status <= 599:  # a 1xx is no final answer: no client reads one as such
        return f"its status {str(status)[:40]!r} is not a number from 200 to 599"
    headers = response.get("headers", [])
    if not isinstance(headers, list):
        return "its headers are not a list of [name, value] pairs"
    kept = []
    for header in headers:
        if not (isinstance(header, list) and len(header) == 2 and all(isinstance(part, str) for part in header)):
            return f"its header {str(header)[:60]!r} is not a [name, value] pair of texts"
        name, value = header
        if not _TOKEN.fullmatch(name) or _NOT_IN_VALUE.search(value) or not value.isascii() and not _latin1(value):
            return f"its header {name[:40]!r} is not one HTTP can carry (a name that is no token, a line break, " \
                   f"a character past Latin-1)"
        if name.lower() not in SKIPPED_HEADERS:
            kept.append((name, value))
    body = response.get("body")
    if response.get("body_format") == "json":
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, which JSON escapes and UTF-8 cannot hold
            data = json.dumps(body, separators=(",", ":")).encode("ascii")
    else:  # text as recorded (an HTML error page, JSON with NaN), or nothing
        data, body = (body if isinstance(body, str) else "").encode("utf-8", "replace"), None
    kept += [("Content-Length", str(len(data))), ("X-Ivh-Replayed", "true")]
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Unknown"
    return Answer(f"{status} {reason}", tuple(kept), data, body)


REPLAYED_BODIES = ("json", "text", "empty")  # a recorded answer's body is sent again only when it was kept whole


def _not_as_recorded(record: dict[str, Any]) -> tuple[Answer, str | None]:
    """The answer to a request that matches an exchange whose answer was not recorded whole, and why (None when the
    proxy answered it itself: that answer is given again). Such a request had gone to the mock underneath, which
    accepted a submission whose recorded answer was a gateway's error page or a timeout."""
    response, error = record.get("response") or {}, str(record.get("error") or "")
    at = f"the exchange recorded at t={record['t']}"
    if not response:  # no answer came, or the request was never sent: the proxy answered itself, naming the cause
        cause = error.split(":", 1)[0]
        status = 504 if cause.endswith("Timeout") else 400 if FORWARD_REFUSED in error else 502
        why, message = None, f"(as recorded, replayed) {error}"
    elif error:
        why = f"{at}: its answer (HTTP {response.get('status')}) broke off ({error[:200]})"
        status, message = 502, f"{why}; replay cannot send it again"
    else:
        kept = response.get("body_format")
        why = (f"{at}: its answer (HTTP {response.get('status')}) has a body that is not text "
               f"({response.get('body_bytes')} bytes), which a recording does not keep" if kept == "binary" else
               f"{at}: only the start of its answer's body was recorded" if kept == "text (cut)" else
               f"{at}: its answer's body is recorded as {str(kept)[:40]!r}")
        status, message = 502, f"{why}; replay cannot send it again"
    data = own_error(message)
    headers = (("Content-Type", "application/json"), ("Content-Length", str(len(data))), ("X-Ivh-Replayed", "true"))
    return Answer(f"{status} {HTTPStatus(status).phrase}", headers, data, None), why


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_NOT_IN_VALUE = re.compile(r"[\x00\r\n]")


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
        return True
    except UnicodeEncodeError:
        return False


class ReplayIndex:
    """The recorded answers of a directory, indexed for matching."""

    def __init__(self, records: Iterable[dict[str, Any]]):
        self.answers: dict[str, list[Answer]] = defaultdict(list)
        self.polls: dict[str, list[tuple[float, Answer]]] = defaultdict(list)
        submitted: dict[str, float] = {}
        self.skipped: list[str] = []  # why each record that cannot be answered again was left out
        self.refused: list[str] = []  # why each request matching an answer not recorded whole is answered 502
        # a record is a dict whose time is a number (read_records): its sequence number, edited, may be anything
        for record in sorted(records, key=lambda r: (r["t"], r["seq"] if is_number(r.get("seq")) else 0)):
            request, recorded = record.get("request") or {}, record.get("response") or {}
            if record.get("kind") != "exchange" or request.get("body_format") != "json":  # (matched by its JSON)
                continue
            method, path = request.get("method", "POST"), request.get("path", "")
            if not (isinstance(method, str) and isinstance(path, str)):  # edited by hand: the start had ended in a
                self.skipped.append(f"the exchange recorded at t={record['t']}: its method or its path is not a "
                                    f"text")  # traceback
                continue
            if record.get("error") or recorded.get("body_format") not in REPLAYED_BODIES:
                response, why = _not_as_recorded(record)
                if why:
                    self.refused.append(why)
            else:
                response = _answer(recorded)
            if isinstance(response, str):
                self.skipped.append(f"the exchange recorded at t={record['t']}: {response}")
                continue
            body, operation = request.get("body"), record.get("operation")
            task_id, _ = task_of(operation, body, response.body)
            if operation == "getprogress" and task_id:
                self.polls[task_id].append((record["t"], response))
                continue
            if operation == "phototovideonotrain" and task_id:
                submitted[task_id] = record["t"]
            self.answers[_key(method, path, body)].append(response)
        # each poll's time since its task's start (the submission, else the first poll)
        self.trajectories = {task_id: [(at - submitted.get(task_id, polls[0][0]), response) for at, response in polls]
                             for task_id, polls in self.polls.items()}

    @classmethod
    def from_dir(cls, directory: str | Path) -> ReplayIndex:
        return cls(read_records(directory))

    def __len__(self) -> int:
        return sum(len(found) for found in self.answers.values()) + len(self.trajectories)


class ReplayMiddleware:
    """WSGI: answer from `index` what it matches, pass the rest to `app`; `now` is the mock's clock."""

    def __init__(self, app, index: ReplayIndex, now: Callable[[], float]):
        self.app, self.index, self.now = app, index, now
        self._lock = threading.Lock()
        self._used: dict[str, int] = defaultdict(int)
        self._started: dict[str, float] = {}

    def __call__(self, environ, start_response):
        if environ.get("REQUEST_METHOD") != "POST" or environ.get("PATH_INFO", "").startswith("/__mock__/"):
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        data = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(data)  # the mock underneath reads it again
        body = json_body(data)
        if body is NOT_JSON:  # the mock underneath gives its own refusal (a body too deep is never decoded)
            return self.app(environ, start_response)
        response = self._match(environ["PATH_INFO"], body)
        if response is None:
            return self.app(environ, start_response)
        start_response(response.status, list(response.headers))
        return [response.data]

    def _match(self, path: str, body: Any) -> Answer | None:
        payload = body.get("Payload") if isinstance(body, dict) else None
        task_id = payload.get("TaskId") if isinstance(payload, dict) else None
        with self._lock:
            if isinstance(task_id, str) and task_id in self.index.trajectories and path == GETPROGRESS:
                now = self.now()
                elapsed = now - self._started.setdefault(task_id, now)
                trajectory = self.index.trajectories[task_id]
                chosen = trajectory[0][1]
                for offset, response in trajectory:
                    if offset <= elapsed:
                        chosen = response
                return chosen
            key = _key("POST", path, body)
            found = self.index.answers.get(key)
            if not found:
                return None
            response = found[min(self._used[key], len(found) - 1)]
            self._used[key] += 1
            submitted, _ = task_of("phototovideonotrain", body, response.body)
            if submitted and submitted in self.index.trajectories:
                self._started[submitted] = self.now()
            return response
