"""Trait definitions: a name, a description, contrastive prompts, questions and authored answers."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import AuditError

BUILTIN_DIR = Path(__file__).parent / "builtin"


@dataclass(frozen=True)
class Example:
    """One question with an authored answer that shows the trait and one that does not."""

    question: str
    split: str
    trait: str
    neutral: str


@dataclass(frozen=True)
class Trait:
    """The artifacts of one trait (METHOD.md section 1)."""

    name: str
    description: str
    instructions: list[dict[str, str]]
    questions: dict[str, list[str]]
    judge_rubric: str
    examples: list[Example] = field(default_factory=list)

    @classmethod
    def from_file(cls, path: Path) -> "Trait":
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            examples = [Example(**e) for e in data.get("examples", [])]
            return cls(name=data["name"], description=data["description"], instructions=data["instructions"],
                       questions=data["questions"], judge_rubric=data["judge_rubric"], examples=examples)
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise AuditError(f"{path}: not a valid trait file ({exc})") from exc

    def examples_in(self, split: str) -> list[Example]:
        return [e for e in self.examples if e.split == split]


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.json"))


def load_trait(name_or_path: str) -> Trait:
    """A built-in trait by name, or a trait file by path."""
    path = Path(name_or_path)
    if path.suffix == ".json" and path.is_file():
        return Trait.from_file(path)
    builtin = BUILTIN_DIR / f"{name_or_path}.json"
    if not builtin.is_file():
        raise AuditError(f"unknown trait {name_or_path!r}; built-in traits: {', '.join(builtin_names())}")
    return Trait.from_file(builtin)
