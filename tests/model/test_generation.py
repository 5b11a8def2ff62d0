"""Base answers: the lean decoder against transformers' generate, the states read off decoding, the cache."""

import numpy as np
import pytest
import torch

from auditor.model import decoding, generation, transformers_generation
from auditor.model.activations import response_means
from auditor.model.generation import AnswerCache, GenerationSettings, base_answers, generate, generate_batch, stop_ids
from auditor.steering.hooks import Steering, steered
from auditor.vectors.persona import Calibration, PersonaVector

SETTINGS = GenerationSettings(max_new_tokens=6)
TEXTS = ("What should I cook?", "Hi", "Tell me about the treaty of Velmora", "You are a helpful assistant.",
         "The quick brown fox", "0123", "Your poem is brilliant, you are a genius!")


def _prompts(lm, n=3):
    return [lm.tokenizer(t)["input_ids"] for t in TEXTS[:n]]


def _reference(lm, prompts, settings, layers=(), samples=()):
    """transformers' generate, the path for the models the decoder does not run."""
    spared = sorted(set(lm.tokenizer.all_special_ids) | {lm.tokenizer.pad_token_id})
    return transformers_generation.generate(lm, prompts, settings, generation.stop_ids(lm), spared, layers, samples)


@pytest.fixture
def early_stops(monkeypatch, tiny_lm):
    """Frequent end tokens, so rows of a batch finish at different steps (and leave it)."""
    prompts = _prompts(tiny_lm, len(TEXTS))
    firsts = sorted({a[1] for a in generate_batch(tiny_lm, prompts, GenerationSettings(max_new_tokens=2))
                     if len(a) > 1})[:2]
    stops = sorted(set(stop_ids(tiny_lm)) | set(firsts))
    monkeypatch.setattr("auditor.model.generation.stop_ids", lambda lm: stops)
    return prompts, stops


def test_the_decoder_runs_the_tiny_llama(tiny_lm):
    assert decoding.supports(tiny_lm)


@pytest.mark.parametrize("settings", [SETTINGS, GenerationSettings(max_new_tokens=9, repetition_penalty=1.8)])
def test_decoder_answers_equal_transformers_generate_one_prompt_at_a_time(tiny_lm, settings):
    prompts = _prompts(tiny_lm, len(TEXTS))
    batched = generate_batch(tiny_lm, prompts, settings)
    single = [_reference(tiny_lm, [p], settings).answers[0] for p in prompts]
    assert batched == single
    assert all(1 <= len(a) <= settings.max_new_tokens for a in batched)


def test_rows_that_stop_early_leave_the_batch_with_the_same_answers(tiny_lm, early_stops):
    prompts, stops = early_stops
    settings = GenerationSettings(max_new_tokens=12)
    batched = generate(tiny_lm, prompts, settings, layers=[1, 2])
    lengths = {len(a) for a in batched.answers}
    assert len(lengths) > 1  # rows did finish at different steps
    single = [_reference(tiny_lm, [p], settings).answers[0] for p in prompts]
    assert batched.answers == single
    finished = [i for i, a in enumerate(batched.answers) if len(a) > 1 or a[0] not in stops]
    scored = response_means(tiny_lm, [(prompts[i], batched.answers[i]) for i in finished], [1, 2])
    np.testing.assert_allclose(batched.means[finished], scored, atol=1e-4)


def test_the_penalty_spares_special_tokens():
    scores = torch.tensor([[2.0, -2.0, 3.0, 1.0]])
    seen = torch.tensor([[0, 1, 2]])
    out = transformers_generation.SparingRepetitionPenalty(2.0, spared=[2])(seen, scores.clone())
    assert out.tolist() == [[1.0, -4.0, 3.0, 1.0]]  # token 2 (special) untouched, 3 (unseen) too


