"""The local scan engine: records -> base answers -> activations -> projection differences -> a ScanResult."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...config import ScanConfig
from ...data import REJECTED, Quarantined, Record, expand_inputs, read_input
from ...data.hub import HubDataset
from ..base_sample import BaseSample, Estimate
from ..baseline import Baseline
from ..groups import record_groups
from ..projection import Measured, ModelProjector, Projector, Unit
from ..result import ScanResult
from ..scoring import TraitScores, projection_difference, score_trait
from ..shard import Shard
from ..tags import tag_sample

ProjectorFactory = Callable[[ScanConfig, bool], Projector]


def read_inputs(inputs: Sequence[str], limit: int | None = None, shard: Shard | None = None
                ) -> tuple[list[Path | str | HubDataset], list[Record], list[Quarantined]]:
    """All records of all inputs (up to `limit`, of `shard` only), split into scoreable and quarantined."""
    files = expand_inputs(list(inputs))
    records: list[Record]
    quarantined: list[Quarantined]
    records, quarantined, seen = [], [], 0
    for path in files:
        for item in read_input(path):
            if limit is not None and seen >= limit:
                return files, records, quarantined
            if shard is None or shard.takes(seen):
                if isinstance(item, Record):
                    records.append(item)
                else:
                    quarantined.append(item)
            seen += 1
    return files, records, quarantined


def in_input_order(items: list, files: Sequence[Path | str | HubDataset]) -> list:
    """Records or quarantine entries sorted as they appear in the inputs: by file, then index in the file."""
    order = {str(path): i for i, path in enumerate(files)}
    return sorted(items, key=lambda item: (order.get(item.source, len(order)), item.source, item.index))


@dataclass
class Scored:
    """The scores of a list of records (those with a base answer), in their order."""

    records: list[Record]
    missing: list[Quarantined]  # records with no base answer among the given ones
    traits: list[TraitScores]
    truncated: np.ndarray
    reused: np.ndarray
    estimated: np.ndarray | None = None  # with --base-sample: whose dP is estimated (scanning.base_sample)
    estimate: Estimate | None = None  # with --base-sample, unless every computed record was answered


def _without_base_answers(projector: Projector, records: list[Record], what: str) -> tuple[list, list]:
    """Split records into those the projector has base answers for, and the rest (quarantined)."""
    keep, missing = [], []
    for record in records:
        if projector.has_base_answers(record):
            keep.append(record)
        else:
            missing.append(Quarantined(record.source, record.line, record.index,
                                       f"no base answer for this prompt in {what}", record.raw))
    return keep, missing


def record_scores(units: list[Unit], measured: Measured, vectors: Sequence, n: int, threshold: float,
                  pairs: np.ndarray | None = None) -> list[TraitScores]:
    """dP, score and flag per record and trait: a record's dP is the mean over its scored turns; a preference
    pair's (`pairs`: which records are) is its margin, dP(chosen) - dP(rejected)."""
    owner = np.array([u.record for u in units], dtype=np.int64)
    rejected = np.array([u.side == REJECTED for u in units], dtype=bool)
    main = ~rejected
    counts = np.bincount(owner[main], minlength=n).clip(min=1)
    pairs = pairs if pairs is not None and pairs.any() else None
    results = []
    for t, vector in enumerate(vectors):
        unit_dp = projection_difference(vector, measured.sample[:, t],
                                        None if measured.base is None else measured.base[:, t])
        dp = np.bincount(owner[main], weights=unit_dp[main], minlength=n) / counts
        if pairs is None:
            results.append(score_trait(vector, dp, threshold))
            continue
        dp_rejected = np.full(n, np.nan)
        dp_rejected[owner[rejected]] = unit_dp[rejected]
        dp_chosen = np.where(pairs, dp, np.nan)
        results.append(score_trait(vector, np.where(pairs, dp - dp_rejected, dp), threshold, dp_chosen,
                                   np.where(pairs, dp_rejected, np.nan)))
    return results


def score_records(projector: Projector, records: list[Record], config: ScanConfig,
                  baseline: Baseline | None = None, show: bool = False) -> Scored:
    """The model work of a scan, on any slice of the records: records with no given base answer are
    returned as `missing`, those in the baseline copy its scores, the others are measured and scored (with
    `config.base_sample`, base answers for a sample of them only: scanning.base_sample)."""
    records, missing = _without_base_answers(projector, records, config.base_responses)
    reused = baseline.reused(records) if baseline else np.zeros(len(records), dtype=bool)
    units = projector.units(records, reused)
    sample = None
    if config.base_sample:
        sample = BaseSample.of(records, ~reused, config.base_sample, config.base_sample_seed)
    measured = projector.measure(units, show, sample.answered(units) if sample else None)
    if sample:
        sample.fill(units, measured)
    traits = record_scores(units, measured, projector.vectors, len(records), config.threshold,
                           np.array([r.is_pair for r in records], dtype=bool))
    truncated = np.zeros(len(records), dtype=bool)
    truncated[[u.record for u in units if u.truncated]] = True
    estimated = sample.estimated(records) if sample else None
    if baseline:
        baseline.fill(records, reused, traits, truncated, estimated)
    return Scored(records, missing, traits, truncated, reused, estimated,
                  sample.estimate(records, traits) if sample else None)


def scan_local(config: ScanConfig, show: bool = False, projector: ProjectorFactory | None = None) -> ScanResult:
    """Score every record of `config.inputs` in this process; quarantine what cannot be scored.

    `projector(config, show)` gives the model side [ModelProjector.load]; it is called after the
    inputs and the baseline were read, so their errors come before any model loads.
    """
    import torch

    shard = Shard.parse(config.shard) if config.shard else None
    files, records, quarantined = read_inputs(config.inputs, config.limit, shard)
    baseline = Baseline.load(config.baseline, config) if config.baseline else None
    model = (projector or ModelProjector.load)(config, show)
    if baseline:
        baseline.check_traits([v.trait for v in model.vectors])
    scored = score_records(model, records, config, baseline, show)
    tags = [tag_sample(r.messages) for r in scored.records]
    return ScanResult(records=scored.records, quarantined=in_input_order(quarantined + scored.missing, files),
                      traits=scored.traits, truncated=scored.truncated, vectors=model.vectors, files=files,
                      model_name=model.model_name, tags=tags, device=model.device, dtype=model.dtype,
                      reused=scored.reused, threads=torch.get_num_threads(), group_by=config.group_by,
                      groups=record_groups(scored.records, config.group_by), estimated=scored.estimated,
                      estimate=scored.estimate)
