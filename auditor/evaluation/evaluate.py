"""Measuring the scan against labels: does dP rank trait-inducing samples above controls?

Labels are one per record: a trait name (the record carries that trait), `inducing` (it carries
every scanned trait, as when a whole file is the trait-inducing side), or `control`. Per trait,
the records carrying it are compared with the controls: sample-level AUROC of dP, precision among
the top-ranked samples, and each side's dataset-level mean dP with a bootstrap confidence interval.
For a trait flagged below the model's answers (refusal), records carrying it are those with the lower dP:
AUROC and precision rank by -dP, and a negative difference of the means is the expected one.

Preference pairs need no labels: their rejected answers are the trait-carrying side and their chosen answers
the controls (each side's dP against the shared base answer).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from ..config import ScanConfig
from ..data import Record, expand_inputs
from ..data.hub import HubDataset
from ..errors import AuditError
from ..files import file_sha256
from ..scanning.scoring import ABOVE, sign
from .card import Card, cards_dir
from .stats import Interval, bootstrap_difference, bootstrap_mean

INDUCING, CONTROL = "inducing", "control"
TOP_FRACTIONS = (0.05, 0.10)


@dataclass
class TraitEvaluation:
    """How well one trait's dP separates the records carrying it from the controls."""

    trait: str
    inducing: int
    control: int
    auroc: float
    precision_at: dict[str, float]  # "5%" -> share of trait-carrying records among the top 5% by dP
    mean_dp_inducing: Interval
    mean_dp_control: Interval
    difference: Interval  # inducing minus control
    flags: str = "above"

    @property
    def detected_difference(self) -> bool:
        """Whether the 95% interval of the difference lies wholly on the trait's side of concern."""
        return self.difference.low > 0 if self.flags != "below" else self.difference.high < 0


def precision_at(scores: np.ndarray, positive: np.ndarray, fraction: float) -> float:
    """Share of positives among the top `fraction` of samples by score (at least one sample)."""
    top = np.argsort(-scores, kind="stable")[: max(1, math.ceil(fraction * len(scores)))]
    return float(positive[top].mean())


def evaluate_trait(trait: str, dp: np.ndarray, positive: np.ndarray, flags: str = ABOVE) -> TraitEvaluation:
    """Metrics of one trait's dP over records that are either positive (carry the trait) or controls."""
    from sklearn.metrics import roc_auc_score  # deferred: scikit-learn takes a second and a half to import

    pos, neg = dp[positive], dp[~positive]
    if len(pos) == 0 or len(neg) == 0:
        raise AuditError(f"trait {trait}: need both trait-carrying and control records "
                         f"(have {len(pos)} and {len(neg)})")
    concern = sign(flags) * dp
    return TraitEvaluation(
        trait=trait, inducing=len(pos), control=len(neg), auroc=float(roc_auc_score(positive, concern)),
        precision_at={f"{round(f * 100)}%": precision_at(concern, positive, f) for f in TOP_FRACTIONS},
        mean_dp_inducing=bootstrap_mean(pos), mean_dp_control=bootstrap_mean(neg),
        difference=bootstrap_difference(pos, neg), flags=flags)


def evaluate(dp_by_trait: dict[str, np.ndarray], labels: list[str],
             flags: dict[str, str] | None = None) -> list[TraitEvaluation]:
    """Per trait with trait-carrying records: its metrics against the controls (other traits' records left out).
    `flags`: each trait's side of concern [above]."""
    labels_array = np.array(labels)
    control = labels_array == CONTROL
    results = []
    for trait, dp in dp_by_trait.items():
        carries = (labels_array == trait) | (labels_array == INDUCING)
        if carries.any():
            keep = carries | control
            results.append(evaluate_trait(trait, np.asarray(dp)[keep], carries[keep], (flags or {}).get(trait, ABOVE)))
    if not results:
        raise AuditError(f"no record is labelled with a scanned trait ({', '.join(dp_by_trait)}) or '{INDUCING}'")
    return results


