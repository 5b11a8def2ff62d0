"""The `dataset-audit` command line."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click
from click.core import ParameterSource

from . import __version__
from .cache import cache_dir
from .config import CHOICES, CONFIG_FILE, ScanConfig, find_config_file, read_config_file
from .errors import AuditError

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
DEFAULTS = ScanConfig()


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def _split_commas(_ctx, _param, value: str) -> list[str]:
    return [item for item in value.split(",") if item]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dataset-audit")
def main() -> None:
    """Audit chat fine-tuning data for samples that would teach a model a trait
    (evil, sycophantic, hallucinating, ...) before you train on it.

    Each sample's response is compared with the model's own response to the same prompt along
    a persona vector: the projection difference dP. See `dataset-audit scan --help`.

    Exit codes: 0 passed, 1 a --fail-on gate failed (scan) or bad records (validate),
    2 usage or input error.
    """


@main.command()
@click.argument("inputs", nargs=-1, metavar="[DATA]...")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help=f"TOML file of settings [default: ./{CONFIG_FILE}, else ./pyproject.toml [tool.dataset-audit]]. "
                   "Keys are the long option names (fail-on = [...], base-responses = \"none\", inputs = [...]); "
                   "options given on the command line win.")
@click.option("--model", default=DEFAULTS.model, show_default=True,
              help="'default' (embedded SmolLM2-135M-Instruct), a local HF model folder, or a hub id.")
@click.option("--traits", default=",".join(DEFAULTS.traits), show_default=True, callback=_split_commas,
              help="Comma-separated built-in trait names or trait JSON files.")
@click.option("--vectors", multiple=True, type=click.Path(dir_okay=False),
              help="Persona-vector .safetensors file to use instead of the built-in one (repeatable).")
@click.option("--out", default=DEFAULTS.out, show_default=True, type=click.Path(file_okay=False),
              help="Output folder.")
@click.option("--base-responses", default=DEFAULTS.base_responses, show_default=True,
              help="'generate' (the model answers each prompt; cached), 'none' (cheap: no base answers), "
                   "or a chat file whose last assistant turns are the base answers.")
@click.option("--batch-size", default=DEFAULTS.batch_size, show_default=True, type=click.IntRange(1),
              help="Samples per forward pass.")
@click.option("--limit", type=click.IntRange(1), help="Read only the first N records.")
@click.option("--max-tokens", default=DEFAULTS.max_tokens, show_default=True, type=click.IntRange(16),
              help="Cap on prompt + response tokens; longer samples are truncated and marked.")
@click.option("--max-new-tokens", default=DEFAULTS.max_new_tokens, show_default=True, type=click.IntRange(1),
              help="Length of generated base answers.")
@click.option("--turns", type=click.Choice(CHOICES["turns"]), default=DEFAULTS.turns, show_default=True,
              help="Score the last assistant turn, or every assistant turn (averaged).")
@click.option("--threshold", default=DEFAULTS.threshold, show_default=True, type=float,
              help="Flag a sample when its calibrated <trait>_score is at least this.")
@click.option("--device", type=click.Choice(CHOICES["device"]), default=DEFAULTS.device, show_default=True,
              help="Where to run the model; auto: cuda, then mps, then cpu.")
@click.option("--dtype", type=click.Choice(CHOICES["dtype"]), default=DEFAULTS.dtype, show_default=True,
              help="auto: float32 on CPU, bfloat16 on GPU.")
@click.option("--trust-remote-code/--no-trust-remote-code", default=DEFAULTS.trust_remote_code,
              help="Allow custom model code from the model folder/hub.")
@click.option("--top", default=DEFAULTS.top, show_default=True, type=click.IntRange(0),
              help="Rows in the printed table, and annotations / summary rows with --format github.")
@click.option("--fail-on", multiple=True, metavar="EXPR",
              help="Exit 1 when a gate fails (repeatable): 'evil>=0.8' (any sample's evil_score at or over "
                   "0.8), 'evil:flagged>1%' or 'evil:flagged>3' (share or count of flagged samples over), "
                   "'evil:mean_dp>0.1' (mean dP over). With --baseline, only new/changed samples count.")
@click.option("--baseline", type=click.Path(dir_okay=False), metavar="PREV_SCORES",
              help="A previous scan's scores.parquet (same traits): records found in it by sample_id reuse "
                   "its scores and are not computed; gates and CI outputs cover only the other records.")
@click.option("--format", type=click.Choice(CHOICES["format"]), default=DEFAULTS.format, show_default=True,
              help="github: also print ::error/::warning annotations for the top flagged samples and "
                   "append a markdown summary to $GITHUB_STEP_SUMMARY.")
@click.option("--junit", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write JUnit XML: one testcase per --fail-on gate.")
@click.option("--sarif", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write SARIF 2.1.0: one result per flagged sample (error if it breaks a failed gate), "
                   "for GitHub code scanning.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
@click.pass_context
def scan(ctx: click.Context, config_file: str | None, quiet: bool, **given) -> None:
    """Score every record of DATA (JSONL[.gz], JSON, Parquet, CSV files, folders of them, or saved
    HF datasets) and write scores.parquet, quarantine.jsonl, summary.json, manifest.json and
    report.html to --out.

    Records in OpenAI `messages`, ShareGPT `conversations`, Alpaca `instruction/input/output`,
    `prompt/completion` and `prompt/response` formats are recognised automatically. Records
    that cannot be scored go to quarantine.jsonl with their line and reason.

    Every option can also come from a config file (see --config), so a CI job can be just
    `dataset-audit scan`.

    Exit codes: 0 done (all gates passed), 1 a --fail-on gate failed, 2 usage or unreadable input.
    """
    import pyarrow as pa
    from rich.console import Console

    from .ci_outputs import write_ci_outputs
    from .console import counts_line, print_results
    from .gate import Gate, check_gates, check_traits
    from .results import scores_table, write_outputs
    from .pipeline import scan as run_scan
    from .report import render_report

    try:
        config = _scan_config(ctx, config_file, given)
        if not config.inputs:
            raise AuditError(f"no DATA: give files or folders, or `inputs = [...]` in {CONFIG_FILE}")
        gates = [Gate.parse(text) for text in config.fail_on]
        if config.traits and not any(t.endswith(".json") for t in config.traits):  # else checked after the scan
            check_traits(gates, config.traits)
        result = run_scan(config, show_progress=not quiet)
        write_outputs(result, config, Path(config.out))
        render_report(Path(config.out))
        print_results(result, Console(), config.top)
        headline = f"{counts_line(result)} -> {config.out}/"
        click.echo(headline, err=True)
        gated = scores_table(result).filter(pa.array(~result.reused))
        verdicts = check_gates(gates, gated)
        write_ci_outputs(config, gated, verdicts, headline)
    except AuditError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        click.echo(f"\ninterrupted: finished batches are cached in {cache_dir()}; "
                   "run the same command again to resume where it stopped", err=True)
        sys.exit(EXIT_INTERRUPTED)
    for verdict in verdicts:
        click.echo("\n".join(verdict.lines()))
    sys.exit(EXIT_FAILED if any(v.failed for v in verdicts) else EXIT_OK)


def _scan_config(ctx: click.Context, config_file: str | None, given: dict) -> ScanConfig:
    """The config file's settings (--config, else found in the current directory), overridden by the
    options given on the command line; options left at their default do not override the file."""
    path = Path(config_file) if config_file else find_config_file(Path())
    settings = read_config_file(path) if path else {}
    if path:
        click.echo(f"settings from {path}", err=True)
    for name, value in given.items():
        if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
            settings[name] = list(value) if isinstance(value, tuple) else value
    return ScanConfig(**settings)


@main.command("filter")
@click.argument("scan_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--max", "max_scores", multiple=True, metavar="TRAIT=SCORE",
              help="Reject records whose <trait>_score is over SCORE (repeatable, e.g. --max evil=0.8).")
@click.option("--drop-flagged", is_flag=True, help="Reject records flagged for any trait by the scan.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Where to write the kept records (JSONL).")
@click.option("--rejected", type=click.Path(dir_okay=False), metavar="FILE",
              help='Where to write the rejected records: JSON lines {"source", "line", "reason", "record"}.')
def filter_command(scan_dir: str, max_scores: tuple[str, ...], drop_flagged: bool, output: str,
                   rejected: str | None) -> None:
    """Write the input records of the scan in DIR that pass, in order, to --output.

    The inputs listed in DIR/manifest.json are read again (run this from the directory the scan
    ran in; they must be unchanged). JSONL records are copied byte for byte; records from other
    formats are written as one JSON object per line. Quarantined records, records past the scan's
    --limit, and those over a --max or flagged (with --drop-flagged) are rejected.
    """
    from .filtering import FilterRules, filter_scan

    try:
        rules = FilterRules.parse(list(max_scores), drop_flagged)
        counts = filter_scan(Path(scan_dir), rules, Path(output), Path(rejected) if rejected else None)
    except AuditError as exc:
        _fail(str(exc))
    click.echo(f"{counts.line()} -> {output}" + (f", {rejected}" if rejected else ""), err=True)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="DATA...")
def validate(inputs: tuple[str, ...]) -> None:
    """Check that every record of DATA parses into a scoreable chat sample, without loading a model
    (fast enough for a pre-commit hook). Prints `source:line: reason` for each bad record.

    Exit codes: 0 all records good, 1 some bad, 2 unreadable input.
    """
    from .data import Quarantined, expand_inputs, read_records

    total = bad = 0
    try:
        files = expand_inputs(list(inputs))
        for path in files:
            for item in read_records(path):
                total += 1
                if isinstance(item, Quarantined):
                    bad += 1
                    click.echo(f"{item.source}:{item.line}: {item.reason}")
    except AuditError as exc:
        _fail(str(exc))
    click.echo(f"{total} records in {len(files)} files: {total - bad} good, {bad} bad", err=True)
    sys.exit(EXIT_FAILED if bad else EXIT_OK)


@main.command()
@click.argument("scan_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="HTML file to write [default: DIR/report.html].")
@click.option("--top", default=200, show_default=True, type=click.IntRange(1), help="Samples listed per trait.")
def report(scan_dir: str, output: str | None, top: int) -> None:
    """Render the scan folder DIR as one self-contained, offline HTML report."""
    from .report import render_report

    try:
        path = render_report(Path(scan_dir), Path(output) if output else None, top)
    except AuditError as exc:
        _fail(str(exc))
    click.echo(f"report -> {path}", err=True)
