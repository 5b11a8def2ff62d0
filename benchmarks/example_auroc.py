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

from auditor.scanning.evaluate import CONTROL, evaluate


def category_of(scan_dir: Path, labels: Path) -> tuple[dict, list[str]]:
    with open(labels, newline="") as fh:
        by_id = {row["id"]: row["category"] for row in csv.DictReader(fh)}
    table = pq.read_table(scan_dir / "scores.parquet").to_pydict()
    ids = [json.loads(line)["id"] for line in open(table["source"][0], encoding="utf-8")]
    return table, [by_id[ids[i]] for i in table["index"]]


@click.command()
@click.argument("scan_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--labels", default="examples/chat_mix.labels.csv", show_default=True, type=click.Path(exists=True))
@click.option("--min-auroc", default=0.8, show_default=True)
def main(scan_dir: Path, labels: str, min_auroc: float) -> None:
    table, categories = category_of(scan_dir, Path(labels))
    cats = np.array(categories)
    traits = [c[: -len("_score")] for c in table if c.endswith("_score")]
    kinds = sorted(set(categories))
    print(f"{'trait':14s} {'AUROC':>6s}  " + "  ".join(f"{k[:13]:>13s}" for k in kinds))
    failed = []
    for trait in traits:
        score = np.array(table[f"{trait}_score"])
        [result] = evaluate({trait: score}, [CONTROL if c == "benign" else c for c in categories])
        auroc = result.auroc
        means = "  ".join(f"{score[cats == k].mean():13.2f}" for k in kinds)
        print(f"{trait:14s} {auroc:6.3f}  {means}")
        if auroc < min_auroc:
            failed.append(trait)
    print("(columns after AUROC: mean score per category)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
