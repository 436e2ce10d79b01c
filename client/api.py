"""The client: one method per operation of the spec, signing, pre-flight validation, retries, waiting."""

from __future__ import annotations

import contextlib
import email.utils
import errno
import json
import math
import os
import random
import secrets
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import requests
from ivh_mock.spec import deadline, jsontext
from ivh_mock.spec.signing import signed_query
from ivh_mock.spec.urls import http_url_problem, quoted_queries_out, without_queries, without_query
from ivh_mock.spec.validation import json_type, summarize

from ivh_mock import spec as spec_module

from .errors import (
    FAMILIES,
    APIConnectionError,
    APIError,
    CallbackError,
    DownloadError,
    IvhError,
    OutcomeUnknownError,
    ParameterError,
    RateLimitedError,
    ServerError,
    TaskFailedError,
    WaitTimeoutError,
)
from .models import CallbackResult, Progress, Submitted, Timbre, TimbrePage
from .retry import BROKEN_OFF, MAX_RETRY_AFTER, backoff, never_sent, should_retry, unreadable_answer

# A test's failure on an error the client raises on purpose (IvhError: the API's refusal, an answer none of the API's,
# a wait that ran out) is shown by pytest from the test's own call, with the error's message: the client's frames
# (about eighty lines of its source) are left out. Any other exception, a bug of the client's, shows them all, as
# pytest's --full-trace always does.
__tracebackhide__ = lambda excinfo: excinfo is not None and excinfo.errisinstance(IvhError)  # noqa: E731

DEFAULT_BASE_URL = "https://gw-sg.tvs.qq.com"
SCENARIO_HEADER = "X-Mock-Scenario"

MAX_DEPTH = 32  # an answer or a callback nested deeper is refused unread: the API's are a few levels deep
MAX_ANSWER_BYTES = 1_048_576  # an answer larger than this is refused, read no further: the API's are a few KB
DOWNLOAD_MAX_BYTES = 1 << 30  # a result file larger is refused unless download() is given more (a minute of video: MBs)
MAX_RETRIES = 3  # how often a call that failed on the way is sent again, at most, by default
MIN_INTERVAL = 0.1  # wait() polls no more often than this
MAX_TIMBRES = 10_000  # iter_timbres() lists no more: an account has tens or hundreds (its page holds up to 100)


class _OutOfTime(Exception):
    """A call made for `wait` could not be answered within the time `wait` had left."""


