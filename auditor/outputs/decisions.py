"""A reviewer's keep/drop decisions, exported from the report's flagged samples, for `filter --decisions`.

The file is one JSON object:

    {"format": "dataset-audit decisions", "version": 1,
     "scan": {"folder": "audit-out", "created": "...", "scores_sha256": "..."},
     "decisions": [{"source": "data.jsonl", "index": 1, "line": 2, "sample_id": "...", "decision": "drop"}]}

A record is named by (source, index), as in scores.parquet; `line` is for people, and `sample_id` (the
hash of the record's messages), when given, must match the scan's. `scan` says where the file came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import AuditError

FORMAT, VERSION, CHOICES = "dataset-audit decisions", 1, ("keep", "drop")
FIELDS = (("source", str, True), ("index", int, True), ("line", int, False), ("sample_id", str, False),
          ("decision", str, True))


@dataclass(frozen=True)
class Decision:
    number: int  # the entry's place in the file's list, from 1
    decision: str  # "keep" or "drop"
    sample_id: str | None


@dataclass(frozen=True)
class Decisions:
    """The decisions of one file, by record (source, index)."""

    path: Path
    by_record: dict[tuple[str, int], Decision]

    @classmethod
    def read(cls, path: Path) -> Decisions:
        """Read and check a decisions file; an AuditError names the file, the entry and the field."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise AuditError("no such file", "decisions", str(path)) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise AuditError(f"not a JSON file ({exc})", "decisions", str(path)) from None
        if not isinstance(data, dict) or not isinstance(data.get("decisions"), list):
            raise AuditError(f'{path}: expected a JSON object with a "decisions" list (export it from the report)')
        if data.get("format", FORMAT) != FORMAT or data.get("version", VERSION) != VERSION:
            raise AuditError(f"{path}: not a {FORMAT} file of version {VERSION}")
        by_record: dict[tuple[str, int], Decision] = {}
        for number, entry in enumerate(data["decisions"], start=1):
            where = f"{path}: decision {number}"
            if not isinstance(entry, dict):
                raise AuditError(f"{where}: expected an object")
            for name, kind, required in FIELDS:
                value = entry.get(name)
                if (value is None and required) or (value is not None and (
                        not isinstance(value, kind) or isinstance(value, bool))):
                    raise AuditError(f'{where}: "{name}" must be {"a string" if kind is str else "an integer"}, '
                                     f"not {json.dumps(value)}")
            if entry["decision"] not in CHOICES:
                raise AuditError(f'{where}: "decision" must be "keep" or "drop", not {json.dumps(entry["decision"])}')
            key = (entry["source"], entry["index"])
            if key in by_record and by_record[key].decision != entry["decision"]:
                raise AuditError(f"{where}: {key[0]} record {key[1]} is both kept and dropped")
            by_record[key] = Decision(number, entry["decision"], entry.get("sample_id"))
        return cls(Path(path), by_record)

    def check(self, sample_ids: dict[tuple[str, int], str], scan_dir: Path) -> None:
        """Every decision names a record the scan in `scan_dir` scored (`sample_ids`: its records' ids)."""
        for (source, index), decision in self.by_record.items():
            found = sample_ids.get((source, index))
            if found is None or decision.sample_id not in (None, found):
                what = ("was not scored by" if found is None
                        else f"is another sample (sample_id {found}, not {decision.sample_id}) in")
                raise AuditError(f"{self.path}: decision {decision.number}: {source} record {index} {what} the scan "
                                 f"in {scan_dir}: were these decisions exported from another scan's report?")