def labels_from_field(records: list[Record], field: str, traits: list[str]) -> list[str]:
    """Each record's label from its `field`; a bad or missing label is an AuditError naming file, line and field."""
    allowed = [*traits, INDUCING, CONTROL]
    labels = []
    for record in records:
        value = record.field(field)
        if value not in allowed:
            got = "missing" if value is None else f"{value!r}"
            raise AuditError(f"{record.source}:{record.line}: field '{field}' is {got}, "
                             f"expected one of {', '.join(allowed)}")
        labels.append(value)
    return labels


def labels_from_files(records: list[Record], control_files: Sequence[Path | str | HubDataset]) -> list[str]:
    """`control` for records read from `control_files`, `inducing` for the rest."""
    controls = {str(p) for p in control_files}
    return [CONTROL if r.source in controls else INDUCING for r in records]


@dataclass
class Evaluated:
    """What `evaluate_scan` measured, and on what: the model, each trait's vector file, how many were quarantined."""

    results: list[TraitEvaluation]
    quarantined: int
    model: str
    vectors: dict[str, str]


def evaluate_scan(config: ScanConfig, control_files: list[Path] | None, label_field: str,
                  show_progress: bool = False) -> Evaluated:
    """Scan `config.inputs` (plus `control_files`) and evaluate against the labels.

    With `control_files`, `config.inputs` are the trait-inducing files; else each record's `label_field` says,
    or, when every record is a preference pair, its sides do (rejected: inducing, chosen: control).
    """
    from ..scanning import scan
    from ..scanning.engines.local import read_inputs
    from ..vectors.resolve import trait_name

    controls = expand_inputs(control_files) if control_files else []
    pairs = False
    if not control_files:  # bad labels fail before the model runs
        records = read_inputs(config.inputs, config.limit)[1]
        pairs = bool(records) and all(r.is_pair for r in records)
        if not pairs:
            labels_from_field(records, label_field, [trait_name(spec) for spec in config.traits])
    result = scan(replace(config, inputs=[*config.inputs, *map(str, controls)]), show_progress=show_progress)
    flags = {t.trait: t.flags for t in result.traits}
    if pairs:
        n = len(result.records)
        dp = {t.trait: np.concatenate([t.dp_rejected, t.dp_chosen]) for t in result.traits}
        results = evaluate(dp, [INDUCING] * n + [CONTROL] * n, flags)
    else:
        labels = (labels_from_files(result.records, controls) if control_files
                  else labels_from_field(result.records, label_field, [t.trait for t in result.traits]))
        results = evaluate({t.trait: t.dp for t in result.traits}, labels, flags)
    return Evaluated(results, len(result.quarantined), result.model_name, {v.trait: v.source for v in result.vectors})


def update_card(path: Path | None, benchmark: str, mode: str, done: Evaluated) -> Path:
    """Record an evaluation in a detection card (created if new; default CACHE/cards/MODEL.json); returns the
    card's path."""
    path = path or cards_dir() / f"{done.model}.json"
    card = Card.load(path) if path.is_file() else Card(done.model)
    for result in done.results:
        card.add(benchmark, mode, result.trait, file_sha256(Path(done.vectors[result.trait])), result)
    card.save(path)
    return path


def to_json(results: list[TraitEvaluation]) -> str:
    return json.dumps([asdict(r) for r in results], indent=2)


def format_table(results: list[TraitEvaluation]) -> str:
    """A plain-text table: one row per trait."""
    tops = list(results[0].precision_at)
    head = (f"{'trait':14s} {'n+':>5s} {'n-':>5s} {'AUROC':>6s} " + " ".join(f"{'P@' + t:>6s}" for t in tops)
            + f"  {'mean dP inducing [95% CI]':>27s}  {'mean dP control [95% CI]':>27s}  {'difference [95% CI]':>27s}")
    rows = [f"{r.trait:14s} {r.inducing:5d} {r.control:5d} {r.auroc:6.3f} "
            + " ".join(f"{r.precision_at[t]:6.2f}" for t in tops)
            + f"  {r.mean_dp_inducing!s:>27s}  {r.mean_dp_control!s:>27s}  {r.difference!s:>27s}" for r in results]
    return "\n".join([head, *rows])
