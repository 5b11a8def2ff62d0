"""`scan --base-sample N`: base answers for a seeded sample of N records, the others' dP estimated from it, and a
dataset-level interval that a mean_dp gate is checked on.

The estimator tests run the real scan on the tiny random model; the output and gate tests run the real command with
planted scores (tests.helpers.PlantedModel); tests/e2e/test_base_sample.py runs it on the embedded model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

import auditor.model.activations as activations
import auditor.model.generation as generation
from auditor.config import ScanConfig
from auditor.data import Record, read_records
from auditor.errors import AuditError
from auditor.evaluation.card import MEANING
from auditor.scanning import scan
from auditor.scanning.base_sample import draw
from auditor.scanning.projection import ModelProjector
from tests.helpers import EVIL, PlantedModel, cooking, write_jsonl

N, RECORDS = 4, 12


def _config(path, **kw) -> ScanConfig:
    settings = dict(inputs=[str(path)], model="tiny", traits=["evil"], max_new_tokens=4, batch_size=4)
    return ScanConfig(**{**settings, **kw})


@pytest.fixture
def data(jsonl_file):
    return jsonl_file([cooking(i, "Try pasta. " * (i % 5 + 1)) for i in range(RECORDS)])


def _scan(tiny_lm, path, **kw):
    return scan(_config(path, **kw), projector=ModelProjector.with_model(tiny_lm))


# --- which records -----------------------------------------------------------------------------------------------

def _records(path) -> list[Record]:
    return [r for r in read_records(Path(path)) if isinstance(r, Record)]


def test_the_same_seed_draws_the_same_records_and_another_seed_others(data):
    records, everyone = _records(data), np.ones(RECORDS, dtype=bool)
    first = draw(records, everyone, N, seed=0)
    assert first.sum() == N
    assert (draw(records, everyone, N, seed=0) == first).all()
    assert any((draw(records, everyone, N, seed=s) != first).any() for s in (1, 2))
    reversed_order = draw(records[::-1], everyone, N, seed=0)[::-1]  # by content, not by position
    assert (reversed_order == first).all()


def test_only_computed_records_are_drawn(data):
    records = _records(data)
    computed = np.arange(RECORDS) % 2 == 0
    sampled = draw(records, computed, N, seed=0)
    assert sampled.sum() == N and not (sampled & ~computed).any()


def test_a_scan_marks_the_same_records_estimated_for_the_same_seed(tiny_lm, data):
    estimated = [_scan(tiny_lm, data, base_sample=N, base_sample_seed=seed).estimated for seed in (0, 0, 1)]
    assert estimated[0].sum() == RECORDS - N
    assert (estimated[0] == estimated[1]).all() and (estimated[0] != estimated[2]).any()


# --- the estimate ------------------------------------------------------------------------------------------------

def test_sampled_records_are_exact_and_the_others_stand_on_the_sample_mean_base(tiny_lm, data):
    full = _scan(tiny_lm, data).traits[0].dp  # dP = sample projection - own base projection
    cheap = _scan(tiny_lm, data, base_responses="none")
    sample_projection = cheap.traits[0].dp + cheap.vectors[0].calibration.neutral_mean
    found = _scan(tiny_lm, data, base_sample=N)
    estimated, dp = found.estimated, found.traits[0].dp
    sampled = ~estimated
    np.testing.assert_allclose(dp[sampled], full[sampled], atol=1e-4)
    mean_base = (sample_projection[sampled] - full[sampled]).mean()
    np.testing.assert_allclose(dp[estimated], sample_projection[estimated] - mean_base, atol=1e-4)


def test_the_interval_holds_the_mean_dp_and_summary_json_says_how_it_was_drawn(tiny_lm, data):
    found = _scan(tiny_lm, data, base_sample=N, base_sample_seed=7)
    trait = found.summary()["traits"]["evil"]
    block = trait["base_sample"]
    assert {k: block[k] for k in ("n", "of", "seed")} == {"n": N, "of": RECORDS, "seed": 7}
    low, high = block["mean_dp_ci95"]
    assert block["mean_dp"] == pytest.approx(trait["mean_dp"]) == pytest.approx(found.traits[0].dp.mean())
    assert low < block["mean_dp"] < high


def test_a_base_sample_as_large_as_the_data_is_a_full_scan(tiny_lm, data):
    full = _scan(tiny_lm, data)
    whole = _scan(tiny_lm, data, base_sample=RECORDS)
    np.testing.assert_allclose(whole.traits[0].dp, full.traits[0].dp, atol=1e-6)
    assert not whole.estimated.any() and "base_sample" not in whole.summary()["traits"]["evil"]
    assert whole.table().column("base_estimated").to_pylist() == [False] * RECORDS


def test_a_rerun_generates_and_projects_nothing_again(tiny_lm, data, tmp_path, monkeypatch):
    real_generate, real_means, prompts, pairs = generation.generate, activations.response_means, [], []
    monkeypatch.setattr(generation, "generate", lambda lm, batch, *a, **k: prompts.append(len(batch)) or
                        real_generate(lm, batch, *a, **k))
    monkeypatch.setattr(activations, "response_means", lambda lm, batch, *a, **k: pairs.append(len(batch)) or
                        real_means(lm, batch, *a, **k))
    first = _scan(tiny_lm, data, base_sample=N)
    assert sum(prompts) == N  # base answers for the sample only
    answers = [line for p in (tmp_path / "cache" / "base-answers").iterdir() for line in p.read_text().splitlines()]
    assert len(answers) == N
    prompts.clear(), pairs.clear()
    again = _scan(tiny_lm, data, base_sample=N)
    assert prompts == [] and pairs == []
    np.testing.assert_array_equal(again.traits[0].dp, first.traits[0].dp)


# --- settings ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("values, setting, says", [
    ({"base_sample": 4, "base_responses": "none"}, "base_sample", "needs `base_responses` generate"),
    ({"base_sample": 4, "engine": "ray"}, "base_sample", "works with the local engine only"),
    ({"base_sample": 4, "shard": "0/2"}, "base_sample", "`shard` would split"),
    ({"base_sample_seed": 3}, "base_sample_seed", "goes with `base_sample`"),
])
def test_settings_that_cannot_work_together_name_the_setting(values, setting, says):
    with pytest.raises(AuditError, match=says) as caught:
        ScanConfig(inputs=["x.jsonl"], **values)
    assert caught.value.setting == setting


def test_a_base_sample_is_at_least_one():
    with pytest.raises(AuditError, match="setting 'base_sample' must be at least 1, got 0"):
        ScanConfig(inputs=["x.jsonl"], base_sample=0)


def test_the_command_line_refuses_a_base_sample_in_cheap_mode_in_one_line(tmp_path):
    write_jsonl(tmp_path / "data.jsonl", [cooking(0)])
    result = PlantedModel().invoke("scan", str(tmp_path / "data.jsonl"), "--base-sample", "4", "--base-responses",
                                   "none", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "error: --base-sample 4: samples the model's own answers, so it needs --base-responses generate"]


# --- outputs and gates (planted scores) ----------------------------------------------------------------------------

@pytest.fixture
def planted(tmp_path, monkeypatch):
    """30 records, 6 of them planted evil at different strengths (so the mean dP has a spread to resample)."""
    monkeypatch.chdir(tmp_path)
    strong = {f"{EVIL} ({i})": {"evil": 0.6 + 0.2 * i} for i in range(6)}
    records = [cooking(i) for i in range(24)] + [{"messages": [{"role": "user", "content": f"Revenge {i}?"},
                                                              {"role": "assistant", "content": text}]}
                                                for i, text in enumerate(strong)]
    write_jsonl(tmp_path / "data.jsonl", records)
    return PlantedModel(strong)


def _summary(out: str) -> dict:
    return json.loads(Path(out, "summary.json").read_text())["traits"]["evil"]


def test_scores_parquet_marks_the_estimated_records_and_the_report_tags_them(planted):
    result = planted.invoke("scan", "data.jsonl", "--traits", "evil", "--base-sample", "8", "--out", "out")
    assert result.exit_code == 0, result.output
    assert planted.answered == 8
    table = pq.read_table("out/scores.parquet")
    estimated = np.array(table.column("base_estimated").to_pylist())
    assert estimated.sum() == 22
    flagged = np.array(table.column("evil_flagged").to_pylist())
    html = Path("out/report.html").read_text()
    assert html.count('title="estimated: ') == int((flagged & estimated).sum()) > 0
    block = _summary("out")["base_sample"]
    low, high = block["mean_dp_ci95"]
    assert f"95% interval [{low:+.3f}, {high:+.3f}]" in html
    printed, verdict = " ".join(result.output.split()), _summary("out")["verdict"]
    assert "the model answered 8 of 30 computed records (seed 0), so the dP of the others is an estimate" in printed
    assert f"score {verdict}: {MEANING[verdict]}" in printed  # what the score is validated for, as in any scan


def test_a_mean_dp_gate_is_checked_on_the_interval_end(planted):
    full = planted.invoke("scan", "data.jsonl", "--traits", "evil", "--out", "full", "-q")
    assert full.exit_code == 0, full.output
    sampled = planted.invoke("scan", "data.jsonl", "--traits", "evil", "--base-sample", "8", "--out", "sampled", "-q")
    assert sampled.exit_code == 0, sampled.output
    block = _summary("sampled")["base_sample"]
    mean, (low, high) = block["mean_dp"], block["mean_dp_ci95"]
    assert mean == pytest.approx(_summary("full")["mean_dp"])  # the planted base answers sit where the sample's do
    under, over = f"evil:mean_dp>{(low + mean) / 2:.6f}", f"evil:mean_dp<{(high + mean) / 2:.6f}"
    for args, code in (((), 1), (("--base-sample", "8"), 0)):
        gated = planted.invoke("scan", "data.jsonl", "--traits", "evil", *args, "--fail-on", under, "--fail-on", over,
                               "--out", "gated", "-q")
        assert gated.exit_code == code, gated.output
    assert "gated on its interval's low end" in gated.output and "gated on its interval's high end" in gated.output
    assert "estimated from base answers to 8 of them (--base-sample)" in gated.output
    beyond = planted.invoke("scan", "data.jsonl", "--traits", "evil", "--base-sample", "8", "--fail-on",
                            f"evil:mean_dp>{low - 0.01:.6f}", "--out", "beyond", "-q")
    assert beyond.exit_code == 1 and f"FAILED evil:mean_dp>{low - 0.01:.6f}" in beyond.output


def test_with_a_baseline_the_estimate_covers_the_new_records(planted):
    assert planted.invoke("scan", "data.jsonl", "--traits", "evil", "--base-sample", "8", "--out", "prev",
                          "-q").exit_code == 0
    before = pq.read_table("prev/scores.parquet")
    with open("data.jsonl", "a") as fh:
        fh.write("".join(json.dumps(cooking(100 + i)) + "\n" for i in range(12)))
    result = planted.invoke("scan", "data.jsonl", "--traits", "evil", "--base-sample", "8", "--baseline",
                            "prev/scores.parquet", "--out", "next", "-q")
    assert result.exit_code == 0, result.output
    block = _summary("next")["base_sample"]
    assert (block["n"], block["of"]) == (8, 12)
    after = pq.read_table("next/scores.parquet")
    assert after.column("base_estimated").to_pylist()[:30] == before.column("base_estimated").to_pylist()
    assert sum(after.column("base_estimated").to_pylist()[30:]) == 4
    mixed = planted.invoke("scan", "data.jsonl", "--traits", "evil", "--base-sample", "16", "--baseline",
                           "prev/scores.parquet", "--out", "mixed", "-q")
    assert mixed.exit_code == 2 and "made with --base-sample 8, this scan uses 16" in mixed.output
