"""Run every drift probe against the target and write the drift report (JSON and Markdown).

Against a mock every answer must agree with the mock's recorded choice; against the live API the report is the
product: each "differs" row is a decision in spec/DECISIONS.md to revisit.
"""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

from ivh_mock.contract_tests.probes import PROBES


def test_drift_report(target, report_dir):
    if target.has_control:
        # A mock accepts timestamps near real time or near its own clock (D51); the D13 probes ask about real time,
        # the live API's only clock, so the mock's clock is moved a day away from it while they run.
        restore = target.clock_now()
        target.set_clock(time.time() + 86_400)
    try:
        rows = _ask(target)
    finally:
        if target.has_control:
            target.set_clock(restore)
    report = {"target": target.label, "is_mock": target.has_control,
              "written": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "accepted_submissions": target.guard.accepted, "probes": rows}
    (report_dir / "drift-report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    (report_dir / "drift-report.md").write_text(_markdown(report), encoding="utf-8")

    assert len(rows) == len(PROBES)
    if target.has_control:
        differing = [row for row in rows if row["verdict"] != "agree"]
        assert not differing, f"the mock differs from its own decisions: {differing}"


def _ask(target) -> list[dict[str, str]]:
    rows = []
    for probe in PROBES:
        try:
            answer = probe.observe(probe.run(target))
        except Exception as error:  # a probe that cannot run is reported, never hidden
            answer = f"probe failed: {type(error).__name__}: {error}"[:200]
        rows.append({"decision": probe.decision, "question": probe.question, "mock": probe.expected,
                     "target": answer, "verdict": "agree" if answer == probe.expected else "differs"})
    return rows


def _markdown(report) -> str:
    lines = [f"# Drift report: {report['target']}", "",
             f"Written {report['written']}; {'a mock' if report['is_mock'] else 'not a mock'}; "
             f"{report['accepted_submissions']} submission(s) accepted during the run.", "",
             "| decision | question | mock's choice | target's answer | verdict |", "|---|---|---|---|---|"]
    lines += [f"| {r['decision']} | {r['question']} | {r['mock']} | {r['target']} | {r['verdict']} |"
              for r in report["probes"]]
    agree = sum(r["verdict"] == "agree" for r in report["probes"])
    lines += ["", f"{agree} of {len(report['probes'])} agree.", ""]
    return "\n".join(lines)
