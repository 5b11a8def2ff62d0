"""Rebuild the persona vectors shipped for the default model (auditor/vectors/*.safetensors).

    python scripts/build_default_vectors.py [--traits evil,sycophantic,hallucinating]

Prints the held-out separation per layer and the chosen layer for each trait.
"""

from __future__ import annotations

import click

from auditor.extract import extract_from_examples
from auditor.models import load_model
from auditor.traits import builtin_names, load_trait
from auditor.vectors import builtin_vector_path


@click.command()
@click.option("--traits", default=",".join(builtin_names()), show_default=True)
@click.option("--batch-size", default=16, show_default=True)
def main(traits: str, batch_size: int) -> None:
    lm = load_model("default", device="cpu")
    for name in traits.split(","):
        vector = extract_from_examples(lm, load_trait(name), batch_size=batch_size)
        vector.save(builtin_vector_path(name))
        cal = vector.calibration
        print(f"\n{name}: layer {vector.layer}, held-out AUROC {cal.auroc:.3f}, gap {cal.gap:.3f}")
        print("layer  auroc     d   norm")
        for s in vector.layer_stats:
            print(f"{s['layer']:5d}  {s['auroc']:.3f} {s['d']:5.2f} {s['norm']:6.2f}")


if __name__ == "__main__":
    main()
