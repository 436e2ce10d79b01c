"""The standard streams of `ivh-mock serve` and `ivh-mock proxy`, which may be closed or go nowhere: a server is still
to serve, and to stop cleanly, when nobody reads what it says (`| head -1`, a full disk, `>&-`)."""

from __future__ import annotations

import contextlib
import os
import sys


def on_devnull(descriptor: int) -> None:
    """Put /dev/null on `descriptor` (open or not)."""
    devnull = os.open(os.devnull, os.O_RDWR)
    if devnull != descriptor:
        os.dup2(devnull, descriptor)
        os.close(devnull)


def say(text: str) -> None:
    """Print `text` on stderr. A stderr nobody reads any more must not end the process that says it (a master that died
    of it left its workers serving alone): it goes to /dev/null from then on."""
    try:
        print(text, file=sys.stderr, flush=True)
    except (AttributeError, OSError, ValueError):
        with contextlib.suppress(AttributeError, OSError, ValueError):
            on_devnull(sys.stderr.fileno())
