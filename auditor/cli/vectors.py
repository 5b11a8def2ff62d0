"""The vector commands: `extract` and `traits` (list, show, new)."""

from __future__ import annotations

from pathlib import Path

import click

from ..config import ExtractSettings
from ..errors import AuditError
from .common import CONTEXT, MODEL_OPTIONS, options, user_errors, write_text

EXTRACT_OPTIONS = ("judge", "judge_model", "api_key_env", "judge_concurrency", "samples_per_question", "temperature",
                   "max_new_tokens", "trait_threshold", "coherence_threshold", "with_examples", "from_examples",
                   "from_pairs", "neutral", "folds", "flags", "layer", "out", "report")


@click.command(context_settings=CONTEXT)
@click.argument("trait_name", metavar="TRAIT")
@options(ExtractSettings, *MODEL_OPTIONS, *EXTRACT_OPTIONS,
         out={"decls": ("-o", "--out"), "type": click.Path(dir_okay=False)},
         with_examples={"decls": ("--with-examples",), "is_flag": True},
         from_pairs={"type": click.Path(exists=True, dir_okay=False)}, neutral={"type": click.Path(exists=True)},
         from_examples={"decls": ("--from-examples",), "is_flag": True})
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def extract(trait_name: str, quiet: bool, **given) -> None:
    """Extract the persona vector of TRAIT (a built-in or user trait name, or a trait JSON file) for a
    model, and write it with a per-layer summary and an HTML report.

    With --from-pairs, fit it on your own labelled pairs instead (any model, any TRAIT name): the
    difference of mean response activations at every layer, the layer chosen by k-fold
    cross-validated AUROC (--folds), the per-layer figures in the vector's metadata and the report.

    The model answers every extraction question under each pos and neg system prompt; a judge
    keeps the pairs whose pos answer shows the trait and neg answer does not (both coherent);
    the vector is the difference of mean activations over the answer tokens at every layer.
    The layer is chosen by separation on held-out answers to the evaluation questions.
    Answers and judgements are cached: an interrupted run resumes where it stopped.

    Use the vector with `dataset-audit scan --traits TRAIT --vectors FILE`.

    Exit codes: 0 written, 2 usage or input error, judge endpoint failure or too few pairs kept,
    130 interrupted.

    \b
    Examples:
      dataset-audit extract evil --from-examples --out evil.safetensors
      dataset-audit extract refusal --from-pairs pairs.jsonl --flags below
      dataset-audit extract evil --judge openai-compatible:http://127.0.0.1:8000/v1
    """
    from rich.console import Console

    from ..vectors.extract import run_extract
    from ..vectors.report import chosen_line, layer_table, weak_warning

    with user_errors("answers and judgements so far are"):
        done = run_extract(trait_name, ExtractSettings(**given), show=not quiet)
    console = Console()
    console.print(layer_table(done.vectors))
    console.print(chosen_line(done.vector))
    if warning := weak_warning(done.vector):
        click.echo(warning, err=True)
    if done.pairs:
        kept = sum(p.kept for p in done.pairs)
        click.echo(f"{kept} of {len(done.pairs)} pairs kept"
                   + (" (--judge none: every pair is kept)" if done.judge == "none" else f" by {done.judge}"), err=True)
    click.echo(f"-> {', '.join(map(str, done.written))}", err=True)


@click.group(context_settings=CONTEXT)
def traits() -> None:
    """Trait definitions: the built-in ones, and user traits in CACHE/traits/NAME.json (written by
    `traits new`; CACHE is $DATASET_AUDIT_CACHE, else $XDG_CACHE_HOME/dataset-audit or
    ~/.cache/dataset-audit). Any command that takes a trait also takes a trait JSON file's path.

    \b
    Examples:
      dataset-audit traits list
      dataset-audit traits show evil
    """


@traits.command("list")
def traits_list() -> None:
    """List built-in and user traits with their artifact counts and whether they are complete.

    \b
    Examples:
      dataset-audit traits list
    """
    from rich.console import Console

    from ..traits.console import traits_table

    Console().print(traits_table())


