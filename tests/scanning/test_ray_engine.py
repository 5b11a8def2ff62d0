"""`scan --engine ray`: the same scores as the local engine, on a local 2-CPU Ray instance the test starts."""

import builtins
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.helpers import ROOT, assert_same_scan, cooking, imported_after, run, scan_on, write_jsonl


def test_ray_engine_without_ray_says_how_to_install(monkeypatch, jsonl_file, tmp_path):
    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    result = run("scan", jsonl_file([cooking(0)]), "--engine", "ray", "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert result.output == ("error: --engine ray: Ray is not installed; "
                             "install with pip install 'dataset-audit[ray]'\n")


@pytest.mark.parametrize("extra, says", [
    (["--shard", "0/2"], "--shard splits a local scan"),
    (["--baseline", "prev.parquet"], "--baseline works with the local engine only"),
])
def test_ray_engine_usage_errors(jsonl_file, tmp_path, extra, says):
    result = run("scan", jsonl_file([cooking(0)]), "--engine", "ray", "--out", tmp_path / "out", *extra)
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
def data(tmp_path):
    """Two files (JSONL and Parquet) with a broken line, a record without an answer, and a multi-turn record."""
    rows = [cooking(i, "Try pasta. " * (i % 5 + 1)) for i in range(9)]
    rows[2] = "{broken"
    rows[6] = {"messages": [{"role": "user", "content": "only a question"}]}
    rows[4] = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "I hate you."},
                            {"role": "user", "content": "b"}, {"role": "assistant", "content": "Try rice."}]}
    folder = tmp_path / "data"
    folder.mkdir()
    write_jsonl(folder / "a.jsonl", rows)
    pq.write_table(pa.Table.from_pylist([cooking(20 + i, "No. " * (i + 1)) for i in range(4)]), folder / "b.parquet")
    return folder


def test_core_install_has_neither_ray_nor_vllm():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith(("ray", "vllm"))]
    code = "import auditor, auditor.cli, auditor.scanning.engines.local, auditor.api, auditor.outputs.merge"
    assert imported_after(code, ("ray", "vllm")) == []


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["none", "generate", "file"])
def test_ray_engine_gives_the_local_scores(local_ray, data, tmp_path, tiny_model_dir, mode):
    if mode == "file":  # base answers from a file: records without one are quarantined on the workers
        mode = tmp_path / "answers.jsonl"
        write_jsonl(mode, [cooking(i, "Try rice.") for i in (0, 1, 3, 5, 20, 21)])
    extra = ["--base-responses", mode, "--turns", "all", "--limit", "12"]
    local = scan_on(tiny_model_dir, data, tmp_path / "local", *extra, batch_size=2)
    on_ray = scan_on(tiny_model_dir, data, tmp_path / "ray", *extra, "--engine", "ray",
                     "--concurrency", "2" if mode == "none" else "1", batch_size=2)  # 2 CPUs: 2 actors
    assert_same_scan(on_ray, local)
    rows = pq.read_metadata(local / "scores.parquet").num_rows
    assert rows == (10 if mode in ("none", "generate") else 6)
    assert json.loads((local / "summary.json").read_text())["records"]["total"] == 12
    assert json.loads((on_ray / "manifest.json").read_text())["settings"]["engine"] == "ray"


def test_reader_keeps_every_row_with_its_line_in_blocks(tmp_path, monkeypatch):
    pytest.importorskip("ray", reason="Ray is not installed (pip install 'dataset-audit[ray]')")
    import gzip

    import pyarrow.fs as pafs

    import auditor.scanning.engines.ray as engine
    from auditor.data import read_records

    path = tmp_path / "d.jsonl.gz"
    lines = [json.dumps(cooking(i)) for i in range(5)]
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


def test_more_actors_than_a_local_instance_holds_is_a_usage_error(local_ray, jsonl_file, tmp_path):
    result = run("scan", jsonl_file([cooking(0)]), "--engine", "ray", "--concurrency", "3", "--out", tmp_path / "out")
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
