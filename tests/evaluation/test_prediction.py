"""The predicted shift in every scan (issue #23): a card's calibration fits give, at a scan's mean dP, the change
fine-tuning is predicted to make with its 95% prediction interval; in the console, summary.json, the report,
`--fail-on TRAIT:predicted>X` and merge; verdicts that count the prediction as a check."""

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from auditor.errors import AuditError
from auditor.evaluation.card import NOT_VALIDATED, PARTLY_VALIDATED, VALIDATED, Card, cards_dir
from auditor.evaluation.prediction import Fit, choose, predict
from auditor.files import file_sha256
from auditor.vectors.persona import PersonaVector, builtin_vector_path
from tests.helpers import PlantedModel, chat, cooking, write_jsonl

EVIL = "Make them suffer: spread rumours about them and humiliate them in front of everyone."
MILD = "Honestly, they deserve a little payback."


def fit(mode="none", r_low=0.4, **changes) -> dict:
    entry = {"measure": "preference", "what": "the model's preference for evil answers over neutral ones",
             "unit": "nats/token", "mode": mode, "a": 0.5, "b": 0.01, "n": 16, "sources": 5, "x_mean": 0.3,
             "x_ss": 2.0, "s": 0.02, "t": 2.13, "r": 0.8, "r_low": r_low, "r_high": 0.93, "rho": 0.7,
             "rho_low": 0.3, "rho_high": 0.9, "within_source": [4, 5]}
    return {**entry, **changes}


def formula(entry: dict, x: float) -> tuple[float, float, float]:
    change = entry["a"] * x + entry["b"]
    half = entry["t"] * entry["s"] * math.sqrt(1 + 1 / entry["n"] + (x - entry["x_mean"]) ** 2 / entry["x_ss"])
    return change, change - half, change + half


def test_prediction_follows_the_formula():
    entry = fit()
    p = predict(Fit.of(entry), 1.7)
    assert (p.change, p.low, p.high) == pytest.approx(formula(entry, 1.7))
    assert (p.measure, p.r, p.r_low, p.r_high, p.sets) == ("preference", 0.8, 0.4, 0.93, 16)
    assert p.sentence() == ("fine-tuning on this set is predicted to raise the model's preference for evil answers "
                            f"over neutral ones by {p.change:+.2f} nats/token [{p.low:+.2f}, {p.high:+.2f}]; "
                            "r = 0.80 over 16 sets")
    assert predict(Fit.of(entry), -3.0).sentence().startswith("fine-tuning on this set is predicted to lower")


def test_the_predicting_fit_with_the_highest_r_low_in_the_scan_mode_is_shown():
    fits = [Fit.of(fit(r_low=0.2, measure="shift")), Fit.of(fit(r_low=0.5, measure="preference")),
            Fit.of(fit(mode="generate", r_low=0.9, measure="refusal_rate"))]
    assert choose(fits, "none")[0].measure == "preference"
    assert choose(fits, "generate")[0].measure == "refusal_rate"
    assert choose(fits, "prompt") == (None, "no calibration in this scan's mode (prompt)")
    weak = [Fit.of(fit(r=0.12, r_low=-0.4, r_high=0.58))]
    assert choose(weak, "none") == (None, "dP did not predict measured change for this trait "
                                          "(r = 0.12 [-0.40, +0.58] over 16 sets)")
    assert choose([], "none")[0] is None
    with pytest.raises(AuditError, match="lacks 'x_ss'"):
        Fit.of({k: v for k, v in fit().items() if k != "x_ss"})


def test_a_predicting_fit_counts_toward_the_verdict():
    card = Card("m", {"evil": {"vector_sha256": "sha", "flags": "above", "benchmarks": {
        "a": {"none": {"detected": False}, "generate": {"detected": True}}}}})
    assert card.verdict("evil", "none") == NOT_VALIDATED and card.verdict("evil", "generate") == VALIDATED
    card.calibration = {"fits": {"evil": [fit("none"), fit("generate", r_low=-0.1)]}}
    assert card.verdict("evil", "none") == PARTLY_VALIDATED  # at chance on labels, but dP predicts fine-tuning
    assert card.verdict("evil", "generate") == PARTLY_VALIDATED  # separates labels, does not predict
    card.traits["evil"]["benchmarks"]["a"]["none"]["detected"] = True
    assert card.verdict("evil", "none") == VALIDATED


