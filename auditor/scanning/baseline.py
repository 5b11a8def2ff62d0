"""Reusing a previous scan (`--baseline PREV/scores.parquet`): unchanged records keep their scores, uncomputed."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..config import DECODING_RULE, ScanConfig, flagged
from ..data import Record
from ..errors import AuditError
from .folder import ScanFolder
from .result import ESTIMATED_COLUMN, column, pair_scores, read_scores, table_traits
from .scoring import TraitScores


def _check_dtype(made_in: str | None, config: ScanConfig, path: Path) -> None:
    """`dtype` auto resolves per machine (see model.precision): compare what each scan really ran in."""
    from ..model.loading import resolved_dtype

    runs_in = resolved_dtype(config.device, config.dtype, config.model)
    if made_in and made_in != runs_in:
        raise AuditError(f"made in {made_in}, this scan runs in {runs_in} (`dtype` {config.dtype}; scores would not "
                         "be comparable: pass the same `dtype`, or scan without `baseline`)", "baseline", str(path))


@dataclass
class Baseline:
    """A previous scan's scores by sample_id (the hash of a record's messages)."""

    path: Path
    table: pa.Table
    row_of: dict[str, int]

    @classmethod
    def load(cls, path: str | Path, config: ScanConfig) -> Baseline:
        """Read `path`; if its manifest.json is beside it, check it was made with the same scoring settings."""
        path = Path(path)
        table = read_scores(path, "`baseline`")
        folder = ScanFolder.of_scores(path)
        if folder.has_manifest():
            try:
                manifest = folder.manifest()
            except AuditError as exc:
                raise AuditError(f"unreadable manifest beside it ({exc})", "baseline", str(path)) from None
            old, new = manifest.get("settings", {}), asdict(config)
            if config.generates and manifest.get("decoding_rule", 1) != DECODING_RULE:
                raise AuditError("its base answers were decoded by an older rule (the repetition penalty then also "
                                 "lowered the end of turn); scan without `baseline` once", "baseline", str(path))
            for key in flagged(ScanConfig, lambda spec: spec.changes_scores):  # a setting that changes dP
                if key in old and old[key] != new[key]:
                    raise AuditError(f"made with `{key}` {old[key]!r}, this scan uses {new[key]!r} (scores would not "
                                     "be comparable; scan without `baseline`)", "baseline", str(path))
            _check_dtype(manifest.get("dtype"), config, path)
        ids = column(table, "sample_id")
        return cls(path, table, {str(sample_id): row for row, sample_id in enumerate(ids)})

    @property
    def traits(self) -> list[str]:
        return table_traits(self.table.schema)

    def check_traits(self, traits: list[str]) -> None:
        if sorted(self.traits) != sorted(traits):
            raise AuditError(f"made with traits {', '.join(self.traits)}, this scan uses {', '.join(traits)} (use the "
                             "same `traits`, or scan without `baseline`)", "baseline", str(self.path))

    def reused(self, records: list[Record]) -> np.ndarray:
        """Which records are in the baseline (and so need no computing)."""
        return np.array([r.sample_id in self.row_of for r in records], dtype=bool)

    def fill(self, records: list[Record], reused: np.ndarray, traits: list[TraitScores], truncated: np.ndarray,
             estimated: np.ndarray | None = None) -> None:
        """Copy the baseline's dP, score, truncation and (with --base-sample, into `estimated`) whether its dP was
        estimated into the `reused` rows; flags follow the current threshold."""
        rows = [self.row_of[r.sample_id] for r, old in zip(records, reused, strict=True) if old]
        truncated[reused] = column(self.table, "truncated")[rows]
        if estimated is not None and ESTIMATED_COLUMN in self.table.column_names:
            estimated[reused] = column(self.table, ESTIMATED_COLUMN)[rows]
        for t in traits:
            t.dp[reused] = column(self.table, f"{t.trait}_dp")[rows]
            t.score[reused] = column(self.table, f"{t.trait}_score")[rows]
            for name, values in pair_scores(self.table, t.trait).items():
                if getattr(t, name) is not None:
                    getattr(t, name)[reused] = values[rows]
            t.reflag()
