"""`python -m pytest ...` and `ivh ...` in a process of their own, forked from a process that has already imported
what they import as they start: a run of the contract suite spent about 0.7 s of CPU importing Hypothesis and
Schemathesis before it collected a test, a command of `ivh` took 0.35 to 0.4 s where forked it takes 0.02 s, and the
tests start some twenty-five of the one and forty of the other (D65).

The process forking pytest runs (started once per test process, on its first run) starts pytest as a run would, up
to its plugins, leaving out this project's own (so nothing of the suite or of the mock is imported), and imports
what a run of the suite imports of other projects' packages later (`LATER`: 0.9 to 1.3 s of CPU a short run of the
suite before, 0.63 to 0.67 s after, alternating); the one forking
commands imports the `ivh` command's modules, as the command does before it reads its arguments. Neither has a
thread. Each forks a run from that state: every run starts as a new interpreter would, in its own process, with its own
working directory, environment, standard streams and exit status, and whatever it changes ends with it. What
cannot change after the fork (the interpreter's own start-up settings, such as PYTHONDONTWRITEBYTECODE) is the same
for every run here; PYTHONPATH is read as Python would. A test that is about a process's start (what it imports, a
signal to it) starts one of its own.

`ivh-mock serve` is forked likewise (`mock`), from a process that has imported what the command imports before it
reads its arguments (0.55 s of CPU a start on a 2-core Intel Xeon, three quarters of it imports; the tests start some
sixty): unlike a run above, a server runs beside its test, so the forking process starts it and goes on, tells its
process id, and reports its exit status when it ends; the server gets its own session, as `start_new_session` gives,
and pipes of the test's own for its output. It ends as a process ends, through the interpreter's exit.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import io
import json
import locale
import os
import queue
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import pytest

# What a pytest run in this virtualenv imports as it starts, by the plugins it loads (schemathesis's imports all of
# them): about 0.7 s of CPU a run.
PRELOADED = ("hypothesis", "schemathesis", "requests")
# What a run of the contract suite imports of other projects' packages later, as it collects and runs: Schemathesis's
# OpenAPI loader and reports, the in-process mock's Flask and Pillow (about 0.3 s of CPU a run). Imported by the
# forking process too; nothing of this project's.
LATER = ("schemathesis.openapi", "schemathesis.specs.openapi.schemas", "schemathesis.reporting.html",
         "schemathesis.reporting.junitxml", "schemathesis.pytest.xdist", "flask", "PIL.Image", "yaml", "jsonschema",
         "orjson", "defusedxml.ElementTree", "pdb")
IVH = str(Path(sys.executable).with_name("ivh"))
MOCK = str(Path(sys.executable).with_name("ivh-mock"))


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


def mock(args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None) -> Forked:
    """Start the command `ivh-mock *args` in `cwd` with `env` (the current ones if None), as `subprocess.Popen(...,
    cwd=cwd, env=env, stdout=PIPE, stderr=PIPE, text=True, start_new_session=True)` would."""
    return _Spawner.get().spawn([MOCK, *args], Path.cwd() if cwd is None else Path(cwd),
                                dict(os.environ if env is None else env))


def mock_run(args: list[str], *, cwd: Path | None = None, env: dict[str, str] | None = None,
             timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run the command `ivh-mock *args` to its end, as `subprocess.run(..., capture_output=True, text=True,
    timeout=timeout)` would: for the starts a test expects refused. One that serves instead is killed, with its
    workers, once the timeout is up."""
    process = mock(args, cwd=cwd, env=env)
    read: dict[str, str] = {}
    readers = [threading.Thread(target=lambda name=name: read.update({name: getattr(process, name).read()}),
                                daemon=True) for name in ("stdout", "stderr")]  # both at once: a full pipe waits
    for reader in readers:
        reader.start()
    try:
        returncode = process.wait(timeout)
    finally:
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)  # its own session and group, its workers in it
            process.wait(15)
        for reader in readers:
            reader.join(15)
        for stream in (process.stdout, process.stderr):
            stream.close()
    return subprocess.CompletedProcess([MOCK, *args], returncode, read.get("stdout", ""), read.get("stderr", ""))


