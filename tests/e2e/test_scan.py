"""Scans on the embedded model through the real CLI: the installed command quarantines broken lines, and the
batch size does not change a score."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.helpers import EXAMPLES, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the 135M model on CPU; the first test converts it
EXAMPLE = EXAMPLES / "chat_mix.jsonl"


def _fifty_with_three_broken(tmp_path) -> Path:
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines()[:50]
    for at in (10, 25, 40):
        lines.insert(at, '{"messages": [{"role": "user", "content": "cut off')
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_malformed_lines_are_quarantined_through_the_installed_command(tmp_path, on_embedded_model):
    data, out = _fifty_with_three_broken(tmp_path), tmp_path / "out"
    proc = subprocess.run([Path(sys.executable).with_name("dataset-audit"), "scan", str(data), "--out", str(out),
                           "--base-responses", "none", "-q"], capture_output=True, text=True, env=os.environ)
    assert proc.returncode == 0, proc.stderr
    assert "53 records: 50 scored, 3 quarantined" in proc.stderr
    quarantine = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    assert [q["line"] for q in quarantine] == [11, 26, 41]
    assert all(q["reason"].startswith("invalid JSON") for q in quarantine)
    summary = json.loads((out / "summary.json").read_text())
    flagged = summary["records"].pop("flagged")
    assert summary["records"] == {"total": 53, "scored": 50, "quarantined": 3, "truncated": 0, "reused": 0,
                                  "quarantine_reasons": {"invalid JSON": 3}}
    table = pq.read_table(out / "scores.parquet")
    assert table.num_rows == 50 and set(table.column("line").to_pylist()).isdisjoint({11, 26, 41})
    for name in ("manifest.json", "report.html"):
        assert (out / name).is_file()
    assert proc.stdout == ""  # -q: only the closing line, on stderr
    flags = sum(t["flagged"] for t in summary["traits"].values())
    assert proc.stderr.strip().splitlines()[-1] == (
        f"53 records: 50 scored, 3 quarantined; {flags} flag{'s' * (flags != 1)} on {flagged} "
        f"sample{'s' * (flagged != 1)} -> {out}/")


def test_batch_size_1_and_8_give_the_same_dp(tmp_path, on_embedded_model):
    """With base answers generated afresh in each run (separate caches)."""
    dps = []
    for batch in (1, 8):
        for cached in ("base-answers", "projections"):  # each run generates and scores afresh
            shutil.rmtree(on_embedded_model / cached, ignore_errors=True)
        result = run("scan", str(EXAMPLE), "--limit", "8", "--batch-size", str(batch), "--max-new-tokens", "24",
                     "--out", str(tmp_path / f"b{batch}"), "-q")
        assert result.exit_code == 0, result.output
        table = pq.read_table(tmp_path / f"b{batch}" / "scores.parquet")
        dps.append(np.array([table.column(f"{t}_dp").to_numpy() for t in ("evil", "sycophantic", "hallucinating")]))
    np.testing.assert_allclose(dps[0], dps[1], atol=1e-4)
