"""`ivh-mock drift DIR`: turn recordings into the drift report (spec/drift.py's format), merged with any contract
suite reports given, plus the answers real traffic gives to open questions and the measured pace."""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Iterable, Iterator

from ivh_mock import spec as spec_module
from ivh_mock.spec import drift

from . import calibrate
from .checks import Finding, Lifecycle, task_of
from .forward import APP_GONE
from .recorder import PREFIX, is_number, missing_folders, ordered_records, recording_files

EXAMPLE_KEYS = ("time", "operation", "request", "response", "error", "relayed_to")


# A report of one exchange whose answer held 3,000 undocumented fields had taken 2.7 GB to make and 1.5 GB on disk:
# it lists at most MAX_ROWS findings, and an example's bodies past EXAMPLE_CHARS are left to the recording.
MAX_ROWS = 1000
EXAMPLE_CHARS = 16_384
FURTHER = "(further findings)"


def _example(record: dict[str, Any]) -> dict[str, Any]:
    example = {name: record[name] for name in EXAMPLE_KEYS if name in record}
    for part in ("request", "response"):
        side = example.get(part)
        body = side.get("body") if isinstance(side, dict) else None
        if body is not None and len(json.dumps(body, ensure_ascii=False, default=str)) > EXAMPLE_CHARS:
            example[part] = {**side, "body": f"[cut: the body is longer than {EXAMPLE_CHARS} characters; the "
                                             f"recording holds it]"}
    return example


class Aggregate:
    """Findings added up by (kind, operation, subject): count, first and last time seen, one example."""

    def __init__(self):
        self.rows: dict[tuple, dict[str, Any]] = {}

    def add(self, finding: dict[str, Any], record: dict[str, Any]) -> None:
        key = (finding["kind"], finding.get("operation"), finding.get("subject"))
        when = record.get("time", "")
        if key not in self.rows and len(self.rows) >= MAX_ROWS:  # past that, one row a kind counts the rest
            key = (finding["kind"], finding.get("operation"), FURTHER)
            finding = {**finding, "subject": FURTHER, "detail": f"further {finding['kind']} findings, not listed one "
                                                                f"by one: a report lists {MAX_ROWS} at most"}
        row = self.rows.get(key)
        if row is None:
            self.rows[key] = {"kind": finding["kind"], "operation": finding.get("operation"),
                              "subject": finding.get("subject"), "detail": finding.get("detail", ""), "count": 1,
                              "first_seen": when, "last_seen": when, "example": _example(record)}
        else:
            row["count"] += 1
            row["last_seen"] = max(row["last_seen"], when)

    def findings(self) -> list[dict[str, Any]]:
        return sorted(self.rows.values(), key=lambda row: (-row["count"], row["kind"], str(row["subject"])))


def analyse(records: Iterable[dict[str, Any]], ordered: bool = False) -> dict[str, Any]:
    """Return the drift report of a recording's records, taken in the order of their time (as `ordered_records`
    gives them, `ordered`) or put in it."""
    if not ordered:
        records = sorted(records, key=lambda r: (r.get("t", 0), r.get("seq", 0)))
    aggregate, lifecycle, questions = Aggregate(), Lifecycle(max_tasks=10**9), Questions()
    upstreams: set[str] = set()
    count = answered = 0
    moves: list[float] = []  # when the upstream's clock was moved or reset through the proxy (a mock's control API)
    is_mock: bool | None = None  # what the recording says of the upstream: a mock's clock answered, or nothing
    for record in records:
        problem = _edited(record)
        if problem:  # taken as it was, its stored findings had made an answer of status 'abc' conform
            raise ValueError(f"the record at t={record['t']}: {problem}")
        steered = _mock_clock(record)
        if steered is not None:
            is_mock = True
            if steered:
                moves.append(record["t"])
        count += 1
        answered += not record.get("error")
        if isinstance(record.get("upstream"), str) and record["upstream"]:
            upstreams.add(record["upstream"])
        # no answer, or one cut short, from the upstream (an app that left early is no fault of the upstream's)
        if record.get("error") and not record["error"].startswith(APP_GONE):
            aggregate.add({"kind": "exchange-failed", "operation": record.get("operation"),
                           "subject": _failure_kind(record["error"]),
                           "detail": f"the exchange did not complete: {record['error']}"}, record)
        for finding in record.get("findings", ()):
            if not finding["kind"].startswith(("lifecycle-", "callback-mismatch", "callback-repeated")):
                aggregate.add(finding, record)
        for finding in _follow(lifecycle, record):
            aggregate.add(finding.as_dict(), record)
        questions.take(record)
    pace, pace_note = calibrate.measured(lifecycle.tasks.values(), moved=moves)
    label = ", ".join(sorted(upstreams)) or "no traffic"
    return drift.new_report(f"proxy recording of {label}", is_mock=is_mock, findings=aggregate.findings(),
                            answers=questions.answers(lifecycle), pace=pace,
                            sources=[f"{count} recorded exchange(s), {answered} of them answered"], pace_note=pace_note)


