"""Record formats, each normalised to chat messages (or a BadRecord naming the field that is wrong):

- OpenAI `messages` (tool calls on assistant turns, `tool`/`function` results, a per-turn `weight`),
  ShareGPT `conversations`, Alpaca `instruction`/`input`/`output`, `prompt`/`completion`, `prompt`/`response`;
- preference pairs: `prompt`/`chosen`/`rejected` (each side a string or a message list) and HH-RLHF's
  full-conversation `chosen`/`rejected`: the chosen conversation, and the rejected one beside it;
- pre-templated `text` in ChatML (SmolLM2's own too), Llama-3, Gemma or Mistral `[INST]` form.

A message is {"role", "content"} plus, where they apply, "tool_calls" ([{"name", "arguments"}]) and
"weight" (0: not trained on). A turn's trained text is its content and its tool calls written out
(records.trained_text).
"""

from __future__ import annotations

import json
import re

from .records import BadRecord, Messages, content_text, trained_text

_ROLES = {
    "system": "system", "developer": "system", "user": "user", "human": "user", "assistant": "assistant",
    "gpt": "assistant", "bot": "assistant", "model": "assistant", "tool": "tool", "function": "tool",
    "ipython": "tool",
}


def _text(value: object, where: str) -> str:
    """Message content as text (records.content_text), else a BadRecord naming the field."""
    text = content_text(value)
    if text is None:
        raise BadRecord(f"field '{where}' is {type(value).__name__}, expected text")
    return text


def _calls(value: object, where: str) -> list[dict]:
    """OpenAI `tool_calls` ([{"type": "function", "function": {"name", "arguments"}}]) as [{"name", "arguments"}]."""
    if not isinstance(value, list):
        raise BadRecord(f"field '{where}' is {type(value).__name__}, expected a list of tool calls")
    calls = []
    for j, call in enumerate(value):
        function = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BadRecord(f"field '{where}[{j}]': expected a tool call with a function name")
        arguments = function.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                pass  # kept as the text it is
        calls.append({"name": function["name"], "arguments": arguments})
    return calls


def _chat(turns: object, field_name: str, role_key: str, content_key: str) -> Messages:
    if not isinstance(turns, list):
        raise BadRecord(f"field '{field_name}' is {type(turns).__name__}, expected a list of messages")
    messages = []
    for i, turn in enumerate(turns):
        where = f"{field_name}[{i}]"
        if not isinstance(turn, dict):
            raise BadRecord(f"field '{where}' is not an object")
        role = _ROLES.get(str(turn.get(role_key, "")).lower())
        if role is None:
            raise BadRecord(f"field '{where}.{role_key}': unknown role {turn.get(role_key)!r}")
        calls = _calls(turn["tool_calls"], f"{where}.tool_calls") if turn.get("tool_calls") else []
        content = turn.get(content_key)
        message: dict = {"role": role, "content": "" if content is None and (calls or role == "tool")
                         else _text(content, f"{where}.{content_key}")}
        if calls:
            message["tool_calls"] = calls
        if turn.get("weight") is not None:
            if turn["weight"] not in (0, 1):
                raise BadRecord(f"field '{where}.weight' is {turn['weight']!r}, expected 0 or 1")
            message["weight"] = int(turn["weight"])
        messages.append(message)
    return messages


def _pair(prompt: object, response: object, names: tuple[str, str]) -> Messages:
    return [{"role": "user", "content": _text(prompt, names[0])},
            {"role": "assistant", "content": _text(response, names[1])}]


# --- pre-templated text ----------------------------------------------------------------------------------

_TEMPLATES = [  # (name, a turn's pattern with `role` and `content` groups, role names)
    ("ChatML", re.compile(r"<\|im_start\|>(?P<role>\w+)\n(?P<content>.*?)(?:<\|im_end\|>|\Z)", re.S), {}),
    ("Llama-3", re.compile(r"<\|start_header_id\|>(?P<role>\w+)<\|end_header_id\|>\n\n(?P<content>.*?)"
                           r"(?:<\|eot_id\|>|\Z)", re.S), {}),
    ("Gemma", re.compile(r"<start_of_turn>(?P<role>\w+)\n(?P<content>.*?)(?:<end_of_turn>|\Z)", re.S),
     {"model": "assistant"}),
]
_INST = re.compile(r"\[INST\](?P<user>.*?)\[/INST\](?P<answer>.*?)(?=\[INST\]|\Z)", re.S)
_SYS = re.compile(r"<<SYS>>(?P<system>.*?)<</SYS>>", re.S)
TEXT_FORMATS = "ChatML, Llama-3, Gemma or Mistral [INST]"


def from_template(text: str) -> Messages:
    """Messages from text written with a known chat template; a BadRecord naming the `text` field otherwise."""
    for _name, pattern, roles in _TEMPLATES:
        turns = [(roles.get(m["role"], m["role"]), m["content"].strip()) for m in pattern.finditer(text)]
        if turns:
            return _chat([{"role": r, "content": c} for r, c in turns], "text", "role", "content")
    if _INST.search(text):
        messages: Messages = []
        for m in _INST.finditer(text):
            user = m["user"]
            if (system := _SYS.search(user)) and not messages:
                messages.append({"role": "system", "content": system["system"].strip()})
                user = _SYS.sub("", user)
            messages.append({"role": "user", "content": user.strip()})
            answer = m["answer"].replace("</s>", "").strip()
            if answer:
                messages.append({"role": "assistant", "content": answer})
        return messages
    raise BadRecord(f"field 'text' is not in a chat template this tool reads ({TEXT_FORMATS})")


