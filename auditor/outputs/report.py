"""Render a scan folder as one self-contained, offline HTML report."""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import asdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..data import content_text, trained_text
from ..errors import AuditError
from ..evaluation.card import MEANING, NOT_EVALUATED, RULE, card_table, known_cards
from ..evaluation.prediction import Prediction
from ..files import atomic_write_text, file_sha256
from ..html import template_environment
from ..scanning.folder import ScanFolder
from ..scanning.result import ESTIMATED_COLUMN, column, table_traits, trait_sign
from ..scanning.tags import DETECTORS
from ..text import excerpt, short_paths
from ..version import __version__
from .themes import find_themes

TEMPLATE = "report.html.j2"
HIST_BINS = 40
QUARANTINE_SHOWN = 20
MESSAGE_CHARS = 3000
MAX_MESSAGES = 40
TRAIT_COLORS = {"evil": "#c0392b", "sycophantic": "#b7791f", "hallucinating": "#2b6cb0"}
RAY_SETTINGS = ("address", "num_gpus_per_worker", "concurrency")  # read by --engine ray only
PALETTE = ["#2f855a", "#805ad5", "#d53f8c", "#319795", "#dd6b20", "#4a5568"]


def render_report(scan_dir: Path, output: Path | None = None, top_n: int = 200) -> Path:
    """Render `scan_dir` to `output` (default: the folder's report.html), atomically; return the path."""
    if top_n < 0:
        raise AuditError(f"top_n must be 0 or more, not {top_n}")
    folder = ScanFolder(Path(scan_dir))
    output = Path(output) if output else folder.report
    atomic_write_text(output, template_environment().get_template(TEMPLATE).render(**_context(folder, top_n)))
    return output


def _context(folder: ScanFolder, top_n: int) -> dict:
    """Everything the template shows, read from the scan folder."""
    summary, manifest = folder.summary(), folder.manifest()
    parquet = folder.open_scores()
    traits = _traits(parquet.schema_arrow, summary)
    table = parquet.read(columns=[f"{t}_{k}" for t in traits for k in ("dp", "score", "flagged")])
    score = {t: column(table, f"{t}_score") for t in traits}
    dp = {t: column(table, f"{t}_dp") for t in traits}
    flagged = {t: column(table, f"{t}_flagged") for t in traits}

    signs = {t: trait_sign(parquet.schema_arrow, t) for t in traits}
    cards = [_card(t, i, summary, score[t], dp[t], flagged[t], signs[t]) for i, t in enumerate(traits)]
    colors = {c["name"]: c["color"] for c in cards}
    flagged_rows = np.flatnonzero(np.logical_or.reduce([flagged[t] for t in traits]))
    texts = _take(parquet, ["prompt", "response", "tags"], flagged_rows)
    best = np.max([signs[t] * score[t][flagged_rows] for t in traits], axis=0)
    pushes = [[t for t in traits if flagged[t][r]] for r in flagged_rows]
    records = {k: summary.get("records", {}).get(k, 0) for k in ("total", "scored", "quarantined", "truncated")}
    detection, detection_notes = _detection(manifest, traits)
    return {
        "report_version": __version__,
        "scan": _scan(manifest),
        "review": {"folder": folder.path.resolve().name, "created": str(manifest.get("created", "")),
                   "scores_sha256": file_sha256(folder.scores)},
        "records": records,
        "traits": cards,
        "detection": detection,
        "detection_notes": detection_notes,
        "detection_rule": RULE[0].upper() + RULE[1:] + ".",
        "groups": _groups(summary, traits),
        "rows": _rows(parquet, traits, score, dp, flagged, top_n, colors, signs),
        "has_pairs": "rejected" in parquet.schema_arrow.names,
        "flagged_total": int(flagged_rows.size),
        "flags_total": sum(int(np.sum(f)) for f in flagged.values()),
        "top_n": top_n,
        "themes": _themes(folder, texts, pushes, best, colors),
        "quarantine_counts": sorted(
            summary.get("records", {}).get("quarantine_reasons", {}).items(), key=lambda kv: (-kv[1], kv[0])
        ),
        "quarantine": _quarantine(folder),
        "tag_legend": [(name, " ".join((fn.__doc__ or "").split())) for name, fn in DETECTORS.items()],
    }


