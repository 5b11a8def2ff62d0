"""Steering the residual stream with a persona vector: add `coef * v` at its layer, or project it out.

A forward hook on the decoder block whose output is the vector's layer; the model's modules are never
wrapped or replaced, and leaving the context removes the hook.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from ..config import STEERING_MODES as MODES
from ..errors import AuditError
from ..model.layers import block_hidden, layer_module, with_block_hidden
from ..model.loading import LoadedModel
from ..vectors.persona import PersonaVector


@dataclass(frozen=True)
class Steering:
    """What one hook does: `steer` adds `coef * v_layer` at every position; `ablate` removes the
    component along v_layer (CAFT), `coef` unused."""

    vector: PersonaVector
    coef: float = 0.0
    mode: str = "steer"
    layer: int | None = None  # None: the vector's chosen layer

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise AuditError(f"steering mode {self.mode!r}: use one of {', '.join(MODES)}")
        if not 1 <= self.at_layer < len(self.vector.directions):
            raise AuditError(f"the {self.vector.trait} vector has layers 1..{len(self.vector.directions) - 1}",
                             "layer", self.at_layer)

    @property
    def at_layer(self) -> int:
        return self.vector.layer if self.layer is None else self.layer

    def apply(self, hidden: torch.Tensor) -> torch.Tensor:
        if self.mode == "steer":
            v = self.vector.directions[self.at_layer].to(hidden.device, hidden.dtype)
            return hidden + self.coef * v
        u = self.vector.unit(self.at_layer).to(hidden.device, hidden.dtype)
        return hidden - (hidden @ u).unsqueeze(-1) * u


@contextmanager
def steered(lm: LoadedModel, steerings: list[Steering]) -> Iterator[list[torch.utils.hooks.RemovableHandle]]:
    """Apply `steerings` to every forward pass inside the block (training and generation alike)."""

    def make_hook(steering: Steering):
        def hook(_module, _inputs, output):
            return with_block_hidden(output, steering.apply(block_hidden(output)))

        return hook

    handles = [layer_module(lm.model, s.at_layer).register_forward_hook(make_hook(s)) for s in steerings]
    try:
        yield handles
    finally:
        for handle in handles:
            handle.remove()