def _mock_clock(record: dict[str, Any]) -> bool | None:
    """Of an exchange a mock's control API answered about its clock: whether it moved it (a POST to its clock, or a
    reset of everything, answered 2xx). None for any other record: no sign of a mock."""
    request, response = record.get("request") or {}, record.get("response") or {}
    path, status = request.get("path"), response.get("status")
    if record["kind"] != "exchange" or type(status) is not int or not 200 <= status < 300:
        return None
    if path == "/__mock__/clock":
        body = response.get("body")
        if not (isinstance(body, dict) and "now" in body and "frozen" in body):  # a gateway's 200 is no mock's
            return None
        return request.get("method") == "POST"
    if path == "/__mock__/reset" and request.get("method") == "POST":
        if not (isinstance(response.get("body"), dict) and "reset" in response["body"]):  # a mock's answer
            return None
        body = request.get("body")
        return not (isinstance(body, dict) and "appkey" in body)  # one account's reset leaves the clock alone
    return None


def _edited(record: dict[str, Any]) -> str | None:
    """Why an exchange's record is none the proxy writes (a method that is no text, an answer whose status is no
    HTTP status or whose headers are no pairs of texts), or None."""
    if record["kind"] != "exchange":
        return None
    if not isinstance(record["request"].get("method", ""), str):
        return f"its method {str(record['request']['method'])[:40]!r} is not a text"
    response = record.get("response") or {}
    status, headers = response.get("status"), response.get("headers", [])
    if response and not (type(status) is int and 100 <= status <= 999):  # what http.client reads as a status
        return f"its status {str(status)[:40]!r} is not an HTTP status"
    if not (isinstance(headers, list) and all(isinstance(header, list) and len(header) == 2 and all(
            isinstance(part, str) for part in header) for header in headers)):
        return "its headers are not a list of [name, value] pairs of texts"
    return None


def _follow(lifecycle: Lifecycle, record: dict[str, Any]) -> list[Finding]:
    # a task exists once its submission is answered; a poll reports the state somewhere during the exchange
    at, took = record.get("t", 0.0), record.get("elapsed_ms", 0) / 1000
    request = record.get("request") or {}
    if record.get("kind") == "callback":
        body = request.get("body")
        if isinstance(body, dict) and isinstance(body.get("Payload"), dict):
            return lifecycle.callback(body["Payload"], at)
        return []
    operation = record.get("operation")
    task_id, payload = task_of(operation, request.get("body"), (record.get("response") or {}).get("body"))
    if task_id is None:
        return []
    if operation == "phototovideonotrain":
        lifecycle.submitted(task_id, at + took, sent=at)
        return []
    return lifecycle.observe(task_id, payload, at + took / 2)


class Questions:
    """What traffic says about the open questions of DECISIONS.md."""

    def __init__(self):
        self.catalogue = spec_module.load().errors
        self.error_status: Counter = Counter()
        self.messages: dict[int, Counter] = defaultdict(Counter)
        self.auth: Counter = Counter()
        self.stale: Counter = Counter()
        self.unencoded: Counter = Counter()
        self.echo: Counter = Counter()

    def take(self, record: dict[str, Any]) -> None:
        if record.get("kind") != "exchange" or record.get("operation") is None or not record.get("response"):
            return
        request, response = record["request"], record["response"]
        body = response.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("Header"), dict):
            return
        header = body["Header"]
        code = header.get("Code")
        signals = request.get("signals") or {}
        if isinstance(code, int) and code != 0:
            self.error_status[response.get("status")] += 1
            self.messages[code][str(header.get("Message", ""))] += 1
            if self.catalogue.family(code) == "authentication":
                self.auth[code] += 1
        if abs(signals.get("timestamp_skew_seconds", 0)) > 300:
            self.stale[code] += 1
        if signals.get("signature_unencoded_plus"):
            self.unencoded[code] += 1
        sent = request.get("body")
        request_id = sent.get("Header", {}).get("RequestID") if isinstance(sent, dict) and isinstance(
            sent.get("Header"), dict) else None
        if isinstance(request_id, str) and request_id:
            self.echo["echoed" if header.get("RequestID") == request_id else "not echoed"] += 1

    def answers(self, lifecycle: Lifecycle) -> list[dict[str, Any]]:
        out = []

        def add(decision: str, question: str, counter: Counter, describe=lambda key: str(key)) -> None:
            if counter:
                text = ", ".join(f"{describe(key)} ({count}x)" for key, count in counter.most_common(5))
                out.append({"decision": decision, "question": question, "answer": text, "count": sum(counter.values())})

        add("D01", "HTTP status of error answers", self.error_status, lambda status: f"HTTP {status}")
        add("D03", "Header.RequestID of the request echoed in the answer", self.echo)
        add("D12", "codes of authentication refusals", self.auth)
        add("D12", "answer to a signature whose '+' was not URL-encoded", self.unencoded, lambda c: f"Code {c}")
        add("D13", "answer to a timestamp more than 300 s from this machine's clock", self.stale, lambda c: f"Code {c}")
        for code in sorted(self.messages):
            add("D04", f"Message texts of Header.Code {code}", self.messages[code], lambda text: repr(text[:120]))
        making = Counter()
        for trail in lifecycle.tasks.values():
            values = [seen[2] for seen in trail.seen if seen[1] == "MAKING"]
            if len(values) > 1:
                making["moves" if len(set(values)) > 1 else "stays put"] += 1
        add("D32", "does Progress move during MAKING (per task polled more than once in MAKING)", making)
        return out


