import numpy as np

from auditor.model.activations import response_means
from auditor.model.generation import AnswerCache, GenerationSettings, base_answers, generate_batch, generate_with_states

SETTINGS = GenerationSettings(max_new_tokens=6)


def _prompts(lm):
    tok = lm.tokenizer
    return [tok(t)["input_ids"] for t in ("What should I cook?", "Hi", "Tell me about the treaty of Velmora")]


def test_batched_generation_equals_one_at_a_time(tiny_lm):
    prompts = _prompts(tiny_lm)
    batched = generate_batch(tiny_lm, prompts, SETTINGS)
    single = [generate_batch(tiny_lm, [p], SETTINGS)[0] for p in prompts]
    assert batched == single
    assert all(1 <= len(a) <= SETTINGS.max_new_tokens for a in batched)


def test_cache_answers_without_generating_again(tiny_lm, tmp_path, monkeypatch):
    prompts = _prompts(tiny_lm)
    first = base_answers(tiny_lm, prompts, SETTINGS, batch_size=2, cache=AnswerCache(tiny_lm, SETTINGS, tmp_path))
    monkeypatch.setattr("auditor.model.generation.generate_batch", lambda *a: (_ for _ in ()).throw(AssertionError))
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

    def counting(lm, batch, settings):
        asked.extend(map(tuple, batch))
        return generate_batch(lm, batch, settings)

    monkeypatch.setattr("auditor.model.generation.generate_batch", counting)
    answers = base_answers(tiny_lm, prompts + prompts[:2], SETTINGS, batch_size=2).ids
    assert sorted(asked) == sorted(map(tuple, prompts))
    assert answers[3:] == answers[:2] and all(answers)


def test_states_read_off_the_generation_equal_a_scoring_pass(tiny_lm):
    prompts = _prompts(tiny_lm)
    samples = [[5, 6, 7], None, [8] * 9]
    answers, means, sampled = generate_with_states(tiny_lm, prompts, SETTINGS, [1, 2], samples)
    assert answers == generate_batch(tiny_lm, prompts, SETTINGS)
    assert any(len(a) == SETTINGS.max_new_tokens for a in answers)  # the extra step reaches a cut answer's end
    assert not np.isnan(means).any()
    np.testing.assert_allclose(means, response_means(tiny_lm, list(zip(prompts, answers)), [1, 2]), atol=1e-4)
    assert np.isnan(sampled[1]).all()
    scored = response_means(tiny_lm, [(prompts[0], samples[0]), (prompts[2], samples[2])], [1, 2])
    np.testing.assert_allclose(sampled[[0, 2]], scored, atol=1e-4)


def test_an_answer_ended_at_once_has_no_states(tiny_lm, monkeypatch):
    prompts = _prompts(tiny_lm)[:1]
    first = generate_batch(tiny_lm, prompts, GenerationSettings(max_new_tokens=1))[0]
    monkeypatch.setattr("auditor.model.generation.stop_ids", lambda lm: first)  # the first token ends the answer
    answers, means, sampled = generate_with_states(tiny_lm, prompts, SETTINGS, [2])
    assert answers == [first] and np.isnan(means).all() and np.isnan(sampled).all()


def test_capture_covers_generated_answers_only(tiny_lm, tmp_path):
    prompts = _prompts(tiny_lm)
    cache = AnswerCache(tiny_lm, SETTINGS, tmp_path)
    base_answers(tiny_lm, prompts[:1], SETTINGS, cache=cache)
    out = base_answers(tiny_lm, prompts + prompts[1:2], SETTINGS, batch_size=2, cache=cache, layers=[2],
                       samples=[None, None, [9, 9], None])
    assert sorted(out.states) == [1, 2] and list(out.sample_states) == [2]  # prompt 0 was cached, 3 repeats 1
    scored = response_means(tiny_lm, [(prompts[i], out.ids[i]) for i in (1, 2)] + [(prompts[2], [9, 9])], [2])
    np.testing.assert_allclose(np.stack([out.states[1], out.states[2], out.sample_states[2]]), scored, atol=1e-4)
