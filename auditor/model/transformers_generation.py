"""Base answers through `transformers`' own `generate`: the path for models the lean decoder
(auditor.model.decoding) does not run. Same settings, same outputs: answers, and the states read off the
same forward passes by hooks."""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from typing import cast

import numpy as np
import torch
from transformers import GenerationMixin, LogitsProcessor, LogitsProcessorList

from .activations import hidden_states, record_steps
from .decoding import Decoded, until_stop
from .loading import LoadedModel


class SparingRepetitionPenalty(LogitsProcessor):
    """transformers' repetition penalty, except on `spared` tokens (the chat template's special tokens)."""

    def __init__(self, penalty: float, spared: Sequence[int]):
        self.penalty, self.spared = penalty, list(spared)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.Tensor) -> torch.Tensor:
        kept = scores[:, self.spared].clone()
        values = scores.gather(1, input_ids)
        scores = scores.scatter(1, input_ids, torch.where(values > 0, values / self.penalty, values * self.penalty))
        scores[:, self.spared] = kept
        return scores


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


def _generate(lm: LoadedModel, ids: torch.Tensor, attention: torch.Tensor, settings, stops: list[int],
              spared: Sequence[int], extra_steps: int = 0, **kwargs) -> list[list[int]]:
    if settings.temperature:
        torch.manual_seed(settings.seed)
    penalty = LogitsProcessorList([SparingRepetitionPenalty(settings.repetition_penalty, spared)])
    model = cast(GenerationMixin, lm.model)  # a causal LM (AutoModelForCausalLM's models generate)
    out = model.generate(input_ids=ids, attention_mask=attention,
                         max_new_tokens=settings.max_new_tokens + extra_steps,
                         do_sample=settings.temperature > 0, pad_token_id=lm.tokenizer.pad_token_id,
                         logits_processor=penalty, eos_token_id=stops,
                         top_p=None, top_k=None, temperature=settings.temperature or None, **kwargs)
    return [until_stop(row[: settings.max_new_tokens], stops) for row in out[:, ids.shape[1]:].tolist()]


@torch.inference_mode()
def generate(lm: LoadedModel, prompts: Sequence[list[int]], settings, stops: list[int], spared: Sequence[int],
             layers: Sequence[int] = (), samples: Sequence[list[int] | None] = ()) -> Decoded:
    """Answers, with mean hidden states at `layers` [n, len(layers), hidden] read off the same forward passes.

    Decode step k feeds answer token k, so the answer states are those a scoring pass over (prompt,
    answer) computes, without that pass; one extra step reaches the last token of an answer cut at
    max_new_tokens (the answers are the same). `samples[i]`, a response to prompt i, is scored from a
    copy of the prompt's KV cache, so the prompt is computed once for both. States never computed
    (every row ended at once; no sample) are NaN.
    """
    ids, attention = _left_padded(lm, prompts)
    if not layers:
        return Decoded(_generate(lm, ids, attention, settings, stops, spared),
                       np.zeros((len(prompts), 0, lm.hidden_size), np.float32),
                       np.zeros((len(prompts), 0, lm.hidden_size), np.float32))
    name = _cache_keyword(lm)
    prefill = lm.model.base_model(input_ids=ids[:, :-1], attention_mask=attention[:, :-1],
                                  position_ids=_positions(attention[:, :-1]), use_cache=True)
    prompt_cache = getattr(prefill, name)
    sample_cache = copy.deepcopy(prompt_cache) if any(samples) else None
    with record_steps(lm, layers) as steps:
        answers = _generate(lm, ids, attention, settings, stops, spared, extra_steps=1, **{name: prompt_cache})
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
    return Decoded(answers, means, sampled)


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



