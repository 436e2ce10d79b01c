"""Every shell and Python example of the README runs, as a reader would paste it into one shell in the checkout with
`make serve` running.

The harness serves a mock on a free port in a temporary folder (with `.venv` pointing at this virtualenv and its
bin/ on PATH, as after `source .venv/bin/activate`), rewrites only the port, and runs the fenced ```sh, ```bash and
```python blocks in the order they appear, as one bash script, so that a variable one block sets (a TaskId, say)
is there for the next. A block that must not run says so on the line above its fence:
`<!-- example: skip (the reason) -->`; `<!-- example: pytest -->` runs a Python block with pytest. Plugins made
for this (pytest-codeblocks, pytest-examples) run each block on its own and start no server, so the state the
examples share and the served mock would be lost.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import ServeProcess

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
BLOCK = re.compile(r"^(?:<!-- example: (?P<marker>.*?) -->\n)?```(?P<lang>[\w-]*)\n(?P<code>.*?)^```$", re.S | re.M)
SHELL, PYTHON = {"sh", "bash", "shell"}, {"python", "py"}
SERVED = "127.0.0.1:8080"
# What the README holds: a block added, removed or silently left out changes these, and the test says so.
EXPECTED_RUN, EXPECTED_SKIPPED = 7, 6


@dataclass
class Example:
    line: int
    lang: str
    code: str
    marker: str | None

    @property
    def skip_reason(self) -> str | None:
        if self.marker is None or self.marker == "pytest":
            return None
        reason = re.fullmatch(r"skip \((.+)\)", self.marker)
        assert reason, f"README line {self.line}: unknown example marker {self.marker!r} (skip (reason) or pytest)"
        return reason.group(1)


def examples(text: str = README) -> list[Example]:
    found = []
    for match in BLOCK.finditer(text):
        if match.group("lang") in SHELL | PYTHON:
            found.append(Example(text.count("\n", 0, match.start("lang")) + 1, match.group("lang"),
                                 match.group("code"), match.group("marker")))
        else:
            assert match.group("marker") is None, f"{match.group('marker')!r} marks a block that is not an example"
    return found


def script(blocks: list[Example], port: int) -> str:
    """One bash script running `blocks` in order, each announced on stdout so its output can be told apart."""
    lines = ["set -e"]
    for number, block in enumerate(blocks):
        code = block.code.replace(SERVED, f"127.0.0.1:{port}")
        lines.append(f"echo '@@example {number}@@'")
        if block.lang in SHELL:
            lines.append(code)
        elif block.marker == "pytest":
            lines += [f"cat > test_readme_example_{number}.py <<'@@END@@'", code + "@@END@@",
                      f"python -m pytest -q -p no:cacheprovider test_readme_example_{number}.py"]
        else:
            lines += ["python - <<'@@END@@'", code + "@@END@@"]
    lines.append("echo '@@done@@'")
    return "\n".join(lines) + "\n"


def refusals(output: str) -> list[str]:
    """The answers in `output` that refused something: a non-zero Header.Code, or a control API error."""
    return re.findall(r'"Code":\s*-?[1-9]\d*.{0,200}|\{"error":.{0,200}', output)


@pytest.mark.slow
def test_every_shell_and_python_example_runs(tmp_path):
    blocks = examples()
    to_run = [block for block in blocks if block.skip_reason is None]
    assert (len(to_run), len(blocks) - len(to_run)) == (EXPECTED_RUN, EXPECTED_SKIPPED), \
        [(block.line, block.lang, block.marker) for block in blocks]
    work = tmp_path / "work"
    work.mkdir()
    (work / ".venv").symlink_to(sys.prefix)
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVH_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    with ServeProcess(tmp_path / "data", "--queue-seconds", "0.2", "--render-startup", "0.2",
                      "--render-speed", "0.05") as served:
        port = int(served.url.rsplit(":", 1)[1])
        run = subprocess.run(["bash", "-c", script(to_run, port)], cwd=work, env=env, capture_output=True,
                             text=True, timeout=120)
    parts = re.split(r"^@@example (\d+)@@\n", run.stdout, flags=re.M)
    ran = [int(number) for number in parts[1::2]]
    last = to_run[ran[-1]] if ran else None
    where = f"the example at README line {last.line}" if last else "before the first example"
    assert run.returncode == 0 and run.stdout.endswith("@@done@@\n"), \
        f"{where} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert ran == list(range(len(to_run)))
    assert "Traceback" not in run.stderr, run.stderr[-3000:]
    for number, output in zip(ran, parts[2::2]):
        assert not refusals(output), f"the example at README line {to_run[number].line} was refused: {output[-2000:]}"
    assert run.stdout.count("2 passed") == 2  # the fixtures' and the bucket's examples, run by pytest
    assert (work / "video.mp4").read_bytes()[4:8] == b"ftyp"  # the ivh example's download


def test_the_harness_finds_markers_and_refusals():
    text = ("<!-- example: skip (needs a live account) -->\n```sh\nlive\n```\n\n```json\n{}\n```\n"
            "<!-- example: pytest -->\n```python\ndef test_x(): pass\n```\n```bash\necho 127.0.0.1:8080\n```\n")
    found = examples(text)
    assert [(e.lang, e.skip_reason, e.marker) for e in found] == [
        ("sh", "needs a live account", "skip (needs a live account)"), ("python", None, "pytest"),
        ("bash", None, None)]
    assert "echo 127.0.0.1:4242" in script(found[2:], 4242)
    assert refusals('{"Header":{"Code":-101002,"Message":"x"}}') and refusals('{"error": {"message": "no"}}')
    assert not refusals('{"Header":{"Code":0,"Message":""}}')
