"""The model's own answers to the samples' prompts: batched by prompt length, cached on disk, optionally with
the answers' (and the samples') activations read off the same forward passes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..cache import Batches, KeyedStore, cache_dir, cached_compute, content_hash
from ..config import DECODING_RULE
from .activations import length_batches
from .decoding import OPENING, Decoded, Decoder, decode, supports
from .loading import LoadedModel
from .transformers_generation import generate as transformers_generate

FAMILY = 8  # prompts whose opening (first OPENING tokens) at least 8 prompts share are batched together
GENERATION_TOKENS = 16384  # at most this many rows x (prompt + answer) tokens decoded at once (memory)


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
                            "settings": settings.__dict__, "rule": DECODING_RULE})
        super().__init__((root or cache_dir() / "base-answers") / f"{lm.name}-{key}.jsonl")

    @staticmethod
    def key(prompt: Sequence[int]) -> str:
        return content_hash(list(prompt), 24)


def stop_ids(lm: LoadedModel) -> list[int]:
    ids = {lm.tokenizer.eos_token_id, lm.tokenizer.convert_tokens_to_ids("<|im_end|>")}
    config_eos = lm.model.generation_config.eos_token_id
    ids.update(config_eos if isinstance(config_eos, list) else [config_eos])
    unk = lm.tokenizer.unk_token_id
    return sorted(i for i in ids if i is not None and i != unk)


def generate(lm: LoadedModel, prompts: Sequence[list[int]], settings: GenerationSettings,
             layers: Sequence[int] = (), samples: Sequence[list[int] | None] = ()) -> Decoded:
    """Answers to a batch of prompts, each row stopping at its own end token; with `layers`, the mean hidden
    states there of each answer and of each `samples[i]` (a response to prompt i, run on the prompt's cache).

    The lean decoder runs the models it supports; `transformers.generate` the others, with the same settings.
    The repetition penalty spares special tokens, so it never pushes the end of turn down.
    """
    stops, spared = stop_ids(lm), sorted(set(lm.tokenizer.all_special_ids) | {lm.tokenizer.pad_token_id})
    if supports(lm):
        return decode(Decoder(lm), prompts, settings.max_new_tokens, stops, spared, settings.repetition_penalty,
                      settings.temperature, settings.seed, layers, samples)
    return transformers_generate(lm, prompts, settings, stops, spared, layers, samples)


def generate_batch(lm: LoadedModel, prompts: Sequence[list[int]], settings: GenerationSettings) -> list[list[int]]:
    """Answers (token ids, end token excluded) to a batch of prompts."""
    return generate(lm, prompts, settings).answers


@dataclass
class Answers:
    """Base answers (token ids, one per prompt) and what was read off their generation.

    `states[i]`: the reduced mean states of prompt i's answer; `sample_states[i]`: those of the sample
    response given for prompt i, run on the same prompt cache. Only for answers generated in this call
    (not cached ones), and for a repeated prompt only at its first position.
    """

    ids: list[list[int]]
    states: dict[int, np.ndarray] = field(default_factory=dict)
    sample_states: dict[int, np.ndarray] = field(default_factory=dict)


def prompt_batches(prompts: Sequence[list[int]], batch_size: int, new_tokens: int) -> list[list[int]]:
    """Prompt indices in batches of similar length; prompts that open alike (the same system prompt, say) go
    together when there are enough of them, so the decoder computes their shared opening once. Then smaller
    batches join bigger ones with room (first fit, largest first): a decoding step costs about one read of the
    model's weights whatever its rows, so a few rows alone pay it for little (the joined rows become guests:
    decoding.PromptLayout)."""
    opening = [tuple(p[:OPENING]) for p in prompts]
    counts = Counter(opening)
    families: dict[tuple | None, list[int]] = {}
    for i, key in enumerate(opening):
        families.setdefault(key if counts[key] >= FAMILY else None, []).append(i)
    batches = []
    for members in families.values():
        lengths = [len(prompts[i]) + new_tokens for i in members]
        batches += [[members[j] for j in batch] for batch in length_batches(lengths, batch_size, GENERATION_TOKENS)]
    joined: list[list[int]] = []
    for batch in sorted(batches, key=len, reverse=True):
        room = (b for b in joined if len(b) + len(batch) <= batch_size
                and (len(b) + len(batch)) * max(len(prompts[i]) + new_tokens for i in b + batch) <= GENERATION_TOKENS)
        host = next(room, None)
        if host is None:
            joined.append(batch)
        else:
            host += batch
    return joined


def base_answers(lm: LoadedModel, prompts: Sequence[list[int]], settings: GenerationSettings,
                 batch_size: int, cache: AnswerCache | None = None, on_batch: Callable[[int], None] | None = None,
                 layers: Sequence[int] = (), samples: Sequence[list[int] | None] = (),
                 reduce: Callable[[np.ndarray], np.ndarray] = lambda means: means) -> Answers:
    """The model's answer to each prompt; cached answers are reused, new ones cached as they come.

    With `layers`, the states of each generated answer (and of `samples[i]`, a response to prompt i)
    are read off the same forward passes, averaged over the tokens and passed through `reduce`
    (say, a projection on the trait vectors, to keep what is held small).
    """
    out = Answers([])

    def answer(todo: list[int]) -> Batches:
        for batch in prompt_batches([prompts[i] for i in todo], batch_size, settings.max_new_tokens):
            batch = [todo[j] for j in batch]
            given = [samples[i] if samples else None for i in batch]
            done = generate(lm, [prompts[i] for i in batch], settings, layers, given)
            if layers:
                out.states.update(zip(batch, reduce(done.means)))
                out.sample_states.update((i, m) for i, m, s in zip(batch, reduce(done.sample_means), given) if s)
            yield batch, done.answers

    keys = [AnswerCache.key(p) for p in prompts]
    out.ids = cached_compute(keys, cache if cache is not None else KeyedStore(None), answer, on_batch)
    return out
