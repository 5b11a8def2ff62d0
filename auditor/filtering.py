"""`dataset-audit filter`: keep the input records a scan passed, as they were; say why the others were dropped.

Records are read again from the scan's inputs (manifest.json) and matched to scores.parquet and
quarantine.jsonl by (source, index). JSONL records keep their original line bytes (a last line
without a line break gets one); records of other formats (JSON, Parquet, CSV, HF datasets) are
written as one JSON object per line.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from .cache import file_sha256
from .data import Quarantined, read_records
from .errors import AuditError
from .scores import column, read_scores, table_traits

_MAX = re.compile(r"\s*(?P<trait>[\w.-]+)\s*=\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")
# Each rejected record is counted once, under the first of these that applies.
REASON_KINDS = ("quarantined", "not scanned", "over --max", "flagged")


@dataclass(frozen=True)
class FilterRules:
    """Which scored records to drop: a maximum score per trait, and/or any flagged one."""

    max_scores: dict[str, float] = field(default_factory=dict)
    drop_flagged: bool = False

    @classmethod
    def parse(cls, max_texts: list[str], drop_flagged: bool) -> FilterRules:
        """From `--max TRAIT=SCORE` texts; an AuditError for a malformed one."""
        limits = {}
        for text in max_texts:
            match = _MAX.fullmatch(text)
            if not match:
                raise AuditError(f"--max {text!r}: expected TRAIT=SCORE, e.g. evil=0.8")
            limits[match["trait"]] = float(match["value"])
        return cls(limits, drop_flagged)


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
    def from_scan(cls, scan_dir: Path, rules: FilterRules) -> _Verdicts:
        table = read_scores(scan_dir / "scores.parquet", f"filter {scan_dir}")
        traits = table_traits(table.schema)
        unknown = sorted(set(rules.max_scores) - set(traits))
        if unknown:
            raise AuditError(f"--max {unknown[0]}: trait not in {scan_dir}/scores.parquet "
                             f"(traits: {', '.join(traits)})")
        keys = list(zip(map(str, column(table, "source")), map(int, column(table, "index")), strict=True))
        reasons: dict[tuple[str, int], list[str]] = {key: [] for key in keys}
        for trait, limit in rules.max_scores.items():
            for i, score in enumerate(column(table, f"{trait}_score")):
                if score > limit:
                    reasons[keys[i]].append(f"over --max: {trait} score {score:.3f} > {limit:g}")
        if rules.drop_flagged:
            flags = {t: column(table, f"{t}_flagged").astype(bool) for t in traits}
            for i, key in enumerate(keys):
                if hits := [t for t in traits if flags[t][i]]:
                    reasons[key].append(f"flagged: {', '.join(hits)}")
        for entry in _read_quarantine(scan_dir / "quarantine.jsonl"):
            reasons[(entry["source"], entry["index"])] = [f"quarantined: {entry['reason']}"]
        return cls(reasons)

    def of(self, source: str, index: int) -> list[str]:
        return self.reasons.get((source, index), ["not scanned (past the scan's --limit)"])


def _read_quarantine(path: Path) -> Iterator[dict]:
    if not path.is_file():
        raise AuditError(f"{path} not found: is {path.parent} a scan output folder?")
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise AuditError(f"{path}:{number}: invalid JSON ({exc.msg})") from None


def scan_inputs(scan_dir: Path) -> list[Path]:
    """The scan's input files from its manifest.json, each checked to be unchanged since the scan."""
    path = scan_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
        inputs, shard = manifest["inputs"], manifest.get("settings", {}).get("shard")
    except FileNotFoundError:
        raise AuditError(f"{path} not found: is {scan_dir} a scan output folder?") from None
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise AuditError(f"{path}: not a scan manifest ({exc})") from None
    if shard:
        raise AuditError(f"{scan_dir} is shard {shard} of a scan: `dataset-audit merge` the shards, then filter")
    files = []
    for item in inputs:
        file = Path(item["path"])
        if not file.exists():
            raise AuditError(f"{path}: input {file} not found (run filter from the directory the scan ran in)")
        if item.get("sha256") and file.is_file() and file_sha256(file) != item["sha256"]:
            raise AuditError(f"{file} changed since the scan in {scan_dir}; scan it again before filtering")
        files.append(file)
    return files


def _is_jsonl(path: Path) -> bool:
    return path.name.lower().endswith((".jsonl", ".jsonl.gz"))


@contextmanager
def _atomic_output(path: Path | None) -> Iterator[IO[bytes] | None]:
    """A binary file that appears at `path` only once fully written (None: nothing to write)."""
    if path is None:
        yield None
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as fh:
            yield fh
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def filter_scan(scan_dir: Path, rules: FilterRules, output: Path, rejected: Path | None = None) -> FilterCounts:
    """Write the records of `scan_dir`'s inputs that pass `rules` to `output`, in input order; the others
    to `rejected` as JSON lines {"source", "line", "reason", "record": the original line}."""
    verdicts = _Verdicts.from_scan(scan_dir, rules)
    counts = FilterCounts()
    with _atomic_output(output) as kept, _atomic_output(rejected) as dropped:
        for path in scan_inputs(scan_dir):
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
