"""Fine-tuning shift: how far fine-tuning moved a model along each trait direction (docs/method.md).

For each trait, the activation at the last prompt token of its evaluation questions is taken in the
base and the fine-tuned model at the vector's layer; the shift is the mean difference projected on the
unit vector. Positive: fine-tuning moved the model toward the trait.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from ..model.activations import last_token_states
from ..model.chat import encode_prompt
from ..model.loading import LoadedModel
from ..traits import load_trait
from ..vectors.persona import PersonaVector


@dataclass
class TraitShift:
    trait: str
    layer: int
    shift: float  # mean projection difference (fine-tuned - base) on the unit vector
    stderr: float  # standard error of that mean over the questions
    base_mean: float  # mean projection of the base model, for scale
    n: int

    def to_json(self) -> dict:
        return asdict(self)


def question_prompts(lm: LoadedModel, trait: str) -> list[list[int]]:
    """The trait's evaluation questions as chat prompts."""
    questions = load_trait(trait).questions["eval"]
    return [encode_prompt(lm.tokenizer, [{"role": "user", "content": q}]) for q in questions]


def prompt_projections(lm: LoadedModel, vector: PersonaVector, prompts: list[list[int]],
                       batch_size: int = 8) -> np.ndarray:
    """Projection of each prompt's last-token activation on the unit vector at the vector's layer."""
    states = last_token_states(lm, prompts, [vector.layer], batch_size)[:, 0]
    return states @ vector.unit().numpy()


def fine_tuning_shift(base: LoadedModel, tuned: LoadedModel, vectors: list[PersonaVector],
                      batch_size: int = 8) -> list[TraitShift]:
    """The shift along each vector, measured on its trait's evaluation questions."""
    shifts = []
    for vector in vectors:
        prompts = question_prompts(base, vector.trait)
        before = prompt_projections(base, vector, prompts, batch_size)
        after = prompt_projections(tuned, vector, prompts, batch_size)
        diff = after - before
        shifts.append(TraitShift(vector.trait, vector.layer, float(diff.mean()),
                                 float(diff.std(ddof=1) / np.sqrt(len(diff))), float(before.mean()), len(diff)))
    return shifts
