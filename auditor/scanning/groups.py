"""Which source brings a trait: the scored records grouped by input file, or by a top-level field of each record
(`scan --group-by FIELD`), with each group's record count and, per trait, its mean dP with a 95% bootstrap interval
and its flagged count and share.

`top` names, per trait, the group that brings it: the one with the highest mean dP (the lowest for a trait flagged
below, whose concern is a negative dP), and the one with the highest flagged share; None where all groups are equal
(one group, nothing flagged). Ties go to the first group. Groups are sorted by name, MISSING (records without the
field) last, so scans, merged shards and reports list them alike.
"""

from __future__ import annotations

import json

import numpy as np

from ..data import Record
from ..evaluation.stats import bootstrap_means
from .scoring import TraitScores

MISSING = "(missing)"


def group_of(record: Record, field: str) -> str:
    """The record's group under `--group-by field`: the field's text (other JSON values as JSON), else MISSING."""
    value = record.field(field)
    if value is None:
        return MISSING
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def record_groups(records: list[Record], field: str | None) -> list[str] | None:
    """Each record's group under `--group-by field`; None without a field."""
    return [group_of(r, field) for r in records] if field else None


def group_summary(names: list[str], traits: list[TraitScores]) -> dict:
    """{"groups": [{"name", "records", "traits": {trait: {"mean_dp", "mean_dp_ci95", "flagged", "flagged_share"}}}],
    "top": {trait: {"mean_dp": name or None, "flagged_share": name or None}}} for the records named by `names`."""
    order = sorted(set(names), key=lambda name: (name == MISSING, name))
    code = {name: i for i, name in enumerate(order)}
    codes = np.array([code[name] for name in names], dtype=np.int64)
    sizes = np.bincount(codes, minlength=len(order))
    rows, ends = np.argsort(codes, kind="stable"), np.cumsum(sizes)
    dp = np.column_stack([t.dp for t in traits]) if traits else np.zeros((len(names), 0))
    groups = []
    for name, start, end in zip(order, ends - sizes, ends, strict=True):
        members = rows[start:end]
        stats = {}
        for t, interval in zip(traits, bootstrap_means(dp[members]), strict=True):
            flagged = t.flagged[members]
            stats[t.trait] = {"mean_dp": interval.mean, "mean_dp_ci95": [interval.low, interval.high],
                              "flagged": int(flagged.sum()), "flagged_share": float(flagged.mean())}
        groups.append({"name": name, "records": len(members), "traits": stats})
    return {"groups": groups, "top": {t.trait: _top(groups, t) for t in traits} if groups else {}}


def _top(groups: list[dict], trait: TraitScores) -> dict:
    """The groups with the most concerning mean dP and with the highest flagged share."""
    stats = [g["traits"][trait.trait] for g in groups]

    def first_highest(values: list[float]) -> str | None:
        return groups[int(np.argmax(values))]["name"] if min(values) < max(values) else None

    return {"mean_dp": first_highest([trait.sign * s["mean_dp"] for s in stats]),
            "flagged_share": first_highest([s["flagged_share"] for s in stats])}
