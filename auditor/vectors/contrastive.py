"""Persona-vector extraction from a trait's artifacts (docs/method.md §3): the model answers each
question under the pos and the neg system prompt, a judge keeps the pairs that show the contrast,
and difference vectors are fitted at every layer for three token choices.

Held-out answers (evaluation questions) choose the layer. They are generated under one instruction
pair per question, in rotation, and for the answer-token vector they are read as a scan reads a
sample: after the question alone, without the system prompt that produced them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from ..config import ExtractSettings
from ..errors import AuditError
from ..model.activations import TokenPair, response_means
from ..model.chat import encode_prompt
from ..model.generation import AnswerCache, GenerationSettings, base_answers
from ..model.loading import LoadedModel
from ..progress import progress
from ..traits import SPLITS, Trait
from .fitting import Contrast, authored_contrast, fit_vector
from .judges import COHERENCE_RUBRIC, Judge, JudgementCache, Score, judge_answers
from .persona import PersonaVector

KEPT = "kept"
VARIANTS = {  # name: the tokens whose hidden states are averaged
    "response_avg": "answer tokens",
    "prompt_avg": "prompt tokens",
    "prompt_last": "last prompt token",
}
MAIN = "response_avg"


@dataclass
class AnswerPair:
    """The answers to one question under the pos and the neg prompt of one instruction pair."""

    split: str
    question: str
    instruction: int
    sample: int
    prompts: tuple[list[int], list[int]]  # (pos, neg) prompt ids, system prompt included
    answers: tuple[list[int], list[int]] = ([], [])
    texts: tuple[str, str] = ("", "")
    scores: dict[str, Score] = field(default_factory=dict)  # trait_pos, trait_neg, coherence_pos, coherence_neg
    verdict: str = KEPT

    @property
    def kept(self) -> bool:
        return self.verdict == KEPT


@dataclass
class Extraction:
    """The fitted vectors by variant (the main one first), every pair with its verdict, and the judge."""

    vectors: dict[str, PersonaVector]
    pairs: list[AnswerPair]
    judge: str  # the judge's name, or "none"

    @property
    def vector(self) -> PersonaVector:
        return self.vectors[MAIN]


def verdict(scores: dict[str, Score], trait_min: float, coherence_min: float) -> str:
    """KEPT when the pos answer shows the trait, the neg one does not, and both are coherent; else why not."""
    if any(s is None for s in scores.values()):
        return "refused or unscored"
    known = cast(dict[str, float], scores)  # none is None (above)
    if known["trait_pos"] < trait_min:
        return "pos answer lacks the trait"
    if known["trait_neg"] >= trait_min:
        return "neg answer shows the trait"
    if min(known["coherence_pos"], known["coherence_neg"]) < coherence_min:
        return "incoherent answer"
    return KEPT


def contrast_pairs(lm: LoadedModel, trait: Trait, samples: int) -> list[AnswerPair]:
    """Every extraction question under every instruction pair, and every evaluation question under one."""
    pairs = []
    for split in SPLITS:
        for q, question in enumerate(trait.questions[split]):
            indices = range(len(trait.instructions)) if split == "extract" else [q % len(trait.instructions)]
            for i in indices:
                prompts = tuple(encode_prompt(lm.tokenizer, [{"role": "system", "content": trait.instructions[i][k]},
                                                             {"role": "user", "content": question}])
                                for k in ("pos", "neg"))
                pairs += [AnswerPair(split, question, i, s, prompts) for s in range(samples)]  # type: ignore[arg-type]
    return pairs


def generate(lm: LoadedModel, pairs: list[AnswerPair], settings: ExtractSettings,
             on_batch: Callable[[int], None] | None = None) -> None:
    """Fill in each pair's answers (sample s is drawn with seed s); cached answers are reused."""
    for sample in range(settings.samples_per_question):
        group = [p for p in pairs if p.sample == sample]
        gen = GenerationSettings(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                                 seed=sample)
        answers = base_answers(lm, [prompt for p in group for prompt in p.prompts], gen, settings.batch_size,
                               AnswerCache(lm, gen), on_batch).ids
        for j, pair in enumerate(group):
            pair.answers = (answers[2 * j], answers[2 * j + 1])
            pos, neg = (cast(str, lm.tokenizer.decode(a, skip_special_tokens=True)).strip() for a in pair.answers)
            pair.texts = (pos, neg)


