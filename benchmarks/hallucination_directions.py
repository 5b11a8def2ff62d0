"""What the hallucinating vector points along: specificity or fabrication, in numbers.

    python benchmarks/hallucination_directions.py [--data ../shared/data] [--work bench-work] [--prompts 100]

From our authored triples (benchmarks/data/hallucination_triples.jsonl: per question a correct specific
answer, a fabricated answer of the same length and shape, and a correct vague one) it fits two contrasts with
the `extract --from-pairs` fitting (difference of means, layer by 5-fold cross-validated AUROC):

  specificity   correct specific answers against correct vague ones
  fabrication   fabricated specific answers against correct specific ones

and prints (1) the cosine between each direction and the previously shipped `hallucinating` vector
(benchmarks/data/hallucinating-previous.safetensors) and the shipped one, at every layer; (2) the AUROC of
each direction (previous, specificity, fabrication, shipped, the vector of the authored answers rewritten as
minimal pairs (benchmarks/data/hallucinating-minimal-pairs.json: trait and neutral answers alike but for
whether the specifics are true), and that one with the specificity direction projected out at every layer)
on caa-hallucination, truthfulqa and halueval-general, in both modes, from one scan per benchmark and mode
that scores them all. Every number goes
to WORK/hallucination_directions.json.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click
import numpy as np
from detection import run
from public_data import BENCHMARKS

from auditor.model.loading import load_model
from auditor.traits import TraitExample, load_trait
from auditor.vectors.fitting import extract_from_examples
from auditor.vectors.pairs import fit_from_pairs, pair_activations
from auditor.vectors.persona import PersonaVector, builtin_vector_path

HERE = Path(__file__).resolve().parent
TRIPLES = HERE / "data" / "hallucination_triples.jsonl"
PREVIOUS = HERE / "data" / "hallucinating-previous.safetensors"
MINIMAL_PAIRS = HERE / "data" / "hallucinating-minimal-pairs.json"  # authored answers rewritten as minimal pairs
CONTRASTS = {"specificity": ("specific_true", "vague_true"), "fabrication": ("specific_false", "specific_true")}
BENCHES = ("caa-hallucination", "truthfulqa", "halueval-general")


def fit_contrasts(lm, out: Path, batch_size: int) -> dict[str, Path]:
    """The specificity and fabrication vectors of the triples, saved under `out`."""
    triples = [json.loads(line) for line in TRIPLES.read_text(encoding="utf-8").splitlines() if line.strip()]
    paths = {}
    for name, (trait, neutral) in CONTRASTS.items():
        pairs = [([{"role": "user", "content": t["question"]}], t[trait], t[neutral]) for t in triples]
        pos, neg = pair_activations(lm, pairs, batch_size)
        vector = fit_from_pairs(lm, name, pos, neg)
        paths[name] = out / f"{name}.safetensors"
        vector.save(paths[name])
        click.echo(f"{name}: {len(pairs)} pairs, layer {vector.layer}, CV AUROC "
                   f"{vector.layer_stats[vector.layer]['cv_auroc_mean']:.3f}", err=True)
    return paths


def cosines(vectors: dict[str, PersonaVector]) -> dict[str, list[float]]:
    """Per layer, the cosine of each direction with the shipped (previous) vector and the minimal-pair one."""
    out = {}
    for ref in ("previous", "minimal pairs"):
        for name, v in vectors.items():
            skip = name in (ref, "shipped") or "minus" in name or (ref == "minimal pairs" and name == "previous")
            if not skip:
                out[f"{name} vs {ref}"] = [round(float(v.unit(layer) @ vectors[ref].unit(layer)), 3)
                                           for layer in range(v.directions.shape[0])]
    return out


def without(vector: PersonaVector, direction: PersonaVector, trait: str) -> PersonaVector:
    """`vector` with `direction` projected out at every layer (same layer and calibration: AUROC and dP
    differences do not depend on the calibration)."""
    unit = direction.directions / direction.directions.norm(dim=1, keepdim=True).clamp_min(1e-12)
    kept = vector.directions - (vector.directions * unit).sum(1, keepdim=True) * unit
    return replace(vector, trait=trait, directions=kept, method=f"{vector.method} minus {direction.trait}")


@click.command()
@click.option("--data", default="../shared/data", show_default=True,
              type=click.Path(exists=True, file_okay=False, path_type=Path), help="The public datasets' folder.")
@click.option("--work", default="bench-work", show_default=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--prompts", default=100, show_default=True, help="Records per side of each benchmark (as detection.py).")
@click.option("--batch-size", default=16, show_default=True)
def main(data: Path, work: Path, prompts: int, batch_size: int) -> None:
    lm = load_model("default")
    out = work / "directions"
    out.mkdir(parents=True, exist_ok=True)
    paths = fit_contrasts(lm, out, batch_size)
    previous = replace(PersonaVector.load(PREVIOUS), trait="hallucinating-previous")
    paths["previous"] = out / "hallucinating-previous.safetensors"
    previous.save(paths["previous"])
    vectors = {name: PersonaVector.load(p) for name, p in paths.items()}
    vectors["shipped"] = PersonaVector.load(builtin_vector_path("hallucinating"))
    trait = replace(load_trait("hallucinating"), name="hallucinating-minimal-pairs",
                    examples=[TraitExample(**e) for e in json.loads(MINIMAL_PAIRS.read_text(encoding="utf-8"))])
    paths["minimal pairs"] = out / "hallucinating-minimal-pairs.safetensors"
    extract_from_examples(lm, trait, batch_size).save(paths["minimal pairs"])
    vectors["minimal pairs"] = PersonaVector.load(paths["minimal pairs"])
    paths["minimal pairs minus specificity"] = out / "hallucinating-minimal-pairs-minus-specificity.safetensors"
    without(vectors["minimal pairs"], vectors["specificity"], "hallucinating-minimal-minus-specificity").save(
        paths["minimal pairs minus specificity"])
    vectors["minimal pairs minus specificity"] = PersonaVector.load(paths["minimal pairs minus specificity"])
    layers = {name: v.layer for name, v in vectors.items()}
    cos = cosines(vectors)
    names = {"previous": "hallucinating-previous", "specificity": "specificity", "fabrication": "fabrication",
             "shipped": "hallucinating", "minimal pairs": "hallucinating-minimal-pairs",
             "minimal pairs minus specificity": "hallucinating-minimal-minus-specificity"}
    aurocs = {}
    for bench in (b for b in BENCHMARKS if b.name in BENCHES):
        per_side = prompts if bench.paired else prompts // 2
        for mode in ("generate", "none"):
            result = run(bench, data, work, mode, per_side, batch_size,
                         extra_vectors=[str(paths[k]) for k in names if k != "shipped"])
            for key, trait in names.items():
                aurocs.setdefault(key, {})[f"{bench.name} {mode}"] = round(result["results"][trait].auroc, 3)
    (work / "hallucination_directions.json").write_text(json.dumps(
        {"layers": layers, "cosines": cos, "auroc": aurocs}, indent=2))
    columns = [f"{b} {m}" for b in BENCHES for m in ("generate", "none")]
    click.echo("| direction | layer | " + " | ".join(columns) + " |\n|---|---:|" + "---:|" * len(columns))
    for key in names:
        click.echo(f"| {key} | {layers[key]} | " + " | ".join(f"{aurocs[key][c]:.3f}" for c in columns) + " |")
    show = sorted({layers[k] for k in layers} | {8, 12, 16, 20, 24})
    click.echo("\n| cosine at layer | " + " | ".join(map(str, show)) + " |\n|---|" + "---:|" * len(show))
    for name, values in cos.items():
        click.echo(f"| {name} | " + " | ".join(f"{values[layer]:+.2f}" for layer in show) + " |")
    click.echo(f"\nmean |cosine| over layers 1-{len(next(iter(cos.values()))) - 1}: " + ", ".join(
        f"{name} {np.mean(np.abs(values[1:])):.2f}" for name, values in cos.items()))


if __name__ == "__main__":
    main()
