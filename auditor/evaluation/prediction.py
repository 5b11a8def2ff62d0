"""What fine-tuning on a scanned set is predicted to do, from the calibration fits in a model's card.

`dataset-audit calibrate` fits, per trait, measure and mode, the measured change after fine-tuning against the
set's dataset-level mean dP: change = a·x + b over n sets. At a scan's mean dP x the prediction is a·x + b with
the 95% prediction interval ± t·s·sqrt(1 + 1/n + (x − x_mean)² / x_ss). A fit *predicts* when the lower end of
its bootstrap 95% interval of Pearson r is above 0; a scan shows, among the fits in its mode that predict, the
one with the highest lower end, else no prediction and the reason.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from ..errors import AuditError

NO_CALIBRATION = "no calibration for this model (`dataset-audit calibrate` makes one)"


@dataclass(frozen=True)
class Fit:
    """One calibration fit of a card (its "calibration" block, under "fits" -> trait)."""

    measure: str  # preference, shift or refusal_rate (":SOURCE" for a measure on one source's items)
    what: str  # the measure in words: "the model's preference for evil answers over neutral ones"
    unit: str
    mode: str  # generate, none or prompt: how the sets' mean dP was computed
    a: float
    b: float
    n: int  # training sets
    x_mean: float
    x_ss: float
    s: float  # residual spread
    t: float  # Student t quantile for the 95% interval
    r: float
    r_low: float
    r_high: float

    @classmethod
    def of(cls, entry: dict) -> Fit:
        try:
            return cls(**{f.name: entry[f.name] for f in fields(cls)})
        except (KeyError, TypeError) as exc:
            raise AuditError(f"card: a calibration fit lacks {exc}") from None

    @property
    def predicts(self) -> bool:
        return self.r_low > 0

    def correlation(self) -> str:
        return f"r = {self.r:.2f} [{self.r_low:+.2f}, {self.r_high:+.2f}] over {self.n} sets"


@dataclass(frozen=True)
class Prediction:
    """The change fine-tuning on a set is predicted to make, with its 95% prediction interval."""

    measure: str
    what: str
    unit: str
    change: float
    low: float
    high: float
    r: float
    r_low: float
    r_high: float
    sets: int

    def sentence(self) -> str:
        verb = "raise" if self.change >= 0 else "lower"
        return (f"fine-tuning on this set is predicted to {verb} {self.what} by {self.change:+.2f} {self.unit} "
                f"[{self.low:+.2f}, {self.high:+.2f}]; r = {self.r:.2f} over {self.sets} sets")

    def to_json(self) -> dict:
        return {k: round(v, 6) if isinstance(v, float) else v for k, v in asdict(self).items()}

    @classmethod
    def from_json(cls, data: dict) -> Prediction:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def predict(fit: Fit, mean_dp: float) -> Prediction:
    """The fit's prediction at a set's mean dP."""
    change = fit.a * mean_dp + fit.b
    half = fit.t * fit.s * math.sqrt(1 + 1 / fit.n + (mean_dp - fit.x_mean) ** 2 / fit.x_ss)
    return Prediction(fit.measure, fit.what, fit.unit, change, change - half, change + half, fit.r, fit.r_low,
                      fit.r_high, fit.n)


def choose(fits: list[Fit], mode: str) -> tuple[Fit | None, str]:
    """The fit a scan in `mode` shows (the predicting one with the highest r_low), else None and why not."""
    mine = sorted((f for f in fits if f.mode == mode), key=lambda f: -f.r_low)
    if not fits:
        return None, NO_CALIBRATION
    if not mine:
        return None, f"no calibration in this scan's mode ({mode})"
    if not mine[0].predicts:
        return None, f"dP did not predict measured change for this trait ({mine[0].correlation()})"
    return mine[0], ""
