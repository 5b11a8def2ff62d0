"""Section `startup`: how soon the model-free commands answer, as fresh processes."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from .common import EXAMPLE, log
from .processes import child, fresh_cache, process_env


def command_seconds(args: list[str], cache: Path, work: Path, runs: int) -> dict:
    """Wall time of `dataset-audit ARGS` as a fresh process (interpreter start included): median of `runs`."""
    exe = str(Path(sys.executable).with_name("dataset-audit"))
    env = process_env(cache)
    times, code = [], None
    for _ in range(runs):
        start = time.perf_counter()
        code = subprocess.run([exe, *args], env=env, cwd=work, capture_output=True).returncode
        times.append(time.perf_counter() - start)
    return {"command": "dataset-audit " + " ".join(args), "median_s": round(statistics.median(times), 3),
            "min_s": round(min(times), 3), "max_s": round(max(times), 3), "exit": code}


def bench_startup(sizes: dict, shared: Path, work: Path) -> dict:
    """How soon the model-free commands answer, as fresh processes, on a small real scan of the example."""
    cache = fresh_cache(shared, work, "cache-startup")
    data = work / "startup.jsonl"
    data.write_text("\n".join(EXAMPLE.read_text(encoding="utf-8").splitlines()[:20]) + "\n", encoding="utf-8")
    log("startup: a small scan and two shards to read")
    for out, shard in (("whole", None), ("s0", "0/2"), ("s1", "1/2")):
        child("scan", ["scan", str(data), "--out", str(work / out), "-q", "--base-responses", "none",
                       *(["--shard", shard] if shard else [])], cache, work)
    runs = sizes["startup_runs"]
    commands = [["--help"], ["validate", str(EXAMPLE)], ["report", "whole", "-o", "again.html"],
                ["merge", "s0", "s1", "--out", "merged"], ["filter", "whole", "--drop-flagged", "-o", "kept.jsonl"]]
    rows = []
    for args in commands:
        rows.append(command_seconds(args, cache, work, runs))
        log(f"  {rows[-1]['command']}: {rows[-1]['median_s']} s")
    shutil.rmtree(cache, ignore_errors=True)
    return {"runs": runs, "commands": rows,
            "note": "wall time of the whole process, interpreter start-up included, median of the runs (after a small "
                    "scan in a fresh process, so the package's bytecode is written, as pip's install writes it)"}
