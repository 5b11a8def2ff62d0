"""Render a scan folder as one self-contained, offline HTML report."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import os
import site
import sys
from collections import Counter
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from . import __version__
from .errors import AuditError
from .explain import DETECTORS, find_themes, message_text

TEMPLATE = "report.html.j2"
HIST_BINS = 40
QUARANTINE_SHOWN = 20
MESSAGE_CHARS = 3000
MAX_MESSAGES = 40
TRAIT_COLORS = {"evil": "#c0392b", "sycophantic": "#b7791f", "hallucinating": "#2b6cb0"}
PALETTE = ["#2f855a", "#805ad5", "#d53f8c", "#319795", "#dd6b20", "#4a5568"]
BASE_COLUMNS = ["index", "source", "line", "sample_id", "prompt", "response", "conversation", "truncated", "tags"]


def templates_dir() -> Path:
    """The folder holding `report.html.j2`.

    Looked for, in order: `reports/templates` beside the `auditor` package (a source checkout or
    editable install), then `share/dataset-audit/templates` under `sys.prefix` and under the user
    base (where a wheel's data files land for a normal or `--user` install).
    """
    candidates = [
        Path(__file__).resolve().parent.parent / "reports" / "templates",
        Path(sys.prefix) / "share" / "dataset-audit" / "templates",
        Path(site.getuserbase()) / "share" / "dataset-audit" / "templates",
    ]
    for folder in candidates:
        if (folder / TEMPLATE).is_file():
            return folder
    raise AuditError(f"report template {TEMPLATE} not found; looked in: " + ", ".join(map(str, candidates)))


def render_report(scan_dir: Path, output: Path | None = None, top_n: int = 200) -> Path:
    """Render `scan_dir` to `output` (default `scan_dir/report.html`), atomically; return the path."""
    if top_n < 0:
        raise AuditError(f"top_n must be 0 or more, not {top_n}")
    scan_dir = Path(scan_dir)
    output = Path(output) if output else scan_dir / "report.html"
    html = template_environment().get_template(TEMPLATE).render(**_context(scan_dir, top_n))
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(html, encoding="utf-8")
        os.replace(tmp, output)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return output


def template_environment() -> Environment:
    """The report templates' Jinja environment: autoescape on, undefined names are errors."""
    env = Environment(
        loader=FileSystemLoader(templates_dir()),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["sha256_base64"] = lambda text: base64.b64encode(hashlib.sha256(str(text).encode()).digest()).decode()
    return env


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AuditError(f"{path} not found: is {path.parent} a scan output folder?") from None
    except json.JSONDecodeError as exc:
        raise AuditError(f"{path} is not valid JSON: {exc}") from None


def _context(scan_dir: Path, top_n: int) -> dict:
    """Everything the template shows, read from the scan folder."""
    summary = _read_json(scan_dir / "summary.json")
    manifest = _read_json(scan_dir / "manifest.json")
    parquet, traits = _open_scores(scan_dir / "scores.parquet", summary)
    table = parquet.read(columns=[f"{t}_{k}" for t in traits for k in ("dp", "score", "flagged")])
    column = {name: table.column(name).to_numpy(zero_copy_only=False) for name in table.column_names}
    score = {t: column[f"{t}_score"].astype(float) for t in traits}
    dp = {t: column[f"{t}_dp"].astype(float) for t in traits}
    flagged = {t: column[f"{t}_flagged"].astype(bool) for t in traits}

    cards = [_card(t, i, summary, score[t], dp[t], flagged[t]) for i, t in enumerate(traits)]
    colors = {c["name"]: c["color"] for c in cards}
    flagged_rows = np.flatnonzero(np.logical_or.reduce([flagged[t] for t in traits]))
    texts = _take(parquet, ["prompt", "response", "tags"], flagged_rows)
    at = {int(r): i for i, r in enumerate(flagged_rows)}

    top = {t: _top(score[t], flagged[t], top_n) for t in traits}
    shown = np.unique(np.concatenate(list(top.values())))
    details = _take(parquet, ["index", "source", "line", "sample_id", "conversation", "truncated"], shown)
    detail_at = {int(r): i for i, r in enumerate(shown)}
    rows = []
    for t in traits:
        for r in map(int, top[t]):
            d = {k: v[detail_at[r]] for k, v in details.items()}
            rows.append(
                {
                    "trait": t,
                    "color": colors[t],
                    "score": float(score[t][r]),
                    "dp": float(dp[t][r]),
                    "tags": list(texts["tags"][at[r]] or []),
                    "prompt": _excerpt(texts["prompt"][at[r]], 220),
                    "response": _excerpt(texts["response"][at[r]], 320),
                    "messages": _messages(d["conversation"]),
                    "source": d["source"],
                    "source_name": Path(d["source"]).name,
                    "line": d["line"],
                    "index": d["index"],
                    "sample_id": d["sample_id"],
                    "truncated": bool(d["truncated"]),
                }
            )
    rows.sort(key=lambda row: -row["score"])

    best = np.max([score[t][flagged_rows] for t in traits], axis=0)
    pushes = [[t for t in traits if flagged[t][r]] for r in flagged_rows]
    records = {k: summary.get("records", {}).get(k, 0) for k in ("total", "scored", "quarantined", "truncated")}
    return {
        "report_version": __version__,
        "scan": _scan(manifest),
        "records": records,
        "traits": cards,
        "rows": rows,
        "flagged_total": int(flagged_rows.size),
        "top_n": top_n,
        "themes": _themes(texts, pushes, best, colors),
        "quarantine_counts": sorted(
            summary.get("records", {}).get("quarantine_reasons", {}).items(), key=lambda kv: (-kv[1], kv[0])
        ),
        "quarantine": _quarantine(scan_dir / "quarantine.jsonl"),
        "tag_legend": [(name, " ".join((fn.__doc__ or "").split())) for name, fn in DETECTORS.items()],
    }


def _open_scores(path: Path, summary: dict) -> tuple[pq.ParquetFile, list[str]]:
    """The scores file and its traits; an AuditError if it is missing or lacks columns."""
    if not path.is_file():
        raise AuditError(f"{path} not found: is {path.parent} a scan output folder?")
    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    traits = _traits(names, summary)
    missing = [c for c in BASE_COLUMNS if c not in names]
    if missing or not traits:
        raise AuditError(f"{path} lacks columns: {', '.join(missing) or '<trait>_dp, <trait>_score, <trait>_flagged'}")
    return parquet, traits


def _card(trait: str, i: int, summary: dict, score: np.ndarray, dp: np.ndarray, flagged: np.ndarray) -> dict:
    """A trait's summary card; summary.json's numbers, else ones computed from the columns."""
    info = summary.get("traits", {}).get(trait, {})
    threshold = float(info.get("threshold", math.nan))
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
        "layer": info.get("layer", "?"),
        "sentence": _meaning(trait, mean_score),
        "hist": _histogram(score, threshold),
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
        "settings": [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in manifest.get("settings", {}).items()],
    }


def _themes(texts: dict[str, list], pushes: list[list[str]], best: np.ndarray, colors: dict[str, str]) -> list[dict]:
    """Themes over the flagged samples, with their traits, common tags and two top-scoring example prompts."""
    themes = []
    docs = [f"{p}\n{r}" for p, r in zip(texts["prompt"], texts["response"], strict=True)]
    for theme in find_themes(docs, pushes):
        members = sorted(theme.members, key=lambda m: -best[m])
        tags = Counter(tag for m in members for tag in texts["tags"][m] or [])
        themes.append(
            {
                "label": theme.label,
                "count": theme.count,
                "share": theme.count / len(docs),
                "traits": [(t, n, colors[t]) for t, n in theme.traits.items()],
                "tags": tags.most_common(3),
                "examples": list(dict.fromkeys(_excerpt(texts["prompt"][m], 140) for m in members[:50]))[:2],
            }
        )
    return themes


def _traits(names: list[str], summary: dict) -> list[str]:
    """Traits with `_dp`, `_score` and `_flagged` columns, in summary.json's order."""
    found = [n[: -len("_score")] for n in names if n.endswith("_score")]
    found = [t for t in found if f"{t}_dp" in names and f"{t}_flagged" in names]
    order = list(summary.get("traits", {}))
    return sorted(found, key=lambda t: (order.index(t) if t in order else len(order), t))


def _top(score: np.ndarray, flagged: np.ndarray, top_n: int) -> np.ndarray:
    """Row numbers of the `top_n` highest-scoring flagged rows."""
    rows = np.flatnonzero(flagged)
    return rows[np.argsort(-score[rows], kind="stable")][:top_n]


def _take(parquet: pq.ParquetFile, columns: list[str], rows: np.ndarray) -> dict[str, list]:
    """Values of `columns` at the sorted row numbers `rows`, reading one batch at a time."""
    out: dict[str, list] = {c: [] for c in columns}
    start = 0
    for batch in parquet.iter_batches(batch_size=8192, columns=columns):
        lo, hi = np.searchsorted(rows, [start, start + batch.num_rows])
        if hi > lo:
            picked = batch.take(pa.array(rows[lo:hi] - start))
            for c in columns:
                out[c].extend(picked.column(c).to_pylist())
        start += batch.num_rows
    return out


def _excerpt(text: str | None, limit: int) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


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
        text = message_text(message.get("content"))
        if len(text) > MESSAGE_CHARS:
            text = f"{text[:MESSAGE_CHARS]}… [{len(text) - MESSAGE_CHARS:,} more characters]"
        shown.append({"role": str(message.get("role", "?")), "content": text})
    return shown


def _histogram(scores: np.ndarray, threshold: float) -> dict:
    """SVG geometry for a HIST_BINS-bin histogram of scores with the threshold marked.

    The axis spans 0, the threshold and the 0.5-99.5 percentiles; scores beyond fall in the end
    bins. The threshold is a bin edge, so bars are wholly under or over it.
    """
    width, height, left, right, top, bottom = 400.0, 150.0, 34.0, 8.0, 10.0, 22.0
    finite = scores[np.isfinite(scores)]
    marks = [v for v in (0.0, threshold) if math.isfinite(v)]
    ends = np.percentile(finite, [0.5, 99.5]).tolist() if finite.size else []
    lo, hi = min(marks + ends), max(marks + ends)
    step = (hi - lo) / (HIST_BINS - 1) if hi > lo else 1.0 / HIST_BINS
    anchor = threshold if math.isfinite(threshold) else lo
    lo = anchor - math.ceil((anchor - lo) / step - 1e-9) * step
    hi = lo + HIST_BINS * step
    counts, edges = np.histogram(np.clip(finite, lo, hi), bins=HIST_BINS, range=(lo, hi))
    below, above = bool((finite < lo).any()), bool((finite > hi).any())
    peak = max(int(counts.max(initial=0)), 1)
    plot_w, plot_h = width - left - right, height - top - bottom
    x = lambda v: left + (v - lo) / (hi - lo) * plot_w  # noqa: E731
    bars = []
    for i, (n, a, b) in enumerate(zip(counts.tolist(), edges[:-1], edges[1:], strict=True)):
        span = f"{a:.2f} to {b:.2f}"
        if i == 0 and below:
            span = f"{b:.2f} or less"
        elif i == HIST_BINS - 1 and above:
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
                "over": math.isfinite(threshold) and a >= threshold - step / 2,
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


def _meaning(trait: str, mean_score: float) -> str:
    """One sentence on what the dataset-level mean score says."""
    if not math.isfinite(mean_score):
        return "No scored samples."
    size = abs(mean_score)
    if size < 0.05:
        return (
            "On average the answers sit where the model's own answers do: "
            f"the data as a whole does not push toward {trait}."
        )
    direction = "toward" if mean_score > 0 else "away from"
    strength = "slightly" if size < 0.15 else "noticeably" if size < 0.4 else "strongly"
    return (
        f"On average an answer sits {size:.2f} of a clear {trait} example's distance {direction} the trait, "
        f"beyond what the model would say itself: training on this data would {strength} push the model "
        f"{direction} {trait}."
    )


def _when(created: str) -> str:
    try:
        return datetime.fromisoformat(created).strftime("%Y-%m-%d %H:%M %Z").strip()
    except ValueError:
        return created


def _quarantine(path: Path) -> list[dict]:
    """The first QUARANTINE_SHOWN entries of quarantine.jsonl (none if missing)."""
    entries: list[dict] = []
    if not path.is_file():
        return entries
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if len(entries) == QUARANTINE_SHOWN:
                break
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(entry, dict):
                entries.append(
                    {
                        "where": f"{Path(str(entry.get('source', '?'))).name}:{entry.get('line', '?')}",
                        "source": str(entry.get("source", "")),
                        "reason": str(entry.get("reason", "")),
                        "raw": _excerpt(str(entry.get("raw", "")), 160),
                    }
                )
    return entries
