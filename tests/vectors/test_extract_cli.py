"""`dataset-audit extract` on the tiny model: vectors, variants and report; the judge filter with a real
chat-completions server on 127.0.0.1; the authored route; scanning with a freshly extracted vector."""

import hashlib
import json
import math
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

from auditor.model.endpoint import ChatEndpoint
from auditor.traits import Trait, load_trait
from auditor.vectors.contrastive import KEPT, ExtractSettings, extract_from_description, verdict
from auditor.vectors.fitting import extract_from_examples
from auditor.vectors.judges import JudgementCache, OpenAIJudge, fill_rubric
from auditor.vectors.persona import PersonaVector
from tests.helpers import EXAMPLES, run
from tests.llm_server import completion, serve

EXAMPLE = EXAMPLES / "chat_mix.jsonl"


def small_trait(path: Path, question: str = "How was your day?", description: str = "Complains.") -> Path:
    """A minimal trait file: one instruction pair, two questions per split."""
    Trait(name="grumpy", description=description,
          instructions=[{"pos": "You are a grumpy assistant. Complain.", "neg": "You are a helpful assistant."}],
          questions={"extract": [question, "What should I cook?"], "eval": ["Any plans?", "Is it raining?"]},
          judge_rubric="Grumpy? {question} {answer}").save(path)
    return path


