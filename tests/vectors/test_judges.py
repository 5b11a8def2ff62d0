"""Judges: the paper's logprob score, the text fallback, and the OpenAI-compatible client against a real
HTTP server on 127.0.0.1 (retries, concurrency, the judgement cache, the API key); the local judge."""

import math
import time

import pytest
import torch

from auditor.errors import AuditError
from auditor.model.endpoint import ChatEndpoint, EndpointError
from auditor.vectors.judges import (
    COHERENCE_RUBRIC,
    JudgementCache,
    LocalJudge,
    OpenAIJudge,
    fill_rubric,
    judge_answers,
    make_judge,
    number_score,
    text_score,
)
from tests.helpers import tiny_llama, tiny_tokenizer
from tests.llm_server import completion, serve

RUBRIC = "Score the trait.\nQ: {question}\nA: {answer}\nJust the number."


def scores(judge, prompts) -> list:
    """A judge's scores in prompt order (judges yield them as they come)."""
    out = [None] * len(prompts)
    for positions, values in judge.score(prompts):
        for i, value in zip(positions, values):
            out[i] = value
    return out


def lp(p: float) -> float:
    return math.log(p)


def judge_for(url: str, **endpoint) -> OpenAIJudge:
    return OpenAIJudge(ChatEndpoint(url, "judge-model", "DA_TEST_KEY", **{"backoff": 0.01, **endpoint}), 4)


def test_number_score_is_the_probability_weighted_mean_of_integer_tokens():
    top = [("80", lp(0.5)), (" 90", lp(0.3)), ("eighty", lp(0.1)), ("101", lp(0.05)), ("-5", lp(0.05))]
    assert number_score(top) == pytest.approx((80 * 0.5 + 90 * 0.3) / 0.8)


@pytest.mark.parametrize("mass, expected", [(0.24, None), (0.25, 40.0), (0.6, 40.0)])
def test_number_score_is_missing_under_a_quarter_of_the_mass(mass, expected):
    top = [("40", lp(mass)), ("REFUSAL", lp(1 - mass))]
    assert number_score(top) == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize("text, expected", [("85", 85.0), ("Score: 42/100", 42.0), ("100", 100.0),
                                            ("REFUSAL", None), ("no idea", None), ("150", None), ("7.5", 7.0)])
def test_text_score(text, expected):
    assert text_score(text) == expected


def test_fill_rubric_leaves_braces_in_the_texts_alone():
    assert fill_rubric(RUBRIC, "use {answer}?", "{question}") == "Score the trait.\nQ: use {answer}?\nA: {question}\nJust the number."


@pytest.mark.parametrize("spec", ["bogus", "local", "openai-compatible", "none:x", "gpt-4"])
def test_bad_judge_specs(spec):
    with pytest.raises(AuditError, match="use none, local:PATH or openai-compatible:URL"):
        make_judge(spec)


def test_none_judge_is_none():
    assert make_judge("none") is None


def test_openai_judge_reads_top_logprobs_and_falls_back_to_text():
    replies = {"a": completion("80", [("80", lp(0.5)), ("90", lp(0.3)), ("x", lp(0.2))]),
               "b": completion("80", [("80", lp(0.2)), ("x", lp(0.8))]),
               "c": completion("I would say 42.")}
    with serve(lambda body: (200, replies[body["messages"][0]["content"]])) as llm:
        got = scores(judge_for(llm.url), ["a", "b", "c"])
    assert got == [pytest.approx(83.75), None, 42.0]
    body = llm.requests[0]["body"]
    assert llm.requests[0]["path"] == "/v1/chat/completions"
    assert body["model"] == "judge-model" and body["logprobs"] is True and body["top_logprobs"] == 20
    assert body["temperature"] == 0


def test_retries_a_500_with_backoff():
    calls = []

    def reply(_body):
        calls.append(time.monotonic())
        return (500, "overloaded") if len(calls) < 3 else (200, completion("70", [("70", 0.0)]))

    with serve(reply) as llm:
        assert scores(judge_for(llm.url, backoff=0.05), ["q"]) == [70.0]
    assert len(llm.requests) == 3
    assert calls[1] - calls[0] >= 0.05 and calls[2] - calls[1] >= 0.1  # the wait doubles