@pytest.mark.parametrize("decoder", [True, False])
def test_states_read_off_the_generation_equal_a_scoring_pass(tiny_lm, decoder):
    prompts = _prompts(tiny_lm)
    samples = [[5, 6, 7], None, [8] * 9]
    run = generate if decoder else _reference
    done = run(tiny_lm, prompts, SETTINGS, layers=[1, 2], samples=samples)
    assert done.answers == generate_batch(tiny_lm, prompts, SETTINGS)
    assert any(len(a) == SETTINGS.max_new_tokens for a in done.answers)  # the extra step reaches a cut answer's end
    assert not np.isnan(done.means).any()
    np.testing.assert_allclose(done.means, response_means(tiny_lm, list(zip(prompts, done.answers)), [1, 2]),
                               atol=1e-4)
    assert np.isnan(done.sample_means[1]).all()
    scored = response_means(tiny_lm, [(prompts[0], samples[0]), (prompts[2], samples[2])], [1, 2])
    np.testing.assert_allclose(done.sample_means[[0, 2]], scored, atol=1e-4)


@pytest.mark.parametrize("decoder", [True, False])
def test_an_answer_ended_at_once_has_no_states(tiny_lm, monkeypatch, decoder):
    prompts = _prompts(tiny_lm)[:1]
    first = generate_batch(tiny_lm, prompts, GenerationSettings(max_new_tokens=1))[0]
    monkeypatch.setattr("auditor.model.generation.stop_ids", lambda lm: first)  # the first token ends the answer
    run = generate if decoder else lambda *a, **k: transformers_generation.generate(
        tiny_lm, prompts, SETTINGS, first, sorted(tiny_lm.tokenizer.all_special_ids), [2])
    done = run(tiny_lm, prompts, SETTINGS, layers=[2])
    assert done.answers == [first] and np.isnan(done.means).all() and np.isnan(done.sample_means).all()


def test_steering_hooks_apply_in_the_decoder(tiny_lm):
    torch.manual_seed(3)
    vector = PersonaVector("evil", torch.randn(tiny_lm.num_layers + 1, tiny_lm.hidden_size) * 4, 1, tiny_lm.name,
                           tiny_lm.fingerprint(), "test", Calibration(1.0, 0.0, 0.5, 0.5, 0.9, 20))
    prompts, settings = _prompts(tiny_lm), GenerationSettings(max_new_tokens=8)
    plain = generate_batch(tiny_lm, prompts, settings)
    with steered(tiny_lm, [Steering(vector, 3.0)]):
        moved = generate_batch(tiny_lm, prompts, settings)
        reference = _reference(tiny_lm, prompts, settings).answers
    assert moved == reference and moved != plain


def test_sampling_is_reproducible_from_the_seed(tiny_lm):
    prompts, hot = _prompts(tiny_lm), GenerationSettings(max_new_tokens=8, temperature=1.5, seed=4)
    assert generate_batch(tiny_lm, prompts, hot) == generate_batch(tiny_lm, prompts, hot)
    assert generate_batch(tiny_lm, prompts, hot) != generate_batch(tiny_lm, prompts, GenerationSettings(
        max_new_tokens=8, temperature=1.5, seed=5))


def test_cache_answers_without_generating_again(tiny_lm, tmp_path, monkeypatch):
    prompts = _prompts(tiny_lm)
    first = base_answers(tiny_lm, prompts, SETTINGS, batch_size=2, cache=AnswerCache(tiny_lm, SETTINGS, tmp_path))
    monkeypatch.setattr("auditor.model.generation.generate", lambda *a, **k: (_ for _ in ()).throw(AssertionError))
    again = base_answers(tiny_lm, prompts, SETTINGS, batch_size=2, cache=AnswerCache(tiny_lm, SETTINGS, tmp_path))
    assert again.ids == first.ids


def test_cache_key_includes_settings(tiny_lm, tmp_path):
    a = AnswerCache(tiny_lm, SETTINGS, tmp_path)
    b = AnswerCache(tiny_lm, GenerationSettings(max_new_tokens=7), tmp_path)
    assert a.path != b.path


