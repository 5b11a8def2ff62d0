"""Percentile bootstrap intervals of means (dataset-level mean dP, in `evaluate`, per source in summaries, and
estimated from a sample of base answers)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ROUNDS = 2000
CHUNK = 1 << 22  # resampled values held in memory at once


@dataclass
class Interval:
    mean: float
    low: float
    high: float

    def __str__(self) -> str:
        return f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}]"


def _resampled_means(values: np.ndarray, rounds: int, rng: np.random.Generator) -> np.ndarray:
    """Means of `rounds` resamples of the rows of `values` (1-D, or 2-D: columns resampled together), a few rounds
    at a time so memory stays bounded. (Column by column: gathering whole rows of a 2-D array is many times slower.)"""
    n = len(values)
    columns, step = np.ascontiguousarray(values.reshape(n, -1).T), max(1, CHUNK // max(n, 1))
    chunks = []
    for done in range(0, rounds, step):
        rows = rng.integers(0, n, (min(step, rounds - done), n))
        chunks.append(np.take(columns, rows, axis=1).mean(axis=2).T)
    means = np.concatenate(chunks)
    return means if values.ndim > 1 else means[:, 0]


def _interval(point: float, draws: np.ndarray, level: float) -> Interval:
    tail = (1 - level) / 2 * 100
    return Interval(float(point), *map(float, np.percentile(draws, [tail, 100 - tail])))


def bootstrap_mean(values: np.ndarray, rounds: int = ROUNDS, level: float = 0.95, seed: int = 0) -> Interval:
    """The mean of `values` with a percentile bootstrap interval."""
    rng = np.random.default_rng(seed)
    return _interval(values.mean(), _resampled_means(values, rounds, rng), level)


def bootstrap_means(columns: np.ndarray, rounds: int = ROUNDS, level: float = 0.95, seed: int = 0) -> list[Interval]:
    """Each column's mean with a percentile bootstrap interval, the rows resampled together (one draw for all)."""
    draws = _resampled_means(columns, rounds, np.random.default_rng(seed))
    return [_interval(columns[:, j].mean(), draws[:, j], level) for j in range(columns.shape[1])]


def bootstrap_difference(a: np.ndarray, b: np.ndarray, rounds: int = ROUNDS, level: float = 0.95,
                         seed: int = 0) -> Interval:
    """mean(a) - mean(b), with a percentile bootstrap interval resampling `a` and `b` independently."""
    rng = np.random.default_rng(seed)
    return _interval(a.mean() - b.mean(), _resampled_means(a, rounds, rng) - _resampled_means(b, rounds, rng), level)


def bootstrap_estimated_mean(values: np.ndarray, estimated: np.ndarray, base: np.ndarray, rounds: int = ROUNDS,
                             level: float = 0.95, seed: int = 0) -> list[Interval]:
    """Per column j, mean(values[:, j]) - mean(estimated) * mean(base[:, j]): the mean over records of which the
    `estimated` ones (1.0, else 0.0) subtract the mean `base` of a sample from their `values`, with a percentile
    bootstrap interval resampling the records (rows of `values` with `estimated`) and, independently, the sample
    (rows of `base`)."""
    rng = np.random.default_rng(seed)
    records = _resampled_means(np.column_stack([values, estimated]), rounds, rng)
    sample = _resampled_means(base, rounds, rng)
    draws = records[:, :-1] - records[:, -1:] * sample
    point = values.mean(axis=0) - estimated.mean() * base.mean(axis=0)
    return [_interval(point[j], draws[:, j], level) for j in range(values.shape[1])]

def bootstrap_auroc(positive: np.ndarray, score: np.ndarray, rounds: int = ROUNDS, level: float = 0.95,
                    seed: int = 0) -> Interval:
    """ROC AUC with a percentile bootstrap interval, positives and negatives resampled separately (each draw keeps
    both classes at their sizes). `rounds` 0: the point value only (its interval is that value)."""
    from sklearn.metrics import roc_auc_score  # deferred: scans import this module and need no scikit-learn

    positive = np.asarray(positive, dtype=bool)
    point = float(roc_auc_score(positive, score))
    if not rounds:
        return Interval(point, point, point)
    rng, pos, neg = np.random.default_rng(seed), score[positive], score[~positive]
    labels = np.r_[np.ones(len(pos), bool), np.zeros(len(neg), bool)]
    draws = np.array([roc_auc_score(labels, np.r_[rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
                      for _ in range(rounds)])
    return _interval(point, draws, level)
