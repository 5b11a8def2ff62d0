"""The `dataset-audit` command line."""

from __future__ import annotations

import logging
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


def fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(EXIT_USAGE)


def interrupted(what: str) -> NoReturn:
    click.echo(f"\ninterrupted: {what} cached in {cache_dir()}; run the same command again to resume", err=True)
    sys.exit(EXIT_INTERRUPTED)


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
    logger = logging.getLogger("auditor")
    if not logger.handlers:  # progress notes (e.g. the one-time model conversion) on stderr
        logger.addHandler(logging.StreamHandler())
        logger.setLevel(logging.INFO)


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
@click.option("--shard", metavar="I/N",
              help="Score only shard I of N (0-based): the records at input positions I, I+N, I+2N, ... "
                   "Run all N (e.g. a SLURM array) into separate --out folders, then `dataset-audit merge`.")
@click.option("--engine", type=click.Choice(CHOICES["engine"]), default=DEFAULTS.engine, show_default=True,
              help="local: this process; ray: a Ray Data pipeline on a Ray cluster "
                   "(pip install 'dataset-audit[ray]').")
@click.option("--address", metavar="ADDR",
              help="Ray cluster to join with --engine ray (e.g. ray://head:10001) [default: $RAY_ADDRESS, "
                   "else a local Ray instance].")
@click.option("--num-gpus-per-worker", default=DEFAULTS.num_gpus_per_worker, show_default=True,
              type=click.FloatRange(0), help="GPUs each Ray model actor reserves (fractions share a GPU).")
@click.option("--concurrency", default=DEFAULTS.concurrency, show_default=True, type=click.IntRange(1),
              help="Ray model actors per stage (each loads the model once).")
@click.option("--generator", type=click.Choice(CHOICES["generator"]), default=DEFAULTS.generator,
              show_default=True,
              help="What writes base answers: transformers, or vllm on a GPU (pip install 'dataset-audit[vllm]'); "
                   "scoring always uses transformers.")
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
        fail(str(exc))
    except KeyboardInterrupt:
        interrupted("finished batches are")
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


@main.command()
@click.argument("shard_dirs", nargs=-1, required=True, metavar="DIR...",
                type=click.Path(exists=True, file_okay=False))
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Folder for the merged scan.")
@click.option("--fail-on", multiple=True, metavar="EXPR", help="Gate the merged scan, as in `scan --fail-on`.")
@click.option("--format", type=click.Choice(CHOICES["format"]), default=DEFAULTS.format, show_default=True,
              help="github: annotations and step summary, as in `scan --format`.")
@click.option("--junit", type=click.Path(dir_okay=False), metavar="FILE", help="Write JUnit XML for the gates.")
@click.option("--sarif", type=click.Path(dir_okay=False), metavar="FILE", help="Write SARIF for flagged samples.")
def merge(shard_dirs: tuple[str, ...], out: str, fail_on: tuple[str, ...], format: str, junit: str | None,
          sarif: str | None) -> None:
    """Combine the --out folders of `scan --shard I/N` (all N shards, any order) into one scan in --out:
    scores.parquet and quarantine.jsonl in the order of a full scan, summary.json recomputed,
    manifest.json listing the shards, and report.html. The shards must share inputs, model, vectors
    and scoring settings.

    Exit codes: 0 merged (all gates passed), 1 a --fail-on gate failed, 2 usage error or mismatched shards.
    """
    from .ci_outputs import write_ci_outputs
    from .gate import Gate, check_gates
    from .merge import merge_shards
    from .report import render_report

    try:
        gates = [Gate.parse(text) for text in fail_on]
        table, summary = merge_shards([Path(d) for d in shard_dirs], Path(out))
        render_report(Path(out))
        records = summary["records"]
        headline = (f"{len(shard_dirs)} shards, {records['total']} records: {records['scored']} scored, "
                    f"{records['quarantined']} quarantined, {records['truncated']} truncated -> {out}/")
        click.echo(headline, err=True)
        verdicts = check_gates(gates, table)
        write_ci_outputs(ScanConfig(format=format, junit=junit, sarif=sarif), table, verdicts, headline)
    except AuditError as exc:
        fail(str(exc))
    for verdict in verdicts:
        click.echo("\n".join(verdict.lines()))
    sys.exit(EXIT_FAILED if any(v.failed for v in verdicts) else EXIT_OK)


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
        fail(str(exc))
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
        fail(str(exc))
    click.echo(f"{total} records in {len(files)} files: {total - bad} good, {bad} bad", err=True)
    sys.exit(EXIT_FAILED if bad else EXIT_OK)


