import pytest

from auditor.errors import AuditError
from auditor.extract import extract_from_examples
from auditor.traits import Example, Trait, builtin_names, load_trait


def _trait(n=4):
    examples = [Example(f"Question {i} about my neighbour?", "extract" if i < n else "eval",
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
