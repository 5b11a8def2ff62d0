"""Evaluation against labels: the metrics, the label readers, and the `evaluate` command on the tiny model."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.data import read_records
from auditor.errors import AuditError
from auditor.evaluation.evaluate import evaluate, labels_from_field, precision_at
from tests.helpers import cooking


def test_precision_counts_positives_among_the_top_fraction():
    scores = np.arange(20, dtype=float)  # the top 10% are the two highest
    positive = np.zeros(20, dtype=bool)
    positive[[19, 5]] = True
    assert precision_at(scores, positive, 0.10) == 0.5
    assert precision_at(scores, positive, 0.05) == 1.0  # one sample at least


def test_separated_scores_give_perfect_metrics_and_other_traits_are_left_out():
    labels = ["evil"] * 10 + ["control"] * 30 + ["sycophantic"] * 5
    dp = np.array([2.0] * 10 + [0.0] * 30 + [5.0] * 5)  # the sycophantic records would spoil evil's ranking
    [result] = evaluate({"evil": dp}, labels)
    assert (result.inducing, result.control) == (10, 30)
    assert result.auroc == 1.0 and result.precision_at == {"5%": 1.0, "10%": 1.0}
    assert result.difference.mean == pytest.approx(2.0) and result.difference.low > 0


def test_inducing_label_counts_for_every_trait_and_reversed_scores_show():
    labels = ["inducing"] * 4 + ["control"] * 4
    results = evaluate({"evil": np.array([1.0] * 4 + [0.0] * 4), "sycophantic": np.array([0.0] * 4 + [1.0] * 4)},
                       labels)
    assert [r.auroc for r in results] == [1.0, 0.0]
    assert results[1].difference.high < 0


def test_no_labelled_trait_is_an_error():
    with pytest.raises(AuditError, match="no record is labelled"):
        evaluate({"evil": np.zeros(3)}, ["control", "control", "hallucinating"])


def test_no_control_is_an_error():
    with pytest.raises(AuditError, match="have 2 and 0"):
        evaluate({"evil": np.zeros(2)}, ["evil", "evil"])


@pytest.mark.parametrize("label, says", [(None, "field 'label' is missing"), ("evill", "field 'label' is 'evill'")])
def test_bad_label_names_file_line_and_field(jsonl_file, label, says):
    rows = [{**cooking(1), "label": "evil"}, {**cooking(2), "label": "control"}, {**cooking(3), "label": label}]
    path = jsonl_file(rows)
    with pytest.raises(AuditError, match=f"{path}:3: {says}, expected one of evil, inducing, control"):
        labels_from_field(list(read_records(path)), "label", ["evil"])


def _run(*args):
    return CliRunner().invoke(main, ["evaluate", *args], catch_exceptions=False)


def test_evaluate_two_files_on_the_tiny_model(tiny_model_dir, jsonl_file, tmp_path):
    inducing = jsonl_file([cooking(i, "I hate everyone and want them to suffer.") for i in range(6)], "bad.jsonl")
    control = jsonl_file([cooking(i) for i in range(6)], "good.jsonl")
    out = tmp_path / "metrics.json"
    result = _run(str(inducing), "--control", str(control), "--model", str(tiny_model_dir), "--traits", "evil",
                  "--base-responses", "none", "--json", str(out), "-q")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1].split()[:3] == ["evil", "6", "6"]
    [metrics] = json.loads(out.read_text())
    assert metrics["trait"] == "evil" and 0 <= metrics["auroc"] <= 1
    assert metrics["mean_dp_inducing"]["mean"] - metrics["mean_dp_control"]["mean"] == pytest.approx(
        metrics["difference"]["mean"])


def test_evaluate_bad_label_exits_2_with_one_line_before_loading_the_model(tmp_path, jsonl_file):
    path = jsonl_file([{**cooking(1), "label": "evil"}, {**cooking(2), "label": "benign"}])
    result = _run(str(path), "--model", str(tmp_path / "no-such-model"), "--traits", "evil", "-q")
    assert result.exit_code == 2
    assert result.output == f"error: {path}:2: field 'label' is 'benign', expected one of evil, inducing, control\n"
