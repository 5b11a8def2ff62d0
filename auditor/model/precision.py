"""Which number format the model runs in: `dtype` auto, and the evidence it follows on CPUs.

On GPUs `auto` is bfloat16. On a CPU it is float32, unless both hold:
- the CPU computes bfloat16 natively (the `avx512_bf16` or `amx_bf16` flag), so bfloat16 is faster there;
- the shipped precision evidence (precision.json beside this module, written by benchmarks/precision.py) says
  to use it for the embedded model: its scores hold in bfloat16 (the example's AUROC and each detection
  benchmark's AUROC within the 95% bootstrap interval of float32's) and a generate-mode scan ran at least 10%
  faster in bfloat16 (benchmarks/performance, section scan). Other models have no evidence: float32.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import torch

EVIDENCE = Path(__file__).with_name("precision.json")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bfloat16 instructions (read from /proc/cpuinfo; False where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line.split(":", 1)[1].split() for line in fh if line.startswith("flags")), [])
    except OSError:
        return False
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def evidence(path: Path | None = None) -> dict:
    """The shipped measurement of bfloat16 against float32 for the embedded model ({} if there is none)."""
    try:
        return json.loads((path or EVIDENCE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def bf16_pays(is_default: bool, path: Path | None = None) -> bool:
    """Whether the evidence says to run this model in bfloat16: its scores hold there and it is faster (only the
    embedded model is measured)."""
    return is_default and bool(evidence(path).get("bfloat16", {}).get("use"))


def pick_dtype(device: torch.device, requested: str = "auto", is_default: bool = False) -> torch.dtype:
    """The requested dtype; for `auto`, bfloat16 on GPUs and float32 on CPUs except where the evidence rule above
    picks bfloat16."""
    if requested != "auto":
        return DTYPES[requested]
    if device.type != "cpu":
        return torch.bfloat16
    return torch.bfloat16 if cpu_has_native_bf16() and bf16_pays(is_default) else torch.float32


def dtype_name(dtype: torch.dtype) -> str:
    """`torch.float32` -> `float32`, as manifests record it."""
    return str(dtype).removeprefix("torch.")
