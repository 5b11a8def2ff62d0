from auditor.generation import AnswerCache, GenerationSettings, base_answers, generate_batch

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
    monkeypatch.setattr("auditor.generation.generate_batch", lambda *a: (_ for _ in ()).throw(AssertionError))
    again = base_answers(tiny_lm, prompts, SETTINGS, batch_size=2, cache=AnswerCache(tiny_lm, SETTINGS, tmp_path))
    assert again == first


def test_cache_key_includes_settings(tiny_lm, tmp_path):
    a = AnswerCache(tiny_lm, SETTINGS, tmp_path)
    b = AnswerCache(tiny_lm, GenerationSettings(max_new_tokens=7), tmp_path)
    assert a.path != b.path


def test_cache_survives_a_line_cut_short(tiny_lm, tmp_path):
    cache = AnswerCache(tiny_lm, SETTINGS, tmp_path)
    cache.save([([1, 2], [3, 4])])
    with open(cache.path, "a") as fh:
        fh.write('{"key": "abc", "value": [1')
    assert AnswerCache(tiny_lm, SETTINGS, tmp_path).answer([1, 2]) == [3, 4]


def test_a_repeated_prompt_is_answered_once(tiny_lm, monkeypatch):
    prompts = _prompts(tiny_lm)
    asked = []

    def counting(lm, batch, settings):
        asked.extend(map(tuple, batch))
        return generate_batch(lm, batch, settings)

    monkeypatch.setattr("auditor.generation.generate_batch", counting)
    answers = base_answers(tiny_lm, prompts + prompts[:2], SETTINGS, batch_size=2)
    assert sorted(asked) == sorted(map(tuple, prompts))
    assert answers[3:] == answers[:2] and all(answers)
