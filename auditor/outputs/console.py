"""What a scan prints, readable at 80 columns: one line per top flagged sample, each trait's view, verdict and
prediction, which source (or `--group-by` group) brings each trait, the closing block (flags, quarantine
reasons, the report, the next command) ending in the one closing line that `-q` keeps; and a trait's detection card."""

from __future__ import annotations

import shlex
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from ..evaluation.card import MEANING, NOT_EVALUATED, NOT_VALIDATED, PARTLY_VALIDATED, VALIDATED
from ..evaluation.prediction import Prediction
from ..scanning.groups import MISSING
from ..scanning.result import ScanResult
from ..text import excerpt, short_paths

VERDICT_STYLE = {VALIDATED: "green", PARTLY_VALIDATED: "yellow", NOT_VALIDATED: "red", NOT_EVALUATED: "dim"}
GROUPS_SHOWN = 20  # per trait; more groups: those of most concern
TOP_MARK = " ▲"


NARROW = 100  # columns: a narrower terminal shows no prompt in the flagged-sample lines
WHERE_WIDTH = 28


def counts_line(records: dict) -> str:
    """summary.json's record counts in a line (truncated ones when there are some)."""
    reused = records.get("reused", 0)
    split = f" ({reused} reused from --baseline, {records['scored'] - reused} computed)" if reused else ""
    truncated = f", {records['truncated']} truncated" if records["truncated"] else ""
    return (f"{records['total']} records: {records['scored']} scored{split}, {records['quarantined']} quarantined"
            f"{truncated}")


def flags_phrase(summary: dict) -> str:
    """"71 flags on 63 samples": flags (a sample flagged for two traits carries two) and the samples they are on."""
    flags, samples = sum(t["flagged"] for t in summary["traits"].values()), summary["records"].get("flagged", 0)
    return f"{plural(flags, 'flag')} on {plural(samples, 'sample')}"


def plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def closing_line(summary: dict, out: str) -> str:
    """The scan's last line (and its only one with -q): counts, flags and the scan folder."""
    return f"{counts_line(summary['records'])}; {flags_phrase(summary)} -> {out.rstrip('/')}/"


def closing_block(summary: dict, out: str) -> list[str]:
    """What to do next: the flags per trait, the quarantine's reasons, the report and the command that drops the
    flagged samples."""
    traits, records = summary["traits"], summary["records"]
    flagged = ", ".join(f"{t} {v['flagged']:,}" for t, v in traits.items() if v["flagged"])
    lines = [f"{flags_phrase(summary)}{f' ({flagged})' if flagged else ''}"]
    if records["quarantined"]:
        reasons = ", ".join(f"{n:,} {reason}" for reason, n in records.get("quarantine_reasons", {}).items())
        lines += [f"{plural(records['quarantined'], 'record')} quarantined: {reasons}",
                  f"  each with its line and reason in {Path(out) / 'quarantine.jsonl'}"]
    lines.append(f"report: {Path(out) / 'report.html'}")
    if records.get("flagged"):
        lines += ["next: review the flagged samples in the report, or drop them all with",
                  f"  dataset-audit filter {shlex.quote(str(out))} --drop-flagged -o clean.jsonl"]
    return lines


def _cell(text: str, width: int, left: bool = False) -> str:
    """Text cut to `width` (from the left, keeping its end, when `left`) and padded to it."""
    if len(text) > width:
        text = "…" + text[len(text) - width + 1:] if left else excerpt(text, width)
    return text.ljust(width)


def flagged_lines(result: ScanResult, top: int, width: int) -> list[Text]:
    """The `top` highest-scoring flagged samples over all traits, one line each fitting `width` columns: trait,
    score, file:line, then the prompt (when the terminal is NARROW or wider) and the response."""
    rows = sorted(((t.sign * t.score[i], t, i) for t in result.traits for i in np.flatnonzero(t.flagged)),
                  key=lambda row: -row[0])[:top]
    if not rows:
        return []
    name_w = max(len(t.trait) for _, t, _ in rows)
    where = [f"{Path(result.records[i].source).name}:{result.records[i].line}" for _, _, i in rows]
    where_w = min(max(map(len, where)), WHERE_WIDTH)
    rest = max(width - name_w - where_w - 11, 20)
    prompt_w = rest // 3 if width >= NARROW else 0
    lines = []
    for (_, t, i), place in zip(rows, where, strict=True):
        record = result.records[i]
        prompt, response = record.exchange()
        shown = (f"chosen: {response} | rejected: {record.rejected_response()}" if record.is_pair else response)
        line = Text(f"{_cell(t.trait, name_w)} ", style="bold")
        line.append(f"{t.score[i]:6.2f}", style="magenta")
        line.append(f"  {_cell(place, where_w, left=True)}  ", style="cyan")
        if prompt_w:
            line.append(_cell(" ".join(str(prompt).split()), prompt_w - 2) + "  ", style="dim")
        line.append(excerpt(shown, rest - (prompt_w or 0)))
        lines.append(line)
    return lines


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