def _rows(parquet: pq.ParquetFile, traits: list[str], score: dict, dp: dict, flagged: dict, top_n: int,
          colors: dict[str, str], signs: dict[str, int]) -> list[dict]:
    """The flagged-sample table: each trait's `top_n` furthest flagged rows, furthest first."""
    top = {t: _top(signs[t] * score[t], flagged[t], top_n) for t in traits}
    shown = np.unique(np.concatenate(list(top.values())))
    names = parquet.schema_arrow.names
    sides = [f"{t}_dp_{side}" for t in traits for side in ("chosen", "rejected")] if "rejected" in names else []
    estimated = [ESTIMATED_COLUMN] if ESTIMATED_COLUMN in names else []
    details = _take(parquet, ["index", "source", "line", "sample_id", "prompt", "response", "tags", "conversation",
                              "truncated", *estimated, *(["rejected", *sides] if sides else [])], shown)
    at = {int(r): i for i, r in enumerate(shown)}
    rows = []
    for t in traits:
        for r in map(int, top[t]):
            d = {k: v[at[r]] for k, v in details.items()}
            rows.append({
                "trait": t, "color": colors[t], "score": float(score[t][r]), "dp": float(dp[t][r]),
                "tags": list(d["tags"] or []), "prompt": excerpt(d["prompt"], 220),
                "response": excerpt(d["response"], 320), "messages": _messages(d["conversation"]),
                "source": d["source"], "source_name": Path(d["source"]).name, "line": d["line"],
                "index": d["index"], "sample_id": d["sample_id"], "truncated": bool(d["truncated"]),
                "estimated": bool(d.get(ESTIMATED_COLUMN)),
                "concern": signs[t] * float(score[t][r]), "pair": _pair(d, t),
            })
    return sorted(rows, key=lambda row: -row["concern"])


def _traits(schema: pa.Schema, summary: dict) -> list[str]:
    """The table's traits, in summary.json's order."""
    order = list(summary.get("traits", {}))
    return sorted(table_traits(schema), key=lambda t: (order.index(t) if t in order else len(order), t))


def _groups(summary: dict, traits: list[str]) -> list[dict]:
    """summary.json's tables by source file and by the --group-by field (scanning/groups.py), those with more than
    one group: per group its name (shortened for display), records and, per trait, a cell with the top ones marked."""
    blocks = [("source", summary.get("sources") or {}, True)]
    if by_field := summary.get("group_by"):
        blocks.append((str(by_field.get("field")), by_field, False))
    shown = []
    for what, block, paths in blocks:
        groups, top = block.get("groups", []), block.get("top", {})
        if len(groups) < 2:
            continue
        names = [str(g["name"]) for g in groups]
        rows = [{"name": name, "shown": short, "records": g["records"],
                 "cells": [_group_cell(g["traits"].get(t), top.get(t, {}), name) for t in traits]}
                for g, name, short in zip(groups, names, short_paths(names) if paths else names, strict=True)]
        shown.append({"what": what, "rows": rows})
    return shown


def _group_cell(stats: dict | None, top: dict, name: str) -> dict | None:
    if stats is None:
        return None
    low, high = stats["mean_dp_ci95"]
    return {"mean_dp": stats["mean_dp"], "low": low, "high": high, "flagged": stats["flagged"],
            "share": stats["flagged_share"], "top_dp": top.get("mean_dp") == name,
            "top_share": top.get("flagged_share") == name}


