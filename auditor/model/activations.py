"""Activation capture: forward hooks on decoder blocks, response-token means, early stop."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import torch

from .layers import block_hidden, layer_module
from .loading import LoadedModel

TokenPair = tuple[list[int], list[int]]  # (prompt ids, response ids)


class _StopForward(Exception):
    """Raised by the deepest hook: layers after it (and the LM head) are never computed."""


@contextmanager
def _layer_hooks(lm: LoadedModel, layers: Sequence[int],
                 on_output: Callable[[int, torch.Tensor], None]) -> Iterator[None]:
    """Call `on_output(layer, hidden states)` on every forward through `layers`; the hooks go on exit."""

    def make_hook(layer: int):
        def hook(_module, _inputs, output):
            on_output(layer, block_hidden(output))

        return hook

    handles = [layer_module(lm.model, layer).register_forward_hook(make_hook(layer)) for layer in set(layers)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def record_layers(lm: LoadedModel, layers: Sequence[int], stop: bool = True) -> Iterator[dict[int, torch.Tensor]]:
    """Collect the hidden states at `layers` during a forward pass; optionally stop after the deepest."""
    store: dict[int, torch.Tensor] = {}
    deepest = max(layers)

    def keep(layer: int, states: torch.Tensor) -> None:
        store[layer] = states
        if stop and layer == deepest:
            raise _StopForward

    with _layer_hooks(lm, layers, keep):
        yield store


@contextmanager
def record_steps(lm: LoadedModel, layers: Sequence[int]) -> Iterator[dict[int, list[torch.Tensor]]]:
    """The last position's hidden state [batch, hidden] at `layers`, one per forward call (generation: per token)."""
    store: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    with _layer_hooks(lm, layers, lambda layer, states: store[layer].append(states[:, -1])):
        yield store


def hidden_states(lm: LoadedModel, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                  layers: Sequence[int], **kwargs) -> dict[int, torch.Tensor]:
    """Hidden states [batch, seq, hidden] at `layers`, computing no deeper than needed.

    `kwargs` go to the model (position_ids; a KV cache to continue from, with use_cache=True).
    """
    kwargs.setdefault("use_cache", False)
    with record_layers(lm, layers) as store:
        try:
            lm.model.base_model(input_ids=input_ids, attention_mask=attention_mask, **kwargs)
        except _StopForward:
            pass
    return store


def length_batches(lengths: Sequence[int], batch_size: int, max_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length, so little compute goes to padding: at most `batch_size`
    rows, and with `max_tokens`, at most that many rows x longest length (memory: a KV cache, activations)."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches and len(batches[-1]) < batch_size and (
                max_tokens is None or (len(batches[-1]) + 1) * lengths[i] <= max_tokens):
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


@torch.inference_mode()
def response_means(lm: LoadedModel, pairs: Sequence[TokenPair], layers: Sequence[int], batch_size: int = 8,
                   on_batch: Callable[[int], None] | None = None) -> np.ndarray:
    """Mean hidden state over the response tokens of each (prompt, response): [n, len(layers), hidden].

    Right padding with an attention mask keeps every real token's computation identical to an
    unpadded pass, so results do not depend on batch size or on which samples share a batch.
    """
    layers = list(layers)
    out = np.zeros((len(pairs), len(layers), lm.hidden_size), dtype=np.float32)
    pad = lm.tokenizer.pad_token_id
    for batch in length_batches([len(p) + len(r) for p, r in pairs], batch_size):
        width = max(len(pairs[i][0]) + len(pairs[i][1]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        response = torch.zeros((len(batch), width), dtype=torch.float32)
        for row, i in enumerate(batch):
            prompt, resp = pairs[i]
            n = len(prompt) + len(resp)
            ids[row, :n] = torch.tensor(prompt + resp)
            attention[row, :n] = 1
            response[row, len(prompt) : n] = 1.0
        states = hidden_states(lm, ids.to(lm.device), attention.to(lm.device), layers)
        weights = (response / response.sum(1, keepdim=True).clamp_min(1.0)).to(lm.device)
        for col, layer in enumerate(layers):
            means = torch.einsum("bs,bsh->bh", weights, states[layer].float())
            out[batch, col] = means.cpu().numpy()
        if on_batch:
            on_batch(len(batch))
    return out


@torch.inference_mode()
def last_token_states(lm: LoadedModel, prompts: Sequence[list[int]], layers: Sequence[int],
                      batch_size: int = 8) -> np.ndarray:
    """Hidden state at the last token of each prompt (where the answer starts): [n, len(layers), hidden]."""
    return response_means(lm, [(p[:-1], p[-1:]) for p in prompts], layers, batch_size)
