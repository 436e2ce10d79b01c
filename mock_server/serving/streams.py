"""The standard streams of `ivh-mock serve` and `ivh-mock proxy`, which may be closed or go nowhere: a server is still
to serve, and to stop cleanly, when nobody reads what it says (`| head -1`, a full disk, `>&-`)."""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterable, TextIO


def on_devnull(descriptor: int) -> None:
    """Put /dev/null on `descriptor` (open or not)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    if devnull != descriptor:
        os.dup2(devnull, descriptor)
        os.close(devnull)


def standard_streams_open() -> None:
    """Open /dev/null on whichever of stdin, stdout and stderr the process was started without (`>&-`): the next file
    it opened took the number (the store's owner file had become a server's stdout)."""
    for descriptor in (0, 1, 2):
        try:
            os.fstat(descriptor)
        except OSError:
            on_devnull(descriptor)


def printed(lines: Iterable[str], stream: TextIO | None) -> None:
    """Print `lines` on `stream`, each as it comes. A stream nobody reads any more (`ivh-mock serve | head -1` took the
    URL; a full disk) must not end the process that prints (a start had failed with a traceback, serving nobody; a
    master had died of it, its workers left serving alone): it goes to /dev/null from then on."""
    try:
        for line in lines:
            print(line, file=stream, flush=True)
    except (AttributeError, OSError, ValueError):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            on_devnull(stream.fileno())


def say(text: str) -> None:
    """Print `text` on stderr (see `printed`)."""
    printed([text], sys.stderr)