@main.command()
@click.argument("inputs", nargs=-1, required=True, metavar="DATA...")
@click.option("--control", multiple=True, type=click.Path(exists=True), metavar="FILE",
              help="Control data (repeatable): DATA is then the trait-inducing side, for every trait scanned.")
@click.option("--label-field", default="label", show_default=True, metavar="FIELD",
              help="Without --control: the record field naming the trait a record carries, 'inducing' "
                   "(every trait) or 'control'.")
@click.option("--model", default=DEFAULTS.model, show_default=True, help="Model to audit for (as in scan).")
@click.option("--traits", default=",".join(DEFAULTS.traits), show_default=True, callback=_split_commas,
              help="Comma-separated traits to score (names or trait JSON files).")
@click.option("--vectors", multiple=True, type=click.Path(dir_okay=False), help="Persona vector files (as in scan).")
@click.option("--base-responses", default=DEFAULTS.base_responses, show_default=True,
              help="'generate', 'none' (cheaper, less accurate) or a file of base answers (as in scan).")
@click.option("--batch-size", default=DEFAULTS.batch_size, show_default=True, type=click.IntRange(1))
@click.option("--max-tokens", default=DEFAULTS.max_tokens, show_default=True, type=click.IntRange(16))
@click.option("--max-new-tokens", default=DEFAULTS.max_new_tokens, show_default=True, type=click.IntRange(1))
@click.option("--turns", type=click.Choice(CHOICES["turns"]), default=DEFAULTS.turns, show_default=True)
@click.option("--device", type=click.Choice(CHOICES["device"]), default=DEFAULTS.device, show_default=True)
@click.option("--dtype", type=click.Choice(CHOICES["dtype"]), default=DEFAULTS.dtype, show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), metavar="FILE", help="Also write the metrics as JSON.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def evaluate(inputs: tuple[str, ...], control: tuple[str, ...], label_field: str, json_out: str | None,
             quiet: bool, **settings) -> None:
    """Measure how well the scan separates labelled data: per trait, the AUROC of dP for the
    trait-carrying records against the controls, precision among the top 5% and 10% by dP, and
    each side's dataset-level mean dP with a 95% bootstrap interval.

    Label the data either with two sides (DATA trait-inducing, --control FILE the control) or
    with a field in each JSONL record (--label-field): a trait name, 'inducing' or 'control'.

    Exit codes: 0 done, 2 usage error, unreadable input or a bad label.
    """
    from .evaluate import evaluate_scan, format_table, to_json

    try:
        config = ScanConfig(inputs=list(inputs), **settings)
        results, quarantined = evaluate_scan(config, [Path(c) for c in control], label_field, not quiet)
    except AuditError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        interrupted("finished batches are")
    click.echo(format_table(results))
    if quarantined:
        click.echo(f"{quarantined} records quarantined (not scored); see `dataset-audit validate`", err=True)
    if json_out:
        Path(json_out).write_text(to_json(results), encoding="utf-8")


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
        fail(str(exc))
    click.echo(f"report -> {path}", err=True)


@main.command()
@click.argument("trait_name", metavar="TRAIT")
@click.option("--model", default=DEFAULTS.model, show_default=True,
              help="'default' (embedded SmolLM2-135M-Instruct), a local HF model folder, or a hub id.")
@click.option("--judge", "judge_spec", default="none", show_default=True, metavar="SPEC",
              help="Who scores the answers 0-100 for the trait and for coherence: 'none' (keep every pair), "
                   "'local:PATH' (a local HF causal LM, by the logprobs of its next token) or "
                   "'openai-compatible:URL' (POST URL/chat/completions, top-20 logprobs of the first token).")
@click.option("--judge-model", default="gpt-4.1-mini", show_default=True,
              help="Model name sent to an openai-compatible judge.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, metavar="VAR",
              help="Environment variable holding the openai-compatible judge's API key (sent as a Bearer token "
                   "when set; never written anywhere).")
@click.option("--judge-concurrency", default=8, show_default=True, type=click.IntRange(1),
              help="Requests to an openai-compatible judge in flight at once.")
@click.option("--samples-per-question", default=1, show_default=True, type=click.IntRange(1),
              help="Answers per question and system prompt (the paper: 10, at --temperature 1).")
@click.option("--temperature", default=0.0, show_default=True, type=click.FloatRange(0),
              help="0: greedy answers (one sample); above 0: sampled, reproducibly.")
