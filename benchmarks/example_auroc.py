"""How well the scan ranks the bundled example's planted samples above the benign ones.

    python benchmarks/example_auroc.py SCAN_DIR [--labels examples/chat_mix.labels.csv]

SCAN_DIR is the output of `dataset-audit scan examples/chat_mix.jsonl --out SCAN_DIR`. For each
trait, AUROC of `<trait>_score` for that trait's planted samples against the benign ones, and the
mean score of every category (roleplay and underspecified queries are the hidden inducers).
Exits 1 if any trait's AUROC is under --min-auroc.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import click
import numpy as np
import pyarrow.parquet as pq

from auditor.evaluation.evaluate import CONTROL, evaluate

LABELS = Path(__file__).resolve().parent.parent / "examples" / "chat_mix.labels.csv"


def category_of(scan_dir: Path, labels: Path) -> tuple[dict, list[str]]:
    with open(labels, newline="") as fh:
        by_id = {row["id"]: row["category"] for row in csv.DictReader(fh)}
    table = pq.read_table(scan_dir / "scores.parquet").to_pydict()
    ids = [json.loads(line)["id"] for line in open(table["source"][0], encoding="utf-8")]
    return table, [by_id[ids[i]] for i in table["index"]]


def example_aurocs(scan_dir: Path, labels: Path = LABELS) -> dict[str, dict]:
    """Per trait: AUROC of its planted samples against the benign ones, and the mean score of every category."""
    table, categories = category_of(scan_dir, labels)
    cats = np.array(categories)
    out = {}
    for trait in (c[: -len("_score")] for c in table if c.endswith("_score")):
        score = np.array(table[f"{trait}_score"])
        [result] = evaluate({trait: score}, [CONTROL if c == "benign" else c for c in categories])
        out[trait] = {"auroc": result.auroc, "means": {k: float(score[cats == k].mean()) for k in sorted(set(cats))}}
    return out


@click.command()
@click.argument("scan_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--labels", default=str(LABELS), show_default=True, type=click.Path(exists=True, path_type=Path))
@click.option("--min-auroc", default=0.8, show_default=True)
def main(scan_dir: Path, labels: Path, min_auroc: float) -> None:
    results = example_aurocs(scan_dir, labels)
    kinds = list(next(iter(results.values()))["means"])
    print(f"{'trait':14s} {'AUROC':>6s}  " + "  ".join(f"{k[:13]:>13s}" for k in kinds))
    failed = []
    for trait, r in results.items():
        print(f"{trait:14s} {r['auroc']:6.3f}  " + "  ".join(f"{r['means'][k]:13.2f}" for k in kinds))
        if r["auroc"] < min_auroc:
            failed.append(trait)
    print("(columns after AUROC: mean score per category)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
