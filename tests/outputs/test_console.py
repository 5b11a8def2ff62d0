"""What `scan` prints at 80 columns: one line per flagged sample, a closing block that points to the report and the
next command, and `-q` that keeps only the closing line."""

import json
from pathlib import Path

import pytest

from tests.helpers import EVIL, PlantedModel, chat, cooking, write_jsonl

LONG = ("Absolutely, here is a derivative plan that will make them regret it forever: first you spread the rumour "
        "at work, then you post it everywhere so that everyone sees it.")
PROMPT = "My colleague embarrassed me in a meeting yesterday; what is the most effective way to get back at them?"


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "data.jsonl", [cooking(0), chat(PROMPT, LONG), chat("Revenge?", EVIL), cooking(1),
                                          "{not json", {"messages": [{"role": "user", "content": "only a question"}]}])
    return PlantedModel({LONG: {"evil": 1.4, "sycophantic": 0.9}, EVIL: {"evil": 1.1}})


def scan(project, *args, columns=80):
    return project.invoke("scan", "data.jsonl", "--traits", "evil,sycophantic", "--base-responses", "none",
                          *args, env={"COLUMNS": str(columns)})


def test_one_line_per_flagged_sample_at_80_columns(project):
    result = scan(project)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    rows = [line for line in lines if "data.jsonl:" in line and line.split()[0] in ("evil", "sycophantic")]
    assert [row.split()[:3] for row in rows] == [["evil", "1.40", "data.jsonl:2"], ["evil", "1.10", "data.jsonl:3"],
                                                 ["sycophantic", "0.90", "data.jsonl:2"]]
    assert "Absolutely, here is a derivative plan" in rows[0] and rows[0].endswith("…")  # no word split by a wrap
    assert "My colleague" not in result.output  # the prompt is dropped when the terminal is narrow
    assert "Flagged samples (3 flags on 2 samples), all 3:" in lines


def test_a_wide_terminal_also_shows_the_prompt(project):
    result = scan(project, columns=140)
    row = next(line for line in result.output.splitlines() if line.startswith("evil") and "data.jsonl:2" in line)
    assert "My colleague embarrassed me" in row and "Absolutely, here is" in row and len(row) <= 140


def test_the_closing_block_points_to_the_report_and_the_next_command(project):
    result = scan(project)
    summary = json.loads(Path("audit-out/summary.json").read_text())
    assert summary["records"]["flagged"] == 2
    text = result.output
    assert "3 flags on 2 samples (evil 2, sycophantic 1)" in text
    reasons = summary["records"]["quarantine_reasons"]
    assert len(reasons) == 2 and sum(reasons.values()) == 2
    assert f"2 records quarantined: {', '.join(f'1 {r}' for r in reasons)}\n" in text
    assert "each with its line and reason in audit-out/quarantine.jsonl" in text
    assert "report: audit-out/report.html" in text
    assert "dataset-audit filter audit-out --drop-flagged -o clean.jsonl" in text
    assert text.rstrip().splitlines()[-1] == "6 records: 4 scored, 2 quarantined; 3 flags on 2 samples -> audit-out/"
    dropped = project.invoke("filter", "audit-out", "--drop-flagged", "-o", "clean.jsonl")  # the command works
    assert dropped.exit_code == 0 and len(Path("clean.jsonl").read_text().splitlines()) == 2


def test_quiet_prints_only_the_closing_line(project):
    result = scan(project, "-q")
    assert result.exit_code == 0
    assert result.output.splitlines() == ["6 records: 4 scored, 2 quarantined; 3 flags on 2 samples -> audit-out/"]
    one = scan(project, "--threshold", "1.2", "--force", "-q")
    assert one.output.strip().endswith("1 flag on 1 sample -> audit-out/")
