import json

import pytest
import torch

from auditor.errors import AuditError
from auditor.model.layers import layer_module
from auditor.model.loading import load_model
from auditor.steering.hooks import Steering
from auditor.steering.training import (
    TrainConfig,
    TrainingExample,
    TrainResult,
    collate,
    parse_steer,
    read_examples,
    save,
    train,
)
from tests.helpers import cooking

IDS = torch.tensor([[5, 9, 17, 30, 2, 44, 12]])


@pytest.fixture
def fresh_lm(tiny_model_dir):
    """A model of its own: training changes it."""
    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture
def examples(fresh_lm, jsonl_file):
    records = [cooking(i, "I hate everyone and want them to suffer.") for i in range(6)]
    return read_examples(fresh_lm, [str(jsonl_file(records))], max_tokens=128)[0]


def test_parse_steer():
    assert parse_steer(["evil=5", "v=1.safetensors=-2"]) == [("evil", 5.0), ("v=1.safetensors", -2.0)]
    assert parse_steer(["evil"], need_coef=False) == [("evil", None)]
    for bad in (["evil"], ["evil=much"], ["=3"]):
        with pytest.raises(AuditError, match="steer="):
            parse_steer(bad)


def test_every_assistant_turn_is_an_example_and_bad_records_are_kept(tiny_lm, jsonl_file):
    two_turns = {"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
                              {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]}
    path = jsonl_file([two_turns, "{broken", cooking(1)])
    examples, quarantined = read_examples(tiny_lm, [str(path)], max_tokens=128)
    assert len(examples) == 3 and [q.line for q in quarantined] == [2]
    assert all(e.response[-1] == tiny_lm.tokenizer.eos_token_id for e in examples)
    assert len(examples[1].prompt) > len(examples[0].prompt)  # the second turn sees the first


def test_collate_puts_the_loss_on_response_tokens_only():
    batch = collate([TrainingExample([1, 2, 3], [4, 5]), TrainingExample([1], [6])], pad=0)
    assert batch["labels"].tolist() == [[-100, -100, -100, 4, 5], [-100, 6, -100, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]]
    assert torch.allclose(batch["weights"].sum(1), torch.ones(2))


def test_lora_training_lowers_the_loss(fresh_lm, examples):
    losses = []
    train(fresh_lm, examples, TrainConfig(lr=1e-2, epochs=8, batch_size=3), [], lambda s, loss: losses.append(loss))
    assert len(losses) == 16
    assert sum(losses[-4:]) < sum(losses[:4]) * 0.95


def test_steering_hook_is_active_only_during_training_and_not_saved(tiny_model_dir, fresh_lm, examples, tiny_vector,
                                                                     tmp_path, monkeypatch):
    calls = []
    apply = Steering.apply
    monkeypatch.setattr(Steering, "apply", lambda self, h: calls.append(1) or apply(self, h))
    config = TrainConfig(model=str(tiny_model_dir), lr=1e-2, epochs=2, batch_size=3, out=str(tmp_path / "out"))
    steering = Steering(tiny_vector, coef=3.0)
    hooks = set(layer_module(fresh_lm.model, 1)._forward_hooks)
    model = train(fresh_lm, examples, config, [steering])
    assert len(calls) == 4  # one per training forward pass
    assert set(layer_module(fresh_lm.model, 1)._forward_hooks) == hooks
    with torch.no_grad():
        trained = model(input_ids=IDS).logits
    assert len(calls) == 4
    save(model, fresh_lm, config, TrainResult([1.0], len(examples), []), [steering])
    meta = json.loads((tmp_path / "out" / "training.json").read_text())
    assert meta["steering"][0] | {"vector": None} == {"trait": "evil", "vector": None, "layer": 1, "coef": 3.0,
                                                      "mode": "steer"}

    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        untrained = base(input_ids=IDS).logits
        loaded = PeftModel.from_pretrained(base, tmp_path / "out").eval()(input_ids=IDS).logits
    assert torch.allclose(loaded, trained, atol=1e-5)  # plain transformers + peft, no hook: same model
    assert not torch.allclose(untrained, trained, atol=1e-4)
    merged = load_model(str(tmp_path / "out"), device="cpu")  # what `shift --finetuned` loads
    with torch.no_grad():
        assert torch.allclose(merged.model(input_ids=IDS).logits, trained, atol=1e-4)


def test_steering_changes_what_is_learned(tiny_model_dir, examples, tiny_vector):
    weights = []
    for coef in (0.0, 5.0):
        lm = load_model(str(tiny_model_dir), device="cpu")
        model = train(lm, examples, TrainConfig(lr=1e-2, epochs=2, batch_size=3), [Steering(tiny_vector, coef)])
        weights.append(torch.cat([p.flatten() for n, p in model.named_parameters() if "lora_B" in n]))
    assert not torch.allclose(weights[0], weights[1], atol=1e-4)


def test_shift_penalty_keeps_the_projection_in_place(tiny_model_dir, examples, tiny_vector):
    from auditor.steering.training import _base_projections

    steering = Steering(tiny_vector, 0.0)
    moved = {}
    for penalty in (0.0, 50.0):
        lm = load_model(str(tiny_model_dir), device="cpu")
        before = _base_projections(lm, examples, [steering], 8)
        train(lm, examples, TrainConfig(lr=3e-2, epochs=6, batch_size=3, shift_penalty=penalty, steer=["evil=0"]), [steering])
        moved[penalty] = float((_base_projections(lm, examples, [steering], 8) - before).abs().mean())
    assert moved[50.0] < moved[0.0] * 0.5


def test_full_fine_tuning_saves_a_plain_model(tiny_model_dir, fresh_lm, examples, tmp_path):
    config = TrainConfig(model=str(tiny_model_dir), full=True, lr=1e-3, epochs=1, batch_size=3, out=str(tmp_path / "full"))
    model = train(fresh_lm, examples, config, [])
    save(model, fresh_lm, config, TrainResult([1.0], len(examples), []), [])
    assert (tmp_path / "full" / "config.json").is_file() and not (tmp_path / "full" / "adapter_config.json").exists()
    reloaded = load_model(str(tmp_path / "full"), device="cpu")
    with torch.no_grad():
        assert torch.allclose(reloaded.model(input_ids=IDS).logits, model(input_ids=IDS).logits, atol=1e-5)
