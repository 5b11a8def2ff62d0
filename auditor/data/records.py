"""What reading data gives: records normalised to chat messages, and quarantine entries for the rest."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from ..cache import content_hash

Messages = list[dict[str, str]]


class BadRecord(ValueError):
    """A record that cannot be scored; the message is its quarantine reason."""


@dataclass
class Record:
    """One input record, normalised to chat messages, with where it came from."""

    source: str
    line: int
    index: int
    messages: Messages
    raw: str = ""

    @property
    def sample_id(self) -> str:
        return content_hash(self.messages)

    def field(self, name: str) -> object:
        """A top-level field of the record as read (from `raw`); None if it is absent or the record no JSON object."""
        try:
            obj = json.loads(self.raw) if self.raw else None
        except (json.JSONDecodeError, RecursionError):
            return None
        return obj.get(name) if isinstance(obj, dict) else None

    def turns(self, which: str = "last") -> list[tuple[Messages, str]]:
        """(prompt messages, response) for each assistant turn to score: the last one or all."""
        positions = [i for i, m in enumerate(self.messages) if m["role"] == "assistant"]
        if which == "last":
            positions = positions[-1:]
        return [(self.messages[:i], self.messages[i]["content"]) for i in positions]

    def exchange(self) -> tuple[str, str]:
        """The scored exchange as text: the last user message before the last assistant turn, and that turn."""
        prompt, response = self.turns("last")[0]
        return next((m["content"] for m in reversed(prompt) if m["role"] == "user"), ""), response


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
