"""Rebuild the persona vectors shipped for the default model (auditor/vectors/builtin/TRAIT.safetensors).

    python scripts/build_default_vectors.py [--traits evil,sycophantic,hallucinating]

A thin wrapper: for each trait it runs
`dataset-audit extract TRAIT --from-examples --device cpu --no-report --out auditor/vectors/builtin/TRAIT.safetensors`,
which prints the held-out separation per layer and the chosen layer.
"""

from __future__ import annotations

import click

from auditor.cli import main as dataset_audit
from auditor.traits import builtin_names
from auditor.vectors.persona import builtin_vector_path


@click.command()
@click.option("--traits", default=",".join(builtin_names()), show_default=True)
@click.option("--batch-size", default=16, show_default=True)
def main(traits: str, batch_size: int) -> None:
    for name in traits.split(","):
        dataset_audit.main(["extract", name, "--from-examples", "--device", "cpu", "--no-report", "-q",
                            "--batch-size", str(batch_size), "--out", str(builtin_vector_path(name))],
                           standalone_mode=False)


if __name__ == "__main__":
    main()
