"""How `dataset-audit traits list` and `traits show` print traits."""

from __future__ import annotations

from typing import cast

from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table

from ..errors import AuditError
from ..text import excerpt
from . import SPLITS, Trait, trait_files, user_traits_dir


def traits_table() -> Table:
    """Every built-in and user trait, with its counts and whether it is complete."""
    table = Table(title="Traits", title_justify="left", caption=f"user traits: {user_traits_dir()}/NAME.json",
                  caption_justify="left")
    for name, justify in (("name", "left"), ("source", "left"), ("pairs", "right"), ("questions", "right"),
                          ("examples", "right"), ("status", "left"), ("description", "left")):
        table.add_column(name, justify=cast(JustifyMethod, justify), no_wrap=name == "name")
    for name, (source, path) in trait_files().items():
        try:
            trait = Trait.from_file(path)
        except AuditError as exc:
            table.add_row(name, source, "", "", "", "[red]unreadable[/]", escape(str(exc)))
            continue
        problems = trait.problems()
        table.add_row(name, source, str(len(trait.instructions)),
                      "/".join(str(len(trait.questions.get(s, []))) for s in SPLITS), str(len(trait.examples)),
                      "[green]ok[/]" if not problems else f"[yellow]{len(problems)} problem(s)[/]",
                      escape(excerpt(trait.description, 60)))
    return table


def print_heading(trait: Trait, console: Console) -> None:
    console.print(f"[bold]{escape(trait.name)}[/]: {escape(trait.description)}\n")


def print_trait(trait: Trait, console: Console) -> None:
    """A trait's artifacts, readable: instruction pairs, questions, rubric, problems."""
    console.print()
    for i, pair in enumerate(trait.instructions, 1):
        console.print(f"[bold]pair {i}[/]\n  [red]pos[/] {escape(pair.get('pos', ''))}\n"
                      f"  [green]neg[/] {escape(pair.get('neg', ''))}")
    for split in SPLITS:
        questions = trait.questions.get(split, [])
        console.print(f"\n[bold]{split} questions[/] ({len(questions)})")
        for q in questions:
            console.print(f"  - {escape(q)}")
    console.print(f"\n[bold]judge rubric[/]\n{escape(trait.judge_rubric)}")
    if trait.examples:
        counts = ", ".join(f"{len(trait.examples_in(s))} {s}" for s in SPLITS)
        console.print(f"\n[bold]authored examples[/]: {counts}")
    for problem in trait.problems():
        console.print(f"[yellow]problem:[/] {escape(problem)}")
    if trait.flags == "below":
        console.print("\n[bold]flags below[/]: a sample is a concern when its answer sits below the model's own "
                      "(a negative dP and score)")

