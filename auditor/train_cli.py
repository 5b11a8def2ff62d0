"""The model-side commands: `train` (with preventative steering), `steer`, `monitor` and `shift`."""

from __future__ import annotations

from pathlib import Path

import click

from .cli import DEFAULTS, _split_commas, fail, interrupted
from .config import CHOICES
from .errors import AuditError
from .steering import MODES
from .training import TrainConfig

TRAIN = TrainConfig()


def model_options(model_flag: str = "--model"):
    """--model, --device, --dtype, --trust-remote-code and --batch-size, shared by the commands here."""

    def wrap(command):
        for option in reversed([
            click.option(model_flag, "model", default=DEFAULTS.model, show_default=True,
                         help="'default' (embedded SmolLM2-135M-Instruct), a local HF model or LoRA adapter "
                              "folder, or a hub id."),
            click.option("--device", type=click.Choice(CHOICES["device"]), default=DEFAULTS.device,
                         show_default=True, help="cuda, then mps, then cpu with auto."),
            click.option("--dtype", type=click.Choice(CHOICES["dtype"]), default=DEFAULTS.dtype,
                         show_default=True, help="auto: float32 on CPU, bfloat16 on GPUs."),
            click.option("--trust-remote-code/--no-trust-remote-code", default=False, show_default=True,
                         help="Run model code from the model folder or hub (only for models you trust)."),
            click.option("--batch-size", default=8, show_default=True, type=click.IntRange(1),
                         help="Sequences per forward pass."),
        ]):
            command = option(command)
        return command

    return wrap


def vector_options(command):
    """--traits and --vectors, as in `scan`."""
    command = click.option("--vectors", multiple=True, type=click.Path(dir_okay=False),
                           help="Persona-vector .safetensors file to use instead of the built-in one.")(command)
    return click.option("--traits", default=",".join(DEFAULTS.traits), show_default=True,
                        callback=_split_commas,
                        help="Comma-separated built-in trait names or trait JSON files.")(command)


def _vectors(lm, model: str, traits: list[str], vectors: tuple[str, ...], batch_size: int, quiet: bool):
    from .config import ScanConfig
    from .pipeline import load_vectors

    config = ScanConfig(model=model, traits=traits, vectors=list(vectors), batch_size=batch_size)
    return load_vectors(lm, config, show=not quiet)


@click.command()
@click.argument("inputs", nargs=-1, required=True, metavar="DATA...")
@model_options()
@click.option("--out", default=TRAIN.out, show_default=True, type=click.Path(file_okay=False),
              help="Folder for the adapter (or full model), tokenizer, training.json and losses.json.")
@click.option("--steer", multiple=True, metavar="TRAIT=COEF",
              help="Preventative steering during training: add COEF * the trait's vector at its layer at "
                   "every position (repeatable; TRAIT is a trait name or a .safetensors vector file). "
                   "With --mode ablate give just TRAIT.")
@click.option("--layer", type=click.IntRange(1), help="Steer at this layer instead of each vector's own.")
@click.option("--mode", type=click.Choice(MODES), default=TRAIN.mode, show_default=True,
              help="steer: add COEF * v; ablate: project the direction out of the residual stream (CAFT).")
@click.option("--shift-penalty", default=TRAIN.shift_penalty, show_default=True, type=click.FloatRange(0),
              help="Add PENALTY * mean squared change of each --steer trait's projection (response tokens) "
                   "to the loss; 0 is off.")
@click.option("--full", is_flag=True, help="Train all weights instead of LoRA adapters.")
@click.option("--lora-r", default=TRAIN.lora_r, show_default=True, type=click.IntRange(1), help="LoRA rank.")
@click.option("--lora-alpha", default=TRAIN.lora_alpha, show_default=True, type=click.IntRange(1),
              help="LoRA scaling alpha.")
@click.option("--lora-dropout", default=TRAIN.lora_dropout, show_default=True, type=click.FloatRange(0, 1),
              help="LoRA dropout.")
@click.option("--lr", default=TRAIN.lr, show_default=True, type=click.FloatRange(0, min_open=True),
              help="AdamW learning rate (constant).")