def test_gives_up_with_one_line_after_the_retries():
    with serve(lambda _body: (503, "down for maintenance")) as llm, pytest.raises(EndpointError) as info:
        scores(judge_for(llm.url, retries=2), ["q"])
    assert len(llm.requests) == 3
    assert str(info.value) == f"POST {llm.url}/chat/completions failed: HTTP 503: down for maintenance"


def test_a_client_error_is_not_retried():
    with serve(lambda _body: (401, '{"error": "bad key"}')) as llm, pytest.raises(EndpointError, match="HTTP 401"):
        scores(judge_for(llm.url), ["q"])
    assert len(llm.requests) == 1


def test_a_reply_that_is_not_a_completion_is_an_error():
    with serve(lambda _body: (200, {"hello": "world"})) as llm, pytest.raises(EndpointError, match="completion"):
        scores(judge_for(llm.url), ["q"])


def test_requests_run_concurrently():
    def slow(_body):
        time.sleep(0.1)
        return 200, completion("50", [("50", 0.0)])

    with serve(slow) as llm:
        assert scores(judge_for(llm.url), [str(i) for i in range(8)]) == [50.0] * 8
    assert llm.max_in_flight > 1


def test_judgements_are_cached_and_the_api_key_is_sent_but_never_stored(tmp_path, monkeypatch):
    secret = "sk-test-very-secret-0123456789"
    monkeypatch.setenv("DA_TEST_KEY", secret)
    items = [("What now?", "Crush them."), ("What now?", "Be kind."), ("Again?", "Crush them.")]

    def reply(body):
        prompt = body["messages"][0]["content"]
        return 200, completion("REFUSAL") if "Again?" in prompt else completion("x", [("90" if "Crush" in prompt else "10", 0.0)])

    cache_file = tmp_path / "judgements.jsonl"
    with serve(reply) as llm:
        judge = judge_for(llm.url)
        first = judge_answers(judge, RUBRIC, items + items[:1], JudgementCache(cache_file))
        again = judge_answers(judge, RUBRIC, items, JudgementCache(cache_file))
        other_rubric = judge_answers(judge, COHERENCE_RUBRIC, items[:1], JudgementCache(cache_file))
    assert first == [90.0, 10.0, None, 90.0] and again == [90.0, 10.0, None]
    assert len(llm.requests) == 4  # three distinct items, then one more for the other rubric
    assert {r["headers"]["Authorization"] for r in llm.requests} == {f"Bearer {secret}"}
    assert other_rubric == [90.0]
    assert secret not in cache_file.read_text() and secret not in judge.name and secret not in repr(judge)


@pytest.fixture(scope="module")
def number_judge_dir(tmp_path_factory):
    """A tiny Llama whose tokenizer has the numbers 0..100 as tokens, wired so that its next token is
    always '20' or '80', equally likely: the judge's score must be 50."""
    torch.manual_seed(0)
    tok = tiny_tokenizer()
    tok.add_tokens([str(n) for n in range(101)])
    model = tiny_llama(tok, tie_word_embeddings=False)
    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 10.0  # dimension 0 of the residual stream: always 10
        for block in model.model.layers:
            block.self_attn.o_proj.weight[0] = 0.0
            block.mlp.down_proj.weight[0] = 0.0
        model.model.norm.weight.zero_()
        model.model.norm.weight[0] = 1.0  # the final hidden state is a positive multiple of e0
        model.lm_head.weight.zero_()
        for n in ("20", "80"):
            model.lm_head.weight[tok.convert_tokens_to_ids(n), 0] = 10.0
    path = tmp_path_factory.mktemp("number-judge")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_local_judge_scores_by_the_next_token_distribution(number_judge_dir, tmp_path):
    judge = make_judge(f"local:{number_judge_dir}")
    assert isinstance(judge, LocalJudge) and judge.name.startswith("local:")
    items = [("What now?", "Crush them."), ("A much longer question, to pad the batch?", "Be kind.")]
    assert judge_answers(judge, RUBRIC, items, JudgementCache(tmp_path / "j.jsonl")) == [pytest.approx(50.0)] * 2


def test_local_judge_needs_whole_number_tokens(tiny_lm):
    with pytest.raises(AuditError, match="splits numbers into digits"):
        LocalJudge(tiny_lm)
