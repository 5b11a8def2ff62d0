"""Trait definitions: a name, a description, contrastive prompts, questions and authored answers.

Built-in traits ship in `builtin/`; user traits live in `<cache dir>/traits/NAME.json` (written by
`dataset-audit traits new`) or in any JSON file given by path. All share one format.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..cache import cache_dir
from ..errors import AuditError
from ..files import atomic_write_json

BUILTIN_DIR = Path(__file__).parent / "builtin"
SPLITS = ("extract", "eval")
PAIRS = 5  # contrastive system-prompt pairs per trait (docs/method.md §1)
QUESTIONS = 20  # questions per split
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_PLACEHOLDER = re.compile(r"\{[^{}\s]*\}|<[A-Za-z_ ]*trait[A-Za-z_ ]*>")


@dataclass(frozen=True)
class TraitExample:
    """One question with an authored answer that shows the trait and one that does not."""

    question: str
    split: str
    trait: str
    neutral: str


@dataclass(frozen=True)
class Trait:
    """The artifacts of one trait (docs/method.md §1)."""

    name: str
    description: str
    instructions: list[dict[str, str]]
    questions: dict[str, list[str]]
    judge_rubric: str
    examples: list[TraitExample] = field(default_factory=list)
    flags: str = "above"  # "below": a sample is a concern when it sits below the model's answer (refusal)

    @classmethod
    def from_file(cls, path: Path) -> Trait:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            examples = [TraitExample(**e) for e in data.get("examples", [])]
            return cls(name=data["name"], description=data["description"], instructions=data["instructions"],
                       questions=data["questions"], judge_rubric=data["judge_rubric"], examples=examples,
                       flags=data.get("flags", "above"))
        except (OSError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
            raise AuditError(f"{path}: not a valid trait file ({exc})") from exc

    def examples_in(self, split: str) -> list[TraitExample]:
        return [e for e in self.examples if e.split == split]

    def to_json(self) -> dict:
        data = asdict(self)
        if not self.examples:
            del data["examples"]
        if self.flags == "above":
            del data["flags"]
        return data

    def save(self, path: Path) -> None:
        atomic_write_json(Path(path), self.to_json())

    def problems(self, exact_counts: bool = True) -> list[str]:
        """What keeps these artifacts from being usable: counts (exactly the paper's, or the minimum to
        extract at all), empty or unfilled texts, repeated questions, rubric placeholders."""
        pairs = self.instructions if isinstance(self.instructions, list) else []
        found, questions = self._question_problems(exact_counts)
        found = self._instruction_problems(pairs, exact_counts) + found
        texts = [p.get(k) for p in pairs if isinstance(p, dict) for k in ("pos", "neg")] + questions
        unfilled = [m[0] for t in texts if isinstance(t, str) for m in _PLACEHOLDER.finditer(t)]
        if unfilled:
            found.append(f"unfilled placeholder {unfilled[0]} in the instructions or questions")
        for placeholder in ("{question}", "{answer}"):
            if not isinstance(self.judge_rubric, str) or self.judge_rubric.count(placeholder) != 1:
                found.append(f"judge_rubric must contain {placeholder} exactly once")
        if any(e.split not in SPLITS for e in self.examples):
            found.append(f"an example's split is not one of {', '.join(SPLITS)}")
        if self.flags not in ("above", "below"):
            found.append(f"flags must be 'above' or 'below', not {self.flags!r}")
        return found

    @staticmethod
    def _instruction_problems(pairs: list, exact_counts: bool) -> list[str]:
        found = []
        if not all(isinstance(p, dict) and _text(p.get("pos")) and _text(p.get("neg")) for p in pairs):
            found.append("every instruction needs non-empty 'pos' and 'neg' system prompts")
        elif any(p["pos"].strip() == p["neg"].strip() for p in pairs):
            found.append("an instruction's 'pos' and 'neg' prompts are identical")
        if len(pairs) != PAIRS if exact_counts else not pairs:
            found.append(f"{len(pairs)} instruction pairs (need {PAIRS if exact_counts else 'at least 1'})")
        return found

    def _question_problems(self, exact_counts: bool) -> tuple[list[str], list[str]]:
        """Problems of the two question lists, and all their questions."""
        found, questions = [], []
        for split in SPLITS:
            items = self.questions.get(split) if isinstance(self.questions, dict) else None
            if not isinstance(items, list) or not all(_text(q) for q in items):
                found.append(f"questions.{split} must be a list of non-empty strings")
                continue
            if len(items) != QUESTIONS if exact_counts else len(items) < 2:
                found.append(f"{len(items)} {split} questions (need {QUESTIONS if exact_counts else 'at least 2'})")
            questions += items
        counts = Counter(_normal(q) for q in questions)
        repeated = [q for q in questions if counts[_normal(q)] > 1]
        if repeated:
            found.append(f"{len(repeated)} questions are not distinct, e.g. {repeated[0]!r}")
        return found, questions


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _normal(question: str) -> str:
    return " ".join(re.sub(r"[^\w\s]", "", question.lower()).split())


def user_traits_dir() -> Path:
    return cache_dir() / "traits"


def builtin_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.json"))


def trait_files() -> dict[str, tuple[str, Path]]:
    """Every trait by name: ('built-in' or 'user', its file). A user file cannot shadow a built-in name."""
    found = {p.stem: ("built-in", p) for p in sorted(BUILTIN_DIR.glob("*.json"))}
    for path in sorted(user_traits_dir().glob("*.json")):
        found.setdefault(path.stem, ("user", path))
    return found


def check_name(name: str) -> str:
    """A usable new trait name: lowercase letters, digits, - and _, not a built-in one."""
    if not _NAME.fullmatch(name):
        raise AuditError(f"trait name {name!r}: use lowercase letters, digits, '-' and '_' (start with a letter)")
    if name in builtin_names():
        raise AuditError(f"{name} is a built-in trait; choose another name")
    return name


def load_trait(name_or_path: str) -> Trait:
    """A trait file by path, else a built-in or user trait by name."""
    path = Path(name_or_path)
    if path.suffix == ".json":
        if not path.is_file():
            raise AuditError(f"{path}: trait file not found")
        return Trait.from_file(path)
    known = trait_files()
    if name_or_path not in known:
        users = [n for n, (source, _) in known.items() if source == "user"]
        raise AuditError(f"unknown trait {name_or_path!r}; built-in traits: {', '.join(builtin_names())}"
                         + (f"; user traits: {', '.join(users)}" if users else "")
                         + " (create one with `dataset-audit traits new`)")
    return Trait.from_file(known[name_or_path][1])
