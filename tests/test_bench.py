"""The benchmark's parts that can be checked without a load run: the report is rebuilt from the committed raw
numbers, the ceiling answers the API's paths, and a server waits paused while another is measured."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bench import load, report
from bench.__main__ import running
from bench.peers import ceiling_app

from .conftest import group_members, until

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


BENCH_KILLED = """
import os, signal, sys, tempfile
from bench import peers
from ivh_mock.mock_server.serving.testing import RedisServer
redis = RedisServer()  # the bench's own Redis, unpaused
redis_folder = os.path.dirname(redis.unix_url.removeprefix("unix://").partition("?")[0])
data = tempfile.mkdtemp()  # the server's data directory
# a server that listens and forks a worker, as `ivh-mock serve` does
server = ("import os, socket, sys, time\\nlistener = socket.socket()\\n"
          "listener.bind(('127.0.0.1', int(sys.argv[1])))\\nlistener.listen()\\nos.fork()\\ntime.sleep(120)")
port = peers.free_port()
with peers.started([sys.executable, "-c", server, str(port)], port, data) as process:
    os.killpg(process.pid, signal.SIGSTOP)  # paused, as side_by_side pauses all but the server under load
    print(process.pid, redis.process.pid, redis_folder, data, flush=True)
    signal.pause()
"""


def test_a_bench_killed_outright_leaves_no_server_behind(redis_server):
    """A bench ended by SIGKILL (nothing of it runs after) left its servers paused for good, and its Redis running;
    each server's guard now kills it (a measured server's whole process group), and removes its scratch folder (the
    Redis's, the data directory), which had been left in the temporary directory, run after run."""
    bench = subprocess.Popen([sys.executable, "-c", BENCH_KILLED], stdout=subprocess.PIPE, text=True,
                             cwd=DOCS.parent)
    server, redis, *folders = bench.stdout.readline().split()
    server, redis = int(server), int(redis)
    try:
        until(lambda: len(group_members(server)) == 2)  # its worker forked too
        assert _settled(server, "T") == "T"
        assert _state(redis) in "SR"
        assert all(os.path.isdir(folder) for folder in folders)
        bench.kill()
        bench.wait()
        until(lambda: not group_members(server) and not _alive(redis))
        until(lambda: not any(os.path.exists(folder) for folder in folders))
    finally:
        bench.kill()
        bench.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.kill(redis, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        return _state(pid) != "Z"
    except OSError:
        return False


def test_the_render_benchmark_answers_help_without_rendering(capsys, monkeypatch):
    """`python -m bench.render --help` ran the whole benchmark (a minute of renders), taking no option at all."""
    from bench import render

    monkeypatch.setattr(render, "portrait", lambda *args: pytest.fail("rendering began"))
    with pytest.raises(SystemExit) as done:
        render.main(["--help"])
    assert done.value.code == 0 and "Render benchmark" in capsys.readouterr().out