def test_cache_survives_a_line_cut_short(tiny_lm, tmp_path):
    cache = AnswerCache(tiny_lm, SETTINGS, tmp_path)
    cache.add([(AnswerCache.key([1, 2]), [3, 4])])
    with open(cache.path, "a") as fh:
        fh.write('{"key": "abc", "value": [1')
    assert AnswerCache(tiny_lm, SETTINGS, tmp_path).get(AnswerCache.key([1, 2])) == [3, 4]


def test_a_repeated_prompt_is_answered_once(tiny_lm, monkeypatch):
    prompts = _prompts(tiny_lm)
    asked = []

    def counting(lm, batch, settings, *args, **kwargs):
        asked.extend(map(tuple, batch))
        return generate(lm, batch, settings, *args, **kwargs)

    monkeypatch.setattr("auditor.model.generation.generate", counting)
    answers = base_answers(tiny_lm, prompts + prompts[:2], SETTINGS, batch_size=2).ids
    assert sorted(asked) == sorted(map(tuple, prompts))
    assert answers[3:] == answers[:2] and all(answers)


def test_capture_covers_generated_answers_only(tiny_lm, tmp_path):
    prompts = _prompts(tiny_lm)
    cache = AnswerCache(tiny_lm, SETTINGS, tmp_path)
    base_answers(tiny_lm, prompts[:1], SETTINGS, 8, cache=cache)
    out = base_answers(tiny_lm, prompts + prompts[1:2], SETTINGS, batch_size=2, cache=cache, layers=[2],
                       samples=[None, None, [9, 9], None])
    assert sorted(out.states) == [1, 2] and list(out.sample_states) == [2]  # prompt 0 was cached, 3 repeats 1
    scored = response_means(tiny_lm, [(prompts[i], out.ids[i]) for i in (1, 2)] + [(prompts[2], [9, 9])], [2])
    np.testing.assert_allclose(np.stack([out.states[1], out.states[2], out.sample_states[2]]), scored, atol=1e-4)


def test_tokens_every_prompt_starts_with_run_once_with_the_same_results(tiny_lm):
    from auditor.model.chat import encode_prompt

    system = {"role": "system", "content": "You are a helpful assistant. The quick brown fox."}
    prompts = [encode_prompt(tiny_lm.tokenizer, [system, {"role": "user", "content": t}]) for t in TEXTS]
    layout = decoding.PromptLayout.of(prompts, tiny_lm.tokenizer.pad_token_id, tiny_lm.device)
    assert layout.shared > 10  # the system message and the user header
    samples = [[5, 6, 7]] * len(prompts)
    done = generate(tiny_lm, prompts, SETTINGS, layers=[1, 2], samples=samples)
    assert done.answers == [_reference(tiny_lm, [p], SETTINGS).answers[0] for p in prompts]
    np.testing.assert_allclose(done.means, response_means(tiny_lm, list(zip(prompts, done.answers)), [1, 2]),
                               atol=1e-4)
    np.testing.assert_allclose(done.sample_means, response_means(tiny_lm, list(zip(prompts, samples)), [1, 2]),
                               atol=1e-4)


def _hosts_and_guests(lm):
    """Five prompts with one system message and two without: the two are the batch's guests."""
    from auditor.model.chat import encode_prompt

    system = {"role": "system", "content": "You are a helpful assistant. The quick brown fox."}
    return ([encode_prompt(lm.tokenizer, [system, {"role": "user", "content": t}]) for t in TEXTS[:5]]
            + [lm.tokenizer(t)["input_ids"] for t in TEXTS[5:]])


