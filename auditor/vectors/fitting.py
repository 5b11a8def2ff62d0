"""Persona vectors from contrastive activations: the difference of means at every layer with automatic
layer choice by held-out separation, and the route from a trait's authored answers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import AuditError
from ..model.activations import response_means
from ..model.chat import encode_prompt, encode_response
from ..model.loading import LoadedModel
from ..traits import Trait, TraitExample
from .persona import Calibration, PersonaVector

METHOD = "response_avg_diff/authored"


@dataclass
class Contrast:
    """Per-layer activations [n, L+1, hidden] of texts with and without the trait: `pos`/`neg` make the
    vector, `held_pos`/`held_neg` (other questions) choose the layer and calibrate it."""

    pos: np.ndarray
    neg: np.ndarray
    held_pos: np.ndarray
    held_neg: np.ndarray

    def __add__(self, other: Contrast) -> Contrast:
        return Contrast(*(np.concatenate([a, b]) for a, b in zip(self.parts(), other.parts())))

    def parts(self) -> tuple[np.ndarray, ...]:
        return self.pos, self.neg, self.held_pos, self.held_neg


def separation(trait: np.ndarray, neutral: np.ndarray) -> dict:
    """AUROC and Cohen's d of trait vs neutral projections."""
    from sklearn.metrics import roc_auc_score  # deferred: every scan imports this module, few extract vectors

    labels = np.r_[np.ones(len(trait)), np.zeros(len(neutral))]
    pooled = np.sqrt((trait.var(ddof=1) + neutral.var(ddof=1)) / 2) + 1e-8
    return {"auroc": float(roc_auc_score(labels, np.r_[trait, neutral])),
            "d": float((trait.mean() - neutral.mean()) / pooled)}


def fit_vector(lm: LoadedModel, trait: str, contrast: Contrast, method: str,
               layer: int | None = None, flags: str = "above") -> PersonaVector:
    """v_l = mean(pos) - mean(neg) at every layer.

    The layer is the one that best separates the held-out pos from neg activations (AUROC, then
    Cohen's d), unless `layer` is given. Calibration statistics are the held-out projections there.
    """
    if len(contrast.pos) < 1 or len(contrast.held_pos) < 2:
        raise AuditError(f"trait {trait}: {len(contrast.pos)} extraction and {len(contrast.held_pos)} held-out "
                         "contrast pairs; need at least 1 and 2")
    directions = torch.from_numpy(contrast.pos.mean(0) - contrast.neg.mean(0))
    units = directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    stats = []
    for l in range(lm.num_layers + 1):
        u = units[l].numpy()
        stats.append({"layer": l, "norm": float(directions[l].norm()),
                      **separation(contrast.held_pos[:, l] @ u, contrast.held_neg[:, l] @ u)})
    def held(at: int) -> tuple[np.ndarray, np.ndarray]:
        u = units[at].numpy()
        return contrast.held_pos[:, at] @ u, contrast.held_neg[:, at] @ u

    return calibrated_vector(lm, trait, directions, stats, held, layer, method, flags)


def calibrated_vector(lm: LoadedModel, trait: str, directions: torch.Tensor, stats: list[dict],
                      held: Callable[[int], tuple[np.ndarray, np.ndarray]], layer: int | None, method: str,
                      flags: str) -> PersonaVector:
    """The vector at `layer`, else at the layer of the best held-out separation in `stats` (the embeddings
    skipped), calibrated on `held(layer)`: the held-out trait and neutral projections there."""
    if layer is None:  # skip the embeddings: a difference of words, not of persona
        layer = max(stats[1:], key=lambda s: (round(s["auroc"], 3), s["d"]))["layer"]
    tp, tn = held(layer)
    calibration = Calibration(trait_mean=float(tp.mean()), neutral_mean=float(tn.mean()),
                              trait_std=float(tp.std(ddof=1)), neutral_std=float(tn.std(ddof=1)),
                              auroc=stats[layer]["auroc"], n=len(tp))
    return PersonaVector(trait=trait, directions=directions, layer=layer, model_name=lm.name,
                         model_fingerprint=lm.fingerprint(), method=method, calibration=calibration,
                         layer_stats=stats, flags=flags)


def _answer_means(lm: LoadedModel, examples: list[TraitExample], kind: str, batch_size: int,
                  on_batch: Callable[[int], None] | None) -> np.ndarray:
    """Response-averaged hidden states at every layer for each example's `kind` answer: [n, L+1, hidden]."""
    pairs = [(encode_prompt(lm.tokenizer, [{"role": "user", "content": e.question}]),
              encode_response(lm.tokenizer, getattr(e, kind))) for e in examples]
    return response_means(lm, pairs, range(lm.num_layers + 1), batch_size, on_batch)


def authored_contrast(lm: LoadedModel, trait: Trait, batch_size: int = 8,
                      on_batch: Callable[[int], None] | None = None) -> Contrast:
    """Activations of the trait's authored answers: 'extract' examples make the vector, 'eval' ones are held out."""
    train, held_out = trait.examples_in("extract"), trait.examples_in("eval")
    if len(train) < 1 or len(held_out) < 2:
        raise AuditError(f"trait {trait.name} has no authored examples in both 'extract' and 'eval' splits; "
                         f"extract its vector with `dataset-audit extract {trait.name}` and pass it with `vectors`")
    return Contrast(*(_answer_means(lm, examples, kind, batch_size, on_batch)
                      for examples in (train, held_out) for kind in ("trait", "neutral")))


def extract_from_examples(lm: LoadedModel, trait: Trait, batch_size: int = 8, layer: int | None = None,
                          on_batch: Callable[[int], None] | None = None) -> PersonaVector:
    """The trait's vector from its authored answers alone (no generation, no judge)."""
    return fit_vector(lm, trait.name, authored_contrast(lm, trait, batch_size, on_batch), METHOD, layer, trait.flags)
