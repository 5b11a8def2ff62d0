"""The fine-tuning calibration study: does a set's dataset-level mean dP predict what fine-tuning on it does?

For each training set, on the base model: the mean dP of every trait in three modes -- `generate` (the model's
own answer is the reference), `none` (cheap mode: the vector's neutral calibration mean) and `prompt` (the
paper's App. I reference: the projection of the last prompt token). Then one LoRA run with the fixed recipe
(auditor.steering.training, what `dataset-audit train` runs) and the change it caused, tuned minus base: every
trait's activation shift (`dataset-audit shift`) and the behaviour measures of auditor.measures.behaviour.
Each finished set is written to DIR/sets/NAME.json at once, so an interrupted study resumes where it stopped;
a set is recomputed only when its data, the model, the vectors, the probes or the recipe changed.

The fit, per trait x measure x mode over the sets: change = a * mean_dP + b (least squares). b is the drift
that fine-tuning on anything causes here; a * x is the data's own push. r (Pearson) and rho (Spearman) carry
percentile bootstrap 95% intervals (the sets resampled). The prediction interval at x is
a*x + b +- t * s * sqrt(1 + 1/n + (x - x_mean)^2 / x_ss), t the Student t 0.975 quantile with n-2 degrees of
freedom and s the larger of the residual SD and the leave-one-source-out RMSE (each source's sets predicted by a
fit on the other sources), so it covers the spread between sources and not only the fit's. Within-source
order: over every two sets of one source with different dP, whether the one with the higher dP changed more.
"""

from __future__ import annotations

import copy
import gc
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
from scipy import stats

from ..cache import content_hash
from ..config import CalibrateConfig, ScanConfig, TrainConfig
from ..data import REJECTED, Record, expand_inputs, read_records
from ..errors import AuditError
from ..files import atomic_write_text, file_sha256
from ..measures.behaviour import Measure, Probes, authored_pairs, given_pairs, measure_behaviour, shift_measure
from ..measures.monitor import read_prompts
from ..measures.shift import fine_tuning_shift
from ..model.activations import last_token_states
from ..model.chat import encode_prompt
from ..model.loading import LoadedModel
from ..progress import progress
from ..scanning.projection import ModelProjector, project
from ..scanning.scoring import projection_difference
from ..steering.training import read_examples, train
from ..traits import load_trait
from ..vectors.pairs import read_pairs
from ..vectors.persona import PersonaVector

if TYPE_CHECKING:
    from peft import PeftModel

MODES = ("generate", "none", "prompt")
SETS_DIR, BASE_FILE, RESULT_FILE = "sets", "base.json", "calibration.json"
ROUNDS = 2000  # bootstrap resamples of the sets
MIN_SETS = 3  # a line through fewer points has no spread to report


@dataclass(frozen=True)
class TrainingSet:
    """One training set of the study: its name (file or folder name), source, and path."""

    name: str
    source: str
    path: str

    @classmethod
    def parse(cls, arg: str) -> TrainingSet:
        """PATH (the source is the parent folder's name) or SOURCE:PATH."""
        path, source = Path(arg), ""
        if not path.exists():
            source, sep, rest = arg.partition(":")
            path = Path(rest)
            if not sep or not source or not path.exists():
                raise AuditError(f"{arg}: no such file or folder (give PATH or SOURCE:PATH)")
        name = path.name.split(".")[0] if path.is_file() else path.resolve().name
        return cls(name, source or path.resolve().parent.name, str(path))


def parse_sets(args: list[str]) -> list[TrainingSet]:
    sets = [TrainingSet.parse(a) for a in args]
    names = [s.name for s in sets]
    for name in names:
        if names.count(name) > 1:
            raise AuditError(f"two training sets are named {name!r}; every set needs its own file or folder name")
    if len(sets) < MIN_SETS:
        raise AuditError(f"{len(sets)} training sets: a calibration needs at least {MIN_SETS}")
    return sets


