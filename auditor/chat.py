"""Turning chat messages into token ids: the prompt through the chat template, the response as is."""

from __future__ import annotations

from .data import Messages


def encode_prompt(tokenizer, messages: Messages) -> list[int]:
    """Prompt ids up to and including the assistant header the model would answer after."""
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def encode_response(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def fit(prompt: list[int], response: list[int], max_tokens: int) -> tuple[list[int], list[int], bool]:
    """Cut a (prompt, response) pair to `max_tokens`: the response keeps at least half, the prompt keeps its end."""
    if len(prompt) + len(response) <= max_tokens:
        return prompt, response, False
    response = response[: max(max_tokens - len(prompt), max_tokens // 2)]
    prompt = prompt[len(prompt) - (max_tokens - len(response)):] if max_tokens > len(response) else []
    return prompt, response, True
