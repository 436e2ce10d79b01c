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
import threading
from collections import defaultdict
from http import HTTPStatus
from pathlib import Path
from typing import Any, Callable, Iterable

from ivh_mock import spec as spec_module

from . import redact
from .checks import canonical, task_of
from .forward import HOP_BY_HOP, NOT_JSON, json_body
from .recorder import read_records

GETPROGRESS = spec_module.load().operations["getprogress"].path  # the one path a poll is replayed on (the mock's)
# a recorded answer's headers the replay's own answer does not repeat: its framing and its hop-by-hop headers
# (`Upgrade` from an upstream offering h2c had made waitress refuse the answer, a 500)
SKIPPED_HEADERS = {"content-length", "date", "server", "content-encoding", *HOP_BY_HOP}


def _key(method: str, path: str, body: Any) -> str:
    rest = {name: item for name, item in body.items() if name != "Header"} if isinstance(body, dict) else body
    return f"{method.upper()} {path} {canonical(redact.value(rest))}"


class ReplayIndex:
    """The recorded answers of a directory, indexed for matching."""

    def __init__(self, records: Iterable[dict[str, Any]]):
        self.answers: dict[str, list[dict[str, Any]]] = defaultdict(list)
        self.polls: dict[str, list[tuple[float, dict[str, Any]]]] = defaultdict(list)
        submitted: dict[str, float] = {}
        for record in sorted(records, key=lambda r: (r.get("t", 0), r.get("seq", 0))):
            request, response = record.get("request") or {}, record.get("response")
            if record.get("kind") != "exchange" or not response or request.get("body_format") != "json" \
                    or response.get("body_format") != "json":
                continue
            body, operation = request.get("body"), record.get("operation")
            task_id, _ = task_of(operation, body, response.get("body"))
            if operation == "getprogress" and task_id:
                self.polls[task_id].append((record["t"], response))
                continue
            if operation == "phototovideonotrain" and task_id:
                submitted[task_id] = record["t"]
            self.answers[_key(request.get("method", "POST"), request.get("path", ""), body)].append(response)
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
        out = json.dumps(response["body"], ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        headers = [(name, value) for name, value in response.get("headers", ())
                   if name.lower() not in SKIPPED_HEADERS]
        headers += [("Content-Length", str(len(out))), ("X-Ivh-Replayed", "true")]
        status = int(response["status"])
        reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Unknown"
        start_response(f"{status} {reason}", headers)
        return [out]

    def _match(self, path: str, body: Any) -> dict[str, Any] | None:
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
            submitted, _ = task_of("phototovideonotrain", body, response["body"])
            if submitted and submitted in self.index.trajectories:
                self._started[submitted] = self.now()
            return response
