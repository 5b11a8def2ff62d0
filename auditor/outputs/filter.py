"""`dataset-audit filter`: keep the input records a scan passed, as they were; say why the others were dropped.

Records are read again from the scan's inputs (manifest.json) and matched to scores.parquet and
quarantine.jsonl by (source, index). JSONL records keep their original line bytes (a last line
without a line break gets one); records of other formats (JSON, Parquet, CSV, HF datasets) are
written as one JSON object per line. A reviewer's decisions (outputs.decisions) override the rules.

No output may be one of the scan's inputs, except with `in_place`: then each (JSONL) input is replaced
by its kept records, atomically, after its rejected records are written to a file.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ..data import Quarantined, read_records
from ..data.hub import HubDataset
from ..errors import AuditError
from ..files import atomic_output, file_sha256
from ..scanning.folder import ScanFolder
from ..scanning.result import column, table_traits
from .decisions import Decisions

_MAX = re.compile(r"\s*(?P<trait>[\w.-]+)\s*=\s*(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*")
# Each rejected record is counted once, under the first of these that applies.
REVIEWER_DROP = "dropped by reviewer"
REASON_KINDS = ("quarantined", "not scanned", REVIEWER_DROP, "over --max", "under --min", "flagged")


@dataclass(frozen=True)
class FilterRules:
    """Which scored records to drop: a maximum and a minimum score per trait, and/or any flagged one."""

    max_scores: dict[str, float] = field(default_factory=dict)
    drop_flagged: bool = False
    min_scores: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, max_texts: Sequence[str], drop_flagged: bool, min_texts: Sequence[str] = ()) -> FilterRules:
        """From `--max TRAIT=SCORE` and `--min TRAIT=SCORE` texts; an AuditError for a malformed one."""
        return cls(_limits("max_scores", max_texts), drop_flagged, _limits("min_scores", min_texts))


def _limits(setting: str, texts: Sequence[str]) -> dict[str, float]:
    limits = {}
    for text in texts:
        match = _MAX.fullmatch(text)
        if not match:
            raise AuditError("expected TRAIT=SCORE, e.g. evil=0.8 (or refusal=-0.8 with `min_scores`)", setting, text)
        limits[match["trait"]] = float(match["value"])
    return limits


@dataclass
class FilterCounts:
    """How many input records were kept (`by_reviewer` of them against a rule), and rejected by reason kind;
    they add up to `total`. `files`: the files written, kept records first."""

    kept: int = 0
    rejected: Counter = field(default_factory=Counter)
    by_reviewer: int = 0
    files: list[Path] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.kept + sum(self.rejected.values())

    def line(self) -> str:
        reasons = ", ".join(f"{n} {kind}" for kind in REASON_KINDS if (n := self.rejected[kind]))
        kept = f"{self.kept} kept" + (f" ({self.by_reviewer} kept by reviewer)" if self.by_reviewer else "")
        return f"{self.total} input records: {kept}, {sum(self.rejected.values())} rejected" + (
            f" ({reasons})" if reasons else "")


@dataclass(frozen=True)
class _Verdicts:
    """Per (source, index): the reasons to reject it (empty: keep), from one scan folder; `overruled`: the records
    a reviewer kept against a rule."""

    reasons: dict[tuple[str, int], list[str]]
    overruled: frozenset[tuple[str, int]] = frozenset()

    @classmethod
    def from_scan(cls, folder: ScanFolder, rules: FilterRules, decisions: Decisions | None = None) -> _Verdicts:
        scan_dir = folder.path
        table = folder.read_scores(f"filter {scan_dir}")
        traits = table_traits(table.schema)
        unknown = sorted((set(rules.max_scores) | set(rules.min_scores)) - set(traits))
        if unknown:
            setting = "max_scores" if unknown[0] in rules.max_scores else "min_scores"
            raise AuditError(f"trait not in {scan_dir}/scores.parquet (traits: {', '.join(traits)})", setting,
                             unknown[0])
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
        overruled = set()
        if decisions:
            decisions.check(dict(zip(keys, map(str, column(table, "sample_id")), strict=True)), scan_dir)
            for key, decision in decisions.by_record.items():
                if decision.decision == "drop":
                    reasons[key] = [REVIEWER_DROP]
                elif reasons[key]:
                    reasons[key] = []
                    overruled.add(key)
        return cls(reasons, frozenset(overruled))

    def of(self, source: str, index: int) -> list[str]:
        return self.reasons.get((source, index), ["not scanned (past the scan's --limit)"])


@dataclass(frozen=True)
class ScanInput:
    """One input of a scan: the file to read now, and the source name its records have in the scan."""

    path: Path | HubDataset
    source: str


def _located(entry: dict, folder: ScanFolder, run_from: str | None) -> Path:
    """Where a manifest's input is now: as written, else (relative) from the directory the scan ran in, seen from
    the folder (`run_from`), so a folder read from elsewhere or handed on with its data still finds it."""
    given = Path(entry["path"])
    candidates = [given]
    if run_from and not given.is_absolute():
        candidates.insert(0, Path(os.path.normpath(folder.path / run_from / given)))
    return next((c for c in candidates if c.exists()), candidates[0])


def scan_inputs(folder: ScanFolder, moved: list[Path] | None = None) -> list[ScanInput]:
    """The scan's inputs from its manifest, each checked to be unchanged since the scan. `moved`: where the
    inputs are now, one per input in the manifest's order (`filter --input`)."""
    scan_dir = folder.path
    manifest = folder.manifest()
    try:
        inputs, shard = manifest["inputs"], manifest.get("settings", {}).get("shard")
        files = [_located(item, folder, manifest.get("run_from")) for item in inputs]
    except (KeyError, TypeError, AttributeError) as exc:
        raise AuditError(f"{scan_dir}: not a scan manifest ({exc})") from None
    if shard:
        raise AuditError(f"{scan_dir} is shard {shard} of a scan: `dataset-audit merge` the shards, then filter")
    if moved:
        if len(moved) != len(inputs):
            raise AuditError(f"--input given {len(moved)} times, but the scan in {scan_dir} read {len(inputs)} "
                             f"inputs ({', '.join(item['path'] for item in inputs)}): give each, in that order")
        files = moved
    found = []
    for item, file in zip(inputs, files, strict=True):
        if "dataset" in item:  # a Hugging Face dataset id
            dataset = HubDataset.parse(item["path"])
            if dataset.identity()["fingerprint"] != item["dataset"].get("fingerprint"):
                raise AuditError(f"{item['path']} changed since the scan in {scan_dir}; scan it again before "
                                 "filtering")
            found.append(ScanInput(dataset, item["path"]))
            continue
        if not file.exists():
            raise AuditError(f"{scan_dir}: input {item['path']} not found (looked in {file}); if the data moved, "
                             "give its new place with --input")
        if item.get("sha256") and file.is_file() and file_sha256(file) != item["sha256"]:
            where = f" (read from {file})" if str(file) != item["path"] else ""
            raise AuditError(f"{item['path']} changed since the scan in {scan_dir}{where}; scan it again before "
                             "filtering")
        found.append(ScanInput(file, item["path"]))
    return found


