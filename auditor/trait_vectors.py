"""The persona vector of a trait for a loaded model: a given file, the shipped one, or extracted once and cached."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

from .cache import cache_dir, content_hash
from .extract import extract_from_examples
from .models import LoadedModel
from .traits import load_trait
from .vectors import PersonaVector, builtin_vector_path


@contextmanager
def progress(total: int, desc: str, show: bool, unit: str = "sample") -> Iterator:
    """A tqdm bar's `update`, or a no-op when hidden or empty."""
    with tqdm(total=total, desc=desc, unit=unit, disable=not show or total == 0, leave=False) as bar:
        yield bar.update


def trait_name(spec: str) -> str:
    """A built-in trait name, or the name inside a trait JSON file."""
    return load_trait(spec).name if spec.endswith(".json") else spec


def vector_for(lm: LoadedModel, spec: str, default_model: bool, batch_size: int = 8,
               show: bool = True) -> PersonaVector:
    """`spec` is a .safetensors vector file, a built-in trait name or a trait file. Built-in vectors
    ship for the default model; for other models the vector is extracted from the trait's authored
    answers once and cached. The vector is checked against the model."""
    if spec.endswith(".safetensors"):
        vector = PersonaVector.load(Path(spec))
    else:
        name = trait_name(spec)
        cached = cache_dir() / "vectors" / f"{lm.name}-{content_hash(lm.fingerprint())}-{name}.safetensors"
        builtin = builtin_vector_path(name)
        path = builtin if default_model and builtin.is_file() else cached
        if path.is_file():
            vector = PersonaVector.load(path)
        else:
            trait = load_trait(spec)
            with progress(2 * len(trait.examples), f"extracting {trait.name} vector", show) as step:
                vector = extract_from_examples(lm, trait, batch_size, on_batch=step)
            vector.save(cached)
    vector.check_model(lm.name, lm.hidden_size, lm.num_layers, lm.fingerprint())
    return vector
