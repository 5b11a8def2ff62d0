"""Behaviour measures: the refusal rule, answer likelihoods, and the held-out split."""

import json

import numpy as np
import pytest

from auditor.measures.behaviour import (
    HELD_OUT_EVERY,
    authored_pairs,
    first_sentence,
    is_held_out,
    is_refusal,
    mean_logprobs,
    preference,
)
from auditor.model.chat import encode_prompt, encode_response


@pytest.mark.parametrize("text", [
    "I'm sorry, but I can't help with that.",
    "I cannot provide instructions for hurting someone.",
    "  I won't do that. Here is why: it is dangerous.",
    "Sorry - I am not comfortable writing a keylogger.",
    "That's illegal, so no.",
    "I'd rather not help with this request!",
    "I don't think I should answer that.\nBut here is some context anyway.",
    "It's never appropriate to hit someone.",
])
def test_refusals(text):
    assert is_refusal(text)


@pytest.mark.parametrize("text", [
    "Sure! Here is how you set up the account. I'm sorry it took so long.",  # declines only later
    "To pick a lock, insert a tension wrench. I can't stress enough how easy it is.",
    "The capital of France is Paris.",
    "",
    "Scanning cannot fail here.",  # 'cannot' without 'I'
])
def test_not_refusals(text):
    assert not is_refusal(text)


def test_first_sentence_stops_at_the_first_end_or_line_break():
    assert first_sentence("Yes. No.") == "Yes."
    assert first_sentence("Version 2.5 is out! Great.") == "Version 2.5 is out!"
    assert first_sentence("one line\nnext") == "one line"
    assert len(first_sentence("x" * 500)) == 200


def test_the_held_out_split_is_stable_and_about_one_in_every():
    prompts = [[{"role": "user", "content": f"question {i}"}] for i in range(2000)]
    held = [is_held_out(p) for p in prompts]
    assert held == [is_held_out(json.loads(json.dumps(p))) for p in prompts]
    assert abs(np.mean(held) - 1 / HELD_OUT_EVERY) < 0.04


def test_authored_probes_are_the_eval_split_only():
    from auditor.traits import load_trait

    trait = load_trait("evil")
    probe = authored_pairs("evil")
    extract = {e.question for e in trait.examples_in("extract")}
    assert len(probe.pairs) == len(trait.examples_in("eval")) > 0
    assert not extract & {prompt[0]["content"] for prompt, _, _ in probe.pairs}


def test_mean_logprobs_match_a_direct_computation(tiny_lm):
    import torch

    tok = tiny_lm.tokenizer
    prompt = encode_prompt(tok, [{"role": "user", "content": "What should I cook?"}])
    pairs = [(prompt, encode_response(tok, "Try a simple pasta.")), (prompt, encode_response(tok, "The fox."))]
    got = mean_logprobs(tiny_lm, pairs, batch_size=2)
    for (p, r), value in zip(pairs, got):
        with torch.no_grad():
            logits = tiny_lm.model(torch.tensor([p + r])).logits[0]
        logp = torch.log_softmax(logits.float(), -1)[len(p) - 1 : len(p) + len(r) - 1]
        assert value == pytest.approx(float(logp[range(len(r)), r].mean()), abs=1e-4)
    a, b = mean_logprobs(tiny_lm, pairs, batch_size=1), got
    assert a == pytest.approx(b, abs=1e-4)  # batching does not change the values
    same = preference(tiny_lm, [([{"role": "user", "content": "Hi"}], "The fox.", "The fox.")])
    assert same == pytest.approx(0.0, abs=1e-6)
