"""Detection on public labelled data: does dP rank trait-inducing samples above their controls?

    python benchmarks/detection.py [--data ../shared/data] [--work bench-work] [--prompts 100] [--none-n 300]

For every benchmark in public_data.py, writes an inducing and a control chat JSONL under --work,
scans both with the embedded model and reports, per trait, sample-level AUROC and precision at
the top 5% / 10% by dP, and each file's mean dP with a 95% bootstrap interval. For paired data
(two answers to one prompt) also the share of pairs whose inducing answer has the higher dP; that
order is the same in both modes, since both answers are compared with the same base answer. Runs the
`--base-responses generate` and `none` modes on the same records (--prompts distinct prompts per
benchmark), and optionally `none` on --none-n records per side. Prints Markdown tables (the README's Validation section)
and writes every number to WORK/detection.json. Scores are cached (DATASET_AUDIT_CACHE), so a
second run takes seconds.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import click
import numpy as np
from public_data import BENCHMARKS, Benchmark, convert

from auditor.config import DEFAULT_TRAITS as TRAITS
from auditor.config import ScanConfig
from auditor.evaluation.evaluate import CONTROL, INDUCING, TraitEvaluation, evaluate, labels_from_files
from auditor.scanning import scan

# What the shipped card says beyond its numbers (shown with them in the report and `traits show`).
NOTES = {"hallucinating": (
    "Grounded data is out of scope: when the prompt carries the source text (a knowledge snippet, a retrieved "
    "document, a system prompt with facts), whether an answer goes beyond it is not measured, and the vector cannot "
    "tell a faithful, fact-rich answer from an unsupported one. Its benchmarks are questions without sources.")}


def run(bench: Benchmark, data: Path, work: Path, mode: str, per_side: int, batch_size: int,
        max_new_tokens: int | None = None, extra_vectors: list[str] = ()) -> dict:
    """Scan the benchmark's two files in `mode` with the default traits, its own, and the traits of
    `extra_vectors` (vector files), and evaluate every trait on them."""
    from auditor.vectors.persona import PersonaVector

    inducing, control = convert(bench, data, work, per_side)
    traits = list(TRAITS) + ([bench.trait] if bench.trait not in TRAITS else [])
    traits += [PersonaVector.load(Path(p)).trait for p in extra_vectors]
    config = ScanConfig(inputs=[str(inducing), str(control)], traits=traits, base_responses=mode,
                        vectors=list(extra_vectors), batch_size=batch_size,
                        max_new_tokens=max_new_tokens or ScanConfig().max_new_tokens)
    start = time.perf_counter()
    scanned = scan(config)
    seconds = time.perf_counter() - start
    click.echo(f"{bench.name} {mode} n={per_side}: {seconds:.0f} s", err=True)
    dp = {t.trait: t.dp for t in scanned.traits}
    flags = {t.trait: t.flags for t in scanned.traits}
    labels = labels_from_files(scanned.records, [control])
    pairwise = None
    if bench.paired:  # record i of each file answers the same prompt; the inducing one should be further
        n = len(labels) // 2  # per_side, or fewer where the benchmark has fewer pairs
        assert not scanned.quarantined and labels == [INDUCING] * n + [CONTROL] * n
        concern = dp[bench.trait] * (-1 if flags[bench.trait] == "below" else 1)
        pairwise = float(np.mean(concern[:n] > concern[n:]))
    return {"benchmark": bench.name, "trait": bench.trait, "mode": mode, "per_side": len(scanned.records) // 2,
            "max_new_tokens": config.max_new_tokens, "vectors": {v.trait: v.source for v in scanned.vectors},
            "seconds": round(seconds, 1), "pairwise": pairwise,
            "results": {r.trait: r for r in evaluate(dp, labels, flags)}}


def _ci(interval) -> str:
    return f"{interval.mean:+.2f} [{interval.low:+.2f}, {interval.high:+.2f}]"


def sample_table(runs: list[dict]) -> str:
    lines = ["| benchmark | trait | mode | n/side | AUROC | P@5% | P@10% | pairwise |",
             "|---|---|---|---:|---:|---:|---:|---:|"]
    for r in runs:
        t: TraitEvaluation = r["results"][r["trait"]]
        pairwise = "–" if r["pairwise"] is None else f"{r['pairwise']:.2f}"
        lines.append(f"| {r['benchmark']} | {r['trait']} | {r['mode']} | {r['per_side']} | {t.auroc:.3f} "
                     f"| {t.precision_at['5%']:.2f} | {t.precision_at['10%']:.2f} | {pairwise} |")
    return "\n".join(lines)


def dataset_table(runs: list[dict]) -> str:
    lines = ["| benchmark | trait | mode | n/side | mean dP inducing | mean dP control | difference |",
             "|---|---|---|---:|---:|---:|---:|"]
    for r in runs:
        t = r["results"][r["trait"]]
        lines.append(f"| {r['benchmark']} | {r['trait']} | {r['mode']} | {r['per_side']} "
                     f"| {_ci(t.mean_dp_inducing)} | {_ci(t.mean_dp_control)} | {_ci(t.difference)} |")
    return "\n".join(lines)


def specificity_table(runs: list[dict]) -> str:
    lines = ["| benchmark | mode | n/side | " + " | ".join(f"AUROC {t}" for t in TRAITS) + " |",
             "|---|---|---:|" + "---:|" * len(TRAITS)]
    for r in runs:
        cells = [f"**{r['results'][t].auroc:.3f}**" if t == r["trait"] else f"{r['results'][t].auroc:.3f}"
                 if t in r["results"] else "–" for t in TRAITS]
        lines.append(f"| {r['benchmark']} | {r['mode']} | {r['per_side']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


@click.command()
@click.option("--data", default="../shared/data", show_default=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path), help="The public datasets' folder.")
@click.option("--work", default="bench-work", show_default=True, type=click.Path(file_okay=False, path_type=Path),
              help="Where the converted chat JSONL files and detection.json go.")
@click.option("--prompts", default=100, show_default=True,
              help="Prompts to generate base answers for, per benchmark: records per side for paired data, "
                   "half that for unpaired data. Both modes run on these records.")
@click.option("--none-n", type=click.IntRange(1), help="Also run none mode on this many records per side.")
@click.option("--only", multiple=True, type=click.Choice([b.name for b in BENCHMARKS]), help="Run only these.")
@click.option("--batch-size", default=16, show_default=True)
@click.option("--card", type=click.Path(dir_okay=False, path_type=Path),
              help="Record each benchmark's own trait in this detection card (both modes, --prompts records); the "
                   "shipped one is auditor/vectors/builtin/card.json.")
def main(data: Path, work: Path, prompts: int, none_n: int | None, only: tuple[str, ...], batch_size: int,
         card: Path | None) -> None:
    from auditor.evaluation.card import Card
    from auditor.files import file_sha256

    runs = []
    detection = (Card.load(card) if card.is_file() else Card("SmolLM2-135M-Instruct")) if card else None
    for bench in BENCHMARKS:
        if only and bench.name not in only:
            continue
        per_side = prompts if bench.paired else prompts // 2
        for mode, n in (("generate", per_side), ("none", per_side), ("none", none_n)):
            if n:
                runs.append(run(bench, data, work, mode, n, batch_size))
                if detection and n == per_side:
                    own = runs[-1]["results"][bench.trait]
                    detection.add(bench.name, mode, bench.trait, file_sha256(Path(runs[-1]["vectors"][bench.trait])),
                                  own)
    if detection:
        detection.notes.update(NOTES)
        detection.save(card)
        click.echo(f"detection card -> {card}", err=True)
    (work / "detection.json").write_text(json.dumps(
        [{**r, "results": {k: asdict(v) for k, v in r["results"].items()}} for r in runs], indent=2))
    click.echo("### Sample level: the trait's dP ranks inducing above control records\n\n" + sample_table(runs))
    click.echo("\n### Dataset level: mean dP of each file, 95% bootstrap interval\n\n" + dataset_table(runs))
    click.echo("\n### Specificity: AUROC of every trait on each benchmark (the benchmark's own trait in bold)\n\n"
               + specificity_table(runs))


if __name__ == "__main__":
    main()
