"""The static decode step (what CUDA graphs capture) against the plain one: same answers, same states."""

import numpy as np
import pytest
import torch

from auditor.model import decoding
from auditor.model.generation import GenerationSettings, generate_batch, stop_ids

TEXTS = ("What should I cook?", "Hi", "Tell me about the treaty of Velmora", "You are a helpful assistant.",
         "The quick brown fox", "0123", "Your poem is brilliant, you are a genius!")


def _run(lm, prompts, stops, steps, samples=()):
    spared = sorted(set(lm.tokenizer.all_special_ids) | {lm.tokenizer.pad_token_id})
    return decoding.decode(decoding.Decoder(lm), prompts, 12, stops, spared, 1.3, 0.0, 0, [1, 2], samples, steps)


@pytest.fixture
def early(tiny_lm):
    """Prompts and end tokens under which rows finish at different steps (so finished rows leave the batch)."""
    prompts = [tiny_lm.tokenizer(t)["input_ids"] for t in TEXTS]
    firsts = sorted({a[1] for a in generate_batch(tiny_lm, prompts, GenerationSettings(max_new_tokens=2))
                     if len(a) > 1})[:2]
    return prompts, sorted(set(stop_ids(tiny_lm)) | set(firsts))


def test_static_steps_give_the_plain_steps_answers_and_states(tiny_lm, early):
    prompts, stops = early
    samples = [p[:3] for p in prompts]
    plain, static = (_run(tiny_lm, prompts, stops, steps, samples) for steps in ("eager", "static"))
    assert len({len(a) for a in plain.answers}) > 1  # rows did finish at different steps
    assert static.answers == plain.answers
    np.testing.assert_allclose(static.means, plain.means, atol=1e-5)
    np.testing.assert_allclose(static.sample_means, plain.sample_means, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a CUDA device")
def test_cuda_graphs_give_the_static_steps_answers(tiny_lm, early):
    prompts, stops = early
    tiny_lm.model.to("cuda")
    tiny_lm.device = torch.device("cuda")
    try:
        graphs, static = (_run(tiny_lm, prompts, stops, steps) for steps in ("graphs", "static"))
    finally:
        tiny_lm.model.to("cpu")
        tiny_lm.device = torch.device("cpu")
    assert graphs.answers == static.answers
    np.testing.assert_allclose(graphs.means, static.means, atol=1e-4)


def test_a_batch_larger_than_memory_holds_runs_in_parts(tiny_lm, early, monkeypatch):
    prompts, stops = early
    whole = _run(tiny_lm, prompts, stops, "eager")
    monkeypatch.setattr(decoding.Decoder, "rows_that_fit", lambda self, slots: 3)
    parts = _run(tiny_lm, prompts, stops, "eager")
    assert parts.answers == whole.answers
    np.testing.assert_allclose(parts.means, whole.means, atol=1e-5)