@dataclass(frozen=True)
class Recipe:
    """The one fine-tuning recipe every set is trained with."""

    r: int
    alpha: int
    lr: float
    steps: int
    batch_size: int
    seed: int
    max_tokens: int
    method: str = "lora"

    @classmethod
    def of(cls, config: CalibrateConfig) -> Recipe:
        return cls(config.lora_r, config.lora_alpha, config.lr, config.steps, config.batch_size, config.seed,
                   config.max_tokens)

    def to_json(self) -> dict:
        data = asdict(self)
        return {"method": data.pop("method"), **data}

    def train_config(self, model: str, examples: int) -> TrainConfig:
        epochs = math.ceil(self.steps * self.batch_size / examples)  # enough passes for the fixed number of steps
        return TrainConfig(model=model, batch_size=self.batch_size, lora_r=self.r, lora_alpha=self.alpha, lr=self.lr,
                           max_steps=self.steps, epochs=epochs, max_tokens=self.max_tokens, seed=self.seed)


# ---- the measurements -------------------------------------------------------------------------------------------


def build_probes(config: CalibrateConfig, traits: list[str]) -> Probes:
    """The authored eval split of every trait, the --pairs files, and the --refusal-prompts (each cut to
    --probe-limit items)."""
    preferences = [authored_pairs(spec) for spec in config.traits if load_trait(spec).examples_in("eval")]
    for item in config.pairs:
        trait, sep, file = item.partition("=")
        if not sep or not trait or not file:
            raise AuditError(f"--pairs {item!r}: expected TRAIT=FILE, e.g. hallucinating=truthfulqa.jsonl")
        if trait not in traits:
            raise AuditError(f"--pairs {item!r}: {trait!r} is not in --traits ({', '.join(traits)})")
        if not Path(file).is_file():
            raise AuditError(f"--pairs {item!r}: {file}: file not found")
        preferences.append(given_pairs(trait, Path(file).name.split(".")[0], read_pairs(Path(file))))
    refusals = [p.messages for p in read_prompts(Path(config.refusal_prompts))] if config.refusal_prompts else []
    limit = config.probe_limit
    return Probes([replace(p, pairs=p.pairs[:limit]) for p in preferences], refusals[:limit])


def dataset_dp(lm: LoadedModel, vectors: list[PersonaVector], path: str, config: CalibrateConfig,
               show: bool) -> tuple[int, dict[str, dict[str, float]]]:
    """The set's scored records, and its mean dP per trait and mode, through the scan's own model seam."""
    scan_config = ScanConfig(model=config.model, device=config.device, dtype=config.dtype,
                             batch_size=config.batch_size, inputs=[path], traits=config.traits,
                             max_tokens=config.max_tokens, max_new_tokens=config.max_new_tokens)
    records = [r for p in expand_inputs([path]) for r in read_records(p) if isinstance(r, Record)]
    if not records:
        raise AuditError(f"{path}: no readable records")
    projector = ModelProjector(lm, vectors, scan_config)
    units = [u for u in projector.units(records, np.zeros(len(records), dtype=bool)) if u.side != REJECTED]
    measured = projector.measure(units, show)
    assert measured.base is not None  # the scan config generates base answers
    layers = sorted({v.layer for v in vectors})
    last = project(last_token_states(lm, [u.prompt for u in units], layers, config.batch_size), layers, vectors)
    means = {}
    for j, vector in enumerate(vectors):
        references = {"generate": measured.base[:, j], "none": None, "prompt": last[:, j]}
        means[vector.trait] = {mode: float(projection_difference(vector, measured.sample[:, j], ref).mean())
                               for mode, ref in references.items()}
    return len(records), means


