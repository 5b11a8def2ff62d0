"""Vectors fitted on labelled pairs (`dataset-audit extract TRAIT --from-pairs`), per public benchmark: fit on
one half of the pairs, score the other half with `scan --vectors`, and compare with the shipped vector.

    python benchmarks/pairs_vectors.py [--data ../shared/data] [--work bench-work] [--pairs 100] [--only NAME]

For every paired benchmark of public_data.py: --pairs pairs (drawn as detection.py draws them) are written
as one file of {prompt messages, trait answer, neutral answer}; `extract NAME-pairs --from-pairs` fits on
the first half (its 5-fold cross-validated AUROC per layer is in the vector's metadata); the second half
is scanned in cheap mode with that vector and with the shipped one, and evaluated (AUROC, mean-dP
difference). Prints a Markdown table and writes WORK/pairs_vectors.json.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.testing import CliRunner
from public_data import BENCHMARKS, convert

from auditor.cli import main as dataset_audit
from auditor.config import ScanConfig
from auditor.evaluation.evaluate import evaluate_scan
from auditor.traits import load_trait
from auditor.vectors.persona import PersonaVector


def _pairs(inducing: Path, control: Path) -> list[dict]:
    """The benchmark's pairs: each prompt with its inducing (trait) and control (neutral) answer."""
    rows = []
    for a, b in zip(inducing.read_text().splitlines(), control.read_text().splitlines()):
        ma, mb = json.loads(a)["messages"], json.loads(b)["messages"]
        rows.append({"messages": ma[:-1], "trait": ma[-1]["content"], "neutral": mb[-1]["content"]})
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _chats(path: Path, rows: list[dict], side: str) -> Path:
    return _write(path, [{"messages": r["messages"] + [{"role": "assistant", "content": r[side]}]} for r in rows])


def bench_pairs(bench, data: Path, work: Path, n: int) -> dict:
    inducing, control = convert(bench, data, work, n)
    rows = _pairs(inducing, control)
    folder = work / f"pairs-{bench.name}-{n}"
    folder.mkdir(parents=True, exist_ok=True)
    train, test = rows[: len(rows) // 2], rows[len(rows) // 2 :]  # n, or fewer where the benchmark has fewer
    name = f"{bench.trait}-{bench.name}"
    flags = load_trait(bench.trait).flags
    out = folder / f"{name}.safetensors"
    # The trait answer of a pair is the one that shows the trait; for a trait flagged below (refusal) that is the
    # control side (the refusing reply), and the inducing side is the neutral one.
    pairs_file = _write(folder / "train.jsonl", [{**r, "trait": r["neutral"], "neutral": r["trait"]} for r in train]
                        if flags == "below" else train)
    result = CliRunner().invoke(dataset_audit, ["extract", name, "--from-pairs", str(pairs_file), "--flags", flags,
                                                "--out", str(out), "--no-report", "-q"])
    if result.exit_code:
        raise click.ClickException(result.output)
    vector = PersonaVector.load(out)
    held = (_chats(folder / "test-inducing.jsonl", test, "trait"),
            _chats(folder / "test-control.jsonl", test, "neutral"))
    scores = {}
    for label, traits, vectors in (("fitted", [name], [str(out)]), ("shipped", [bench.trait], [])):
        config = ScanConfig(inputs=[str(held[0])], traits=traits, vectors=vectors, base_responses="none")
        (result,) = evaluate_scan(config, [held[1]], "label").results
        scores[label] = {"auroc": round(result.auroc, 3), "difference": round(result.difference.mean, 2),
                         "ci": [round(result.difference.low, 2), round(result.difference.high, 2)]}
    stats = vector.layer_stats[vector.layer]
    row = {"benchmark": bench.name, "trait": bench.trait, "train_pairs": len(train), "test_pairs": len(test),
           "layer": vector.layer, "cv_auroc": round(stats["auroc"], 3),
           "cv_auroc_folds": [round(stats["cv_auroc_mean"], 3), round(stats["cv_auroc_std"], 3)], **scores}
    click.echo(f"{bench.name}: layer {row['layer']}, CV AUROC {row['cv_auroc']}, held-out AUROC fitted "
               f"{scores['fitted']['auroc']} vs shipped {scores['shipped']['auroc']}", err=True)
    return row


@click.command()
@click.option("--data", default="../shared/data", show_default=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--work", default="bench-work", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--pairs", default=100, show_default=True, help="Pairs per benchmark: half to fit, half to test.")
@click.option("--only", multiple=True, type=click.Choice([b.name for b in BENCHMARKS if b.paired]))
def main(data: Path, work: Path, pairs: int, only: tuple[str, ...]) -> None:
    rows = [bench_pairs(b, data, work, pairs) for b in BENCHMARKS if b.paired and (not only or b.name in only)]
    (work / "pairs_vectors.json").write_text(json.dumps(rows, indent=2))
    click.echo("| benchmark | trait | fitted on | layer | 5-fold CV AUROC | held-out AUROC, fitted vector | "
               "held-out AUROC, shipped vector | held-out mean dP difference, fitted |")
    click.echo("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        f = r["fitted"]
        click.echo(f"| {r['benchmark']} | {r['trait']} | {r['train_pairs']} pairs | {r['layer']} | {r['cv_auroc']:.3f} "
                   f"| {f['auroc']:.3f} | {r['shipped']['auroc']:.3f} | {f['difference']:+.2f} "
                   f"[{f['ci'][0]:+.2f}, {f['ci'][1]:+.2f}] |")


if __name__ == "__main__":
    main()
