"""The Python API: `auditor.scan(inputs, config, **overrides)` -> a ScanResult (table, summary, quarantine,
verdicts; `.save(folder)` writes what the command line writes)."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from .config import ScanConfig, check_settings, flagged
from .errors import AuditError
from .outputs.scan_result import ScanResult

if TYPE_CHECKING:
    from .scanning.engines.local import ProjectorFactory

Inputs = str | os.PathLike[str] | Iterable[str | os.PathLike[str]]
ORIGIN = "auditor.scan()"


def scan(inputs: Inputs, config: ScanConfig | None = None, *, show_progress: bool = False,
         **overrides: object) -> ScanResult:
    """Scan `inputs` (a data file or folder, or several) and return what was found.

    `config` holds the settings (default: ScanConfig()), and `overrides` replace some of them, by the same names
    as in the config file (`traits=["evil"]`, `base_responses="none"`, `limit=100`,
    `baseline="prev/scores.parquet"`, ...). Nothing is written until `result.save(folder)`. Settings that only the
    command line acts on (`out`, `force`, `top`, `fail_on`, `format`, `junit`, `sarif`) are refused: filter the
    table, or save the result. Raises AuditError (naming the setting, as `error.setting`) for bad settings or
    unreadable input.

        import auditor, pyarrow.compute as pc
        result = auditor.scan("train.jsonl", traits=["evil"], base_responses="none")
        worst = result.table.filter(pc.field("evil_score") >= 1.0)
        result.save("audit-out")
    """
    return scan_with(inputs, config, overrides, show_progress=show_progress)


def scan_with(inputs: Inputs, config: ScanConfig | None, overrides: dict[str, object], show_progress: bool = False,
              projector: ProjectorFactory | None = None) -> ScanResult:
    """`scan`, with the model side replaced by `projector(config, show)` (tests plant scores through it)."""
    from .scanning import scan as run_scan

    config = _config(inputs, config, overrides)
    return ScanResult.of(run_scan(config, show_progress=show_progress, projector=projector), config)


def _config(inputs: Inputs, config: ScanConfig | None, overrides: dict[str, object]) -> ScanConfig:
    paths = [inputs] if isinstance(inputs, (str, os.PathLike)) else list(inputs)
    values = {k: os.fspath(v) if isinstance(v, os.PathLike) else v for k, v in overrides.items()}
    values = check_settings({**values, "inputs": [os.fspath(p) for p in paths]}, ORIGIN)
    config = dataclasses.replace(config or ScanConfig(), **values)
    default = ScanConfig()
    refused = [name for name in flagged(ScanConfig, lambda spec: spec.cli_only)
               if getattr(config, name) != getattr(default, name)]
    if refused:
        raise AuditError(f"only the command line acts on {', '.join(refused)} (save the result with .save(folder), or "
                         "filter its table, instead)", refused[0], getattr(config, refused[0]))
    return config