class InputError(Exception):
    """What drift was given cannot be read; the message names the path and what was expected."""


def run(directory: str | Path, *, suite_reports: Iterable[str | Path] = (), out: str | Path | None = None,
        pace_file: str | Path | None = None, echo=print) -> int:
    """Analyse `directory`, merge suite reports, write the report (and the pace file); return the exit status:
    1 when anything breaks the spec or differs from a decision, 2 when the input cannot be read or the output
    written (nothing is written when the input cannot be read), else 0."""
    directory = Path(directory)
    try:  # everything is read before anything is written
        skipped: list[int] = []
        try:
            report = analyse(_recorded(directory, skipped), ordered=True)
        except (TypeError, KeyError, ValueError, AttributeError, RecursionError) as error:  # a record edited by hand
            raise InputError(f"a record at {directory} is not as `ivh-mock proxy` writes it ({type(error).__name__}: "
                             f"{str(error)[:200]})") from None
        suites = [_suite_report(path) for path in suite_reports]
    except InputError as error:
        return _refuse(str(error))
    unread = f"{skipped[0]} line(s) skipped: not a record as `ivh-mock proxy` writes one" if skipped[0] else ""
    if unread:  # said, not dropped unsaid: a write cut short, a line edited by hand
        report["sources"].append(unread)
    merged = drift.merge([*suites, report]) if suites else report
    folder = Path(out) if out else (directory if directory.is_dir() else directory.parent)
    if pace_file:  # written last, over whatever is there: it had replaced the recording it came from, or the report
        read = [directory] if directory.is_file() else recording_files(directory)
        kept = {"a recording it reads": read, "a suite report it reads": [Path(path) for path in suite_reports],
                "the report it writes": [folder / drift.JSON_NAME, folder / drift.MARKDOWN_NAME]}
        for what, paths in kept.items():
            if any(_same_file(Path(pace_file), path) for path in paths):
                return _refuse(f"--pace-file {pace_file} is {what}: the pace would be written over it; give "
                               f"another file (by default it goes beside the report, as pace.json)")
    made = missing_folders(folder)  # what writing the report makes
    try:
        json_path, md_path = drift.write(merged, folder)
    except OSError as error:
        return _refuse(f"cannot write the report into {folder}{' (--out)' if out else ''}: {_reason(error)}")
    if merged["pace"]:
        target = Path(pace_file) if pace_file else json_path.parent / "pace.json"
        try:  # into a folder made for it, as --out's is
            target.parent.mkdir(parents=True, exist_ok=True)
            calibrate.write_pace({key: merged["pace"][key] for key in calibrate.PACE_KEYS}, target)
        except OSError as error:
            for path in (json_path, md_path):  # no report without its pace: a failed run leaves nothing behind,
                path.unlink(missing_ok=True)  # the folders made for it neither, and says nothing of the traffic
            for path in made:
                with contextlib.suppress(OSError):
                    path.rmdir()
            return _refuse(f"cannot write the pace to {target}{' (--pace-file)' if pace_file else ''}: "
                           f"{_reason(error)}")
    echo(summary(merged))
    if unread:
        echo(f"  {unread}")
    if not merged["pace"] and merged["pace_note"]:  # every task it had finished was left out
        echo(f"pace: none measured: {merged['pace_note']}")
    if merged["pace"]:
        echo(f"pace: {calibrate.serve_options(merged['pace'])} (from {merged['pace']['tasks']} task(s)); "
             f"written to {target} for `ivh-mock serve --pace {target}`")
        if merged["pace"].get("left_out"):  # the tasks a clock moved through the proxy spoiled
            echo(f"pace: {merged['pace']['left_out']}")
        if merged["pace"].get("warning"):  # a suite report's pace (or an older proxy's) has none
            echo(f"pace warning: {merged['pace']['warning']}")
    echo(f"report: {json_path} and {md_path}")
    return 0 if drift.conforms(merged) else 1