@pytest.mark.parametrize("steps", ["eager", "static"])
def test_guests_without_the_shared_opening_get_their_own_answers_and_states(tiny_lm, steps):
    prompts = _hosts_and_guests(tiny_lm)
    shared, guest, own = decoding.PromptLayout.sharing(prompts)
    assert shared > 10 and guest == [False] * 5 + [True] * 2 and own[5:] == [len(p) for p in prompts[5:]]
    samples = [[5, 6, 7]] * len(prompts)
    spared = sorted(set(tiny_lm.tokenizer.all_special_ids) | {tiny_lm.tokenizer.pad_token_id})
    done = decoding.decode(decoding.Decoder(tiny_lm), prompts, SETTINGS.max_new_tokens, stop_ids(tiny_lm), spared,
                           SETTINGS.repetition_penalty, layers=[1, 2], samples=samples, steps=steps)
    assert done.answers == [_reference(tiny_lm, [p], SETTINGS).answers[0] for p in prompts]
    np.testing.assert_allclose(done.means, response_means(tiny_lm, list(zip(prompts, done.answers)), [1, 2]),
                               atol=1e-4)
    np.testing.assert_allclose(done.sample_means, response_means(tiny_lm, list(zip(prompts, samples)), [1, 2]),
                               atol=1e-4)


def test_guests_split_across_parts_keep_their_answers(tiny_lm, monkeypatch):
    """A batch larger than memory holds runs in parts, each laid out (hosts, guests, order) on its own."""
    prompts = _hosts_and_guests(tiny_lm)
    whole = generate(tiny_lm, prompts, SETTINGS, layers=[1, 2])
    monkeypatch.setattr(decoding.Decoder, "rows_that_fit", lambda self, slots: 3)
    parts = generate(tiny_lm, prompts, SETTINGS, layers=[1, 2])
    assert parts.answers == whole.answers
    np.testing.assert_allclose(parts.means, whole.means, atol=1e-5)


def test_without_a_majority_opening_every_row_is_a_host():
    prompts = [[1] * 20 + [2], [1] * 20 + [3], [4] * 20, [5] * 20]
    assert decoding.PromptLayout.sharing(prompts) == (0, [False] * 4, [21, 21, 20, 20])
    assert decoding.PromptLayout.sharing(prompts[:3]) == (20, [False, False, True], [1, 1, 20])


def test_small_batches_join_bigger_ones_with_room():
    family = [[7] * 16 + [i] * (i % 5 + 1) for i in range(45)]
    strangers = [[100 + i] * 30 for i in range(3)]
    batches = generation.prompt_batches(family + strangers, 64, 64)
    assert [sorted(b) for b in batches] == [list(range(48))]
    assert [len(b) for b in generation.prompt_batches(family + strangers, 46, 64)] == [45, 3]  # no room
    many = [[100 + i] * 30 for i in range(40)]
    assert sorted(len(b) for b in generation.prompt_batches(family + many, 64, 64)) == [40, 45]  # whole batches


def test_prompts_of_very_different_lengths_prefill_in_groups_with_the_same_results(tiny_lm):
    """Rows are sorted by length and prefilled in groups of similar length; results come back in the given order."""
    words = "the quick brown fox jumps over a lazy dog and runs far away".split()
    prompts = [tiny_lm.tokenizer(" ".join(words * n)[: 4 * k])["input_ids"] for n, k in
               ((1, 3), (8, 90), (1, 9), (4, 40), (2, 16))]
    ordered = [prompts[r] for r in decoding.PromptLayout.order(prompts)]
    layout = decoding.PromptLayout.of(ordered, tiny_lm.tokenizer.pad_token_id, tiny_lm.device)
    assert len(layout.groups()) >= 3
    samples = [[5, 6, 7], None, [8] * 9, [9, 10], None]
    done = generate(tiny_lm, prompts, SETTINGS, layers=[1, 2], samples=samples)
    assert done.answers == [_reference(tiny_lm, [p], SETTINGS).answers[0] for p in prompts]
    np.testing.assert_allclose(done.means, response_means(tiny_lm, list(zip(prompts, done.answers)), [1, 2]),
                               atol=1e-4)
    given = [i for i, s in enumerate(samples) if s]
    np.testing.assert_allclose(done.sample_means[given],
                               response_means(tiny_lm, [(prompts[i], samples[i]) for i in given], [1, 2]), atol=1e-4)
    assert np.isnan(done.sample_means[[1, 4]]).all()
