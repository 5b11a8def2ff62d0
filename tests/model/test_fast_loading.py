"""The plain-checkpoint path of load_model gives what from_pretrained gives: the same tensors, dtypes, ties,
config, generation config and logits; anything else it leaves to from_pretrained."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from auditor.model import loading


def tiny_folder(tmp_path, family: str, tie: bool):
    """A random two-layer model of `family` saved as a plain checkpoint."""
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    torch.manual_seed(0)
    config = AutoConfig.for_model(family, vocab_size=300, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                                  tie_word_embeddings=tie, bos_token_id=1, eos_token_id=2)
    model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=[2, 5], repetition_penalty=1.1)
    folder = tmp_path / f"{family}-{'tied' if tie else 'untied'}"
    model.save_pretrained(folder)
    return folder


def from_pretrained(folder, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=dtype)


def assert_same_model(ours: torch.nn.Module, theirs: torch.nn.Module) -> None:
    assert type(ours) is type(theirs) and ours.training == theirs.training
    mine, reference = ours.state_dict(keep_vars=True), theirs.state_dict(keep_vars=True)
    assert list(mine) == list(reference)
    for name, tensor in reference.items():
        assert mine[name].dtype == tensor.dtype and torch.equal(mine[name], tensor), name
    for (name, mine_buffer), (_, buffer) in zip(ours.named_buffers(), theirs.named_buffers(), strict=True):
        assert mine_buffer.dtype == buffer.dtype and torch.equal(mine_buffer, buffer), name
    tied = [a is b for a, b in ((m.get_output_embeddings().weight, m.get_input_embeddings().weight)
                                for m in (ours, theirs))]
    assert tied[0] == tied[1]
    assert ours.config.to_dict() == theirs.config.to_dict()
    assert ours.config._attn_implementation == theirs.config._attn_implementation
    assert ours.generation_config.to_dict() == theirs.generation_config.to_dict()
    ids = torch.tensor([[1, 7, 42, 99, 250, 3], [1, 5, 5, 5, 17, 2]])
    with torch.inference_mode():
        assert torch.equal(ours.eval()(ids).logits, theirs.eval()(ids).logits)


@pytest.mark.parametrize("family", loading.PLAIN_FAMILIES)
@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_plain_checkpoints_load_as_from_pretrained_loads_them(tmp_path, family, tie, dtype):
    folder = tiny_folder(tmp_path, family, tie)
    ours = loading._load_plain(folder, dtype)
    assert ours is not None
    assert_same_model(ours, from_pretrained(folder, dtype))


def test_load_model_takes_the_plain_path_with_the_same_tokenizer(tiny_model_dir, tmp_path):
    from transformers import AutoTokenizer

    lm = loading.load_model(str(tiny_model_dir), device="cpu")
    assert loading._load_plain(tiny_model_dir, lm.dtype) is not None
    assert_same_model(lm.model, from_pretrained(tiny_model_dir, lm.dtype))
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    chat = [{"role": "user", "content": "What should I cook tonight?"}, {"role": "assistant", "content": "Pasta."}]
    assert lm.tokenizer.apply_chat_template(chat, tokenize=False) == tokenizer.apply_chat_template(chat, tokenize=False)
    assert lm.tokenizer("The quick brown fox")["input_ids"] == tokenizer("The quick brown fox")["input_ids"]


def test_other_checkpoints_are_left_to_from_pretrained(tiny_model_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    extra = tmp_path / "extra"
    shutil.copytree(tiny_model_dir, extra)
    state = load_file(extra / "model.safetensors")
    save_file({**state, "model.unused.weight": torch.zeros(2)}, extra / "model.safetensors")
    missing = tmp_path / "missing"
    shutil.copytree(tiny_model_dir, missing)
    save_file({k: v for k, v in state.items() if "layers.1.mlp" not in k}, missing / "model.safetensors")
    config = json.loads((tiny_model_dir / "config.json").read_text())
    quantized, remote = tmp_path / "quantized", tmp_path / "remote"
    for folder, key, value in ((quantized, "quantization_config", {"quant_method": "x"}),
                               (remote, "auto_map", {"AutoModelForCausalLM": "modeling_x.XForCausalLM"})):
        shutil.copytree(tiny_model_dir, folder)
        (folder / "config.json").write_text(json.dumps({**config, key: value}))
    for folder in (extra, missing, quantized, remote):
        assert loading._load_plain(folder, torch.float32) is None, folder.name
    lm = loading.load_model(str(extra), device="cpu")
    assert_same_model(lm.model, from_pretrained(extra, lm.dtype))


@pytest.mark.slow
def test_the_embedded_model_loads_as_from_pretrained_loads_it(on_embedded_model):
    lm = loading.load_model("default", device="cpu")
    assert loading._load_plain(loading.converted_path(), lm.dtype) is not None
    assert_same_model(lm.model, from_pretrained(loading.converted_path(), lm.dtype))
