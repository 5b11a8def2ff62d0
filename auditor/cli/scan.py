"""The scan commands: scan, merge, filter, validate, evaluate and report."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from ..config import (
    CONFIG_FILE,
    EvaluateSettings,
    FilterSettings,
    MergeSettings,
    ReportSettings,
    ScanConfig,
    find_config_file,
    read_config_file,
)
from ..errors import AuditError
from .common import (
    CONTEXT,
    EXIT_FAILED,
    EXIT_OK,
    MODEL_OPTIONS,
    Command,
    as_settings,
    model_options,
    options,
    user_errors,
    write_text,
)

OUT_FILE: dict[str, Any] = {"decls": ("-o", "--out", "--output"), "hidden_decls": ("--output",),
                            "type": click.Path(dir_okay=False)}
PATHS: dict[str, dict[str, Any]] = {
    "vectors": {"type": click.Path(dir_okay=False)},
    "out": {"decls": ("-o", "--out"), "type": click.Path(file_okay=False)},
    "baseline": {"type": click.Path(dir_okay=False)}, "junit": {"type": click.Path(dir_okay=False)},
    "sarif": {"type": click.Path(dir_okay=False)}, "force": {"decls": ("--force",), "is_flag": True}}
SCAN_OPTIONS = ("traits", "vectors", "out", "force", "base_responses", "limit", "max_tokens", "max_new_tokens",
                "base_sample", "base_sample_seed", "gen_batch_size", "turns", "threshold", "top", "group_by",
                "fail_on", "baseline", "format", "junit", "sarif", "shard", "engine", "address",
                "num_gpus_per_worker", "concurrency", "generator")
CI_OPTIONS = ("fail_on", "format", "junit", "sarif")
SCAN_GROUPS = (("Input", ("inputs", "config_file", "limit", "base_responses", "turns", "max_tokens")),
               ("Model", MODEL_OPTIONS),
               ("Scoring", ("traits", "vectors", "threshold", "baseline", "max_new_tokens", "gen_batch_size",
                            "generator")),
               ("Outputs", ("out", "force", "top", "group_by", "quiet")),
               ("CI", ("fail_on", "base_sample", "base_sample_seed", "format", "junit", "sarif")),
               ("Scale", ("shard", "engine", "address", "num_gpus_per_worker", "concurrency")))


def _gate_and_exit(fail_on: list[str], table, summary: dict, headline: str, config: ScanConfig) -> None:
    """Check the --fail-on gates on `table` and `summary`, hand CI its outputs, print the verdicts and exit 0 or 1."""
    from ..outputs.ci import CiOutputs, write_ci_outputs
    from ..outputs.gate import Gate, check_gates

    with user_errors():
        verdicts = check_gates([Gate.parse(text) for text in fail_on], table, summary["traits"])
        for line in write_ci_outputs(CiOutputs.of(config), table, verdicts, headline):
            click.echo(line)
    for verdict in verdicts:
        click.echo("\n".join(verdict.lines()))
    sys.exit(EXIT_FAILED if any(v.failed for v in verdicts) else EXIT_OK)


@click.command(context_settings=CONTEXT, cls=Command, groups=SCAN_GROUPS)
@click.argument("inputs", nargs=-1, metavar="[DATA]...")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help=f"TOML file of settings [default: ./{CONFIG_FILE}, else ./pyproject.toml [tool.dataset-audit]]. "
                   "Keys are the long option names (fail-on = [...], base-responses = \"none\", inputs = [...]); "
                   "options given on the command line win.")
@model_options()
@options(ScanConfig, *SCAN_OPTIONS, **PATHS)
@click.option("-q", "--quiet", is_flag=True,
              help="Print only the closing line, the --fail-on verdicts and errors (no progress bars).")
@click.pass_context
def scan(ctx: click.Context, config_file: str | None, quiet: bool, **given) -> None:
    """Score every record of DATA (JSONL[.gz], JSON, Parquet, CSV files, folders of them, saved HF
    datasets, or HF dataset ids hf://ORG/NAME[@REVISION][:SPLIT]) and write scores.parquet,
    quarantine.jsonl, summary.json, manifest.json and report.html to --out. --out must be new, empty
    or a previous scan's folder (else --force). A scan with nothing to score writes them and exits 2.

    Records in OpenAI `messages` (with `tool_calls`, `tool` turns and per-turn `weight`), ShareGPT
    `conversations`, Alpaca `instruction/input/output`, `prompt/completion`, `prompt/response`,
    preference pairs (`prompt/chosen/rejected`, or HH-style `chosen/rejected` conversations) and
    pre-templated `text` (ChatML, Llama-3, Gemma, Mistral [INST]) are recognised automatically.
    Records that cannot be scored go to quarantine.jsonl with their line and reason.

    The scored answer is the last assistant turn trained on (weight 0 turns are context); tool calls
    count as its text, written `<tool_call>{"name": ..., "arguments": ...}</tool_call>`, so a turn
    that only calls a tool is scored on its calls. A preference pair is scored on its margin,
    dP(chosen) - dP(rejected) (columns <trait>_dp_chosen, _dp_rejected and _margin).

    With several source files (or --group-by FIELD), a table shows which one brings each trait:
    per file (or value), its records, mean dP with a 95% bootstrap interval and flagged share,
    the highest per trait marked.

    Every option can also come from a config file (see --config), so a CI job can be just
    `dataset-audit scan`.

    For a quick gate on a large set, --base-sample N has the model answer a seeded sample of N
    records only: the others' dP is estimated from the sample (marked base_estimated), and each
    trait's mean dP comes with a 95% interval that a TRAIT:mean_dp gate is checked on.

    Exit codes: 0 done (all gates passed), 1 a --fail-on gate failed, 2 usage or unreadable input.

    \b
    Examples:
      dataset-audit scan train.jsonl --out audit-out
      dataset-audit scan data/ --base-responses none --traits evil     # cheap mode, one trait
      dataset-audit scan train.jsonl --fail-on 'evil:flagged>1%' --junit audit.xml
      dataset-audit scan new.jsonl --baseline prev/scores.parquet --base-sample 64 --fail-on 'evil:mean_dp>0.5'
    """
    import pyarrow as pa
    from rich.console import Console

    from ..outputs.console import closing_block, closing_line, print_results
    from ..outputs.gate import Gate, check_traits
    from ..outputs.scan_result import ScanResult
    from ..scanning import scan as run_scan
    from ..scanning.folder import ScanFolder, nothing_scored
    from ..scanning.result import arrow_array

    with user_errors("finished batches are"):
        config = _scan_config(ctx, config_file, given)
        if not config.inputs:
            raise AuditError(f"no DATA: give files or folders, or `inputs = [...]` in {CONFIG_FILE}")
        gates = [Gate.parse(text) for text in config.fail_on]
        if config.traits and not any(t.endswith(".json") for t in config.traits):  # else checked after the scan
            check_traits(gates, config.traits)
        folder = ScanFolder(Path(config.out))
        if not config.force:
            folder.check_reusable(keep=[p for p in (config.junit, config.sarif) if p])
        result = run_scan(config, show_progress=not quiet, projector=(ctx.obj or {}).get("projector"))
        found = ScanResult.of(result, config)
        found.save(folder.path, force=True)  # (checked before the scan)
        summary = found.summary
        if not result.records:
            raise AuditError(nothing_scored(summary["records"]["total"], folder))
        if not quiet:
            print_results(result, summary, Console(), config.top)
            click.echo("\n".join(closing_block(summary, config.out)))
    headline = closing_line(summary, config.out)
    click.echo(headline, err=True)
    new = found.table.filter(arrow_array(~result.reused, pa.bool_()))
    _gate_and_exit(config.fail_on, new, summary, headline, config)


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


@click.command(context_settings=CONTEXT)
@click.argument("shard_dirs", nargs=-1, required=True, metavar="DIR...",
                type=click.Path(exists=True, file_okay=False))
@options(MergeSettings, "out", out=PATHS["out"])
@options(ScanConfig, *CI_OPTIONS, **PATHS,
         fail_on={"help": "Exit 1 when a gate fails on the merged scores (repeatable), as in `scan --fail-on`: "
                          "'evil>=0.8', 'evil:flagged>1%', 'evil:mean_dp>0.1'."})
def merge(shard_dirs: tuple[str, ...], out: str, fail_on: tuple[str, ...], **ci) -> None:
    """Combine the --out folders of `scan --shard I/N` (all N shards, any order) into one scan in --out:
    scores.parquet and quarantine.jsonl in the order of a full scan, summary.json recomputed,
    manifest.json listing the shards, and report.html. The shards must share inputs, model, vectors
    and scoring settings.

    Exit codes: 0 merged (all gates passed), 1 a --fail-on gate failed, 2 usage error or mismatched shards.

    \b
    Examples:
      dataset-audit scan data/ --shard 0/2 --out s0   # on one machine
      dataset-audit scan data/ --shard 1/2 --out s1   # on another
      dataset-audit merge s0 s1 --out audit-out --fail-on 'evil:flagged>1%'
    """
    from ..outputs.console import closing_block, closing_line
    from ..outputs.gate import Gate
    from ..outputs.merge import merge_shards
    from ..outputs.report import render_report

    with user_errors():
        settings = MergeSettings(out=out)
        for text in fail_on:
            Gate.parse(text)
        table, summary = merge_shards([Path(d) for d in shard_dirs], Path(settings.out))
        render_report(Path(out))
    for line in closing_block(summary, out):
        click.echo(line)
    headline = f"{len(shard_dirs)} shards, {closing_line(summary, out)}"
    click.echo(headline, err=True)
    _gate_and_exit(list(fail_on), table, summary, headline, ScanConfig(**ci))


@click.command("filter", context_settings=CONTEXT)
@click.argument("scan_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@options(FilterSettings, "max_scores", "min_scores", "drop_flagged", "decisions", "out", "rejected", "in_place",
         max_scores={"decls": ("--max",)}, min_scores={"decls": ("--min",)},
         drop_flagged={"decls": ("--drop-flagged",), "is_flag": True},
         decisions={"type": click.Path(dir_okay=False)}, out=OUT_FILE, rejected={"type": click.Path(dir_okay=False)},
         in_place={"decls": ("--in-place",), "is_flag": True})
@click.option("--input", "moved", multiple=True, type=click.Path(exists=True), metavar="PATH",
              help="Where the scan's inputs are now, if they moved: one per input, in the order manifest.json lists "
                   "them (repeatable); each must be the very file scanned.")
def filter_command(scan_dir: str, moved: tuple[str, ...], **given) -> None:
    """Write the input records of the scan in DIR that pass, in order, to --out (or back to the
    inputs, with --in-place).

    The inputs listed in DIR/manifest.json are read again, from any directory (relative paths are
    found from the directory the scan ran in), or from where --input says they moved; they must be
    unchanged. JSONL records are copied byte for byte; records from other formats are written as
    one JSON object per line. Quarantined records, records past the scan's
    --limit, and those over a --max, under a --min or flagged (with --drop-flagged) are rejected;
    --decisions overrides these rules for the records a reviewer marked.

    Exit codes: 0 done, 2 usage error, an output that would overwrite an input, or a bad decisions file.

    \b
    Examples:
      dataset-audit filter audit-out --drop-flagged --out clean.jsonl
      dataset-audit filter audit-out --max evil=0.8 --decisions decisions.json --out clean.jsonl
      dataset-audit filter audit-out --drop-flagged --in-place      # rewrite the JSONL inputs
    """
    from ..outputs.decisions import Decisions
    from ..outputs.filter import FilterRules, filter_scan

    with user_errors():
        settings = FilterSettings(**as_settings(given))
        rules = FilterRules.parse(settings.max_scores, settings.drop_flagged, settings.min_scores)
        if not (settings.max_scores or settings.min_scores or settings.drop_flagged or settings.decisions):
            click.echo("warning: no rule given (--max, --min, --drop-flagged or --decisions): every scored record "
                       "is kept, only quarantined ones are rejected", err=True)
        counts = filter_scan(Path(scan_dir), rules, Path(settings.out) if settings.out else None,
                             Path(settings.rejected) if settings.rejected else None,
                             Decisions.read(Path(settings.decisions)) if settings.decisions else None,
                             settings.in_place, [Path(m) for m in moved])
    click.echo(f"{counts.line()} -> {', '.join(map(str, counts.files))}", err=True)


@click.command(context_settings=CONTEXT)
@click.argument("inputs", nargs=-1, required=True, metavar="DATA...")
@click.option("--max-errors", default=20, show_default=True, type=click.IntRange(0), metavar="N",
              help="Show at most N error lines (0: all). Records with the same reason in a file share one line.")
def validate(inputs: tuple[str, ...], max_errors: int) -> None:
    """Check that every record of DATA parses into a scoreable chat sample, without loading a model
    (fast enough for a pre-commit hook). Prints `source:line: reason` for each kind of bad record in
    a file, with its count and first lines. In a folder, tables (CSV, Parquet) whose columns fit no
    record format, such as a labels file, are skipped with a note.

    Exit codes: 0 all records good, 1 some bad, 2 unreadable input or no records at all.

    \b
    Examples:
      dataset-audit validate train.jsonl
      dataset-audit validate data/ more.parquet
    """
    from ..data.validation import Validation

    with user_errors():
        found = Validation.of(list(inputs))
        if not found.total:
            raise AuditError(f"no records in {', '.join(map(str, found.files))}: an empty input is not a dataset")
    for line in found.lines(max_errors):
        click.echo(line)
    click.echo(found.counts_line(), err=True)
    sys.exit(EXIT_FAILED if found.bad else EXIT_OK)


@click.command(context_settings=CONTEXT)
@click.argument("inputs", nargs=-1, required=True, metavar="DATA...")
@options(EvaluateSettings, "control", "label_field", control={"type": click.Path(exists=True)})
@model_options()
@options(ScanConfig, "traits", "vectors", "base_responses", "max_tokens", "max_new_tokens", "turns", **PATHS)
@options(EvaluateSettings, "json", "benchmark", "card", json={"type": click.Path(dir_okay=False, allow_dash=True)},
         card={"type": click.Path(dir_okay=False)})
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def evaluate(inputs: tuple[str, ...], control: tuple[str, ...], label_field: str, json: str | None,
             benchmark: str | None, card: str | None, quiet: bool, **settings) -> None:
    """Measure how well the scan separates labelled data: per trait, the AUROC of dP for the
    trait-carrying records against the controls, precision among the top 5% and 10% by dP, and
    each side's dataset-level mean dP with a 95% bootstrap interval.

    Label the data either with two sides (DATA trait-inducing, --control FILE the control) or
    with a field in each JSONL record (--label-field): a trait name, 'inducing' or 'control'.
    For a trait flagged below the model's answers (refusal), the inducing records are expected to
    score lower: AUROC and precision rank by -dP.

    Exit codes: 0 done, 2 usage error, unreadable input or a bad label.

    \b
    Examples:
      dataset-audit evaluate evil.jsonl --control benign.jsonl --traits evil
      dataset-audit evaluate labelled.jsonl --label-field label --json metrics.json
    """
    from ..evaluation.evaluate import evaluate_scan, format_table, to_json, update_card
    from ..scanning import card_mode

    with user_errors("finished batches are"):
        own = EvaluateSettings(list(control), label_field, json, benchmark, card)
        config = ScanConfig(inputs=list(inputs), **as_settings(settings))
        done = evaluate_scan(config, [Path(c) for c in own.control], own.label_field, not quiet)
        if own.benchmark:
            path = update_card(Path(own.card) if own.card else None, own.benchmark,
                               card_mode(config.base_responses), done)
    click.echo(format_table(done.results))
    if done.quarantined:
        click.echo(f"{done.quarantined} records quarantined (not scored); see `dataset-audit validate`", err=True)
    if own.json:
        write_text(own.json, to_json(done.results))
    if own.benchmark:
        click.echo(f"detection card -> {path}", err=True)


@click.command(context_settings=CONTEXT)
@click.argument("scan_dir", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@options(ReportSettings, "out", "samples_per_trait", out=OUT_FILE,
         samples_per_trait={"decls": ("--samples-per-trait", "--top"), "hidden_decls": ("--top",)})
def report(scan_dir: str, out: str | None, samples_per_trait: int) -> None:
    """Render the scan folder DIR as one self-contained, offline HTML report.

    \b
    Examples:
      dataset-audit report audit-out                     # writes audit-out/report.html
      dataset-audit report audit-out --out review.html --samples-per-trait 50
    """
    from ..outputs.report import render_report

    with user_errors():
        settings = ReportSettings(out, samples_per_trait)
        path = render_report(Path(scan_dir), Path(settings.out) if settings.out else None, settings.samples_per_trait)
    click.echo(f"report -> {path}", err=True)
