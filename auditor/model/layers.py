"""Where a model's decoder blocks are, and what a block's forward hook sees: one rule for reading activations
(model.activations), steering (steering.hooks) and decoding (model.decoding).

A model wrapped by peft is unwrapped first (its base model holds the same modules, adapters injected).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ..errors import AuditError

if TYPE_CHECKING:
    from transformers import PreTrainedModel

# (the body that holds the blocks, the blocks' attribute in it), tried in order
LAYER_PATHS = (
    ("model", "layers"),  # Llama, Mistral, Qwen2, SmolLM, Gemma, Phi
    ("transformer", "h"),  # GPT-2 (and GPT-J, Bloom, Falcon)
    ("gpt_neox", "layers"),  # GPT-NeoX, Pythia
    ("model.decoder", "layers"),  # OPT
)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The transformers model inside a peft wrapper (the model itself otherwise)."""
    get_base_model = getattr(model, "get_base_model", None)
    return get_base_model() if callable(get_base_model) else model


def _find(model: torch.nn.Module) -> tuple[torch.nn.Module, torch.nn.ModuleList]:
    inner = unwrap(model)
    for body_path, blocks in LAYER_PATHS:
        body: Any = inner  # the attributes along body_path, whatever the architecture holds there
        for name in body_path.split("."):
            body = getattr(body, name, None)
        found = getattr(body, blocks, None)
        if isinstance(found, torch.nn.ModuleList):
            return body, found
    paths = ", ".join(f"{body}.{blocks}" for body, blocks in LAYER_PATHS)
    raise AuditError(f"{type(inner).__name__}: unsupported architecture, its decoder layers are not at any of {paths}")


def decoder_body(model: torch.nn.Module) -> torch.nn.Module:
    """The module that holds the decoder blocks (with the embeddings and final norm): e.g. LlamaModel, GPT2Model."""
    return _find(model)[0]


def decoder_layers(model: torch.nn.Module) -> torch.nn.ModuleList:
    """The decoder blocks, in order; an AuditError for an architecture whose blocks are not found."""
    return _find(model)[1]


def layer_module(model: PreTrainedModel, layer: int) -> torch.nn.Module:
    """The module whose output is hidden state `layer` (0 = embeddings, l = block l-1)."""
    if layer == 0:
        return model.get_input_embeddings()
    return decoder_layers(model)[layer - 1]


def block_hidden(output: torch.Tensor | tuple) -> torch.Tensor:
    """The hidden states in a block's output (a tensor, or a tuple that starts with them)."""
    return output[0] if isinstance(output, tuple) else output


def with_block_hidden(output: torch.Tensor | tuple, hidden: torch.Tensor) -> torch.Tensor | tuple:
    """A block's output with its hidden states replaced by `hidden`, in the same shape."""
    return (hidden, *output[1:]) if isinstance(output, tuple) else hidden
