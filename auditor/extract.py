"""Persona-vector extraction from a trait's authored contrastive answers, with automatic layer choice."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from .activations import response_means
from .chat import encode_prompt, encode_response
from .errors import AuditError
from .models import LoadedModel
from .traits import Example, Trait
from .vectors import Calibration, PersonaVector

METHOD = "response_avg_diff/authored"


def _answer_means(lm: LoadedModel, examples: list[Example], kind: str, batch_size: int,
                  on_batch: Callable[[int], None] | None) -> np.ndarray:
    """Response-averaged hidden states at every layer for each example's `kind` answer: [n, L+1, hidden]."""
    pairs = [(encode_prompt(lm.tokenizer, [{"role": "user", "content": e.question}]),
              encode_response(lm.tokenizer, getattr(e, kind))) for e in examples]
    return response_means(lm, pairs, range(lm.num_layers + 1), batch_size, on_batch)


def _separation(trait: np.ndarray, neutral: np.ndarray) -> dict:
    """AUROC and Cohen's d of trait vs neutral projections."""
    labels = np.r_[np.ones(len(trait)), np.zeros(len(neutral))]
    pooled = np.sqrt((trait.var(ddof=1) + neutral.var(ddof=1)) / 2) + 1e-8
    return {"auroc": float(roc_auc_score(labels, np.r_[trait, neutral])),
            "d": float((trait.mean() - neutral.mean()) / pooled)}


def extract_from_examples(lm: LoadedModel, trait: Trait, batch_size: int = 8, layer: int | None = None,
                          on_batch: Callable[[int], None] | None = None) -> PersonaVector:
    """v_l = mean(trait answers) - mean(neutral answers) on the extraction questions, at every layer.

    The layer is the one that best separates trait from neutral answers to the held-out evaluation
    questions (AUROC, then Cohen's d), unless `layer` is given. Calibration statistics are the
    held-out projections at that layer.
    """
    train, held_out = trait.examples_in("extract"), trait.examples_in("eval")
    if len(train) < 2 or len(held_out) < 2:
        raise AuditError(f"trait {trait.name}: needs authored examples in both 'extract' and 'eval' splits")
    pos, neg = (_answer_means(lm, train, k, batch_size, on_batch) for k in ("trait", "neutral"))
    eval_pos, eval_neg = (_answer_means(lm, held_out, k, batch_size, on_batch) for k in ("trait", "neutral"))
    directions = torch.from_numpy(pos.mean(0) - neg.mean(0))
    units = directions / directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    stats = []
    for l in range(lm.num_layers + 1):
        u = units[l].numpy()
        stats.append({"layer": l, "norm": float(directions[l].norm()),
                      **_separation(eval_pos[:, l] @ u, eval_neg[:, l] @ u)})
    if layer is None:  # skip the embeddings: a difference of words, not of persona
        layer = max(stats[1:], key=lambda s: (round(s["auroc"], 3), s["d"]))["layer"]
    u = units[layer].numpy()
    tp, tn = eval_pos[:, layer] @ u, eval_neg[:, layer] @ u
    calibration = Calibration(trait_mean=float(tp.mean()), neutral_mean=float(tn.mean()),
                              trait_std=float(tp.std(ddof=1)), neutral_std=float(tn.std(ddof=1)),
                              auroc=stats[layer]["auroc"], n=len(held_out))
    return PersonaVector(trait=trait.name, directions=directions, layer=layer, model_name=lm.name,
                         model_fingerprint=lm.fingerprint(), method=METHOD, calibration=calibration,
                         layer_stats=stats)
