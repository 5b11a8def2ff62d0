"""Accuracy against cost of the base answers' length (`--max-new-tokens`), measured on the bundled example
and the public-data detection benchmarks.

    python benchmarks/answer_length.py [--values 16,32,64,128] [--data ../shared/data] [--work bench-work]
                                       [--example-only]

For each length: a default (generate-mode) scan of examples/chat_mix.jsonl, with the AUROC of each trait's
planted samples against the benign ones; and, for every benchmark of public_data.py, a generate-mode scan
of --prompts prompts with the AUROC of the benchmark's trait and the difference of the two files' mean dP.
Every scan starts from an empty cache (only the converted model is shared), so the seconds are what a
first scan costs. Prints a Markdown table and writes WORK/answer_length.json.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import click
from detection import run
from example_auroc import example_aurocs
from public_data import BENCHMARKS

from auditor.cache import cache_dir
from auditor.config import ScanConfig
from auditor.model.loading import load_model
from auditor.scanning import scan
from auditor.scanning.folder import ScanFolder

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "chat_mix.jsonl"


def fresh_cache(models: Path, work: Path, name: str) -> Path:
    """An empty cache folder sharing only the converted model; DATASET_AUDIT_CACHE points at it."""
    cache = work / "caches" / name
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    (cache / "models").symlink_to(models, target_is_directory=True)
    os.environ["DATASET_AUDIT_CACHE"] = str(cache)
    return cache


def example_run(n: int, models: Path, work: Path) -> dict:
    cache = fresh_cache(models, work, f"example-{n}")
    config = ScanConfig(inputs=[str(EXAMPLE)], max_new_tokens=n, out=str(work / f"example-{n}"))
    start = time.perf_counter()
    result = scan(config)
    seconds = time.perf_counter() - start
    ScanFolder(Path(config.out)).write(result.table(), [q.to_json() for q in result.quarantined], result.summary(),
                                       result.manifest(config))
    shutil.rmtree(cache, ignore_errors=True)
    aurocs = example_aurocs(Path(config.out))
    click.echo(f"example, {n} new tokens: {seconds:.0f} s, AUROC "
               + ", ".join(f"{t} {r['auroc']:.3f}" for t, r in aurocs.items()), err=True)
    return {"max_new_tokens": n, "seconds": round(seconds, 1),
            "auroc": {t: round(r["auroc"], 3) for t, r in aurocs.items()}}


def benchmark_run(bench, n: int, data: Path, models: Path, work: Path, prompts: int) -> dict:
    cache = fresh_cache(models, work, f"{bench.name}-{n}")
    per_side = prompts if bench.paired else prompts // 2
    result = run(bench, data, work, "generate", per_side, 16, n)
    shutil.rmtree(cache, ignore_errors=True)
    own = result["results"][bench.trait]
    return {"benchmark": bench.name, "trait": bench.trait, "max_new_tokens": n, "seconds": result["seconds"],
            "auroc": round(own.auroc, 3), "difference": round(own.difference.mean, 2),
            "difference_ci": [round(own.difference.low, 2), round(own.difference.high, 2)]}


def table(examples: list[dict], benches: list[dict]) -> str:
    values = [e["max_new_tokens"] for e in examples]
    lines = ["| data | trait | " + " | ".join(f"{n} tokens: AUROC / mean dP diff / s" for n in values) + " |",
             "|---|---|" + "---|" * len(values)]
    for trait in examples[0]["auroc"]:
        cells = [f"{e['auroc'][trait]:.3f} / – / {e['seconds']:.0f}" for e in examples]
        lines.append(f"| example (planted vs benign) | {trait} | " + " | ".join(cells) + " |")
    for name in dict.fromkeys(b["benchmark"] for b in benches):
        rows = [b for b in benches if b["benchmark"] == name]
        cells = [f"{b['auroc']:.3f} / {b['difference']:+.2f} / {b['seconds']:.0f}" for b in rows]
        lines.append(f"| {name} | {rows[0]['trait']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@click.command()
@click.option("--values", default="16,32,64,128", show_default=True, help="Comma-separated --max-new-tokens values.")
@click.option("--data", default="../shared/data", show_default=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path), help="The public datasets' folder.")
@click.option("--work", default="bench-work", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--prompts", default=100, show_default=True, help="Prompts per benchmark (as in detection.py).")
@click.option("--example-only", is_flag=True, help="Only the bundled example's scans (no public benchmarks).")
def main(values: str, data: Path, work: Path, prompts: int, example_only: bool) -> None:
    load_model("default")  # the converted model every run shares
    models = (cache_dir() / "models").resolve()
    work.mkdir(parents=True, exist_ok=True)
    examples, benches = [], []
    for n in (int(v) for v in values.split(",")):
        examples.append(example_run(n, models, work))
        for bench in () if example_only else BENCHMARKS:
            benches.append(benchmark_run(bench, n, data, models, work, prompts))
            b = benches[-1]
            click.echo(f"{b['benchmark']}, {n} new tokens: {b['seconds']:.0f} s, AUROC {b['auroc']}, "
                       f"difference {b['difference']:+.2f}", err=True)
    (work / "answer_length.json").write_text(json.dumps({"examples": examples, "benchmarks": benches}, indent=2))
    click.echo(table(examples, benches))


if __name__ == "__main__":
    main()
