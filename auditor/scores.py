"""Reading a scan's scores.parquet back: its traits and their per-sample columns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import AuditError

REQUIRED_COLUMNS = ("source", "line", "index", "sample_id", "truncated")


def table_traits(schema: pa.Schema) -> list[str]:
    """The traits of a scores table: names with `<trait>_dp`, `_score` and `_flagged` columns, in column order."""
    names = set(schema.names)
    candidates = [n.removesuffix("_score") for n in schema.names if n.endswith("_score")]
    return [t for t in candidates if {f"{t}_dp", f"{t}_flagged"} <= names]


def read_scores(path: Path, label: str) -> pa.Table:
    """A scores.parquet with the REQUIRED_COLUMNS and at least one trait; `label` names it in errors."""
    if not Path(path).is_file():
        raise AuditError(f"{label}: {path} not found")
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise AuditError(f"{label}: {path} is not a scores.parquet ({exc})") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in table.schema.names]
    if missing or not table_traits(table.schema):
        what = f"no {', '.join(missing)} column" if missing else "no <trait>_dp/_score/_flagged columns"
        raise AuditError(f"{label}: {path} is not a dataset-audit scores.parquet ({what})")
    return table


def column(table: pa.Table, name: str) -> np.ndarray:
    """One column as a numpy array."""
    return table.column(name).to_numpy(zero_copy_only=False)
