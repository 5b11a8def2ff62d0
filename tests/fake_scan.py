"""Test helpers for gating, baseline, CI outputs and filtering: data files, and a scan without a model.

`PlantedModel` runs the real pipeline (`auditor.pipeline.scan`: reading, quarantine, baseline reuse,
scoring, outputs) with the model, tokenizer and activations replaced: each response text gets the
score planted for it (0.0 if none), so tests know exactly which samples break which gate.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

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
    columns: dict[str, list] = {"index": [], "source": [], "line": [], "sample_id": [], "prompt": [],
                                "response": [], "conversation": [], "truncated": [], "tags": []}
    for t in traits:
        columns.update({f"{t}_dp": [], f"{t}_score": [], f"{t}_flagged": []})
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
    return pa.table(columns)


class PlantedModel:
    """Stands in for the model: `scores[response text][trait]` is the score that response gets."""

    def __init__(self, scores: dict[str, dict[str, float]] | None = None):
        self.scores = scores or {}
        self.texts: list[str] = []
        self.computed = 0  # samples scored (forward passes a real model would have made)
        self.loads = 0

    def install(self, monkeypatch) -> PlantedModel:
        import auditor.pipeline as pipeline
        from auditor.vectors import PersonaVector, builtin_vector_path

        def load_model(*_args, **_kwargs):
            self.loads += 1
            return SimpleNamespace(name="planted", device="cpu", dtype="float32", tokenizer=None)

        monkeypatch.setattr(pipeline, "load_model", load_model)
        monkeypatch.setattr(pipeline, "load_vectors", lambda lm, config, show: [
            PersonaVector.load(builtin_vector_path(t)) for t in config.traits])
        monkeypatch.setattr(pipeline, "encode_prompt", lambda tokenizer, messages: [0])
        monkeypatch.setattr(pipeline, "encode_response", self._encode)
        monkeypatch.setattr(pipeline, "_projections", self._projections)
        return self

    def _encode(self, _tokenizer, text: str) -> list[int]:
        self.texts.append(text)
        return [len(self.texts) - 1]

    def _projections(self, _lm, pairs, vectors, _config, desc: str, _show, _cached=True, _known=None) -> np.ndarray:
        """Projections that give each planted score: neutral mean + score * calibration gap."""
        if desc == "scoring samples":
            self.computed += len(pairs)
        planted = [self.scores.get(self.texts[response[0]], {}) for _, response in pairs]
        return np.array([[v.calibration.neutral_mean + p.get(v.trait, 0.0) * v.calibration.gap for v in vectors]
                         for p in planted], dtype=np.float64).reshape(len(pairs), len(vectors))
