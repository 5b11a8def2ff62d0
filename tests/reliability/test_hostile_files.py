"""Hostile files and hostile machines: nothing crashes and nothing passes silently.

An input with nothing to score (empty, every record quarantined, binary) still gets its scan outputs and exits 2
with one line; `validate` fails on it; a table of labels in a folder is skipped; a full disk or a read-only folder
is one line naming the file, leaves nothing half-written, and a rerun resumes; SIGTERM is handled like Ctrl-C.
"""

from __future__ import annotations

import builtins
import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import auditor.files
import auditor.model.activations as activations
from auditor.cache import KeyedStore
from auditor.cli import main
from auditor.config import ScanConfig
from auditor.scanning import scan
from auditor.scanning.projection import ModelProjector
from tests.helpers import PlantedModel, cooking, write_jsonl

OUTPUTS = ("quarantine.jsonl", "summary.json", "manifest.json", "scores.parquet", "report.html")
LABELS = "id,category\ncm-0001,evil\ncm-0002,benign\n"


def _binary(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).bytes(20_000))
    return path


NOTHING_TO_SCORE = {  # name -> (write the input, records in it, what the line says)
    "empty.jsonl": (lambda p: p.write_text(""), 0, "the inputs hold no records"),
    "one.csv": (lambda p: p.write_text("prompt,response\nhi,\n"), 1, "the one record was quarantined"),
    "bad.jsonl": (lambda p: write_jsonl(p, ["{not json", {"messages": []}, {"text": "no template"}]), 3,
                  "all 3 records were quarantined"),
    "blob.jsonl": (_binary, 1, "the one record was quarantined"),
    "labels.csv": (lambda p: p.write_text(LABELS), 2, "all 2 records were quarantined"),
}


@pytest.mark.parametrize("name", NOTHING_TO_SCORE)
def test_nothing_to_score_writes_the_outputs_and_exits_2(tmp_path, name):
    write, records, says = NOTHING_TO_SCORE[name]
    write(tmp_path / name)
    out = tmp_path / "out"
    result = PlantedModel().invoke("scan", str(tmp_path / name), "--base-responses", "none", "--out", str(out))
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: nothing to score") and says in lines[0]
    assert sorted(p.name for p in out.iterdir() if p.name in OUTPUTS) == sorted(OUTPUTS)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["records"] == {**summary["records"], "total": records, "scored": 0, "quarantined": records}
    if records:
        assert str(out / "quarantine.jsonl") in lines[0]
        assert len((out / "quarantine.jsonl").read_text().splitlines()) == records