def _themes(folder: ScanFolder, texts: dict[str, list], pushes: list[list[str]], best: np.ndarray,
            colors: dict[str, str]) -> list[dict]:
    """Themes over the flagged samples, with their traits, common tags and two top-scoring example prompts.

    Clustered once per scan folder and saved there (themes.json); a re-render reads them."""
    saved = folder.themes()
    if saved is None:
        docs = [f"{p}\n{r}" for p, r in zip(texts["prompt"], texts["response"], strict=True)]
        saved = [asdict(theme) for theme in find_themes(docs, pushes)]
        folder.write_themes(saved)
    themes = []
    for theme in saved:
        members = sorted(theme["members"], key=lambda m: -best[m])
        tags = Counter(tag for m in members for tag in texts["tags"][m] or [])
        themes.append({
            "label": theme["label"], "count": theme["count"], "share": theme["count"] / len(texts["prompt"]),
            "traits": [(t, n, colors[t]) for t, n in theme["traits"].items()], "tags": tags.most_common(3),
            "examples": list(dict.fromkeys(excerpt(texts["prompt"][m], 140) for m in members[:50]))[:2],
        })
    return themes


def _detection(manifest: dict, traits: list[str]) -> tuple[list[tuple], list[tuple[str, str]]]:
    """The detection-card rows and (trait, note) pairs of the cards about the vectors this scan used (by their
    files' sha256)."""
    used = {t: v.get("sha256") for t, v in manifest.get("vectors", {}).items() if t in traits}
    rows, notes = [], []
    for card in known_cards():
        covered = [t for t, sha in used.items() if card.traits.get(t, {}).get("vector_sha256") == sha]
        rows += [row for row in card_table(card, covered) if row not in rows]
        notes += [(t, card.notes[t]) for t in covered if t in card.notes]
    return rows, notes


def _quarantine(folder: ScanFolder) -> list[dict]:
    """The first QUARANTINE_SHOWN quarantine entries."""
    entries: list[dict] = []
    for _, entry in folder.quarantine_lines(missing_ok=True):
        if len(entries) == QUARANTINE_SHOWN:
            break
        entries.append({"where": f"{Path(str(entry.get('source', '?'))).name}:{entry.get('line', '?')}",
                        "source": str(entry.get("source", "")), "reason": str(entry.get("reason", "")),
                        "raw": excerpt(entry.get("raw", ""), 160)})
    return entries


def _card(trait: str, i: int, summary: dict, score: np.ndarray, dp: np.ndarray, flagged: np.ndarray,
          sign: int) -> dict:
    """A trait's summary card; summary.json's numbers, else ones computed from the columns."""
    info = summary.get("traits", {}).get(trait, {})
    threshold = float(info.get("threshold", math.nan))
    verdict = info.get("verdict", NOT_EVALUATED)
    prediction = Prediction.from_json(info["prediction"]) if info.get("prediction") else None
    note = _plain(str(info.get("prediction_note") or "the scan recorded no prediction"))
    mean_score = float(info.get("mean_score", np.nanmean(score) if score.size else math.nan))
    count = int(info.get("flagged", flagged.sum()))
    return {
        "name": trait,
        "color": TRAIT_COLORS.get(trait, PALETTE[i % len(PALETTE)]),
        "mean_dp": float(info.get("mean_dp", np.nanmean(dp) if dp.size else math.nan)),
        "mean_score": mean_score,
        "flagged": count,
        "share": float(info.get("flagged_share", count / max(score.size, 1))),
        "threshold": threshold,
        "below": sign < 0,
        "verdict": verdict,
        "verdict_meaning": _plain(MEANING[verdict][0].upper() + MEANING[verdict][1:] + "."),
        "verdict_class": verdict.replace(" ", "-"),
        "layer": info.get("layer", "?"),
        "prediction": prediction.sentence() if prediction else None,
        "prediction_note": note,
        "base_sample": info.get("base_sample"),
        "sentence": _meaning(trait, mean_score, sign, prediction),
        "hist": histogram(score, sign * threshold, below=sign < 0),
    }