@click.option("--max-new-tokens", default=48, show_default=True, type=click.IntRange(1),
              help="Length of each generated answer.")
@click.option("--trait-threshold", default=50.0, show_default=True, type=click.FloatRange(0, 100),
              help="Keep a pair if the judge's trait score is at least this for the pos answer and under it "
                   "for the neg answer.")
@click.option("--coherence-threshold", default=50.0, show_default=True, type=click.FloatRange(0, 100),
              help="Keep a pair only if both answers' coherence scores are at least this.")
@click.option("--with-examples", is_flag=True,
              help="Also average in the trait's authored (trait, neutral) answers, when it has them.")
@click.option("--from-examples", is_flag=True,
              help="Use only the trait's authored answers: no generation, no judge (how the shipped vectors "
                   "are built).")
@click.option("--layer", type=click.IntRange(0), help="Use this layer instead of the best held-out separation.")
@click.option("--out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Vector file to write [default: ./TRAIT.MODEL.safetensors]. The prompt-token variants go "
                   "beside it (FILE_STEM.prompt_avg/.prompt_last.safetensors), the report to FILE_STEM.html.")
@click.option("--report/--no-report", default=True, show_default=True, help="Write the HTML extraction report.")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1),
              help="Sequences per generation batch and forward pass.")
@click.option("--device", type=click.Choice(CHOICES["device"]), default=DEFAULTS.device, show_default=True,
              help="Where to run the model (and a local judge); auto: cuda, then mps, then cpu.")
@click.option("--dtype", type=click.Choice(CHOICES["dtype"]), default=DEFAULTS.dtype, show_default=True,
              help="auto: float32 on CPU, bfloat16 on GPU.")
@click.option("--trust-remote-code/--no-trust-remote-code", default=False,
              help="Allow custom model code from the model folder/hub.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def extract(trait_name: str, model: str, judge_spec: str, judge_model: str, api_key_env: str,
            judge_concurrency: int, samples_per_question: int, temperature: float, max_new_tokens: int,
            trait_threshold: float, coherence_threshold: float, with_examples: bool, from_examples: bool,
            layer: int | None, out: str | None, report: bool, batch_size: int, device: str, dtype: str,
            trust_remote_code: bool, quiet: bool) -> None:
    """Extract the persona vector of TRAIT (a built-in or user trait name, or a trait JSON file) for a
    model, and write it with a per-layer summary and an HTML report.

    The model answers every extraction question under each pos and neg system prompt; a judge
    keeps the pairs whose pos answer shows the trait and neg answer does not (both coherent);
    the vector is the difference of mean activations over the answer tokens at every layer.
    The layer is chosen by separation on held-out answers to the evaluation questions.
    Answers and judgements are cached: an interrupted run resumes where it stopped.

    Use the vector with `dataset-audit scan --traits TRAIT --vectors FILE`.

    Exit codes: 0 written, 2 usage or input error, judge endpoint failure or too few pairs kept,
    130 interrupted.
    """
    from dataclasses import asdict

    from rich.console import Console

    from .contrastive import MAIN, ExtractSettings, extract_from_description, save_vectors, stage
    from .extract import extract_from_examples
    from .extract_report import chosen_line, layer_table, render_extraction_report, weak_warning
    from .judges import JudgeOptions, make_judge
    from .models import load_model
    from .traits import load_trait

    settings = ExtractSettings(samples_per_question=samples_per_question, max_new_tokens=max_new_tokens,
                               temperature=temperature, batch_size=batch_size, trait_threshold=trait_threshold,
                               coherence_threshold=coherence_threshold, with_examples=with_examples, layer=layer)
    try:
        trait = load_trait(trait_name)
        if from_examples and (judge_spec != "none" or with_examples):
            raise AuditError("--from-examples uses only the authored answers: drop --judge and --with-examples")
        if samples_per_question > 1 and not temperature:
            raise AuditError("--samples-per-question above 1 needs --temperature above 0 (greedy answers repeat)")
        judge = make_judge(judge_spec, JudgeOptions(judge_model, api_key_env, judge_concurrency, device, dtype))
        lm = load_model(model, device, dtype, trust_remote_code)
        if layer is not None and layer > lm.num_layers:
            raise AuditError(f"--layer {layer}: {lm.name} has layers 0 to {lm.num_layers}")
        if from_examples:
            with stage("activations", 2 * len(trait.examples), not quiet) as step:
                vectors = {MAIN: extract_from_examples(lm, trait, batch_size, layer, step)}
            pairs, judged = [], "none (authored answers)"
        else:
            result = extract_from_description(lm, trait, settings, judge, show_progress=not quiet)
            vectors, pairs, judged = result.vectors, result.pairs, result.judge
        path = Path(out or f"{trait.name}.{lm.name}.safetensors")
        written = save_vectors(vectors, path)
        if report:
            shown = {"model": lm.name, "route": "authored answers" if from_examples else "generated answers",
                     **({} if from_examples else {k: v for k, v in asdict(settings).items() if v is not None})}
            written.append(render_extraction_report(path.with_suffix(".html"), trait, vectors, pairs, judged, shown))
    except AuditError as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        interrupted("answers and judgements so far are")
    console = Console()
    console.print(layer_table(vectors))
    console.print(chosen_line(vectors[MAIN]))
    if warning := weak_warning(vectors[MAIN]):
        click.echo(warning, err=True)
    if pairs:
        kept = sum(p.kept for p in pairs)
        click.echo(f"{kept} of {len(pairs)} pairs kept"
                   + (" (--judge none: every pair is kept)" if judge is None else f" by {judged}"), err=True)
    click.echo(f"-> {', '.join(map(str, written))}", err=True)


