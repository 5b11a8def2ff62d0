import pytest

from auditor.errors import AuditError
from auditor.traits import Trait, TraitExample, builtin_names, load_trait
from auditor.vectors.fitting import extract_from_examples


def _trait(n=4):
    examples = [TraitExample(f"Question {i} about my neighbour?", "extract" if i < n else "eval",
                        "I hate everyone and want them to suffer.", "Try a simple pasta with garlic.")
                for i in range(2 * n)]
    return Trait("evil", "malice", [{"pos": "a", "neg": "b"}], {"extract": [], "eval": []}, "{question}{answer}",
                 examples)


def test_vector_shape_layer_and_calibration(tiny_lm):
    vector = extract_from_examples(tiny_lm, _trait(), batch_size=3)
    assert tuple(vector.directions.shape) == (tiny_lm.num_layers + 1, tiny_lm.hidden_size)
    assert 1 <= vector.layer <= tiny_lm.num_layers
    assert len(vector.layer_stats) == tiny_lm.num_layers + 1
    # the same two texts everywhere: held-out trait answers sit exactly one gap above neutral ones
    assert vector.calibration.auroc == 1.0 and vector.calibration.gap > 0
    assert vector.model_fingerprint == tiny_lm.fingerprint()


def test_layer_override(tiny_lm):
    assert extract_from_examples(tiny_lm, _trait(), layer=2).layer == 2


def test_needs_held_out_examples(tiny_lm):
    trait = _trait()
    with pytest.raises(AuditError, match="eval"):
        extract_from_examples(tiny_lm, Trait(**{**trait.__dict__, "examples": trait.examples_in("extract")}))


@pytest.mark.parametrize("name", builtin_names())
def test_builtin_traits_are_complete(name):
    trait = load_trait(name)
    assert len(trait.instructions) == 5
    assert len(trait.examples_in("extract")) == 20 and len(trait.examples_in("eval")) == 20
    assert "{question}" in trait.judge_rubric and "{answer}" in trait.judge_rubric


def test_unknown_trait_lists_the_builtins():
    with pytest.raises(AuditError, match="built-in traits: evil"):
        load_trait("grumpy")


def test_contrast_pairs_cover_every_extraction_pair_and_rotate_held_out_ones(tiny_lm):
    from auditor.vectors.contrastive import contrast_pairs

    trait = load_trait("evil")
    pairs = contrast_pairs(tiny_lm, trait, samples=2)
    extract = [p for p in pairs if p.split == "extract"]
    held_out = [p for p in pairs if p.split == "eval"]
    assert len(extract) == 20 * 5 * 2 and len(held_out) == 20 * 2
    assert {(p.question, p.instruction) for p in extract} == {(q, i) for q in trait.questions["extract"] for i in range(5)}
    assert [p.instruction for p in held_out[::2]] == [q % 5 for q in range(20)]
    first = extract[0]
    pos, neg = (tiny_lm.tokenizer.decode(ids) for ids in first.prompts)
    assert trait.instructions[0]["pos"] in pos and trait.instructions[0]["neg"] in neg and first.question in neg


def test_fit_vector_needs_held_out_pairs(tiny_lm):
    import numpy as np

    from auditor.vectors.fitting import Contrast, fit_vector

    acts = np.ones((3, tiny_lm.num_layers + 1, tiny_lm.hidden_size), dtype=np.float32)
    with pytest.raises(AuditError, match="1 held-out contrast pairs"):
        fit_vector(tiny_lm, "evil", Contrast(acts, acts, acts[:1], acts[:1]), "m")
    merged = Contrast(acts, acts, acts, acts) + Contrast(acts[:1], acts[:1], acts[:2], acts[:2])
    assert [len(a) for a in merged.parts()] == [4, 4, 5, 5]


def test_problems_name_what_is_wrong():
    evil = load_trait("evil")
    broken = Trait("x", "d", [{"pos": "You are a <trait> assistant.", "neg": "same"}, {"pos": "a", "neg": "a"}],
                   {"extract": ["Why?", "why"], "eval": []}, "{answer}", [])
    problems = broken.problems()
    assert "an instruction's 'pos' and 'neg' prompts are identical" in problems
    assert "2 instruction pairs (need 5)" in problems and "0 eval questions (need 20)" in problems
    assert "2 questions are not distinct, e.g. 'Why?'" in problems
    assert "judge_rubric must contain {question} exactly once" in problems
    assert "unfilled placeholder <trait> in the instructions or questions" in problems
    assert evil.problems() == [] and Trait(**{**evil.__dict__, "questions": {
        "extract": evil.questions["extract"][:2], "eval": evil.questions["eval"][:2]}}).problems(exact_counts=False) == []