def fine_tune(base: LoadedModel, examples: list, recipe: Recipe, show: bool) -> tuple[LoadedModel, list[float]]:
    """A copy of the base model fine-tuned with the recipe (LoRA merged in); the base is left as it was."""
    lm = replace(base, model=copy.deepcopy(base.model))
    losses: list[float] = []
    with progress(recipe.steps, "fine-tuning", show, unit="step") as step:
        def on_step(_step: int, loss: float) -> None:
            losses.append(loss)
            step(1)

        model = train(lm, examples, recipe.train_config(base.path or base.name, len(examples)), [], on_step)
    tuned = cast("PeftModel", model).merge_and_unload().eval()  # the recipe trains LoRA adapters
    return replace(lm, model=tuned, name=f"{base.name}+tuned", is_default=False), losses


@dataclass
class Study:
    """A study's inputs, loaded once: the base model, its vectors, the probes, the recipe."""

    config: CalibrateConfig
    base: LoadedModel
    vectors: list[PersonaVector]
    probes: Probes
    recipe: Recipe

    @property
    def traits(self) -> list[str]:
        return [v.trait for v in self.vectors]

    @property
    def measures(self) -> list[Measure]:
        return [shift_measure(t) for t in self.traits] + [m for m in self.probes.measures if m.trait in self.traits]

    def key(self) -> dict:
        """What a result depends on besides the set's own data."""
        return {"model": self.base.name, "fp": self.base.fingerprint(), "dtype": str(self.base.dtype),
                "vectors": content_hash([[v.trait, v.layer, v.unit().tolist()] for v in self.vectors]),
                "probes": self.probes.key(), "recipe": self.recipe.to_json(),
                "max_new_tokens": self.config.max_new_tokens}

    def base_values(self, out: Path, show: bool) -> dict[str, float]:
        """The base model's behaviour measures by 'trait/measure' (DIR/base.json, reused)."""
        path, key = out / BASE_FILE, content_hash(self.key())
        if path.is_file() and (known := json.loads(path.read_text(encoding="utf-8"))).get("key") == key:
            return known["values"]
        with progress(len(self.probes.measures), "base model's behaviour", show, unit="measure") as step:
            values = {f"{t}/{m}": v for (t, m), v in measure_behaviour(self.base, self.probes, self.config.batch_size,
                                                                           step).items()}
        atomic_write_text(path, json.dumps({"key": key, "values": values}, indent=2) + "\n")
        return values

    def run_set(self, item: TrainingSet, base_values: dict[str, float], show: bool) -> dict:
        """Everything measured for one set (dP on the base model, fine-tuning, the change it caused)."""
        started = time.monotonic()
        records, mean_dp = dataset_dp(self.base, self.vectors, item.path, self.config, show)
        examples, _ = read_examples(self.base, [item.path], self.recipe.max_tokens)
        held = {tuple(encode_prompt(self.base.tokenizer, p)) for p in self.probes.prompts()}
        kept = [e for e in examples if tuple(e.prompt) not in held]
        if not kept:
            raise AuditError(f"{item.path}: every training example's prompt is a held-out probe")
        tuned, losses = fine_tune(self.base, kept, self.recipe, show)
        change: dict[str, dict[str, float]] = {t: {} for t in self.traits}
        for s in fine_tuning_shift(self.base, tuned, self.vectors, self.config.batch_size):
            change[s.trait]["shift"] = s.shift
        with progress(len(self.probes.measures), "fine-tuned model's behaviour", show, unit="measure") as step:
            values = measure_behaviour(tuned, self.probes, self.config.batch_size, step)
        for (trait, measure), value in values.items():
            if trait in change:
                change[trait][measure] = value - base_values[f"{trait}/{measure}"]
        return {"name": item.name, "source": item.source, "path": item.path, "records": records,
                "examples": len(kept), "held_out_dropped": len(examples) - len(kept), "mean_dp": mean_dp,
                "change": change, "losses": losses, "seconds": round(time.monotonic() - started, 1)}


