"""Pass/fail gates on a scan (`--fail-on EXPR`): parsing the expressions and checking them on scores.

    evil>=0.8             fails if any sample's evil_score is at or over 0.8
    evil:flagged>1%       fails if over 1% of the samples are flagged for evil
    evil:flagged>3        fails if over 3 samples are flagged for evil
    evil:mean_dp>0.1      fails if the mean evil dP over the samples is over 0.1; after `scan --base-sample N`, if
                          the low end of its 95% interval is (`<`: the high end), as the dP of most samples is
                          then an estimate
    refusal<=-0.8         fails if any sample's refusal_score is at or under -0.8 (refusal is flagged below)
    evil:predicted>0.05   fails if fine-tuning on the set is predicted to raise the trait's measure by over 0.05
                          even at the low end of the 95% prediction interval (`<`: at its high end); an error
                          when the card has no prediction for the trait (evaluation/prediction.py)

`>`, `>=`, `<` and `<=` work with every metric; `score` is the default metric (`evil:score>=0.8` is `evil>=0.8`).
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from ..errors import AuditError
from ..scanning.result import column, table_traits, trait_sign

METRICS = ("score", "flagged", "mean_dp", "predicted")
OPERATORS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}
SYNTAX = ("TRAIT>=SCORE, TRAIT<=SCORE, TRAIT:flagged>COUNT, TRAIT:flagged>PERCENT%, TRAIT:mean_dp>DP or "
          "TRAIT:predicted>CHANGE")
_EXPRESSION = re.compile(
    r"\s*(?P<trait>[\w.-]+)(?::(?P<metric>\w+))?\s*(?P<op>>=|>|<=|<)\s*"
    r"(?P<value>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(?P<percent>%)?\s*"
)


@dataclass(frozen=True)
class Gate:
    """One `--fail-on` expression: the scan fails when `<metric of trait> <op> <value>` holds."""

    text: str
    trait: str
    metric: str
    op: str
    value: float
    percent: bool = False

    @classmethod
    def parse(cls, text: str) -> Gate:
        match = _EXPRESSION.fullmatch(text)
        if not match:
            raise AuditError(f"expected {SYNTAX}", "fail_on", text)
        metric = match["metric"] or "score"
        if metric not in METRICS:
            raise AuditError(f"unknown metric '{metric}' (use flagged, mean_dp or predicted)", "fail_on", text)
        if match["percent"] and metric != "flagged":
            raise AuditError("a percentage only works with TRAIT:flagged", "fail_on", text)
        return cls(text.strip(), match["trait"], metric, match["op"], float(match["value"]), bool(match["percent"]))


@dataclass(frozen=True)
class Offender:
    """A sample that breaks a gate, and where it is."""

    source: str
    line: int
    sample_id: str
    score: float
    dp: float

    @property
    def where(self) -> str:
        return f"{self.source}:{self.line}"


@dataclass(frozen=True)
class GateResult:
    """A gate checked on a set of samples: the verdict, what was measured, and the samples that break it."""

    gate: Gate
    failed: bool
    observed: str
    offenders: tuple[Offender, ...]  # highest first

    @property
    def verdict(self) -> str:
        return f"{'FAILED' if self.failed else 'passed'} {self.gate.text}: {self.observed}"

    def lines(self, shown: int = 5) -> list[str]:
        """The verdict, then (for a failed gate) the top `shown` offenders with their score."""
        if not self.failed:
            return [self.verdict]
        trait = self.gate.trait
        rows = [f"    {o.where}  {trait} score {o.score:.2f} (dP {o.dp:+.3f})" for o in self.offenders[:shown]]
        rest = len(self.offenders) - shown
        return [self.verdict, *rows, *([f"    ... and {rest} more"] if rest > 0 else [])]


def check_traits(gates: list[Gate], traits: list[str]) -> None:
    """An AuditError for a gate on a trait that the scan does not score."""
    for gate in gates:
        if gate.trait not in traits:
            raise AuditError(f"trait '{gate.trait}' is not scanned (traits: {', '.join(traits)})", "fail_on",
                             gate.text)


def _offenders(table: pa.Table, rows: np.ndarray, score: np.ndarray, dp: np.ndarray) -> tuple[Offender, ...]:
    source, line, sample_id = (column(table, c) for c in ("source", "line", "sample_id"))
    return tuple(Offender(str(source[i]), int(line[i]), str(sample_id[i]), float(score[i]), float(dp[i])) for i in rows)


def _gated_end(gate: Gate, low: float, high: float) -> tuple[float, str]:
    """The end of an interval that a gate is checked on, and its name: the one nearest the gate's value (the low
    end for `>`, the high end for `<`), so the gate fails only when the whole interval is past it."""
    return (high, "high") if gate.op.startswith("<") else (low, "low")


def check_prediction(gate: Gate, found: dict) -> GateResult:
    """Check a TRAIT:predicted gate on summary.json's traits.TRAIT (its prediction, or the note on why there is
    none): on the prediction interval's end nearest the gate's value (the low end for `>`, the high end for `<`)."""
    prediction = found.get("prediction")
    if not prediction:
        why = found.get("prediction_note") or "the scan did not record one"
        raise AuditError(f"--fail-on {gate.text!r}: no prediction for {gate.trait} ({why})")
    end, name = _gated_end(gate, prediction["low"], prediction["high"])
    failed = bool(OPERATORS[gate.op](end, gate.value))
    observed = (f"predicted change in {prediction['measure']} {prediction['change']:+.3f} [{prediction['low']:+.3f}, "
                f"{prediction['high']:+.3f}], gated on its {name} end")
    return GateResult(gate, failed, observed, ())


def _mean_dp(gate: Gate, dp: np.ndarray, estimate: dict | None) -> tuple[bool, str]:
    """Whether a TRAIT:mean_dp gate fails on these dPs, and what was measured; with a base-sample `estimate`
    (summary.json's traits.TRAIT.base_sample, over the same samples), on its interval's end nearest the gate's value
    (the low end for `>`, the high end for `<`)."""
    test, n = OPERATORS[gate.op], len(dp)
    if not estimate:
        mean = float(dp.mean()) if n else 0.0
        return bool(n and test(mean, gate.value)), f"mean dP {mean:+.3f} over {n} samples"
    low, high = estimate["mean_dp_ci95"]
    end, name = _gated_end(gate, low, high)
    return bool(test(end, gate.value)), (
        f"mean dP {estimate['mean_dp']:+.3f} [{low:+.3f}, {high:+.3f}] over {n} samples, estimated from base answers "
        f"to {estimate['n']} of them (--base-sample), gated on its interval's {name} end")


def check_gate(gate: Gate, table: pa.Table, estimate: dict | None = None) -> GateResult:
    """Check one gate on the samples of a scores table (not a TRAIT:predicted one: check_prediction); a mean_dp gate
    after a base-sample scan on the `estimate` for these samples (summary.json's traits.TRAIT.base_sample)."""
    test = OPERATORS[gate.op]
    score, dp = column(table, f"{gate.trait}_score"), column(table, f"{gate.trait}_dp")
    flagged = column(table, f"{gate.trait}_flagged").astype(bool)
    n = len(score)
    if gate.metric == "score":
        rows = np.flatnonzero(test(score, gate.value))
        failed = rows.size > 0
        observed = f"{rows.size} of {n} samples score {gate.op} {gate.value:g}"
        if n:
            observed += f" (min {score.min():.2f})" if gate.op.startswith("<") else f" (max {score.max():.2f})"
    elif gate.metric == "flagged":
        rows = np.flatnonzero(flagged)
        share = rows.size / n if n else 0.0
        failed = bool(test(100 * share if gate.percent else rows.size, gate.value))
        observed = f"{rows.size} of {n} samples flagged ({share:.1%})"
    else:
        failed, observed = _mean_dp(gate, dp, estimate)
        rows = np.flatnonzero(test(dp, gate.value))
    key = dp if gate.metric == "mean_dp" else score
    if gate.op.startswith("<") or (gate.metric == "flagged" and trait_sign(table.schema, gate.trait) < 0):
        key = -key  # the samples furthest past the gate first
    rows = rows[np.argsort(-key[rows], kind="stable")]
    return GateResult(gate, failed, observed, _offenders(table, rows, score, dp) if failed else ())


def check_gates(gates: list[Gate], table: pa.Table, traits: dict[str, dict] | None = None) -> list[GateResult]:
    """Check every gate on the samples of a scores table (e.g. only the new ones of a --baseline scan) and on
    summary.json's `traits` (the whole scan's predictions; a base-sample estimate, which covers the computed
    samples: those of the table)."""
    check_traits(gates, table_traits(table.schema))
    found = traits or {}
    return [check_prediction(gate, found.get(gate.trait, {})) if gate.metric == "predicted" else
            check_gate(gate, table, found.get(gate.trait, {}).get("base_sample")) for gate in gates]
