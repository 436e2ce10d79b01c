"""Run every drift probe against the target and write the drift report (JSON and Markdown).

Against a mock every answer must agree with the mock's recorded choice; against the live API the report is the
product: each "differs" row is a decision in spec/DECISIONS.md to revisit. The report is always written: a probe the
spend guard stops is listed as not run, never dropped. Its findings are what every answer of the run broke in the
spec, checked as the recording proxy checks real traffic. `--ivh-fail-on-drift` makes any differing probe or finding
fail the test (for a scheduled run against the live API).
"""

from __future__ import annotations

import time

import pytest
from ivh_mock.spec import drift

from ivh_mock.contract_tests.probes import PROBES


def test_drift_report(target, report_dir, request):
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
    findings = target.observed.findings()  # of every answer of the run so far: this test runs last (conftest)
    # split over workers (-n), this one saw its own share of the run: its count of accepted submissions is not the
    # run's, which no worker knows
    share = hasattr(request.config, "workerinput")
    report = drift.new_report(target.label, is_mock=target.has_control,
                              accepted_submissions=None if share else target.guard.accepted, probes=rows,
                              findings=findings,
                              sources=[f"the contract suite's probes, and {target.observed.count} answer(s) of "
                                       f"{'the share of its run in this worker (-n)' if share else 'its run'} "
                                       f"checked against the spec"])
    # the run's own credentials, wherever a target echoed them (a finding quotes an answer): never in a shared report
    drift.write(drift.scrubbed(report, [target.accesstoken, target.control_token]), report_dir)

    assert len(rows) == len(PROBES)
    differing = drift.differing(report)
    broken = [f"{f['kind']}: {f['detail']}" for f in findings]
    if target.has_control:
        assert not differing, f"the mock differs from its own decisions: {differing}"
        assert not broken, f"the mock's answers break its own spec: {broken}"
    if request.config.getoption("--ivh-fail-on-drift"):
        assert not differing, f"{len(differing)} probe(s) differ from the mock's choices: {differing}"
        assert not broken, f"{len(broken)} kind(s) of answer break the spec: {broken}"


def _ask(target) -> list[dict[str, str]]:
    rows = []
    for probe in PROBES:
        try:
            answer = probe.observe(probe.run(target))
        except pytest.skip.Exception:  # the spend guard stopped it: say so in the report rather than lose the report
            answer = None
        except Exception as error:  # a probe that cannot run is reported, never hidden
            answer = f"probe failed: {type(error).__name__}: {error}"[:200]
        rows.append(drift.probe_row(probe.decision, probe.question, probe.expected, answer))
    return rows