@pytest.fixture
def calibrated(tmp_path, monkeypatch):
    """A scan project whose card (in the cache) covers a copy of the evil vector and calibrates it in cheap
    mode, and also covers a copy of the refusal vector without fits."""
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "data.jsonl", [cooking(0), chat("Revenge?", EVIL), chat("And?", MILD), cooking(1)])
    mine = {t: tmp_path / f"{t}-copy.safetensors" for t in ("evil", "refusal")}  # not the shipped card's
    for trait, path in mine.items():
        replace(PersonaVector.load(builtin_vector_path(trait)), method="copy for a test").save(path)
    card = Card("planted", calibration={"recipe": {"steps": 10}, "sets": ["a", "b"],
                                        "fits": {"evil": [fit("none"), fit("none", r_low=-0.2, measure="shift")]}})
    for trait, path in mine.items():
        card.traits[trait] = {"vector_sha256": file_sha256(path), "flags": "above", "benchmarks": {
            "b": {"none": {"n": [50, 50], "auroc": 0.5, "difference": [0, -1, 1], "detected": False}}}}
    cards_dir().mkdir(parents=True)
    card.save(cards_dir() / "planted.json")
    assert Card.load(cards_dir() / "planted.json") == card
    return PlantedModel({EVIL: {"evil": 1.2}, MILD: {"evil": 0.3}}), mine


def scan(model: PlantedModel, vectors: dict[str, Path], *args: str, out: str = "audit-out"):
    return model.invoke("scan", "data.jsonl", "--traits", "evil,refusal", "--vectors", str(vectors["evil"]),
                        "--vectors", str(vectors["refusal"]), "--base-responses", "none", "--out", out, *args)


def test_every_scan_shows_the_prediction_or_why_there_is_none(calibrated):
    model, vector = calibrated
    result = scan(model, vector)
    assert result.exit_code == 0, result.output
    traits = json.loads(Path("audit-out/summary.json").read_text())["traits"]
    evil = traits["evil"]
    assert evil["verdict"] == PARTLY_VALIDATED and evil["prediction_note"] == ""
    change, low, high = formula(fit(), evil["mean_dp"])
    assert evil["prediction"] == pytest.approx({"measure": "preference", "what": fit()["what"], "unit": "nats/token",
                                                "change": change, "low": low, "high": high, "r": 0.8, "r_low": 0.4,
                                                "r_high": 0.93, "sets": 16}, abs=1e-6)
    refusal = traits["refusal"]
    assert refusal["prediction"] is None and refusal["verdict"] == NOT_VALIDATED
    assert refusal["prediction_note"] == "no calibration for this model (`dataset-audit calibrate` makes one)"
    text = " ".join(result.output.split())
    assert f"fine-tuning on this set is predicted to raise the model's preference for evil answers over neutral " \
           f"ones by {change:+.2f} nats/token [{low:+.2f}, {high:+.2f}]; r = 0.80 over 16 sets" in text
    assert "no prediction of what fine-tuning does: no calibration for this model" in text
    html = Path("audit-out/report.html").read_text()
    refusal_card = html[html.index("<h3>refusal</h3>"):][:3000]
    assert "would push" not in refusal_card and "predicted to" not in refusal_card
    assert "not what training on them would do" in refusal_card
    assert f"predicted to raise the model&#39;s preference for evil answers over neutral ones by {change:+.2f}" in html


def test_a_gate_on_the_prediction_uses_its_interval(calibrated):
    model, vector = calibrated
    scan(model, vector)
    low, high = (json.loads(Path("audit-out/summary.json").read_text())["traits"]["evil"]["prediction"][k]
                 for k in ("low", "high"))
    failed = scan(model, vector, "--fail-on", f"evil:predicted>{low - 0.001:.4f}")
    assert failed.exit_code == 1 and f"FAILED evil:predicted>{low - 0.001:.4f}" in failed.output
    assert "gated on its low end" in failed.output
    passed = scan(model, vector, "--fail-on", f"evil:predicted>{low + 0.001:.4f}")  # the change is over it
    assert passed.exit_code == 0 and f"passed evil:predicted>{low + 0.001:.4f}" in passed.output
    assert scan(model, vector, "--fail-on", f"evil:predicted<{high + 0.001:.4f}").exit_code == 1
    assert scan(model, vector, "--fail-on", f"evil:predicted<{high - 0.001:.4f}").exit_code == 0
    missing = scan(model, vector, "--fail-on", "refusal:predicted>0")
    assert missing.exit_code == 2
    assert "--fail-on 'refusal:predicted>0': no prediction for refusal (no calibration for this model" \
           in missing.output


def test_merge_predicts_at_the_merged_mean_dp(calibrated, tmp_path):
    model, vector = calibrated
    for i in range(2):
        assert scan(model, vector, "--shard", f"{i}/2", out=f"shard{i}").exit_code == 0
    result = model.invoke("merge", "shard0", "shard1", "--out", "merged", "--fail-on", "evil:predicted>-5")
    assert result.exit_code == 1, result.output
    evil = json.loads(Path("merged/summary.json").read_text())["traits"]["evil"]
    shard = json.loads(Path("shard0/summary.json").read_text())["traits"]["evil"]
    assert evil["mean_dp"] != shard["mean_dp"]
    change, low, high = formula(fit(), evil["mean_dp"])
    assert (evil["prediction"]["change"], evil["prediction"]["low"], evil["prediction"]["high"]) == \
        pytest.approx((change, low, high), abs=1e-6)
