"""An installed wheel carries the spec and everything the mock reads at run time."""

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_carries_the_spec_files(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("ivh_mock-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for needed in ("spec/openapi.yaml", "spec/error-codes.yaml", "spec/DECISIONS.md", "spec/__init__.py",
                   "mock_server/accounts.schema.yaml", "mock_server/app.py", "client/__init__.py"):
        assert needed in names, f"{needed} missing from {wheel.name}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "ivh-mock = mock_server.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
