"""`scan --shard i/n` and `merge`: shards partition the records, and merged shards equal one full scan."""

import json

import pytest

from auditor.errors import AuditError
from auditor.scanning.engines.local import read_inputs
from auditor.scanning.shard import Shard
from tests.helpers import assert_same_scan, cooking, run, scan_on, write_jsonl


@pytest.fixture
def data(tmp_path):
    """Two files, with broken records and records without a base answer in `answers`."""
    first = [cooking(i, "Try pasta. " * (i % 4 + 1)) for i in range(7)]
    first[2] = "{broken"
    first[5] = {"messages": [{"role": "user", "content": "only a question"}]}
    second = [cooking(10 + i, "I hate you. " * (i % 3 + 1)) for i in range(6)]
    second[4] = {"prompt": "no answer"}
    folder = tmp_path / "data"
    folder.mkdir()
    for name, rows in (("a.jsonl", first), ("b.jsonl", second)):
        write_jsonl(folder / name, rows)
    return folder


@pytest.mark.parametrize("text", ["3/2", "2/2", "1/0", "a/b", "1", "-1/2"])
def test_bad_shard_is_a_usage_error(text, data, tmp_path):
    result = run("scan", data, "--shard", text, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output.startswith(f"error: --shard {text}") and result.output.count("\n") == 1


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_shards_partition_the_records_in_input_order(data, count):
    full = read_inputs([str(data)], 11)
    parts = [read_inputs([str(data)], 11, Shard.parse(f"{i}/{count}")) for i in range(count)]
    where = lambda items: [(x.source, x.index) for x in items]  # noqa: E731
    for k in (1, 2):  # records, then quarantined
        together = sorted(w for part in parts for w in where(part[k]))
        assert together == sorted(where(full[k]))
        assert len(together) == len(set(together))
    assert Shard(1, 3).takes(4) and not Shard(1, 3).takes(5)


@pytest.mark.parametrize("base", ["generate", "answers"])
def test_merged_shards_equal_one_full_scan(data, tmp_path, tiny_model_dir, base):
    extra = ["--limit", "12"]
    if base == "answers":  # some prompts have no base answer: those records are quarantined in their shard
        answers = tmp_path / "answers.jsonl"
        write_jsonl(answers, [cooking(i, "Try rice.") for i in (0, 1, 3, 10, 11, 12)])
        extra += ["--base-responses", answers]
    full = scan_on(tiny_model_dir, data, tmp_path / "full", *extra)
    shards = [scan_on(tiny_model_dir, data, tmp_path / f"shard{i}", "--shard", f"{i}/2", *extra) for i in (1, 0)]
    result = run("merge", *shards, "--out", tmp_path / "merged")
    assert result.exit_code == 0, result.output
    merged = tmp_path / "merged"
    assert_same_scan(merged, full)
    summary = json.loads((merged / "summary.json").read_text())
    assert summary["records"]["total"] == 12
    manifest = json.loads((merged / "manifest.json").read_text())
    assert manifest["settings"]["shard"] is None
    assert [s["shard"] for s in manifest["shards"]] == ["0/2", "1/2"]
    assert (merged / "report.html").is_file()
    gated = run("merge", *shards, "--out", tmp_path / "gated", "--fail-on", "evil:flagged>=0")
    assert gated.exit_code == 1 and "FAILED evil:flagged>=0" in gated.output
    one_shard = run("filter", shards[0], "-o", tmp_path / "kept.jsonl")
    assert one_shard.exit_code == 2 and "merge` the shards, then filter" in one_shard.output


def _fake_shard(path, shard, **settings):
    """A shard folder whose manifest says `shard` (only the manifest is read before the checks)."""
    path.mkdir(parents=True)
    manifest = {"tool_version": "x", "model": {"name": "m"}, "dtype": "float32", "inputs": [{"path": "d"}],
                "vectors": {"evil": {"layer": 1, "sha256": "s", "source": str(path)}},
                "settings": {"shard": shard, "threshold": 0.5, **settings}}
    (path / "manifest.json").write_text(json.dumps(manifest))
    return path


@pytest.mark.parametrize("shards, says", [
    ([("a", "0/2"), ("b", "0/2")], "shard 0/2 given twice"),
    ([("a", "0/3"), ("b", "2/3")], "shard 1/3 missing"),
    ([("a", "0/2"), ("b", "1/3")], "different shard counts"),
    ([("a", "0/2"), ("b", "1/2", {"threshold": 0.9})], "differs from"),
    ([("a", "0/2"), ("b", "1/2", {"turns": "all"})], "--turns"),
    ([("a", "0/2"), ("b", None)], "not a shard"),
])
def test_merge_refuses_mismatched_shards(tmp_path, shards, says):
    dirs = [_fake_shard(tmp_path / name, shard, **(rest[0] if rest else {})) for name, shard, *rest in shards]
    result = run("merge", *dirs, "--out", tmp_path / "merged")
    assert result.exit_code == 2 and says in result.output and result.output.count("\n") == 1


def test_merge_of_a_folder_without_a_manifest(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run("merge", tmp_path / "empty", "--out", tmp_path / "merged")
    assert result.exit_code == 2 and "no scan manifest.json" in result.output


def test_shard_setting_is_checked_before_any_work():
    with pytest.raises(AuditError, match="shard='2/2'"):
        Shard.parse("2/2")
