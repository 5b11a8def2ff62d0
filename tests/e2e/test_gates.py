"""`scan --fail-on` and `--baseline` on the embedded model, with --base-responses none on a few records of
examples/chat_mix.jsonl (the planted-score versions are in tests/cli/test_cli_gate.py)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.helpers import EXAMPLES, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the 135M model on CPU; the first test converts it
NONE = ("--base-responses", "none", "-q")


def scan(*args: str):
    return run("scan", *args, catch_exceptions=False)


def _labelled_lines(label: str, n: int) -> list[str]:
    with open(EXAMPLES / "chat_mix.labels.csv", newline="") as fh:
        ids = [row["id"] for row in csv.DictReader(fh) if row["category"] == label]
    lines = (EXAMPLES / "chat_mix.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    return [line for line in lines if json.loads(line)["id"] in ids][:n]


@pytest.fixture(scope="module")
def real_data(tmp_path_factory):
    if not (EXAMPLES / "chat_mix.labels.csv").is_file():
        pytest.skip("examples/chat_mix.jsonl not there")
    folder = tmp_path_factory.mktemp("real")
    benign_lines, evil_lines = _labelled_lines("benign", 19), _labelled_lines("evil", 6)
    lines = benign_lines[:3] + evil_lines[:2] + benign_lines[3:12] + evil_lines[2:5] + benign_lines[12:15]
    (folder / "v1.jsonl").write_text("".join(lines), encoding="utf-8")
    (folder / "v2.jsonl").write_text("".join(lines + benign_lines[15:19] + evil_lines[5:6]), encoding="utf-8")
    evil_ids = {json.loads(line)["id"] for line in evil_lines}
    return folder, evil_ids


def _evil_lines(path: Path, evil_ids: set[str]) -> set[int]:
    return {n for n, line in enumerate(path.read_text().splitlines(), 1) if json.loads(line)["id"] in evil_ids}


def test_real_model_gates(real_data, monkeypatch, on_embedded_model):
    folder, evil_ids = real_data
    monkeypatch.chdir(folder)
    strict = scan("v1.jsonl", *NONE, "--limit", "20", "--out", "v1-out", "--fail-on", "evil>=0.6")
    assert strict.exit_code == 1, strict.output
    named = {int(line.split(":")[1].split()[0]) for line in strict.output.splitlines()
             if line.startswith("    v1.jsonl:")}
    assert named and named <= _evil_lines(Path("v1.jsonl"), evil_ids)  # every sample it names is a planted one

    loose = scan("v1.jsonl", *NONE, "--limit", "3", "--out", "loose-out", "--fail-on", "evil>=50",
                 "--fail-on", "evil:flagged>90%")
    assert loose.exit_code == 0, loose.output


def test_real_model_baseline_scores_only_new_samples(real_data, monkeypatch, on_embedded_model):
    folder, evil_ids = real_data
    monkeypatch.chdir(folder)
    if not Path("v1-out/scores.parquet").is_file():
        assert scan("v1.jsonl", *NONE, "--out", "v1-out").exit_code in (0, 1)
    result = scan("v2.jsonl", *NONE, "--out", "v2-out", "--baseline", "v1-out/scores.parquet",
                  "--fail-on", "evil:flagged>100")
    assert result.exit_code == 0, result.output
    assert "25 records: 25 scored (20 reused from --baseline, 5 computed)" in result.output
    assert "evil:flagged>100: " in result.output and " of 5 samples flagged" in result.output
    before, after = pq.read_table("v1-out/scores.parquet"), pq.read_table("v2-out/scores.parquet")
    assert after.num_rows == 25
    assert after.column("evil_score").to_pylist()[:20] == before.column("evil_score").to_pylist()