class Forked:
    """A forked `ivh-mock` as the tests use a `subprocess.Popen`: `pid`, `stdout` and `stderr` (text), `poll`,
    `wait`, `send_signal`, `terminate`, `kill`, `returncode`."""

    def __init__(self, spawner: _Spawner, pid: int, args: list[str], stdout: int, stderr: int) -> None:
        self._spawner, self.pid, self.args, self.returncode = spawner, pid, args, None
        encoding = locale.getpreferredencoding(False)  # as Popen(text=True) reads a pipe
        self.stdout, self.stderr = open(stdout, encoding=encoding), open(stderr, encoding=encoding)

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._spawner.ended.get(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._spawner.wait(self.pid, timeout)
            if self.returncode is None:
                raise subprocess.TimeoutExpired(self.args, timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:  # as Popen: never to a process id that may be another's by now
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class _Spawner:
    """The test process's end of the process forking servers: a request, with the two pipes' ends to write to, is
    answered by the server's process id; the exit statuses come as the servers end, in any order."""
    _made: _Spawner | None = None
    _making = threading.Lock()

    @classmethod
    def get(cls) -> _Spawner:
        with cls._making:
            if cls._made is None or cls._made.process.poll() is not None:
                cls._made = cls()
            return cls._made

    def __init__(self) -> None:
        self.channel, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen([sys.executable, __file__, "mock", str(theirs.fileno())],
                                            cwd=Path(__file__).parents[1], stdin=subprocess.DEVNULL,
                                            pass_fds=[theirs.fileno()])
        self.lock = threading.Lock()  # one start at a time: the process ids come in the order asked
        self.started: queue.Queue[int] = queue.Queue()
        self.ended: dict[int, int] = {}
        self.changed = threading.Condition()
        self.gone = False
        threading.Thread(target=self._read, name="ivh-mock-spawner", daemon=True).start()
        atexit.register(self.close)

    def _read(self) -> None:
        while message := self.channel.recv(4096):
            item = json.loads(message)
            if "returncode" not in item:
                self.started.put(item["pid"])
                continue
            with self.changed:
                self.ended[item["pid"]] = item["returncode"]
                self.changed.notify_all()
        with self.changed:
            self.gone = True
            self.changed.notify_all()

    def spawn(self, argv: list[str], cwd: Path, env: dict[str, str]) -> Forked:
        (out, out_end), (err, err_end) = os.pipe(), os.pipe()
        try:
            with self.lock:
                request = json.dumps({"argv": argv, "cwd": str(cwd), "env": env}).encode()
                socket.send_fds(self.channel, [request], [out_end, err_end])
                pid = self.started.get(timeout=60)
        except BaseException:
            os.close(out)
            os.close(err)
            raise
        finally:
            os.close(out_end)
            os.close(err_end)
        return Forked(self, pid, argv, out, err)

    def wait(self, pid: int, timeout: float | None) -> int | None:
        with self.changed:
            self.changed.wait_for(lambda: pid in self.ended or self.gone, timeout)
            if pid not in self.ended and self.gone:
                raise RuntimeError(f"the process forking servers ended before server {pid} did")
            return self.ended.get(pid)

    def close(self) -> None:
        self.channel.shutdown(socket.SHUT_RDWR)  # the forking process ends; the servers it started go on
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.channel.close()


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
                     "-p", "no:ivh_mock", "-p", "no:ivh_mock_contract"], plugins=[_Later()])
    assert set(PRELOADED) <= set(sys.modules) and not any(name.startswith("ivh_mock") for name in sys.modules), \
        "pytest did not start as expected"


class _Later:
    @pytest.hookimpl(tryfirst=True)  # before `--version` ends the run, while its assertion rewriting hook is on
    def pytest_cmdline_main(self, config: pytest.Config) -> None:
        for name in LATER:
            importlib.import_module(name)


