"""Turning chat messages into token ids: the prompt through the chat template, the response as is."""

from __future__ import annotations

from ..data import Messages

CHARS_PER_TOKEN_CAP = 32  # no token of a real vocabulary is longer: text past this can never fit


def clip_messages(messages: Messages, max_tokens: int) -> tuple[Messages, bool]:
    """Drop what could never fit in `max_tokens` before tokenizing it: early turns (each costs at least
    4 template tokens; a leading system message is kept) and the start of over-long messages."""
    keep, chars = max(max_tokens // 4, 1), max_tokens * CHARS_PER_TOKEN_CAP
    head = messages[:1] if messages and messages[0]["role"] == "system" else []
    clipped = head + messages[max(len(messages) - keep + len(head), len(head)):]
    clipped = [{**m, "content": m["content"][-chars:]} for m in clipped]
    return clipped, clipped != messages


def clip_response(text: str, max_tokens: int) -> tuple[str, bool]:
    """The start of a response that can still fit in `max_tokens`."""
    chars = max_tokens * CHARS_PER_TOKEN_CAP
    return text[:chars], len(text) > chars


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
