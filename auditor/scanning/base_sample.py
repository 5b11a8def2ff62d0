"""`scan --base-sample N`: the model answers a seeded sample of N records only, and the dP of the others is estimated
from it (the paper's App. I, strategy 1: a dataset-level estimate, cheap enough for a CI gate).

Which records: of those the scan computes (not reused from --baseline), the N whose hash of (seed, sample_id) is
lowest. A record keeps its hash whatever else is in the data, so a rerun draws the same records and finds their
answers and projections cached, and a grown dataset keeps most of its sample.

The estimate: a sampled record's dP is exact. Another record's dP stands on B, the mean base projection over the
sample (per trait): its sample projection minus B; `base_estimated` marks it. A preference pair's dP, its margin,
needs no base answer, so it is never estimated (its dp_chosen and dp_rejected are, outside the sample).

The dataset-level mean dP over the computed records is then mean(v) - mean(f) * B, with v a record's dP plus B where
it is estimated (its sample projection) and f whether it is; with no pairs and no sampled record's own answer, that
is the mean sample projection minus B. Its 95% interval resamples the records (v, f) and, independently, the
sampled records' base projections (for B): the record-level spread and the sampling of base answers both count.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..cache import content_hash
from ..data import REJECTED, Record
from ..evaluation.stats import Interval, bootstrap_estimated_mean
from .projection import Measured, Unit
from .scoring import TraitScores


def draw(records: Sequence[Record], computed: np.ndarray, n: int, seed: int) -> np.ndarray:
    """Which records are sampled: of the `computed` ones, the `n` with the lowest hash of (seed, sample_id)."""
    rows = np.flatnonzero(computed)
    keys = [content_hash([seed, records[int(r)].sample_id]) for r in rows]
    sampled = np.zeros(len(records), dtype=bool)
    sampled[rows[sorted(range(len(rows)), key=keys.__getitem__)[:n]]] = True
    return sampled


@dataclass
class BaseSample:
    """A scan's base sample: per record whether it is `sampled` (has its own base answer) among the `computed`
    ones, drawn with `seed`; once measured, the sampled records' base projections `base` [sampled, traits]. When
    the sample is every computed record (N at least their number), the scan is a full one: nothing is estimated."""

    sampled: np.ndarray
    computed: np.ndarray
    seed: int
    base: np.ndarray | None = None

    @classmethod
    def of(cls, records: Sequence[Record], computed: np.ndarray, n: int, seed: int) -> BaseSample:
        return cls(draw(records, computed, n, seed), computed, seed)

    @property
    def full(self) -> bool:
        return bool((self.sampled == self.computed).all())

    def answered(self, units: list[Unit]) -> np.ndarray | None:
        """Per unit, whether it gets a base answer (those of sampled records); None (all) in a full scan."""
        if self.full:
            return None
        return self.sampled[np.array([u.record for u in units], dtype=np.int64).reshape(-1)]

    def fill(self, units: list[Unit], measured: Measured) -> None:
        """Put B, the mean over the sampled records of their base projection (averaged over their scored turns,
        a pair's chosen side), in the base rows of the units without a base answer; keep the sampled records'."""
        if self.full:
            return
        assert measured.base is not None  # generate mode (config)
        owner = np.array([u.record for u in units], dtype=np.int64)
        main = np.array([u.side != REJECTED for u in units], dtype=bool) & self.sampled[owner]
        rows, size = np.flatnonzero(self.sampled), len(self.sampled)
        turns = np.bincount(owner[main], minlength=size)[rows]
        self.base = np.stack([np.bincount(owner[main], weights=measured.base[main, t], minlength=size)[rows] / turns
                              for t in range(measured.base.shape[1])], axis=1)
        measured.base[~self.sampled[owner]] = self.base.mean(axis=0)

    def estimated(self, records: Sequence[Record]) -> np.ndarray:
        """Per record, whether its dP is an estimate: computed, not sampled, not a preference pair."""
        pairs = np.array([r.is_pair for r in records], dtype=bool)
        return self.computed & ~self.sampled & ~pairs

    def estimate(self, records: Sequence[Record], traits: list[TraitScores]) -> Estimate | None:
        """Per trait, the mean dP over the computed records with its 95% bootstrap interval (see the module); None
        in a full scan."""
        if self.base is None:
            return None
        rows, estimated = np.flatnonzero(self.computed), self.estimated(records)
        mean_base = self.base.mean(axis=0)
        values = np.column_stack([t.dp[rows] + estimated[rows] * b for t, b in zip(traits, mean_base, strict=True)])
        found = bootstrap_estimated_mean(values, estimated[rows].astype(np.float64), self.base, seed=self.seed)
        return Estimate(int(self.sampled.sum()), int(rows.size), self.seed,
                        {t.trait: i for t, i in zip(traits, found, strict=True)})


@dataclass(frozen=True)
class Estimate:
    """The dataset-level estimate of a base-sample scan: `n` of the `of` computed records answered by the model
    (drawn with `seed`), and per trait the mean dP over the `of` records with its 95% interval."""

    n: int
    of: int
    seed: int
    intervals: dict[str, Interval]

    def summary(self, trait: str) -> dict:
        """summary.json's traits.TRAIT.base_sample."""
        interval = self.intervals[trait]
        return {"n": self.n, "of": self.of, "seed": self.seed, "mean_dp": interval.mean,
                "mean_dp_ci95": [interval.low, interval.high]}