def _scan(manifest: dict) -> dict:
    """The manifest's facts for the header."""
    model = manifest.get("model", {})
    return {
        "model": model.get("name", "unknown model"),
        "num_layers": model.get("num_layers", "?"),
        "device": manifest.get("device", "?"),
        "dtype": manifest.get("dtype", "?"),
        "created": _when(manifest.get("created", "")),
        "tool_version": manifest.get("tool_version", "?"),
        "inputs": [
            {"path": str(i.get("path", "?")), "sha256": str(i.get("sha256", ""))} for i in manifest.get("inputs", [])
        ],
        "vectors": [
            (
                name,
                {"layer": v.get("layer", "?"), "sha256": str(v.get("sha256", "")), "source": str(v.get("source", ""))},
            )
            for name, v in manifest.get("vectors", {}).items()
        ],
        "settings": _settings(manifest.get("settings", {})),
    }


def _settings(settings: dict) -> list[tuple[str, str]]:
    """The settings that shaped the scan: none left unset, and the Ray engine's only with --engine ray."""
    shown = []
    for key, value in settings.items():
        if value in (None, "", [], {}, False) or (key in RAY_SETTINGS and settings.get("engine") != "ray"):
            continue
        shown.append((key.replace("_", "-"), value if isinstance(value, str) else json.dumps(value)))
    return shown


def _top(score: np.ndarray, flagged: np.ndarray, top_n: int) -> np.ndarray:
    """Row numbers of the `top_n` highest-scoring flagged rows (give a trait flagged below its negated score)."""
    rows = np.flatnonzero(flagged)
    return rows[np.argsort(-score[rows], kind="stable")][:top_n]


def _pair(details: dict, trait: str) -> dict | None:
    """A preference pair's rejected answer and the dP of each side (None for a plain record)."""
    if not details.get("rejected"):
        return None
    rejected = _messages(details["rejected"])
    return {"rejected": excerpt(rejected[-1]["content"] if rejected else "", 320),
            "dp_chosen": details[f"{trait}_dp_chosen"], "dp_rejected": details[f"{trait}_dp_rejected"]}


def _take(parquet: pq.ParquetFile, columns: list[str], rows: np.ndarray) -> dict[str, list]:
    """Values of `columns` at the sorted row numbers `rows`, reading one batch at a time."""
    out: dict[str, list] = {c: [] for c in columns}
    start = 0
    for batch in parquet.iter_batches(batch_size=8192, columns=columns):
        lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
        for c in columns:  # row by row: `take` would import pyarrow.compute, slow to start
            values = batch.column(c)
            out[c].extend(values[int(r)].as_py() for r in rows[lo:hi] - start)
        start += batch.num_rows
    return out


def _messages(conversation: str | None) -> list[dict]:
    """The conversation's messages for display, each capped at MESSAGE_CHARS."""
    try:
        parsed = json.loads(conversation or "[]")
    except json.JSONDecodeError:
        parsed = [{"role": "raw", "content": conversation}]
    shown = []
    for message in (parsed if isinstance(parsed, list) else [])[:MAX_MESSAGES]:
        if not isinstance(message, dict):
            continue
        text = trained_text(message) if message.get("tool_calls") else (content_text(message.get("content")) or "")
        if len(text) > MESSAGE_CHARS:
            text = f"{text[:MESSAGE_CHARS]}… [{len(text) - MESSAGE_CHARS:,} more characters]"
        shown.append({"role": str(message.get("role", "?")), "content": text})
    return shown


