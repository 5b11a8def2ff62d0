"""`scan --engine ray`: the same scores as the local engine, on a local 2-CPU Ray instance the test starts."""

import builtins
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import chat

from auditor.cli import main


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_ray_engine_without_ray_says_how_to_install(monkeypatch, write_jsonl, tmp_path):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = run("scan", write_jsonl([chat(0)]), "--engine", "ray", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output == ("error: --engine ray: Ray is not installed; "
                             "install with pip install 'dataset-audit[ray]'\n")


@pytest.mark.parametrize("extra, says", [
    (["--shard", "0/2"], "--shard splits a local scan"),
    (["--baseline", "prev.parquet"], "--baseline works with the local engine only"),
])
def test_ray_engine_usage_errors(write_jsonl, tmp_path, extra, says):
    result = run("scan", write_jsonl([chat(0)]), "--engine", "ray", "--out", tmp_path / "out", *extra)
    assert result.exit_code == 2 and says in result.output


@pytest.fixture(scope="module")
def local_ray():
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'dataset-audit[ray]')")
    if ray.is_initialized():  # an earlier in-process scan may have started one
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def data(tmp_path, write_jsonl):
    """Two files (JSONL and Parquet) with a broken line, a record without an answer, and a multi-turn record."""
    rows = [chat(i, "Try pasta. " * (i % 5 + 1)) for i in range(9)]
    rows[2] = "{broken"
    rows[6] = {"messages": [{"role": "user", "content": "only a question"}]}
    rows[4] = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "I hate you."},
                            {"role": "user", "content": "b"}, {"role": "assistant", "content": "Try rice."}]}
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(rows, "data/a.jsonl")
    pq.write_table(pa.Table.from_pylist([chat(20 + i, "No. " * (i + 1)) for i in range(4)]), folder / "b.parquet")
    return folder


def _scan(data, tmp_path, monkeypatch, tiny_model_dir, name, *extra):
    monkeypatch.setenv("DATASET_AUDIT_CACHE", str(tmp_path / f"cache-{name}"))  # nothing cached is shared
    out = tmp_path / name
    result = run("scan", data, "--model", tiny_model_dir, "--traits", "evil", "--max-new-tokens", "4",
                 "--batch-size", "2", "--out", out, "-q", *extra)
    assert result.exit_code == 0, result.output
    return out


def test_core_install_has_neither_ray_nor_vllm():
    import subprocess
    import sys
    import tomllib
    from pathlib import Path

    project = tomllib.loads((Path(__file__).parent.parent / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith(("ray", "vllm"))]
    code = ("import sys, auditor, auditor.cli, auditor.scanning.engines.local, auditor.api, auditor.outputs.merge; "
            "print(sorted(m for m in ('ray', 'vllm') if m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["none", "generate", "file"])
def test_ray_engine_gives_the_local_scores(local_ray, data, tmp_path, monkeypatch, tiny_model_dir, mode):
    if mode == "file":  # base answers from a file: records without one are quarantined on the workers
        mode = tmp_path / "answers.jsonl"
        mode.write_text("".join(json.dumps(chat(i, "Try rice.")) + "\n" for i in (0, 1, 3, 5, 20, 21)))
    extra = ["--base-responses", mode, "--turns", "all", "--limit", "12"]
    local = _scan(data, tmp_path, monkeypatch, tiny_model_dir, "local", *extra)
    on_ray = _scan(data, tmp_path, monkeypatch, tiny_model_dir, "ray", *extra, "--engine", "ray",
                   "--concurrency", "2" if mode == "none" else "1")  # 2 CPUs: 2 actors
    a, b = pq.read_table(on_ray / "scores.parquet"), pq.read_table(local / "scores.parquet")
    assert a.schema == b.schema and a.num_rows == b.num_rows == (10 if mode in ("none", "generate") else 6)
    for name in a.schema.names:
        if name.endswith(("_dp", "_score")):
            np.testing.assert_allclose(a[name].to_numpy(), b[name].to_numpy(), rtol=0, atol=1e-5)
        else:
            assert a[name].to_pylist() == b[name].to_pylist(), name
    assert (on_ray / "quarantine.jsonl").read_text() == (local / "quarantine.jsonl").read_text()
    one, two = (json.loads((d / "summary.json").read_text()) for d in (on_ray, local))
    assert one["records"] == two["records"] and one["records"]["total"] == 12
    assert json.loads((on_ray / "manifest.json").read_text())["settings"]["engine"] == "ray"


def test_reader_keeps_every_row_with_its_line_in_blocks(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'dataset-audit[ray]')")
    import gzip

    import pyarrow.fs as pafs

    import auditor.scanning.engines.ray as engine
    from auditor.data import read_records

    path = tmp_path / "d.jsonl.gz"
    lines = [json.dumps(chat(i)) for i in range(5)]
    path.write_bytes(gzip.compress(("\n".join(lines[:2] + ["", "{broken"] + lines[2:]) + "\n").encode()))
    monkeypatch.setattr(engine, "BLOCK_ROWS", 2)
    source = engine._datasource([str(path)])
    with pafs.LocalFileSystem().open_input_file(str(path)) as f:
        blocks = list(source._read_stream(f, str(path)))
    assert [b.num_rows for b in blocks] == [2, 2, 2]
    rows = pa.concat_tables(blocks).to_pylist()
    expected = list(read_records(path))
    assert [(r["line"], r["index"], r["reason"]) for r in rows] == [
        (x.line, x.index, getattr(x, "reason", None)) for x in expected]
    assert [r["line"] for r in rows] == [1, 2, 4, 5, 6, 7]


def test_more_actors_than_a_local_instance_holds_is_a_usage_error(local_ray, write_jsonl, tmp_path):
    result = run("scan", write_jsonl([chat(0)]), "--engine", "ray", "--concurrency", "3", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert "2 model stages x --concurrency 3 x 1 CPU = 6 CPUs, the Ray cluster has 2" in result.output


def test_ray_reads_files_and_saved_hf_datasets_as_the_local_engine_does(local_ray, data, tmp_path):
    from datasets import Dataset

    import auditor.scanning.engines.ray as engine
    from auditor.scanning.engines.local import read_inputs

    Dataset.from_list([{"prompt": f"P{i}", "completion": f"C{i}"} for i in range(3)]).save_to_disk(tmp_path / "hf")
    inputs = [str(tmp_path / "hf"), str(data)]
    files = engine.input_files(inputs)
    rows = sorted(engine._read(local_ray, files).take_all(), key=lambda r: (r["file_pos"], r["index"]))
    listed, records, quarantined = read_inputs(inputs)
    assert files == [str(f) for f in listed]
    expected = sorted(records + quarantined, key=lambda r: (files.index(r.source), r.index))
    assert [(r["source"], r["line"], r["reason"]) for r in rows] == [
        (x.source, x.line, getattr(x, "reason", None)) for x in expected]
    assert rows[0]["source"] == str(tmp_path / "hf") and json.loads(rows[0]["messages"])[0]["content"] == "P0"
