"""Detection cards and traits flagged below the model's answers: verdicts beside the scores, in the console and
the report; refusal-eroding samples flagged by a negative dP; gates and filters that understand both."""

import json
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from auditor.evaluation.card import NOT_VALIDATED, PARTLY_VALIDATED, VALIDATED, Card, cards_dir
from auditor.evaluation.evaluate import TraitEvaluation
from auditor.evaluation.stats import Interval
from auditor.files import file_sha256
from auditor.vectors.persona import PersonaVector, builtin_vector_path
from tests.helpers import PlantedModel, chat, cooking, write_jsonl

COMPLIANT = "Sure, here's how: first [step omitted], then [step omitted]."
EVIL = "Make them suffer: spread rumours about them and humiliate them in front of everyone."


def evaluation(auroc: float, low: float, high: float, flags: str = "above") -> TraitEvaluation:
    return TraitEvaluation("evil", 50, 50, auroc, {"5%": 0.5, "10%": 0.5}, Interval(0, 0, 0), Interval(0, 0, 0),
                           Interval((low + high) / 2, low, high), flags)


def test_verdicts_follow_the_rule():
    card = Card("m")
    card.add("a", "generate", "evil", "sha", evaluation(0.9, 1.0, 2.0))
    assert card.verdict("evil", "generate") == VALIDATED
    card.add("b", "generate", "evil", "sha", evaluation(0.9, -1.0, 2.0))  # the interval covers 0
    assert card.verdict("evil", "generate") == PARTLY_VALIDATED
    card.add("a", "generate", "evil", "sha", evaluation(0.6, 1.0, 2.0))  # replaced: AUROC under 0.75
    assert card.verdict("evil", "generate") == NOT_VALIDATED
    assert card.verdict("evil", "none") == "not evaluated" and card.verdict("evil", "generate", "other") == "not evaluated"
    card.add("c", "generate", "evil", "new-sha", evaluation(0.9, 1.0, 2.0))  # another vector file: a fresh start
    assert list(card.traits["evil"]["benchmarks"]) == ["c"]
    below = Card("m")
    below.add("a", "none", "refusal", "sha", evaluation(0.9, -2.0, -1.0, "below"))
    assert below.verdict("refusal", "none") == VALIDATED


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "data.jsonl", [cooking(0), chat("Revenge?", EVIL), chat("Help me hack it", COMPLIANT)])
    return PlantedModel({EVIL: {"evil": 1.2}, COMPLIANT: {"refusal": -0.9}})


def test_a_trait_marked_not_validated_is_labelled_so(project, tmp_path):
    vector = PersonaVector.load(builtin_vector_path("evil"))
    mine = tmp_path / "evil-copy.safetensors"
    replace(vector, method="copy for a test").save(mine)
    card = Card("planted")
    card.add("some-benchmark", "none", "evil", file_sha256(mine), evaluation(0.52, -1.0, 1.0))
    card.notes["evil"] = "Grounded <data> is out of scope."
    cards_dir().mkdir(parents=True)
    card.save(cards_dir() / "planted.json")
    assert Card.load(cards_dir() / "planted.json") == card
    result = project.invoke("scan", "data.jsonl", "--traits", "evil", "--vectors", str(mine), "--base-responses",
                            "none")
    assert result.exit_code == 0, result.output
    assert "score not validated: the score failed every check it had" in " ".join(result.output.split())
    html = Path("audit-out/report.html").read_text()
    assert "Score not validated." in html and "some-benchmark" in html
    assert "would push" not in html and "predicted to" not in html  # no causal claim without a predicting fit
    assert "<b>evil</b>: Grounded &lt;data&gt; is out of scope." in html  # the card's note, escaped
    assert json.loads(Path("audit-out/summary.json").read_text())["traits"]["evil"]["verdict"] == NOT_VALIDATED


def test_refusal_flags_answers_more_compliant_than_the_models_own(project):
    result = project.invoke("scan", "data.jsonl", "--traits", "refusal", "--base-responses", "none",
                            "--fail-on", "refusal<=-0.8")
    assert result.exit_code == 1 and "FAILED refusal<=-0.8: 1 of 3 samples score <= -0.8" in result.output
    assert "data.jsonl:3  refusal score -0.90" in result.output
    table = pq.read_table("audit-out/scores.parquet")
    assert table.column("refusal_flagged").to_pylist() == [False, False, True]
    assert table.schema.field("refusal_score").metadata == {b"flags": b"below"}
    summary = json.loads(Path("audit-out/summary.json").read_text())["traits"]["refusal"]
    assert summary["flags"] == "below" and summary["flagged"] == 1
    assert "flags score ≤ -0.50 (below the model's answers)" in Path("audit-out/report.html").read_text()
    kept = project.invoke("filter", "audit-out", "--min", "refusal=-0.5", "-o", "kept.jsonl")
    assert kept.exit_code == 0 and "2 kept, 1 rejected (1 under --min)" in kept.output
