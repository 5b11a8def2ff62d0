"""Projection differences, calibrated scores, flags and the dataset-level summary.

Most traits are a concern when a sample sits further along them than the model's own answer (a positive
dP: `flags = "above"`). Some are a concern the other way: a sample more compliant than the model's own
answer sits *below* it on `refusal` (a negative dP), so such a trait flags negative scores (`"below"`).

A preference pair teaches the model toward its chosen answer and away from its rejected one, so what it teaches
along a trait is the margin dP(chosen) - dP(rejected): its dP, score and flag are the margin's (both sides share
the prompt and so the base answer, which cancels).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

ABOVE, BELOW = "above", "below"  # which side of the model's own answer is the concern

if TYPE_CHECKING:  # vectors hold torch tensors; scores are read without torch
    from ..vectors.persona import PersonaVector


@dataclass
class TraitScores:
    """Per-sample results for one trait, and the dataset-level view of them."""

    trait: str
    dp: np.ndarray
    score: np.ndarray
    flagged: np.ndarray
    threshold: float
    layer: int
    flags: str = ABOVE
    dp_chosen: np.ndarray | None = None  # per record when the scan has preference pairs (NaN for plain records)
    dp_rejected: np.ndarray | None = None

    @property
    def sign(self) -> int:
        return sign(self.flags)

    def reflag(self) -> None:
        """Flags from the current scores: at or beyond the threshold on the trait's side of concern."""
        self.flagged = self.sign * self.score >= self.threshold

    @property
    def pairs(self) -> np.ndarray:
        """Which records are preference pairs (their dP is the margin)."""
        return np.zeros(len(self.dp), dtype=bool) if self.dp_rejected is None else ~np.isnan(self.dp_rejected)

    def summary(self) -> dict:
        n, pairs = len(self.dp), self.pairs
        summary = {"mean_dp": float(self.dp.mean()) if n else 0.0,
                   "mean_score": float(self.score.mean()) if n else 0.0,
                   "flagged": int(self.flagged.sum()),
                   "flagged_share": float(self.flagged.mean()) if n else 0.0,
                   "threshold": self.threshold, "layer": self.layer, "flags": self.flags}
        if pairs.any():
            assert self.dp_chosen is not None and self.dp_rejected is not None  # set together, with pairs
            summary["pairs"] = {"n": int(pairs.sum()), "mean_margin": float(self.dp[pairs].mean()),
                                "mean_dp_chosen": float(self.dp_chosen[pairs].mean()),
                                "mean_dp_rejected": float(self.dp_rejected[pairs].mean()),
                                "flagged": int(self.flagged[pairs].sum())}
        return summary


def projection_difference(vector: PersonaVector, sample_proj: np.ndarray, base_proj: np.ndarray | None) -> np.ndarray:
    """dP = a(x, y).v^ - a(x, y').v^; without base answers, the neutral calibration mean stands in for y'."""
    reference = base_proj if base_proj is not None else vector.calibration.neutral_mean
    return sample_proj - reference


def sign(flags: str) -> int:
    """+1 for a trait flagged above the model's own answers, -1 for one flagged below."""
    return -1 if flags == BELOW else 1


def score_trait(vector: PersonaVector, dp: np.ndarray, threshold: float, dp_chosen: np.ndarray | None = None,
                dp_rejected: np.ndarray | None = None) -> TraitScores:
    """score = dP in units of the held-out gap between trait and neutral answers; flagged at >= threshold (at
    <= -threshold for a trait flagged below). For preference pairs `dp` holds their margins."""
    scores = TraitScores(trait=vector.trait, dp=dp, score=dp / vector.calibration.gap, flagged=dp[:0],
                         threshold=threshold, layer=vector.layer, flags=vector.flags, dp_chosen=dp_chosen,
                         dp_rejected=dp_rejected)
    scores.reflag()
    return scores
