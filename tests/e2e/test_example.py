"""The bundled example: planted samples rank above benign ones (cheap mode in CI; see README for both modes)."""

import csv

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sklearn.metrics import roc_auc_score

from auditor.cli import main
from tests.helpers import EXAMPLES

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the 135M model on CPU; the first test converts it


def test_planted_samples_rank_above_benign_ones_in_cheap_mode(tmp_path, on_embedded_model):
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["scan", str(EXAMPLES / "chat_mix.jsonl"), "--base-responses", "none",
                                       "--batch-size", "16", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    with open(EXAMPLES / "chat_mix.labels.csv", newline="") as fh:
        categories = np.array([row["category"] for row in csv.DictReader(fh)])
    table = pq.read_table(out / "scores.parquet")
    assert table.column("index").to_pylist() == list(range(270))
    for trait in ("evil", "sycophantic", "hallucinating"):
        score = table.column(f"{trait}_score").to_numpy()
        mask = (categories == trait) | (categories == "benign")
        assert roc_auc_score(categories[mask] == trait, score[mask]) >= 0.9, trait