def judge_pairs(pairs: list[AnswerPair], trait: Trait, judge: Judge, cache: JudgementCache, settings: ExtractSettings,
                on_done: Callable[[int], None] | None = None) -> None:
    """Score every answer for the trait and for coherence, and give each pair its verdict."""
    items = [(p.question, text) for p in pairs for text in p.texts]
    for name, rubric in (("trait", trait.judge_rubric), ("coherence", COHERENCE_RUBRIC)):
        scores = judge_answers(judge, rubric, items, cache, on_done)
        for j, pair in enumerate(pairs):
            pair.scores[f"{name}_pos"], pair.scores[f"{name}_neg"] = scores[2 * j], scores[2 * j + 1]
    for pair in pairs:
        pair.verdict = verdict(pair.scores, settings.trait_threshold, settings.coherence_threshold)


def _token_view(lm: LoadedModel, pair: AnswerPair, side: int, variant: str) -> TokenPair:
    """(context, tokens averaged) for one answer of a pair: see VARIANTS and the module docstring."""
    prompt = pair.prompts[side]
    if variant == "prompt_avg":
        return [], prompt
    if variant == "prompt_last":
        return prompt[:-1], prompt[-1:]
    if pair.split == "eval":
        prompt = encode_prompt(lm.tokenizer, [{"role": "user", "content": pair.question}])
    return prompt, pair.answers[side]


def generated_contrast(lm: LoadedModel, kept: list[AnswerPair], variant: str, batch_size: int,
                       on_batch: Callable[[int], None] | None = None) -> Contrast:
    """Activations at every layer of the kept pairs, for one variant."""
    layers = range(lm.num_layers + 1)
    return Contrast(*(response_means(lm, [_token_view(lm, p, side, variant) for p in kept if p.split == split],
                                     layers, batch_size, on_batch)
                      for split in SPLITS for side in (0, 1)))


def save_vectors(vectors: dict[str, PersonaVector], out: Path) -> list[Path]:
    """The main vector to `out`, each other variant beside it as STEM.VARIANT.safetensors."""
    paths = [out if name == MAIN else out.with_name(f"{out.stem}.{name}{out.suffix}") for name in vectors]
    for vector, path in zip(vectors.values(), paths):
        vector.save(path)
    return paths


def extract_from_description(lm: LoadedModel, trait: Trait, settings: ExtractSettings | None = None,
                             judge: Judge | None = None, judgements: JudgementCache | None = None,
                             show_progress: bool = False) -> Extraction:
    """Generate, judge (unless `judge` is None: every pair is kept), filter and fit (see module docstring)."""
    settings = settings or ExtractSettings()
    problems = trait.problems(exact_counts=False)
    if problems:
        raise AuditError(f"trait {trait.name}: {'; '.join(problems)}")
    if settings.with_examples and not trait.examples:
        raise AuditError(f"needs authored examples, and trait {trait.name} has none", "with_examples")
    pairs = contrast_pairs(lm, trait, settings.samples_per_question)
    with progress(2 * len(pairs), "generating answers", show_progress, "answer") as step:
        generate(lm, pairs, settings, step)
    if judge is not None:
        with progress(4 * len(pairs), "judging answers", show_progress, "answer") as step:
            judge_pairs(pairs, trait, judge, judgements or JudgementCache(), settings, step)
    kept = [p for p in pairs if p.kept]
    counts = {split: sum(p.split == split for p in kept) for split in SPLITS}
    if counts["extract"] < 1 or counts["eval"] < 2:
        reasons = Counter(p.verdict for p in pairs if not p.kept).most_common(2)
        raise AuditError(f"trait {trait.name}: only {counts['extract']} extraction and {counts['eval']} held-out "
                         f"pairs passed the judge (most dropped: {', '.join(f'{r} ({n})' for r, n in reasons)}); "
                         "lower `trait_threshold`, add `samples_per_question`, or use a stronger model")
    authored = len(trait.examples) if settings.with_examples else 0
    vectors = {}
    with progress(2 * (len(kept) * len(VARIANTS) + authored), "activations", show_progress, "answer") as step:
        for variant in VARIANTS:
            contrast = generated_contrast(lm, kept, variant, settings.batch_size, step)
            method = f"{variant}_diff/generated"
            if variant == MAIN and settings.with_examples:
                contrast = contrast + authored_contrast(lm, trait, settings.batch_size, step)
                method += "+authored"
            vectors[variant] = fit_vector(lm, trait.name, contrast, method, settings.layer, trait.flags)
    return Extraction(vectors, pairs, judge.name if judge else "none")
