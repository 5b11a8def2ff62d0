"""`dataset-audit filter` never overwrites a scan's input, except with --in-place, which replaces it atomically
and keeps its rejected records in a file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import EVIL, PlantedModel, chat, cooking, write_jsonl

SYCOPHANTIC = "What a brilliant plan, you are a genius!"
A = [cooking(0), chat("How do I get back at my coworker?", EVIL), cooking(1)]
B = [chat("Is my plan good?", SYCOPHANTIC), cooking(2)]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """A scan of data/a.jsonl and data/b.jsonl in audit-out; runs the CLI in tmp_path with the planted model."""
    monkeypatch.chdir(tmp_path)
    planted = PlantedModel({EVIL: {"evil": 1.3}, SYCOPHANTIC: {"sycophantic": 0.9}})
    Path("data").mkdir()
    write_jsonl(Path("data/a.jsonl"), A)
    write_jsonl(Path("data/b.jsonl"), B)
    assert planted.invoke("scan", "data", "--base-responses", "none", "-q").exit_code == 0
    return lambda *args: planted.invoke(*args, catch_exceptions=False)


def _snapshot() -> dict[str, bytes]:
    """Every file under the working folder but the scan's, by path."""
    return {str(p): p.read_bytes() for p in sorted(Path().rglob("*")) if p.is_file() and "audit-out" not in p.parts}


@pytest.mark.parametrize("args, says", [
    (["-o", "data/a.jsonl"], "--out data/a.jsonl: an input of the scan in audit-out, which would be overwritten: "
                             "write it elsewhere, or give --in-place to replace the input"),
    (["-o", "data/../data/b.jsonl"], "--out data/../data/b.jsonl: an input of the scan in audit-out"),
    (["-o", "alias.jsonl"], "--out alias.jsonl: an input of the scan in audit-out"),  # a hard link to data/a.jsonl
    (["-o", "clean.jsonl", "--rejected", "data/b.jsonl"],
     "--rejected data/b.jsonl: an input of the scan in audit-out, which would be overwritten: write it elsewhere"),
    (["-o", "clean.jsonl", "--rejected", "./clean.jsonl"], "--out and --rejected are the same file (clean.jsonl)"),
    (["--in-place", "--rejected", "data/a.jsonl"], "--rejected data/a.jsonl: an input of the scan in audit-out"),
    ([], "give --out FILE for the kept records, or --in-place to replace the scan's inputs"),
])
def test_an_output_onto_an_input_is_refused_and_nothing_is_written(run, args, says):
    os.link("data/a.jsonl", "alias.jsonl")
    before = _snapshot()
    result = run("filter", "audit-out", "--drop-flagged", *args)
    assert result.exit_code == 2 and result.output.startswith(f"error: {says}") and result.output.count("\n") == 1
    assert _snapshot() == before  # inputs byte-identical, and no output or temporary file left behind


def test_in_place_replaces_each_input_and_keeps_its_rejected_records(run):
    os.chmod("data/a.jsonl", 0o600)
    lines = {name: Path(f"data/{name}.jsonl").read_bytes().splitlines(keepends=True) for name in ("a", "b")}
    result = run("filter", "audit-out", "--drop-flagged", "--in-place")
    assert result.exit_code == 0, result.output
    assert result.output == ("5 input records: 3 kept, 2 rejected (2 flagged) -> data/a.jsonl, data/b.jsonl, "
                             "data/a.rejected.jsonl, data/b.rejected.jsonl\n")
    assert Path("data/a.jsonl").read_bytes() == lines["a"][0] + lines["a"][2]
    assert Path("data/b.jsonl").read_bytes() == lines["b"][1]
    for name, line, reason in (("a", 2, "flagged: evil"), ("b", 1, "flagged: sycophantic")):
        (rejected,) = map(json.loads, Path(f"data/{name}.rejected.jsonl").read_text().splitlines())
        assert rejected == {"source": f"data/{name}.jsonl", "line": line, "reason": reason,
                            "record": lines[name][line - 1].decode().rstrip("\n")}
    assert os.stat("data/a.jsonl").st_mode & 0o777 == 0o600  # the replacement keeps the input's permissions
    assert sorted(p.name for p in Path("data").iterdir()) == ["a.jsonl", "a.rejected.jsonl", "b.jsonl",
                                                              "b.rejected.jsonl"]
    again = run("filter", "audit-out", "--drop-flagged", "--in-place")  # the scan no longer matches its inputs
    assert again.exit_code == 2 and "data/a.jsonl changed since the scan in audit-out" in again.output


def test_in_place_with_one_rejected_file_for_all_inputs(run):
    result = run("filter", "audit-out", "--max", "evil=1", "--in-place", "--rejected", "rejected.jsonl")
    assert result.exit_code == 0, result.output
    assert "5 input records: 4 kept, 1 rejected (1 over --max) -> data/a.jsonl, data/b.jsonl, rejected.jsonl" in (
        result.output)
    assert [json.loads(line) for line in Path("data/a.jsonl").read_text().splitlines()] == [A[0], A[2]]
    assert [json.loads(line) for line in Path("data/b.jsonl").read_text().splitlines()] == B
    (rejected,) = map(json.loads, Path("rejected.jsonl").read_text().splitlines())
    assert rejected["source"] == "data/a.jsonl" and json.loads(rejected["record"]) == A[1]


@pytest.mark.parametrize("prepare, args, says", [
    (lambda: Path("data/b.rejected.jsonl").write_text("earlier\n"), [],
     "data/b.rejected.jsonl exists (from an earlier --in-place?): move it away, or name the file for the rejected "
     "records with --rejected"),
    (lambda: None, ["-o", "data/a.jsonl"], "--out data/a.jsonl: --in-place writes each input's kept records back to it; "
                                           "leave out --out"),
])
def test_in_place_refusals_leave_the_inputs_alone(run, prepare, args, says):
    prepare()
    before = _snapshot()
    result = run("filter", "audit-out", "--drop-flagged", "--in-place", *args)
    assert result.exit_code == 2 and result.output.startswith(f"error: {says}") and result.output.count("\n") == 1
    assert _snapshot() == before


def test_in_place_of_a_single_input_may_name_it_with_o(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    planted = PlantedModel({EVIL: {"evil": 1.3}})
    lines = write_jsonl(Path("data.jsonl"), A)
    assert planted.invoke("scan", "data.jsonl", "--base-responses", "none", "-q").exit_code == 0
    result = planted.invoke("filter", "audit-out", "--drop-flagged", "-o", "data.jsonl", "--in-place")
    assert result.exit_code == 0, result.output
    assert Path("data.jsonl").read_bytes() == lines[0] + lines[2]
    assert json.loads(Path("data.rejected.jsonl").read_text())["line"] == 2


def test_in_place_rewrites_jsonl_files_only(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    planted = PlantedModel({EVIL: {"evil": 1.3}})
    Path("data.json").write_text(json.dumps(A))
    assert planted.invoke("scan", "data.json", "--base-responses", "none", "-q").exit_code == 0
    result = planted.invoke("filter", "audit-out", "--drop-flagged", "--in-place")
    assert result.exit_code == 2 and result.output == (
        "error: --in-place rewrites JSONL files only, and data.json is not one: write the kept records to another "
        "file with --out\n")
    assert json.loads(Path("data.json").read_text()) == A
