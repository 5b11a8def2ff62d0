"""Section `rescan`: a default scan of the example with an empty cache, after a 1% change, unchanged."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np

from .common import EXAMPLE, log
from .processes import child, fresh_cache


def changed_copy(source: Path, target: Path, n: int, fraction: float) -> int:
    """The first n records of `source` with ceil(fraction * n) of them (evenly spaced) edited in prompt and answer."""
    lines = source.read_text(encoding="utf-8").splitlines()[:n]
    k = max(1, math.ceil(fraction * len(lines)))
    for i in np.linspace(0, len(lines) - 1, k).round().astype(int):
        record = json.loads(lines[i])
        messages = record["messages"]
        last_user = max(j for j, m in enumerate(messages) if m["role"] == "user")
        last_answer = max(j for j, m in enumerate(messages) if m["role"] == "assistant")
        messages[last_user]["content"] += " Please keep it short."
        messages[last_answer]["content"] += " (Revised.)"
        lines[i] = json.dumps(record)
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return k


def bench_rescan(sizes: dict, shared: Path, work: Path) -> dict:
    n = sizes["rescan_records"]
    original, changed = work / "rescan-original.jsonl", work / "rescan-changed.jsonl"
    original.write_text("\n".join(EXAMPLE.read_text(encoding="utf-8").splitlines()[:n]) + "\n", encoding="utf-8")
    k = changed_copy(EXAMPLE, changed, n, 0.01)
    cache = fresh_cache(shared, work, "cache-rescan")
    args = ["-q"]
    log(f"rescan: full scan of {n} example records (generate mode, three traits), empty cache")
    full = child("scan", ["scan", str(original), "--out", str(work / "out-full"), *args], cache, work)
    log(f"  full {full['wall_s']:.1f} s; rescan with {k} changed records")
    incremental = child("scan", ["scan", str(changed), "--out", str(work / "out-changed"), *args], cache, work)
    unchanged = child("scan", ["scan", str(changed), "--out", str(work / "out-unchanged"), *args], cache, work)
    log(f"  changed {incremental['wall_s']:.1f} s, unchanged {unchanged['wall_s']:.1f} s")
    shutil.rmtree(cache, ignore_errors=True)
    return {"records": n, "changed_records": k, "changed_fraction": round(k / n, 4),
            "full_scan_s": round(full["wall_s"], 2), "changed_rescan_s": round(incremental["wall_s"], 2),
            "unchanged_rescan_s": round(unchanged["wall_s"], 2),
            "ratio": round(incremental["wall_s"] / full["wall_s"], 4),
            "note": "wall time inside a fresh process (interpreter start-up excluded, imports and model load "
                    "included); changed records have their last user message and last answer edited, so both "
                    "their base answers and their projections are recomputed"}
