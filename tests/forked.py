"""`python -m pytest ...` and `ivh ...` in a process of their own, forked from a process that has already imported
what they import as they start: a run of the contract suite spent about 0.7 s of CPU importing Hypothesis and
Schemathesis before it collected a test, a command of `ivh` took 0.35 to 0.4 s where forked it takes 0.02 s, and the
tests start some twenty-five of the one and forty of the other (D65).

The process forking pytest runs (started once per test process, on its first run) starts pytest as a run would, up
to its plugins, leaving out this project's own (so nothing of the suite or of the mock is imported); the one forking
commands imports the `ivh` command's modules, as the command does before it reads its arguments. Neither has a
thread. Each forks a run from that state: every run starts as a new interpreter would, in its own process, with its own
working directory, environment, standard streams and exit status, and whatever it changes ends with it. What
cannot change after the fork (the interpreter's own start-up settings, such as PYTHONDONTWRITEBYTECODE) is the same
for every run here; PYTHONPATH is read as Python would. A test that is about a process's start (what it imports, a
signal to it) starts one of its own.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

# What a pytest run in this virtualenv imports as it starts, by the plugins it loads (schemathesis's imports all of
# them): about 0.7 s of CPU a run.
PRELOADED = ("hypothesis", "schemathesis", "requests")
IVH = str(Path(sys.executable).with_name("ivh"))


def run(args: list[str], *, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run `python -m pytest *args` in `cwd` with `env` (the current one if None), as `subprocess.run(...,
    capture_output=True, text=True, timeout=timeout)` would."""
    command = [sys.executable, "-m", "pytest", *args]
    return _Forker.get("pytest").run(command, Path(cwd), dict(os.environ if env is None else env), timeout)


def ivh(args: list[str], *, env: dict[str, str] | None = None,
        timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the command `ivh *args` with `env` (the current one if None), as `subprocess.run(..., capture_output=True,
    text=True, timeout=timeout)` would."""
    return _Forker.get("ivh").run([IVH, *args], Path.cwd(), dict(os.environ if env is None else env), timeout)


class _Forker:
    _made: dict[str, _Forker] = {}
    _making = threading.Lock()

    @classmethod
    def get(cls, kind: str) -> _Forker:
        with cls._making:
            if kind not in cls._made or cls._made[kind].process.poll() is not None:
                cls._made[kind] = cls(kind)
            return cls._made[kind]

    def __init__(self, kind: str) -> None:
        # unbuffered: a line read is all that is taken from the pipe, so that select() sees the next one there
        # by its path, not as tests.forked: a run's pytest marks the package `tests` for rewriting (the checkout's
        # egg-info lists it), and warned that it was imported already
        self.process = subprocess.Popen([sys.executable, __file__, kind], cwd=Path(__file__).parents[1],
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        self.lock = threading.Lock()  # one run at a time: the forking process answers in order
        atexit.register(self.close)

    def close(self) -> None:
        """End the forking process (it ends by itself when this process's end closes its input, but unwaited)."""
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process.stdout.close()

    def run(self, command: list[str], cwd: Path, env: dict[str, str],
            timeout: float) -> subprocess.CompletedProcess[str]:
        with self.lock, tempfile.TemporaryDirectory(prefix="ivh-forked-") as scratch:
            out, err = Path(scratch, "stdout"), Path(scratch, "stderr")
            request = json.dumps({"argv": command, "cwd": str(cwd), "env": env, "stdout": str(out),
                                  "stderr": str(err)})
            unsent = memoryview(request.encode() + b"\n")
            while unsent:  # a raw pipe's write may take part of it
                unsent = unsent[self.process.stdin.write(unsent):]
            pid = json.loads(self.process.stdout.readline())["pid"]
            ready, _, _ = select.select([self.process.stdout], [], [], timeout)
            if not ready:
                os.kill(pid, signal.SIGKILL)
            returncode = json.loads(self.process.stdout.readline())["returncode"]
            stdout, stderr = out.read_text(errors="replace"), err.read_text(errors="replace")
            if not ready:
                raise subprocess.TimeoutExpired(command, timeout, stdout, stderr)
            return subprocess.CompletedProcess(command, returncode, stdout, stderr)


def _serve(kind: str) -> None:
    del sys.path[0]  # this file's folder, which Python put first: nothing is to be imported from there
    if kind == "ivh":
        from ivh_mock import commands  # noqa: F401  (the command's own module, then what it imports)
        import ivh_mock.client.cli  # noqa: F401
    else:
        _start_pytest()
    assert threading.active_count() == 1, "a process that forks must have no other thread"
    for line in sys.stdin:
        request = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(kind, request)
        print(json.dumps({"pid": pid}), flush=True)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"returncode": os.waitstatus_to_exitcode(status)}), flush=True)


def _start_pytest() -> None:
    # pytest starts as for a run, with its assertion rewriting hook (so that a run finds the plugins' modules as it
    # would have imported them) but without this project's plugins, which each run imports afresh (they read the
    # environment); `--version` twice ends it before any session, in an empty folder with no configuration, so that
    # no conftest of this repository is imported
    with tempfile.TemporaryDirectory() as empty, contextlib.chdir(empty), \
            contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        pytest.main(["--version", "--version", "-c", os.devnull, "--rootdir", empty, "-p", "no:cacheprovider",
                     "-p", "no:ivh_mock", "-p", "no:ivh_mock_contract"])
    assert set(PRELOADED) <= set(sys.modules) and not any(name.startswith("ivh_mock") for name in sys.modules), \
        "pytest did not start as expected"


def _child(kind: str, request: dict) -> None:
    """Become the request's command in its folder, environment and streams; never return."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        for fd, path in ((0, os.devnull), (1, request["stdout"]), (2, request["stderr"])):
            opened = os.open(path, os.O_RDONLY if fd == 0 else os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        # sys.path as Python makes it for `python -m` in that folder, or for a script in bin/, with that PYTHONPATH
        # (this process had its own folder first)
        first = request["cwd"] if kind == "pytest" else os.path.dirname(request["argv"][0])
        extra = [entry for entry in request["env"].get("PYTHONPATH", "").split(os.pathsep) if entry]
        sys.path[:] = [first, *extra, *[entry for entry in sys.path[1:] if entry not in extra]]
        if kind == "pytest":
            import runpy

            sys.argv = [sys.argv[0], *request["argv"][3:]]
            runpy.run_module("pytest", run_name="__main__", alter_sys=True)
            code = 0
        else:
            from ivh_mock.commands import ivh as command

            sys.argv = request["argv"]
            code = command()
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 0 if exit.code is None else 1
        if not isinstance(exit.code, (int, type(None))):
            print(exit.code, file=sys.stderr)
    except BaseException:  # as the interpreter would: the traceback on stderr, status 1
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


if __name__ == "__main__":
    _serve(sys.argv[1])
