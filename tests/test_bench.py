"""The benchmark's parts that can be checked without a load run: the report is rebuilt from the committed raw
numbers, and the ceiling answers the API's paths."""

from pathlib import Path

from bench import load, report
from bench.peers import ceiling_app

DOCS = Path(__file__).resolve().parents[1] / "docs"


def without_date(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith("Written by `make bench` on ")]


def test_the_report_is_written_again_from_the_raw_numbers(tmp_path):
    report.write(tmp_path / "benchmarks.md", **report.load_results(DOCS / "benchmarks.json"))
    text = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert without_date(text) == without_date((DOCS / "benchmarks.md").read_text(encoding="utf-8"))
    goals = [line for line in text.split("## Goals", 1)[1].splitlines() if line.startswith("| ")][2:]
    assert len(goals) >= 10 and all(line.endswith(("| met |", "| **missed** |")) for line in goals)


def test_the_ceiling_answers_every_operation_with_code_0():
    client = ceiling_app().test_client()
    for path in load.PATHS.values():
        answer = client.post(path, data="{}", headers={"Content-Type": "application/json"})
        assert answer.status_code == 200 and answer.get_json()["Header"]["Code"] == 0
