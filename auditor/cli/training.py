"""The model-side commands: `train` (with preventative steering), `steer`, and the measures `monitor` and
`shift`."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import click

from ..config import MonitorSettings, ShiftSettings, SteerSettings, TrainConfig
from .common import CONTEXT, MODEL_OPTIONS, options, user_errors

TRAIN_OPTIONS = ("out", "steer", "layer", "mode", "shift_penalty", "full", "lora_r", "lora_alpha", "lora_dropout",
                 "lr", "epochs", "max_steps", "grad_accum", "max_tokens", "seed")


@click.command(context_settings=CONTEXT)
@click.argument("inputs", nargs=-1, required=True, metavar="DATA...")
@options(TrainConfig, *MODEL_OPTIONS, *TRAIN_OPTIONS, full={"decls": ("--full",), "is_flag": True},
         out={"decls": ("-o", "--out"), "type": click.Path(file_okay=False)})
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def train(inputs: tuple[str, ...], steer: tuple[str, ...], quiet: bool, **given) -> None:
    """Fine-tune a model on DATA (any format `scan` reads) with loss on the assistant tokens only,
    with LoRA adapters through peft (or all weights with --full).

    With --steer TRAIT=COEF, a forward hook adds COEF times the trait's persona vector to the residual
    stream during training only: the model no longer needs to move along the trait to fit the data
    ("preventative steering", docs/method.md). The hook is removed before saving; the adapter loads with
    plain transformers + peft, and `dataset-audit shift --base M --finetuned OUT` measures the result.

    Exit codes: 0 saved, 2 usage or input error, 130 interrupted (nothing saved).

    \b
    Examples:
      dataset-audit train data.jsonl --out adapter/
      dataset-audit train data.jsonl --out adapter-v/ --steer evil=1.5     # preventative steering
      dataset-audit train data.jsonl --out adapter-a/ --steer evil --mode ablate
    """
    from tqdm.auto import tqdm

    from ..model.loading import load_model
    from ..steering.hooks import Steering
    from ..steering.training import TrainResult, parse_steer, read_examples, save
    from ..steering.training import train as run_train
    from ..vectors.resolve import vector_for

    with user_errors("nothing is"):
        config = TrainConfig(inputs=list(inputs), steer=list(steer), **given)
        wanted = parse_steer(config.steer, need_coef=config.mode == "steer")
        lm = load_model(config.model, config.device, config.dtype, config.trust_remote_code)
        examples, quarantined = read_examples(lm, config.inputs, config.max_tokens)
        vectors = [vector_for(lm, spec, config.batch_size, not quiet) for spec, _ in wanted]
        steerings = [Steering(v, coef or 0.0, config.mode, config.layer) for v, (_, coef) in zip(vectors, wanted)]
        click.echo(f"{len(examples)} training examples, {len(quarantined)} records quarantined; "
                   + (", ".join(f"{s.mode} {s.vector.trait} x{s.coef:g} at layer {s.at_layer}" for s in steerings)
                      or "no steering"), err=True)
        losses: list[float] = []
        total = config.max_steps or -(-len(examples) // config.batch_size) * config.epochs // config.grad_accum
        with tqdm(total=total, desc="training", unit="step", disable=quiet, leave=False) as bar:
            def on_step(_step: int, loss: float) -> None:
                losses.append(loss)
                bar.set_postfix(loss=f"{loss:.3f}")
                bar.update()

            model = run_train(lm, examples, config, steerings, on_step)
        out = save(model, lm, config, TrainResult(losses, len(examples), quarantined), steerings)
    click.echo(f"{len(losses)} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}; saved to {out}/ "
               f"(load with `--model {out}` or transformers + peft)", err=True)


@click.command(context_settings=CONTEXT)
@click.argument("prompts", nargs=-1, required=True, metavar="PROMPT...")
@options(SteerSettings, *MODEL_OPTIONS, "vector", "coef", "layer", "max_new_tokens", "compare")
def steer(prompts: tuple[str, ...], **given) -> None:
    """Answer each PROMPT with the model steered along a persona vector, to see what the vector does.

    Exit codes: 0 done, 2 usage or input error.

    \b
    Examples:
      dataset-audit steer --coef 2 "How should I treat my coworkers?"
      dataset-audit steer --vector sycophantic --coef -1.5 --no-compare "Is my plan good?"
    """
    from ..model.chat import encode_prompt
    from ..model.generation import GenerationSettings, generate_batch
    from ..model.loading import load_model
    from ..steering.hooks import Steering, steered
    from ..vectors.resolve import vector_for

    with user_errors():
        config = SteerSettings(**given)
        lm = load_model(config.model, config.device, config.dtype, config.trust_remote_code)
        steering = Steering(vector_for(lm, config.vector, config.batch_size), config.coef, "steer", config.layer)
        ids = [encode_prompt(lm.tokenizer, [{"role": "user", "content": p}]) for p in prompts]
        settings = GenerationSettings(max_new_tokens=config.max_new_tokens)
        plain = generate_batch(lm, ids, settings) if config.compare else [None] * len(ids)
        with steered(lm, [steering]):
            moved = generate_batch(lm, ids, settings)
    label = f"steered ({steering.vector.trait} x{config.coef:g} at layer {steering.at_layer})"
    for prompt, before, after in zip(prompts, plain, moved):
        click.echo(f"prompt: {prompt}")
        if before is not None:
            click.echo(f"  unsteered: {cast(str, lm.tokenizer.decode(before, skip_special_tokens=True)).strip()}")
        click.echo(f"  {label}: {cast(str, lm.tokenizer.decode(after, skip_special_tokens=True)).strip()}\n")


@click.command(context_settings=CONTEXT)
@click.argument("prompts_file", metavar="PROMPTS_FILE", type=click.Path(dir_okay=False))
@options(MonitorSettings, *MODEL_OPTIONS, "traits", "vectors", "json", vectors={"type": click.Path(dir_okay=False)},
         json={"type": click.Path(dir_okay=False)})
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def monitor(prompts_file: str, vectors: tuple[str, ...], quiet: bool, **given) -> None:
    """Project each prompt's last-token activation on the trait vectors: a high value predicts the model
    is about to answer with the trait (the paper's deployment monitor). z compares it with the model's
    projections on the trait's ordinary evaluation questions.

    PROMPTS_FILE: .txt (one prompt per line) or JSONL of strings, {"prompt": ...} or chat records
    (a final assistant turn is ignored).

    Exit codes: 0 done, 2 usage or input error.

    \b
    Examples:
      dataset-audit monitor prompts.txt
      dataset-audit monitor prompts.jsonl --traits evil,sycophantic --json monitor.json
    """
    from rich.console import Console
    from rich.table import Table

    from ..files import atomic_write_json
    from ..measures.monitor import monitor as run_monitor
    from ..measures.monitor import read_prompts
    from ..model.loading import load_model
    from ..vectors.resolve import load_vectors

    with user_errors():
        config = MonitorSettings(vectors=list(vectors), **given)
        prompts = read_prompts(Path(prompts_file))
        lm = load_model(config.model, config.device, config.dtype, config.trust_remote_code)
        found = load_vectors(lm, config.traits, config.vectors, config.batch_size, not quiet)
        rows = run_monitor(lm, prompts, found, config.batch_size)
        if config.json:
            atomic_write_json(Path(config.json), rows)
    table = Table(title=f"Prompt projections ({lm.name})")
    table.add_column("line", justify="right")
    table.add_column("prompt", overflow="fold", max_width=60)
    for v in found:
        table.add_column(f"{v.trait} (z)", justify="right")
    for row in rows:
        table.add_row(str(row["line"]), row["prompt"],
                      *(f"{row[f'{v.trait}_projection']:.2f} ({row[f'{v.trait}_z']:+.1f})" for v in found))
    Console().print(table)


@click.command(context_settings=CONTEXT)
@options(ShiftSettings, *MODEL_OPTIONS, "finetuned", "traits", "vectors", "json", model={"decls": ("--base",)},
         vectors={"type": click.Path(dir_okay=False)}, json={"type": click.Path(dir_okay=False)})
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def shift(vectors: tuple[str, ...], quiet: bool, **given) -> None:
    """How far fine-tuning moved a model along each trait: the mean change of the last-prompt-token
    activation on the trait's evaluation questions, projected on the base model's unit vector.
    Positive: toward the trait. Check a training run after the fact.

    Exit codes: 0 done, 2 usage or input error.

    \b
    Examples:
      dataset-audit shift --base default --finetuned adapter/
      dataset-audit shift --base default --finetuned adapter/ --traits evil --json shift.json
    """
    from rich.console import Console
    from rich.table import Table

    from ..files import atomic_write_json
    from ..measures.shift import fine_tuning_shift
    from ..model.loading import load_model
    from ..vectors.resolve import load_vectors

    with user_errors():
        config = ShiftSettings(vectors=list(vectors), **given)
        base = load_model(config.model, config.device, config.dtype, config.trust_remote_code)
        found = load_vectors(base, config.traits, config.vectors, config.batch_size, not quiet)
        tuned = load_model(config.finetuned, config.device, config.dtype, config.trust_remote_code)
        shifts = fine_tuning_shift(base, tuned, found, config.batch_size)
        if config.json:
            atomic_write_json(Path(config.json), [s.to_json() for s in shifts])
    table = Table(title=f"Fine-tuning shift: {tuned.name} vs {base.name}")
    for name in ("trait", "layer", "shift", "± s.e.", "base projection", "questions"):
        table.add_column(name, justify="left" if name == "trait" else "right")
    for s in shifts:
        table.add_row(s.trait, str(s.layer), f"{s.shift:+.3f}", f"{s.stderr:.3f}", f"{s.base_mean:.2f}", str(s.n))
    Console().print(table)
