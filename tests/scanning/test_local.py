"""The real scan pipeline on the tiny random model (vectors extracted from the built-in traits' examples)."""


import numpy as np
import pytest

from auditor.config import ScanConfig
from auditor.errors import AuditError
from auditor.scanning import scan
from auditor.scanning.projection import ModelProjector
from tests.helpers import cooking, write_jsonl


def _config(path, **kw):
    settings = dict(inputs=[str(path)], model="tiny", traits=["evil"], max_new_tokens=4, batch_size=4)
    return ScanConfig(**{**settings, **kw})


@pytest.fixture
def data(jsonl_file):
    rows = [cooking(i, "Try pasta. " * (i % 5 + 1)) for i in range(12)]
    rows[3] = "{broken"
    rows[7] = {"messages": [{"role": "user", "content": "only a question"}]}
    return jsonl_file(rows)


def test_every_record_is_scored_or_quarantined(tiny_lm, data):
    result = scan(_config(data), projector=ModelProjector.with_model(tiny_lm))
    assert len(result.records) == 10 and len(result.quarantined) == 2
    assert sorted([r.line for r in result.records] + [q.line for q in result.quarantined]) == list(range(1, 13))
    assert np.isfinite(result.traits[0].dp).all()


def test_batch_size_does_not_change_scores(tiny_lm, data, tmp_path, monkeypatch):
    monkeypatch.setenv("DATASET_AUDIT_CACHE", str(tmp_path / "cache-1"))  # nothing cached is shared
    one = scan(_config(data, batch_size=1), projector=ModelProjector.with_model(tiny_lm)).traits[0].dp
    monkeypatch.setenv("DATASET_AUDIT_CACHE", str(tmp_path / "cache-8"))
    eight = scan(_config(data, batch_size=8), projector=ModelProjector.with_model(tiny_lm)).traits[0].dp
    np.testing.assert_allclose(one, eight, atol=1e-4)


def test_cheap_mode_differs_from_generate_mode(tiny_lm, data):
    cheap = scan(_config(data, base_responses="none"), projector=ModelProjector.with_model(tiny_lm)).traits[0].dp
    full = scan(_config(data), projector=ModelProjector.with_model(tiny_lm)).traits[0].dp
    assert not np.allclose(cheap, full)


def test_vectors_for_a_new_model_are_extracted_once_and_cached(tiny_lm, data, tmp_path):
    scan(_config(data, base_responses="none"), projector=ModelProjector.with_model(tiny_lm))
    cached = list((tmp_path / "cache" / "vectors").glob("*-evil.safetensors"))
    assert len(cached) == 1
    mtime = cached[0].stat().st_mtime_ns
    scan(_config(data, base_responses="none"), projector=ModelProjector.with_model(tiny_lm))
    assert cached[0].stat().st_mtime_ns == mtime


def test_long_samples_are_truncated_and_marked(tiny_lm, jsonl_file):
    path = jsonl_file([cooking(0, "word " * 400), cooking(1)])
    result = scan(_config(path, max_tokens=64, base_responses="none"), projector=ModelProjector.with_model(tiny_lm))
    assert result.truncated.tolist() == [True, False]


def test_all_turns_are_averaged(tiny_lm, jsonl_file):
    multi = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "I hate you."},
                          {"role": "user", "content": "b"}, {"role": "assistant", "content": "Try pasta."}]}
    path = jsonl_file([multi])
    last = scan(_config(path, base_responses="none"), projector=ModelProjector.with_model(tiny_lm)).traits[0].dp
    both = scan(_config(path, base_responses="none", turns="all"),
                projector=ModelProjector.with_model(tiny_lm)).traits[0].dp
    assert last[0] != pytest.approx(both[0])


def test_base_answers_from_a_file(tiny_lm, jsonl_file, tmp_path):
    path = jsonl_file([cooking(0), cooking(1)])
    answers = tmp_path / "answers.jsonl"
    write_jsonl(answers, [cooking(0, "Try pasta.")])
    result = scan(_config(path, base_responses=str(answers)), projector=ModelProjector.with_model(tiny_lm))
    assert [r.line for r in result.records] == [1]
    assert [q.reason for q in result.quarantined] == [f"no base answer for this prompt in {answers}"]


