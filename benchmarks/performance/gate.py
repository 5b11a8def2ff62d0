"""Section `gate`: a pre-merge gate, 500 new records on a 20,000-record --baseline."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from .common import DEFAULT_TRAITS, EXAMPLE, log
from .processes import fresh_cache, synthetic_records
from .startup import command_seconds


def baseline_folder(records_file: Path, folder: Path) -> int:
    """A scan folder standing for an earlier default scan of `records_file`: its scores.parquet has every record's
    sample_id (and placeholder scores), its manifest the default scoring settings. What a --baseline run reads."""
    from dataclasses import asdict

    from auditor.config import DECODING_RULE, ScanConfig
    from auditor.data import Record, read_records
    from auditor.scanning.folder import ScanFolder
    from auditor.scanning.result import scores_table
    from auditor.scanning.scoring import TraitScores
    from auditor.vectors.persona import PersonaVector, builtin_vector_path

    records = [r for r in read_records(records_file) if isinstance(r, Record)]
    rng = np.random.default_rng(0)
    traits = []
    for trait in DEFAULT_TRAITS:
        score = rng.normal(0.0, 0.2, len(records))
        layer = PersonaVector.load(builtin_vector_path(trait)).layer
        traits.append(TraitScores(trait, score * 10, score, score >= 0.5, 0.5, layer))
    table = scores_table(records, traits, np.zeros(len(records), dtype=bool), [[] for _ in records])
    config = ScanConfig(inputs=[str(records_file)])
    manifest = {"decoding_rule": DECODING_RULE, "settings": {k: v for k, v in asdict(config).items()
                                                            if k not in ("inputs", "out")}}
    folder.mkdir(parents=True, exist_ok=True)
    ScanFolder(folder).write(table, [], {"records": {"total": len(records)}}, manifest)
    return len(records)


def bench_gate(sizes: dict, shared: Path, work: Path) -> dict:
    """A pre-merge gate: a 20,000-record dataset scanned before, 500 new records added; time from process start
    to the exit code of `scan --baseline ... --fail-on ...` (default settings: generate mode, three traits)."""
    old, new = sizes["gate_baseline_records"], sizes["gate_new_records"]
    data = work / "gate.jsonl"
    synthetic_records(data, old)
    n = baseline_folder(data, work / "gate-baseline")
    example = EXAMPLE.read_text(encoding="utf-8").splitlines()
    added = []
    for i in range(new):  # the example's records, each made distinct
        record = json.loads(example[i % len(example)])
        record["messages"][-1]["content"] += f" (v{i})" if i >= len(example) else ""
        added.append(json.dumps(record))
    with open(data, "a", encoding="utf-8") as fh:
        fh.write("\n".join(added) + "\n")
    cache = fresh_cache(shared, work, "cache-gate")
    log(f"gate: {n} records in the baseline, {new} new; scan --baseline in a fresh process, empty cache")
    result = command_seconds(["scan", str(data), "--baseline", str(work / "gate-baseline" / "scores.parquet"),
                              "--fail-on", "evil:flagged>5%", "--out", str(work / "gate-out"), "-q"], cache, work, 1)
    summary = json.loads((work / "gate-out" / "summary.json").read_text())
    shutil.rmtree(cache, ignore_errors=True)
    log(f"  {result['median_s']} s to exit code {result['exit']}; {summary['records']}")
    return {"baseline_records": n, "new_records": new, "seconds_to_verdict": result["median_s"],
            "exit": result["exit"], "records": summary["records"],
            "note": "the baseline folder stands for an earlier default scan of the 20,000 records (their sample ids, "
                    "placeholder scores, the default settings); the 500 new records are scored by the model: base "
                    "answers generated, nothing cached. Whole process: start-up, reading, model load, scoring, "
                    "outputs and report"}
