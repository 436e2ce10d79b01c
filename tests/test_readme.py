"""The README's examples run as written."""

import re
import subprocess
import sys
from pathlib import Path

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def python_block_after(heading: str) -> str:
    section = README.split(heading, 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_fixture_example_passes(tmp_path):
    test_file = tmp_path / "test_readme_example.py"
    test_file.write_text(python_block_after("## Testing an app with the fixtures"), encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "2 passed" in run.stdout


def test_the_bucket_example_passes_and_is_the_example_file(tmp_path):
    code = python_block_after("### An app that keeps its videos in its own bucket")
    example = (Path(__file__).resolve().parents[1] / "examples" / "test_my_app_bucket.py").read_text(encoding="utf-8")
    assert example.endswith(code)
    test_file = tmp_path / "test_bucket_example.py"
    test_file.write_text(code, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(test_file)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "2 passed" in run.stdout


def test_the_fixture_example_is_short():
    assert len(python_block_after("## Testing an app with the fixtures").strip().splitlines()) < 20


def test_the_constraint_table_names_real_tests():
    from ivh_mock.contract_tests import test_constraints as constraints

    named = re.findall(r"\| `(test_[a-z0-9_]+)`", README)
    assert len(named) >= 15
    for name in named:
        assert hasattr(constraints, name), f"README names {name}, which contract_tests/test_constraints.py lacks"


def test_the_configuration_table_lists_every_serve_option():
    from ivh_mock.mock_server.serving.cli import build_parser

    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    options = [option for action in serve._actions for option in action.option_strings if option.startswith("--")]
    table = README.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    missing = [option for option in options if option != "--help" and f"`{option}" not in table]
    assert not missing, f"README's configuration table lacks {missing}"
