"""The model's own answers to the samples' prompts: batched greedy generation with a disk cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .activations import length_batches
from .cache import KeyedStore, cache_dir, content_hash
from .models import LoadedModel


@dataclass(frozen=True)
class GenerationSettings:
    """What decides a base answer; part of its cache key."""

    max_new_tokens: int = 64
    repetition_penalty: float = 1.1  # greedy decoding of small models loops without it
    temperature: float = 0.0  # 0: greedy; above 0: sampled, reproducibly from `seed`
    seed: int = 0


class AnswerCache(KeyedStore):
    """Generated answers (token ids) on disk, keyed by model, settings and prompt ids."""

    def __init__(self, lm: LoadedModel, settings: GenerationSettings, root: Path | None = None):
        key = content_hash({"model": lm.name, "fp": lm.fingerprint(), "dtype": str(lm.dtype),
                            "settings": settings.__dict__})
        super().__init__((root or cache_dir() / "base-answers") / f"{lm.name}-{key}.jsonl")

    @staticmethod
    def key(prompt: Sequence[int]) -> str:
        return content_hash(list(prompt), 24)

    def answer(self, prompt: Sequence[int]) -> list[int] | None:
        return self.get(self.key(prompt))

    def save(self, items: list[tuple[Sequence[int], list[int]]]) -> None:
        self.add([(self.key(prompt), ids) for prompt, ids in items])


def stop_ids(lm: LoadedModel) -> list[int]:
    ids = {lm.tokenizer.eos_token_id, lm.tokenizer.convert_tokens_to_ids("<|im_end|>")}
    config_eos = lm.model.generation_config.eos_token_id
    ids.update(config_eos if isinstance(config_eos, list) else [config_eos])
    unk = lm.tokenizer.unk_token_id
    return sorted(i for i in ids if i is not None and i != unk)


@torch.inference_mode()
def generate_batch(lm: LoadedModel, prompts: Sequence[list[int]], settings: GenerationSettings) -> list[list[int]]:
    """Answers for a batch of prompts, greedy or sampled (left padded, KV cache, each row stops at its end token)."""
    pad, stops = lm.tokenizer.pad_token_id, stop_ids(lm)
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        attention[row, width - len(prompt):] = 1
    if settings.temperature:
        torch.manual_seed(settings.seed)
    out = lm.model.generate(input_ids=ids.to(lm.device), attention_mask=attention.to(lm.device),
                            max_new_tokens=settings.max_new_tokens, do_sample=settings.temperature > 0,
                            pad_token_id=pad, repetition_penalty=settings.repetition_penalty, eos_token_id=stops,
                            top_p=None, top_k=None, temperature=settings.temperature or None)
    return [until_stop(row, stops) for row in out[:, width:].tolist()]


def until_stop(ids: list[int], stops: Sequence[int]) -> list[int]:
    """A generated answer up to (not including) its first end token; an immediately ended one keeps that token."""
    cut = next((i for i, t in enumerate(ids) if t in stops), len(ids))
    return ids[:cut] or ids[:1]


def base_answers(lm: LoadedModel, prompts: Sequence[list[int]], settings: GenerationSettings,
                 batch_size: int = 8, cache: AnswerCache | None = None,
                 on_batch: Callable[[int], None] | None = None) -> list[list[int]]:
    """The model's answer to each prompt; cached answers are reused, new ones cached as they come."""
    answers: list[list[int] | None] = [cache.answer(p) if cache else None for p in prompts]
    first: dict[tuple[int, ...], int] = {}  # a prompt repeated in `prompts` (paired samples) is answered once
    for i, a in enumerate(answers):
        if a is None:
            first.setdefault(tuple(prompts[i]), i)
    todo = list(first.values())
    if on_batch and len(todo) < len(prompts):
        on_batch(len(prompts) - len(todo))
    for batch in length_batches([len(prompts[i]) for i in todo], batch_size):
        batch = [todo[j] for j in batch]
        new = generate_batch(lm, [prompts[i] for i in batch], settings)
        for i, ids in zip(batch, new):
            answers[i] = ids
        if cache:
            cache.save([(prompts[i], ids) for i, ids in zip(batch, new)])
        if on_batch:
            on_batch(len(batch))
    return [a if a is not None else answers[first[tuple(p)]] for a, p in zip(answers, prompts)]  # type: ignore[misc]
