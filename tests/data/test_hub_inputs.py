"""Hugging Face dataset ids as input (hf://ORG/NAME[@REVISION][:SPLIT]), read offline from the local datasets cache.

The machines have no Hub, so the cache is made the way a `load_dataset("acme/chats")` run leaves it: the prepared
Arrow files under HF_DATASETS_CACHE/acme___chats/default/0.0.0/<commit>/, which `datasets` then finds offline.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

import auditor.model.activations as activations
from auditor.cli import main
from auditor.scanning.projection import ModelProjector
from tests.helpers import PlantedModel, cooking, write_jsonl

COMMIT = "1" * 40


@pytest.fixture
def hub_cache(tmp_path, monkeypatch) -> Path:
    """A datasets cache holding acme/chats (train: 5 records, test: 3), with the Hub unreachable."""
    import datasets
    import huggingface_hub.constants
    from datasets.data_files import DataFilesDict
    from datasets.packaged_modules.json.json import Json

    cache = tmp_path / "hf-datasets"
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    files = {}
    for split, n in (("train", 5), ("test", 3)):
        files[split] = tmp_path / "repo" / f"{split}.jsonl"
        files[split].parent.mkdir(exist_ok=True)
        write_jsonl(files[split], [{"id": f"{split}-{i}", **cooking(i)} for i in range(n)])
    builder = Json(data_files=DataFilesDict.from_patterns({k: [str(v)] for k, v in files.items()}),
                   dataset_name="chats", hash=COMMIT, cache_dir=str(cache))
    builder.download_and_prepare()
    (cache / "chats" / Path(builder.cache_dir).relative_to(cache / "chats").parts[0]).rename(cache / "chats" /
                                                                                            "default")
    (cache / "chats").rename(cache / "acme___chats")
    shutil.rmtree(tmp_path / "repo")  # only the cache is left
    return cache


def test_validate_reads_a_cached_dataset_and_its_splits(hub_cache):
    result = CliRunner().invoke(main, ["validate", "hf://acme/chats", "hf://acme/chats:test"])
    assert result.exit_code == 0, result.output
    assert "8 records in 2 files: 8 good, 0 bad" in result.output


@pytest.mark.parametrize("spec, says", [
    ("hf://acme/nope", "hf://acme/nope: not in the local Hugging Face cache ("),
    ("hf://acme/chats:dev", "hf://acme/chats:dev: no split 'dev' (splits: train, test)"),
    ("hf://acme/chats/more", "expected a Hugging Face dataset id hf://ORG/NAME[@REVISION][:SPLIT]"),
])
def test_a_dataset_that_is_not_there_is_one_line(hub_cache, spec, says):
    result = CliRunner().invoke(main, ["validate", spec])
    assert result.exit_code == 2 and result.output.startswith("error: ") and says in result.output
    assert result.output.count("\n") == 1


def test_scan_records_the_dataset_and_filter_reads_it_back(hub_cache, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    planted = PlantedModel({"Try a simple pasta, option 3.": {"evil": 1.5}})
    result = planted.invoke("scan", "hf://acme/chats:train", "--base-responses", "none", "-q")
    assert result.exit_code == 0, result.output
    scores = pq.read_table("audit-out/scores.parquet")
    assert scores.column("source").to_pylist() == ["hf://acme/chats:train"] * 5
    assert scores.column("line").to_pylist() == [1, 2, 3, 4, 5]
    entry = json.loads(Path("audit-out/manifest.json").read_text())["inputs"][0]
    assert entry["path"] == "hf://acme/chats:train"
    assert {k: entry["dataset"][k] for k in ("id", "revision", "split")} == {"id": "acme/chats", "revision": COMMIT,
                                                                           "split": "train"}
    assert len(entry["dataset"]["fingerprint"]) == 16
    kept = planted.invoke("filter", "audit-out", "--drop-flagged", "-o", "kept.jsonl")
    assert kept.exit_code == 0, kept.output
    ids = [json.loads(line)["id"] for line in Path("kept.jsonl").read_text().splitlines()]
    assert ids == ["train-0", "train-1", "train-2", "train-4"]


def test_a_dataset_scan_resumes_like_a_file(hub_cache, tiny_lm, tmp_path, monkeypatch):
    args = ["scan", "hf://acme/chats", "--base-responses", "none", "--traits", "evil", "-q",
            "--out", str(tmp_path / "out")]
    projector = ModelProjector.with_model(tiny_lm)
    assert CliRunner().invoke(main, args, obj={"projector": projector}).exit_code == 0
    calls, real = [], activations.response_means
    monkeypatch.setattr(activations, "response_means", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert CliRunner().invoke(main, args, obj={"projector": projector}).exit_code == 0
    assert calls == []  # every record's projections came from the cache