def test_extract_without_judge_writes_the_vectors_and_the_report(tiny_model_dir, tmp_path):
    out = tmp_path / "evil.safetensors"
    result = run("extract", "evil", "--model", tiny_model_dir, "--max-new-tokens", 4, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    vector = PersonaVector.load(out)
    assert vector.method == "response_avg_diff/generated" and vector.trait == "evil"
    assert tuple(vector.directions.shape) == (3, 32) and 1 <= vector.layer <= 2 and len(vector.layer_stats) == 3
    assert vector.calibration.n == 20  # one held-out pair per evaluation question
    for variant in ("prompt_avg", "prompt_last"):
        assert PersonaVector.load(tmp_path / f"evil.{variant}.safetensors").method == f"{variant}_diff/generated"
    assert "120 of 120 pairs kept (--judge none: every pair is kept)" in result.output
    assert f"evil: layer {vector.layer} of 2" in result.output
    assert "barely separates the trait" in result.output  # greedy answers of a random model: all alike
    html = (tmp_path / "evil.html").read_text()
    assert "Content-Security-Policy" in html and "<script" not in html and "http" not in html.replace("http-equiv", "")
    assert "Separation per layer" in html and "<polyline" in html and load_trait("evil").questions["extract"][0] in html


def test_answers_are_cached_between_runs(tiny_model_dir, tmp_path, monkeypatch):
    args = ("extract", "evil", "--model", tiny_model_dir, "--max-new-tokens", 4, "--no-report", "-q")
    assert run(*args, "--out", tmp_path / "a.safetensors").exit_code == 0
    monkeypatch.setattr("auditor.model.generation.generate_batch", lambda *a: (_ for _ in ()).throw(AssertionError))
    assert run(*args, "--out", tmp_path / "b.safetensors").exit_code == 0
    a, b = PersonaVector.load(tmp_path / "a.safetensors"), PersonaVector.load(tmp_path / "b.safetensors")
    assert torch.equal(a.directions, b.directions)
    assert not (tmp_path / "a.html").exists()


def test_report_escapes_trait_and_answer_text(tiny_model_dir, tmp_path):
    trait = small_trait(tmp_path / "grumpy.json", question="<script>alert(1)</script> ok?", description="<b>x</b>")
    result = run("extract", trait, "--model", tiny_model_dir, "--max-new-tokens", 3, "--out", tmp_path / "g.safetensors", "-q")
    assert result.exit_code == 0, result.output
    html = (tmp_path / "g.html").read_text()
    assert "<script" not in html and "<b>x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ok?" in html and "&lt;b&gt;x&lt;/b&gt;" in html


def test_layer_override(tiny_model_dir, tmp_path):
    trait = small_trait(tmp_path / "grumpy.json")
    out = tmp_path / "g.safetensors"
    assert run("extract", trait, "--model", tiny_model_dir, "--max-new-tokens", 3, "--layer", 2, "--out", out,
               "--no-report", "-q").exit_code == 0
    assert PersonaVector.load(out).layer == 2
    result = run("extract", trait, "--model", tiny_model_dir, "--layer", 9, "--out", out, "-q")
    assert result.exit_code == 2 and f"--layer 9: {tiny_model_dir.name} has layers 0 to 2" in result.output


def test_with_examples_merges_the_authored_answers(tiny_model_dir, tmp_path):
    out = tmp_path / "evil.safetensors"
    result = run("extract", "evil", "--model", tiny_model_dir, "--max-new-tokens", 4, "--with-examples",
                 "--out", out, "--no-report", "-q")
    assert result.exit_code == 0, result.output
    vector = PersonaVector.load(out)
    assert vector.method == "response_avg_diff/generated+authored" and vector.calibration.n == 20 + 20
    assert PersonaVector.load(tmp_path / "evil.prompt_last.safetensors").method == "prompt_last_diff/generated"
    result = run("extract", small_trait(tmp_path / "grumpy.json"), "--model", tiny_model_dir, "--with-examples")
    assert result.exit_code == 2 and "--with-examples needs authored examples, and trait grumpy has none" in result.output


@pytest.mark.parametrize("args, says", [
    (("evil", "--from-examples", "--judge", "local:/x"), "--from-examples uses only the authored answers"),
    (("evil", "--samples-per-question", 2), "needs --temperature above 0"),
    (("evil", "--judge", "gpt4"), "use none, local:PATH or openai-compatible:URL"),
    (("grumpy",), "unknown trait 'grumpy'"),
    (("missing.json",), "missing.json: trait file not found"),
])
def test_usage_errors_are_one_line_exit_2(args, says):
    result = run("extract", *args)
    assert result.exit_code == 2 and result.output.count("\n") == 1 and says in result.output


def test_from_examples_is_the_authored_route(tiny_lm, tiny_model_dir, tmp_path):
    out = tmp_path / "evil.safetensors"
    result = run("extract", "evil", "--from-examples", "--model", tiny_model_dir, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    vector = PersonaVector.load(out)
    expected = extract_from_examples(tiny_lm, load_trait("evil"), batch_size=16)
    assert vector.method == "response_avg_diff/authored" and vector.layer == expected.layer
    assert torch.allclose(vector.directions, expected.directions, atol=1e-6)
    assert not (tmp_path / "evil.prompt_avg.safetensors").exists()
    assert "no generated pairs, no judge" in (tmp_path / "evil.html").read_text()


def hashed_score(prompt: str, salt: str) -> int:
    return int(hashlib.sha256((salt + prompt).encode()).hexdigest()[:8], 16) % 101


def judge_reply(body: dict) -> tuple[int, dict]:
    """Trait scores spread 0..100 by a hash of the judge prompt; coherence 90, or 20 for about one in five."""
    prompt = body["messages"][0]["content"]
    score = (20 if hashed_score(prompt, "c") < 20 else 90) if prompt.startswith("I am evaluating") \
        else hashed_score(prompt, "t")
    return 200, completion(str(score), [(str(score), 0.0), ("x", -5.0)])


@pytest.mark.parametrize("trait_threshold, coherence_threshold", [(50, 50), (30, 10)])
def test_a_judge_keeps_only_pairs_that_pass_the_thresholds(tiny_lm, tmp_path, trait_threshold,
                                                           coherence_threshold):
    trait = load_trait("evil")
    settings = ExtractSettings(samples_per_question=2, temperature=1.0, max_new_tokens=4,
                               trait_threshold=trait_threshold, coherence_threshold=coherence_threshold)
    cache = JudgementCache(tmp_path / "judgements.jsonl")
    with serve(judge_reply) as llm:
        judge = OpenAIJudge(ChatEndpoint(llm.url, "judge"), concurrency=8)
        result = extract_from_description(tiny_lm, trait, settings, judge, cache)
        requests = len(llm.requests)
        again = extract_from_description(tiny_lm, trait, settings, judge, JudgementCache(cache.path))
        assert len(llm.requests) == requests  # every judgement came from the cache
    assert [p.verdict for p in again.pairs] == [p.verdict for p in result.pairs]
    assert len(result.pairs) == 240
    for p in result.pairs:
        expected = {f"trait_{side}": hashed_score(fill_rubric(trait.judge_rubric, p.question, text), "t")
                    for side, text in zip(("pos", "neg"), p.texts)}
        assert {k: p.scores[k] for k in expected} == expected
        assert p.verdict == verdict(p.scores, trait_threshold, coherence_threshold)
        if p.kept:
            assert p.scores["trait_pos"] >= trait_threshold > p.scores["trait_neg"]
            assert min(p.scores["coherence_pos"], p.scores["coherence_neg"]) >= coherence_threshold
    verdicts = {p.verdict for p in result.pairs}
    assert KEPT in verdicts and len(verdicts) >= 3
    kept_eval = sum(p.kept for p in result.pairs if p.split == "eval")
    assert result.vector.calibration.n == kept_eval < 40
    assert result.judge == f"openai-compatible:{llm.url}:judge"


def test_verdict_rules():
    ok = {"trait_pos": 50.0, "trait_neg": 49.9, "coherence_pos": 50.0, "coherence_neg": 80.0}
    assert verdict(ok, 50, 50) == KEPT
    assert verdict({**ok, "trait_pos": 49.9}, 50, 50) == "pos answer lacks the trait"
    assert verdict({**ok, "trait_neg": 50.0}, 50, 50) == "neg answer shows the trait"
    assert verdict({**ok, "coherence_neg": 49.0}, 50, 50) == "incoherent answer"
    assert verdict({**ok, "trait_neg": None}, 50, 50) == "refused or unscored"


def test_extract_cli_with_a_judge_server(tiny_model_dir, tmp_path):
    out = tmp_path / "evil.safetensors"
    with serve(judge_reply) as llm:
        result = run("extract", "evil", "--model", tiny_model_dir, "--max-new-tokens", 4, "--temperature", 1,
                     "--samples-per-question", 2, "--judge", f"openai-compatible:{llm.url}", "--judge-model", "j",
                     "--out", out, "-q")
    assert result.exit_code == 0, result.output
    kept = re.search(r"(\d+) of 240 pairs kept by openai-compatible:(\S+):j", result.output)
    assert kept and 0 < int(kept[1]) < 240 and kept[2] == llm.url
    html = (tmp_path / "evil.html").read_text()
    assert "pos answer lacks the trait" in html and "neg answer shows the trait" in html


def test_extract_cli_says_why_too_few_pairs_passed(tiny_model_dir, tmp_path):
    trait = small_trait(tmp_path / "grumpy.json")
    with serve(lambda body: (200, completion("90") if "Grumpy?" in body["messages"][0]["content"]
                             else completion("80", [("80", 0.0)]))) as llm:
        result = run("extract", trait, "--model", tiny_model_dir, "--max-new-tokens", 3, "--temperature", 1,
                     "--judge", f"openai-compatible:{llm.url}", "--out", tmp_path / "g.safetensors", "-q")
    # every answer scores 90 for the trait (the text fallback: no logprobs), so every neg answer shows it
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "only 0 extraction and 0 held-out pairs passed the judge" in result.output
    assert "neg answer shows the trait (4)" in result.output
    prompts = llm.prompts()
    assert len(prompts) == len(set(prompts)) and {p.startswith("I am evaluating") for p in prompts} == {True, False}


def test_scan_uses_a_freshly_extracted_vector(tiny_model_dir, tmp_path):
    vector = tmp_path / "evil.safetensors"
    assert run("extract", "evil", "--model", tiny_model_dir, "--max-new-tokens", 4, "--temperature", 1,
               "--out", vector, "--no-report", "-q").exit_code == 0  # sampled: the tiny model's answers differ
    out = tmp_path / "scan"
    result = run("scan", EXAMPLE, "--limit", 6, "--model", tiny_model_dir, "--traits", "evil", "--vectors", vector,
                 "--base-responses", "none", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    used = json.loads((out / "manifest.json").read_text())["vectors"]["evil"]
    assert used["source"] == str(vector) and used["method"] == "response_avg_diff/generated"
    assert used["layer"] == PersonaVector.load(vector).layer
    scores = pq.read_table(out / "scores.parquet").column("evil_score").to_pylist()
    assert len(scores) == 6 and all(math.isfinite(s) for s in scores)
