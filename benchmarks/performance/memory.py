"""Section `memory`: peak RSS of `dataset-audit scan` in a fresh process at several dataset sizes."""

from __future__ import annotations

import shutil
from pathlib import Path

from .common import log
from .processes import child, fresh_cache, synthetic_records


def bench_memory(sizes: dict, shared: Path, work: Path) -> dict:
    rows = []
    for n in sizes["memory_sizes"]:
        data = work / f"synthetic-{n}.jsonl"
        synthetic_records(data, n)
        cache = fresh_cache(shared, work, f"cache-memory-{n}")
        log(f"memory: scanning {n} synthetic records in a fresh process")
        result = child("scan", ["scan", str(data), "--out", str(work / f"out-memory-{n}"), "-q",
                                "--base-responses", "none", "--traits", "evil", "--max-tokens", "64"], cache, work)
        rows.append({"records": n, "peak_rss_gb": round(result["VmHWM"] / 1e9, 3), "seconds": round(result["wall_s"], 1),
                     "records_per_s": round(n / result["wall_s"], 1)})
        log(f"  {n} records: peak RSS {rows[-1]['peak_rss_gb']} GB in {rows[-1]['seconds']} s")
        shutil.rmtree(cache, ignore_errors=True)
    first, last = rows[0], rows[-1]
    return {"command": "dataset-audit scan DATA -q --base-responses none --traits evil --max-tokens 64 "
                       "(fresh process, empty projection cache: every record computed)",
            "sizes": rows, "largest_peak_rss_gb": last["peak_rss_gb"],
            "growth_gb_per_10k_records": round((last["peak_rss_gb"] - first["peak_rss_gb"]) /
                                               max(last["records"] - first["records"], 1) * 1e4, 3)}
