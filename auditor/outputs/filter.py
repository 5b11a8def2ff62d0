"""`dataset-audit filter`: keep the input records a scan passed, as they were; say why the others were dropped.

Records are read again from the scan's inputs (manifest.json) and matched to scores.parquet and
quarantine.jsonl by (source, index). JSONL records keep their original line bytes (a last line
without a line break gets one); records of other formats (JSON, Parquet, CSV, HF datasets) are
written as one JSON object per line.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from ..data import Quarantined, read_records
from ..errors import AuditError
from ..files import atomic_output, file_sha256
from ..scanning.folder import ScanFolder
from ..scanning.result import column, table_traits

_MAX = re.compile(r"\s*(?P<trait>[\w.-]+)\s*=\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")
# Each rejected record is counted once, under the first of these that applies.
REASON_KINDS = ("quarantined", "not scanned", "over --max", "under --min", "flagged")


@dataclass(frozen=True)
class FilterRules:
    """Which scored records to drop: a maximum and a minimum score per trait, and/or any flagged one."""

    max_scores: dict[str, float] = field(default_factory=dict)
    drop_flagged: bool = False
    min_scores: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, max_texts: list[str], drop_flagged: bool, min_texts: list[str] = ()) -> FilterRules:
        """From `--max TRAIT=SCORE` and `--min TRAIT=SCORE` texts; an AuditError for a malformed one."""
        return cls(_limits("--max", max_texts), drop_flagged, _limits("--min", min_texts))


def _limits(flag: str, texts: list[str]) -> dict[str, float]:
    limits = {}
    for text in texts:
        match = _MAX.fullmatch(text)
        if not match:
            raise AuditError(f"{flag} {text!r}: expected TRAIT=SCORE, e.g. evil=0.8 (or refusal=-0.8 with --min)")
        limits[match["trait"]] = float(match["value"])
    return limits


@dataclass
class FilterCounts:
    """How many input records were kept, and rejected by reason kind; they add up to `total`."""

    kept: int = 0
    rejected: Counter = field(default_factory=Counter)

    @property
    def total(self) -> int:
        return self.kept + sum(self.rejected.values())

    def line(self) -> str:
        reasons = ", ".join(f"{n} {kind}" for kind in REASON_KINDS if (n := self.rejected[kind]))
        return f"{self.total} input records: {self.kept} kept, {sum(self.rejected.values())} rejected" + (
            f" ({reasons})" if reasons else "")


@dataclass(frozen=True)
class _Verdicts:
    """Per (source, index): the reasons to reject it (empty: keep), from one scan folder."""

    reasons: dict[tuple[str, int], list[str]]

    @classmethod
    def from_scan(cls, folder: ScanFolder, rules: FilterRules) -> _Verdicts:
        scan_dir = folder.path
        table = folder.read_scores(f"filter {scan_dir}")
        traits = table_traits(table.schema)
        unknown = sorted((set(rules.max_scores) | set(rules.min_scores)) - set(traits))
        if unknown:
            option = "--max" if unknown[0] in rules.max_scores else "--min"
            raise AuditError(f"{option} {unknown[0]}: trait not in {scan_dir}/scores.parquet "
                             f"(traits: {', '.join(traits)})")
        keys = list(zip(map(str, column(table, "source")), map(int, column(table, "index")), strict=True))
        reasons: dict[tuple[str, int], list[str]] = {key: [] for key in keys}
        for trait, limit in rules.max_scores.items():
            for i, score in enumerate(column(table, f"{trait}_score")):
                if score > limit:
                    reasons[keys[i]].append(f"over --max: {trait} score {score:.3f} > {limit:g}")
        for trait, limit in rules.min_scores.items():
            for i, score in enumerate(column(table, f"{trait}_score")):
                if score < limit:
                    reasons[keys[i]].append(f"under --min: {trait} score {score:.3f} < {limit:g}")
        if rules.drop_flagged:
            flags = {t: column(table, f"{t}_flagged").astype(bool) for t in traits}
            for i, key in enumerate(keys):
                if hits := [t for t in traits if flags[t][i]]:
                    reasons[key].append(f"flagged: {', '.join(hits)}")
        for _, entry in folder.quarantine_lines():
            reasons[(entry["source"], entry["index"])] = [f"quarantined: {entry['reason']}"]
        return cls(reasons)

    def of(self, source: str, index: int) -> list[str]:
        return self.reasons.get((source, index), ["not scanned (past the scan's --limit)"])


def scan_inputs(folder: ScanFolder) -> list[Path]:
    """The scan's input files from its manifest, each checked to be unchanged since the scan."""
    scan_dir = folder.path
    manifest = folder.manifest()
    try:
        inputs, shard = manifest["inputs"], manifest.get("settings", {}).get("shard")
    except (KeyError, TypeError, AttributeError) as exc:
        raise AuditError(f"{scan_dir}: not a scan manifest ({exc})") from None
    if shard:
        raise AuditError(f"{scan_dir} is shard {shard} of a scan: `dataset-audit merge` the shards, then filter")
    files = []
    for item in inputs:
        file = Path(item["path"])
        if not file.exists():
            raise AuditError(f"{scan_dir}: input {file} not found (run filter from the directory the scan ran in)")
        if item.get("sha256") and file.is_file() and file_sha256(file) != item["sha256"]:
            raise AuditError(f"{file} changed since the scan in {scan_dir}; scan it again before filtering")
        files.append(file)
    return files


def _is_jsonl(path: Path) -> bool:
    return path.name.lower().endswith((".jsonl", ".jsonl.gz"))


def filter_scan(scan_dir: Path, rules: FilterRules, output: Path, rejected: Path | None = None) -> FilterCounts:
    """Write the records of `scan_dir`'s inputs that pass `rules` to `output`, in input order; the others
    to `rejected` as JSON lines {"source", "line", "reason", "record": the original line}."""
    folder = ScanFolder(scan_dir)
    verdicts = _Verdicts.from_scan(folder, rules)
    counts = FilterCounts()
    with atomic_output(output) as kept, atomic_output(rejected) if rejected else nullcontext() as dropped:
        for path in scan_inputs(folder):
            for item in read_records(path):
                if isinstance(item, Quarantined) and item.line < 0:
                    continue  # "file unreadable after this point": not a record (the scan quarantined it)
                reasons = verdicts.of(item.source, item.index)
                text = item.raw if _is_jsonl(path) and item.raw.endswith("\n") else item.raw + "\n"
                if not reasons:
                    kept.write(text.encode("utf-8"))
                    counts.kept += 1
                    continue
                counts.rejected[next(k for k in REASON_KINDS if reasons[0].startswith(k))] += 1
                if dropped:
                    entry = {"source": item.source, "line": item.line, "reason": "; ".join(reasons),
                             "record": text.rstrip("\r\n")}
                    dropped.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
    return counts