class Client:
    """A client of the photo-to-video API (or of ivh-mock).

    Arguments fall back to the environment: `IVH_APPKEY`, `IVH_ACCESSTOKEN`, `IVH_BASE_URL` (default: the
    international gateway). Each call gets its whole answer within `timeout` seconds (connect, headers and body
    together: a server that trickles bytes cannot hold it longer); with a `session` of your own, each connect and
    read is bounded instead, unless it came from `ivh_mock.spec.deadline.session()`. `clock` gives the Unix time used
    to sign; `sleep` and `monotonic` are used while retrying and waiting (tests inject their own)."""

    def __init__(self, appkey: str | None = None, accesstoken: str | None = None, base_url: str | None = None, *,
                 timeout: float = 30.0, validate: bool = True, max_retries: int = MAX_RETRIES,
                 session: requests.Session | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Any] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None):
        for name, value in (("appkey", appkey), ("accesstoken", accesstoken)):
            if value == "":  # given, and empty: not the environment's, which `or` had taken in its place unsaid
                raise ValueError(f"the {name} is empty: give it, or leave it out to take IVH_{name.upper()}")
        appkey, accesstoken = appkey or os.environ.get("IVH_APPKEY"), accesstoken or os.environ.get("IVH_ACCESSTOKEN")
        if not appkey or not accesstoken:
            raise ValueError("an appkey and an accesstoken are needed: Client(appkey=..., accesstoken=...), or the "
                             "environment variables IVH_APPKEY and IVH_ACCESSTOKEN")
        self.appkey: str = appkey  # (typed as a str: a type checker had called it `str | None`)
        self.accesstoken: str = accesstoken
        for name, value in (("appkey", self.appkey), ("accesstoken", self.accesstoken), ("base URL", base_url)):
            if value is not None and not isinstance(value, str):  # else a TypeError or AttributeError at each call
                raise ValueError(f"the {name} must be text (str), got {type(value).__name__}")
        for name, value in (("appkey", self.appkey), ("accesstoken", self.accesstoken)):
            problem = jsontext.not_utf8(value)  # a byte that is no UTF-8 in the environment (`$'\xff'`) is one
            if problem is not None:  # nothing signed with it could be sent: UTF-8 cannot carry it
                raise ValueError(f"the {name} cannot be sent: it {problem}")
        if base_url is None:
            base_url = os.environ.get("IVH_BASE_URL")
            if base_url is not None and not base_url.strip():  # an unset $MOCK_URL: not the live API, which bills
                raise ValueError(f"IVH_BASE_URL is set but empty: set it to the server's URL, or unset it to call "
                                 f"{DEFAULT_BASE_URL}")
        elif not base_url.strip():
            raise ValueError(f"the base URL is empty: give the server's URL, or none to call {DEFAULT_BASE_URL}")
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        problem = http_url_problem(self.base_url)
        if problem:  # else every call failed as if the server could not be reached
            raise ValueError(f"the base URL {problem}")
        _check_seconds("timeout", timeout)  # else each call failed inside: a TypeError, an exception of no IvhError
        if type(max_retries) is not int or max_retries < 0:
            raise ValueError(f"max_retries must be a whole number of 0 or more, got {max_retries!r}")
        if not isinstance(validate, bool):  # "no" is true: it had checked every call it was meant not to
            raise ValueError(f"validate must be True or False, got {validate!r}")
        self.timeout, self.validate, self.max_retries = timeout, validate, max_retries
        self.session = session or deadline.session(trust_env=True)  # the environment's proxy settings apply
        self._own_session = session is None
        self.clock, self.sleep, self.monotonic, self.rng = clock, sleep, monotonic, rng
        self.spec = spec_module.load()

    def close(self) -> None:
        """Close the connections the client keeps alive (not those of a `session` it was given, which is its
        owner's to close). A closed client opens new ones should it be called again."""
        if self._own_session:
            self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- operations ---------------------------------------------------------------------------------------------
    def phototovideonotrain(self, payload: Mapping[str, Any] | None = None, *, request_id: str | None = None,
                            scenario: str | None = None, **fields: Any) -> Submitted:
        """Submit a task. Fields are the API's own (`RefPhotoUrl=..., DriverType="Text", InputSsml=..., ...`).

        Never retried once the request may have reached the server: a duplicate would be a second paid video.
        `scenario` sets the `X-Mock-Scenario` header, which only ivh-mock reads."""
        header, data = self._call("phototovideonotrain", {**(payload or {}), **fields}, request_id, scenario,
                                  idempotent=False)
        with _read("phototovideonotrain"):
            submitted = Submitted(task_id=data["TaskId"], request_id=header["RequestID"])
        violations = self.spec.validate("getprogress", {"Header": {}, "Payload": {"TaskId": submitted.task_id}})
        if violations:  # accepted, so billed: an outcome to check (not a refusal, nor a server never reached, which
            # a script sends again)
            raise OutcomeUnknownError(f"phototovideonotrain: the submission was accepted (request "
                                      f"{submitted.request_id}), but its answer's TaskId is none getprogress takes: "
                                      f"{summarize(violations)}; check before submitting it again")
        return submitted

    def getprogress(self, task_id: str, *, request_id: str | None = None) -> Progress:
        """Return the task's current progress (retried on connection errors, 5xx and rate limits)."""
        return self._progress(task_id, request_id, None)

    def _progress(self, task_id: str, request_id: str | None, until: float | None) -> Progress:
        header, data = self._call("getprogress", {"TaskId": task_id}, request_id, None, idempotent=True, until=until)
        with _read("getprogress"):
            return Progress.from_payload(task_id, data, header["RequestID"])

    def describetimbre(self, page_index: int = 1, page_size: int = 100, **filters: Any) -> TimbrePage:
        """Return one page of timbres; filters are the API's (`TimbreKey`, `TimbreName`, `TimbreKeyList`, ...)."""
        paging = sorted(set(filters) & {"PageIndex", "PageSize"})
        if paging:  # one page, named once: the page returned must be the one it says it is
            raise TypeError(f"describetimbre() takes the page as page_index= and page_size=, not {', '.join(paging)}=")
        payload = {"PageIndex": page_index, "PageSize": page_size, **filters}
        _, data = self._call("describetimbre", payload, None, None, idempotent=True)
        with _read("describetimbre"):
            timbres = tuple(Timbre.from_detail(detail) for detail in data["TimbreAssets"])
            return TimbrePage(timbres, data["Total"], page_index, page_size)

    def iter_timbres(self, page_size: int = 100, **filters: Any) -> Iterator[Timbre]:
        """Yield every timbre, fetching page after page; a server that answers a page as it answered the one before
        (it ignores PageIndex), whose Total grows page after page, or whose Total is past MAX_TIMBRES, raises
        APIConnectionError rather than being asked forever."""
        index, previous, first_total = 1, None, None
        while True:
            page = self.describetimbre(index, page_size, **filters)
            if page.total > MAX_TIMBRES:  # pages of new timbres under a Total of 10**18 had been asked for hours
                raise APIConnectionError(f"describetimbre: the server counts {page.total} timbres (Total), more "
                                         f"than any account has: the client lists at most {MAX_TIMBRES}")
            if page.timbres and page.timbres == previous:
                raise APIConnectionError(f"describetimbre: page {index} is page {index - 1} again: the server does "
                                         f"not page (PageIndex), though its Total is {page.total}")
            first_total = page.total if first_total is None else first_total
            if index > 1 and (index - 1) * page_size >= first_total:  # past all the first page counted: had gone on
                raise APIConnectionError(f"describetimbre: page {index} is past the {first_total} timbres the first "
                                         f"page counted, and the server's Total is {page.total} now")
            yield from page.timbres
            if not page.timbres or index * page_size >= page.total:
                return
            index, previous = index + 1, page.timbres

    # -- waiting and downloading --------------------------------------------------------------------------------
    def wait(self, task_id: str, *, timeout: float = 1800.0, interval: float = 2.0, max_interval: float = 30.0,
             on_progress: Callable[[Progress], Any] | None = None) -> Progress:
        """Poll until the task finishes: return its SUCCESS progress, raise TaskFailedError on FAIL, or
        WaitTimeoutError when `timeout` seconds pass first (a poll and its retries included: each waits for its
        answer only as long as is left). Polls back off from `interval` (at least MIN_INTERVAL) to `max_interval`."""
        _check_seconds("timeout", timeout)
        for name, value in (("interval", interval), ("max_interval", max_interval)):
            _check_seconds(name, value, zero=True)
        max_interval = max(max_interval, MIN_INTERVAL)  # the floor holds for both: 0 polled in a busy loop
        interval = min(max(interval, MIN_INTERVAL), max_interval)  # (1e300 could not sleep)
        started = self.monotonic()
        last = None
        while True:
            try:  # each poll, its retries included, within the time left
                last = self._progress(task_id, None, started + timeout)
            except _OutOfTime as cut:
                raise WaitTimeoutError(task_id, self.monotonic() - started, last, *cut.args[:1]) from None
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

    def download(self, url: str, destination: str | Path, chunk_size: int = 1 << 16, *,
                 timeout: float | None = None, max_bytes: int | None = DOWNLOAD_MAX_BYTES) -> Path:
        """Stream a result file (MediaUrl or SubtitlesUrl) to `destination`; return its path. The file is written
        under a temporary name beside it and renamed when whole: a download that fails leaves nothing behind
        (DownloadError). A `destination` that is a link is written through (its target gets the file); one that is
        no regular file (a folder, a pipe, a device) is refused. With `timeout`, the whole download must end within
        it; else each connect and read must, within the client's `timeout`. A file larger than `max_bytes` (as
        written: a body the server compressed counts decoded; 1 GiB unless given, None for no bound) is refused once
        it is: a server that sent without end had filled the disk."""
        if timeout is not None:
            _check_seconds("timeout", timeout)
        if max_bytes is not None and (type(max_bytes) is not int or max_bytes < 0):  # as max_retries is checked
            # (a "10" had been a TypeError comparing it inside; -1 refused every file after downloading it)
            raise ValueError(f"max_bytes must be a whole number of bytes from 0, or None, got {max_bytes!r}")
        if type(chunk_size) is not int or chunk_size < 1:  # 0 had written an empty file, and said it was done
            raise ValueError(f"chunk_size must be a whole number of bytes from 1, got {chunk_size!r}")
        if not isinstance(url, str) or not url.strip():  # a SUCCESS that names no MediaUrl: said, not `Invalid URL ''`
            raise DownloadError("", None, f"no URL to download from (got {url!r})")
        shown = without_query(url)  # a result URL's query may be its signature
        destination = Path(destination)
        partial = None
        try:
            target = written_to(destination)
            if target.exists() and not target.is_file():
                kind = "a folder; name the file to write" if target.is_dir() else "not a regular file"
                raise DownloadError(shown, None, f"{destination} is {kind}")
            with contextlib.ExitStack() as stack:
                limit = stack.enter_context(deadline.within(timeout)) if timeout is not None else None
                failed = None
                try:
                    response = stack.enter_context(self._fetch(url, shown, limit))
                    _check_size(_declared_length(response), max_bytes, shown)
                    with deadline.signals_held():  # a Ctrl-C or SIGTERM between the file's making and its name
                        partial = partial_file(target)  # kept here had left it behind
                    with open(partial, "wb") as handle:
                        for chunk in response.iter_content(chunk_size):
                            handle.write(chunk)
                            _check_size(handle.tell(), max_bytes, shown)
                    if limit is not None and limit.expired:  # cut at the deadline, an answer of no length ends
                        raise requests.Timeout("the deadline ended it")  # as if whole
                except (requests.RequestException, ValueError) as error:  # ValueError: a URL urllib3 cannot use (a
                    # redirect to `http://[::1/x`, a host label past 63 characters)
                    expired = limit is not None and limit.expired
                    failed = (f"not whole within {limit.seconds:g} s" if expired
                              else _queries_out(str(error), url, error))
                if failed is not None:  # raised outside the handler: requests' error, its context, quotes the URL
                    raise DownloadError(shown, None, failed)
            partial.replace(target)
        except OSError as error:
            raise DownloadError(shown, None, f"cannot write {destination}: {error.strerror or error}") from None
        finally:
            if partial is not None:
                with contextlib.suppress(OSError):
                    partial.unlink(missing_ok=True)  # gone once renamed; what a failed download wrote
        return destination

    def _fetch(self, url: str, shown: str, limit: deadline.Deadline | None) -> requests.Response:
        """GET `url` for a download, streamed; a 429 or a 5xx (the mock's `503 SlowDown` when it is busy rendering)
        is asked again as an idempotent call is, after what its Retry-After asks for, within the download's deadline.
        Raise DownloadError for any other status, or once the retries are spent."""
        attempt = 0
        while True:
            response = self.session.get(url, stream=True, timeout=self.timeout)
            status = response.status_code
            if status == 200:
                return response
            asked = _retry_after(response)
            response.close()
            said = f"HTTP {status}" + (f" (Retry-After: {asked:g} s)" if asked is not None else "")
            attempt += 1
            if not (status == 429 or status >= 500) or attempt > self.max_retries:
                raise DownloadError(shown, status, said + (f", after {attempt} tries" if attempt > 1 else ""))
            delay = backoff(attempt, self.rng, asked)
            if limit is not None and delay >= limit.left():
                raise DownloadError(shown, status, f"{said}; the next try was due in {delay:.1f} s, past the "
                                                   f"{max(limit.left(), 0.0):.1f} s left")
            self.sleep(delay)

    # -- plumbing ---------------------------------------------------------------------------------------------
    def preflight(self, operation_id: str, body: dict[str, Any]) -> None:
        """Raise the ParameterError the API would give for `body`, without sending anything."""
        self._encoded(body)  # a lone surrogate first, as the API reads the body before it checks it
        self._validated(operation_id, body)

    def _validated(self, operation_id: str, body: dict[str, Any]) -> None:
        violations = self.spec.validate(operation_id, body)
        if violations:
            raise ParameterError(violations[0].code, summarize(violations), preflight=True)

    def _call(self, operation_id: str, payload: dict[str, Any], request_id: str | None, scenario: str | None, *,
              idempotent: bool, until: float | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Send the call, retrying as `should_retry` allows; with `until` (on `monotonic`), raise _OutOfTime rather
        than wait for an answer or a retry past it. Return the answer's Header and Payload."""
        body = {"Header": {"RequestID": request_id} if request_id else {}, "Payload": payload}
        try:
            data = self._encoded(body)  # a lone surrogate is refused before the spec's checks, as the API refuses it
        except TypeError:  # a value JSON cannot hold (a UUID, a Decimal, bytes, the Submitted a call returned)
            if self.validate:  # the spec's checks name the field and its rule, where they have one
                self._validated(operation_id, body)
            raise TypeError(f"{operation_id}: {jsontext.not_json(body)}: give its value as JSON has it (a str, a "
                            f"number, a bool, None, a list or a dict)") from None
        if self.validate:
            self._validated(operation_id, body)
        headers = {"Content-Type": "application/json;charset=utf-8"}
        if scenario is not None and not isinstance(scenario, str):  # (an AttributeError inside, of no IvhError)
            raise ValueError(f"a scenario is a name (str), got {type(scenario).__name__}")
        scenario = scenario.strip(" \t") if scenario else scenario  # HTTP's own blanks about a value are none of it
        if scenario:
            if not (scenario.isascii() and scenario.isprintable()):  # requests would raise as it sends the header
                raise ValueError(f"a scenario goes in the {SCENARIO_HEADER} header: printable ASCII, got {scenario!r}")
            headers[SCENARIO_HEADER] = scenario
        path = self.spec.operations[operation_id].path
        attempt = 0
        while True:
            timeout = self.timeout if until is None else min(self.timeout, until - self.monotonic())
            if timeout <= 0:
                raise _OutOfTime
            try:
                header, envelope = self._send(path, data, headers, timeout)
                break
            except (requests.RequestException, APIError) as caught:
                error = caught
            except _NoVerdict as caught:  # an answer, but none of the API's
                raise (_unknown(f"{operation_id}: {caught}") if not idempotent and caught.maybe_accepted
                       else APIConnectionError(str(caught))) from None
            # what is raised for it, raised outside the handler: it carries no context, which would be requests'
            # error, and that quotes the signed URL
            if isinstance(error, requests.Timeout) and timeout < self.timeout:  # cut short by wait()'s deadline
                raise _OutOfTime(str(self._final_error(operation_id, path, error)))
            attempt += 1
            if attempt > self.max_retries or not should_retry(error, idempotent=idempotent):
                given_up = self._final_error(operation_id, path, error)
                raise _unknown(str(given_up)) if not idempotent and _maybe_accepted(error) else given_up
            asked = getattr(error, "retry_after", None)
            delay = backoff(attempt, self.rng, asked)
            if until is not None and self.monotonic() + delay >= until:  # wait() says why the poll failed
                left = max(until - self.monotonic(), 0.0)
                due = (f"the server asked for the next try in {delay:.1f} s (Retry-After)" if asked and delay <= asked
                       else f"the next try was due in {delay:.1f} s")
                given_up = self._final_error(operation_id, path, error)
                raise _OutOfTime(f"{given_up}; {due}, past the {left:.1f} s left of the wait")
            self.sleep(delay)
        violations = self.spec.check_answer(operation_id, envelope)  # what the typed result is read from: its
        if violations:  # fields' presence and types (Code 0: a submission's may have been accepted)
            said = f"{operation_id}: the answer is not the API's: {summarize(violations)}"
            raise APIConnectionError(said) if idempotent else _unknown(said)
        return header, envelope["Payload"]

    def _encoded(self, body: dict[str, Any]) -> bytes:
        """The body as UTF-8 JSON; one holding a lone surrogate, which UTF-8 cannot carry, is refused as the API
        refuses its escape (with validation off too: it cannot be sent at all)."""
        try:
            return json.dumps(body, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            problem = jsontext.lone_surrogate(body) or "it holds a lone surrogate"
            raise ParameterError(self.spec.errors.by_name["ParameterFormatError"],
                                 f"request body is not valid Unicode: {problem}", preflight=True) from None
        except ValueError as error:  # an integer past Python's 4,300 digits for text (with validation off)
            raise ParameterError(self.spec.errors.by_name["ParameterFormatError"],
                                 f"request body cannot be written as JSON: {error}", preflight=True) from None

    def _final_error(self, operation_id: str, path: str, error: Exception) -> Exception:
        """`_given_up`'s error for a call to `path`, its message naming the proxy the call went through."""
        return _given_up(operation_id, error, deadline.proxy_note(self.session, f"{self.base_url}{path}", error))

    def _send(self, path: str, data: bytes, headers: dict[str, str],
              timeout: float) -> tuple[dict[str, Any], dict[str, Any]]:
        query = signed_query(self.appkey, self.accesstoken, int(self.clock()))
        with deadline.within(timeout) as limit:  # the whole answer, not only each read (a server may trickle it)
            try:
                with self.session.post(f"{self.base_url}{path}?{query}", data=data, headers=headers,
                                       timeout=timeout, stream=True, allow_redirects=False) as response:
                    content = _read_at_most(response, MAX_ANSWER_BYTES, path)
            except requests.RequestException as error:
                if limit.expired:  # a connection never made is one a submission may be sent again on
                    if never_sent(error):
                        raise requests.ConnectTimeout(f"no connection made for {path} within {limit.seconds:g} s (the "
                                                      f"server did not answer it, or its TLS handshake)") from None
                    raise requests.Timeout(f"no whole answer from {path} within {limit.seconds:g} s") from None
                raise
            except ValueError as error:  # urllib3's, on a host it cannot use (`a..b`, a label past 63 characters)
                raise requests.exceptions.InvalidURL(f"{type(error).__name__}: {error}") from None
        if limit.expired:  # cut at the deadline, an answer of no length ends as if whole
            raise requests.Timeout(f"no whole answer from {path} within {limit.seconds:g} s")
        status = response.status_code
        if 100 <= status < 200:  # http.client takes an interim answer (103 Early Hints) for the final one
            raise _NoVerdict(status, f"HTTP {status} from {path}: an interim answer, which the client cannot read past "
                                     f"to the final one")
        if response.is_redirect:  # followed, a submission's body would go where the Location says, perhaps as a GET
            raise _NoVerdict(status, f"HTTP {status} from {path}: a redirect to "
                             f"{without_query(response.headers.get('Location', ''))!r}, which the client does not "
                             f"follow: the API answers where it is called (check the base URL)")
        try:
            envelope = _loads(content)
            header = envelope.get("Header") if isinstance(envelope, dict) else None
            if not isinstance(header, dict):  # what is missing is said, not only shown cut at 200 characters
                raise _NotEnvelope("no Header object" if isinstance(envelope, dict) else
                                   f"a JSON {json_type(envelope)}, not an object")
            if "Code" not in header:
                raise _NotEnvelope("Header.Code is missing")
            code = header["Code"]
            if type(code) is not int:  # a bool, a string, a list: no Header.Code of the API's
                raise _NotEnvelope(f"Header.Code is {code!r}")
            if code == 0 and not 200 <= status < 300:  # the API succeeds with 200 (D01): a gateway's or a proxy's
                raise _SuccessUnder(f"Header.Code 0 with HTTP {status}")
        except ValueError as problem:  # why, when it is not plain from the text shown
            shown = f"{content[:200].decode('utf-8', 'replace')!r} ({problem})"[:400]
            said_accepted = isinstance(problem, _SuccessUnder)
            # a gateway's or a proxy's answer: retried as the API's would be. A 429 says nothing was done, unless it
            # carries the API's success: then a submission may have been accepted, as under a 5xx (it had exited 5)
            if status >= 500 or (status == 429 and not said_accepted):
                family = RateLimitedError if status == 429 else ServerError
                raise family(-1, f"HTTP {status}, not the API's envelope: {shown}", None, http_status=status,
                             retry_after=_retry_after(response)) from None
            # the API's success under a 3xx or a 4xx: a submission it says it accepted may have been (and billed)
            raise _NoVerdict(status, f"HTTP {status} from {path} is not the API's envelope: {shown}",
                             said_accepted) from None
        if code != 0:
            family = FAMILIES.get(self.spec.errors.family(code) or "", APIError)
            message = header.get("Message", "")
            request_id = header.get("RequestID")  # an id, or None: never what a server put there instead (a list)
            raise family(code, message if isinstance(message, str) else json.dumps(message),
                         request_id if isinstance(request_id, str) else None, http_status=status, body=envelope,
                         retry_after=_retry_after(response))
        return header, envelope


class _NotEnvelope(ValueError):
    """An answer that decodes, but is no envelope of the API's; the message says why."""


class _SuccessUnder(_NotEnvelope):
    """The API's success (Code 0) under an HTTP status that is none: not the API's answer, nor a refusal."""


class _NoVerdict(Exception):
    """An answer that is none of the API's (a redirect, a page that is no envelope, one too large), with its status:
    a 2xx or a 5xx may come after the API accepted a submission, a 3xx or a 4xx from what stood before it, unless it
    carries the API's success (`said_accepted`)."""

    def __init__(self, status: int | None, message: str, said_accepted: bool = False):
        super().__init__(message)
        self.maybe_accepted = said_accepted or status is None or not 300 <= status < 500


MAX_SECONDS = 366 * 86_400  # a timeout past a year is none; past about 9e9 s sockets refuse it (OverflowError)


def _check_seconds(name: str, value: Any, zero: bool = False) -> None:
    """Refuse a `name` that is no number of seconds greater than 0 and at most MAX_SECONDS (None, 0, a negative, NaN,
    infinity, a string, 1e10); with `zero`, one from 0 (a poll's interval, which wait() brings up to MIN_INTERVAL) to
    infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
            0 <= value <= math.inf if zero else 0 < value <= MAX_SECONDS):
        said = "from 0" if zero else f"greater than 0 and at most a year ({MAX_SECONDS})"
        raise ValueError(f"{name} must be a number of seconds {said}, got {value!r}")


def _maybe_accepted(error: Exception) -> bool:
    """Whether a submission that ended in `error` may have been accepted: it was sent (its connection was made), and
    no verdict of the API's, nor a 3xx or 4xx of what stood before it, came back."""
    if isinstance(error, requests.RequestException) and never_sent(error):  # a ConnectTimeout, a handshake's timeout
        return False
    if isinstance(error, requests.ConnectionError):
        return True
    if isinstance(error, requests.RequestException):  # a URL or a header requests would not send: never sent
        return isinstance(error, (requests.Timeout, *BROKEN_OFF)) or unreadable_answer(error)
    return isinstance(error, APIError) and error.body is None and not error.preflight \
        and (error.http_status or 500) >= 500


def _unknown(said: str) -> OutcomeUnknownError:
    """The error of a submission whose verdict never came back; `said` names the operation and what happened."""
    return OutcomeUnknownError(f"{said}; the submission was sent and may have been accepted (and billed): check "
                               f"before submitting it again")


def _queries_out(text: str, url: str, error: Exception) -> str:
    """`text` (an error's) without the query of `url` or of the request it failed on, nor any URL's query."""
    failed_on = getattr(getattr(error, "request", None), "url", None) or ""
    return without_queries(quoted_queries_out(text, url, failed_on))


def _given_up(operation_id: str, error: Exception, note: str = "") -> Exception:
    """The error a call that will not be sent again raises: a connection error, or an error answer that was not the
    API's envelope (from a gateway or a proxy), is APIConnectionError; the API's own answer is its APIError. `note`
    ends a connection error's message (the proxy the call went through)."""
    if isinstance(error, requests.RequestException):
        return APIConnectionError(f"{operation_id}: {error}{note}")  # redacted, as every IvhError's text
    if isinstance(error, APIError) and error.body is None and not error.preflight:
        return APIConnectionError(f"{operation_id}: {error.message}")
    return error


def written_to(destination: Path) -> Path:
    """The file a download to `destination` writes: a link's target, as the download writes through it. A loop of
    links raises OSError (ELOOP), as the system says it (Python 3.11's resolve() raised RuntimeError)."""
    if not destination.is_symlink():
        return destination
    try:
        return destination.resolve()
    except RuntimeError:
        raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(destination)) from None


def partial_file(destination: Path) -> Path:
    """A new file beside `destination` for its download to be written to, then renamed: never a file of the user's,
    a name within the folder's limits however long the destination's, and the permissions any new file gets (the
    umask's; tempfile's would be 0600)."""
    while True:
        # bytes count against the limit; a name's bytes as given, UTF-8 or not (`$'v\\xff.mp4'`)
        start = os.fsdecode(os.fsencode(destination.name)[:64])
        path = destination.with_name(f".{start}.{secrets.token_hex(4)}.part")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return path
        except FileExistsError:
            continue


def _declared_length(response: requests.Response) -> int:
    """The answer's Content-Length, or 0 when it has none that int() reads ('²'.isdigit(), but int() refuses it); one
    of more than 18 digits (int() refuses past 4300) as LONGEST, past every limit."""
    declared = response.headers.get("Content-Length", "")
    if not (declared.isascii() and declared.isdigit()):
        return 0
    return int(declared) if len(declared) <= 18 else LONGEST


LONGEST = 10**18  # bytes: what a Content-Length of more digits counts as


def _check_size(size: int, limit: int | None, shown: str) -> None:
    """Refuse a download of `size` bytes past `limit`, if any."""
    if limit is not None and size > limit:
        raise DownloadError(shown, None, f"larger than max_bytes ({limit} bytes): {size} bytes")


def _read_at_most(response: requests.Response, limit: int, path: str) -> bytes:
    declared = _declared_length(response)
    if declared > limit:
        raise _NoVerdict(response.status_code, f"the answer from {path} is {declared} bytes, more than the {limit} "
                                               f"an answer of the API's takes")
    body = bytearray()
    for chunk in response.iter_content(65536):
        body += chunk
        if len(body) > limit:
            raise _NoVerdict(response.status_code, f"the answer from {path} is more than the {limit} bytes an answer "
                                                   f"of the API's takes")
    return bytes(body)


def _retry_after(response: requests.Response) -> float | None:
    """The seconds a Retry-After header asks for (a number of seconds or an HTTP date), at most MAX_RETRY_AFTER."""
    value = response.headers.get("Retry-After", "").strip()
    if not value:
        return None
    if value.isascii() and value.isdigit():  # '²'.isdigit(), but float() refuses it
        seconds = float(value)
    else:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, OverflowError):
            return None
        if when.tzinfo is None:  # `-0000`, or asctime's form: GMT all the same (RFC 9110 5.6.7)
            when = when.replace(tzinfo=timezone.utc)
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


