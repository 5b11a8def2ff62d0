"""The Python API: `auditor.scan(inputs, **settings)` -> a pyarrow Table of scores."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .config import ScanConfig, check_settings

if TYPE_CHECKING:
    import pyarrow as pa

    from .scanning.engines.local import ProjectorFactory


def scan_table(inputs: str | os.PathLike | Iterable[str | os.PathLike], *, show_progress: bool = False,
               projector: ProjectorFactory | None = None, **settings) -> pa.Table:
    """Scan `inputs` (a data file or folder, or several) and return one row per scored record.

    `settings` are the ScanConfig fields, as in the CLI and config file (`traits=["evil"]`,
    `base_responses="none"`, `limit=100`, `baseline="prev/scores.parquet"`, ...). Nothing is
    written to disk, and gating/CI settings (`fail_on`, `format`, `junit`, `sarif`) are ignored:
    filter the table instead. Columns: index, source, line, sample_id, prompt, response,
    conversation, truncated, tags, and `<trait>_dp`, `<trait>_score`, `<trait>_flagged` per trait.
    Quarantined records are left out. Raises AuditError for bad settings or unreadable input.
    `projector(config, show)` replaces the model side (see auditor.scanning.projection).

        import auditor, pyarrow.compute as pc
        table = auditor.scan("train.jsonl", traits=["evil"], base_responses="none")
        worst = table.filter(pc.field("evil_score") >= 1.0)
    """
    from .scanning import scan

    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    values = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in settings.items()}
    config = ScanConfig(**check_settings({**values, "inputs": [os.fspath(p) for p in paths]}, "auditor.scan()"))
    return scan(config, show_progress=show_progress, projector=projector).table()
