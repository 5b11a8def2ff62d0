"""Section `gate`: a pre-merge gate, 500 new records on a 20,000-record --baseline, with every new record answered by
the model and with `--base-sample 64` (the same gates: their decisions must agree)."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from .common import DEFAULT_TRAITS, EXAMPLE, log
from .processes import fresh_cache, synthetic_records
from .startup import command_seconds

BASE_SAMPLE = 64
GATES = ("evil:flagged>5%", "evil:mean_dp>0.5")


def baseline_folder(records_file: Path, folder: Path, base_sample: int | None = None) -> int:
    """A scan folder standing for an earlier default scan of `records_file` (with `base_sample`, one with
    --base-sample): its scores.parquet has every record's sample_id (and placeholder scores), its manifest the
    scoring settings. What a --baseline run reads."""
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
    none = np.zeros(len(records), dtype=bool)
    table = scores_table(records, traits, none, [[] for _ in records], estimated=none if base_sample else None)
    config = ScanConfig(inputs=[str(records_file)], base_sample=base_sample)
    manifest = {"decoding_rule": DECODING_RULE, "settings": {k: v for k, v in asdict(config).items()
                                                            if k not in ("inputs", "out")}}
    folder.mkdir(parents=True, exist_ok=True)
    ScanFolder(folder).write(table, [], {"records": {"total": len(records)}}, manifest)
    return len(records)


def gate_run(data: Path, baseline: Path, n: int, shared: Path, work: Path, name: str, base_sample: int | None) -> dict:
    """One `scan --baseline ... --fail-on ...` in a fresh process with an empty cache (the baseline folder holds the
    first `n` records of `data`): seconds to the exit code, and each gate's decision (from --junit)."""
    cache, junit = fresh_cache(shared, work, f"cache-{name}"), work / f"{name}.xml"
    sample = ["--base-sample", str(base_sample)] if base_sample else []
    gates = [arg for gate in GATES for arg in ("--fail-on", gate)]
    result = command_seconds(["scan", str(data), "--baseline", str(baseline / "scores.parquet"), *sample, *gates,
                              "--junit", str(junit), "--out", str(work / f"{name}-out"), "-q"], cache, work, 1)
    out = work / f"{name}-out"
    summary = json.loads((out / "summary.json").read_text())
    shutil.rmtree(cache, ignore_errors=True)
    failed = {case.get("name"): case.find("failure") is not None for case in ET.parse(junit).getroot().iter("testcase")}
    table = pq.read_table(out / "scores.parquet")
    new = table.column("index").to_numpy() >= n  # the records appended after the baseline's, which the gates see
    log(f"  {name}: {result['median_s']} s to exit code {result['exit']}; gates failed: {failed}")
    return {"seconds_to_verdict": result["median_s"], "exit": result["exit"],
            "records": summary["records"], "gates_failed": failed,
            "new_mean_dp": {t: round(float(table.column(f"{t}_dp").to_numpy()[new].mean()), 4)
                            for t in summary["traits"]},
            "estimate": {t: v["base_sample"] for t, v in summary["traits"].items() if "base_sample" in v}}


def bench_gate(sizes: dict, shared: Path, work: Path) -> dict:
    """A pre-merge gate: a 20,000-record dataset scanned before, 500 new records added; time from process start
    to the exit code of `scan --baseline ... --fail-on ...` (default settings: generate mode, three traits), with
    every new record answered by the model, then with --base-sample 64; both must reach the same decisions."""
    old, new = sizes["gate_baseline_records"], sizes["gate_new_records"]
    data = work / "gate.jsonl"
    synthetic_records(data, old)
    n = baseline_folder(data, work / "gate-baseline")
    baseline_folder(data, work / "gate-sampled-baseline", BASE_SAMPLE)
    example = EXAMPLE.read_text(encoding="utf-8").splitlines()
    added = []
    for i in range(new):  # the example's records, each made distinct
        record = json.loads(example[i % len(example)])
        record["messages"][-1]["content"] += f" (v{i})" if i >= len(example) else ""
        added.append(json.dumps(record))
    with open(data, "a", encoding="utf-8") as fh:
        fh.write("\n".join(added) + "\n")
    log(f"gate: {n} records in the baseline, {new} new; scan --baseline in a fresh process, empty cache; gates "
        f"{', '.join(GATES)}")
    full = gate_run(data, work / "gate-baseline", n, shared, work, "gate", None)
    sampled = gate_run(data, work / "gate-sampled-baseline", n, shared, work, "gate-sampled", BASE_SAMPLE)
    same = full["gates_failed"] == sampled["gates_failed"] and full["exit"] == sampled["exit"]
    log(f"  same decisions with --base-sample {BASE_SAMPLE}: {same}")
    return {"baseline_records": n, "new_records": new, "gates": list(GATES),
            "seconds_to_verdict": full["seconds_to_verdict"], "exit": full["exit"], "records": full["records"],
            "gates_failed": full["gates_failed"], "new_mean_dp": full["new_mean_dp"],
            "base_sample": {"n": BASE_SAMPLE, **{k: sampled[k] for k in ("seconds_to_verdict", "exit", "records",
                                                                         "gates_failed", "new_mean_dp", "estimate")},
                            "same_decisions": same},
            "note": "the baseline folder stands for an earlier default scan of the 20,000 records (their sample ids, "
                    "placeholder scores, the default settings; for the --base-sample run, made with it); the 500 new "
                    "records are scored by the model, nothing cached: every one's base answer generated, then only "
                    f"those of a sample of {BASE_SAMPLE} (with fewer new records, the --base-sample run is a full "
                    "one). Whole process: start-up, reading, model load, scoring, outputs and report"}
