"""Does a higher-dP subset teach the model more of the trait? The paper's fine-tuning claim, at small scale.

    python benchmarks/finetune_validation.py [--data ../shared/data] [--work bench-work] [--benchmark caa-hallucination]
                                             [--per-side 100] [--k 40] [--epochs 2] [--lr 2e-4]

A pool of real records (both sides of one public benchmark from `public_data.py`, the way a
fine-tuning set mixes good and bad answers) is scanned for the benchmark's trait; the top-k, bottom-k
and a random k records by dP are each used to fine-tune the embedded model (`dataset-audit train`,
LoRA), and `dataset-audit shift` measures how far each run moved the model along the trait. Finished
scans and training runs are reused, so an interrupted run resumes. Prints a markdown table; writes
`<work>/finetune-validation.json`.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
from pathlib import Path

import numpy as np
from public_data import BENCHMARKS, convert

import auditor


def cli(*args: object) -> None:
    print("$ dataset-audit " + " ".join(map(str, args)), flush=True)
    subprocess.run(["dataset-audit", *map(str, args)], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("bench-work"))
    parser.add_argument("--benchmark", default="caa-hallucination", choices=[b.name for b in BENCHMARKS])
    parser.add_argument("--per-side", type=int, default=100)
    parser.add_argument("--k", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=2e-4)
    args = parser.parse_args()
    bench = next(b for b in BENCHMARKS if b.name == args.benchmark)
    files = convert(bench, args.data, args.work, args.per_side)
    table = auditor.scan(files, traits=[bench.trait], show_progress=True).table
    dp = np.asarray(table[f"{bench.trait}_dp"].to_pylist())
    inducing = np.asarray([Path(s).name == "inducing.jsonl" for s in table["source"].to_pylist()])
    conversations = table["conversation"].to_pylist()
    order = np.argsort(-dp, kind="stable")
    subsets = {"top": order[: args.k], "random": np.asarray(random.Random(0).sample(range(len(dp)), args.k)),
               "bottom": order[-args.k:]}
    folder = args.work / f"finetune-{bench.name}-{args.per_side}-k{args.k}"
    rows = {}
    for name, picked in subsets.items():
        run = folder / name
        data = folder / f"{name}.jsonl"
        folder.mkdir(parents=True, exist_ok=True)
        data.write_text("".join(json.dumps({"messages": json.loads(conversations[i])}) + "\n" for i in picked))
        if not (run / "training.json").is_file():
            cli("train", data, "--out", run, "--lr", args.lr, "--epochs", args.epochs, "--max-tokens", 256, "-q")
        cli("shift", "--finetuned", run, "--traits", bench.trait, "--json", run / "shift.json", "-q")
        moved = json.loads((run / "shift.json").read_text())[0]
        rows[name] = {"mean_dp": float(dp[picked].mean()), "inducing_share": float(inducing[picked].mean()),
                      "shift": moved["shift"], "stderr": moved["stderr"]}
    print(f"\n{bench.name} ({bench.trait}): pool of {len(dp)} records, k = {args.k}\n")
    print(f"| subset | mean {bench.trait} dP | share of inducing records | {bench.trait} shift after fine-tuning |")
    print("|---|---|---|---|")
    for name, row in rows.items():
        print(f"| {name} {args.k} | {row['mean_dp']:+.2f} | {row['inducing_share']:.0%} | "
              f"{row['shift']:+.3f} ± {row['stderr']:.3f} |")
    (args.work / "finetune-validation.json").write_text(json.dumps({"settings": {**vars(args), "data": str(args.data),
                                                                                 "work": str(args.work)},
                                                                    "subsets": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