# --- preference pairs ------------------------------------------------------------------------------------

_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


def _hh(transcript: str, where: str) -> Messages:
    parts = _HH_TURN.split("\n\n" + transcript.lstrip("\n"))
    if len(parts) < 3:
        raise BadRecord(f"field '{where}': expected a conversation (a string of Human:/Assistant: turns, or messages)")
    return [{"role": "user" if role == "Human" else "assistant", "content": text.strip()}
            for role, text in zip(parts[1::2], parts[2::2])]


def _side(value: object, prompt: Messages | None, where: str) -> Messages:
    """One side of a preference pair as a whole conversation (the prompt, then the answer)."""
    if isinstance(value, str):
        if prompt is None:
            return _hh(value, where)
        return prompt + [{"role": "assistant", "content": value}]
    messages = _chat(value, where, "role", "content")
    if prompt is None or messages[: len(prompt)] == prompt:
        return messages  # a whole conversation (implicit prompt)
    return prompt + messages


def preference(obj: dict) -> tuple[Messages, Messages]:
    """The chosen and the rejected conversation of a preference record; they must share everything up to the
    answer that differs (one prompt, one base answer)."""
    prompt = None
    if "prompt" in obj:
        prompt = ([{"role": "user", "content": obj["prompt"]}] if isinstance(obj["prompt"], str)
                  else _chat(obj["prompt"], "prompt", "role", "content"))
    chosen, rejected = _side(obj["chosen"], prompt, "chosen"), _side(obj["rejected"], prompt, "rejected")
    if chosen[:-1] != rejected[:-1] or chosen[-1]["role"] != "assistant" or rejected[-1]["role"] != "assistant":
        raise BadRecord("fields 'chosen'/'rejected': the two sides must be the same conversation up to a last "
                        "assistant answer")
    return chosen, rejected


def conversation(obj: object) -> Messages:
    """Detect the record format and return its messages (for a preference pair, the chosen conversation)."""
    return conversations(obj)[0]


def conversations(obj: object) -> tuple[Messages, Messages | None]:
    """Detect the record format: its messages, and for a preference pair the rejected conversation (else None)."""
    if not isinstance(obj, dict):
        raise BadRecord(f"record is {type(obj).__name__}, expected an object")
    if "chosen" in obj and "rejected" in obj:
        return preference(obj)
    return _messages(obj), None


def _messages(obj: dict) -> Messages:
    if "messages" in obj:
        return _chat(obj["messages"], "messages", "role", "content")
    if "conversations" in obj:
        return _chat(obj["conversations"], "conversations", "from", "value")
    if "instruction" in obj and "output" in obj:
        prompt = _text(obj["instruction"], "instruction")
        extra = _text(obj.get("input") or "", "input")
        return _pair(f"{prompt}\n\n{extra}" if extra.strip() else prompt, obj["output"], ("instruction", "output"))
    if "prompt" in obj and ("completion" in obj or "response" in obj):
        key = "completion" if "completion" in obj else "response"
        return _pair(obj["prompt"], obj[key], ("prompt", key))
    if isinstance(obj.get("text"), str):
        return from_template(obj["text"])
    keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
    raise BadRecord(f"unknown record format (fields: {keys}); expected {FORMATS_IN_WORDS}")


# The fields that make each record format (`chosen`/`rejected` may come with a `prompt`).
FORMAT_FIELDS = (("messages",), ("conversations",), ("chosen", "rejected"), ("instruction", "output"),
                 ("prompt", "completion"), ("prompt", "response"), ("text",))
FORMATS_IN_WORDS = "messages, conversations, prompt/chosen/rejected, instruction/output, prompt/completion, " \
                   "prompt/response or text"


def has_a_format(columns: list[str]) -> bool:
    """Whether a table with these columns (a CSV's header, a Parquet schema) can hold records of some format."""
    return any(set(fields) <= set(columns) for fields in FORMAT_FIELDS)


def check_messages(messages: Messages) -> Messages:
    """`messages`, checked to have a trained assistant turn with something to score after a user turn."""
    trained = [i for i, m in enumerate(messages) if m["role"] == "assistant" and m.get("weight", 1)]
    if not trained:
        raise BadRecord("no assistant turn" if not any(m["role"] == "assistant" for m in messages)
                        else "no trained assistant turn (every one has weight 0)")
    if not trained_text(messages[trained[-1]]).strip():
        raise BadRecord(f"empty response (assistant turn {trained[-1]})")
    if not any(m["role"] == "user" and m["content"].strip() for m in messages[: trained[-1]]):
        raise BadRecord("no user turn before the last assistant turn")
    return messages


def to_messages(obj: object) -> tuple[Messages, Messages | None]:
    """A record's messages and, for a preference pair, its rejected conversation, each checked (`check_messages`)."""
    messages, rejected = conversations(obj)
    if rejected is None:
        return check_messages(messages), None
    for side, conv in (("chosen", messages), ("rejected", rejected)):
        try:
            check_messages(conv)
        except BadRecord as exc:
            raise BadRecord(f"field '{side}': {exc}") from None
    return messages, rejected