def _same_file(one: Path, other: Path) -> bool:
    """Whether `one` and `other` name one file (through a link, `..` or another spelling of it)."""
    try:
        return one.resolve() == other.resolve() or (one.exists() and other.exists() and one.samefile(other))
    except (OSError, RuntimeError):  # a path that cannot be resolved (a loop of links) names no file of the others
        return False


def _failure_kind(error: str) -> str:
    """What kind of failure a record's error names, without what varies from one to the next (quoted texts,
    numbers): a BadStatusLine and a RemoteDisconnected, a timeout and a reset, had been counted as one failure, and
    the report quoted the first alone."""
    return _VARYING.sub("…", error)[:120]


_VARYING = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\d+")


def _recorded(path: Path, skipped: list[int] | None = None) -> Iterator[dict[str, Any]]:
    """Every record at `path`, a directory recorded by `ivh-mock proxy` or one of its files, in time order (`skipped`
    gets the number of lines that are none). A path that holds none raises InputError: a wrong path must not pass
    as traffic that conforms."""
    expected = f"expected a directory recorded by `ivh-mock proxy --record` ({PREFIX}*.jsonl files) or one such file"
    if not path.is_file() and not path.is_dir():
        what = "neither a file nor a directory" if path.exists() else "no such file or directory"
        raise InputError(f"no recordings at {path}: {what}; {expected}")
    seen = False
    try:
        for record in ordered_records(path, skipped):  # a line that is not UTF-8 JSON (cut short) is skipped
            seen = True
            yield record
    except OSError as error:
        raise InputError(f"cannot read {error.filename or path}: {_reason(error)}") from None
    if not seen:
        raise InputError(f"no recordings at {path}: nothing recorded there; {expected}")


def _suite_report(path: str | Path) -> dict[str, Any]:
    try:
        report = drift.read(path)
    except OSError as error:
        raise InputError(f"--suite-report {path}: cannot read it: {_reason(error)}") from None
    except UnicodeDecodeError:
        raise InputError(f"--suite-report {path}: not UTF-8 text, as a drift-report.json is") from None
    except json.JSONDecodeError as error:
        raise InputError(f"--suite-report {path}: not JSON: {error}") from None
    except ValueError as error:
        raise InputError(f"--suite-report {path}: not a drift report (the contract suite's drift-report.json): "
                         f"{str(error).removeprefix(f'{path} is not a drift report: ')}") from None
    except RecursionError:
        raise InputError(f"--suite-report {path}: not a drift report: it nests too deep to read") from None
    pace = report["pace"]
    if pace is not None and not all(_seconds(pace.get(key)) for key in calibrate.PACE_KEYS):
        raise InputError(f"--suite-report {path}: its pace needs {', '.join(calibrate.PACE_KEYS)}, each a finite "
                         f"number of seconds, 0 or more")
    return report


def _seconds(value: Any) -> bool:
    return is_number(value) and 0 <= value < float("inf")


def _reason(error: OSError) -> str:
    if isinstance(error, FileExistsError):  # what mkdir says of a file where a directory is to be
        return "it is a file, not a directory"
    return error.strerror or str(error)


def _refuse(message: str) -> int:
    print(f"ivh-mock drift: {message}", file=sys.stderr)
    return 2


def summary(report: dict[str, Any]) -> str:
    """Return a few lines for the terminal: each finding and differing probe, or that all conforms."""
    lines = [f"drift report of {report['target']}"]
    for finding in report["findings"]:
        lines.append(f"  {finding['kind']}: {finding['detail']} ({finding['count']}x, first {finding['first_seen']}, "
                     f"last {finding['last_seen']})")
    for row in drift.differing(report):
        lines.append(f"  probe {row['decision']} {row['question']}: mock {row['mock']}, target {row['target']}")
    not_run = sum(row["verdict"] == drift.NOT_RUN for row in report["probes"])
    if not_run:
        lines.append(f"  {not_run} probe(s) not run (spend guard)")
    for answer in report["answers"]:
        lines.append(f"  {answer['decision']} {answer['question']}: {answer['answer']}")
    if drift.conforms(report):
        lines.append("  no findings: everything seen conforms to the spec")
    return "\n".join(lines)
