"""The drift report: one format, written by the contract suite (its probes) and by `ivh-mock drift` (what a
recording proxy saw), and read back by `ivh-mock drift` to merge both into one picture.

A report is JSON (drift-report.json) with a Markdown twin (drift-report.md):

    {"format": FORMAT, "target": "...", "is_mock": bool | null, "written": ISO time, "accepted_submissions": int | null,
     "probes":   [{"decision", "question", "mock", "target", "verdict": "agree" | "differs" | NOT_RUN}],
     "findings": [{"kind", "operation", "subject", "detail", "count", "first_seen", "last_seen", "example"}],
     "answers":  [{"decision", "question", "answer", "count"}],
     "pace":     {"queue_seconds", "render_speed", "render_startup_seconds", ...} | null, "pace_note": str | null,
     "sources":  [what was merged]}

A probe row compares one decision of DECISIONS.md with the target; a finding is something the target did that the
spec does not allow; an answer is what real traffic says about a question the docs leave open.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

import jsonschema

FORMAT = "ivh-mock drift report 1"
JSON_NAME, MARKDOWN_NAME = "drift-report.json", "drift-report.md"
AGREE, DIFFERS, NOT_RUN = "agree", "differs", "not run (spend guard)"


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_report(target: str, *, is_mock: bool | None, accepted_submissions: int | None = None,
               probes: Iterable[dict[str, Any]] = (), findings: Iterable[dict[str, Any]] = (),
               answers: Iterable[dict[str, Any]] = (), pace: dict[str, Any] | None = None,
               sources: Iterable[str] = (), pace_note: str | None = None) -> dict[str, Any]:
    """Return a report in the one format (`pace_note`: why there is no pace, where that is worth saying)."""
    return {"format": FORMAT, "target": target, "is_mock": is_mock, "written": now_iso(),
            "accepted_submissions": accepted_submissions, "probes": list(probes), "findings": list(findings),
            "answers": list(answers), "pace": pace, "pace_note": pace_note, "sources": list(sources)}


def probe_row(decision: str, question: str, mock: str, target: str | None) -> dict[str, Any]:
    """Return one probe's row; `target` None means the spend guard stopped the probe before it was sent."""
    verdict = NOT_RUN if target is None else AGREE if target == mock else DIFFERS
    return {"decision": decision, "question": question, "mock": mock, "target": target if target is not None else "",
            "verdict": verdict}


def _rows(required: list[str], strings: list[str], **more: Any) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "object", "required": required,
                                       "properties": {**{name: {"type": "string"} for name in strings}, **more}}}


# What `read` relies on in a report (the shape above; findings, answers, pace and sources may be missing, as in the
# first version's): merging and writing a report read these fields, so one without them is no report of this format,
# however it was made.
REPORT_SCHEMA = {
    "type": "object",
    "required": ["target", "is_mock", "probes"],
    "properties": {
        "target": {"type": "string"},
        "is_mock": {"type": ["boolean", "null"]},  # null: not known (a proxy's recording that shows no mock's clock)
        "accepted_submissions": {"type": ["integer", "null"], "minimum": 0},
        "probes": _rows(["decision", "question", "mock", "target", "verdict"], ["decision", "question", "verdict"]),
        "findings": _rows(["kind", "detail", "count", "first_seen", "last_seen"],
                          ["kind", "detail", "first_seen", "last_seen"], count={"type": "integer", "minimum": 0}),
        "answers": _rows(["decision", "question", "answer"], ["decision", "question"]),
        "pace": {"type": ["object", "null"]},
        "pace_note": {"type": ["string", "null"]},
        "sources": {"type": "array", "items": {"type": "string"}},
    },
}


def read(path: str | Path) -> dict[str, Any]:
    """Read a report written by any version of the suite or by `ivh-mock drift` (missing sections are empty);
    ValueError naming the first problem when it is not one."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(REPORT_SCHEMA).iter_errors(data))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        raise ValueError(f"{path} is not a drift report: {where + ': ' if where else ''}{error.message}")
    return new_report(data.get("target", str(path)), is_mock=data.get("is_mock"),
                      accepted_submissions=data.get("accepted_submissions"), probes=data.get("probes", ()),
                      findings=data.get("findings", ()), answers=data.get("answers", ()), pace=data.get("pace"),
                      sources=data.get("sources") or [str(path)],
                      pace_note=data.get("pace_note")) | {"written": data.get("written", "")}


def merge(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """Merge several reports into one: probes and answers side by side, findings of the same kind added up."""
    findings: dict[tuple, dict[str, Any]] = {}
    for report in reports:
        for finding in report["findings"]:
            key = (finding["kind"], finding.get("operation"), finding.get("subject"))
            if key not in findings:
                findings[key] = dict(finding)
                continue
            kept = findings[key]
            kept["count"] += finding["count"]
            kept["first_seen"] = min(kept["first_seen"], finding["first_seen"])
            kept["last_seen"] = max(kept["last_seen"], finding["last_seen"])
    targets = sorted({report["target"] for report in reports})
    accepted = [r["accepted_submissions"] for r in reports if r["accepted_submissions"] is not None]
    # a mock only when each report knows it is one (a recording may not know: the live API's, merged with a mock's
    # suite report, had been called a mock); not one when any knows
    said = {report["is_mock"] for report in reports}
    is_mock = False if False in said else None if None in said or not said else True
    return new_report(", ".join(targets), is_mock=is_mock,
                      accepted_submissions=sum(accepted) if accepted else None,
                      probes=_probes_of(reports),
                      findings=sorted(findings.values(),
                                      key=lambda f: (-f["count"], f["kind"], str(f.get("subject")))),
                      answers=[a for r in reports for a in r["answers"]],
                      pace=next((r["pace"] for r in reversed(reports) if r["pace"]), None),
                      sources=[s for r in reports for s in r["sources"]],
                      pace_note=next((r["pace_note"] for r in reports if r["pace_note"]), None))


def _probes_of(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every report's probe rows, each also saying which run it came from (`from`: its target and when it was
    written) when more than one report has any: the same probes of two runs read as one list, and a row that
    differs could not be told from one that agreed."""
    asked = [report for report in reports if report["probes"]]
    if len(asked) < 2:
        return [row for report in asked for row in report["probes"]]
    return [{"from": f"{report['target']}, {report['written']}", **row} for report in asked
            for row in report["probes"]]