@click.option("--epochs", default=TRAIN.epochs, show_default=True, type=click.IntRange(1))
@click.option("--max-steps", type=click.IntRange(1), help="Stop after this many optimizer steps.")
@click.option("--grad-accum", default=TRAIN.grad_accum, show_default=True, type=click.IntRange(1),
              help="Batches per optimizer step.")
@click.option("--max-tokens", default=TRAIN.max_tokens, show_default=True, type=click.IntRange(16),
              help="Cap on prompt + response tokens per example.")
@click.option("--seed", default=TRAIN.seed, show_default=True, type=int)
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def train(inputs: tuple[str, ...], steer: tuple[str, ...], quiet: bool, **given) -> None:
    """Fine-tune a model on DATA (any format `scan` reads) with loss on the assistant tokens only,
    with LoRA adapters through peft (or all weights with --full).

    With --steer TRAIT=COEF, a forward hook adds COEF times the trait's persona vector to the residual
    stream during training only: the model no longer needs to move along the trait to fit the data
    ("preventative steering", METHOD.md). The hook is removed before saving; the adapter loads with
    plain transformers + peft, and `dataset-audit shift --base M --finetuned OUT` measures the result.

    Exit codes: 0 saved, 2 usage or input error, 130 interrupted (nothing saved).
    """
    from tqdm.auto import tqdm

    from .models import DEFAULT_MODEL, load_model
    from .steering import Steering
    from .trait_vectors import vector_for
    from .training import TrainResult, parse_steer, read_examples, save, train as run_train

    config = TrainConfig(inputs=list(inputs), steer=list(steer), **given)
    try:
        wanted = parse_steer(config.steer, need_coef=config.mode == "steer")
        if config.shift_penalty and not wanted:
            raise AuditError("--shift-penalty needs the traits to hold still: give them with --steer")
        lm = load_model(config.model, config.device, config.dtype, config.trust_remote_code)
        examples, quarantined = read_examples(lm, config.inputs, config.max_tokens)
        vectors = [vector_for(lm, spec, config.model == DEFAULT_MODEL, config.batch_size, not quiet)
                   for spec, _ in wanted]
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
    except AuditError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        interrupted("nothing is")
    click.echo(f"{len(losses)} steps, loss {losses[0]:.3f} -> {losses[-1]:.3f}; saved to {out}/ "
               f"(load with `--model {out}` or transformers + peft)", err=True)


@click.command()
@click.argument("prompts", nargs=-1, required=True, metavar="PROMPT...")
@model_options()
@click.option("--vector", default="evil", show_default=True, metavar="TRAIT|FILE",
              help="A trait name (its built-in or cached vector) or a .safetensors vector file.")
@click.option("--coef", required=True, type=float,
              help="Multiple of the vector added at every position; negative values suppress the trait.")
@click.option("--layer", type=click.IntRange(1), help="Steer at this layer instead of the vector's own.")
@click.option("--max-new-tokens", default=DEFAULTS.max_new_tokens, show_default=True, type=click.IntRange(1))
@click.option("--compare/--no-compare", default=True, show_default=True,
              help="Also print the unsteered answer.")
def steer(prompts: tuple[str, ...], model: str, vector: str, coef: float, layer: int | None,
          max_new_tokens: int, compare: bool, device: str, dtype: str, trust_remote_code: bool,
          batch_size: int) -> None:
    """Answer each PROMPT with the model steered along a persona vector, to see what the vector does.

    Exit codes: 0 done, 2 usage or input error.
    """
    from .chat import encode_prompt
    from .generation import GenerationSettings, generate_batch
    from .models import DEFAULT_MODEL, load_model
    from .steering import Steering, steered
    from .trait_vectors import vector_for

    try:
        lm = load_model(model, device, dtype, trust_remote_code)
        steering = Steering(vector_for(lm, vector, model == DEFAULT_MODEL, batch_size), coef, "steer", layer)
        ids = [encode_prompt(lm.tokenizer, [{"role": "user", "content": p}]) for p in prompts]
        settings = GenerationSettings(max_new_tokens=max_new_tokens)
        plain = generate_batch(lm, ids, settings) if compare else [None] * len(ids)
        with steered(lm, [steering]):
            moved = generate_batch(lm, ids, settings)
    except AuditError as exc:
        fail(str(exc))
    label = f"steered ({steering.vector.trait} x{coef:g} at layer {steering.at_layer})"
    for prompt, before, after in zip(prompts, plain, moved):
        click.echo(f"prompt: {prompt}")
        if before is not None:
            click.echo(f"  unsteered: {lm.tokenizer.decode(before, skip_special_tokens=True).strip()}")
        click.echo(f"  {label}: {lm.tokenizer.decode(after, skip_special_tokens=True).strip()}\n")


