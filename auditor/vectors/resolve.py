"""Which persona vector a command uses for a trait and a model: a given file, the shipped one, or extracted
once from the trait's authored answers and cached."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..cache import cache_dir, content_hash
from ..errors import AuditError
from ..model.loading import LoadedModel
from ..progress import progress
from ..traits import load_trait
from .fitting import extract_from_examples
from .persona import PersonaVector, builtin_vector_path


def trait_name(spec: str) -> str:
    """A built-in trait name, or the name inside a trait JSON file."""
    return load_trait(spec).name if spec.endswith(".json") else spec


def vector_for(lm: LoadedModel, spec: str, batch_size: int = 8, show: bool = True) -> PersonaVector:
    """`spec` is a .safetensors vector file, a built-in trait name or a trait file. Built-in vectors
    ship for the default model; for other models the vector is extracted from the trait's authored
    answers once and cached. The vector is checked against the model."""
    if spec.endswith(".safetensors"):
        vector = PersonaVector.load(Path(spec))
    else:
        name = trait_name(spec)
        cached = cache_dir() / "vectors" / f"{lm.name}-{content_hash(lm.fingerprint())}-{name}.safetensors"
        builtin = builtin_vector_path(name)
        path = builtin if lm.is_default and builtin.is_file() else cached
        if path.is_file():
            vector = PersonaVector.load(path)
        else:
            trait = load_trait(spec)
            with progress(2 * len(trait.examples), f"extracting {trait.name} vector", show) as step:
                vector = extract_from_examples(lm, trait, batch_size, on_batch=step)
            vector.save(cached)
    vector.check_model(lm.name, lm.hidden_size, lm.num_layers, lm.fingerprint())
    return vector


def load_vectors(lm: LoadedModel, traits: Sequence[str], files: Sequence[str], batch_size: int = 8,
                 show: bool = False) -> list[PersonaVector]:
    """One vector per trait in `traits` (names or trait files): from `files` (--vectors) where one is for that
    trait, else as `vector_for` finds it. With no `traits`, just the vectors of `files`."""
    given = {PersonaVector.load(Path(p)).trait: p for p in files}
    names = {trait_name(spec) for spec in traits}
    for trait in set(given) - names if traits else ():
        raise AuditError(f"a vector for trait {trait!r}, which is not in `traits` ({', '.join(sorted(names))}); "
                         "add it to `traits`", "vectors", given[trait])
    specs = [given.get(trait_name(spec), spec) for spec in traits] if traits else list(given.values())
    return [vector_for(lm, spec, batch_size, show) for spec in specs]
