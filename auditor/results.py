"""The scan's files: scores.parquet, quarantine.jsonl, summary.json and manifest.json."""

from __future__ import annotations

import datetime as dt
import io
import json
import platform
from collections import Counter
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import torch
import transformers

from . import __version__
from .cache import atomic_write_bytes, atomic_write_text, file_sha256
from .config import ScanConfig
from .pipeline import ScanResult
from .scoring import TraitScores


def _last_user(messages: list[dict]) -> str:
    return next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")


def scores_table(result: ScanResult) -> pa.Table:
    """One row per scored record, in input order."""
    recs = result.records
    last = [r.turns("last")[0] for r in recs]  # the scored exchange of each record
    columns = {
        "index": pa.array([r.index for r in recs], pa.int64()),
        "source": pa.array([r.source for r in recs], pa.string()),
        "line": pa.array([r.line for r in recs], pa.int64()),
        "sample_id": pa.array([r.sample_id for r in recs], pa.string()),
        "prompt": pa.array([_last_user(prompt) for prompt, _ in last], pa.string()),
        "response": pa.array([response for _, response in last], pa.string()),
        "conversation": pa.array([json.dumps(r.messages, ensure_ascii=False) for r in recs], pa.string()),
        "truncated": pa.array(result.truncated, pa.bool_()),
        "tags": pa.array(result.tags, pa.list_(pa.string())),
    }
    for t in result.traits:
        columns[f"{t.trait}_dp"] = pa.array(t.dp, pa.float64())
        columns[f"{t.trait}_score"] = pa.array(t.score, pa.float64())
        columns[f"{t.trait}_flagged"] = pa.array(t.flagged, pa.bool_())
    return pa.table(columns)


def summary(result: ScanResult) -> dict:
    return summarise(len(result.records), [q.reason for q in result.quarantined], int(result.truncated.sum()),
                     int(result.reused.sum()), result.traits)


def summarise(scored: int, quarantine_reasons: list[str], truncated: int, reused: int,
              traits: list[TraitScores]) -> dict:
    """summary.json: record counts, quarantine reasons by kind, and each trait's dataset-level view."""
    reasons = Counter(reason.split(":")[0].split(" (")[0] for reason in quarantine_reasons)
    return {
        "records": {"total": scored + len(quarantine_reasons), "scored": scored,
                    "quarantined": len(quarantine_reasons), "truncated": truncated, "reused": reused,
                    "quarantine_reasons": dict(reasons.most_common())},
        "traits": {t.trait: t.summary() for t in traits},
    }


def manifest(result: ScanResult, config: ScanConfig) -> dict:
    """What is needed to reproduce the scan: versions, model, vector and input hashes, settings."""
    return {
        "tool_version": __version__,
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__, "threads": torch.get_num_threads()},
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model": {"name": result.model_name, "spec": config.model,
                  "num_layers": int(result.vectors[0].directions.shape[0] - 1) if result.vectors else None},
        "device": result.device, "dtype": result.dtype,
        "vectors": {v.trait: {"layer": v.layer, "method": v.method, "model": v.model_name, "source": v.source,
                              "sha256": file_sha256(Path(v.source)), "calibration": asdict(v.calibration)}
                    for v in result.vectors},
        "inputs": [{"path": str(p), "sha256": file_sha256(p) if p.is_file() else None} for p in result.files],
        "settings": {k: v for k, v in asdict(config).items() if k not in ("inputs", "out")},
    }


def write_outputs(result: ScanResult, config: ScanConfig, out: Path) -> Path:
    """Write the four files atomically into `out`; returns `out`."""
    out.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    pq.write_table(scores_table(result), buffer)
    atomic_write_bytes(out / "scores.parquet", buffer.getvalue())
    atomic_write_text(out / "quarantine.jsonl",
                      "".join(json.dumps(q.to_json(), ensure_ascii=False) + "\n" for q in result.quarantined))
    atomic_write_text(out / "summary.json", json.dumps(summary(result), indent=2))
    atomic_write_text(out / "manifest.json", json.dumps(manifest(result, config), indent=2))
    return out
