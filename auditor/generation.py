"""The model's own answers to the samples' prompts: batched greedy generation with a disk cache."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from .activations import length_batches
from .cache import cache_dir, content_hash
from .models import LoadedModel


@dataclass(frozen=True)
class GenerationSettings:
    """What decides a base answer; part of its cache key."""

    max_new_tokens: int = 64
    repetition_penalty: float = 1.1  # greedy decoding of small models loops without it


class AnswerCache:
    """Append-only JSONL of generated answers, keyed by model, settings and prompt ids."""

    def __init__(self, lm: LoadedModel, settings: GenerationSettings, root: Path | None = None):
        key = content_hash({"model": lm.name, "fp": lm.fingerprint(), "settings": settings.__dict__})
        self.path = (root or cache_dir() / "base-answers") / f"{lm.name}-{key}.jsonl"
        self.answers: dict[str, list[int]] = {}
        if self.path.is_file():
            with open(self.path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                        self.answers[row["key"]] = row["ids"]
                    except (json.JSONDecodeError, KeyError):
                        continue  # a line cut short by a kill: that answer is generated again

    @staticmethod
    def key(prompt: Sequence[int]) -> str:
        return content_hash(list(prompt), 24)

    def get(self, prompt: Sequence[int]) -> list[int] | None:
        return self.answers.get(self.key(prompt))

    def add(self, items: list[tuple[Sequence[int], list[int]]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            for prompt, ids in items:
                self.answers[self.key(prompt)] = ids
                fh.write(json.dumps({"key": self.key(prompt), "ids": ids}) + "\n")


def _stop_ids(lm: LoadedModel) -> list[int]:
    ids = {lm.tokenizer.eos_token_id, lm.tokenizer.convert_tokens_to_ids("<|im_end|>")}
    config_eos = lm.model.generation_config.eos_token_id
    ids.update(config_eos if isinstance(config_eos, list) else [config_eos])
    unk = lm.tokenizer.unk_token_id
    return sorted(i for i in ids if i is not None and i != unk)


@torch.inference_mode()
def generate_batch(lm: LoadedModel, prompts: Sequence[list[int]], settings: GenerationSettings) -> list[list[int]]:
    """Greedy answers for a batch of prompts (left padded, KV cache, each row stops at its end token)."""
    pad, stops = lm.tokenizer.pad_token_id, _stop_ids(lm)
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    attention = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        attention[row, width - len(prompt):] = 1
    out = lm.model.generate(input_ids=ids.to(lm.device), attention_mask=attention.to(lm.device),
                            max_new_tokens=settings.max_new_tokens, do_sample=False, pad_token_id=pad,
                            repetition_penalty=settings.repetition_penalty,
                            eos_token_id=stops, top_p=None, top_k=None, temperature=None)
    answers = []
    for row in out[:, width:].tolist():
        cut = next((i for i, t in enumerate(row) if t in stops), len(row))
        answers.append(row[:cut] or row[:1])  # an immediately ended answer keeps its end token
    return answers


def base_answers(lm: LoadedModel, prompts: Sequence[list[int]], settings: GenerationSettings,
                 batch_size: int = 8, cache: AnswerCache | None = None,
                 on_batch: Callable[[int], None] | None = None) -> list[list[int]]:
    """The model's answer to each prompt; cached answers are reused, new ones cached as they come."""
    answers: list[list[int] | None] = [cache.get(p) if cache else None for p in prompts]
    todo = [i for i, a in enumerate(answers) if a is None]
    if on_batch and len(todo) < len(prompts):
        on_batch(len(prompts) - len(todo))
    for batch in length_batches([len(prompts[i]) for i in todo], batch_size):
        batch = [todo[j] for j in batch]
        new = generate_batch(lm, [prompts[i] for i in batch], settings)
        for i, ids in zip(batch, new):
            answers[i] = ids
        if cache:
            cache.add([(prompts[i], ids) for i, ids in zip(batch, new)])
        if on_batch:
            on_batch(len(batch))
    return answers  # type: ignore[return-value]