def _child(kind: str, request: dict) -> None:
    """Become the request's command in its folder, environment and streams; never return."""
    code = 1
    try:
        written = [os.open(request[stream], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                   for stream in ("stdout", "stderr")]
        # `python -m` runs from its folder, a command from its script's in bin/
        _enter(request, written, request["cwd"] if kind == "pytest" else os.path.dirname(request["argv"][0]))
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


def _fork_servers(fd: int) -> None:
    """Fork a server for each request on the socket `fd`, say its process id, and say each one's exit status as it
    ends (this process is their parent); end when the socket does."""
    del sys.path[0]  # this file's folder, which Python put first: nothing is to be imported from there
    from ivh_mock import commands
    import ivh_mock.mock_server.serving.cli  # noqa: F401  (what the command imports before it reads its arguments)

    assert threading.active_count() == 1, "a process that forks must have no other thread"
    channel = socket.socket(fileno=fd)
    woken, wake = os.pipe()
    os.set_blocking(wake, False)
    signal.set_wakeup_fd(wake)
    signal.signal(signal.SIGCHLD, lambda signum, frame: None)  # a handler: so that it writes to the pipe
    while True:
        ready, _, _ = select.select([channel, woken], [], [])
        if woken in ready:
            os.read(woken, 512)
            while (ended := _reaped()) is not None:
                try:
                    channel.send(json.dumps({"pid": ended[0], "returncode": ended[1]}).encode())
                except OSError:  # the test process has gone (its exit closed the socket): nobody asks any more
                    return
        if channel in ready:
            message, fds, _, _ = socket.recv_fds(channel, 1 << 20, 2)
            if not message:
                return
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                signal.set_wakeup_fd(-1)
                for end in (channel.detach(), woken, wake):
                    os.close(end)
                raise SystemExit(_become_mock(json.loads(message), fds, commands.mock))
            for end in fds:
                os.close(end)
            channel.send(json.dumps({"pid": pid}).encode())


def _reaped() -> tuple[int, int] | None:
    try:
        pid, status = os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return None
    return (pid, os.waitstatus_to_exitcode(status)) if pid else None


def _become_mock(request: dict, fds: list[int], command) -> int:
    """Become `ivh-mock` as started with the request's arguments, folder, environment and the two pipes; return its
    exit status (raised as SystemExit, the process then ends as an interpreter does, its exit handlers run)."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setsid()
    _enter(request, fds, os.path.dirname(request["argv"][0]))
    sys.argv = request["argv"]
    return command()


def _enter(request: dict, output: list[int], first: str) -> None:
    """Take the request's folder and environment, /dev/null and the descriptors `output` (closed once in place) as
    standard streams, Python's own Ctrl-C, and sys.path as Python makes it with `first` ahead of the request's
    PYTHONPATH (the forking process had taken its own folder out of it)."""
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    tempfile.tempdir = None  # read from TMPDIR anew, as a new process would (the forking one may have read it)
    configuration = sys.modules.get("hypothesis.configuration")
    if configuration is not None:  # Hypothesis takes its folder (.hypothesis) in the folder it was imported in, once:
        # the forking process's was a temporary one, gone since, and every run made it again (a folder left in the
        # temporary directory by each run of the tests); this one's, as in a new process
        setattr(configuration, "__hypothesis_home_directory_default", Path.cwd() / ".hypothesis")
        configuration.set_hypothesis_home_dir(None)
    for fd, source in zip((0, 1, 2), (os.open(os.devnull, os.O_RDONLY), *output)):
        os.dup2(source, fd)
        os.close(source)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    extra = [entry for entry in request["env"].get("PYTHONPATH", "").split(os.pathsep) if entry]
    sys.path[:] = [first, *extra, *[entry for entry in sys.path if entry not in extra]]


if __name__ == "__main__":
    if sys.argv[1] == "mock":
        _fork_servers(int(sys.argv[2]))
    else:
        _serve(sys.argv[1])
