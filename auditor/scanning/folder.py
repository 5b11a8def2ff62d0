"""The scan folder (`--out`): the one place that knows its file names and how each file is written and read.

    scores.parquet    one row per scored record (schema: auditor.scanning.result)
    quarantine.jsonl  every record that could not be scored, with its reason
    summary.json      record counts and each trait's dataset-level view
    manifest.json     versions, model, vectors, inputs and settings
    report.html       the HTML report (auditor.outputs.report)
    themes.json       the flagged samples' themes, clustered once for the report (a re-render reads them)
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from ..errors import AuditError
from ..files import atomic_write_bytes, atomic_write_text
from .result import RECORD_COLUMNS, check_scores, read_scores

SCORES, QUARANTINE, SUMMARY, MANIFEST, REPORT, THEMES = NAMES = (
    "scores.parquet", "quarantine.jsonl", "summary.json", "manifest.json", "report.html", "themes.json")
LEFTOVER = re.compile(r"\.(.+)\.tmp-\d+")  # a file of ours cut short by a kill (auditor.files.atomic_output)


def nothing_scored(total: int, folder: ScanFolder) -> str:
    """The one line for a scan in which no record could be scored (its outputs are written all the same)."""
    if not total:
        return f"nothing to score: the inputs hold no records (outputs in {folder.path}/)"
    which = "the one record was" if total == 1 else f"all {total} records were"
    return f"nothing to score: {which} quarantined; the reasons are in {folder.path / QUARANTINE}"


@dataclass(frozen=True)
class ScanFolder:
    """A scan's output folder."""

    path: Path

    @classmethod
    def of_scores(cls, scores: Path) -> ScanFolder:
        """The folder a scores.parquet file sits in."""
        return cls(Path(scores).parent)

    def check_reusable(self, keep: Iterable[str | Path] = ()) -> None:
        """An AuditError unless the folder is missing, empty or holds only a scan's files (and the files `keep`
        names, or folders holding them: a scan's --junit and --sarif outputs), so a scan never mixes its outputs
        into other data."""
        if not self.path.exists():
            return
        if not self.path.is_dir():
            raise AuditError("is a file, not a folder", "out", str(self.path))
        kept = [Path(p).resolve() for p in keep]
        other = sorted(entry.name for entry in self.path.iterdir()
                       if not self._ours(entry.name) and not any(entry.resolve() in (k, *k.parents) for k in kept))
        if other:
            shown = ", ".join(other[:3]) + (f" and {len(other) - 3} more" if len(other) > 3 else "")
            raise AuditError(f"holds files that are not a scan's outputs ({shown}): choose another folder, or add "
                             "`force` to write there anyway", "out", str(self.path))

    @staticmethod
    def _ours(name: str) -> bool:
        leftover = LEFTOVER.fullmatch(name)
        return name in NAMES or bool(leftover and leftover[1] in NAMES)

    @property
    def scores(self) -> Path:
        return self.path / SCORES

    @property
    def report(self) -> Path:
        return self.path / REPORT

    def write(self, table: pa.Table, quarantine: list[dict], summary: dict, manifest: dict) -> None:
        """Write the four data files, each atomically (the themes of an earlier scan here are dropped)."""
        (self.path / THEMES).unlink(missing_ok=True)
        buffer = io.BytesIO()
        pq.write_table(table, buffer)
        atomic_write_bytes(self.scores, buffer.getvalue())
        self.write_quarantine([json.dumps(entry, ensure_ascii=False) for entry in quarantine])
        atomic_write_text(self.path / SUMMARY, json.dumps(summary, indent=2))
        atomic_write_text(self.path / MANIFEST, json.dumps(manifest, indent=2))

    def write_quarantine(self, lines: list[str]) -> None:
        atomic_write_text(self.path / QUARANTINE, "".join(line + "\n" for line in lines))

    def themes(self) -> list[dict] | None:
        """The saved themes, or None when they were not computed yet."""
        return json.loads((self.path / THEMES).read_text(encoding="utf-8")) if (self.path / THEMES).is_file() else None

    def write_themes(self, themes: list[dict]) -> None:
        atomic_write_text(self.path / THEMES, json.dumps(themes))

    def read_scores(self, label: str) -> pa.Table:
        """scores.parquet, checked to be one; `label` names the command in errors."""
        return read_scores(self.scores, label)

    def open_scores(self) -> pq.ParquetFile:
        """scores.parquet opened for reading some columns or rows at a time, checked to have every column."""
        if not self.scores.is_file():
            raise AuditError(f"{self.scores} not found: is {self.path} a scan output folder?")
        parquet = pq.ParquetFile(self.scores)
        missing = [c for c in RECORD_COLUMNS if c not in parquet.schema_arrow.names]
        if missing:
            raise AuditError(f"{self.scores} lacks columns: {', '.join(missing)}")
        check_scores(parquet.schema_arrow, self.scores, "report")
        return parquet

    def summary(self) -> dict:
        return self._json(SUMMARY)

    def manifest(self) -> dict:
        return self._json(MANIFEST)

    def has_manifest(self) -> bool:
        return (self.path / MANIFEST).is_file()

    def quarantine_lines(self, missing_ok: bool = False) -> Iterator[tuple[str, dict]]:
        """Each quarantine.jsonl line as (text, entry); none if the file is missing and `missing_ok`."""
        path = self.path / QUARANTINE
        if not path.is_file():
            if missing_ok:
                return
            raise AuditError(f"{path} not found: is {self.path} a scan output folder?")
        with open(path, encoding="utf-8") as fh:
            for number, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    yield line.rstrip("\n"), json.loads(line)
                except json.JSONDecodeError as exc:
                    raise AuditError(f"{path}:{number}: invalid JSON ({exc.msg})") from None

    def _json(self, name: str) -> dict:
        path = self.path / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AuditError(f"{path} not found: is {self.path} a scan output folder?") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise AuditError(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise AuditError(f"{path}: expected a JSON object")
        return data
