"""The benchmark's parts that can be checked without a load run: the report is rebuilt from the committed raw
numbers, the ceiling answers the API's paths, and a server waits paused while another is measured."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench import load, report
from bench.__main__ import running
from bench.peers import ceiling_app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def without_date(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("Written by `make bench` on ")]


def test_the_report_is_written_again_from_the_raw_numbers(tmp_path):
    report.write(tmp_path / "benchmarks.md", **report.load_results(DOCS / "benchmarks.json"))
    text = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert without_date(text) == without_date((DOCS / "benchmarks.md").read_text(encoding="utf-8"))
    goals = [line for line in text.split("## Goals", 1)[1].splitlines() if line.startswith("| ")][2:]
    assert len(goals) >= 10 and all(line.endswith(("| met |", "| **missed** |")) for line in goals)


def test_the_ceiling_answers_every_operation_with_code_0():
    client = ceiling_app().test_client()
    for path in load.PATHS.values():
        answer = client.post(path, data="{}", headers={"Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.get_json()["Header"]["Code"] == 0


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _settled(pid: int, want: str) -> str:
    deadline = time.monotonic() + 5
    while _state(pid) != want and time.monotonic() < deadline:
        time.sleep(0.01)
    return _state(pid)


def test_a_paused_server_runs_only_while_it_is_measured():
    # a server and the worker it forked, as `ivh-mock serve` runs: both must stop and go on together
    code = "import os, time\nif os.fork() == 0: print(os.getpid(), flush=True)\ntime.sleep(60)"
    server = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        worker = int(server.stdout.readline())
        os.killpg(server.pid, signal.SIGSTOP)
        assert [_settled(pid, "T") for pid in (server.pid, worker)] == ["T", "T"]
        with running(server):
            assert [_settled(pid, "S") for pid in (server.pid, worker)] == ["S", "S"]
        assert [_settled(pid, "T") for pid in (server.pid, worker)] == ["T", "T"]
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
