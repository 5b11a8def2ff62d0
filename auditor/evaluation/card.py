"""The detection card of a model's persona vectors: how well each trait's dP separates labelled public data,
and a plain verdict shown wherever its scores are, so that nobody reads an at-chance score as evidence.

Per benchmark and mode, a trait counts as detected when the AUROC of its dP (inducing against control
records) is at least 0.75 and the 95% interval of the difference of the two files' mean dP lies wholly
on the trait's side of concern. Its verdict: `trust` when detected on every benchmark it was evaluated on,
`screen only` when on some, `not detected` when on none; `not evaluated` when no card covers its vector.

A card belongs to vector files (by sha256): the shipped card (auditor/vectors/builtin/card.json) covers
the shipped vectors; `dataset-audit evaluate --benchmark NAME` writes cards for others into CACHE/cards/.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ..cache import cache_dir
from ..errors import AuditError
from ..files import atomic_write_text, file_sha256

TRUST, SCREEN_ONLY, NOT_DETECTED, NOT_EVALUATED = "trust", "screen only", "not detected", "not evaluated"
DETECTED_AUROC = 0.75
RULE = ("per benchmark: detected when AUROC >= 0.75 and the 95% interval of the mean-dP difference lies on the "
        "trait's side of concern; trait: trust when detected on every benchmark, screen only on some, not "
        "detected on none")


MEANING = {
    TRUST: "its scores separated every labelled benchmark it was checked on",
    SCREEN_ONLY: "its scores separated some labelled benchmarks, not all: use them to screen, then read the samples",
    NOT_DETECTED: "its scores were at chance on labelled public data, so they are no evidence either way "
                  "(a screen for overt content at most)",
    NOT_EVALUATED: "no detection card covers this vector (`dataset-audit evaluate --benchmark NAME` makes one)",
}


def cards_dir() -> Path:
    return cache_dir() / "cards"


def builtin_card() -> Traversable:
    """The card shipped with the built-in vectors (package data of auditor.vectors.builtin)."""
    return resources.files("auditor.vectors.builtin") / "card.json"


@dataclass
class Card:
    """Per trait: the vector it is about, and per benchmark and mode (generate, none) what evaluate measured."""

    model: str
    traits: dict[str, dict] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # per trait: what its benchmarks do not cover, say

    @classmethod
    def load(cls, path: Path | Traversable) -> Card:
        try:
            data = json.loads((Path(path) if isinstance(path, str) else path).read_text(encoding="utf-8"))
            return cls(data["model"], data["traits"], dict(data.get("notes", {})))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise AuditError(f"{path}: not a detection card ({exc})") from None

    def save(self, path: Path) -> None:
        atomic_write_text(Path(path), json.dumps({"model": self.model, "rule": RULE, "traits": self.traits,
                                                  **({"notes": self.notes} if self.notes else {})},
                                                 indent=2, sort_keys=True) + "\n")

    def add(self, benchmark: str, mode: str, trait: str, vector_sha256: str, evaluation) -> None:
        """Record one trait's evaluation (an evaluation.evaluate.TraitEvaluation) on a benchmark in a mode; a card
        about another file of that trait's vector starts afresh."""
        entry = self.traits.get(trait)
        if entry is None or entry["vector_sha256"] != vector_sha256:
            entry = self.traits[trait] = {"vector_sha256": vector_sha256, "flags": evaluation.flags,
                                          "benchmarks": {}}
        d = evaluation.difference
        entry["benchmarks"].setdefault(benchmark, {})[mode] = {
            "n": [evaluation.inducing, evaluation.control], "auroc": round(evaluation.auroc, 3),
            "difference": [round(d.mean, 3), round(d.low, 3), round(d.high, 3)],
            "detected": bool(evaluation.auroc >= DETECTED_AUROC and evaluation.detected_difference)}

    def verdict(self, trait: str, mode: str, vector_sha256: str | None = None) -> str:
        """The trait's verdict in a mode, from the benchmarks evaluated in it (for that vector file, if given)."""
        entry = self.traits.get(trait)
        if entry is None or (vector_sha256 and entry["vector_sha256"] != vector_sha256):
            return NOT_EVALUATED
        detected = [b[mode]["detected"] for b in entry["benchmarks"].values() if mode in b]
        if not detected:
            return NOT_EVALUATED
        return TRUST if all(detected) else SCREEN_ONLY if any(detected) else NOT_DETECTED


def known_cards() -> list[Card]:
    """The shipped card, then the user's (CACHE/cards/*.json)."""
    builtin = builtin_card()
    paths: list[Path | Traversable] = [builtin] if builtin.is_file() else []
    paths += sorted(cards_dir().glob("*.json")) if cards_dir().is_dir() else []
    return [Card.load(p) for p in paths]


def verdicts(vector_files: dict[str, str], mode: str) -> dict[str, str]:
    """Each trait's verdict for the vector file it was scored with (trait -> path), from the known cards."""
    found = {}
    cards = known_cards()
    for trait, path in vector_files.items():
        sha = file_sha256(Path(path)) if path and Path(path).is_file() else None
        found[trait] = next((v for card in cards if (v := card.verdict(trait, mode, sha)) != NOT_EVALUATED),
                            NOT_EVALUATED)
    return found


def card_table(card: Card, traits: list[str] | None = None) -> list[tuple[str, str, str, str, str, str]]:
    """Rows (trait, benchmark, mode, AUROC, difference [95% CI], detected) for printing."""
    rows = []
    for trait, entry in sorted(card.traits.items()):
        if traits is not None and trait not in traits:
            continue
        for name, modes in sorted(entry["benchmarks"].items()):
            for mode, r in sorted(modes.items()):
                mean, low, high = r["difference"]
                rows.append((trait, name, mode, f"{r['auroc']:.3f}", f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]",
                             "yes" if r["detected"] else "no"))
    return rows
