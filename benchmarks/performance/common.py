"""Shared pieces of the performance benchmark: paths, sizes, timing, logging, the machine, the example's pairs."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "chat_mix.jsonl"
SECTIONS = ("generation", "scan", "startup", "load", "gate", "rescan", "scoring", "flops", "memory", "gpu")
DEFAULT_TRAITS = ("evil", "sycophantic", "hallucinating")

FULL = {"scoring_samples": 270, "scan_records": 48, "scan_runs": 3, "bf16_samples": 64, "flops_seq": 128, "flops_reps": 3,
        "gen_prompts": 270, "gen_reference_prompts": 48, "gen_batch_sizes": [16, 32, 64, 128],
        "memory_sizes": [1000, 5000, 20000], "warm_loads": 3, "rescan_records": 270, "startup_runs": 5,
        "gate_baseline_records": 20000, "gate_new_records": 500}
QUICK = {"scoring_samples": 8, "scan_records": 4, "scan_runs": 1, "bf16_samples": 4, "flops_seq": 32, "flops_reps": 1,
         "gen_prompts": 8, "gen_reference_prompts": 4, "gen_batch_sizes": [4, 8], "memory_sizes": [20, 80],
         "warm_loads": 1, "rescan_records": 10, "startup_runs": 1, "gate_baseline_records": 200,
         "gate_new_records": 5, "gpu_batch": 16, "gpu_records": 50}


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


def commit() -> str:
    """The checkout's commit (with `+` when files differ from it), or `unknown`."""
    import subprocess

    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=ROOT, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+" if dirty else "")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def machine_info(device: str) -> dict:
    import transformers

    import auditor

    info = {"platform": platform.platform(), "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "cpu_affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "torch_threads": torch.get_num_threads(), "torch": torch.__version__,
            "transformers": transformers.__version__, "dataset_audit": auditor.__version__, "device": device}
    try:
        info["cpu_model"] = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                                 if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu_model"] = platform.processor()
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    if hasattr(os, "getloadavg"):
        info["load_average_at_start"] = [round(x, 2) for x in os.getloadavg()]
    return info


def example_pairs(lm, n: int, max_tokens: int = 512) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, response ids) of the first n example records, built exactly as the scan builds them."""
    from auditor.config import ScanConfig
    from auditor.scanning.engines.local import read_inputs
    from auditor.scanning.projection import ModelProjector

    config = ScanConfig(inputs=[str(EXAMPLE)], limit=n, max_tokens=max_tokens)
    _, records, _ = read_inputs(config.inputs, config.limit)
    units = ModelProjector(lm, [], config).units(records, np.zeros(len(records), dtype=bool))
    return [(u.prompt, u.response) for u in units]


def default_layers() -> list[int]:
    from auditor.vectors.persona import PersonaVector, builtin_vector_path

    return sorted({PersonaVector.load(builtin_vector_path(t)).layer for t in DEFAULT_TRAITS})