def base_sample_line(estimate: dict) -> str:
    """summary.json's traits.TRAIT.base_sample in words: the estimate, its interval, and that most dPs are estimates."""
    low, high = estimate["mean_dp_ci95"]
    return (f"base sample: the model answered {estimate['n']:,} of {estimate['of']:,} computed records (seed "
            f"{estimate['seed']}), so the dP of the others is an estimate; mean dP {estimate['mean_dp']:+.3f}, 95% "
            f"interval [{low:+.3f}, {high:+.3f}] (sampling included)")


def _indented(console: Console, text: str | Text, style: str = "") -> None:
    """A line indented by two columns, wrapped lines too (text as is: no markup)."""
    console.print(Padding(Text(text, style=style) if isinstance(text, str) else text, (0, 0, 0, 2), expand=False))


def print_results(result: ScanResult, summary: dict, console: Console, top: int = 10) -> None:
    """The top flagged samples, each trait's dataset-level view, verdict and prediction, and the sources of each
    trait."""
    lines = flagged_lines(result, top, console.width)
    if lines:
        shown = "the highest-scoring" if len(lines) < sum(int(t.flagged.sum()) for t in result.traits) else "all"
        console.print(f"Flagged samples ({flags_phrase(summary)}), {shown} {len(lines)}:", style="bold",
                      highlight=False)
        for line in lines:
            console.print(line, no_wrap=True, overflow="ellipsis", crop=True)
    for t in result.traits:
        s = summary["traits"][t.trait]
        at = f">= {t.threshold}" if t.sign > 0 else f"<= {-t.threshold} (below the model's answers)"
        console.print(f"[bold]{t.trait}[/]: {plural(s['flagged'], 'sample')} flagged ({s['flagged_share']:.1%}) at "
                      f"score {at}; mean dP {s['mean_dp']:+.3f}, mean score {s['mean_score']:+.2f}",
                      highlight=False)
        if "pairs" in s:
            p = s["pairs"]
            _indented(console, f"{p['n']} preference pairs, scored on their margin dP(chosen) - dP(rejected): mean "
                               f"{p['mean_margin']:+.3f} (chosen {p['mean_dp_chosen']:+.3f}, rejected "
                               f"{p['mean_dp_rejected']:+.3f}), {p['flagged']} flagged")
        if "base_sample" in s:
            _indented(console, base_sample_line(s["base_sample"]))
        verdict = s.get("verdict", NOT_EVALUATED)
        _indented(console, Text.assemble(("score ", ""), (verdict, VERDICT_STYLE[verdict]), f": {MEANING[verdict]}"))
        if s.get("prediction"):
            _indented(console, Prediction.from_json(s["prediction"]).sentence())
        else:
            _indented(console, f"no prediction of what fine-tuning does: {s.get('prediction_note')}", style="dim")
    print_groups(summary, {t.trait: t.sign for t in result.traits}, console)


def print_card(trait: str, rows: list[tuple], verdicts: dict[str, str], console: Console, note: str = "",
               predictions: dict[str, str] | None = None) -> None:
    """The trait's rows of the detection cards (see auditor.evaluation.card), its verdicts, the card's note and,
    per mode, whether its dP predicted what fine-tuning did."""
    if not rows:
        console.print(f"\n[bold]detection card[/]: none covers {escape(trait)} (dataset-audit evaluate --benchmark)")
        return
    table = Table(title=f"Detection card: {trait}", title_justify="left",
                  caption="; ".join(f"{mode}: {v}" for mode, v in verdicts.items()), caption_justify="left")
    for name in ("benchmark", "mode", "AUROC", "mean dP difference [95% CI]", "detected"):
        table.add_column(name, justify="right" if name in ("AUROC",) else "left")
    for row in rows:
        table.add_row(*map(escape, row[1:]))
    console.print(table)
    for mode, check in (predictions or {}).items():
        console.print(f"[bold]fine-tuning ({mode})[/]: {escape(check)}")
    if note:
        console.print(f"[bold]note[/]: {escape(note)}")
