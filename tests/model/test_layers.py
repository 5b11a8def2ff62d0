"""Finding the decoder blocks of the common architectures (tiny random-config models, no download), and
reading or replacing a block's hidden states."""

import pytest
import torch
from transformers import (
    GPT2Config,
    GPT2LMHeadModel,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    OPTConfig,
    OPTForCausalLM,
)

from auditor.errors import AuditError
from auditor.model.layers import block_hidden, decoder_body, decoder_layers, layer_module, with_block_hidden

SMALL = {"vocab_size": 64}


def _llama():
    return LlamaForCausalLM(LlamaConfig(**SMALL, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                                        num_attention_heads=2, num_key_value_heads=1))


def _gpt2():
    return GPT2LMHeadModel(GPT2Config(**SMALL, n_embd=16, n_layer=3, n_head=2, n_positions=32))


@pytest.mark.parametrize("make, body", [
    (_llama, lambda m: m.model),
    (_gpt2, lambda m: m.transformer),
    (lambda: GPTNeoXForCausalLM(GPTNeoXConfig(**SMALL, hidden_size=16, intermediate_size=32, num_hidden_layers=3,
                                              num_attention_heads=2)), lambda m: m.gpt_neox),
    (lambda: OPTForCausalLM(OPTConfig(**SMALL, hidden_size=16, ffn_dim=32, num_hidden_layers=3,
                                      num_attention_heads=2, word_embed_proj_dim=16)), lambda m: m.model.decoder),
])
def test_decoder_layers_of_common_architectures(make, body):
    model = make()
    layers = decoder_layers(model)
    assert len(layers) == 3 and decoder_body(model) is body(model)
    assert layer_module(model, 2) is layers[1] and layer_module(model, 0) is model.get_input_embeddings()


def test_a_peft_wrapped_model_is_unwrapped():
    from peft import LoraConfig, get_peft_model

    model = _llama()
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    assert decoder_layers(wrapped) is model.model.layers


def test_hooks_read_the_block_output_hidden_states_reports():
    model = _gpt2().eval()
    seen = []
    handle = layer_module(model, 2).register_forward_hook(lambda _m, _i, out: seen.append(block_hidden(out)))
    try:
        with torch.no_grad():
            reference = model(torch.tensor([[1, 2, 3]]), output_hidden_states=True).hidden_states[2]
    finally:
        handle.remove()
    torch.testing.assert_close(seen[0], reference)


def test_replacing_the_hidden_states_keeps_the_output_shape():
    hidden, extra = torch.zeros(1, 2, 4), torch.ones(1)
    assert with_block_hidden(hidden, hidden + 1).sum() == 8
    replaced = with_block_hidden((hidden, extra), hidden + 1)
    assert isinstance(replaced, tuple) and replaced[1] is extra and block_hidden(replaced).sum() == 8


def test_an_unknown_architecture_is_a_clear_error():
    class Odd(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([torch.nn.Linear(2, 2)])

    with pytest.raises(AuditError, match=r"Odd: unsupported architecture.*model\.layers.*transformer\.h"):
        decoder_layers(Odd())
