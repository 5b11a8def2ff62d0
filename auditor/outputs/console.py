"""What a scan prints: the one-line record counts and a table of the top flagged samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from rich.console import Console
from rich.table import Table

from ..scanning.card import MEANING, NOT_DETECTED, NOT_EVALUATED, SCREEN_ONLY, TRUST
from ..scanning.result import ScanResult
from ..text import excerpt

VERDICT_STYLE = {TRUST: "green", SCREEN_ONLY: "yellow", NOT_DETECTED: "red", NOT_EVALUATED: "dim"}


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
                     f"(margin of dP {t.dp_chosen[i]:+.2f} and {t.dp_rejected[i]:+.2f})")
        table.add_row(t.trait, f"{score:.2f}", f"{t.dp[i]:+.2f}", f"{Path(record.source).name}:{record.line}",
                      excerpt(prompt, 50), shown)
    return table


def print_results(result: ScanResult, console: Console, top: int = 10) -> None:
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
        console.print(f"  detection on labelled data: [{VERDICT_STYLE[verdict]}]{verdict}[/] - {MEANING[verdict]}")
