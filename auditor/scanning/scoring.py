"""Projection differences, calibrated scores, flags and the dataset-level summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

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

    def summary(self) -> dict:
        n = len(self.dp)
        return {"mean_dp": float(self.dp.mean()) if n else 0.0,
                "mean_score": float(self.score.mean()) if n else 0.0,
                "flagged": int(self.flagged.sum()),
                "flagged_share": float(self.flagged.mean()) if n else 0.0,
                "threshold": self.threshold, "layer": self.layer}


def projection_difference(vector: PersonaVector, sample_proj: np.ndarray, base_proj: np.ndarray | None) -> np.ndarray:
    """dP = a(x, y).v^ - a(x, y').v^; without base answers, the neutral calibration mean stands in for y'."""
    reference = base_proj if base_proj is not None else vector.calibration.neutral_mean
    return sample_proj - reference


def score_trait(vector: PersonaVector, dp: np.ndarray, threshold: float) -> TraitScores:
    """score = dP in units of the held-out gap between trait and neutral answers; flagged at >= threshold."""
    score = dp / vector.calibration.gap
    return TraitScores(trait=vector.trait, dp=dp, score=score, flagged=score >= threshold,
                       threshold=threshold, layer=vector.layer)
