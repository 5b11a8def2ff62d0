"""Interrupted scans resume from their on-disk progress and end with the results of a clean run."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import auditor.model.activations as activations
from auditor.config import ScanConfig
from auditor.scanning import scan
from auditor.scanning.projection import ModelProjector
from tests.helpers import cooking

COMMAND = [str(Path(sys.executable).with_name("dataset-audit")), "scan"]


def _data(jsonl_file, n=40):
    return jsonl_file([cooking(i, "Try pasta. " * (1 + i % 7)) for i in range(n)])


def test_finished_chunks_are_not_recomputed(tiny_lm, jsonl_file, monkeypatch):
    config = ScanConfig(inputs=[str(_data(jsonl_file))], model="tiny", traits=["evil"], batch_size=2,
                        base_responses="none")
    real, calls = activations.response_means, []

    def interrupted(lm, pairs, *args, **kwargs):
        if len(calls) == 2:
            raise KeyboardInterrupt
        calls.append(len(pairs))
        return real(lm, pairs, *args, **kwargs)

    monkeypatch.setattr(activations, "response_means", interrupted)
    try:
        scan(config, projector=ModelProjector.with_model(tiny_lm))
    except KeyboardInterrupt:
        pass
    assert calls == [16, 16]  # two chunks of 8 batches finished before the interrupt
    calls.clear()
    monkeypatch.setattr(activations, "response_means", lambda lm, pairs, *a, **k: calls.append(len(pairs)) or real(
        lm, pairs, *a, **k))
    resumed = scan(config, projector=ModelProjector.with_model(tiny_lm)).traits[0].dp
    assert calls == [8]  # only the 8 samples left
    monkeypatch.setenv("DATASET_AUDIT_CACHE", str(Path(os.environ["DATASET_AUDIT_CACHE"]) / "clean"))
    np.testing.assert_allclose(resumed, scan(config, projector=ModelProjector.with_model(tiny_lm)).traits[0].dp, atol=1e-6)


@pytest.mark.slow
def test_sigkill_then_rerun_equals_a_clean_run(tiny_model_dir, jsonl_file, tmp_path):
    data = _data(jsonl_file, n=400)
    args = [str(data), "--model", str(tiny_model_dir), "--traits", "evil", "--batch-size", "1",
            "--base-responses", "none", "-q"]
    env = {**os.environ, "DATASET_AUDIT_CACHE": str(tmp_path / "killed")}
    proc = subprocess.Popen([*COMMAND, *args, "--out", str(tmp_path / "a")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress = tmp_path / "killed" / "projections"
    deadline = time.time() + 120
    while time.time() < deadline and not (progress.is_dir() and any(p.stat().st_size for p in progress.iterdir())):
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "a" / "scores.parquet").exists()  # killed before the end: no half-written output
    done = sum(1 for p in progress.iterdir() for _ in open(p))
    assert 0 < done < 400
    resumed = subprocess.run([*COMMAND, *args, "--out", str(tmp_path / "a")], env=env, capture_output=True)
    clean = subprocess.run([*COMMAND, *args, "--out", str(tmp_path / "b")], capture_output=True,
                           env={**os.environ, "DATASET_AUDIT_CACHE": str(tmp_path / "clean")})
    assert resumed.returncode == clean.returncode == 0, resumed.stderr
    a, b = (pq.read_table(tmp_path / d / "scores.parquet") for d in ("a", "b"))
    assert a.column("sample_id") == b.column("sample_id")
    np.testing.assert_allclose(a.column("evil_dp").to_numpy(), b.column("evil_dp").to_numpy(), atol=1e-5)
