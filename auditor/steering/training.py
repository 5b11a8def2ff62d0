"""Supervised fine-tuning with LoRA (peft) or full weights, with optional preventative steering.

Loss is on assistant tokens only. With steering, `steering.steered` adds `coef * v` at the vector's
layer during training only (or projects the direction out, `ablate`); the hook is removed before the
model is saved, so the adapter loads with plain transformers + peft. `shift_penalty` adds
penalty * mean((proj - proj_base)^2) of the response-mean projection at each vector's layer.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..config import TrainConfig
from ..data import Quarantined, Record, expand_inputs, read_records
from ..errors import AuditError
from ..files import atomic_write_text
from ..model.activations import length_batches, record_layers, response_means
from ..model.chat import encode_prompt, encode_response, fit
from ..model.loading import LoadedModel, quiet_peft
from ..version import __version__
from .hooks import Steering, steered

if TYPE_CHECKING:
    from peft import PeftModel
    from transformers import PreTrainedModel

TRAINING_FILE = "training.json"


@dataclass
class TrainingExample:
    prompt: list[int]
    response: list[int]  # ends with the end-of-turn token, so the model learns to stop

    @property
    def ids(self) -> list[int]:
        return self.prompt + self.response


@dataclass
class TrainResult:
    losses: list[float]
    examples: int
    quarantined: list[Quarantined]


def parse_steer(items: list[str], need_coef: bool = True) -> list[tuple[str, float | None]]:
    """TRAIT=COEF items (a trait name or vector file, and a number); just TRAIT where no coefficient is used."""
    parsed: list[tuple[str, float | None]] = []
    for item in items:
        spec, sep, coef = item.rpartition("=")
        if sep and not spec:
            raise AuditError("no trait before '='", "steer", item)
        if not sep:
            if need_coef or not item:
                raise AuditError("expected TRAIT=COEF, e.g. evil=5 or my.safetensors=-2", "steer", item)
            parsed.append((item, None))
            continue
        try:
            parsed.append((spec, float(coef)))
        except ValueError:
            raise AuditError(f"{coef!r} is not a number (expected TRAIT=COEF)", "steer", item) from None
    return parsed


def read_examples(lm: LoadedModel, inputs: list[str], max_tokens: int
                  ) -> tuple[list[TrainingExample], list[Quarantined]]:
    """Every assistant turn of every record, with the conversation before it as its prompt."""
    end = lm.tokenizer.eos_token_id
    examples, quarantined = [], []
    for path in expand_inputs(inputs):
        for item in read_records(path):
            if not isinstance(item, Record):
                quarantined.append(item)
                continue
            for prompt_messages, response in item.turns("all"):
                prompt, resp, _ = fit(encode_prompt(lm.tokenizer, prompt_messages),
                                      encode_response(lm.tokenizer, response) + [end], max_tokens)
                examples.append(TrainingExample(prompt, resp))
    if not examples:
        raise AuditError(f"{', '.join(inputs)}: no trainable records ({len(quarantined)} quarantined)")
    return examples, quarantined


def collate(examples: list[TrainingExample], pad: int) -> dict[str, torch.Tensor]:
    """Right-padded ids, attention mask, labels (-100 outside the responses) and response weights."""
    width = max(len(e.ids) for e in examples)
    ids = torch.full((len(examples), width), pad, dtype=torch.long)
    attention = torch.zeros_like(ids)
    labels = torch.full_like(ids, -100)
    weights = torch.zeros((len(examples), width))
    for row, e in enumerate(examples):
        n, p = len(e.ids), len(e.prompt)
        ids[row, :n] = torch.tensor(e.ids)
        attention[row, :n] = 1
        labels[row, p:n] = torch.tensor(e.response)
        weights[row, p:n] = 1.0 / len(e.response)
    return {"input_ids": ids, "attention_mask": attention, "labels": labels, "weights": weights}


def _wrap(lm: LoadedModel, config: TrainConfig) -> PreTrainedModel | PeftModel:
    """The trainable model: LoRA adapters on every linear layer, or all weights with `full`."""
    if config.full:
        lm.model.requires_grad_(True)
        return lm.model
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
                      target_modules="all-linear", task_type="CAUSAL_LM")
    with quiet_peft():
        return get_peft_model(lm.model, lora)


def _base_projections(lm: LoadedModel, examples: list[TrainingExample], steerings: list[Steering],
                      batch_size: int) -> torch.Tensor:
    """Response-mean projection of every example on each steering vector, before training: [n, k]."""
    layers = [s.at_layer for s in steerings]
    means = response_means(lm, [(e.prompt, e.response) for e in examples], layers, batch_size)
    units = torch.stack([s.vector.unit(s.at_layer) for s in steerings])
    return torch.einsum("nkh,kh->nk", torch.from_numpy(means), units)


def _batches(examples: list[TrainingExample], config: TrainConfig) -> Iterator[list[int]]:
    """Length-bucketed batches of example indices, shuffled anew each epoch (seeded)."""
    order = random.Random(config.seed)
    for _epoch in range(config.epochs):
        batches = length_batches([len(e.ids) for e in examples], config.batch_size)
        order.shuffle(batches)
        yield from batches


def train(lm: LoadedModel, examples: list[TrainingExample], config: TrainConfig, steerings: list[Steering],
          on_step: Callable[[int, float], None] | None = None) -> PreTrainedModel | PeftModel:
    """Fine-tune in place; returns the trained (possibly peft-wrapped) model, with no hooks left on it."""
    torch.manual_seed(config.seed)
    base = _base_projections(lm, examples, steerings, config.batch_size) if config.shift_penalty else None
    model = _wrap(lm, config)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=0.0)
    units = [s.vector.unit(s.at_layer).to(lm.device) for s in steerings]
    layers = [s.at_layer for s in steerings]
    model.train()
    step = 0
    # registered before the steering hook, so the penalty sees the model's own (unsteered) activations
    capture: AbstractContextManager[dict[int, torch.Tensor]] = (
        record_layers(lm, layers, stop=False) if base is not None else nullcontext({}))
    with capture as states, steered(lm, steerings):
        for micro, batch in enumerate(_batches(examples, config), start=1):
            inputs = {k: v.to(lm.device) for k, v in collate([examples[i] for i in batch],
                                                              lm.tokenizer.pad_token_id).items()}
            weights = inputs.pop("weights")
            loss = model(**inputs, use_cache=False).loss
            if base is not None:  # the shift penalty: keep each trait's response projection where it was
                proj = torch.stack([torch.einsum("bs,bsh,h->b", weights, states[layer].float(), u)
                                    for layer, u in zip(layers, units)], dim=1)
                loss = loss + config.shift_penalty * ((proj - base[batch].to(lm.device)) ** 2).mean()
            (loss / config.grad_accum).backward()
            if micro % config.grad_accum:
                continue
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if on_step:
                on_step(step, float(loss.detach()))
            if config.max_steps is not None and step >= config.max_steps:
                break
    model.eval()
    model.requires_grad_(False)
    return model


def save(model: PreTrainedModel | PeftModel, lm: LoadedModel, config: TrainConfig, result: TrainResult,
         steerings: list[Steering]) -> Path:
    """The adapter (or full model), its tokenizer and `training.json` into `config.out`."""
    out = Path(config.out)
    model.save_pretrained(str(out))  # (peft types the folder as a str)
    lm.tokenizer.save_pretrained(out)
    record = {"tool": f"dataset-audit {__version__}", "base_model": config.model, "base_name": lm.name,
              "config": asdict(config), "steps": len(result.losses), "examples": result.examples,
              "quarantined": len(result.quarantined),
              "final_loss": float(np.mean(result.losses[-10:])) if result.losses else None,
              "steering": [{"trait": s.vector.trait, "vector": s.vector.source, "layer": s.at_layer,
                            "coef": s.coef, "mode": s.mode} for s in steerings]}
    atomic_write_text(out / TRAINING_FILE, json.dumps(record, indent=2) + "\n")
    atomic_write_text(out / "quarantine.jsonl", "".join(json.dumps(asdict(q)) + "\n" for q in result.quarantined))
    atomic_write_text(out / "losses.json", json.dumps(result.losses) + "\n")
    return out
