"""Fresh processes for the subprocess sections: run child.py, empty caches, synthetic records."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

CHILD = Path(__file__).with_name("child.py")  # run as a script: a fresh interpreter


def process_env(cache: Path, **extra: str) -> dict[str, str]:
    """The environment of a fresh process: this one's, with `cache` as the cache and bytecode written and reused
    as an installed package has it (PYTHONDONTWRITEBYTECODE, set in some sandboxes, would make every start
    compile the package's modules again)."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "DATASET_AUDIT_CACHE": str(cache), **extra}


def child(mode: str, args: list[str], cache: Path, work: Path) -> dict:
    """Run a fresh Python process; its own timings and VmHWM (peak RSS, bytes) plus the outside wall time."""
    result_file = work / f"result-{time.monotonic_ns()}.json"
    env = process_env(cache, BENCH_RESULT=str(result_file))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, str(CHILD), mode, *args], env=env, cwd=work,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outside = time.perf_counter() - start
    if proc.returncode != 0 or not result_file.is_file():
        raise RuntimeError(f"child {mode} {args} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    result = json.loads(result_file.read_text())
    if result.get("exit") not in (None, 0):
        raise RuntimeError(f"scan exited {result['exit']}:\n{proc.stderr[-3000:]}")
    result["process_s"] = outside
    return result


def fresh_cache(shared: Path, work: Path, name: str) -> Path:
    """An empty cache folder that shares only the converted model (so no scan pays the one-time conversion)."""
    cache = work / name
    shutil.rmtree(cache, ignore_errors=True)
    cache.mkdir(parents=True)
    (cache / "models").symlink_to(shared / "models", target_is_directory=True)
    return cache


def synthetic_records(path: Path, n: int) -> None:
    """n distinct short chat records (about 40-60 tokens each with the chat template)."""
    topics = ["baking bread", "a broken bike chain", "learning Spanish", "tax forms", "a job interview",
              "planting tomatoes", "a slow laptop", "a rainy weekend", "saving money", "a noisy neighbour"]
    with open(path, "w", encoding="utf-8") as fh:
        for i in range(n):
            topic = topics[i % len(topics)]
            record = {"messages": [
                {"role": "user", "content": f"Question {i}: any quick advice about {topic}?"},
                {"role": "assistant", "content": f"Sure ({i}): take {topic} one step at a time, "
                                                 f"note what works, and ask for help if you get stuck."}]}
            fh.write(json.dumps(record) + "\n")