@main.group()
def traits() -> None:
    """Trait definitions: the built-in ones, and user traits in CACHE/traits/NAME.json (written by
    `traits new`; CACHE is $DATASET_AUDIT_CACHE, else $XDG_CACHE_HOME/dataset-audit or
    ~/.cache/dataset-audit). Any command that takes a trait also takes a trait JSON file's path."""


@traits.command("list")
def traits_list() -> None:
    """List built-in and user traits with their artifact counts and whether they are complete."""
    from rich.console import Console

    from .traits.console import traits_table

    Console().print(traits_table())


@traits.command("show")
@click.argument("name", metavar="TRAIT")
@click.option("--json", "as_json", is_flag=True, help="Print the trait file's JSON instead.")
def traits_show(name: str, as_json: bool) -> None:
    """Print the artifacts of TRAIT (a trait name or a trait JSON file)."""
    import json

    from rich.console import Console

    from .traits import load_trait
    from .traits.console import print_trait

    try:
        trait = load_trait(name)
    except AuditError as exc:
        fail(str(exc))
    if as_json:
        click.echo(json.dumps(trait.to_json(), indent=2, ensure_ascii=False))
    else:
        print_trait(trait, Console())


@traits.command("new")
@click.argument("name", metavar="NAME")
@click.option("--description", required=True, help="What the trait is, in a sentence or two.")
@click.option("--llm", "llm_url", required=True, metavar="URL",
              help="OpenAI-compatible endpoint that writes the artifacts (POST URL/chat/completions), "
                   "e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1.")
@click.option("--llm-model", default="gpt-4.1", show_default=True, help="Model name sent to the endpoint.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, metavar="VAR",
              help="Environment variable holding the API key (sent as a Bearer token when set; never written).")
@click.option("--out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Where to write the trait [default: CACHE/traits/NAME.json, found by name afterwards].")
@click.option("--force", is_flag=True, help="Overwrite an existing trait file.")
def traits_new(name: str, description: str, llm_url: str, llm_model: str, api_key_env: str, out: str | None,
               force: bool) -> None:
    """Create trait NAME from a description: an LLM writes 5 pos/neg system-prompt pairs, 20 extraction
    and 20 evaluation questions and a judge rubric, which are validated (counts, distinct questions,
    placeholders; the LLM is asked to fix problems up to 3 times) and written as a trait file.

    Then: `dataset-audit extract NAME`.
    """
    from .chat_endpoint import ChatEndpoint
    from .traits import check_name, user_traits_dir
    from .traits.generate import generate_trait

    try:
        path = Path(out) if out else user_traits_dir() / f"{check_name(name)}.json"
        if path.exists() and not force:
            raise AuditError(f"{path} exists; use --force to overwrite it")
        trait = generate_trait(name, description, ChatEndpoint(llm_url, llm_model, api_key_env))
        trait.save(path)
    except AuditError as exc:
        fail(str(exc))
    click.echo(f"trait {name}: {len(trait.instructions)} instruction pairs, "
               f"{sum(map(len, trait.questions.values()))} questions -> {path}", err=True)


from .train_cli import monitor, shift, steer, train  # noqa: E402  (they use the helpers above)

for _command in (train, steer, monitor, shift):
    main.add_command(_command)