def _is_jsonl(path: Path | HubDataset) -> bool:
    return isinstance(path, Path) and path.name.lower().endswith((".jsonl", ".jsonl.gz"))


def _same_file(a: Path, b: Path) -> bool:
    return a.resolve() == b.resolve() or (a.exists() and b.exists() and os.path.samefile(a, b))


def _targets(scan_dir: Path, inputs: list[Path | HubDataset], output: Path | None, rejected: Path | None,
             in_place: bool) -> list[tuple[Path | HubDataset, Path, Path | None]]:
    """(input file, file for its kept records, file for its rejected ones) per input; an AuditError for an output
    that would overwrite an input (other than with `in_place`) or the other output."""
    for setting, given, hint in (("out", output, ", or give `in_place` to replace the input"),
                                 ("rejected", rejected, "")):
        overwrites = given and any(isinstance(i, Path) and _same_file(given, i) for i in inputs)
        if overwrites and not (in_place and setting == "out"):
            raise AuditError(f"an input of the scan in {scan_dir}, which would be overwritten: write it "
                             f"elsewhere{hint}", setting, str(given))
    if output and rejected and _same_file(output, rejected):
        raise AuditError(f"`out` and `rejected` are the same file ({output}): give two different files")
    if not in_place:
        if not output:
            raise AuditError("give `out` FILE for the kept records, or `in_place` to replace the scan's inputs")
        return [(path, output, rejected) for path in inputs]
    if output and not (len(inputs) == 1 and isinstance(inputs[0], Path) and _same_file(output, inputs[0])):
        raise AuditError("`in_place` writes each input's kept records back to it; leave out `out`", "out", str(output))
    targets: list[tuple[Path | HubDataset, Path, Path | None]] = []
    for path in inputs:
        if not (isinstance(path, Path) and path.is_file() and path.name.lower().endswith(".jsonl")):
            raise AuditError(f"rewrites JSONL files only, and {path} is not one: write the kept records to another "
                             "file with `out`", "in_place")
        own = rejected or path.with_name(path.name[: -len(".jsonl")] + ".rejected.jsonl")
        if not rejected and own.exists():
            raise AuditError(f"{own} exists (from an earlier `in_place`?): move it away, or name the file for the "
                             "rejected records with `rejected`")
        targets.append((path, path.resolve() if path.is_symlink() else path, own))
    return targets


