"""The package's two commands as their entry points start them: `ivh-mock` (mock_server/serving/cli.py) and `ivh`
(client/cli.py). A Ctrl-C that comes before a command handles it itself (while Python imports the command's modules,
while a server's store is made, after a server gave signals back) ends it with a word on stderr and exit status 130, as
a shell counts an interrupt, not with KeyboardInterrupt's traceback.

The command's modules are imported with SIGINT held back: an interrupt that came while orjson's module was being made
crashed the interpreter as it exited (SIGSEGV), for both commands. One that comes meanwhile is raised once they are
imported. This module imports nothing of the package's own, so that it is imported before any of them."""

from __future__ import annotations

import contextlib
import gc
import importlib
import signal
import sys

INTERRUPTED = 130  # 128 + SIGINT


def mock() -> int:
    return _run("ivh_mock.mock_server.serving.cli", "ivh-mock")


def ivh() -> int:
    return _run("ivh_mock.client.cli", "ivh")


def _run(module: str, name: str) -> int:
    try:
        held = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            main = importlib.import_module(module).main
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, held)  # a Ctrl-C held back is raised here
        status = main()
        # Python's exit then walks every object the command made or imported, to collect the garbage a moment
        # before the process ends anyway: 0.1 to 0.2 s of CPU a stop of `ivh-mock serve`. Frozen, they are not
        # walked; what is freed as the modules go, and what atexit does, still runs.
        gc.freeze()
        return status
    except KeyboardInterrupt:
        # the command ends: another Ctrl-C (a terminal's group, `timeout -s INT` sends two) is not to cut short what
        # Python still does as it exits (a scratch folder's removal had printed a KeyboardInterrupt's traceback)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        with contextlib.suppress(OSError, ValueError, AttributeError):  # stderr may be closed, or go nowhere
            print(f"\n{name}: interrupted", file=sys.stderr, flush=True)
        return INTERRUPTED