def histogram(scores: np.ndarray, threshold: float, below: bool = False) -> dict:
    """SVG geometry for a HIST_BINS-bin histogram of scores with the threshold marked.

    The axis spans 0, the threshold and the 0.5-99.5 percentiles; scores beyond fall in the end
    bins. The threshold is a bin edge, so bars are wholly under or over it; `over` marks the flagged
    side (under it for a trait flagged below, whose threshold is negative).
    """
    width, height, left, right, top, bottom = 400.0, 170.0, 44.0, 8.0, 10.0, 40.0  # room for the axis titles
    finite = scores[np.isfinite(scores)]
    marks = [v for v in (0.0, threshold) if math.isfinite(v)]
    ends = np.percentile(finite, [0.5, 99.5]).tolist() if finite.size else []
    lo, hi = min(marks + ends), max(marks + ends)
    step = (hi - lo) / (HIST_BINS - 1) if hi > lo else 1.0 / HIST_BINS
    anchor = threshold if math.isfinite(threshold) else lo
    lo = anchor - math.ceil((anchor - lo) / step - 1e-9) * step - (step if below else 0.0)
    hi = lo + HIST_BINS * step  # a spare bin beyond the threshold on the flagged side, for the clipped tail
    counts, edges = np.histogram(np.clip(finite, lo, hi), bins=HIST_BINS, range=(lo, hi))
    clipped_low, clipped_high = bool((finite < lo).any()), bool((finite > hi).any())
    peak = max(int(counts.max(initial=0)), 1)
    plot_w, plot_h = width - left - right, height - top - bottom
    x = lambda v: left + (v - lo) / (hi - lo) * plot_w  # noqa: E731
    bars = []
    for i, (n, a, b) in enumerate(zip(counts.tolist(), edges[:-1], edges[1:], strict=True)):
        span = f"{a:.2f} to {b:.2f}"
        if i == 0 and clipped_low:
            span = f"{b:.2f} or less"
        elif i == HIST_BINS - 1 and clipped_high:
            span = f"{a:.2f} or more"
        h = 0.0 if n == 0 else max(n / peak * plot_h, 1.5)
        bars.append(
            {
                "x": x(a) + 0.5,
                "y": top + plot_h - h,
                "w": max(x(b) - x(a) - 1.0, 0.5),
                "h": h,
                "title": f"{n:,} sample{'' if n == 1 else 's'} scoring {span}",
                "count": n,
                "over": math.isfinite(threshold)
                and (b <= threshold + step / 2 if below else a >= threshold - step / 2),
            }
        )
    return {
        "width": width,
        "height": height,
        "left": left,
        "top": top,
        "base": top + plot_h,
        "right": width - right,
        "bars": bars,
        "peak": peak,
        "ticks": [(x(v), f"{v:g}") for v in _nice_ticks(lo, hi)],
        "threshold_x": x(threshold) if math.isfinite(threshold) else None,
        "n": int(finite.size),
    }


def _nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) inside [lo, hi]."""
    raw = (hi - lo) / target
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.ceil(lo / step) * step
    return [round(first + i * step, 10) for i in range(int((hi - first) / step) + 1)]


def _meaning(trait: str, mean_score: float, sign: int, prediction: Prediction | None) -> str:
    """What the dataset-level mean score says: where the answers sit along the trait's direction, relative to the
    model's own answers; what training on the data would do only when a calibration fit predicts it."""
    if not math.isfinite(mean_score):
        return "No scored samples."
    size = abs(mean_score)
    if size < 0.05:
        where = (f"On average the answers sit where the model's own answers do along the {trait} direction "
                 f"(mean score {mean_score:+.2f}).")
    else:
        side = "toward" if mean_score > 0 else "away from"
        concern = " (for this trait, the side of concern)" if sign < 0 and mean_score < 0 else ""
        where = (f"On average an answer sits {size:.2f} of a clear {trait} example's distance {side} the trait"
                 f"{concern}, relative to the model's own answers.")
    if prediction:
        return where
    return f"{where} That is where the answers sit, not what training on them would do."


def _plain(text: str) -> str:
    """Console text for a web page: without the backticks that mark commands."""
    return text.replace("`", "")


def _when(created: str) -> str:
    try:
        return datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return created