@click.command()
@click.argument("prompts_file", metavar="PROMPTS_FILE", type=click.Path(dir_okay=False))
@model_options()
@vector_options
@click.option("--json", "json_out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the rows as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def monitor(prompts_file: str, model: str, traits: list[str], vectors: tuple[str, ...], json_out: str | None,
            device: str, dtype: str, trust_remote_code: bool, batch_size: int, quiet: bool) -> None:
    """Project each prompt's last-token activation on the trait vectors: a high value predicts the model
    is about to answer with the trait (the paper's deployment monitor). z compares it with the model's
    projections on the trait's ordinary evaluation questions.

    PROMPTS_FILE: .txt (one prompt per line) or JSONL of strings, {"prompt": ...} or chat records
    (a final assistant turn is ignored).

    Exit codes: 0 done, 2 usage or input error.
    """
    from rich.console import Console
    from rich.table import Table

    from .models import load_model
    from .monitor import monitor as run_monitor, read_prompts, write_json

    try:
        prompts = read_prompts(Path(prompts_file))
        lm = load_model(model, device, dtype, trust_remote_code)
        found = _vectors(lm, model, traits, vectors, batch_size, quiet)
        rows = run_monitor(lm, prompts, found, batch_size)
        if json_out:
            write_json(rows, Path(json_out))
    except AuditError as exc:
        fail(str(exc))
    table = Table(title=f"Prompt projections ({lm.name})")
    table.add_column("line", justify="right")
    table.add_column("prompt", overflow="fold", max_width=60)
    for v in found:
        table.add_column(f"{v.trait} (z)", justify="right")
    for row in rows:
        table.add_row(str(row["line"]), row["prompt"],
                      *(f"{row[f'{v.trait}_projection']:.2f} ({row[f'{v.trait}_z']:+.1f})" for v in found))
    Console().print(table)


@click.command()
@model_options("--base")
@click.option("--finetuned", required=True, metavar="M2",
              help="The fine-tuned model: a LoRA adapter folder (e.g. from `train`) or a model folder/hub id.")
@vector_options
@click.option("--json", "json_out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also write the shifts as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def shift(model: str, finetuned: str, traits: list[str], vectors: tuple[str, ...], json_out: str | None,
          device: str, dtype: str, trust_remote_code: bool, batch_size: int, quiet: bool) -> None:
    """How far fine-tuning moved a model along each trait: the mean change of the last-prompt-token
    activation on the trait's evaluation questions, projected on the base model's unit vector.
    Positive: toward the trait. Check a training run after the fact.

    Exit codes: 0 done, 2 usage or input error.
    """
    from rich.console import Console
    from rich.table import Table

    from .models import load_model
    from .monitor import write_json
    from .shift import fine_tuning_shift

    try:
        base = load_model(model, device, dtype, trust_remote_code)
        found = _vectors(base, model, traits, vectors, batch_size, quiet)
        tuned = load_model(finetuned, device, dtype, trust_remote_code)
        shifts = fine_tuning_shift(base, tuned, found, batch_size)
        if json_out:
            write_json([s.to_json() for s in shifts], Path(json_out))
    except AuditError as exc:
        fail(str(exc))
    table = Table(title=f"Fine-tuning shift: {tuned.name} vs {base.name}")
    for name in ("trait", "layer", "shift", "± s.e.", "base projection", "questions"):
        table.add_column(name, justify="left" if name == "trait" else "right")
    for s in shifts:
        table.add_row(s.trait, str(s.layer), f"{s.shift:+.3f}", f"{s.stderr:.3f}", f"{s.base_mean:.2f}", str(s.n))
    Console().print(table)
