"""Deployment monitor: project each prompt's last-token activation on the trait vectors (docs/method.md).

A high projection predicts that the model is about to answer with the trait. `z` compares it with the
same model's projections on the trait's ordinary evaluation questions (mean 0, std 1 there).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..data import BadRecord, Messages, conversation, open_binary, parse_line
from ..errors import AuditError
from ..files import atomic_write_text
from ..model.chat import encode_prompt
from ..model.loading import LoadedModel
from ..vectors.persona import PersonaVector
from .shift import prompt_projections, question_prompts


@dataclass
class Prompt:
    line: int
    messages: Messages

    @property
    def text(self) -> str:
        return self.messages[-1]["content"]


def read_prompts(path: Path) -> list[Prompt]:
    """Prompts from a .txt file (one per line) or JSONL: a string, {"prompt": ...} or a chat record
    (a trailing assistant turn is dropped: the prompt is what comes before it)."""
    if not path.is_file():
        raise AuditError(f"{path}: file not found")
    prompts = []
    with open_binary(path) as fh:
        for number, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            if path.suffix == ".txt":
                prompts.append(Prompt(number, [{"role": "user", "content": raw.decode("utf-8").strip()}]))
                continue
            obj, _text = parse_line(raw, number)
            if isinstance(obj, BadRecord):
                raise AuditError(f"{path}:{number}: {obj}")
            prompts.append(Prompt(number, _prompt_messages(obj, path, number)))
    if not prompts:
        raise AuditError(f"{path}: no prompts")
    return prompts


def _prompt_messages(obj: object, path: Path, number: int) -> Messages:
    if isinstance(obj, str):
        return [{"role": "user", "content": obj}]
    if isinstance(obj, dict) and isinstance(obj.get("prompt"), str):
        return [{"role": "user", "content": obj["prompt"]}]
    try:
        messages = conversation(obj)
    except BadRecord as exc:
        raise AuditError(f"{path}:{number}: {exc}") from exc
    while messages and messages[-1]["role"] == "assistant":
        messages = messages[:-1]
    if not messages:
        raise AuditError(f"{path}:{number}: field 'messages': no turn before the assistant's")
    return messages


def monitor(lm: LoadedModel, prompts: list[Prompt], vectors: list[PersonaVector],
            batch_size: int = 8) -> list[dict]:
    """One row per prompt: line, prompt text, and per trait `<trait>_projection` and `<trait>_z`."""
    ids = [encode_prompt(lm.tokenizer, p.messages) for p in prompts]
    rows = [{"line": p.line, "prompt": p.text} for p in prompts]
    for vector in vectors:
        reference = prompt_projections(lm, vector, question_prompts(lm, vector.trait), batch_size)
        projections = prompt_projections(lm, vector, ids, batch_size)
        z = (projections - reference.mean()) / max(reference.std(ddof=1), 1e-6)
        for row, p, zi in zip(rows, projections, z):
            row[f"{vector.trait}_projection"] = round(float(p), 4)
            row[f"{vector.trait}_z"] = round(float(zi), 3)
    return rows


def write_json(rows: list[dict], path: Path) -> None:
    atomic_write_text(Path(path), json.dumps(rows, indent=2, ensure_ascii=False) + "\n")
