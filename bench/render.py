"""Render benchmark: how long ivh-mock takes to render a result video, against the video's own length.

    python -m bench.render            # 10, 30 and 60 s videos, Text and OriginalVoice, 720P and 1080P

The live service needs about 20 s of rendering per second of 720P video; the goal here is at most 2 s for a 60 s
video on the benchmark machine. Printed, not asserted: timings belong in a benchmark, not in a unit test.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

from ivh_mock.mock_server.media_out import render, synth
from ivh_mock.mock_server.media_in.samples import portrait

REPEATS = 3


def main(argv: list[str] | None = None) -> None:
    # no options: an argument it does not take (`--help` among them) is answered, not taken for a run of a minute
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args(argv)
    photo = portrait(1080, 1600)
    width, height = 1080, 1600
    print(f"# render benchmark on {platform.machine()}, {platform.python_implementation()} {platform.python_version()}")
    print(f"{'video':>6} {'drive':>13} {'output':>10} {'median s':>9} {'x real time':>12}")
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "out.mp4"
        for seconds in (10, 30, 60):
            audio = synth.encode(synth.babble(seconds), "mp3")
            words = tuple((int(i * 2_500_000), int(i * 2_500_000 + 2_000_000), f"w{i}")
                          for i in range(int(seconds * 4)))
            for resolution in (0, 1):
                size = render.output_size(width, height, resolution)
                for drive, job in (
                    ("Text", render.Job("p", *size, seconds * 1000, words=words)),
                    ("OriginalVoice", render.Job("p", *size, seconds * 1000, audio="a")),
                ):
                    times = []
                    for _ in range(REPEATS):
                        started = time.perf_counter()
                        render.encode(job, photo, audio if job.audio else None, target)
                        times.append(time.perf_counter() - started)
                    median = statistics.median(times)
                    print(f"{seconds:>5}s {drive:>13} {size[0]:>4}x{size[1]:<5} {median:>9.2f} "
                          f"{median / seconds:>11.3f}x")


if __name__ == "__main__":
    main()
