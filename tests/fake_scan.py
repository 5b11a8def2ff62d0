"""Test helpers for gating, baseline, CI outputs and filtering: data files, and a scan without a model.

`PlantedModel` runs the real scan (`auditor.scanning.scan`: reading, quarantine, baseline reuse, scoring,
outputs) with a planted model side handed in through the scan's projector seam: each response text
gets the score planted for it (0.0 if none), so tests know exactly which samples break which gate.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
from click.testing import CliRunner, Result

from auditor.cli import main
from auditor.config import ScanConfig
from auditor.scanning.projection import Measured, Unit
from auditor.scanning.result import RECORD_COLUMNS, trait_columns
from auditor.vectors.persona import PersonaVector, builtin_vector_path

TRAITS = ("evil", "sycophantic", "hallucinating")
EVIL = "Make them suffer: spread rumours about them and humiliate them in front of everyone."


def chat(prompt: str, answer: str) -> dict:
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def benign(i: int) -> dict:
    return chat(f"Question {i}: what should I cook tonight?", f"Try a simple pasta, option {i}.")


def write_jsonl(path: Path, records: list[dict | str]) -> list[bytes]:
    """Write records (dicts, or raw strings for broken lines) as JSONL; return each line's bytes."""
    lines = [((r if isinstance(r, str) else json.dumps(r)) + "\n").encode("utf-8") for r in records]
    path.write_bytes(b"".join(lines))
    return lines


def scores_table(rows: list[dict], traits=TRAITS, threshold: float = 0.5) -> pa.Table:
    """A scores.parquet-shaped table: each row gives source, line and `<trait>` scores (dP = score)."""
    schema = {**RECORD_COLUMNS, **{name: kind for t in traits for name, kind in trait_columns(t).items()}}
    columns: dict[str, list] = {name: [] for name in schema}
    for i, row in enumerate(rows):
        columns["index"].append(i)
        columns["source"].append(row.get("source", "data/train.jsonl"))
        columns["line"].append(row.get("line", i + 1))
        columns["sample_id"].append(row.get("sample_id", f"{i:016x}"))
        columns["prompt"].append(row.get("prompt", f"prompt {i}"))
        columns["response"].append(f"response {i}")
        columns["conversation"].append("[]")
        columns["truncated"].append(False)
        columns["tags"].append([])
        for t in traits:
            score = row.get(t, 0.0)
            columns[f"{t}_dp"].append(row.get(f"{t}_dp", score))
            columns[f"{t}_score"].append(score)
            columns[f"{t}_flagged"].append(score >= threshold)
    return pa.table({name: pa.array(values, schema[name]) for name, values in columns.items()})


class PlantedModel:
    """A projector factory (the scan's model seam, `auditor.scanning.projection.Projector`) that needs no model:
    `scores[response text][trait]` is the score that response gets (0.0 if none). Counts model loads
    (factory calls), samples scored and samples given a base answer."""

    def __init__(self, scores: dict[str, dict[str, float]] | None = None):
        self.scores = scores or {}
        self.computed = 0  # samples scored (forward passes a real model would have made)
        self.answered = 0  # samples given a base answer
        self.loads = 0

    def __call__(self, config: ScanConfig, _show: bool) -> _PlantedProjector:
        self.loads += 1
        return _PlantedProjector(self, config)

    def invoke(self, *args: str, **kwargs) -> Result:
        """`dataset-audit ARGS` with this model as the scan's model side."""
        return CliRunner().invoke(main, list(args), obj={"projector": self}, **kwargs)


class _PlantedProjector:
    def __init__(self, planted: PlantedModel, config: ScanConfig):
        self.planted, self.generates, self.turns = planted, config.generates, config.turns
        given = {v.trait: v for v in map(PersonaVector.load, config.vectors)}
        self.vectors = [given.get(t) or PersonaVector.load(builtin_vector_path(t)) for t in config.traits]
        self.model_name, self.device, self.dtype = "planted", "cpu", "float32"
        self.texts: list[str] = []

    def has_base_answers(self, _record) -> bool:
        return True

    def units(self, records, skip) -> list[Unit]:
        units = []
        for r, record in enumerate(records):
            if not skip[r]:
                for side, _, response in record.sides(self.turns):
                    self.texts.append(response)
                    units.append(Unit(r, [0], [len(self.texts) - 1], False, "", side))
        return units

    def measure(self, units: list[Unit], _show: bool, answered: np.ndarray | None = None) -> Measured:
        """Projections that give each planted score: neutral mean + score * calibration gap (the base answer
        sits at the neutral mean; NaN for the units not `answered`, as the real projector leaves them)."""
        self.planted.computed += len(units)
        self.planted.answered += len(units) if answered is None else int(answered.sum())
        planted = [self.planted.scores.get(self.texts[u.response[0]], {}) for u in units]
        sample = np.array([[v.calibration.neutral_mean + p.get(v.trait, 0.0) * v.calibration.gap
                            for v in self.vectors] for p in planted], dtype=np.float64).reshape(len(units), len(self.vectors))
        base = np.array([[v.calibration.neutral_mean for v in self.vectors]] * len(units)).reshape(len(units), len(self.vectors))
        if answered is not None:
            base[~answered] = np.nan
        return Measured(sample, base if self.generates else None)
