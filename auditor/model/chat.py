"""Turning chat messages into token ids: the prompt through the chat template, the response as is."""

from __future__ import annotations

from ..data import TOOL_RESPONSE, Messages, trained_text

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


def template_messages(tokenizer, messages: Messages) -> list[dict]:
    """Messages as the chat template takes them. A template that renders tools gets tool calls in OpenAI form and
    `tool` turns; for one that does not, an assistant's calls are written into its text (<tool_call>{json}
    </tool_call>) and a tool's result becomes a user turn <tool_response>RESULT</tool_response>."""
    template = tokenizer.chat_template
    tools = isinstance(template, str) and "tool_calls" in template
    shown = []
    for m in messages:
        if tools:
            item = {"role": m["role"], "content": m["content"]}
            if m.get("tool_calls"):
                item["tool_calls"] = [{"type": "function", "function": call} for call in m["tool_calls"]]
        elif m["role"] == "tool":
            item = {"role": "user", "content": TOOL_RESPONSE.format(m["content"])}
        else:
            item = {"role": m["role"], "content": trained_text(m) if m["role"] == "assistant" else m["content"]}
        shown.append(item)
    return shown


def encode_prompt(tokenizer, messages: Messages) -> list[int]:
    """Prompt ids up to and including the assistant header the model would answer after."""
    text = tokenizer.apply_chat_template(template_messages(tokenizer, messages), tokenize=False,
                                         add_generation_prompt=True)
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