def test_nothing_to_score_on_a_real_model(tiny_lm, tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    result = scan(ScanConfig(inputs=[str(tmp_path / "empty.jsonl")], model="tiny", traits=["evil"],
                             base_responses="none"), projector=ModelProjector.with_model(tiny_lm))
    assert result.records == [] and result.table().num_rows == 0
    assert result.summary()["records"]["total"] == 0


def _validate(*args: str):
    return CliRunner().invoke(main, ["validate", *args])


def test_validate_fails_on_an_empty_input(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    result = _validate(str(tmp_path / "empty.jsonl"))
    assert result.exit_code == 2 and result.output.startswith("error: no records in")


def test_validate_says_one_line_for_a_binary_file(tmp_path):
    result = _validate(str(_binary(tmp_path / "blob.jsonl")))
    assert result.exit_code == 1
    assert result.output.splitlines()[0] == f"{tmp_path / 'blob.jsonl'}:1: not a text data file (binary content " \
                                            "in its first bytes)"
    assert "1 record in 1 file: 0 good, 1 bad" in result.output


def test_validate_groups_alike_errors_and_caps_the_lines(tmp_path):
    data = tmp_path / "data.jsonl"
    write_jsonl(data, [cooking(0), *["{not json"] * 30, *[{"text": f"plain {i}"} for i in range(3)],
                       *[f'{{"messages": {i}}}' for i in range(4)]])
    lines = _validate(str(data)).output.splitlines()
    assert lines[0] == f"{data}:2: invalid JSON: Expecting property name enclosed in double quotes at column 2 " \
                       "(30 records, lines 2, 3, 4, 5, 6, ...)"
    assert lines[1].startswith(f"{data}:32: field 'text' is not in a chat template") and "(3 records, lines 32, " \
                                                                                         "33, 34)" in lines[1]
    assert lines[2] == f"{data}:35: field 'messages' is int, expected a list of messages (4 records, lines 35, 36, " \
                       "37, 38)"
    assert lines[-1] == "38 records in 1 file: 1 good, 37 bad"
    capped = _validate(str(data), "--max-errors", "1")
    assert capped.exit_code == 1
    assert capped.output.splitlines()[1] == "... and 2 more kinds of error in 7 records (raise --max-errors to see " \
                                            "them)"


def test_a_table_of_labels_in_a_folder_is_skipped_with_a_note(tmp_path):
    write_jsonl(tmp_path / "chat.jsonl", [cooking(i) for i in range(3)])
    (tmp_path / "chat.labels.csv").write_text(LABELS)
    (tmp_path / "pairs.csv").write_text("prompt,response\nhello,hi there\n")
    result = _validate(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "4 records in 2 files: 4 good, 0 bad" in result.output
    named = _validate(str(tmp_path / "chat.labels.csv"))  # named on its own, it is read and found bad
    assert named.exit_code == 1 and "(2 records, lines 2, 3)" in named.output


def test_the_skip_note_names_the_file_and_why(tmp_path, caplog):
    from auditor.data import expand_inputs

    write_jsonl(tmp_path / "chat.jsonl", [cooking(0)])
    (tmp_path / "chat.labels.csv").write_text(LABELS)
    with caplog.at_level("INFO", logger="auditor"):
        assert expand_inputs([tmp_path]) == [tmp_path / "chat.jsonl"]
    assert f"skipped {tmp_path / 'chat.labels.csv'}: its columns (id, category) fit no record format" in caplog.text


class Disk:
    """The builtin `open` for auditor.files, failing writes to files named `failing` with `code` (a full disk
    fails on write, a read-only or forbidden folder on open)."""

    def __init__(self, failing: str, code: int):
        self.failing, self.code = failing, code

    def __call__(self, file, mode="r", *args, **kwargs):
        handle = builtins.open(file, mode, *args, **kwargs)
        if "w" not in mode or f".{self.failing}.tmp-" not in Path(file).name:
            return handle
        if self.code != errno.ENOSPC:
            handle.close()
            os.unlink(file)
            raise OSError(self.code, os.strerror(self.code), str(file))
        write = handle.write

        def full(data):
            write(data[: len(data) // 2])  # half of it fits
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        handle.write = full
        return handle


@pytest.mark.parametrize("failing, code", [("report.html", errno.ENOSPC), ("scores.parquet", errno.ENOSPC),
                                           ("summary.json", errno.EROFS), ("report.html", errno.EACCES)])
def test_a_failed_write_is_one_line_leaves_nothing_half_written_and_a_rerun_resumes(
        tiny_lm, jsonl_file, tmp_path, monkeypatch, failing, code):
    data = jsonl_file([cooking(i) for i in range(12)])
    out = tmp_path / "out"
    args = ["scan", str(data), "--base-responses", "none", "--traits", "evil", "--out", str(out), "-q"]
    projector = ModelProjector.with_model(tiny_lm)
    monkeypatch.setattr(auditor.files, "open", Disk(failing, code), raising=False)
    result = CliRunner().invoke(main, args, obj={"projector": projector})
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: cannot write {out / failing}: {os.strerror(code)}"]
    assert not (out / failing).exists()
    assert not [p.name for p in out.iterdir() if ".tmp-" in p.name]  # no temporary file left behind
    monkeypatch.delattr(auditor.files, "open")  # space freed: the rerun computes nothing again
    calls = []
    real = activations.response_means
    monkeypatch.setattr(activations, "response_means", lambda *a, **k: calls.append(1) or real(*a, **k))
    rerun = CliRunner().invoke(main, args, obj={"projector": projector})
    assert rerun.exit_code == 0, rerun.output
    assert calls == [] and all((out / name).is_file() for name in OUTPUTS)


def test_a_cache_line_cut_by_a_full_disk_does_not_spoil_the_next_one(tmp_path):
    path = tmp_path / "store.jsonl"
    KeyedStore(path).add([("a", 1)])
    with open(path, "a") as fh:
        fh.write('{"key": "b", "val')  # the disk filled here
    store = KeyedStore(path)
    assert "b" not in store
    store.add([("c", 3)])
    assert KeyedStore(path).values == {"a": 1, "c": 3}


class _Terminating(PlantedModel):
    """A planted model that gets SIGTERM (a cancelled CI job) while it measures."""

    def __call__(self, config, show):
        projector = super().__call__(config, show)
        measure = projector.measure

        def measured(units, show_, answered=None):
            os.kill(os.getpid(), signal.SIGTERM)
            return measure(units, show_, answered)

        projector.measure = measured
        return projector


def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    before = signal.getsignal(signal.SIGTERM)  # SIG_DFL, or what an earlier test left (ray.init installs one)
    write_jsonl(tmp_path / "data.jsonl", [cooking(0)])
    result = _Terminating().invoke("scan", str(tmp_path / "data.jsonl"), "--base-responses", "none",
                                   "--out", str(tmp_path / "out"))
    assert result.exit_code == 143
    assert result.output.strip().splitlines()[-1].startswith("terminated: finished batches are cached in ")
    assert result.output.strip().endswith("run the same command again to resume")
    assert signal.getsignal(signal.SIGTERM) is before  # the command's handler is its own: the one before is back


@pytest.mark.slow
def test_sigterm_stops_a_real_scan_which_a_rerun_resumes(tiny_model_dir, jsonl_file, tmp_path):
    data = jsonl_file([cooking(i, "Try pasta. " * (1 + i % 7)) for i in range(400)])
    command = [str(Path(sys.executable).with_name("dataset-audit")), "scan", str(data), "--model",
               str(tiny_model_dir), "--traits", "evil", "--batch-size", "1", "--base-responses", "none", "-q",
               "--out", str(tmp_path / "out")]
    env = {**os.environ, "DATASET_AUDIT_CACHE": str(tmp_path / "cache")}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    progress = tmp_path / "cache" / "projections"
    deadline = time.time() + 120
    while time.time() < deadline and not (progress.is_dir() and any(p.stat().st_size for p in progress.iterdir())):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert stderr.strip().splitlines()[-1] == (f"terminated: finished batches are cached in {tmp_path / 'cache'}; "
                                               "run the same command again to resume")
    done = sum(1 for p in progress.iterdir() for _ in open(p))
    assert 0 < done < 400
    rerun = subprocess.run(command, env=env, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert sum(1 for p in progress.iterdir() for _ in open(p)) <= 400 + 1  # the rest only (+ a cut line)
