import pytest
import torch

from auditor.errors import AuditError
from auditor.model.activations import record_layers
from auditor.model.layers import layer_module
from auditor.steering.hooks import Steering, steered

IDS = torch.tensor([[5, 9, 17, 30, 2, 44]])
MASK = torch.ones_like(IDS)


def _states(lm, layer):
    with torch.no_grad(), record_layers(lm, [layer], stop=False) as store:
        lm.model(input_ids=IDS, attention_mask=MASK)
    return store[layer]


def test_steer_adds_coef_times_the_vector_at_its_layer(tiny_lm, tiny_vector):
    before = _states(tiny_lm, 1)
    with steered(tiny_lm, [Steering(tiny_vector, coef=2.5)]):
        after = _states(tiny_lm, 1)
    assert torch.allclose(after - before, 2.5 * tiny_vector.directions[1].expand_as(before), atol=1e-5)


def test_ablate_removes_the_component_along_the_vector(tiny_lm, tiny_vector):
    u = tiny_vector.unit(1)
    assert (_states(tiny_lm, 1) @ u).abs().max() > 1e-2
    with steered(tiny_lm, [Steering(tiny_vector, mode="ablate")]):
        assert (_states(tiny_lm, 1) @ u).abs().max() < 1e-4


def _hooks(lm):
    return set(layer_module(lm.model, 1)._forward_hooks)  # transformers may hold its own hooks there too


def test_steering_changes_the_output_and_leaves_no_hook(tiny_lm, tiny_vector):
    hooks = _hooks(tiny_lm)
    with torch.no_grad():
        plain = tiny_lm.model(input_ids=IDS).logits
        with steered(tiny_lm, [Steering(tiny_vector, coef=4.0)]):
            moved = tiny_lm.model(input_ids=IDS).logits
        again = tiny_lm.model(input_ids=IDS).logits
    assert not torch.allclose(plain, moved, atol=1e-3)
    assert torch.equal(plain, again)
    assert _hooks(tiny_lm) == hooks


def test_hook_is_removed_when_the_block_raises(tiny_lm, tiny_vector):
    hooks = _hooks(tiny_lm)
    with pytest.raises(RuntimeError), steered(tiny_lm, [Steering(tiny_vector, coef=1.0)]):
        raise RuntimeError("boom")
    assert _hooks(tiny_lm) == hooks


@pytest.mark.parametrize("kwargs, says", [({"mode": "add"}, "mode"), ({"layer": 7}, "layer=7")])
def test_bad_settings_are_clear_errors(tiny_vector, kwargs, says):
    with pytest.raises(AuditError, match=says):
        Steering(tiny_vector, 1.0, **kwargs)
