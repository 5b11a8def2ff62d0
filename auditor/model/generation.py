"""The model's own answers to the samples' prompts: batched generation with a disk cache, optionally reading
the answers' (and the samples') activations off the same forward passes."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..cache import Batches, KeyedStore, cache_dir, cached_compute, content_hash
from .activations import hidden_states, length_batches, record_steps
from .loading import LoadedModel


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


def stop_ids(lm: LoadedModel) -> list[int]:
    ids = {lm.tokenizer.eos_token_id, lm.tokenizer.convert_tokens_to_ids("<|im_end|>")}
    config_eos = lm.model.generation_config.eos_token_id
    ids.update(config_eos if isinstance(config_eos, list) else [config_eos])
    unk = lm.tokenizer.unk_token_id
    return sorted(i for i in ids if i is not None and i != unk)


def _left_padded(lm: LoadedModel, prompts: Sequence[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), lm.tokenizer.pad_token_id, dtype=torch.long)
    attention = torch.zeros_like(ids)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        attention[row, width - len(prompt):] = 1
    return ids.to(lm.device), attention.to(lm.device)


def _positions(attention: torch.Tensor) -> torch.Tensor:
    """Position ids of left-padded rows, as `generate` counts them."""
    return (attention.cumsum(-1) - 1).masked_fill(attention == 0, 0)


def _cache_keyword(lm: LoadedModel) -> str:
    """What the model calls its KV cache argument: `cache` in recent transformers 5 releases, else `past_key_values`."""
    return "cache" if "cache" in inspect.signature(lm.model.base_model.forward).parameters else "past_key_values"


def _generate(lm: LoadedModel, ids: torch.Tensor, attention: torch.Tensor, settings: GenerationSettings,
              extra_steps: int = 0, **kwargs) -> list[list[int]]:
    stops = stop_ids(lm)
    if settings.temperature:
        torch.manual_seed(settings.seed)
    out = lm.model.generate(input_ids=ids, attention_mask=attention,
                            max_new_tokens=settings.max_new_tokens + extra_steps,
                            do_sample=settings.temperature > 0, pad_token_id=lm.tokenizer.pad_token_id,
                            repetition_penalty=settings.repetition_penalty, eos_token_id=stops,
                            top_p=None, top_k=None, temperature=settings.temperature or None, **kwargs)
    return [until_stop(row[: settings.max_new_tokens], stops) for row in out[:, ids.shape[1]:].tolist()]


@torch.inference_mode()
def generate_batch(lm: LoadedModel, prompts: Sequence[list[int]], settings: GenerationSettings) -> list[list[int]]:
    """Answers for a batch of prompts, greedy or sampled (left padded, KV cache, each row stops at its end token)."""
    return _generate(lm, *_left_padded(lm, prompts), settings)


@torch.inference_mode()
def generate_with_states(lm: LoadedModel, prompts: Sequence[list[int]], settings: GenerationSettings,
                         layers: Sequence[int], samples: Sequence[list[int] | None] = ()
                         ) -> tuple[list[list[int]], np.ndarray, np.ndarray]:
    """Answers, with mean hidden states at `layers` [n, len(layers), hidden] read off the same forward passes.

    Returns (answers, answer means, sample means). Decode step k feeds answer token k, so the answer
    states are those a scoring pass over (prompt, answer) computes, without that pass; one extra step
    reaches the last token of an answer cut at max_new_tokens (the answers are the same). `samples[i]`,
    a response to prompt i, is scored from a copy of the prompt's KV cache, so the prompt is computed
    once for both. States never computed (every row ended at once; no sample) are NaN.
    """
    ids, attention = _left_padded(lm, prompts)
    name = _cache_keyword(lm)
    prefill = lm.model.base_model(input_ids=ids[:, :-1], attention_mask=attention[:, :-1],
                                  position_ids=_positions(attention[:, :-1]), use_cache=True)
    prompt_cache = getattr(prefill, name)
    sample_cache = copy.deepcopy(prompt_cache) if any(samples) else None
    with record_steps(lm, layers) as steps:
        answers = _generate(lm, ids, attention, settings, extra_steps=1, **{name: prompt_cache})
    means = np.full((len(prompts), len(layers), lm.hidden_size), np.nan, dtype=np.float32)
    for col, layer in enumerate(layers):
        fed = steps[layer][1:]  # call 0 is the prompt's last token; call k feeds answer token k
        if fed:
            states = torch.stack(fed, dim=1).float()  # [batch, steps, hidden]
            for row, answer in enumerate(answers):
                if len(answer) <= states.shape[1]:
                    means[row, col] = states[row, : len(answer)].mean(0).cpu().numpy()
    sampled = np.full_like(means, np.nan)
    if sample_cache is not None:
        sampled[:] = _continuation_means(lm, {name: sample_cache}, ids[:, -1:], attention, samples, layers)
    return answers, means, sampled


def _continuation_means(lm: LoadedModel, cache: dict, last: torch.Tensor, attention: torch.Tensor,
                        samples: Sequence[list[int] | None], layers: Sequence[int]) -> np.ndarray:
    """Mean states of each row's sample response, run after the prompt's last token on the prompt's cache.

    `cache`: the model's cache keyword and the prompt's KV cache (it is extended in place).
    """
    width = 1 + max(len(s) for s in samples if s)
    ids = torch.full((len(samples), width), lm.tokenizer.pad_token_id, dtype=torch.long, device=lm.device)
    mask = torch.zeros_like(ids)
    ids[:, :1], mask[:, :1] = last, 1
    for row, sample in enumerate(samples):
        if sample:
            ids[row, 1 : 1 + len(sample)] = torch.tensor(sample)
            mask[row, 1 : 1 + len(sample)] = 1
    full = torch.cat([attention, mask[:, 1:]], dim=1)
    states = hidden_states(lm, ids, full, layers, position_ids=_positions(full)[:, -width:], use_cache=True, **cache)
    out = np.full((len(samples), len(layers), lm.hidden_size), np.nan, dtype=np.float32)
    for row, sample in enumerate(samples):
        if sample:
            for col, layer in enumerate(layers):
                out[row, col] = states[layer][row, 1 : 1 + len(sample)].float().mean(0).cpu().numpy()
    return out


def until_stop(ids: list[int], stops: Sequence[int]) -> list[int]:
    """A generated answer up to (not including) its first end token; an immediately ended one keeps that token."""
    cut = next((i for i, t in enumerate(ids) if t in stops), len(ids))
    return ids[:cut] or ids[:1]


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


def base_answers(lm: LoadedModel, prompts: Sequence[list[int]], settings: GenerationSettings,
                 batch_size: int = 8, cache: AnswerCache | None = None, on_batch: Callable[[int], None] | None = None,
                 layers: Sequence[int] = (), samples: Sequence[list[int] | None] = (),
                 reduce: Callable[[np.ndarray], np.ndarray] = lambda means: means) -> Answers:
    """The model's answer to each prompt; cached answers are reused, new ones cached as they come.

    With `layers`, the states of each generated answer (and of `samples[i]`, a response to prompt i)
    are read off the same forward passes, averaged over the tokens and passed through `reduce`
    (say, a projection on the trait vectors, to keep what is held small).
    """
    out = Answers([])

    def generate(todo: list[int]) -> Batches:
        for batch in length_batches([len(prompts[i]) for i in todo], batch_size):
            batch = [todo[j] for j in batch]
            chunk = [prompts[i] for i in batch]
            if not layers:
                yield batch, generate_batch(lm, chunk, settings)
                continue
            given = [samples[i] if samples else None for i in batch]
            new, means, sampled = generate_with_states(lm, chunk, settings, layers, given)
            out.states.update(zip(batch, reduce(means)))
            out.sample_states.update((i, m) for i, m, s in zip(batch, reduce(sampled), given) if s)
            yield batch, new

    keys = [AnswerCache.key(p) for p in prompts]
    out.ids = cached_compute(keys, cache if cache is not None else KeyedStore(None), generate, on_batch)
    return out
