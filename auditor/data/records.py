"""What reading data gives: records normalised to chat messages, and quarantine entries for the rest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..cache import content_hash

Messages = list[dict]  # {"role", "content"}, plus "tool_calls" and "weight" where they apply (see formats.py)
TOOL_CALL = "<tool_call>{}</tool_call>"  # how a tool call reads as trained text
TOOL_RESPONSE = "<tool_response>{}</tool_response>"  # a tool's result, for a chat template without tool support
CHOSEN, REJECTED = "chosen", "rejected"  # the sides of a preference pair


class BadRecord(ValueError):
    """A record that cannot be scored; the message is its quarantine reason."""


def content_text(content: object) -> str | None:
    """Message content as text: a string, or the text of OpenAI-style content parts; None for anything else."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) for p in content):
        return "".join(str(p.get("text", "")) for p in content if p.get("type", "text") == "text")
    return None


def trained_text(message: dict) -> str:
    """What an assistant turn trains on, as text: its content, then each tool call as <tool_call>{json}</tool_call>."""
    calls = [TOOL_CALL.format(json.dumps(c, ensure_ascii=False)) for c in message.get("tool_calls", ())]
    return "\n".join(part for part in [message.get("content", ""), *calls] if part)


def trained_turns(messages: Messages, which: str = "last") -> list[tuple[Messages, str]]:
    """(prompt messages, trained text) for each assistant turn trained on (weight not 0): the last one or all."""
    positions = [i for i, m in enumerate(messages) if m["role"] == "assistant" and m.get("weight", 1)]
    if which == "last":
        positions = positions[-1:]
    return [(messages[:i], trained_text(messages[i])) for i in positions]


@dataclass
class Record:
    """One input record, normalised to chat messages, with where it came from. A preference pair holds its
    chosen conversation in `messages` and its rejected one in `rejected` (the same up to the last answer)."""

    source: str
    line: int
    index: int
    messages: Messages
    raw: str = ""
    rejected: Messages | None = None

    @property
    def sample_id(self) -> str:
        return content_hash(self.messages if self.rejected is None else [self.messages, self.rejected])

    @property
    def is_pair(self) -> bool:
        return self.rejected is not None

    def field(self, name: str) -> object:
        """A top-level field of the record as read (from `raw`); None if it is absent or the record no JSON object."""
        try:
            obj = json.loads(self.raw) if self.raw else None
        except (json.JSONDecodeError, RecursionError):
            return None
        return obj.get(name) if isinstance(obj, dict) else None

    def turns(self, which: str = "last") -> list[tuple[Messages, str]]:
        """(prompt messages, response) for each trained assistant turn to score: the last one or all."""
        return trained_turns(self.messages, which)

    def sides(self, which: str = "last") -> list[tuple[str, Messages, str]]:
        """The turns to score with their side: "" for each of a plain record's; for a preference pair its last
        chosen and its last rejected answer (CHOSEN, REJECTED), which share one prompt."""
        if self.rejected is None:
            return [("", prompt, response) for prompt, response in self.turns(which)]
        return [(side, *trained_turns(messages)[0]) for side, messages in ((CHOSEN, self.messages),
                                                                            (REJECTED, self.rejected))]

    def exchange(self) -> tuple[str, str]:
        """The scored exchange as text: the last user message before the last assistant turn, and that turn."""
        prompt, response = self.turns("last")[0]
        return next((m["content"] for m in reversed(prompt) if m["role"] == "user"), ""), response

    def rejected_response(self) -> str | None:
        """A preference pair's rejected answer (None for a plain record)."""
        return None if self.rejected is None else trained_turns(self.rejected)[0][1]


@dataclass
class Quarantined:
    """A record that was not scored, and why."""

    source: str
    line: int
    index: int
    reason: str
    raw: str = field(repr=False, default="")

    def to_json(self) -> dict:
        return {"source": self.source, "line": self.line, "index": self.index,
                "reason": self.reason, "raw": self.raw[:2000]}