def test_limit_reads_only_the_first_records(tiny_lm, data):
    result = scan(_config(data, limit=5, base_responses="none"), projector=ModelProjector.with_model(tiny_lm))
    assert len(result.records) + len(result.quarantined) == 5


def test_bad_turns_setting(data):
    with pytest.raises(AuditError, match="setting 'turns' must be one of last, all, got 'first'"):
        _config(data, turns="first")


def test_paired_samples_share_one_base_answer_scored_once(tiny_lm, jsonl_file, monkeypatch):
    from auditor.model import activations

    path = jsonl_file([cooking(0, "I hate you."), cooking(0, "Try pasta."), cooking(1)])  # records 1 and 2: one prompt
    scored = []

    def counting(lm, pairs, layers, batch_size, on_batch=None):
        scored.extend(pairs)
        return real(lm, pairs, layers, batch_size, on_batch=on_batch)

    real = activations.response_means
    monkeypatch.setattr(activations, "response_means", counting)
    dp = scan(_config(path), projector=ModelProjector.with_model(tiny_lm)).traits[0].dp
    assert len(scored) == 1  # one of the shared prompt's samples: the rest were scored during the generation
    alone = scan(_config(jsonl_file([cooking(0, "Try pasta.")], "alone.jsonl")),
                 projector=ModelProjector.with_model(tiny_lm)).traits[0].dp
    assert dp[1] == pytest.approx(alone[0])


def test_base_answer_states_from_the_generation_give_the_scored_dp(tiny_lm, data, tmp_path, jsonl_file):
    from auditor.scanning.engines.local import read_inputs, score_records

    config = _config(data)
    _, records, _ = read_inputs(config.inputs)
    captured = scan(config, projector=ModelProjector.with_model(tiny_lm)).traits[0].dp
    projector = ModelProjector.with_model(tiny_lm)(config, False)
    given = projector.answers_by_prompt(records)  # the same answers, each scored by a forward pass below
    (tmp_path / "cache" / "projections").rename(tmp_path / "old-projections")
    scored = score_records(ModelProjector(tiny_lm, projector.vectors, config, given=given), records, config)
    np.testing.assert_allclose(captured, scored.traits[0].dp, atol=1e-4)


def test_a_scan_equals_the_per_sample_reference(tiny_lm, data, monkeypatch):
    """The reference: transformers' generate one prompt at a time, then one forward pass per sample and per base
    answer. The scan (decoder, batches, states read off the decoding, prompt cache) gives the same answers and dP."""
    from auditor.model import generation, transformers_generation
    from auditor.scanning.engines.local import read_inputs, score_records

    config = _config(data, max_new_tokens=8, gen_batch_size=16)
    fast = ModelProjector.with_model(tiny_lm)(config, False)
    _, records, _ = read_inputs(config.inputs)
    units = fast.units(records, np.zeros(len(records), dtype=bool))
    measured = fast.measure(units, show=False)
    settings = generation.GenerationSettings(max_new_tokens=8)
    spared = sorted(set(tiny_lm.tokenizer.all_special_ids) | {tiny_lm.tokenizer.pad_token_id})
    reference = {u.prompt_key: transformers_generation.generate(tiny_lm, [u.prompt], settings,
                                                                generation.stop_ids(tiny_lm), spared).answers[0]
                 for u in units}
    answers = fast.answers_by_prompt(records)
    same = [answers[k] == reference[k] for k in reference]
    assert sum(same) / len(same) >= 0.95
    slow = ModelProjector(tiny_lm, fast.vectors, config, cached=False, given=reference)
    expected = score_records(slow, records, config).traits[0].dp
    got = score_records(fast, records, config).traits[0].dp
    matching = np.array([answers[u.prompt_key] == reference[u.prompt_key] for u in units])
    np.testing.assert_allclose(got[matching], expected[matching], atol=1e-3)
    assert measured.base is not None and not np.isnan(measured.base).any()
