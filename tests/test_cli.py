"""`ivh-mock serve` as a user runs it: a real process on a real port, signed requests, a clean stop."""

import contextlib
import json
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from ivh_mock.mock_server.config import Config
from ivh_mock.mock_server.serving import cli
from ivh_mock.spec.signing import signed_query

from . import forked
from .conftest import MOCK, PATHS, TEXT_PAYLOAD, ServeProcess, group_members, until

SCRIPT = Path(MOCK)


_SCRATCH: list[str] = []  # the module's scratch folder, removed after its last test


@pytest.fixture(autouse=True, scope="module")
def _scratch():
    with tempfile.TemporaryDirectory(prefix="ivh-cli-test-") as folder:  # each run had left a folder per server
        _SCRATCH[:] = [folder]
        yield


def data_dir() -> str:
    """A data directory of its own for a server a test starts."""
    return tempfile.mkdtemp(dir=_SCRATCH[0])


def start(*args):
    served = ServeProcess(data_dir(), "--queue-seconds", "600", *args)
    return served.process, served.url, served.banner


@pytest.fixture
def server():
    served = ServeProcess(data_dir(), "--queue-seconds", "600")
    yield served.url, served.banner, served
    if served.process.poll() is None:
        served.kill()


def post(url, operation_id, payload, appkey="cli-test"):
    query = signed_query(appkey, "mock-accesstoken", int(time.time()))
    response = requests.post(f"{url}{PATHS[operation_id]}?{query}", timeout=10,
                             data=json.dumps({"Header": {}, "Payload": payload}),
                             headers={"Content-Type": "application/json;charset=utf-8"})
    return response.json()


def test_serve_prints_where_it_listens_and_which_credentials_work(server):
    url, banner, _ = server
    assert url.startswith("http://127.0.0.1:")
    assert "profile:     intl" in banner
    assert "any appkey, accesstoken 'mock-accesstoken'" in banner


def test_the_seed_sample_is_accepted_and_queued_over_http(server):
    url, _, _ = server
    accepted = post(url, "phototovideonotrain", TEXT_PAYLOAD)
    assert accepted["Header"]["Code"] == 0
    progress = post(url, "getprogress", {"TaskId": accepted["Payload"]["TaskId"]})
    assert progress["Header"]["Code"] == 0 and progress["Payload"]["Status"] == "COMMIT"


def test_each_broken_constraint_names_its_field_over_http(server):
    url, _, _ = server
    for field, value in [("DriverType", "Txt"), ("InputSsml", "ab"), ("RefPhotoUrl", "nope")]:
        answer = post(url, "phototovideonotrain", {**TEXT_PAYLOAD, field: value})
        assert answer["Header"]["Code"] != 0 and f"Payload.{field}" in answer["Header"]["Message"]


def test_sigterm_stops_the_server_cleanly(server):
    _, _, served = server
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(timeout=10) == 0
    assert "Traceback" not in served.errors()


def test_a_server_the_tests_fork_is_a_process_of_its_own_as_a_started_one_is(tmp_path):
    """ServeProcess forks `ivh-mock serve` from a process that imported it (tests/forked.py), and the tests read it as
    the `subprocess.Popen(..., start_new_session=True)` it replaces: a session and group of its own, its folder and
    environment, its pipes, and its status when it ends, a signal's too."""
    (tmp_path / "pace.yaml").write_text("queue_seconds: 42\n")
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    with ServeProcess(None, "--store", "memory", "--pace", "pace.yaml", cwd=tmp_path, env=env) as served:
        pid = served.process.pid
        assert os.getsid(pid) == pid and os.getpgid(pid) == pid and os.getsid(0) != pid
        assert os.readlink(f"/proc/{pid}/cwd") == str(tmp_path)  # and the pace file was read from there
        assert [path.name for path in tmp_path.iterdir() if path.name.startswith("ivh-mock-")]  # its scratch folder
        assert served.process.poll() is None
        # the banner says the pace a pace file gave (it had not shown it at all)
        until(lambda: served.printed())
        assert served.printed() == ("  pace:        pace.yaml: 42 s in the queue, then a render of 2 s + 0.2 s a "
                                    "second of video\n")
        with pytest.raises(subprocess.TimeoutExpired):
            served.process.wait(timeout=0.1)
        served.kill(signal.SIGKILL)
        assert served.process.poll() == served.process.wait() == -signal.SIGKILL
    with ServeProcess(tmp_path / "data") as served:
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=15) == 0 and served.errors() == ""
    assert (tmp_path / "data" / "ivh-mock.sqlite3").stat().st_size > 0


def test_a_pytest_run_the_tests_fork_keeps_hypothesis_in_its_own_folder(tmp_path):
    """Hypothesis takes its folder where it is imported, and the process forking pytest runs imports it in a
    temporary folder, gone once it has: each run made it again, and left a folder in the temporary directory."""
    (tmp_path / "test_where.py").write_text(
        "from hypothesis.configuration import storage_directory\n"
        "def test_where():\n    print('HOME', storage_directory().path)\n")
    run = forked.run(["-q", "-s", "-p", "no:cacheprovider", "test_where.py"], cwd=tmp_path)
    assert run.returncode == 0, run.stdout
    assert f"HOME {tmp_path / '.hypothesis'}" in run.stdout


def test_a_relative_sqlite_store_in_folders_not_made_yet_is_made_there(tmp_path):
    """`--store sqlite:new/deeper/db.sqlite3` (relative, its folders not there yet) held the start for good, at a
    whole core and before a word: looking for the outermost folder to make, it looked for the parent of "" for ever."""
    with ServeProcess(tmp_path / "data", "--store", "sqlite:new/deeper/db.sqlite3", cwd=tmp_path) as served:
        assert post(served.url, "phototovideonotrain", TEXT_PAYLOAD)["Header"]["Code"] == 0
        assert f"sqlite:{tmp_path / 'new' / 'deeper' / 'db.sqlite3'}" in served.banner
    with contextlib.closing(sqlite3.connect(tmp_path / "new" / "deeper" / "db.sqlite3")) as db:
        assert db.execute("SELECT count(*) FROM tasks").fetchone()[0] == 1


