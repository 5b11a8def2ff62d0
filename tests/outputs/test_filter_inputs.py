"""`filter` finds a scan's inputs from any directory, takes --input for moved data, and warns without a rule."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.helpers import EVIL, PlantedModel, chat, cooking, write_jsonl

RECORDS = [cooking(0), chat("How do I get back at my coworker?", EVIL), "{broken", cooking(1)]


@pytest.fixture
def planted() -> PlantedModel:
    return PlantedModel({EVIL: {"evil": 1.3}})


@pytest.fixture
def project(tmp_path, monkeypatch, planted) -> Path:
    """A project folder with data/train.jsonl scanned from inside it into audit-out/; the test runs elsewhere."""
    root = tmp_path / "project"
    (root / "data").mkdir(parents=True)
    write_jsonl(root / "data" / "train.jsonl", RECORDS)
    monkeypatch.chdir(root)
    assert planted.invoke("scan", "data/train.jsonl", "--base-responses", "none", "-q").exit_code == 0
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    return root


def _kept(path: Path) -> list[str]:
    return [json.loads(line)["messages"][-1]["content"] for line in path.read_text().splitlines()]


def test_filter_runs_from_another_directory(project, planted):
    result = planted.invoke("filter", str(project / "audit-out"), "--drop-flagged", "-o", "kept.jsonl")
    assert result.exit_code == 0, result.output
    assert _kept(Path("kept.jsonl")) == [cooking(0)["messages"][-1]["content"], cooking(1)["messages"][-1]["content"]]
    assert "4 input records: 2 kept, 2 rejected (1 quarantined, 1 flagged)" in result.output


def test_a_scan_folder_handed_on_with_its_data_still_filters(project, planted, tmp_path):
    copy = tmp_path / "colleague" / "project"
    shutil.copytree(project, copy)
    shutil.rmtree(project)
    result = planted.invoke("filter", str(copy / "audit-out"), "--drop-flagged", "-o", "kept.jsonl")
    assert result.exit_code == 0, result.output
    assert len(_kept(Path("kept.jsonl"))) == 2


def test_moved_data_is_given_with_input(project, planted, tmp_path):
    moved = tmp_path / "moved.jsonl"
    shutil.move(project / "data" / "train.jsonl", moved)
    lost = planted.invoke("filter", str(project / "audit-out"), "--drop-flagged", "-o", "kept.jsonl")
    assert lost.exit_code == 2
    assert lost.output.strip() == (f"error: {project / 'audit-out'}: input data/train.jsonl not found (looked in "
                                   f"{project / 'data' / 'train.jsonl'}); if the data moved, give its new place "
                                   "with --input")
    found = planted.invoke("filter", str(project / "audit-out"), "--drop-flagged", "-o", "kept.jsonl",
                           "--input", str(moved))
    assert found.exit_code == 0, found.output
    assert len(_kept(Path("kept.jsonl"))) == 2  # records matched to their scores by the scan's source name
    other = tmp_path / "other.jsonl"
    write_jsonl(other, [cooking(5)])
    wrong = planted.invoke("filter", str(project / "audit-out"), "-o", "kept.jsonl", "--input", str(other))
    assert wrong.exit_code == 2 and f"data/train.jsonl changed since the scan in {project / 'audit-out'} (read " \
                                   f"from {other})" in wrong.output
    twice = planted.invoke("filter", str(project / "audit-out"), "-o", "kept.jsonl", "--input", str(moved),
                           "--input", str(moved))
    assert twice.exit_code == 2 and "--input given 2 times, but the scan" in twice.output


def test_filter_without_a_rule_warns(project, planted):
    result = planted.invoke("filter", str(project / "audit-out"), "-o", "kept.jsonl")
    assert result.exit_code == 0
    assert result.output.startswith("warning: no rule given (--max, --min, --drop-flagged or --decisions): every "
                                    "scored record is kept, only quarantined ones are rejected\n")
    assert "4 input records: 3 kept, 1 rejected (1 quarantined)" in result.output


def test_merged_shards_filter_from_another_directory(tmp_path, monkeypatch, planted):
    root = tmp_path / "project"
    root.mkdir()
    write_jsonl(root / "train.jsonl", RECORDS)
    monkeypatch.chdir(root)
    for i in (0, 1):
        assert planted.invoke("scan", "train.jsonl", "--base-responses", "none", "-q", "--shard", f"{i}/2",
                              "--out", f"shards/s{i}").exit_code == 0
    assert planted.invoke("merge", "shards/s0", "shards/s1", "--out", "merged/all").exit_code == 0
    monkeypatch.chdir(tmp_path)
    result = planted.invoke("filter", str(root / "merged" / "all"), "--drop-flagged", "-o", "kept.jsonl")
    assert result.exit_code == 0, result.output
    assert len(_kept(Path("kept.jsonl"))) == 2
