"""Section `load`: model load in a fresh process, cold and warm."""

from __future__ import annotations

import shutil
import statistics
from pathlib import Path

from .common import log
from .processes import child


def bench_load(sizes: dict, work: Path) -> dict:
    cache = work / "cache-load"
    shutil.rmtree(cache, ignore_errors=True)
    log("load: cold (empty cache: GGUF conversion)")
    cold = child("load", [], cache, work)
    warm = []
    for _ in range(sizes["warm_loads"]):
        warm.append(child("load", [], cache, work))
    shutil.rmtree(cache, ignore_errors=True)
    load = statistics.median(w["load_s"] for w in warm)
    log(f"  cold {cold['load_s']:.1f} s, warm {load:.2f} s")
    return {"cold_load_s": round(cold["load_s"], 2), "warm_load_s": round(load, 3),
            "warm_loads_s": [round(w["load_s"], 3) for w in warm],
            "import_s": round(statistics.median(w["import_s"] for w in warm), 2),
            "same_process_reload_s": round(statistics.median(w["reload_s"] for w in warm), 3),
            "warm_process_s": round(statistics.median(w["process_s"] for w in warm), 2),
            "note": "load_s: the first auditor.model.loading.load_model('default') in a fresh process after "
                    "`import auditor.model.loading` (import_s), so it includes transformers' lazy imports of the model "
                    "and tokenizer classes; same_process_reload_s: a second load in that process (file loading "
                    "only); cold includes the one-time GGUF conversion"}
