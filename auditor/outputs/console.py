"""What a scan prints: the one-line record counts, a table of the top flagged samples, and which source (or
`--group-by` group) brings each trait."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from ..evaluation.prediction import NOT_PREDICTED, Prediction
from ..scanning.card import MEANING, NOT_EVALUATED, NOT_VALIDATED, PARTLY_VALIDATED, VALIDATED
from ..scanning.groups import MISSING
from ..scanning.result import ScanResult
from ..text import excerpt, short_paths

VERDICT_STYLE = {VALIDATED: "green", PARTLY_VALIDATED: "yellow", NOT_VALIDATED: "red", NOT_EVALUATED: "dim"}
GROUPS_SHOWN = 20  # per trait; more groups: those of most concern
TOP_MARK = " ▲"


def counts_line(result: ScanResult) -> str:
    total, reused = len(result.records) + len(result.quarantined), int(result.reused.sum())
    split = f" ({reused} reused from --baseline, {len(result.records) - reused} computed)" if reused else ""
    return (f"{total} records: {len(result.records)} scored{split}, {len(result.quarantined)} quarantined, "
            f"{int(result.truncated.sum())} truncated")


def top_flagged_table(result: ScanResult, top: int = 10) -> Table:
    """The `top` highest-scoring flagged samples over all traits."""
    table = Table(title=f"Top flagged samples (of {sum(int(t.flagged.sum()) for t in result.traits)} flags)",
                  title_justify="left", expand=False)
    table.add_column("trait", style="bold", no_wrap=True)
    table.add_column("score", style="magenta", justify="right")
    table.add_column("dP", justify="right")
    table.add_column("where", style="cyan", no_wrap=True)
    table.add_column("prompt", ratio=1, overflow="fold")
    table.add_column("response", ratio=2, overflow="fold")
    rows = [(t.sign * t.score[i], t, i) for t in result.traits for i in np.flatnonzero(t.flagged)]
    for _, t, i in sorted(rows, key=lambda row: -row[0])[:top]:
        score = t.score[i]
        record = result.records[i]
        prompt, response = record.exchange()
        shown = excerpt(response, 70)
        if record.is_pair:
            shown = (f"chosen: {excerpt(response, 50)} | rejected: {excerpt(record.rejected_response(), 50)} "
                     f"(dP chosen {t.dp_chosen[i]:+.2f}, rejected {t.dp_rejected[i]:+.2f})")
        table.add_row(t.trait, f"{score:.2f}", f"{t.dp[i]:+.2f}", f"{Path(record.source).name}:{record.line}",
                      excerpt(prompt, 50), shown)
    return table


def group_table(what: str, block: dict, names: list[str], signs: dict[str, int]) -> Table:
    """A summary.json group block (scanning/groups.py), `what` naming its groups: per trait, a row per group with
    the groups that bring the trait marked; of more than GROUPS_SHOWN groups, those with the most concerning mean dP
    (and the one with the highest flagged share)."""
    groups = block["groups"]
    caption = f"{TOP_MARK.strip()} the highest per trait (mean dP: the lowest for a trait flagged below)"
    if len(groups) > GROUPS_SHOWN:
        caption += f"; per trait {GROUPS_SHOWN} of the {len(groups)}, all in summary.json"
    table = Table(title=Text(f"By {what}: mean dP [95% bootstrap interval] and flagged share"),
                  title_justify="left", caption=caption, caption_justify="left")
    table.add_column(Text(what), overflow="fold")
    for header in ("records", "mean dP [95% CI]", "flagged"):
        table.add_column(header, justify="right", no_wrap=True)
    for trait, top in block["top"].items():
        concern = np.argsort([-signs[trait] * g["traits"][trait]["mean_dp"] for g in groups], kind="stable")
        shown = sorted({*concern[:GROUPS_SHOWN].tolist(), *(i for i, g in enumerate(groups)
                                                             if g["name"] == top["flagged_share"])})
        table.add_row(Text(trait, style="bold"))
        for i in shown:
            stats, name = groups[i]["traits"][trait], groups[i]["name"]
            low, high = stats["mean_dp_ci95"]
            cells = [Text(f"{stats['mean_dp']:+.3f} [{low:+.3f}, {high:+.3f}]"),
                     Text(f"{stats['flagged']:,} ({stats['flagged_share']:.1%})")]
            for cell, key in zip(cells, ("mean_dp", "flagged_share"), strict=True):
                if top[key] == name:
                    cell.append(TOP_MARK)
                    cell.stylize("bold red")
                else:
                    cell.append(" " * len(TOP_MARK))
            table.add_row(Text(f"  {names[i]}"), f"{groups[i]['records']:,}", *cells, end_section=i == shown[-1])
    return table


def print_groups(summary: dict, signs: dict[str, int], console: Console) -> None:
    """Where each trait comes from, by source file and by the `--group-by` field, where there is more than one."""
    sources, by_field = summary["sources"], summary.get("group_by")
    if len(sources["groups"]) > 1:
        console.print(group_table("source", sources, short_paths([g["name"] for g in sources["groups"]]), signs))
    if by_field and len(by_field["groups"]) > 1:
        console.print(group_table(by_field["field"], by_field, [g["name"] for g in by_field["groups"]], signs))
    elif by_field and [g["name"] for g in by_field["groups"]] == [MISSING]:
        console.print(Text(f"--group-by {by_field['field']}: no scored record has this field", style="yellow"))


def print_prediction(trait: dict, console: Console) -> None:
    """summary.json's prediction for a trait, else that the score says nothing about what fine-tuning does."""
    if trait.get("prediction"):
        console.print(f"  {escape(Prediction.from_json(trait['prediction']).sentence())}")
    else:
        console.print(f"  no prediction: {escape(str(trait.get('prediction_note')))}; {NOT_PREDICTED}", style="dim")


def print_results(result: ScanResult, summary: dict, console: Console, top: int = 10) -> None:
    """The top flagged samples, each trait's dataset-level view and verdict, and the sources of each trait."""
    console.print(top_flagged_table(result, top))
    for t in result.traits:
        s = t.summary()
        at = f">= {t.threshold}" if t.sign > 0 else f"<= {-t.threshold} (below the model's answers)"
        console.print(f"[bold]{t.trait}[/]: {s['flagged']} flagged ({s['flagged_share']:.1%}) at score {at}, "
                      f"dataset mean dP {s['mean_dp']:+.3f} (mean score {s['mean_score']:+.3f})")
        if "pairs" in s:
            p = s["pairs"]
            console.print(f"  {p['n']} preference pairs, scored on their margin dP(chosen) - dP(rejected): mean "
                          f"{p['mean_margin']:+.3f} (chosen {p['mean_dp_chosen']:+.3f}, rejected "
                          f"{p['mean_dp_rejected']:+.3f}), {p['flagged']} flagged")
        verdict = result.verdicts.get(t.trait, NOT_EVALUATED)
        console.print(f"  score [{VERDICT_STYLE[verdict]}]{verdict}[/]: {MEANING[verdict]}")
        print_prediction(summary["traits"][t.trait], console)
    print_groups(summary, {t.trait: t.sign for t in result.traits}, console)
