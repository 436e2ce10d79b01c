"""The client: one method per operation of the spec, signing, pre-flight validation, retries, waiting."""

from __future__ import annotations

import contextlib
import json
import os
import random
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import requests
from ivh_mock.spec import jsontext
from ivh_mock.spec.signing import signed_query
from ivh_mock.spec.validation import summarize

from ivh_mock import spec as spec_module

from .errors import (
    FAMILIES,
    APIConnectionError,
    APIError,
    CallbackError,
    DownloadError,
    ParameterError,
    TaskFailedError,
    WaitTimeoutError,
)
from .models import CallbackResult, Progress, Submitted, Timbre, TimbrePage
from .retry import backoff, should_retry

DEFAULT_BASE_URL = "https://gw-sg.tvs.qq.com"
SCENARIO_HEADER = "X-Mock-Scenario"

MAX_DEPTH = 32  # an answer or a callback nested deeper is refused unread: the API's are a few levels deep
MAX_RETRIES = 3  # how often a call that failed on the way is sent again, at most, by default


class Client:
    """A client of the photo-to-video API (or of ivh-mock).

    Arguments fall back to the environment: `IVH_APPKEY`, `IVH_ACCESSTOKEN`, `IVH_BASE_URL` (default: the
    international gateway). `clock` gives the Unix time used to sign; `sleep` and `monotonic` are used while
    retrying and waiting (tests inject their own)."""

    def __init__(self, appkey: str | None = None, accesstoken: str | None = None, base_url: str | None = None, *,
                 timeout: float = 30.0, validate: bool = True, max_retries: int = MAX_RETRIES,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Any] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None):
        self.appkey = appkey or os.environ.get("IVH_APPKEY")
        self.accesstoken = accesstoken or os.environ.get("IVH_ACCESSTOKEN")
        if not self.appkey or not self.accesstoken:
            raise ValueError("an appkey and an accesstoken are needed: Client(appkey=..., accesstoken=...), or the "
                             "environment variables IVH_APPKEY and IVH_ACCESSTOKEN")
        self.base_url = (base_url or os.environ.get("IVH_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
        self.timeout, self.validate, self.max_retries = timeout, validate, max_retries
        self.session = session or requests.Session()
        self.clock, self.sleep, self.monotonic, self.rng = clock, sleep, monotonic, rng
        self.spec = spec_module.load()

    # -- operations ---------------------------------------------------------------------------------------------
    def phototovideonotrain(self, payload: Mapping[str, Any] | None = None, *, request_id: str | None = None,
                            scenario: str | None = None, **fields: Any) -> Submitted:
        """Submit a task. Fields are the API's own (`RefPhotoUrl=..., DriverType="Text", InputSsml=..., ...`).

        Never retried once the request may have reached the server: a duplicate would be a second paid video.
        `scenario` sets the `X-Mock-Scenario` header, which only ivh-mock reads."""
        header, data = self._call("phototovideonotrain", {**(payload or {}), **fields}, request_id, scenario,
                                  idempotent=False)
        with _read("phototovideonotrain"):
            return Submitted(task_id=data["TaskId"], request_id=header["RequestID"])

    def getprogress(self, task_id: str, *, request_id: str | None = None) -> Progress:
        """Return the task's current progress (retried on connection errors, 5xx and rate limits)."""
        header, data = self._call("getprogress", {"TaskId": task_id}, request_id, None, idempotent=True)
        with _read("getprogress"):
            return Progress.from_payload(task_id, data, header["RequestID"])

    def describetimbre(self, page_index: int = 1, page_size: int = 100, **filters: Any) -> TimbrePage:
        """Return one page of timbres; filters are the API's (`TimbreKey`, `TimbreName`, `TimbreKeyList`, ...)."""
        payload = {"PageIndex": page_index, "PageSize": page_size, **filters}
        _, data = self._call("describetimbre", payload, None, None, idempotent=True)
        with _read("describetimbre"):
            timbres = tuple(Timbre.from_detail(detail) for detail in data["TimbreAssets"])
            return TimbrePage(timbres, data["Total"], page_index, page_size)

    def iter_timbres(self, page_size: int = 100, **filters: Any) -> Iterator[Timbre]:
        """Yield every timbre, fetching page after page."""
        index = 1
        while True:
            page = self.describetimbre(index, page_size, **filters)
            yield from page.timbres
            if not page.timbres or index * page_size >= page.total:
                return
            index += 1

    # -- waiting and downloading --------------------------------------------------------------------------------
    def wait(self, task_id: str, *, timeout: float = 1800.0, interval: float = 2.0, max_interval: float = 30.0,
             on_progress: Callable[[Progress], Any] | None = None) -> Progress:
        """Poll until the task finishes: return its SUCCESS progress, raise TaskFailedError on FAIL, or
        WaitTimeoutError when `timeout` seconds pass first. Polls back off from `interval` to `max_interval`."""
        started = self.monotonic()
        last = None
        while True:
            last = self.getprogress(task_id)
            if on_progress is not None:
                on_progress(last)
            if last.status == "SUCCESS":
                return last
            if last.status == "FAIL":
                raise TaskFailedError(task_id, last.fail_code, last.fail_message, last)
            waited = self.monotonic() - started
            if waited >= timeout:
                raise WaitTimeoutError(task_id, waited, last)
            self.sleep(min(interval, timeout - waited))
            interval = min(max_interval, interval * 1.5)

    def download(self, url: str, destination: str | Path, chunk_size: int = 1 << 16) -> Path:
        """Stream a result file (MediaUrl or SubtitlesUrl) to `destination`; return its path."""
        destination = Path(destination)
        try:
            with self.session.get(url, stream=True, timeout=self.timeout) as response:
                if response.status_code != 200:
                    raise DownloadError(url, response.status_code, f"HTTP {response.status_code}")
                partial = destination.with_name(destination.name + ".part")
                with open(partial, "wb") as handle:
                    for chunk in response.iter_content(chunk_size):
                        handle.write(chunk)
                partial.replace(destination)
        except requests.RequestException as error:
            raise DownloadError(url, None, str(error)) from error
        return destination

    # -- plumbing ---------------------------------------------------------------------------------------------
    def preflight(self, operation_id: str, body: dict[str, Any]) -> None:
        """Raise the ParameterError the API would give for `body`, without sending anything."""
        violations = self.spec.validate(operation_id, body)
        if violations:
            raise ParameterError(violations[0].code, summarize(violations), preflight=True)

    def _call(self, operation_id: str, payload: dict[str, Any], request_id: str | None, scenario: str | None, *,
              idempotent: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        body = {"Header": {"RequestID": request_id} if request_id else {}, "Payload": payload}
        if self.validate:
            self.preflight(operation_id, body)
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if scenario:
            headers[SCENARIO_HEADER] = scenario
        path = self.spec.operations[operation_id].path
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        attempt = 0
        while True:
            try:
                return self._send(path, data, headers)
            except (requests.RequestException, APIError) as error:
                attempt += 1
                if attempt > self.max_retries or not should_retry(error, idempotent=idempotent):
                    if isinstance(error, requests.RequestException):
                        raise APIConnectionError(f"{operation_id}: {error}") from error
                    raise
                self.sleep(backoff(attempt, self.rng))

    def _send(self, path: str, data: bytes, headers: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
        query = signed_query(self.appkey, self.accesstoken, int(self.clock()))
        response = self.session.post(f"{self.base_url}{path}?{query}", data=data, headers=headers,
                                     timeout=self.timeout)
        try:
            envelope = _loads(response.content)
            header, payload = envelope["Header"], envelope.get("Payload") or {}
            code = header["Code"]
        except (ValueError, KeyError, TypeError):
            if response.status_code >= 500:
                raise APIError(-1, f"HTTP {response.status_code}", None, http_status=response.status_code) from None
            raise APIConnectionError(
                f"HTTP {response.status_code} from {path} is not the API's envelope: {response.text[:200]!r}"
            ) from None
        if code != 0:
            family = FAMILIES.get(self.spec.errors.family(code) or "", APIError)
            raise family(code, header.get("Message", ""), header.get("RequestID"), http_status=response.status_code,
                         body=envelope)
        return header, payload


def parse_callback(body: bytes | str | Mapping[str, Any]) -> CallbackResult:
    """Validate a callback body against the spec and return it typed; CallbackError names what is wrong."""
    if isinstance(body, (bytes, str)):
        try:
            body = _loads(body)
        except ValueError as error:
            raise CallbackError(f"callback body is not JSON: {error}") from None
    elif jsontext.value_nests_deeper(body, MAX_DEPTH):  # decoded by the caller: the spec's check would recurse into it
        raise CallbackError(f"callback body nests deeper than {MAX_DEPTH} levels")
    violations = spec_module.load().check("#/components/schemas/CallbackBody", body)
    if violations:
        raise CallbackError(summarize(violations))
    payload = body["Payload"]
    return CallbackResult(task_id=payload["TaskId"], status=payload["Status"], progress=payload["Progress"],
                          media_url=payload["MediaUrl"], subtitles_url=payload.get("SubtitlesUrl") or "",
                          fail_message=payload.get("FailMessage") or "")


def _loads(data: bytes | str) -> Any:
    """Decode JSON from a server or a caller, counting its nesting first: the decoder recurses once per level."""
    text = data.decode("utf-8-sig") if isinstance(data, bytes) else data  # UnicodeDecodeError is a ValueError
    return jsontext.loads(text, MAX_DEPTH)


@contextlib.contextmanager
def _read(operation: str) -> Iterator[None]:
    """Read a successful answer into its typed result; one that lacks a field the result needs, or holds it in
    another shape, is no answer of the API's (APIConnectionError, as for a body that is no envelope)."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise APIConnectionError(f"{operation}: the answer's Payload is not the API's "
                                 f"({type(error).__name__}: {error})") from None
