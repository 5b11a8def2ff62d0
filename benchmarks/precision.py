"""Do the scores hold in bfloat16? The evidence `--dtype auto` follows on CPUs (auditor/model/precision.py).

    python benchmarks/precision.py [--data ../shared/data] [--work bench-work] [--prompts 100]
                                   [--out benchmarks/results/precision.json] [--evidence auditor/model/precision.json]

Scans the bundled example (generate mode, every record) and each detection benchmark of public_data.py (generate
mode, --prompts prompts as in benchmarks/detection.py) once in float32 and once in bfloat16, and compares:
- AUROC: the example's planted samples of each trait against the benign ones, and each benchmark's inducing against
  control records for its own trait. bfloat16 holds for a check when its AUROC lies inside float32's 95% bootstrap
  interval (records resampled within each class, 2,000 rounds);
- how often the two agree on which records are flagged, and the Pearson r of their dP;
- the seconds each scan took (a side figure: the timing benchmark is benchmarks/performance).

Writes every number to --out; with --evidence also the summary that `--dtype auto` reads: `holds` is true only when
every check holds, and `use` only when it holds and the performance benchmark's generate-mode scan (section `scan`
of benchmarks/results/performance.json) ran at least 10% faster in bfloat16 than in float32 on this machine.
`--evidence-only` writes that summary from the two results files without measuring anything.
Base answers and projections are cached (DATASET_AUDIT_CACHE), so a rerun takes seconds.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import click
import numpy as np
from example_auroc import LABELS
from performance.common import commit, machine_info
from public_data import BENCHMARKS, convert

from auditor.config import DEFAULT_TRAITS, ScanConfig
from auditor.evaluation.evaluate import CONTROL, labels_from_files
from auditor.evaluation.stats import bootstrap_auroc
from auditor.files import atomic_write_json
from auditor.scanning import scan

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "chat_mix.jsonl"
DTYPES = ("float32", "bfloat16")
PERFORMANCE = ROOT / "benchmarks" / "results" / "performance.json"
MIN_SPEEDUP = 1.1  # bfloat16 is used only where it is clearly faster


def scanned(inputs: list[Path], traits: list[str], dtype: str, batch_size: int) -> tuple[dict, float]:
    """Scan `inputs` in `dtype`; per trait its dP, flags (bool) and side of concern, and the seconds taken."""
    config = ScanConfig(inputs=[str(p) for p in inputs], traits=traits, dtype=dtype, batch_size=batch_size)
    start = time.perf_counter()
    result = scan(config)
    seconds = time.perf_counter() - start
    return {"records": result.records, "traits": {t.trait: t for t in result.traits}}, seconds


def compare(name: str, trait: str, positive: np.ndarray, runs: dict, keep: np.ndarray | None = None) -> dict:
    """One check on the records `keep` (all by default): float32's AUROC with its interval, bfloat16's AUROC, how
    often the two flag the same records, and the Pearson r of their dP."""
    fp32, bf16 = (runs[d]["traits"][trait] for d in DTYPES)
    keep = np.ones(len(fp32.dp), dtype=bool) if keep is None else keep
    reference = bootstrap_auroc(positive, fp32.sign * fp32.dp[keep])
    auroc = bootstrap_auroc(positive, bf16.sign * bf16.dp[keep], rounds=0).mean
    return {"check": name, "trait": trait, "n": [int(positive.sum()), int((~positive).sum())],
            "auroc_float32": [round(reference.mean, 3), round(reference.low, 3), round(reference.high, 3)],
            "auroc_bfloat16": round(auroc, 3), "holds": bool(reference.low <= auroc <= reference.high),
            "flag_agreement": round(float(np.mean(fp32.flagged[keep] == bf16.flagged[keep])), 4),
            "dp_pearson_r": round(float(np.corrcoef(fp32.dp[keep], bf16.dp[keep])[0, 1]), 4)}


def example_checks(batch_size: int) -> tuple[list[dict], dict]:
    """The example's planted samples of each trait against the benign ones (examples/chat_mix.labels.csv)."""
    runs, seconds = {}, {}
    for dtype in DTYPES:
        runs[dtype], seconds[dtype] = scanned([EXAMPLE], list(DEFAULT_TRAITS), dtype, batch_size)
        click.echo(f"example {dtype}: {seconds[dtype]:.0f} s", err=True)
    with open(LABELS, newline="") as fh:
        by_id = {row["id"]: row["category"] for row in csv.DictReader(fh)}
    ids = [json.loads(line)["id"] for line in open(EXAMPLE, encoding="utf-8")]
    categories = np.array([by_id[ids[r.index]] for r in runs["float32"]["records"]])
    checks = []
    for trait in DEFAULT_TRAITS:
        keep = (categories == trait) | (categories == "benign")
        checks.append(compare("example", trait, categories[keep] == trait, runs, keep))
    return checks, seconds


