"""Persona vectors from labelled pairs: a team's own notion of a trait, fitted on the model it will train.

A pair is a prompt with one answer that shows the trait and one that does not: records of one file that
carry both (`trait` and `neutral` answer fields beside the prompt), or the records of two files in prompt
order (any format `scan` reads). The vector is the difference of the mean response activations at every
layer. The layer is the one with the best k-fold cross-validated AUROC: for each fold, the direction is
fitted on the other folds and the fold's held-out pairs are projected on it; the calibration comes from
those held-out projections, so no number in the vector's metadata was measured on the data it was fitted on.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import cast

import numpy as np
import torch

from ..cache import content_hash
from ..data import BadRecord, Messages, Record, conversation, read_records
from ..errors import AuditError
from ..model.activations import response_means
from ..model.chat import encode_prompt, encode_response, fit
from ..model.loading import LoadedModel
from .fitting import calibrated_vector, separation
from .persona import PersonaVector

METHOD = "response_avg_diff/pairs"
LabelledPair = tuple[Messages, str, str]  # (prompt messages, trait answer, neutral answer)
MAX_TOKENS = 512


def _records(path: Path) -> list[Record]:
    records = []
    for item in read_records(path):
        if not isinstance(item, Record):
            raise AuditError(f"{item.source}:{item.line}: {item.reason}")
        records.append(item)
    return records


def _one_file_pair(obj: object, where: str) -> LabelledPair:
    """A record with `trait` and `neutral` answers and its prompt (`prompt` text, or `messages` without the answer)."""
    answers = ("trait", "neutral")
    if not isinstance(obj, dict) or not all(isinstance(obj.get(k), str) and obj[k].strip() for k in answers):
        raise AuditError(f"{where}: expected fields 'trait' and 'neutral' (the two answers) beside the prompt; "
                         "or give the neutral answers as a second file with `neutral`")
    try:
        prompt = conversation({"messages": obj["messages"]}) if "messages" in obj else \
            [{"role": "user", "content": obj["prompt"]}] if isinstance(obj.get("prompt"), str) else None
    except BadRecord as exc:
        raise AuditError(f"{where}: {exc}") from None
    if not prompt:
        raise AuditError(f"{where}: no prompt (a 'prompt' text or the 'messages' before the answer)")
    return prompt, obj["trait"], obj["neutral"]


def read_pairs(trait_file: Path, neutral_file: Path | None = None) -> list[LabelledPair]:
    """The labelled pairs of one file (trait/neutral fields) or of two files in prompt order."""
    if neutral_file is None:
        pairs = []
        for item in read_records(trait_file):  # rows of any file type; their JSON text is in `raw`
            try:
                obj = json.loads(item.raw)
            except json.JSONDecodeError:
                raise AuditError(f"{item.source}:{item.line}: {getattr(item, 'reason', 'invalid JSON')}") from None
            pairs.append(_one_file_pair(obj, f"{item.source}:{item.line}"))
        return pairs
    trait, neutral = _records(trait_file), _records(neutral_file)
    if len(trait) != len(neutral):
        raise AuditError(f"has {len(trait)} records, {neutral_file} {len(neutral)}; the two files pair up record by "
                         "record", "from_pairs", str(trait_file))
    pairs = []
    for a, b in zip(trait, neutral):
        (prompt, answer), (other, neutral_answer) = a.turns("last")[0], b.turns("last")[0]
        if content_hash(prompt) != content_hash(other):
            raise AuditError(f"pairs {a.source}:{a.line} with {b.source}:{b.line}, which answer different prompts",
                             "from_pairs")
        pairs.append((prompt, answer, neutral_answer))
    return pairs


def pair_activations(lm: LoadedModel, pairs: list[LabelledPair], batch_size: int,
                     on_batch: Callable[[int], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Response-mean hidden states at every layer of the trait and the neutral answers: two [n, L+1, hidden]."""
    sides = []
    for k in (1, 2):
        tokens = []
        for pair in pairs:
            prompt, answer, _ = fit(encode_prompt(lm.tokenizer, pair[0]),
                                    encode_response(lm.tokenizer, cast(str, pair[k])), MAX_TOKENS)
            tokens.append((prompt, answer))
        sides.append(response_means(lm, tokens, range(lm.num_layers + 1), batch_size, on_batch))
    return sides[0], sides[1]


def cross_validated(pos: np.ndarray, neg: np.ndarray, folds: int, seed: int = 0
                    ) -> tuple[np.ndarray, np.ndarray, list[list[float]]]:
    """Out-of-fold projections of the trait and neutral answers at every layer ([n, L+1] each), and each fold's
    AUROC per layer: the direction of each fold is fitted on the other folds only."""
    n, layers = len(pos), pos.shape[1]
    fold_of = np.random.default_rng(seed).permutation(n) % folds
    held_pos, held_neg = np.zeros((n, layers)), np.zeros((n, layers))
    per_fold = []
    for f in range(folds):
        train, test = fold_of != f, fold_of == f
        direction = pos[train].mean(0) - neg[train].mean(0)  # [L+1, hidden]
        unit = direction / np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
        held_pos[test] = np.einsum("nlh,lh->nl", pos[test], unit)
        held_neg[test] = np.einsum("nlh,lh->nl", neg[test], unit)
        per_fold.append([separation(held_pos[test, layer], held_neg[test, layer])["auroc"] for layer in range(layers)])
    return held_pos, held_neg, per_fold


def fit_from_pairs(lm: LoadedModel, trait: str, pos: np.ndarray, neg: np.ndarray, folds: int = 5,
                   layer: int | None = None, flags: str = "above") -> PersonaVector:
    """The vector of the pairs' activations, its layer chosen by cross-validated AUROC (see the module docstring)."""
    if len(pos) < 2 * folds:
        raise AuditError(f"gave {len(pos)} pairs for {folds} folds; need at least {2 * folds}", "from_pairs")
    held_pos, held_neg, per_fold = cross_validated(pos, neg, folds)
    directions = torch.from_numpy(pos.mean(0) - neg.mean(0))
    stats = []
    for l in range(lm.num_layers + 1):
        fold_aurocs = [fold[l] for fold in per_fold]
        stats.append({"layer": l, "norm": float(directions[l].norm()), **separation(held_pos[:, l], held_neg[:, l]),
                      "cv_auroc_mean": float(np.mean(fold_aurocs)), "cv_auroc_std": float(np.std(fold_aurocs)),
                      "folds": folds})
    return calibrated_vector(lm, trait, directions, stats, lambda at: (held_pos[:, at], held_neg[:, at]), layer,
                             METHOD, flags)