def test_a_stopped_server_leaves_its_whole_sqlite_store_in_the_database_file(tmp_path):
    """Workers had exited with their threads' connections open, leaving the write-ahead log and its index beside the
    database: a copy of the database file alone lacked what the log still held."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    served = ServeProcess(tmp_path / "data", "--workers", "2")
    try:
        with ThreadPoolExecutor(6) as pool:  # several threads of each worker write
            answers = list(pool.map(lambda n: post(served.url, "phototovideonotrain", TEXT_PAYLOAD, f"wal-{n % 6}"),
                                    range(60)))
        assert all(answer["Header"]["Code"] == 0 for answer in answers)
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=20) == 0 and "Traceback" not in served.errors()
    finally:
        served.kill()
    names = {path.name for path in (tmp_path / "data").iterdir()}
    assert not {"ivh-mock.sqlite3-wal", "ivh-mock.sqlite3-shm"} & names, names
    copy = tmp_path / "copy.sqlite3"
    shutil.copy(tmp_path / "data" / "ivh-mock.sqlite3", copy)  # the file alone
    with contextlib.closing(sqlite3.connect(copy)) as db:
        assert db.execute("SELECT count(*) FROM tasks").fetchone()[0] == 60


@pytest.mark.parametrize("to, number", [("master", signal.SIGHUP), ("group", signal.SIGHUP),
                                        ("group", signal.SIGQUIT)], ids=["hup-master", "hup-group", "quit-group"])
def test_a_hang_up_stops_the_server_as_sigterm_does(to, number, tmp_path):
    """SIGHUP (a terminal's hang-up, sent to its whole process group) killed the master alone: exit 129, and its
    workers served on until they saw it gone, cutting what they ran. It is a stop like SIGTERM's now; so is a
    terminal's quit (Ctrl-\\, SIGQUIT), which had dumped the master's core."""
    served = ServeProcess(tmp_path / "data", "--workers", "2")
    try:
        assert requests.get(f"{served.url}/__mock__/clock", timeout=10).status_code == 200
        (os.kill if to == "master" else os.killpg)(served.process.pid, number)
        assert served.process.wait(timeout=10) == 0
        assert not group_members(served.process.pid) and "Traceback" not in served.errors()
    finally:
        served.kill()


def test_signals_the_server_has_no_use_for_are_said_and_ignored(tmp_path):
    """SIGUSR1 and SIGUSR2 (a log rotation's, another server's upgrade) ended the master by the signal, its workers
    stopping on their own: the master says it ignores them, and neither it nor a worker stops."""
    served = ServeProcess(tmp_path / "data", "--workers", "2")
    try:
        workers = group_members(served.process.pid)
        os.killpg(served.process.pid, signal.SIGUSR1)
        os.kill(served.process.pid, signal.SIGUSR2)
        deadline = time.monotonic() + 10
        while served.errors().count("ignored; SIGTERM") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "SIGUSR1 ignored; SIGTERM, SIGINT (Ctrl-C), SIGHUP or SIGQUIT stop the server" in served.errors()
        assert "SIGUSR2 ignored" in served.errors()
        assert requests.get(f"{served.url}/__mock__/clock", timeout=10).status_code == 200
        assert served.process.poll() is None and group_members(served.process.pid) == workers
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=10) == 0 and "Traceback" not in served.errors()
    finally:
        served.kill()


def _interrupted(process: subprocess.Popen, name: str = "ivh-mock") -> None:
    """Ctrl-C `process` (as a terminal does); it must end with 130 and a word, not KeyboardInterrupt's traceback."""
    process.send_signal(signal.SIGINT)
    _, errors = process.communicate(timeout=20)
    assert process.returncode == 130 and "Traceback" not in errors, errors
    assert errors.strip().splitlines()[-1] == f"{name}: interrupted"


def _importing(pid: int) -> bool:
    """Whether the process is past Python's own start, importing the command's modules (orjson is loaded on the way;
    Ctrl-C in Python's own start is Python's: "Failed to import the site module")."""
    return "orjson" in Path(f"/proc/{pid}/maps").read_text()


@pytest.mark.parametrize("command", [[MOCK, "serve", "--port", "0"], [str(SCRIPT.with_name("ivh")), "timbres"]],
                         ids=["ivh-mock", "ivh"])
def test_ctrl_c_while_a_command_is_imported_ends_it_without_a_traceback(command, tmp_path):
    """A traceback, or (at orjson's import) a crash of the interpreter as it exited: SIGSEGV, 1 run in 15."""
    for _ in range(3):
        process = subprocess.Popen([*command, *(["--data-dir", str(tmp_path / "data")] if command[0] == MOCK else [])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            until(lambda: _importing(process.pid), seconds=20, pause=0)  # at orjson's import, or soon after
            _interrupted(process, Path(command[0]).name)
        finally:
            process.kill()
            process.wait()


_TWO_CTRL_C = """
import atexit, os, signal, sys, time, types
from ivh_mock import commands

def main():
    raise KeyboardInterrupt  # the first Ctrl-C, wherever the command was
sys.modules["interrupted_command"] = types.SimpleNamespace(main=main)

@atexit.register
def cleanup():  # what Python does as it exits (a scratch folder's removal), when the second one comes
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.2)
    print("cleaned up", file=sys.stderr)

sys.exit(commands._run("interrupted_command", "ivh-mock"))
"""


def test_a_second_ctrl_c_while_an_interrupted_command_ends_cuts_nothing_short():
    """`timeout -s INT` (or a terminal's group) sends two: the second came while the interpreter removed the
    memory store's scratch folder, and printed a KeyboardInterrupt's traceback (1 run in 6 of a busy port's wait)."""
    ended = subprocess.run([sys.executable, "-c", _TWO_CTRL_C], capture_output=True, text=True, timeout=60)
    assert ended.returncode == 130 and ended.stderr == "\nivh-mock: interrupted\ncleaned up\n", ended.stderr


_ENDS = """
import atexit, gc, sys, types
from ivh_mock import commands

kept = []
def main():
    kept.append(kept)  # garbage only a collection finds, as a command leaves it
    return 3
sys.modules["ending_command"] = types.SimpleNamespace(main=main)

@atexit.register
def said():
    print("frozen", gc.get_freeze_count() > 0, "left", len(gc.get_objects()), file=sys.stderr)

sys.exit(commands._run("ending_command", "ivh-mock"))
"""


def test_a_command_that_ended_is_not_walked_by_the_collector_as_python_exits():
    """Python's exit walked every object `ivh-mock serve` had made or imported, to collect garbage a moment before the
    process ended: 0.1 to 0.2 s of CPU at each stop. Frozen as the command returns, they are left alone; its exit
    status and what atexit runs are as before."""
    ended = subprocess.run([sys.executable, "-c", _ENDS], capture_output=True, text=True, timeout=60)
    assert ended.returncode == 3 and ended.stderr.startswith("frozen True left "), ended.stderr
    assert int(ended.stderr.split()[-1]) < 100  # the collector's generations are empty: all of it was frozen


def test_ctrl_c_while_the_store_is_opened_leaves_nothing_made(tmp_path):
    """A Redis store that never answers holds the start while its connect waits: Ctrl-C meanwhile had left a
    traceback and the data directory the start had made."""
    import socket

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        data = tmp_path / "new" / "data"
        process = subprocess.Popen([MOCK, "serve", "--port", "0", "--data-dir", str(data), "--store",
                                    f"redis://127.0.0.1:{silent.getsockname()[1]}/0"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            until(data.exists, seconds=20)
            _interrupted(process)
        finally:
            process.kill()
            process.wait()
    assert list(tmp_path.iterdir()) == []


def test_a_server_started_with_its_stdout_closed_serves_and_stops_cleanly(tmp_path):
    """Started with `>&-`, each worker's stop raised AttributeError (no stdout to flush) and ran on into the master's
    own code, with a traceback; and the next file opened took descriptor 1."""
    from ivh_mock.mock_server.serving.testing import free_port

    port, data = free_port(), tmp_path / "data"
    with _serving(["sh", "-c", 'exec "$0" "$@" >&-', MOCK, "serve", "--port", str(port), "--workers", "2",
                   "--data-dir", str(data)], port):
        assert json.loads((data / "ivh-mock.sqlite3.owner").read_text())["url"] == f"http://127.0.0.1:{port}"


def test_a_banner_nobody_reads_leaves_the_server_serving(tmp_path):
    """`ivh-mock serve | head -1` (a script taking the URL): the banner's next line met a closed pipe, and the start
    failed with BrokenPipeError's traceback, serving nobody."""
    from ivh_mock.mock_server.serving.testing import free_port

    port = free_port()
    with _serving([MOCK, "serve", "--port", str(port), "--data-dir", str(tmp_path / "data")], port,
                  stdout=subprocess.PIPE, close_stdout=True):
        pass


def test_a_stderr_nobody_can_write_to_ends_neither_the_master_nor_its_stop(tmp_path):
    """stderr on a full disk: the master's word on a worker that died (or on a stop that waits) raised OSError and
    ended the master, exit 1, its workers left to serve alone."""
    from ivh_mock.mock_server.serving.testing import free_port

    port = free_port()
    with open("/dev/full", "w") as full, _serving([MOCK, "serve", "--port", str(port), "--data-dir",
                                                   str(tmp_path / "data")], port, stderr=full) as process:
        (worker,) = set(group_members(process.pid)) - {process.pid}
        os.kill(worker, signal.SIGKILL)  # the master says so, and starts another
        until(lambda: len(set(group_members(process.pid)) - {process.pid, worker}) == 1)
        assert process.poll() is None
    assert not group_members(process.pid)


@contextlib.contextmanager
def _serving(command: list[str], port: int, stdout=None, close_stdout: bool = False, stderr=subprocess.PIPE):
    """Run `command` (a server on `port`, in a process group of its own), yield it once it answers its control API,
    then stop it with SIGTERM: it must exit 0 within 10 s and (when its stderr is read) without a traceback. With
    `close_stdout`, the read end of its stdout is closed before its banner comes."""
    process = subprocess.Popen(command, stdout=stdout, stderr=stderr, text=True, start_new_session=True)
    if close_stdout:
        process.stdout.close()

    def answering() -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{port}/__mock__/clock", timeout=2).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        until(answering, seconds=20)
        yield process
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
        assert process.stderr is None or "Traceback" not in process.stderr.read()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_profile_and_token_options(tmp_path):
    process, url, banner = start("--profile", "cn", "--default-accesstoken", "tok")
    try:
        assert "profile:     cn" in banner and "accesstoken 'tok'" in banner
    finally:
        process.kill()
        process.wait()


def test_strict_accounts_are_listed_in_the_banner(tmp_path):
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"accounts": [{"appkey": "team-a", "accesstoken": "t"}]}))
    process, url, banner = start("--accounts", str(accounts))
    try:
        assert "1 account(s) from the accounts file: team-a" in banner
        assert post(url, "getprogress", {"TaskId": "x"}, appkey="stranger")["Header"]["Code"] == 100005
    finally:
        process.kill()
        process.wait()


def test_drift_refuses_an_empty_path_and_writes_nothing(tmp_path, capsys, monkeypatch):
    """`drift ''` (an unset $VARIABLE) had read the folder it ran in; an empty --out or --pace-file meant the
    default."""
    monkeypatch.chdir(tmp_path)
    for args, says in (([""], "DIR is empty: give a path\n"),
                       (["rec", "--out", ""], "--out is empty: give a path, or leave the option out for the default"),
                       (["rec", "--pace-file", ""], "--pace-file is empty"),
                       (["rec", "--suite-report", "a.json", "--suite-report", ""], "--suite-report is empty")):
        assert cli.main(["drift", *args]) == 2, args
        captured = capsys.readouterr()
        assert captured.out == "" and captured.err.startswith("ivh-mock drift: ") and says in captured.err, args
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("args, message", [
    (["--accounts", "/nonexistent/accounts.yaml"], "cannot read accounts file"),
    (["--profile", "mars"], "invalid choice: 'mars'"),
])
def test_bad_options_exit_2_with_a_message_and_no_traceback(args, message):
    result = forked.mock_run(["serve", "--port", "0", *args], timeout=30)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_a_refused_start_says_why_in_one_line_and_leaves_nothing_made(tmp_path, capsys):
    """A host that does not resolve and a Redis URL with an option redis-py does not take ended the start in a
    traceback; a Redis database that is no number was read as database 0; an empty --store or --data-dir (an unset
    $VARIABLE) meant the default; a refused accounts file, --replay or store had left the data directory, a database
    and its owner file behind."""
    (tmp_path / "empty.yaml").write_text("")
    (tmp_path / "dd" / "ivh-mock.sqlite3").mkdir(parents=True)
    data = tmp_path / "new" / "data"
    for args, says in (
            (["--host", "nonexistent.invalid"], "cannot listen on nonexistent.invalid:0: "),
            # a byte that is not UTF-8 (`$'a\\xff'`): bind() had raised TypeError, a traceback
            (["--host", "a\udcff"], "--host 'a\\udcff' is not UTF-8 text: it holds the byte 0xff"),
            (["--accounts", str(tmp_path / "empty.yaml")], "accounts file"),
            (["--replay", str(tmp_path / "none")], "--replay"),
            (["--store", ""], "--store is empty: give one, or leave the option out for the default"),
            (["--data-dir", ""], "--data-dir is empty"),
            # an empty --accounts had served any appkey, under a banner saying so; an empty --replay replayed nothing
            (["--accounts", ""], "--accounts is empty: give one, or leave the option out for the default"),
            (["--replay", " "], "--replay is empty"),
            (["--store", "redis://127.0.0.1:1/abc"], "the Redis store's database 'abc' is not a number of 0 or more"),
            (["--store", "redis://127.0.0.1:1/-1"], "the Redis store's database '-1' is not a number of 0 or more"),
            # a URL that does not split had ended in a traceback, raised again as the refusal was written
            (["--store", "redis://:s3cret@[::1:1/0"], "the Redis store URL cannot be read: Invalid IPv6 URL"),
            (["--store", "redis://:s3cret@127.0.0.1:1/0?foo=bar"], "the Redis store URL's query cannot be used (foo)"),
            # a port that is no number, or out of range, had been blamed on the query: "query cannot be used ()"
            (["--store", "redis://:s3cret@127.0.0.1:notaport/0"], "the Redis store URL's port cannot be used: Port "
                                                                   "could not be cast to integer value as 'notaport'"),
            (["--store", "redis://127.0.0.1:99999/0?prefix=a"], "the Redis store URL's port cannot be used: Port out "
                                                                 "of range 0-65535"),
            # redis-py took one of them, the other unsaid (data went to database 3 under a banner saying /0)
            (["--store", "redis://127.0.0.1:1/0?db=3"], "the Redis store URL names its database twice, '0' in its "
                                                        "path and db= in its query"),
            (["--store", "redis://127.0.0.1:1/0?prefix=a&prefix=b"], "the Redis store URL's query names prefix more "
                                                                     "than once"),
            # a `#` in a password ended the URL there: the rest was a fragment nobody read
            (["--store", "redis://:s3cret#x@127.0.0.1:1/0"], "the Redis store URL holds a '#', which ends what "
                                                             "redis-py reads of it"),
            # an unset $VARIABLE: bound, it had listened on every address
            (["--host", ""], "--host is empty: give an address, or leave the option out for 127.0.0.1"),
            (["--store", f"sqlite:{tmp_path}"], f"ivh-mock: --store sqlite:{tmp_path}: it is a directory: give the "
                                                f"database file's path, such as sqlite:{tmp_path}/ivh-mock.sqlite3"),
            (["--data-dir", str(tmp_path / "dd")], "the store sqlite:"  # its database a folder, made above
             f"{tmp_path / 'dd' / 'ivh-mock.sqlite3'} (in the data directory) is a directory, where its database "
             "file goes: move it away, or give another --data-dir"),
            # a URL's form had been read as a path from the root: /x.db
            (["--store", "sqlite://x.db"], "--store sqlite://x.db: sqlite: takes a path, not a URL"),
            (["--store", "sqlite:///x.db"], "--store sqlite:///x.db: sqlite: takes a path, not a URL"),
            (["--store", "redis://127.0.0.1:1/0"], "ivh-mock: --store redis://127.0.0.1:1/0: ")):
        data_dir = [] if "--data-dir" in args else ["--data-dir", str(data)]
        assert cli.main(["serve", "--port", "0", *data_dir, *args]) == 2, args
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and error.startswith("ivh-mock: ") and says in error, (args, error)
        assert "s3cret" not in error and not (tmp_path / "new").exists(), (args, list(tmp_path.iterdir()))


@pytest.mark.parametrize("where", ["data", "data/media", "elsewhere"])
def test_a_data_directory_the_mock_may_not_write_refuses_the_start(where, tmp_path, monkeypatch, capsys):
    """A read-only data directory (or one of its folders, or a folder it links to) started the server, whose first
    upload then answered -101000 with a traceback in its log. The tests run as root, whom permissions do not stop:
    the folder's refusal is the operating system's answer to making a file in it, as a read-only mount or another
    user's folder gives."""
    (tmp_path / "data").mkdir()
    (tmp_path / "elsewhere").mkdir()
    if where == "elsewhere":  # the videos kept on another disk
        (tmp_path / "data" / "videos").symlink_to(tmp_path / "elsewhere")
    else:
        (tmp_path / "data" / "media").mkdir()
    refused = str(tmp_path / where)
    make = tempfile.mkstemp

    def mkstemp(*args, **kwargs):
        if os.path.realpath(kwargs.get("dir", "")) == os.path.realpath(refused):
            raise PermissionError(13, "Permission denied", os.path.join(refused, ".tmp-x"))
        return make(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(cli.Server, "run", lambda self: pytest.fail("the start was not refused"))  # not served for ever
    for store in ("memory", f"sqlite:{tmp_path / 'store.sqlite3'}"):
        assert cli.main(["serve", "--port", "0", "--data-dir", str(tmp_path / "data"), "--store", store]) == 2
        error = capsys.readouterr().err
        shown = refused if where != "elsewhere" else str(tmp_path / "data" / "videos")
        assert error == f"ivh-mock: --data-dir {tmp_path / 'data'}: cannot be used: Permission denied ({shown})\n"
    assert not (tmp_path / "store.sqlite3").exists()  # the refused start made no database


def test_a_data_directory_whose_folder_is_a_file_or_whose_owner_file_is_refused_says_so(tmp_path, monkeypatch, capsys):
    """A file where the data directory's `media` folder goes started the server, whose first submission failed
    (-101000, FileExistsError in its log); a store's `.owner` file the server may not open was said to be "a file,
    not a directory"."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "media").write_text("")
    monkeypatch.setattr(cli.Server, "run", lambda self: pytest.fail("the start was not refused"))
    assert cli.main(["serve", "--port", "0", "--data-dir", str(data), "--store", "memory"]) == 2
    assert capsys.readouterr().err == (f"ivh-mock: --data-dir {data}: cannot be used: {data / 'media'} is a file, not "
                                       f"a directory\n")
    (data / "media").unlink()
    owner = data / "ivh-mock.sqlite3.owner"
    owner.write_text("")
    from ivh_mock.mock_server.serving import owner as owner_module

    def open_(path, *args, **kwargs):  # a root-owned file, as the server's user is refused it
        if os.fspath(path) == str(owner):
            raise PermissionError(13, "Permission denied", str(owner))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(owner_module, "open", open_, raising=False)
    assert cli.main(["serve", "--port", "0", "--data-dir", str(data)]) == 2
    error = capsys.readouterr().err
    assert error.endswith(f": cannot be used: Permission denied ({owner})\n") and "not a directory" not in error, error


def test_a_refused_start_on_an_existing_store_removes_the_files_it_made_beside_it(tmp_path, monkeypatch, capsys):
    """A database the server may not write (another user's, read-only) was refused in one line, but the -wal and
    -shm files SQLite made opening it, and the store's .owner file, stayed beside it: made by the refused start, and
    owned by its user. What was there before the start stays."""
    data = tmp_path / "data"
    data.mkdir()
    database = data / "ivh-mock.sqlite3"
    sqlite3.connect(database).close()  # someone's store
    (data / "ivh-mock.sqlite3.lock").write_text("")  # left by that store's last server
    opened = []

    def unwritable(config, *args, **kwargs):  # as SQLite answers a user who may read the database but not write it
        connection = sqlite3.connect(database)
        connection.execute("PRAGMA journal_mode=WAL")  # -wal and -shm made, and kept while it is open
        opened.append(connection)
        raise sqlite3.OperationalError("attempt to write a readonly database")

    monkeypatch.setattr(cli, "create_app", unwritable)
    monkeypatch.setattr(cli.Server, "run", lambda self: pytest.fail("the start was not refused"))
    try:
        assert cli.main(["serve", "--port", "0", "--data-dir", str(data)]) == 2
        assert "attempt to write a readonly database" in capsys.readouterr().err
        # looked at while SQLite still holds them, as it does when it may not remove them (another user's folder)
        assert sorted(path.name for path in data.iterdir()) == ["ivh-mock.sqlite3", "ivh-mock.sqlite3.lock"]
    finally:
        for connection in opened:
            connection.close()


def test_a_refused_start_never_removes_what_another_server_made_meanwhile(tmp_path):
    """Two servers started at once on a new data directory: the one refused (its store held by the other) removes
    only the folders that are still empty, never the other's files; a database it made itself goes, files and all."""
    top = tmp_path / "new"
    (top / "data" / "media").mkdir(parents=True)
    (top / "data" / "videos").mkdir()
    (top / "data" / "ivh-mock.sqlite3").write_text("the other server's")
    cli._unmake([str(top)], [])
    assert sorted(p.name for p in top.rglob("*")) == ["data", "ivh-mock.sqlite3"]
    mine = tmp_path / "mine"
    mine.mkdir()
    made = cli._store_files_missing(str(mine / "s.sqlite3"))  # as the start found them: none there yet
    for suffix in ("", "-wal", "-shm", ".owner"):
        (mine / f"s.sqlite3{suffix}").write_text("")
    cli._unmake([str(mine)], made)
    assert not mine.exists()


@pytest.mark.parametrize("command", [["serve"], ["proxy", "--record", "recordings"]])
@pytest.mark.parametrize("port", ["65536", "99999", "-1", "http"])
def test_a_port_outside_0_to_65535_is_a_usage_error(command, port, capsys):
    with pytest.raises(SystemExit) as stopped:  # else bind() refuses it with a traceback, once the app is built
        cli.build_parser().parse_args([*command, "--port", port])
    assert stopped.value.code == 2
    assert f"error: argument --port: '{port}' is not a port number (0 to 65535)\n" in capsys.readouterr().err
    for edge in ("0", "65535"):
        assert cli.build_parser().parse_args([*command, "--port", edge]).port == int(edge)


@pytest.mark.parametrize("command, option", [(["serve"], "--public-url"), (["proxy", "--record", "r"], "--upstream"),
                                             (["proxy", "--record", "r"], "--public-url")])
@pytest.mark.parametrize("url", ["http://host:70000", "ftp://host", "http://", "host:8080", "http://[::1",
                                 "http://127.0.0.1:0"])  # port 0 had been taken, and urllib3 connected to port 80
def test_a_url_option_must_be_http_with_a_host_and_a_port(command, option, url, capsys):
    """`--public-url ftp://x` and a port past 65535 were taken, and broke every media URL the mock hands out."""
    with pytest.raises(SystemExit) as stopped:
        cli.build_parser().parse_args([*command, option, url])
    assert stopped.value.code == 2
    assert (f"error: argument {option}: {url!r} is not an http or https URL with a host (and a port from 1 to 65535, "
            f"if any)\n") in capsys.readouterr().err
    assert getattr(cli.build_parser().parse_args([*command, option, "https://mock.example:8443/base"]),
                   option.removeprefix("--").replace("-", "_")) == "https://mock.example:8443/base"


@pytest.mark.parametrize("url, says", [
    ("http://127.0.0.1:8080/%zz", "holds in its path a '%' that starts no percent-escape (%XX)"),
    ("http://127.0.0.1:8080/base%4", "holds in its path a '%' that starts no percent-escape (%XX)"),
    ("http://127.0.0.1:8080/ü", "holds in its path 'ü', which a URL percent-encodes"),
])
def test_a_public_url_whose_path_is_no_urls_is_a_usage_error(url, says, capsys):
    """`--public-url http://h/%zz` or `.../ü` started, and put its path as written into every MediaUrl, SubtitlesUrl
    and asset URL the mock answered with."""
    with pytest.raises(SystemExit) as stopped:
        cli.build_parser().parse_args(["serve", "--public-url", url])
    assert stopped.value.code == 2
    assert f"error: argument --public-url: {url!r} {says}\n" in capsys.readouterr().err
    escaped = "http://127.0.0.1:8080/b%C3%BCcher%2Fx"  # percent-escapes are a path's own
    assert cli.build_parser().parse_args(["serve", "--public-url", escaped]).public_url == escaped


@pytest.mark.parametrize("token", ["tökén", "", "two words", " padded", "tab\there", "\u00a0nbsp"])
def test_a_control_token_other_than_printable_ascii_without_spaces_is_a_usage_error(token, capsys):
    """curl sends a header in UTF-8 and a browser's fetch refuses anything past Latin-1, so such a token could not
    be sent by every client; an empty one would match a request that sends none."""
    with pytest.raises(SystemExit) as stopped:
        cli.build_parser().parse_args(["serve", "--control-token", token])
    assert stopped.value.code == 2
    assert (f"error: argument --control-token: {token!r} is not printable ASCII without spaces (at least one "
            "character)\n") in capsys.readouterr().err


@pytest.mark.parametrize("token", ["", "two words", "tökén", 123])
def test_a_server_built_in_code_refuses_the_control_tokens_the_cli_refuses(token):
    """create_app, MockServer and the fixtures take a Config: an empty token there had let in requests with none."""
    with pytest.raises(ValueError, match=re.escape(f"control_token: {token!r} is not printable ASCII without spaces")):
        Config(control_token=token)
    assert Config(control_token="s3cret!").control_token == "s3cret!"


def test_every_printable_ascii_character_may_be_in_the_control_token():
    token = "".join(chr(code) for code in range(0x21, 0x7F))
    assert cli.build_parser().parse_args(["serve", "--control-token", token]).control_token == token
    line = cli.describe_clock({"real": False, "offset": 60, "now": 0, "frozen": True}, "http://h:1", token)
    assert f"X-Mock-Token: {token}" in shlex.split(line.split("back to real time: ", 1)[1])  # the command as printed


@pytest.mark.parametrize("real", [False, True])
def test_a_clock_held_in_the_store_is_said_at_the_start_with_a_command_the_hold_lets_through(real):
    """Restarted with a hold kept in its store (D89), the banner said only "back to real time: curl ... {"real":
    true}", which the hold refused (409)."""
    from ivh_mock.mock_server import VirtualClock, create_app
    from ivh_mock.mock_server.routes.control import clock_view

    clock = VirtualClock(frozen=not real)
    app = create_app({"background": False}, clock=clock)
    control = app.test_client()
    control.post("/__mock__/clock", json={"by": "it's a run", "hold": 300, **({} if real else {"advance": 3600})})
    line = cli.describe_clock(clock_view(clock), "http://h:1", None)
    assert "held by \"it's a run\" until 20" in line and line.count("as kept in the store") == 1
    command = shlex.split(line.split("let go: " if real else "back to real time: ", 1)[1])
    answer = control.post("/__mock__/clock", json=json.loads(command[-1]))  # as curl would send it
    assert answer.status_code == 200 and "held" not in answer.json and abs(answer.json["offset"]) < 5  # back at it


def test_a_busy_port_is_reported(server):
    url, _, _ = server
    port = url.rsplit(":", 1)[1]
    started = time.monotonic()
    result = forked.mock_run(["serve", "--port", port], timeout=30)
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr
    # after giving the port time to be freed, as the workers of a killed master free it (D55), and saying so: the
    # wait had been silent
    assert time.monotonic() - started >= cli.PORT_WAIT_SECONDS
    waiting = f"127.0.0.1:{port} is in use; waiting up to 5 s for it to be freed"
    assert result.stderr.count(waiting) == 1 and result.stderr.index(waiting) < result.stderr.index("cannot listen")


def test_a_refused_proxy_start_makes_nothing_and_names_the_options_and_no_credential(tmp_path, capsys, monkeypatch):
    """A port in use had left the --record folder behind; `--max-total-mb 1 --max-file-mb 2` was refused in the
    Recorder's own field names, blamed on --record; and a usage error quoted the upstream's password and token."""
    import socket

    monkeypatch.setattr(cli, "PORT_WAIT_SECONDS", 0.2)  # no killed master frees this port

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        record = tmp_path / "new" / "rec"
        assert cli.main(["proxy", "--record", str(record), "--port", str(busy.getsockname()[1])]) == 2
    assert "cannot listen on 127.0.0.1:" in capsys.readouterr().err and not (tmp_path / "new").exists()
    sizes = ["--max-total-mb", "1", "--max-file-mb", "2"]
    assert cli.main(["proxy", "--record", str(record), "--port", "0", *sizes]) == 2
    assert capsys.readouterr().err == "ivh-mock: --max-total-mb (1) must be at least --max-file-mb (2)\n"
    assert not (tmp_path / "new").exists()
    # an unset $VARIABLE: it had recorded into the current folder under a banner naming no directory (said before
    # the port is looked at: a busy one, so that a start that took it would end, not serve)
    monkeypatch.chdir(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert cli.main(["proxy", "--record", "", "--port", str(busy.getsockname()[1])]) == 2
        assert capsys.readouterr().err == "ivh-mock: --record is empty: give the directory of the recordings\n"
        # a folder that exists but may not be written into (/proc/self, even for root): said only as the first
        # exchange went unrecorded, under a banner saying it recorded
        monkeypatch.setattr(cli, "_check_port", lambda host, port: None)  # the recording is looked at after it
        assert cli.main(["proxy", "--record", "/proc/self", "--port", str(busy.getsockname()[1])]) == 2
    assert "ivh-mock: --record /proc/self: " in (err := capsys.readouterr().err) and "cannot be written into" in err
    with pytest.raises(SystemExit):
        cli.main(["proxy", "--upstream", "http://user:PW1@127.0.0.1:9/base?token=TOK2"])
    err = capsys.readouterr().err
    assert "'http://127.0.0.1:9/base' has a query" in err and "PW1" not in err and "TOK2" not in err


def test_python_dash_m_runs_the_same_cli():
    result = subprocess.run([sys.executable, "-m", "ivh_mock.mock_server", "serve", "--help"], capture_output=True,
                            text=True, timeout=30)
    assert result.returncode == 0
    for option in ("--host", "--port", "--profile", "--accounts", "--default-accesstoken"):
        assert option in result.stdout


def test_beyond_loopback_the_control_api_gets_a_generated_token():
    process, url, banner = start("--host", "0.0.0.0")
    try:
        token = re.search(r"control API: \S+ token '([^']+)'", banner).group(1)
        port = url.rsplit(":", 1)[1]
        control = f"http://127.0.0.1:{port}/__mock__/clock"
        assert requests.get(control, timeout=10).status_code == 401
        assert requests.get(control, headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    finally:
        process.kill()
        process.wait()


def test_on_loopback_the_control_api_is_open(server):
    url, banner, _ = server
    assert "control API: " in banner and "open (loopback only)" in banner
    assert requests.get(f"{url}/__mock__/clock", timeout=10).status_code == 200


def test_timing_options_are_offered():
    result = subprocess.run([str(SCRIPT), "serve", "--help"], capture_output=True, text=True, timeout=30)
    for option in ("--queue-seconds", "--render-speed", "--render-startup", "--public-url", "--control-token"):
        assert option in result.stdout


def test_version_is_the_installed_distributions():
    from importlib.metadata import version

    result = subprocess.run([str(SCRIPT), "--version"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0 and result.stdout.strip() == f"ivh-mock {version('ivh-mock')}"


def test_the_banner_shows_the_data_directory_absolute_and_the_clock_in_real_time(tmp_path):
    with ServeProcess("relative-data", cwd=tmp_path) as served:
        assert f"data:        {tmp_path / 'relative-data'}\n" in served.banner
        assert f"sqlite:{tmp_path / 'relative-data' / 'ivh-mock.sqlite3'}" in served.banner
        assert "clock:       real time\n" in served.banner


def test_a_moved_clock_survives_a_restart_and_the_banner_says_so_and_how_to_return(tmp_path):
    with ServeProcess(tmp_path / "data") as served:
        requests.post(f"{served.url}/__mock__/clock", json={"advance": 21_065}, timeout=10)
    with ServeProcess(tmp_path / "data") as served:
        line = next(line for line in served.banner.splitlines() if "clock:" in line)
        assert "5 h 51 min ahead of real time" in line and "frozen" not in line
        assert f"curl -X POST {served.url}/__mock__/clock" in line and """'{"real": true}'""" in line
        command = line.split("back to real time: ", 1)[1]
        subprocess.run(command, shell=True, check=True, capture_output=True, timeout=30)  # the command as printed
        assert requests.get(f"{served.url}/__mock__/clock", timeout=10).json()["real"] is True
    with ServeProcess(tmp_path / "data") as served:
        assert "clock:       real time\n" in served.banner


def test_a_frozen_clock_is_named_in_the_banner(tmp_path):
    with ServeProcess(tmp_path / "data") as served:
        requests.post(f"{served.url}/__mock__/clock", json={"set": 1_000_000_000, "frozen": True}, timeout=10)
    with ServeProcess(tmp_path / "data") as served:
        assert "clock:       frozen at 2001-09-09T01:46:40+00:00 (" in served.banner
        assert "behind real time)" in served.banner


def test_a_clock_kept_past_the_year_9999_still_lets_the_server_start(tmp_path):
    """A running clock set close to the latest time it takes passes it; the banner's date of it then stopped the next
    start (`ivh-mock: year 10000 is out of range`, exit 2)."""
    from ivh_mock.mock_server.store import open_store

    (tmp_path / "data").mkdir()
    store = open_store(f"sqlite:{tmp_path / 'data' / 'ivh-mock.sqlite3'}")
    store.update_clock_state(lambda _: {"base": 253_402_300_805.0, "anchor": 0.0, "frozen": True})
    store.close()
    with ServeProcess(tmp_path / "data") as served:
        assert "clock:       frozen at a time past the year 9999 (" in served.banner
        back = requests.post(f"{served.url}/__mock__/clock", json={"real": True}, timeout=10)
        assert back.status_code == 200 and back.json()["real"] is True


def test_a_store_another_program_keeps_locked_stops_the_start_with_one_line(tmp_path, monkeypatch, capsys):
    from ivh_mock.mock_server.store import open_store
    from ivh_mock.mock_server.store import sqlite as sqlite_store

    database = tmp_path / "data" / "ivh-mock.sqlite3"
    open_store(f"sqlite:{database}").close()
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(sqlite_store, "BUSY_SECONDS", 0.3)
    try:
        assert cli.main(["serve", "--port", "0", "--data-dir", str(tmp_path / "data")]) == 2
    finally:
        holder.execute("ROLLBACK")
    assert capsys.readouterr().err == ("ivh-mock: the SQLite store ivh-mock.sqlite3 is locked by another program: "
                                       "nothing could be written for 0.3 s\n")


@pytest.mark.parametrize("argv, says", [
    (["serve", "--pace", "{word}"], "--pace {word}: holds no pace, a mapping of queue_seconds, render_speed, "
                                    "render_startup_seconds (as ivh-mock drift writes)"),  # was: 'hello' no preset
    (["serve", "--data-dir", "{word}"], "--data-dir {word}: it is a file, not a directory"),  # was: [Errno 17]
    (["proxy", "--record", "{word}"], "--record {word}: it is a file, not a directory"),
    (["serve", "--store", "bogus:x", "--data-dir", "{word}.d"], "unknown store 'bogus:x': use memory, sqlite:PATH, redis://HOST:PORT/DB or "
                                      "unix:///PATH?db=N"),
    # each had been the system's words alone, naming no setting: "[Errno 20] Not a directory: '.../word.txt/sub'"
    (["serve", "--data-dir", "{word}/sub"], "--data-dir {word}/sub: cannot be used: {word} is a file, not a directory"),
    (["serve", "--store", "sqlite:{word}/x.db", "--data-dir", "{word}.d"],
     "--store sqlite:{word}/x.db: cannot be used: {word} is a file, not a directory"),
    # a file beside the database that cannot be made (its owner's) had named neither the setting nor the database
    (["serve", "--store", "sqlite:/proc/x.db", "--data-dir", "{word}.d"],
     "--store sqlite:/proc/x.db: cannot be used: No such file or directory (/proc/x.db.owner)"),
])
def test_a_file_where_a_directory_or_a_pace_is_due_is_named_in_one_line(argv, says, tmp_path, capsys):
    word = tmp_path / "word.txt"
    word.write_text("hello\n")
    assert cli.main([arg.format(word=word) for arg in argv] + ["--port", "0"]) == 2
    assert capsys.readouterr().err == f"ivh-mock: {says.format(word=word)}\n"


def test_a_start_that_cannot_make_its_store_names_the_setting(tmp_path, monkeypatch, capsys):
    """An unusable XDG_STATE_HOME, or a Redis that does not answer, was said in the system's or redis-py's words
    alone (`[Errno 2] No such file or directory: '/a'`, `Error 111 connecting to ...`)."""
    from ivh_mock.mock_server.serving.testing import free_port

    (tmp_path / "state").write_text("")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert cli.main(["serve", "--port", "0"]) == 2
    assert capsys.readouterr().err == (f"ivh-mock: the data directory {tmp_path}/state/ivh-mock ($XDG_STATE_HOME/"
                                       f"ivh-mock, else ~/.local/state/ivh-mock): cannot be used: {tmp_path}/state is "
                                       f"a file, not a directory\n")
    store = f"redis://user:pw@127.0.0.1:{free_port()}/0?password=sekrit"
    assert cli.main(["serve", "--port", "0", "--store", store, "--data-dir", str(tmp_path / "data")]) == 2
    said = capsys.readouterr().err  # a password before the host or in the query (redis-py takes both) is masked
    shown = store.replace(":pw@", ":***@").replace("=sekrit", "=***")
    assert said.startswith(f"ivh-mock: --store {shown}: ") and "pw" not in said and "sekrit" not in said, said
    assert "onnect" in said and said.count("\n") == 1, said  # redis-py's reason: Connection refused
    assert not (tmp_path / "data").exists()  # a refused start leaves nothing
    socket_store = f"unix://{tmp_path}/no-redis.sock?password=sekrit&db=0"  # shown as written: it had lost its //
    assert cli.main(["serve", "--port", "0", "--store", socket_store, "--data-dir", str(tmp_path / "data")]) == 2
    said = capsys.readouterr().err
    assert said.startswith(f"ivh-mock: --store unix://{tmp_path}/no-redis.sock?password=***&db=0: "), said


@pytest.mark.parametrize("argv", [["serve", "--callback-timeout", "0"], ["proxy", "--record", "r", "--timeout", "0"],
                                  ["proxy", "--record", "r", "--connect-timeout", "0"]])
def test_a_timeout_of_no_time_is_a_usage_error(argv, capsys):
    """Every callback or upstream call would have timed out at once."""
    with pytest.raises(SystemExit) as stopped:
        cli.build_parser().parse_args(argv)
    assert stopped.value.code == 2
    assert f"argument {argv[-2]}: '0' is not a number of seconds above 0 and at most 86400" in capsys.readouterr().err


@pytest.mark.parametrize("option, value, says", [
    # argparse had named its own functions ("invalid _seconds value: 'abc'")
    ("--queue-seconds", "abc", "'abc' is not a number of seconds from 0 to 86400"),
    ("--workers", "1.5", "'1.5' is not a whole number from 1 to 256"),
    ("--callback-timeout", "-1", "'-1' is not a number of seconds above 0 and at most 86400"),
    # each had been taken: an empty token, a host no request names, a URL no client can call
    ("--default-accesstoken", "", "is 0 characters long; it must have at least 1"),
    # `$'a\\xff'`: taken, and then every signed request failed with 500
    ("--default-accesstoken", "a\udcff", "is not UTF-8 text: it holds the byte 0xff"),
    ("--allow-host", "", "'' is not a host name, an IP address or *"),
    ("--allow-host", "bad host", "'bad host' is not a host name, an IP address or *"),
    ("--public-url", "http://a b", "'http://a b' holds a space or a control character"),
    # each had been written into every URL the mock made from it
    ("--public-url", "http://user:pw@127.0.0.1:1/", "'http://127.0.0.1:1/' holds user info (name:password@)"),
    ("--public-url", 'http://h/<script>"x',
     "'http://h/<script>\"x' holds in its path '<', which a URL percent-encodes"),
])
def test_a_bad_option_value_is_named_with_its_rule(option, value, says, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.build_parser().parse_args(["serve", option, value])
    assert stopped.value.code == 2 and f"argument {option}: {says}" in capsys.readouterr().err
    assert cli.build_parser().parse_args(["serve", "--allow-host", "*", "--allow-host", "api_1.test"]).allow_host == [
        "*", "api_1.test"]


def test_a_second_server_on_one_sqlite_store_refuses_naming_the_first(tmp_path):
    with ServeProcess(tmp_path / "data") as first:
        second = forked.mock_run(["serve", "--port", "0", "--data-dir", str(tmp_path / "data")], timeout=30)
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert f"in use by another ivh-mock (pid {first.process.pid}, listening on {first.url})" in second.stderr
        store = f"sqlite:{tmp_path / 'data' / 'ivh-mock.sqlite3'}"  # the same store from another data directory
        third = forked.mock_run(["serve", "--port", "0", "--data-dir", str(tmp_path / "other"), "--store", store],
                                timeout=30)
        assert third.returncode == 2 and f"pid {first.process.pid}" in third.stderr
        (tmp_path / "link.sqlite3").symlink_to(tmp_path / "data" / "ivh-mock.sqlite3")  # had started, the store shared
        fourth = forked.mock_run(["serve", "--port", "0", "--data-dir", str(tmp_path / "other"), "--store",
                                  f"sqlite:{tmp_path / 'link.sqlite3'}"], timeout=30)
        assert fourth.returncode == 2 and f"pid {first.process.pid}" in fourth.stderr
        # on its port too (a second `make serve`): it had waited 5 s for the port, then said "Address already in
        # use", the server holding both unnamed
        port = urlsplit(first.url).port
        started = time.monotonic()
        fifth = forked.mock_run(["serve", "--port", str(port), "--data-dir", str(tmp_path / "data")], timeout=30)
        assert fifth.returncode == 2 and f"pid {first.process.pid}, listening on {first.url}" in fifth.stderr
        assert "waiting" not in fifth.stderr and time.monotonic() - started < 4, fifth.stderr
        first.kill()  # dies without cleaning up: the lock goes with it
    with ServeProcess(tmp_path / "data") as after:
        assert requests.get(f"{after.url}/__mock__/clock", timeout=10).status_code == 200


@pytest.mark.parametrize("store", [(), ("--store", "memory", "--workers", "1")], ids=["sqlite", "memory"])
def test_a_server_started_just_after_its_master_was_killed_waits_for_the_orphaned_workers(tmp_path, store):
    """The workers of a master killed alone hold the store's lock and the port until they notice and stop: a server
    started at once on the same port (a supervisor's restart) refused, naming the dead master, or "Address already in
    use" (any store), and only one started seconds later came up."""
    from ivh_mock.mock_server.serving.testing import CallbackReceiver, free_port

    port = str(free_port())
    first = ServeProcess(tmp_path / "data", "--workers", "2", "--port", port, *store)
    receiver = CallbackReceiver(mode="slow", delay=6)
    try:
        # a callback under way when the master dies: the workers end it before they exit, but free the port at once
        requests.post(f"{first.url}/__mock__/clock", json={"frozen": True}, timeout=10)
        post(first.url, "phototovideonotrain", {**TEXT_PAYLOAD, "CallbackUrl": receiver.url})
        requests.post(f"{first.url}/__mock__/clock", json={"advance": 60}, timeout=10)
        time.sleep(0.5)
        os.kill(first.process.pid, signal.SIGKILL)  # the master alone, not reaped yet (a zombie) when the next starts
        with ServeProcess(tmp_path / "data", "--port", port, *store) as after:
            assert after.url == first.url
            assert requests.get(f"{after.url}/__mock__/clock", timeout=10).status_code == 200
    finally:
        first.kill()
        receiver.close()


def test_a_restart_comes_up_while_the_stopping_server_ends_a_callback(tmp_path):
    """The master kept its copy of the listening socket until its workers had ended what was under way: a restart at
    once on the same port waited out the stop (up to its grace) and was refused after 5 s, and new connections were
    left in the backlog, to be reset at the end."""
    import socket

    from ivh_mock.mock_server.serving.testing import CallbackReceiver, free_port

    port = str(free_port())
    receiver = CallbackReceiver(mode="slow", delay=4)
    first = ServeProcess(tmp_path / "a", "--port", port, "--store", "memory")
    try:
        requests.post(f"{first.url}/__mock__/clock", json={"frozen": True}, timeout=10)
        post(first.url, "phototovideonotrain", {**TEXT_PAYLOAD, "CallbackUrl": receiver.url})
        requests.post(f"{first.url}/__mock__/clock", json={"advance": 60}, timeout=10)
        time.sleep(0.5)  # the callback is under way
        first.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
        with ServeProcess(tmp_path / "b", "--port", port, "--store", "memory") as second:
            assert first.process.poll() is None  # still ending its callback
            assert requests.get(f"{second.url}/__mock__/clock", timeout=10).status_code == 200
        assert first.process.wait(timeout=15) == 0 and len(receiver.wait_for(1)) == 1
    finally:
        first.kill()
        receiver.close()


def test_a_second_stop_signal_ends_the_stop_at_once_with_its_workers(tmp_path):
    """A second SIGTERM (or Ctrl-C) during a stop that waits for a callback killed the master at once, and its workers
    went on alone (they wrote to the terminal after the prompt came back): now the master kills them and says so."""
    from ivh_mock.mock_server.serving.testing import CallbackReceiver

    receiver = CallbackReceiver(mode="slow", delay=8)
    served = ServeProcess(tmp_path / "data", "--store", "memory")
    try:
        requests.post(f"{served.url}/__mock__/clock", json={"frozen": True}, timeout=10)
        post(served.url, "phototovideonotrain", {**TEXT_PAYLOAD, "CallbackUrl": receiver.url})
        requests.post(f"{served.url}/__mock__/clock", json={"advance": 60}, timeout=10)
        time.sleep(0.5)  # the callback is under way, for 8 s
        served.process.send_signal(signal.SIGTERM)
        time.sleep(1.5)
        assert served.process.poll() is None  # the first waits for it, and says so
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(timeout=4) == 0
        assert "stopped at once, 1 worker(s) killed" in served.errors()
        assert "stopping: what is under way ends first: a request within 10 s, a callback or an upload within" \
            in served.errors()
        with pytest.raises(ProcessLookupError):  # nothing of its group is left
            os.killpg(served.process.pid, 0)
    finally:
        served.kill()
        receiver.close()


def test_a_stop_answers_what_its_connections_hold_first(tmp_path):
    """A SIGTERM cut a file's answer midway (7 MB of 30 MB) and cancelled the requests a worker had read and not yet
    run (3 of 60 pipelined getprogress calls were answered when the stop came at once): the loop that sends them
    stopped with the worker. (Here the pipelined requests are read before the stop: all ten are to be answered.)"""
    import socket

    served = ServeProcess(tmp_path / "data", "--store", "memory")
    try:
        host, port = served.url.removeprefix("http://").rsplit(":", 1)
        data = os.urandom(8_000_000)
        path = requests.post(f"{served.url}/__mock__/assets?name=big.bin", data=data,
                             timeout=60).json()["Url"].split(port, 1)[1]
        download = socket.create_connection((host, int(port)), timeout=15)
        download.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        head = download.recv(4096)  # the answer is under way
        query = signed_query("pipelined", "mock-accesstoken", int(time.time()))
        body = b'{"Header": {}, "Payload": {"TaskId": "x"}}'
        one = (f"POST {PATHS['getprogress']}?{query} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
               f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        pipelined = socket.create_connection((host, int(port)), timeout=15)
        pipelined.sendall(one * 10)
        time.sleep(0.05)  # read by the worker, not yet all answered
        served.process.send_signal(signal.SIGTERM)
        answers = b""
        while chunk := pipelined.recv(65536):
            answers += chunk
        received = len(head)
        while chunk := download.recv(65536):
            received += len(chunk)
            time.sleep(0.001)  # a client slower than the stop
        assert answers.count(b"HTTP/1.1 200 ") == 10
        assert received - len(head.partition(b"\r\n\r\n")[0]) - 4 == len(data)
        assert served.process.wait(timeout=15) == 0
    finally:
        served.kill()


def test_a_stop_waits_for_a_callback_as_long_as_its_timeout(tmp_path, monkeypatch):
    """With --callback-timeout 15, a SIGTERM killed the workers at the master's 10 s while a delivery could still
    succeed: unrecorded, it was sent again after the restart. The stop's grace covers a callback's timeout and a
    task's uploads."""
    from ivh_mock.mock_server.serving import server

    given = {}

    class Recorded:
        def __init__(self, *args, **options):
            given.update(options)

        def run(self):
            return 0

    monkeypatch.setattr(cli, "Server", Recorded)
    # a task's two uploads take at most 15 s each: a stop covers them too (a 14 s PUT had been cut at 10 s, and the
    # video sent again 95 s after the restart)
    for timeout, grace in (("5", 35), ("40", 45)):
        assert cli.main(["serve", "--port", "0", "--data-dir", str(tmp_path), "--callback-timeout", timeout]) == 0
        assert given["grace_seconds"] == grace
    assert server.Server(lambda: None, "127.0.0.1:0", grace_seconds=3)._grace_seconds == server.GRACE_SECONDS
    # the master gives a worker that grace, and no more: one that takes 1 s to stop ends by itself within 10 s (4 s
    # had once not been enough for it on a busy 2-core machine: the master waits the less the sooner it ends)
    for grace, ends_by_itself in ((10.0, True), (0.3, False)):
        marker = tmp_path / f"ended-{grace}"
        worker = subprocess.Popen([sys.executable, "-c", _STOPS_IN_A_SECOND, str(marker)], stdout=subprocess.PIPE)
        assert worker.stdout.readline() == b"ready\n"  # its SIGTERM handler is set
        server._stop_all({worker.pid: (time.monotonic(), 0)}, grace)
        worker.stdout.close()
        worker.poll()  # reaped by _stop_all: the Popen learns it is gone
        assert marker.exists() == ends_by_itself, grace


def test_a_stop_waits_on_its_workers_ends_not_on_a_clock(monkeypatch):
    """The master looked for its stopped workers every 50 ms, sleeping in between: a worker that ended in 9 ms was
    seen 50 ms later, and the master slept once more with none left. A worker's end (SIGCHLD, through the signals'
    wakeup pipe) ends the wait, and with no worker left there is none."""
    from types import SimpleNamespace

    from ivh_mock.mock_server.serving import server

    waits, reaped = [], []  # each wait's end: woken or not; how many waits came before the worker was reaped

    def select(read, write, error, timeout):  # a wait the clock would end only after 10 s, not 50 ms
        ready = __import__("select").select(read, write, error, 10)
        waits.append(bool(ready[0]))
        return ready

    class Os:  # the os module, noting when the worker is reaped
        def __getattr__(self, name):
            return getattr(os, name)

        def waitpid(self, pid, options):
            done = os.waitpid(pid, options)
            if done[0]:
                reaped.append(len(waits))
            return done

    monkeypatch.setattr(server, "select", SimpleNamespace(select=select))
    monkeypatch.setattr(server, "os", Os())
    monkeypatch.setattr(server.time, "sleep", lambda seconds: pytest.fail(f"slept {seconds} s"))
    worker = subprocess.Popen([sys.executable, "-c", "import time; print('ready', flush=True); time.sleep(60)"],
                              stdout=subprocess.PIPE)
    assert worker.stdout.readline() == b"ready\n"
    woken, wake = os.pipe()
    os.set_blocking(wake, False)
    previous = signal.set_wakeup_fd(wake), signal.signal(signal.SIGCHLD, lambda signum, frame: None)
    began = time.monotonic()
    try:
        server._stop_all({worker.pid: (time.monotonic(), 0)}, 30.0, woken=woken)
    finally:
        signal.set_wakeup_fd(previous[0])
        signal.signal(signal.SIGCHLD, previous[1])
        os.close(woken)
        os.close(wake)
        worker.stdout.close()
        worker.poll()  # reaped by _stop_all
    # every wait was ended by the worker's end, not by the clock, and none came once it was reaped
    assert reaped == [len(waits)] and all(waits), (reaped, waits)
    assert time.monotonic() - began < 10


_STOPS_IN_A_SECOND = """
import os, pathlib, signal, sys, time
def stop(*_):
    time.sleep(1)
    pathlib.Path(sys.argv[1]).touch()
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
print("ready", flush=True)
time.sleep(30)
"""


def test_several_workers_of_one_server_share_the_store_they_lock(tmp_path):
    with ServeProcess(tmp_path / "data", "--workers", "2") as served:
        assert "2 worker(s)" in served.banner
        for _ in range(6):  # whichever worker answers
            assert post(served.url, "getprogress", {"TaskId": "0" * 32})["Header"]["Code"] == 110006


def test_an_empty_home_is_not_taken_for_the_root_folder(monkeypatch):
    """HOME= (an empty value) had put the default data directory at /.local/state/ivh-mock."""
    import pwd

    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    for home in ("", "relative"):
        monkeypatch.setenv("HOME", home)
        assert cli.default_data_dir() == os.path.join(pwd.getpwuid(os.getuid()).pw_dir, ".local", "state", "ivh-mock")
    monkeypatch.setenv("HOME", "/somewhere")
    assert cli.default_data_dir() == "/somewhere/.local/state/ivh-mock"


def test_the_default_data_directory_is_the_users_state_directory(tmp_path):
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir()
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_STATE_HOME", None)
    with ServeProcess(None, cwd=work, env=env) as served:
        assert f"data:        {home / '.local' / 'state' / 'ivh-mock'}\n" in served.banner
    with ServeProcess(None, cwd=work, env={**env, "XDG_STATE_HOME": str(tmp_path / "state")}) as served:
        assert f"data:        {tmp_path / 'state' / 'ivh-mock'}\n" in served.banner
    assert list(work.iterdir()) == []  # nothing is left in the folder it was started from
    assert (tmp_path / "state" / "ivh-mock" / "ivh-mock.sqlite3").exists()
    # the memory store keeps nothing, its files neither: a video and an upload had stayed in the state directory after
    # every run, which no later run's sweep knew of
    memory_env = {**env, "XDG_STATE_HOME": str(tmp_path / "memory-state"), "TMPDIR": str(tmp_path / "tmp")}
    (tmp_path / "tmp").mkdir()
    served = ServeProcess(None, "--store", "memory", cwd=work, env=memory_env)
    try:
        assert "data:        a temporary folder, removed at the stop" in served.banner
        assert requests.post(f"{served.url}/__mock__/assets?name=a.txt", data=b"kept?", timeout=10).status_code == 201
        assert [path.name for path in (tmp_path / "tmp").iterdir()] != []  # the server's folder, while it serves
        assert served.stop() == 0
    finally:
        served.kill()
    assert not (tmp_path / "memory-state").exists() and list((tmp_path / "tmp").iterdir()) == []


def test_a_stop_signal_that_comes_once_the_workers_have_ended_cuts_no_cleanup_short(tmp_path):
    """Ctrl-C, then SIGTERM to the group a moment later: a SIGTERM that came once the workers had ended killed the
    master while it removed the memory store's scratch folder, which was left behind, with SIGTERM's exit status."""
    served = ServeProcess(None, "--store", "memory", env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        [scratch] = list(tmp_path.iterdir())
        for index in range(20_000):  # its removal takes a while
            (scratch / str(index)).touch()
        workers = set(group_members(served.process.pid)) - {served.process.pid}
        os.killpg(served.process.pid, signal.SIGINT)
        until(lambda: not any(os.path.exists(f"/proc/{pid}") for pid in workers), seconds=15, pause=0)  # reaped
        with contextlib.suppress(ProcessLookupError):  # (should the master have ended already)
            os.killpg(served.process.pid, signal.SIGTERM)
        assert served.process.wait(timeout=15) == 0
        assert list(tmp_path.iterdir()) == []
    finally:
        served.kill()


def test_a_server_started_with_nohup_lives_through_a_hang_up(tmp_path):
    """`nohup ivh-mock serve &`: the master put its stop on SIGHUP over the ignore nohup had set, so closing the
    terminal stopped the server nohup was to keep."""
    process = subprocess.Popen(["nohup", MOCK, "serve", "--port", "0", "--data-dir", str(tmp_path / "data")],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        url = process.stdout.readline().split("listening on ", 1)[1].strip()
        os.killpg(process.pid, signal.SIGHUP)  # as a closed terminal sends it, to the whole group
        time.sleep(0.5)
        assert process.poll() is None
        assert requests.get(f"{url}/__mock__/clock", timeout=10).status_code == 200
        process.terminate()
        _, said = process.communicate(timeout=15)
        assert process.returncode == 0 and "Traceback" not in said, said
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_a_stop_signal_before_the_banner_ends_the_start_as_ctrl_c_does_leaving_nothing(tmp_path):
    """A supervisor's SIGTERM during the start (here while a long accounts file is read) killed the process by the
    system's default, before the server's handlers were set: the memory store's scratch folder stayed behind."""
    accounts = tmp_path / "accounts.yaml"
    accounts.write_text("accounts:\n" + "".join(f"  - {{appkey: app-{index}, accesstoken: token-{index}}}\n"
                                                  for index in range(5000)), encoding="utf-8")
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    process = forked.mock(["serve", "--port", "0", "--store", "memory", "--accounts", str(accounts)],
                          env={**os.environ, "TMPDIR": str(temporary)})
    try:
        until(lambda: list(temporary.iterdir()), seconds=30, pause=0.001)  # the scratch folder is made
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 130 and process.stderr.read() == "\nivh-mock: interrupted\n"
        assert list(temporary.iterdir()) == []
    finally:
        process.kill()
        process.stdout.close()
        process.stderr.close()


def test_a_hurried_stop_leaves_no_temporary_folder_behind(tmp_path):
    """Two stop signals at once (Ctrl-C and SIGTERM to the group) kill the workers at once: each worker had made the
    memory store's temporary folder itself, and one killed so left it behind (11 times in 12)."""
    served = ServeProcess(None, "--store", "memory", env={**os.environ, "TMPDIR": str(tmp_path)})
    try:
        assert requests.post(f"{served.url}/__mock__/assets?name=a.txt", data=b"kept?", timeout=10).status_code == 201
        os.killpg(served.process.pid, signal.SIGINT)
        os.killpg(served.process.pid, signal.SIGTERM)
        assert served.process.wait(timeout=10) == 0
        assert list(tmp_path.iterdir()) == []
    finally:
        served.kill()