def set_key(study_key: dict, item: TrainingSet) -> str:
    # a training set is local files, which expand_inputs lists as Paths
    return content_hash({**study_key, "data": [file_sha256(cast(Path, p)) for p in expand_inputs([item.path])]})


def run_study(study: Study, sets: list[TrainingSet], out: Path, command: str, show: bool,
              on_set: Callable[[dict], None] | None = None) -> dict:
    """Measure every set (reusing finished ones in `out`/sets/), fit, and write `out`/calibration.json."""
    base_values = study.base_values(out, show)
    study_key, results, computed = study.key(), [], []
    with progress(len(sets), "training sets", show, unit="set") as step:
        for item in sets:
            path, key = out / SETS_DIR / f"{item.name}.json", set_key(study_key, item)
            result = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None
            if result is None or result.get("key") != key:
                result = {**study.run_set(item, base_values, show), "key": key}
                gc.collect()  # the fine-tuned copy sits in reference cycles (peft); free it before the next set
                atomic_write_text(path, json.dumps(result, indent=2) + "\n")
                computed.append(item.name)
            results.append({**result, "source": item.source})
            if on_set:
                on_set(result)
            step(1)
    fits, unfitted = fit_all(results, study.measures)
    summary = {"model": study.base.name, "command": command, "recipe": study.recipe.to_json(), "modes": list(MODES),
               "measures": [asdict(m) for m in study.measures], "base": base_values, "sets": results,
               "computed": computed, "fits": fits, "unfitted": unfitted}
    atomic_write_text(out / RESULT_FILE, json.dumps(summary, indent=2) + "\n")
    return summary


# ---- the fits -----------------------------------------------------------------------------------------------------


@dataclass
class Fit:
    """change = a * mean_dP + b over the sets, with its spread and how well dP orders the change."""

    measure: str
    what: str
    unit: str
    mode: str
    a: float
    b: float
    n: int
    sources: int
    x_mean: float
    x_ss: float
    s: float
    t: float
    residual_sd: float
    loso_rmse: float | None  # None with a single source
    r: float
    r_low: float
    r_high: float
    rho: float
    rho_low: float
    rho_high: float
    within_source: list[int]  # [right, total]

    def predict(self, x: float) -> tuple[float, float, float]:
        """The predicted change at mean dP x, and its 95% prediction interval."""
        change = self.a * x + self.b
        half = self.t * self.s * math.sqrt(1 + 1 / self.n + (x - self.x_mean) ** 2 / self.x_ss)
        return change, change - half, change + half

    @property
    def predicts(self) -> bool:
        """Whether dP predicts the change: r > 0 and its interval excludes 0."""
        return self.r > 0 and self.r_low > 0


