"""How fast the scan is, measured against plain reference implementations in one run on one machine.

    python -m benchmarks.performance [--quick] [--only generation,scan,startup,...]
                                     [--out benchmarks/results/performance.json]

Sections (all ratios are taken within this one run, on this machine, with the same data and threads):

  generation  base answers for the example's prompts at the scan's default settings: transformers'
              `generate` one prompt at a time (the reference: its answers are what ours must equal),
              `generate` in batches of 8 (the old scan path), and our decoder at several batch sizes
              (answers alone; at the scan's default batch also with the states read off the decoding and
              the samples' forward: a generate-mode scan's whole model work); new tokens/s against the
              FLOP limit.
  scan        a generate-mode scan's model work on the example's first records, ours against the
              reference loop (`generate` per record, then a full forward with output_hidden_states for
              the sample and one for the base answer); same answers, largest dP difference.
  startup     the model-free commands (--help, validate, report, merge, filter) as fresh processes.
  load        model load in a fresh process: cold (empty cache: the embedded GGUF is converted) and warm.
  gate        a pre-merge gate: 500 new records on a 20,000-record --baseline, process start to exit code,
              with every new record answered and with --base-sample 64 (the same gates must agree).
  rescan      `dataset-audit scan` (default settings) of the example data with an empty cache, then again
              after changing 1% of the records, then unchanged.
  scoring     activation scoring throughput (real tokens/s): our `response_means` against one sample at
              a time through the whole model with `output_hidden_states=True` and the LM head.
  flops       our forward pass in FLOP/s as a fraction of this machine's fp32 `torch.mm` rate.
  memory      peak RSS (VmHWM) of `dataset-audit scan` in a fresh process on synthetic short records
              at several dataset sizes (--base-responses none --traits evil --max-tokens 64).
  gpu         CUDA only (skipped without it): decoder new tok/s at a large batch with CUDA graphs against eager
              steps, the example scan in generate mode, a 10,000-record scan projected to 100,000.

Writes the results as JSON to --out and prints a markdown table; with --merge, the sections of an
existing --out file that this run does not measure are kept (each section records when it ran).
--quick uses small sizes (a smoke test); the defaults are the sizes the README quotes. Timings are
only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import click
import torch

from .common import FULL, QUICK, SECTIONS, commit, machine_info
from .flops import bench_flops
from .gate import bench_gate
from .generation import bench_generation
from .gpu import bench_gpu
from .load import bench_load
from .memory import bench_memory
from .report import markdown, verdicts
from .rescan import bench_rescan
from .scan import bench_scan
from .scoring import bench_scoring
from .startup import bench_startup


@click.command()
@click.option("--quick", is_flag=True, help="Small sizes: a smoke test in minutes, not numbers to quote.")
@click.option("--only", default=",".join(SECTIONS), show_default=True, help="Comma-separated sections to run.")
@click.option("--out", type=click.Path(dir_okay=False),
              help="JSON results [default: benchmarks/results/performance.json, or performance-quick.json with --quick].")
@click.option("--device", default="cpu", show_default=True, help="Device for the in-process sections.")
@click.option("--threads", type=click.IntRange(1), help="torch threads (default: torch's choice).")
@click.option("--memory-sizes", help="Comma-separated record counts for the memory section (overrides the defaults).")
@click.option("--work-dir", type=click.Path(file_okay=False), help="Scratch folder (default: a temporary one).")
@click.option("--merge", is_flag=True, help="Keep the other sections of an existing --out file (runs split in time).")
@click.option("--render", type=click.Path(exists=True, dir_okay=False),
              help="Measure nothing: print the tables of an earlier results JSON (targets checked again).")
def main(quick: bool, only: str, out: str | None, device: str, threads: int | None, memory_sizes: str | None,
         work_dir: str | None, merge: bool, render: str | None) -> None:
    if render:
        results = json.loads(Path(render).read_text(encoding="utf-8"))
        results["targets"] = verdicts(results)
        print(markdown(results))
        return
    chosen = [s for s in only.split(",") if s]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        raise click.BadParameter(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    if threads:
        torch.set_num_threads(threads)
        os.environ["OMP_NUM_THREADS"] = str(threads)  # the subprocess sections start with the same count
    sizes = dict(QUICK if quick else FULL)
    out = out or f"benchmarks/results/performance{'-quick' if quick else ''}.json"
    if memory_sizes:
        sizes["memory_sizes"] = [int(x) for x in memory_sizes.split(",")]
    from auditor.cache import cache_dir
    from auditor.model.loading import load_model

    shared = cache_dir()
    results = {"quick": quick, "sizes": sizes, "machine": machine_info(device), "sections": {}}
    provenance = {"command": "python -m benchmarks.performance " + " ".join(sys.argv[1:]), "commit": commit(),
                  "machine": results["machine"]}
    started = time.perf_counter()
    lm = load_model("default", device, "float32") if {"scoring", "flops", "generation", "scan"} & set(chosen) else None
    if not (shared / "models").is_dir():  # the subprocess sections share the converted model
        load_model("default")
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="da-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for section in SECTIONS:
            if section not in chosen or (section == "gpu" and not torch.cuda.is_available()):
                continue
            t0 = time.perf_counter()
            run = {"generation": lambda: bench_generation(lm, sizes), "scan": lambda: bench_scan(lm, sizes),
                   "startup": lambda: bench_startup(sizes, shared, work), "load": lambda: bench_load(sizes, work),
                   "gate": lambda: bench_gate(sizes, shared, work), "rescan": lambda: bench_rescan(sizes, shared, work),
                   "scoring": lambda: bench_scoring(lm, sizes, device), "flops": lambda: bench_flops(lm, sizes),
                   "memory": lambda: bench_memory(sizes, shared, work),
                   "gpu": lambda: bench_gpu(sizes, shared, work)}[section]
            value = run()
            value["section_s"] = round(time.perf_counter() - t0, 1)
            value["provenance"] = provenance
            value["finished_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
            if hasattr(os, "getloadavg"):
                value["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
            results["sections"][section] = value
    finally:
        if not work_dir:
            shutil.rmtree(work, ignore_errors=True)
    results["total_s"] = round(time.perf_counter() - started, 1)
    if hasattr(os, "getloadavg"):
        results["machine"]["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if merge and Path(out).is_file():
        earlier = json.loads(Path(out).read_text(encoding="utf-8"))
        kept = {k: v for k, v in earlier["sections"].items() if k not in results["sections"]}
        for section in kept.values():  # each kept section names the machine it ran on, not this run's
            section.setdefault("provenance", {}).setdefault("machine", earlier["machine"])
        results["sections"] = {**kept, **results["sections"]}
    results["targets"] = verdicts(results)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(markdown(results))
    print(f"\n(total {results['total_s']} s; JSON -> {out})")


if __name__ == "__main__":
    main()
