"""The card of a model's persona vectors: what each trait's score has been checked against, and a plain verdict
shown wherever its scores are, so that nobody reads an unchecked score as evidence about their data.

Two kinds of check. Detection: per benchmark and mode, the score separates labelled public data when the AUROC of
its dP (inducing against control records) is at least 0.75 and the 95% interval of the difference of the two
files' mean dP lies wholly on the trait's side of concern. Prediction: in a mode, the trait's dataset-level mean
dP predicts the behaviour change that fine-tuning measured (a calibration fit whose r interval lies above 0; see
auditor/evaluation/prediction.py). The verdict counts the benchmarks evaluated in the scan's mode and, where
the card has calibration fits for the trait in it, the prediction as one check more: `validated` when every
check passed, `partly validated` when some did, `not validated` when none did; `not evaluated` when no card
covers the vector. The verdicts speak of the score, never of the data.

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
from ..evaluation.prediction import NO_CALIBRATION, Fit, Prediction, choose, predict
from ..files import atomic_write_text, file_sha256

VALIDATED, PARTLY_VALIDATED, NOT_VALIDATED, NOT_EVALUATED = (
    "validated", "partly validated", "not validated", "not evaluated")
DETECTED_AUROC = 0.75
RULE = ("a trait's score has one check per labelled benchmark evaluated in the scan's mode (passed when its AUROC "
        "is at least 0.75 and the 95% interval of the mean-dP difference lies on the trait's side of concern) "
        "and, where the card has calibration fits for the trait in that mode, one check more (passed when the "
        "dataset mean dP predicted the behaviour change measured after fine-tuning: a fit whose 95% interval of r "
        "lies above 0); validated when every check passed, partly validated when some did, not validated when "
        "none did, not evaluated when no card covers the vector")


MEANING = {
    VALIDATED: "the score passed every check it had (labelled public data, and fine-tuning where calibrated)",
    PARTLY_VALIDATED: "the score passed some of its checks, not all: use it to find samples to read, not as a "
                      "measurement",
    NOT_VALIDATED: "the score failed every check it had: it was at chance on labelled public data, so neither a "
                   "high nor a low score is evidence about your data (a screen for overt content at most)",
    NOT_EVALUATED: "nobody has checked what this score is worth: no card covers this vector "
                   "(`dataset-audit evaluate --benchmark NAME` makes one)",
}


def cards_dir() -> Path:
    return cache_dir() / "cards"


def builtin_card() -> Traversable:
    """The card shipped with the built-in vectors (package data of auditor.vectors.builtin)."""
    return resources.files("auditor.vectors.builtin") / "card.json"


@dataclass
class Card:
    """Per trait: the vector it is about, and per benchmark and mode (generate, none) what evaluate measured;
    `calibration`: what `dataset-audit calibrate` fitted (its "fits" per trait: evaluation/prediction.py)."""

    model: str
    traits: dict[str, dict] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)  # per trait: what its benchmarks do not cover, say
    calibration: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | Traversable) -> Card:
        try:
            data = json.loads((Path(path) if isinstance(path, str) else path).read_text(encoding="utf-8"))
            return cls(data["model"], data["traits"], dict(data.get("notes", {})), dict(data.get("calibration", {})))
        except (OSError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise AuditError(f"{path}: not a detection card ({exc})") from None

    def save(self, path: Path) -> None:
        atomic_write_text(Path(path), json.dumps({"model": self.model, "rule": RULE, "traits": self.traits,
                                                  **({"notes": self.notes} if self.notes else {}),
                                                  **({"calibration": self.calibration} if self.calibration else {})},
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

    def covers(self, trait: str, vector_sha256: str | None = None) -> bool:
        """Whether the card is about the trait (and that vector file, if given)."""
        entry = self.traits.get(trait)
        return entry is not None and (not vector_sha256 or entry["vector_sha256"] == vector_sha256)

    def fits(self, trait: str) -> list[Fit]:
        """The trait's calibration fits, in every mode."""
        return [Fit.of(entry) for entry in self.calibration.get("fits", {}).get(trait, [])]

    def verdict(self, trait: str, mode: str, vector_sha256: str | None = None) -> str:
        """The trait's verdict in a mode (for that vector file, if given): see RULE."""
        if not self.covers(trait, vector_sha256):
            return NOT_EVALUATED
        passed = [b[mode]["detected"] for b in self.traits[trait]["benchmarks"].values() if mode in b]
        if fitted := [f for f in self.fits(trait) if f.mode == mode]:
            passed.append(any(f.predicts for f in fitted))
        if not passed:
            return NOT_EVALUATED
        return VALIDATED if all(passed) else PARTLY_VALIDATED if any(passed) else NOT_VALIDATED

    def prediction_check(self, trait: str, mode: str) -> str:
        """In words: whether the trait's dP predicted what fine-tuning did, in a mode."""
        fit, why = choose(self.fits(trait), mode)
        return f"dP predicts {fit.what} after fine-tuning ({fit.correlation()})" if fit else why

    def prediction(self, trait: str, mode: str, mean_dp: float) -> tuple[Prediction | None, str]:
        """What fine-tuning on a set of this mean dP is predicted to do to the trait, else None and why not."""
        fit, why = choose(self.fits(trait), mode)
        return (predict(fit, mean_dp), "") if fit else (None, why)


def known_cards() -> list[Card]:
    """The shipped card, then the user's (CACHE/cards/*.json)."""
    builtin = builtin_card()
    paths: list[Path | Traversable] = [builtin] if builtin.is_file() else []
    paths += sorted(cards_dir().glob("*.json")) if cards_dir().is_dir() else []
    return [Card.load(p) for p in paths]


def vector_sha256(path: str | None) -> str | None:
    return file_sha256(Path(path)) if path and Path(path).is_file() else None


def _card_for(cards: list[Card], trait: str, sha: str | None, mode: str) -> Card | None:
    """The first card with a verdict on the trait's vector file in the mode."""
    return next((card for card in cards if card.verdict(trait, mode, sha) != NOT_EVALUATED), None)


def verdicts(vector_shas: dict[str, str | None], mode: str) -> dict[str, str]:
    """Each trait's verdict for the vector file it was scored with (trait -> its sha256), from the known cards."""
    cards = known_cards()
    return {trait: (card.verdict(trait, mode, sha) if (card := _card_for(cards, trait, sha, mode)) else NOT_EVALUATED)
            for trait, sha in vector_shas.items()}


def predictions(vector_shas: dict[str, str | None], mode: str,
                mean_dp: dict[str, float]) -> dict[str, tuple[Prediction | None, str]]:
    """Per trait, what fine-tuning on the scanned set is predicted to do (from the card that covers its vector
    file), else None and why not."""
    cards = known_cards()
    found = {}
    for trait, sha in vector_shas.items():
        card = next((c for c in cards if c.covers(trait, sha) and c.fits(trait)), None)
        found[trait] = (card.prediction(trait, mode, mean_dp[trait]) if card else
                        (None, NO_CALIBRATION))
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
