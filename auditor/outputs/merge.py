"""`dataset-audit merge`: the output folders of `scan --shard i/n` (all n of them) as one scan.

The merged scores.parquet and quarantine.jsonl hold the shards' rows in the order of one full scan
(inputs in order, then position in the file); summary.json is recomputed from them; manifest.json
is the shards' common manifest, with `settings.shard` cleared and the shards listed under `shards`.
Shards must come from the same inputs, model, vectors and scoring settings, and cover 0..n-1
exactly once.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from ..config import ScanConfig, flagged
from ..errors import AuditError
from ..evaluation.card import NOT_EVALUATED, predictions
from ..scanning import card_mode
from ..scanning.folder import ScanFolder
from ..scanning.result import GROUP_COLUMN, column, group_field, pair_scores, row_numbers, summarise, table_traits
from ..scanning.result import run_from as run_from_dir
from ..scanning.scoring import TraitScores
from ..scanning.shard import Shard

# What every shard must share, besides its settings that must match (config.Spec.must_match): the same inputs, model,
# dtype and vectors.
SHARED_FIELDS = ("tool_version", "model", "dtype", "inputs")


@dataclass
class ShardOutput:
    """One `scan --shard` output folder."""

    folder: ScanFolder
    manifest: dict
    shard: Shard

    @property
    def path(self) -> Path:
        return self.folder.path

    @classmethod
    def read(cls, path: Path) -> ShardOutput:
        folder = ScanFolder(path)
        try:
            manifest = folder.manifest()
            text = manifest["settings"].get("shard")
        except (AuditError, KeyError, TypeError, AttributeError) as exc:
            raise AuditError(f"merge {path}: no scan manifest.json ({exc.__class__.__name__}: {exc})") from None
        if not text:
            raise AuditError(f"merge {path}: not a shard (scanned without --shard)")
        return cls(folder, manifest, Shard.parse(text))

    def identity(self) -> dict[str, object]:
        """What must be equal across shards, by the name shown when it is not."""
        m = self.manifest
        vectors = {trait: {k: v for k, v in meta.items() if k != "source"} for trait, meta in m["vectors"].items()}
        return {**{k: m.get(k) for k in SHARED_FIELDS}, "vectors": vectors,
                **{f"--{k.replace('_', '-')}": m["settings"].get(k)
                   for k in flagged(ScanConfig, lambda spec: spec.must_match)}}


def check_shards(shards: list[ShardOutput]) -> None:
    """Same shard count, each index once, and the same inputs, model, vectors and settings; else an AuditError."""
    first = shards[0]
    for other in shards[1:]:
        if other.shard.count != first.shard.count:
            raise AuditError(f"merge: {first.path} is shard {first.shard}, {other.path} is shard {other.shard} "
                             "(different shard counts)")
        mine, theirs = first.identity(), other.identity()
        for key in mine:
            if mine[key] != theirs[key]:
                raise AuditError(f"merge: {other.path} differs from {first.path} in {key} "
                                 f"({json.dumps(theirs[key])[:120]} vs {json.dumps(mine[key])[:120]})")
    seen: dict[int, Path] = {}
    for s in shards:
        if s.shard.index in seen:
            raise AuditError(f"merge: shard {s.shard} given twice ({seen[s.shard.index]} and {s.path})")
        seen[s.shard.index] = s.path
    missing = [f"{i}/{first.shard.count}" for i in range(first.shard.count) if i not in seen]
    if missing:
        raise AuditError(f"merge: shard{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing")


def _order(sources: list[str], indices: list[int], inputs: list[str]) -> np.ndarray:
    """Row order of one full scan: by input file (manifest order), then index in the file."""
    rank = {path: i for i, path in enumerate(inputs)}
    keys = [(rank.get(src, len(rank)), src, idx) for src, idx in zip(sources, indices)]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def merge_shards(dirs: list[Path], out: Path) -> tuple[pa.Table, dict]:
    """Write the merged scan into `out`; returns its scores table and summary."""
    shards = [ShardOutput.read(Path(d)) for d in dirs]
    check_shards(shards)
    shards.sort(key=lambda s: s.shard.index)
    inputs = [entry["path"] for entry in shards[0].manifest["inputs"]]
    table = pa.concat_tables([s.folder.read_scores(f"merge {s.path}") for s in shards],
                             promote_options="default")  # a shard without preference pairs lacks their columns
    table = table.take(row_numbers(_order(column(table, "source").tolist(), column(table, "index").tolist(), inputs)))
    quarantine = [entry for s in shards for entry in s.folder.quarantine_lines()]
    quarantine = [quarantine[i] for i in _order([q["source"] for _, q in quarantine],
                                                [q["index"] for _, q in quarantine], inputs)]
    manifest = _merged_manifest(shards, out)
    summary = _summary(table, [q["reason"] for _, q in quarantine], shards, manifest)
    ScanFolder(out).write(table, [q for _, q in quarantine], summary, manifest)
    return table, summary


def _summary(table: pa.Table, reasons: list[str], shards: list[ShardOutput], manifest: dict) -> dict:
    threshold = manifest["settings"]["threshold"]
    traits = [TraitScores(trait, column(table, f"{trait}_dp"), column(table, f"{trait}_score"),
                          column(table, f"{trait}_flagged").astype(bool), threshold,
                          manifest["vectors"][trait]["layer"], manifest["vectors"][trait].get("flags", "above"),
                          **pair_scores(table, trait))
              for trait in table_traits(table.schema)]
    reused = 0
    for s in shards:  # which rows a --baseline shard reused is not in its scores.parquet, only the count
        try:
            reused += s.folder.summary()["records"]["reused"]
        except (AuditError, KeyError, TypeError):
            pass
    verdicts = {trait: v.get("verdict", NOT_EVALUATED) for trait, v in manifest["vectors"].items()}
    shas = {trait: v.get("sha256") for trait, v in manifest["vectors"].items()}
    found = predictions(shas, card_mode(manifest["settings"]["base_responses"]),
                        {t.trait: t.summary()["mean_dp"] for t in traits})  # at the merged mean dP
    group_by = group_field(table.schema)
    return summarise(table.num_rows, reasons, int(column(table, "truncated").sum()), reused, traits, verdicts,
                     found, column(table, "source").tolist(), group_by,
                     column(table, GROUP_COLUMN).tolist() if group_by else None)


def _merged_manifest(shards: list[ShardOutput], out: Path) -> dict:
    merged = json.loads(json.dumps(shards[0].manifest))
    if "run_from" in merged:  # the scan's directory, as seen from the merged folder
        merged["run_from"] = run_from_dir(out, shards[0].path / merged["run_from"])
    merged["created"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    merged["settings"]["shard"] = None
    merged["shards"] = [{"shard": str(s.shard), "dir": str(s.path), "created": s.manifest.get("created"),
                         "device": s.manifest.get("device"), "versions": s.manifest.get("versions")}
                        for s in shards]
    return merged