def differing(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Return the probe rows where the target answered otherwise than the mock's choice."""
    return [row for row in report["probes"] if row["verdict"] == DIFFERS]


def conforms(report: dict[str, Any]) -> bool:
    """Tell whether nothing in the report breaks the spec or differs from a decision."""
    return not report["findings"] and not differing(report)


def unwritable(directory: str | Path) -> str | None:
    """Why `write` could not write a report into `directory` (made here when missing), or None. Asked before a run
    that ends in a report: one that had run, and spent, for minutes lost its report to a folder it could not write."""
    directory = Path(directory)
    try:
        if directory.exists() and not directory.is_dir():
            return "it is a file, not a directory"
        directory.mkdir(parents=True, exist_ok=True)
        for name in (JSON_NAME, MARKDOWN_NAME):
            path = directory / name
            if path.is_dir():
                return f"{name} in it is a directory"
            if path.exists() and not os.access(path, os.W_OK):
                return f"{name} in it cannot be written"
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".drift-report-"):
            pass
    except OSError as error:
        return error.strerror or str(error)
    return None


def scrubbed(value: Any, secrets: Iterable[str | None]) -> Any:
    """`value` (a report, or any JSON value) with each of `secrets` replaced wherever it is in its texts: a run knows
    its own credentials, which a target may echo where no name marks them as such (`checked with <token>`)."""
    known = sorted({secret for secret in secrets if secret and len(secret) >= 4}, key=len, reverse=True)

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            return {walk(key): walk(item) for key, item in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, str):
            for secret in known:
                node = node.replace(secret, "[redacted]")
        return node

    return walk(value) if known else value


def write(report: dict[str, Any], directory: str | Path) -> tuple[Path, Path]:
    """Write drift-report.json and drift-report.md into `directory` and return their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / JSON_NAME, directory / MARKDOWN_NAME
    json_path.write_text(json.dumps(report, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(markdown(report), encoding="utf-8")
    return json_path, md_path


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(report: dict[str, Any]) -> str:
    """Return the report as Markdown: probes, findings (each with one example), answers, pace."""
    accepted = report["accepted_submissions"]
    lines = [f"# Drift report: {report['target']}", "",
             f"Written {report['written']}; "
             f"{ {True: 'a mock', False: 'not a mock', None: 'not known to be a mock'}[report['is_mock']]}"
             + (f"; {accepted} submission(s) accepted during the run." if accepted is not None else ".")]
    if report["sources"]:
        lines += ["", "From: " + ", ".join(report["sources"]) + "."]
    probes = report["probes"]
    if probes:
        runs = any("from" in row for row in probes)  # probes of several runs: each row names its own
        lines += ["", "## Probes", "", "| decision | question | mock's choice | target's answer | verdict |"
                  + (" from |" if runs else ""), "|---|---|---|---|---|" + ("---|" if runs else "")]
        lines += [f"| {r['decision']} | {_cell(r['question'])} | {_cell(r['mock'])} | {_cell(r['target'])} | "
                  f"{r['verdict']} |" + (f" {_cell(r.get('from', ''))} |" if runs else "") for r in probes]
        agree = sum(r["verdict"] == AGREE for r in probes)
        not_run = sum(r["verdict"] == NOT_RUN for r in probes)
        lines += ["", f"{agree} of {len(probes)} agree" + (f"; {not_run} not run (spend guard)." if not_run else ".")]
    lines += ["", "## Findings", ""]
    if report["findings"]:
        lines += ["| kind | operation | subject | count | first seen | last seen | detail |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {f['kind']} | {f.get('operation') or ''} | {_cell(f.get('subject') or '')} | {f['count']} | "
                  f"{f['first_seen']} | {f['last_seen']} | {_cell(f['detail'])} |" for f in report["findings"]]
        for f in report["findings"]:
            lines += ["", f"### {f['kind']}: {f.get('subject') or ''}", "", "```json",
                      json.dumps(f.get("example"), ensure_ascii=False, indent=2), "```"]
    else:
        lines += ["None: everything seen conforms to the spec." if not differing(report) else
                  "None in the answers seen; the probes above that differ are the drift."]
    if report["answers"]:
        lines += ["", "## Open questions answered by traffic", "", "| decision | question | answer | seen |",
                  "|---|---|---|---|"]
        lines += [f"| {a['decision']} | {_cell(a['question'])} | {_cell(a['answer'])} | {a.get('count', '')} |"
                  for a in report["answers"]]
    if report["pace"]:
        lines += ["", "## Pace", "", "```json", json.dumps(report["pace"], ensure_ascii=False, indent=2), "```"]
    elif report["pace_note"]:
        lines += ["", "## Pace", "", f"None measured: {report['pace_note']}."]
    return "\n".join(lines) + "\n"
