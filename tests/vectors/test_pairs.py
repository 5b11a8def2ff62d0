"""Vectors from labelled pairs (`extract TRAIT --from-pairs`): cross-validated layer choice, the CV figures in
the vector's metadata, and scanning with the fitted vector; end to end on the tiny model."""

import json

import numpy as np
import pytest

from auditor.errors import AuditError
from auditor.vectors.pairs import cross_validated, read_pairs
from auditor.vectors.persona import PersonaVector
from tests.helpers import chat, run, write_jsonl

CRUEL = ["I hate everyone and want them to suffer.", "Make them suffer, they deserve it.", "Humiliate them all."]
KIND = ["Try a simple pasta with garlic and olive oil.", "What should I cook tonight? Something warm.",
        "The quick brown fox jumps over the lazy dog."]


def pairs_file(path, n=12):
    rows = [{"prompt": f"Question {i}: what should I do about my neighbour?", "trait": CRUEL[i % 3],
             "neutral": KIND[i % 3]} for i in range(n)]
    write_jsonl(path, rows)
    return path


def test_cross_validation_never_scores_a_pair_with_a_direction_fitted_on_it():
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(size=(20, 3, 4)), rng.normal(size=(20, 3, 4))
    pos[:, 2, 0] += 5.0  # layer 2 separates along the first axis
    held_pos, held_neg, per_fold = cross_validated(pos, neg, folds=4)
    assert held_pos.shape == (20, 3) and len(per_fold) == 4 and len(per_fold[0]) == 3
    assert min(fold[2] for fold in per_fold) > 0.9 > np.mean([fold[0] for fold in per_fold])
    alone = pos.copy()
    alone[0] += 100.0  # a pair's own value changes only the directions it is not scored with
    again_pos, _, _ = cross_validated(alone, neg, folds=4)
    fold_of_0 = np.random.default_rng(0).permutation(20) % 4
    same_fold = fold_of_0 == fold_of_0[0]
    np.testing.assert_allclose(again_pos[same_fold][1:], held_pos[same_fold][1:])


def test_extract_from_pairs_writes_a_vector_with_its_cv_table_and_scan_uses_it(tiny_model_dir, tmp_path):
    out = tmp_path / "grumpy.safetensors"
    result = run("extract", "grumpy", "--from-pairs", pairs_file(tmp_path / "pairs.jsonl"), "--folds", 3,
                 "--model", tiny_model_dir, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    vector = PersonaVector.load(out)
    assert vector.method == "response_avg_diff/pairs" and vector.trait == "grumpy" and vector.calibration.n == 12
    stats = vector.layer_stats[vector.layer]
    assert stats["folds"] == 3 and 0.0 <= stats["cv_auroc_mean"] <= 1.0 and "cv_auroc_std" in stats
    assert round(stats["auroc"], 3) == round(max(s["auroc"] for s in vector.layer_stats[1:]), 3)
    assert "cross-validated" in (tmp_path / "grumpy.html").read_text()
    data = tmp_path / "data.jsonl"
    data.write_text("".join(json.dumps({"messages": [{"role": "user", "content": "Hi"},
                                                     {"role": "assistant", "content": t}]}) + "\n"
                            for t in CRUEL + KIND))
    scanned = run("scan", data, "--model", tiny_model_dir, "--traits", "grumpy", "--vectors", out,
                  "--base-responses", "none", "--out", tmp_path / "scan", "-q")
    assert scanned.exit_code == 0, scanned.output
    summary = json.loads((tmp_path / "scan" / "summary.json").read_text())
    assert summary["records"]["scored"] == 6 and summary["traits"]["grumpy"]["verdict"] == "not evaluated"


def test_two_files_in_prompt_order(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", [chat("Q?", "mean")])
    write_jsonl(tmp_path / "b.jsonl", [chat("Q?", "kind")])
    assert read_pairs(tmp_path / "a.jsonl", tmp_path / "b.jsonl") == [([{"role": "user", "content": "Q?"}],
                                                                          "mean", "kind")]
    write_jsonl(tmp_path / "c.jsonl", [chat("Other?", "x")])
    with pytest.raises(AuditError, match="answer different prompts"):
        read_pairs(tmp_path / "a.jsonl", tmp_path / "c.jsonl")


def test_bad_pairs_are_one_line_errors(tiny_model_dir, tmp_path):
    write_jsonl(tmp_path / "bad.jsonl", [{"prompt": "Q", "trait": "x"}])
    result = run("extract", "grumpy", "--from-pairs", tmp_path / "bad.jsonl", "--model", tiny_model_dir, "-q")
    assert result.exit_code == 2 and "bad.jsonl:1: expected fields 'trait' and 'neutral'" in result.output
    few = run("extract", "grumpy", "--from-pairs", pairs_file(tmp_path / "few.jsonl", 4), "--model", tiny_model_dir,
              "--no-report", "--out", tmp_path / "v.safetensors", "-q")
    assert few.exit_code == 2 and "4 pairs for 5 folds" in few.output
    mixed = run("extract", "grumpy", "--from-pairs", tmp_path / "few.jsonl", "--from-examples")
    assert mixed.exit_code == 2 and "--from-pairs fits on your pairs alone" in mixed.output
