"""An installed wheel carries the spec and everything read at run time, and its pytest plugin works by itself."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    return next(out.glob("ivh_mock-*.whl"))


def test_the_wheel_carries_the_spec_and_data_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("spec/openapi.yaml", "spec/error-codes.yaml", "spec/DECISIONS.md", "spec/__init__.py",
                   "mock_server/accounts.schema.yaml", "mock_server/control.schema.yaml",
                   "mock_server/scenarios.yaml", "mock_server/app.py", "client/api.py", "client/cli.py",
                   "mock_server/ui/index.html", "mock_server/ui/dashboard.js", "mock_server/ui/dashboard.css"):
        assert needed in names, f"{needed} missing from {wheel.name}"
    entry_points = zipfile.ZipFile(wheel).read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    for line in ("ivh-mock = mock_server.cli:main", "ivh = client.cli:main", "ivh_mock = mock_server.pytest_plugin"):
        assert line in entry_points


def test_the_sample_app_test_passes_in_a_fresh_virtualenv(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(wheel), "pytest"],
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-2000:]
    sample = tmp_path / "test_my_app.py"
    sample.write_text((ROOT / "examples" / "test_my_app.py").read_text(encoding="utf-8"), encoding="utf-8")
    run = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(sample)], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert "2 passed" in run.stdout


def test_the_fixtures_work_under_xdist(tmp_path):
    sample = (ROOT / "examples" / "test_my_app.py").read_text(encoding="utf-8")
    for copy in range(3):  # several files, so that both workers start their own servers at the same time
        (tmp_path / f"test_app_{copy}.py").write_text(sample, encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "6 passed" in run.stdout