def parse_callback(body: bytes | bytearray | memoryview | str | Mapping[str, Any]) -> CallbackResult:
    """Validate a callback body against the spec and return it typed; CallbackError names what is wrong."""
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        try:
            body = _loads(body)
        except ValueError as error:
            raise CallbackError(f"callback body is not JSON: {error}") from None
    elif jsontext.value_nests_deeper(body, MAX_DEPTH):  # decoded by the caller: the spec's check would recurse into it
        raise CallbackError(f"callback body nests deeper than {MAX_DEPTH} levels")
    violations = spec_module.load().check("#/components/schemas/CallbackBody", body)
    if violations:
        raise CallbackError(summarize(violations))
    problem = jsontext.lone_surrogate(body)  # a `\udcff` escape decodes to what no UTF-8 store can keep
    if problem is not None:
        raise CallbackError(f"callback body is not valid Unicode: {problem}")
    payload = body["Payload"]
    return CallbackResult(task_id=payload["TaskId"], status=payload["Status"], progress=payload["Progress"],
                          media_url=payload["MediaUrl"], subtitles_url=payload.get("SubtitlesUrl") or "",
                          fail_message=payload.get("FailMessage") or "")


def _loads(data: bytes | str) -> Any:
    """Decode JSON from a server or a caller, counting its nesting first: the decoder recurses once per level."""
    text = bytes(data).decode("utf-8-sig") if not isinstance(data, str) else data  # UnicodeDecodeError: ValueError
    twice: list[str] = []
    value = jsontext.loads(text, MAX_DEPTH, strict=True, duplicates=twice)  # NaN and Infinity are no JSON either
    if twice:  # which one counts is the reader's guess (an answer with two Headers, one accepting, one refusing)
        raise ValueError(f"the key {twice[0]!r} is given twice in one object")
    return value


@contextlib.contextmanager
def _read(operation: str) -> Iterator[None]:
    """Read a successful answer into its typed result; one that lacks a field the result needs, or holds it in
    another shape, is no answer of the API's (APIConnectionError, as for a body that is no envelope)."""
    try:
        yield
    except (KeyError, TypeError, AttributeError, ValueError) as error:
        raise APIConnectionError(f"{operation}: the answer's Payload is not the API's "
                                 f"({type(error).__name__}: {error})") from None