def filter_scan(scan_dir: Path, rules: FilterRules, output: Path | None, rejected: Path | None = None,
                decisions: Decisions | None = None, in_place: bool = False,
                moved: list[Path] | None = None) -> FilterCounts:
    """Write the records of `scan_dir`'s inputs that pass `rules` and `decisions` to `output`, in input order;
    the others to `rejected` as JSON lines {"source", "line", "reason", "record": the original line}.

    `in_place`: replace each input with its kept records instead, and write its rejected records to
    `rejected`, else to NAME.rejected.jsonl beside input NAME.jsonl. Every file is written in full before any
    is moved into place; the inputs are replaced last. `moved`: where the inputs are now (see scan_inputs)."""
    folder = ScanFolder(scan_dir)
    verdicts = _Verdicts.from_scan(folder, rules, decisions)
    inputs = scan_inputs(folder, moved)
    sources = {i.path: i.source for i in inputs}
    targets = _targets(folder.path, [i.path for i in inputs], output, rejected, in_place)
    counts = FilterCounts(files=list(dict.fromkeys([kept for _, kept, _ in targets]
                                                   + [dropped for *_, dropped in targets if dropped])))
    with ExitStack() as stack:  # files close in reverse: the rejected records are in place before any input goes
        like = {kept: path for path, kept, _ in targets if isinstance(path, Path)} if in_place else {}
        files = {file: stack.enter_context(atomic_output(file, like.get(file))) for file in counts.files}
        for path, kept_file, dropped_file in targets:
            kept, dropped = files[kept_file], files.get(dropped_file) if dropped_file else None
            for item in read_records(path, source=sources[path]):
                if isinstance(item, Quarantined) and item.line < 0:
                    continue  # "file unreadable after this point": not a record (the scan quarantined it)
                reasons = verdicts.of(item.source, item.index)
                text = item.raw if _is_jsonl(path) and item.raw.endswith("\n") else item.raw + "\n"
                if not reasons:
                    kept.write(text.encode("utf-8"))
                    counts.kept += 1
                    counts.by_reviewer += (item.source, item.index) in verdicts.overruled
                    continue
                counts.rejected[next(k for k in REASON_KINDS if reasons[0].startswith(k))] += 1
                if dropped:
                    entry = {"source": item.source, "line": item.line, "reason": "; ".join(reasons),
                             "record": text.rstrip("\r\n")}
                    dropped.write((json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8"))
    return counts
