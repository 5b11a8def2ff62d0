"""A finished scan as Python callers get it (`auditor.scan`), and the one writer of its folder, which the
`scan` command uses too."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from ..config import ScanConfig
from ..scanning.folder import ScanFolder
from .report import render_report

if TYPE_CHECKING:
    from ..scanning.result import ScanResult as Found


@dataclass(frozen=True)
class ScanResult:
    """What a scan found: `table` (one row per scored record, the columns of scores.parquet), `summary` (as in
    summary.json), `quarantine` (the records that could not be scored, with their line and reason), `verdicts`
    (per trait, the detection card's verdict on its vector) and `manifest` (what it ran on, as in manifest.json).

    `save(folder)` writes the scan folder the command line writes: scores.parquet, quarantine.jsonl, summary.json,
    manifest.json and report.html, which `dataset-audit filter`, `report` and `--baseline` read."""

    table: pa.Table
    summary: dict[str, Any]
    quarantine: list[dict[str, Any]]
    verdicts: dict[str, str]
    manifest: dict[str, Any]

    @classmethod
    def of(cls, found: Found, config: ScanConfig) -> ScanResult:
        return cls(found.table(), found.summary(), [q.to_json() for q in found.quarantined], dict(found.verdicts),
                   found.manifest(config))

    def save(self, folder: str | os.PathLike[str], force: bool = False) -> Path:
        """Write the scan folder (new, empty or a previous scan's; with `force`, any folder) and return its path."""
        scan_folder = ScanFolder(Path(folder))
        if not force:
            scan_folder.check_reusable()
        scan_folder.write(self.table, self.quarantine, self.summary, self.manifest)
        render_report(scan_folder.path)
        return scan_folder.path