def _row_correlations(xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of [rounds, n] arrays (NaN where a row is constant)."""
    xc, yc = xs - xs.mean(axis=1, keepdims=True), ys - ys.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=1) / np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))


def bootstrap_correlations(x: np.ndarray, y: np.ndarray, rounds: int = ROUNDS,
                           seed: int = 0) -> tuple[tuple[float, float], tuple[float, float]]:
    """Percentile 95% intervals of Pearson r and Spearman rho, the (x, y) points resampled together."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(x), (rounds, len(x)))
    xs, ys = x[picks], y[picks]
    pearson = _row_correlations(xs, ys)
    spearman = _row_correlations(stats.rankdata(xs, axis=1), stats.rankdata(ys, axis=1))
    (r_low, r_high), (rho_low, rho_high) = (np.nanpercentile(pearson, [2.5, 97.5]),
                                            np.nanpercentile(spearman, [2.5, 97.5]))
    return (float(r_low), float(r_high)), (float(rho_low), float(rho_high))


def within_source(x: np.ndarray, y: np.ndarray, sources: list[str]) -> list[int]:
    """[right, total] over every two sets of one source with different dP: does the higher dP change more?"""
    right = total = 0
    for i in range(len(x)):
        for j in range(i + 1, len(x)):
            if sources[i] == sources[j] and x[i] != x[j]:
                total += 1
                right += int((x[i] - x[j]) * (y[i] - y[j]) > 0)
    return [right, total]


def loso_rmse(x: np.ndarray, y: np.ndarray, sources: list[str]) -> float | None:
    """RMSE of predicting each source's sets from a line fitted on the other sources (None: one source only)."""
    errors = []
    for source in sorted(set(sources)):
        held = np.array([s == source for s in sources])
        if len(np.unique(x[~held])) >= 2:
            a, b = np.polyfit(x[~held], y[~held], 1)
            errors += list(y[held] - (a * x[held] + b))
    return float(np.sqrt(np.mean(np.square(errors)))) if errors and len(set(sources)) > 1 else None


def fit_line(x: np.ndarray, y: np.ndarray, sources: list[str], measure: Measure, mode: str) -> Fit:
    """The fit of one measure's change on one mode's mean dP (at least MIN_SETS sets, x and y not constant)."""
    n = len(x)
    a, b = np.polyfit(x, y, 1)
    residual_sd = float(np.sqrt(np.sum((y - (a * x + b)) ** 2) / (n - 2)))
    loso = loso_rmse(x, y, sources)
    (r_low, r_high), (rho_low, rho_high) = bootstrap_correlations(x, y)
    return Fit(measure=measure.id, what=measure.what, unit=measure.unit, mode=mode, a=float(a), b=float(b), n=n,
               sources=len(set(sources)), x_mean=float(x.mean()), x_ss=float(np.sum((x - x.mean()) ** 2)),
               s=max(residual_sd, loso or 0.0), t=float(stats.t.ppf(0.975, n - 2)), residual_sd=residual_sd,
               loso_rmse=loso, r=float(stats.pearsonr(x, y)[0]), r_low=r_low, r_high=r_high,
               rho=float(stats.spearmanr(x, y)[0]), rho_low=rho_low, rho_high=rho_high,
               within_source=within_source(x, y, sources))


def fit_all(results: list[dict], measures: list[Measure]) -> tuple[dict[str, list[dict]], list[str]]:
    """Fits per trait (card schema), and why the others could not be fitted."""
    fits: dict[str, list[dict]] = {}
    unfitted = []
    for measure in measures:
        have = [r for r in results if measure.id in r["change"].get(measure.trait, {})]
        y = np.array([r["change"][measure.trait][measure.id] for r in have])
        for mode in MODES:
            x = np.array([r["mean_dp"][measure.trait][mode] for r in have])
            where = f"{measure.trait} {measure.id} ({mode})"
            if len(have) < MIN_SETS or np.ptp(x) == 0 or np.ptp(y) == 0:
                unfitted.append(f"{where}: {len(have)} sets" if len(have) < MIN_SETS else
                                f"{where}: the {'mean dP' if np.ptp(x) == 0 else 'change'} is the same for every set")
                continue
            fit = fit_line(x, y, [r["source"] for r in have], measure, mode)
            fits.setdefault(measure.trait, []).append(asdict(fit))
    return fits, unfitted


def card_block(summary: dict) -> dict:
    """The card's "calibration" block (its schema: docs/calibration.md)."""
    return {"recipe": summary["recipe"], "sets": [s["name"] for s in summary["sets"]], "command": summary["command"],
            "fits": summary["fits"]}


def write_card(path: Path, summary: dict) -> None:
    """Put the fits into a card.json as its "calibration" block; every other key is left as it is."""
    try:
        card = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise AuditError(f"--card {path}: not a readable card.json ({exc})") from None
    if not isinstance(card, dict):
        raise AuditError(f"--card {path}: not a card (expected a JSON object)")
    card["calibration"] = card_block(summary)
    atomic_write_text(Path(path), json.dumps(card, indent=2, sort_keys=True) + "\n")