@traits.command("show")
@click.argument("name", metavar="TRAIT")
@click.option("--json", "json_out", type=click.Path(dir_okay=False, allow_dash=True), metavar="FILE",
              help="Write the trait file's JSON to FILE ('-': stdout) instead of printing its artifacts.")
def traits_show(name: str, json_out: str | None) -> None:
    """Print TRAIT (a trait name or a trait JSON file): its description and detection card first, then its
    artifacts (instruction pairs, questions, judge rubric).

    \b
    Examples:
      dataset-audit traits show evil
      dataset-audit traits show evil --json evil.json     # a copy to edit, then use its path as TRAIT
      dataset-audit traits show evil --json -             # the JSON on stdout
    """
    import json

    from rich.console import Console

    from ..evaluation.card import card_table, known_cards
    from ..outputs.console import print_card
    from ..traits import load_trait
    from ..traits.console import print_heading, print_trait

    with user_errors():
        trait = load_trait(name)
    if json_out:
        write_text(json_out, json.dumps(trait.to_json(), indent=2, ensure_ascii=False) + "\n")
        return
    console = Console()
    print_heading(trait, console)
    cards = [c for c in known_cards() if trait.name in c.traits]
    rows = [row for card in cards for row in card_table(card, [trait.name])]
    modes = ("generate", "none") if cards else ()
    verdicts = {mode: cards[0].verdict(trait.name, mode) for mode in modes}
    note = next((c.notes[trait.name] for c in cards if trait.name in c.notes), "")
    print_card(trait.name, rows, verdicts, console, note, {mode: cards[0].prediction_check(trait.name, mode)
                                                           for mode in modes})
    print_trait(trait, console)


@traits.command("new")
@click.argument("name", metavar="NAME")
@click.option("--description", required=True, help="What the trait is, in a sentence or two.")
@click.option("--llm", "llm_url", required=True, metavar="URL",
              help="OpenAI-compatible endpoint that writes the artifacts (POST URL/chat/completions), "
                   "e.g. https://api.openai.com/v1 or http://127.0.0.1:8000/v1.")
@click.option("--llm-model", default="gpt-4.1", show_default=True, help="Model name sent to the endpoint.")
@click.option("--api-key-env", default="OPENAI_API_KEY", show_default=True, metavar="VAR",
              help="Environment variable holding the API key (sent as a Bearer token when set; never written).")
@click.option("-o", "--out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Where to write the trait [default: CACHE/traits/NAME.json, found by name afterwards].")
@click.option("--force", is_flag=True, help="Overwrite an existing trait file.")
def traits_new(name: str, description: str, llm_url: str, llm_model: str, api_key_env: str, out: str | None,
               force: bool) -> None:
    """Create trait NAME from a description: an LLM writes 5 pos/neg system-prompt pairs, 20 extraction
    and 20 evaluation questions and a judge rubric, which are validated (counts, distinct questions,
    placeholders; the LLM is asked to fix problems up to 3 times) and written as a trait file.

    Then: `dataset-audit extract NAME`.

    \b
    Examples:
      dataset-audit traits new pedantic --description "Corrects trivial mistakes at length." \\
          --llm https://api.openai.com/v1
    """
    from ..model.endpoint import ChatEndpoint
    from ..traits import check_name, user_traits_dir
    from ..traits.generate import generate_trait

    with user_errors():
        path = Path(out) if out else user_traits_dir() / f"{check_name(name)}.json"
        if path.exists() and not force:
            raise AuditError(f"{path} exists; use --force to overwrite it")
        trait = generate_trait(name, description, ChatEndpoint(llm_url, llm_model, api_key_env))
        trait.save(path)
    click.echo(f"trait {name}: {len(trait.instructions)} instruction pairs, "
               f"{sum(map(len, trait.questions.values()))} questions -> {path}", err=True)
