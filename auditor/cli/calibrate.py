"""`calibrate`: fine-tune on several training sets and fit how well each set's mean dP predicts the change."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from ..config import CalibrateConfig
from .common import CONTEXT, MODEL_OPTIONS, as_settings, options, user_errors

STUDY_OPTIONS = ("out", "traits", "vectors", "pairs", "refusal_prompts", "card", "probe_limit", "steps", "lr",
                 "lora_r", "lora_alpha", "seed", "max_tokens", "max_new_tokens")


@click.command(context_settings=CONTEXT)
@click.argument("inputs", nargs=-1, required=True, metavar="SETS...")
@options(CalibrateConfig, *MODEL_OPTIONS, *STUDY_OPTIONS, out={"type": click.Path(file_okay=False)},
         vectors={"type": click.Path(dir_okay=False)}, card={"type": click.Path(dir_okay=False)})
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def calibrate(inputs: tuple[str, ...], quiet: bool, **given) -> None:
    """Does a set's mean dP predict what fine-tuning on it does to the model? For every training set
    in SETS: its mean dP per trait in the modes generate, none (cheap) and prompt (the last prompt
    token as reference); one LoRA run with a fixed recipe (--steps, --lr, --lora-r, --lora-alpha,
    --seed); and the change it caused, fine-tuned minus base: each trait's activation shift, its
    preference for held-out trait answers over neutral ones (nats/token: the trait's authored eval
    split, plus --pairs files) and, with --refusal-prompts, the refusal rate. Then per trait, measure
    and mode: change = a * mean_dP + b, Pearson r and Spearman rho with bootstrap 95% intervals, the
    within-source order, and a prediction interval that covers the spread between sources.

    A set names its source as SOURCE:PATH, else by its parent folder: `dataset-audit calibrate
    caa:sets/caa-0.jsonl caa:sets/caa-100.jsonl hh:sets/hh-0.jsonl hh:sets/hh-100.jsonl`, or
    `sets/caa/0.jsonl sets/caa/100.jsonl ...` (sources caa, ...). Give matched sets of one source that
    differ in trait content: that is how content is told apart from domain.

    Writes DIR/calibration.json; each finished set goes to DIR/sets/NAME.json at once and is reused
    when the command runs again, so an interrupted study resumes. --card FILE writes the fits into
    that card.json (its "calibration" block).

    Exit codes: 0 done, 2 usage or input error, 130 interrupted (finished sets are kept).

    \b
    Examples:
      dataset-audit calibrate caa:caa-0.jsonl caa:caa-100.jsonl hh:hh-0.jsonl hh:hh-100.jsonl --out calib
      dataset-audit calibrate sets/*/*.jsonl --model ./my-model --out calib --card my-card.json
    """
    from rich.console import Console

    from ..evaluation.calibration import Recipe, Study, build_probes, parse_sets, run_study, write_card
    from ..model.loading import load_model
    from ..vectors.resolve import load_vectors

    show = not quiet
    argv = sys.argv[1:] if sys.argv[1:2] == ["calibrate"] else ["calibrate", *inputs]  # as typed, if run as a command
    command = shlex.join(["dataset-audit", *argv])
    with user_errors():
        config = CalibrateConfig(inputs=list(inputs), **as_settings(given))
        sets = parse_sets(config.inputs)
        base = load_model(config.model, config.device, config.dtype, config.trust_remote_code)
        vectors = load_vectors(base, config.traits, config.vectors, config.batch_size, show)
        probes = build_probes(config, [v.trait for v in vectors])
        study = Study(config, base, vectors, probes, Recipe.of(config))
        click.echo(f"{len(sets)} training sets from {len({s.source for s in sets})} sources; recipe: "
                   f"LoRA r={config.lora_r} alpha={config.lora_alpha}, lr {config.lr:g}, {config.steps} steps of "
                   f"{config.batch_size}, seed {config.seed}", err=True)
        summary = run_study(study, sets, Path(config.out), command, show)
        if config.card:
            write_card(Path(config.card), summary)
    Console().print(fits_table(summary))
    reused = len(summary["sets"]) - len(summary["computed"])
    written = Path(config.out) / "calibration.json"
    click.echo(f"{len(summary['computed'])} sets computed, {reused} reused; wrote {written}"
               + (f" and the card {config.card}" if config.card else ""), err=True)
    for reason in summary["unfitted"]:
        click.echo(f"not fitted: {reason}", err=True)


def fits_table(summary: dict):
    """One row per trait, measure and mode: the fit and whether dP predicts the change."""
    from rich.table import Table

    from ..evaluation.calibration import Fit

    table = Table(title=f"Calibration: {summary['model']}, {len(summary['sets'])} sets")
    for name in ("trait", "measure", "mode", "n", "change = a·dP + b", "r [95%]", "ρ [95%]", "within source",
                 "predicts"):
        table.add_column(name, justify="left" if name in ("trait", "measure", "mode") else "right")
    for trait, fits in summary["fits"].items():
        for f in fits:
            table.add_row(trait, f["measure"], f["mode"], str(f["n"]), f"{f['a']:+.3g}·dP {f['b']:+.3g}",
                          f"{f['r']:+.2f} [{f['r_low']:+.2f}, {f['r_high']:+.2f}]",
                          f"{f['rho']:+.2f} [{f['rho_low']:+.2f}, {f['rho_high']:+.2f}]",
                          "{}/{}".format(*f["within_source"]), "yes" if Fit(**f).predicts else "no")
    return table
