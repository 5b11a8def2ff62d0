"""Record formats: OpenAI messages, ShareGPT conversations, Alpaca, prompt/completion and prompt/response,
each normalised to chat messages (or a BadRecord naming the field that is wrong)."""

from __future__ import annotations

from .records import BadRecord, Messages

_ROLES = {
    "system": "system", "user": "user", "human": "user", "assistant": "assistant",
    "gpt": "assistant", "bot": "assistant", "model": "assistant", "tool": "tool", "function": "tool",
}


def _text(value: object, where: str) -> str:
    """Message content as text: a string, or OpenAI-style content parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        return "".join(str(p.get("text", "")) for p in value if p.get("type", "text") == "text")
    raise BadRecord(f"field '{where}' is {type(value).__name__}, expected text")


def _chat(turns: object, field_name: str, role_key: str, content_key: str) -> Messages:
    if not isinstance(turns, list):
        raise BadRecord(f"field '{field_name}' is {type(turns).__name__}, expected a list of messages")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise BadRecord(f"field '{field_name}[{i}]' is not an object")
        role = _ROLES.get(str(turn.get(role_key, "")).lower())
        if role is None:
            raise BadRecord(f"field '{field_name}[{i}].{role_key}': unknown role {turn.get(role_key)!r}")
        messages.append({"role": role, "content": _text(turn.get(content_key), f"{field_name}[{i}].{content_key}")})
    return messages


def _pair(prompt: object, response: object, names: tuple[str, str]) -> Messages:
    return [{"role": "user", "content": _text(prompt, names[0])},
            {"role": "assistant", "content": _text(response, names[1])}]


def conversation(obj: object) -> Messages:
    """Detect the record format (OpenAI, ShareGPT, Alpaca, prompt/completion) and return its messages."""
    if not isinstance(obj, dict):
        raise BadRecord(f"record is {type(obj).__name__}, expected an object")
    if "messages" in obj:
        messages = _chat(obj["messages"], "messages", "role", "content")
    elif "conversations" in obj:
        messages = _chat(obj["conversations"], "conversations", "from", "value")
    elif "instruction" in obj and "output" in obj:
        prompt = _text(obj["instruction"], "instruction")
        extra = _text(obj.get("input") or "", "input")
        messages = _pair(f"{prompt}\n\n{extra}" if extra.strip() else prompt, obj["output"], ("instruction", "output"))
    elif "prompt" in obj and ("completion" in obj or "response" in obj):
        key = "completion" if "completion" in obj else "response"
        messages = _pair(obj["prompt"], obj[key], ("prompt", key))
    else:
        keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
        raise BadRecord(f"unknown record format (fields: {keys}); expected messages, conversations, "
                        "instruction/output, prompt/completion or prompt/response")
    return messages


def to_messages(obj: object) -> Messages:
    """A record's messages, checked to end in a non-empty assistant turn that answers a user."""
    messages = conversation(obj)
    assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if not assistant:
        raise BadRecord("no assistant turn")
    if not messages[assistant[-1]]["content"].strip():
        raise BadRecord(f"empty response (assistant turn {assistant[-1]})")
    if not any(m["role"] == "user" and m["content"].strip() for m in messages[: assistant[-1]]):
        raise BadRecord("no user turn before the last assistant turn")
    return messages