def benchmark_checks(data: Path, work: Path, prompts: int, batch_size: int,
                     only: tuple[str, ...]) -> tuple[list[dict], dict]:
    checks, seconds = [], {d: 0.0 for d in DTYPES}
    for bench in (b for b in BENCHMARKS if not only or b.name in only):
        inducing, control = convert(bench, data, work, prompts if bench.paired else prompts // 2)
        runs = {}
        for dtype in DTYPES:
            runs[dtype], took = scanned([inducing, control], [bench.trait], dtype, batch_size)
            seconds[dtype] += took
        positive = np.array(labels_from_files(runs["float32"]["records"], [control])) != CONTROL
        checks.append(compare(bench.name, bench.trait, positive, runs))
        click.echo(f"{bench.name}: {checks[-1]}", err=True)
    return checks, seconds


@click.command()
@click.option("--data", default="../shared/data", show_default=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path), help="The public datasets' folder.")
@click.option("--work", default="bench-work", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--prompts", default=100, show_default=True, help="Prompts per benchmark, as in detection.py.")
@click.option("--batch-size", default=16, show_default=True)
@click.option("--only", multiple=True, type=click.Choice([b.name for b in BENCHMARKS]),
              help="Run only these benchmarks (the evidence then names the checks it rests on).")
@click.option("--out", default=str(ROOT / "benchmarks" / "results" / "precision.json"), show_default=True,
              type=click.Path(dir_okay=False, path_type=Path))
@click.option("--evidence-only", is_flag=True,
              help="Measure nothing: write --evidence from --out and performance.json.")
@click.option("--evidence", type=click.Path(dir_okay=False, path_type=Path),
              help="Also write the summary `--dtype auto` reads (the shipped one: auditor/model/precision.json).")
def main(data: Path, work: Path, prompts: int, batch_size: int, only: tuple[str, ...], out: Path,
         evidence_only: bool, evidence: Path | None) -> None:
    if evidence_only:
        write_evidence(out, evidence or ROOT / "auditor" / "model" / "precision.json")
        return
    from auditor.model.precision import cpu_has_native_bf16

    checks, seconds = example_checks(batch_size)
    more, bench_seconds = benchmark_checks(data, work, prompts, batch_size, only)
    checks += more
    held = sum(c["holds"] for c in checks)
    summary = {"holds": held == len(checks), "checks": len(checks), "held": held,
               "failed": [f"{c['check']} ({c['trait']})" for c in checks if not c["holds"]],
               "checked": [f"{c['check']} ({c['trait']})" for c in checks],
               "flag_agreement_min": min(c["flag_agreement"] for c in checks),
               "dp_pearson_r_min": min(c["dp_pearson_r"] for c in checks),
               "commit": commit(), "native_bf16_cpu": cpu_has_native_bf16(),
               "rule": "bfloat16 holds when every check's bfloat16 AUROC lies inside float32's 95% bootstrap interval"}
    command = ("python benchmarks/precision.py" + (f" --prompts {prompts}" if prompts != 100 else "")
               + "".join(f" --only {name}" for name in only))
    results = {"model": "SmolLM2-135M-Instruct", "bfloat16": summary, "checks": checks,
               "provenance": {"command": command, "commit": summary["commit"], "machine": machine_info("cpu")},
               "seconds": {"example": seconds, "benchmarks": bench_seconds},
               "note": "seconds: wall time of whole scans (model load, generation, scoring) in this run; the speed "
                       "figures are benchmarks/performance's"}
    atomic_write_json(out, results)
    click.echo(f"{held}/{len(checks)} checks hold in bfloat16 -> {out}")
    if evidence:
        write_evidence(out, evidence)


def write_evidence(results: Path, evidence: Path, performance: Path = PERFORMANCE) -> None:
    """The summary `--dtype auto` reads: the scores hold (this file's checks) and bfloat16 is faster (performance's)."""
    summary = json.loads(results.read_text(encoding="utf-8"))["bfloat16"]
    scan = json.loads(performance.read_text(encoding="utf-8"))["sections"]["scan"]
    speedup = round(scan["ours_s"] / scan["bf16"]["ours_s"], 2)
    summary = {**summary, "speedup": speedup, "speed_from": f"{performance.relative_to(ROOT)} section scan "
               f"({scan['ours_s']} s float32, {scan['bf16']['ours_s']} s bfloat16)",
               "use": bool(summary["holds"] and speedup >= MIN_SPEEDUP)}
    atomic_write_json(evidence, {"model": "SmolLM2-135M-Instruct", "bfloat16": summary})
    click.echo(f"evidence -> {evidence}: holds {summary['holds']}, {speedup}x float32's speed, use {summary['use']}")


if __name__ == "__main__":
    main()
