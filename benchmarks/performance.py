"""How fast the scan is, measured against plain reference implementations in one run on one machine.

    python benchmarks/performance.py [--quick] [--only generation,scan,startup,...]
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
  gate        a pre-merge gate: 500 new records on a 20,000-record --baseline, process start to exit code.
  rescan      `dataset-audit scan` (default settings) of the example data with an empty cache, then again
              after changing 1% of the records, then unchanged.
  scoring     activation scoring throughput (real tokens/s): our `response_means` against one sample at
              a time through the whole model with `output_hidden_states=True` and the LM head.
  flops       our forward pass in FLOP/s as a fraction of this machine's fp32 `torch.mm` rate.
  memory      peak RSS (VmHWM) of `dataset-audit scan` in a fresh process on synthetic short records
              at several dataset sizes (--base-responses none --traits evil --max-tokens 64).

Writes the results as JSON to --out and prints a markdown table; with --merge, the sections of an
existing --out file that this run does not measure are kept (each section records when it ran).
--quick uses small sizes (a smoke test); the defaults are the sizes the README quotes. Timings are
only meaningful on an otherwise idle machine.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import click
import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "chat_mix.jsonl"
SECTIONS = ("generation", "scan", "startup", "load", "gate", "rescan", "scoring", "flops", "memory")
DEFAULT_TRAITS = ("evil", "sycophantic", "hallucinating")

FULL = {"scoring_samples": 270, "scan_records": 48, "bf16_samples": 64, "flops_seq": 128, "flops_reps": 3,
        "gen_prompts": 270, "gen_reference_prompts": 48, "gen_batch_sizes": [16, 32, 64, 128],
        "memory_sizes": [1000, 5000, 20000], "warm_loads": 3, "rescan_records": 270, "startup_runs": 5,
        "gate_baseline_records": 20000, "gate_new_records": 500}
QUICK = {"scoring_samples": 8, "scan_records": 4, "bf16_samples": 4, "flops_seq": 32, "flops_reps": 1,
         "gen_prompts": 8, "gen_reference_prompts": 4, "gen_batch_sizes": [4, 8], "memory_sizes": [20, 80],
         "warm_loads": 1, "rescan_records": 10, "startup_runs": 1, "gate_baseline_records": 200,
         "gate_new_records": 5}


# ---------------------------------------------------------------------------------------------- helpers

def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


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


# ---------------------------------------------------------------------------------------------- scoring

@torch.no_grad()
def reference_means(lm, pairs, layers) -> np.ndarray:
    """The straightforward way: one sample at a time, every layer's hidden states, the LM head too."""
    out = np.zeros((len(pairs), len(layers), lm.hidden_size), dtype=np.float32)
    for i, (prompt, response) in enumerate(pairs):
        ids = torch.tensor([prompt + response], device=lm.device)
        states = lm.model(input_ids=ids, output_hidden_states=True).hidden_states
        for col, layer in enumerate(layers):
            out[i, col] = states[layer][0, len(prompt):].float().mean(0).cpu().numpy()
    return out


@torch.inference_mode()
def early_stop_one_by_one(lm, pairs, layers) -> np.ndarray:
    """Reference plus one technique: the forward stops after the deepest needed layer (no LM head)."""
    from auditor.model.activations import hidden_states

    out = np.zeros((len(pairs), len(layers), lm.hidden_size), dtype=np.float32)
    for i, (prompt, response) in enumerate(pairs):
        ids = torch.tensor([prompt + response], device=lm.device)
        states = hidden_states(lm, ids, torch.ones_like(ids), layers)
        for col, layer in enumerate(layers):
            out[i, col] = states[layer][0, len(prompt):].float().mean(0).cpu().numpy()
    return out


@torch.inference_mode()
def batched_in_file_order(lm, pairs, layers, batch_size: int) -> np.ndarray:
    """Early stop and batches, but batches in file order (no length buckets): shows what padding costs."""
    from auditor.model.activations import hidden_states

    out = np.zeros((len(pairs), len(layers), lm.hidden_size), dtype=np.float32)
    pad = lm.tokenizer.pad_token_id
    for start in range(0, len(pairs), batch_size):
        batch = list(range(start, min(start + batch_size, len(pairs))))
        width = max(len(pairs[i][0]) + len(pairs[i][1]) for i in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for row, i in enumerate(batch):
            seq = pairs[i][0] + pairs[i][1]
            ids[row, : len(seq)] = torch.tensor(seq)
            mask[row, : len(seq)] = 1
        states = hidden_states(lm, ids.to(lm.device), mask.to(lm.device), layers)
        for row, i in enumerate(batch):
            p, n = len(pairs[i][0]), len(pairs[i][0]) + len(pairs[i][1])
            for col, layer in enumerate(layers):
                out[i, col] = states[layer][row, p:n].float().mean(0).cpu().numpy()
    return out


def padded_tokens(pairs, batches) -> int:
    return sum(len(b) * max(len(pairs[i][0]) + len(pairs[i][1]) for i in b) for b in batches)


def bench_scoring(lm, sizes: dict, device: str) -> dict:
    from auditor.model.activations import length_batches, response_means
    from auditor.model.loading import load_model

    layers = default_layers()
    pairs = example_pairs(lm, sizes["scoring_samples"])
    tokens = sum(len(p) + len(r) for p, r in pairs)
    log(f"scoring: {len(pairs)} samples, {tokens} tokens, layers {layers} of {lm.num_layers}")
    rows, reference = [], None

    def row(name: str, seconds: float, means: np.ndarray, n_pairs: list, note: str = "") -> dict:
        n_tokens = sum(len(p) + len(r) for p, r in n_pairs)
        ref = reference[: len(n_pairs)] if reference is not None else means
        diff = float(np.abs(means - ref).max())
        item = {"variant": name, "seconds": round(seconds, 3), "samples": len(n_pairs), "tokens": n_tokens,
                "tokens_per_s": round(n_tokens / seconds, 1), "max_abs_diff_vs_reference": diff, "note": note}
        log(f"  {name}: {item['tokens_per_s']} tok/s ({seconds:.1f} s)")
        rows.append(item)
        return item

    response_means(lm, pairs[:2], layers, 2)  # warm-up: first-call allocations, lazy inits
    seconds, reference = timed(reference_means, lm, pairs, layers)
    ref_row = row("reference: 1 sample/forward, fp32, output_hidden_states, LM head", seconds, reference, pairs)
    seconds, means = timed(early_stop_one_by_one, lm, pairs, layers)
    row("+ stop after deepest needed layer, no LM head, inference_mode (1 sample/forward)", seconds, means, pairs)
    waste = padded_tokens(pairs, [list(range(s, min(s + 8, len(pairs)))) for s in range(0, len(pairs), 8)])
    seconds, means = timed(batched_in_file_order, lm, pairs, layers, 8)
    row("+ batches of 8 in file order (right padding, no length buckets)", seconds, means, pairs,
        f"{waste / tokens - 1:.0%} padding")
    ours = {}
    for batch_size in (8, 16, 32):
        waste = padded_tokens(pairs, length_batches([len(p) + len(r) for p, r in pairs], batch_size))
        seconds, means = timed(response_means, lm, pairs, layers, batch_size)
        name = f"ours: response_means, length-bucketed batches of {batch_size}"
        ours[batch_size] = row(name, seconds, means, pairs, f"{waste / tokens - 1:.0%} padding"
                               + (" (scan default)" if batch_size == 8 else ""))
    if device == "cpu" or device.startswith("cuda"):
        bf16 = load_model("default", device, "bfloat16")
        subset = pairs[: sizes["bf16_samples"]]
        response_means(bf16, subset[:2], layers, 2)
        seconds, means = timed(response_means, bf16, subset, layers, 8)
        row(f"ours in bfloat16, batches of 8 (first {len(subset)} samples)", seconds, means, subset,
            "scan default on GPU" if device != "cpu" else "not the CPU default")
        del bf16
    best = max(ours.values(), key=lambda r: r["tokens_per_s"])
    config, seq = lm.model.config, round(tokens / len(pairs))
    head = 2 * config.hidden_size * config.vocab_size  # the LM head's FLOPs per token
    work = (forward_flops(config, lm.num_layers, 1, seq) / seq + head) / (forward_flops(config, max(layers), 1, seq) / seq)
    return {"samples": len(pairs), "tokens": tokens, "layers": layers, "variants": rows,
            "reference_over_ours_flops_per_token": round(work, 2),
            "speedup_default_batch": round(ours[8]["tokens_per_s"] / ref_row["tokens_per_s"], 2),
            "speedup_best_batch": round(best["tokens_per_s"] / ref_row["tokens_per_s"], 2),
            "max_abs_diff_vs_reference": max(r["max_abs_diff_vs_reference"] for r in rows if "ours:" in r["variant"])}


# ---------------------------------------------------------------------------------------------- flops

def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(m: int, k: int, n: int, device: torch.device, seconds_target: float = 1.0) -> float:
    """FLOP/s of fp32 torch.mm of [m, k] x [k, n] on `device` (the threads torch uses now, on CPU)."""
    a, b = torch.randn(m, k, device=device), torch.randn(k, n, device=device)
    torch.mm(a, b)
    sync(device)
    reps, elapsed, start = 0, 0.0, time.perf_counter()
    while elapsed < seconds_target or reps < 3:
        torch.mm(a, b)
        sync(device)
        reps += 1
        elapsed = time.perf_counter() - start
    return 2 * m * k * n * reps / elapsed


def forward_flops(config, layers_run: int, batch: int, seq: int) -> int:
    """Matmul FLOPs of `layers_run` decoder blocks on batch x seq tokens (causal attention, useful part only)."""
    h, inter = config.hidden_size, config.intermediate_size
    heads, kv = config.num_attention_heads, config.num_key_value_heads
    hd = getattr(config, "head_dim", None) or h // heads
    per_token = 2 * (h * heads * hd + 2 * h * kv * hd + heads * hd * h + 3 * h * inter)
    attention = 2 * 2 * heads * hd * seq * (seq + 1) // 2  # QK^T and AV over the causal triangle, per sequence
    return layers_run * batch * (seq * per_token + attention)


@torch.inference_mode()
def bench_flops(lm, sizes: dict) -> dict:
    from auditor.model.activations import hidden_states

    threads = torch.get_num_threads()
    device = lm.device
    square = {n: matmul_rate(n, n, n, device) for n in (1024, 2048)}
    peak = max(square.values())
    log(f"flops: torch.mm fp32 peak {peak / 1e9:.1f} GFLOP/s with {threads} threads")
    layers = default_layers()
    deepest, seq = max(layers), sizes["flops_seq"]
    config = lm.model.config
    rows = []
    for batch in (1, 8, 16, 32):
        ids = torch.randint(100, config.vocab_size, (batch, seq), device=device)
        mask = torch.ones_like(ids)
        hidden_states(lm, ids, mask, [deepest])
        times = []
        for _ in range(sizes["flops_reps"]):
            sync(device)
            start = time.perf_counter()
            hidden_states(lm, ids, mask, [deepest])
            sync(device)
            times.append(time.perf_counter() - start)
        seconds = min(times)
        flops = forward_flops(config, deepest, batch, seq)
        tokens = batch * seq
        shaped = matmul_rate(tokens, config.hidden_size, config.intermediate_size, device, 0.5)
        rows.append({"batch": batch, "seq": seq, "seconds": round(seconds, 4), "gflop": round(flops / 1e9, 2),
                     "gflops_per_s": round(flops / seconds / 1e9, 2), "fraction_of_mm_peak": round(flops / seconds / peak, 3),
                     "tokens_per_s": round(tokens / seconds, 1),
                     "mm_rate_at_mlp_shape_gflops": round(shaped / 1e9, 2)})
        log(f"  batch {batch}: {rows[-1]['gflops_per_s']} GFLOP/s = {rows[-1]['fraction_of_mm_peak']:.0%} of mm peak")
    return {"threads": threads, "mm_gflops_per_s": {str(n): round(r / 1e9, 2) for n, r in square.items()},
            "mm_peak_gflops_per_s": round(peak / 1e9, 2), "layers_run": deepest, "of_layers": lm.num_layers,
            "counted": "matmuls of the blocks run (q,k,v,o projections, gated MLP) + causal QK^T and AV; "
                       "norms, rotary, softmax, activations and the embedding lookup not counted",
            "batches": rows}


# ---------------------------------------------------------------------------------------------- generation

SPARED = None


def reference_generate(lm, prompts, settings) -> list[list[int]]:
    """transformers' `generate` on one prompt at a time, with the scan's decoding rule (the repetition penalty
    spares special tokens): the straightforward way, and the reference for our answers."""
    from auditor.model import generation, transformers_generation

    spared = sorted(set(lm.tokenizer.all_special_ids) | {lm.tokenizer.pad_token_id})
    stops = generation.stop_ids(lm)
    return [transformers_generation.generate(lm, [p], settings, stops, spared).answers[0] for p in prompts]


def new_tokens_per_s(answers, seconds) -> tuple[int, float]:
    new = sum(len(a) for a in answers)
    return new, round(new / seconds, 1)


def flop_limit(lm, device: torch.device) -> dict:
    """New tokens/s if every matmul of a decoding step ran at this machine's large-matrix torch.mm rate."""
    config = lm.model.config
    per_token = forward_flops(config, lm.num_layers, 1, 1) + 2 * config.hidden_size * config.vocab_size
    rate = matmul_rate(1024, config.hidden_size, config.intermediate_size, device)
    return {"gflop_per_new_token": round(per_token / 1e9, 3), "mm_gflops_per_s": round(rate / 1e9, 1),
            "new_tokens_per_s": round(rate / per_token, 1)}


def bench_generation(lm, sizes: dict) -> dict:
    """Base answers for the example's prompts: the reference (`generate`, one prompt at a time), the old scan
    path (`generate` in batches of 8) and our decoder at several batch sizes, with and without reading states."""
    from auditor.config import ScanConfig
    from auditor.model import generation, transformers_generation
    from auditor.model.generation import GenerationSettings, base_answers
    from auditor.scanning.projection import ModelProjector, project

    config = ScanConfig()
    settings = GenerationSettings(max_new_tokens=config.max_new_tokens)
    projector = ModelProjector.with_model(lm)(config, False)
    pairs = example_pairs(lm, sizes["gen_prompts"])
    prompts, samples = [p for p, _ in pairs], [r for _, r in pairs]
    subset = prompts[: sizes["gen_reference_prompts"]]
    limit = flop_limit(lm, lm.device)
    log(f"generation: {len(prompts)} prompts ({len(subset)} for the references), max_new_tokens "
        f"{settings.max_new_tokens}; limit {limit['new_tokens_per_s']} new tok/s")
    base_answers(lm, prompts[:2], settings, 2)  # warm-up
    seconds, reference = timed(reference_generate, lm, subset, settings)
    new, rate = new_tokens_per_s(reference, seconds)
    rows = [{"variant": "reference: transformers generate, 1 prompt at a time", "prompts": len(subset),
             "seconds": round(seconds, 1), "new_tokens": new, "new_tokens_per_s": rate, "same_as_reference": 1.0}]
    log(f"  reference: {rate} new tok/s")
    stops, spared = generation.stop_ids(lm), sorted(set(lm.tokenizer.all_special_ids) | {lm.tokenizer.pad_token_id})
    start, old = time.perf_counter(), []
    for batch in generation.length_batches([len(p) for p in subset], 8):
        old += [(i, a) for i, a in zip(batch, transformers_generation.generate(
            lm, [subset[i] for i in batch], settings, stops, spared).answers)]
    seconds = time.perf_counter() - start
    old_answers = [a for _, a in sorted(old)]
    new, rate = new_tokens_per_s(old_answers, seconds)
    rows.append({"variant": "transformers generate, length-bucketed batches of 8 (the old scan path)",
                 "prompts": len(subset), "seconds": round(seconds, 1), "new_tokens": new, "new_tokens_per_s": rate,
                 "same_as_reference": round(np.mean([a == b for a, b in zip(old_answers, reference)]), 3)})
    log(f"  generate in batches of 8: {rate} new tok/s")
    with_states = config.gen_batch_size if config.gen_batch_size in sizes["gen_batch_sizes"] else sizes["gen_batch_sizes"][-1]
    for batch_size in sizes["gen_batch_sizes"]:
        for states in (False, True) if batch_size == with_states else (False,):
            kwargs = dict(layers=projector.layers, samples=samples,
                          reduce=lambda m: project(m, projector.layers, projector.vectors)) if states else {}
            seconds, answers = timed(base_answers, lm, prompts, settings, batch_size, **kwargs)
            new, rate = new_tokens_per_s(answers.ids, seconds)
            same = np.mean([a == b for a, b in zip(answers.ids, reference)])
            default = " (scan default)" if batch_size == config.gen_batch_size else ""
            what = "answers, their states and the samples' forward (a scan's whole model work)" if states else "answers"
            rows.append({"variant": f"ours: decoder, batches of {batch_size}{default}: {what}", "prompts": len(prompts),
                         "seconds": round(seconds, 1), "new_tokens": new, "new_tokens_per_s": rate,
                         "same_as_reference": round(float(same), 3), "batch_size": batch_size, "states": states})
            log(f"  ours, batch {batch_size}{' with states' if states else ''}: {rate} new tok/s ({seconds:.0f} s)")
    plain = [r for r in rows if "batch_size" in r and not r["states"]]
    ours = next((r for r in plain if r["batch_size"] == config.gen_batch_size), plain[-1])
    return {"prompts": len(prompts), "reference_prompts": len(subset), "max_new_tokens": settings.max_new_tokens,
            "limit": limit, "variants": rows, "default_new_tokens_per_s": ours["new_tokens_per_s"],
            "default_fraction_of_limit": round(ours["new_tokens_per_s"] / limit["new_tokens_per_s"], 3),
            "speedup_over_reference": round(ours["new_tokens_per_s"] / rows[0]["new_tokens_per_s"], 2),
            "speedup_over_old_path": round(ours["new_tokens_per_s"] / rows[1]["new_tokens_per_s"], 2),
            "note": "new tokens = answer tokens kept (up to the first end token); prefill included in every row. "
                    "same_as_reference: the share of the reference's prompts whose greedy answer is identical."}


# ---------------------------------------------------------------------------------------------- scan

@torch.no_grad()
def reference_scan(lm, units, vectors, settings) -> tuple[list[list[int]], np.ndarray]:
    """A generate-mode scan the straightforward way: for each record, `generate` alone, then one forward pass with
    output_hidden_states (and the LM head) for the sample and one for the base answer. Returns answers and dP."""
    layers = sorted({v.layer for v in vectors})
    answers = reference_generate(lm, [u.prompt for u in units], settings)
    samples = reference_means(lm, [(u.prompt, u.response) for u in units], layers)
    bases = reference_means(lm, [(u.prompt, a) for u, a in zip(units, answers)], layers)
    units_of = [v.unit().numpy() for v in vectors]
    dp = np.stack([(samples[:, layers.index(v.layer)] - bases[:, layers.index(v.layer)]) @ u
                   for v, u in zip(vectors, units_of)], axis=1)
    return answers, dp


def bench_scan(lm, sizes: dict) -> dict:
    """The model work of a generate-mode scan of the example's first records, ours against the reference loop,
    side by side in one run; answers and dP compared."""
    from auditor.config import ScanConfig
    from auditor.model.generation import GenerationSettings
    from auditor.scanning.engines.local import read_inputs
    from auditor.scanning.projection import ModelProjector

    config = ScanConfig(inputs=[str(EXAMPLE)], limit=sizes["scan_records"])
    _, records, _ = read_inputs(config.inputs, config.limit)
    loaded = ModelProjector.with_model(lm)(config, False)
    ours = ModelProjector(lm, loaded.vectors, config, cached=False)
    units = ours.units(records, np.zeros(len(records), dtype=bool))
    log(f"scan: {len(units)} example records, generate mode, max_new_tokens {config.max_new_tokens}")
    seconds, measured = timed(ours.measure, units, False)
    answers = ours.answers_by_prompt(records)  # the same answers again, from no cache: for the comparison only
    dp = measured.sample - measured.base
    log(f"  ours {seconds:.1f} s; reference loop ...")
    ref_seconds, (ref_answers, ref_dp) = timed(reference_scan, lm, units, loaded.vectors,
                                               GenerationSettings(max_new_tokens=config.max_new_tokens))
    same = np.array([answers[u.prompt_key] == a for u, a in zip(units, ref_answers)])
    diff = float(np.abs(dp[same] - ref_dp[same]).max()) if same.any() else None
    log(f"  reference {ref_seconds:.1f} s: {ref_seconds / seconds:.1f}x; same answers {same.mean():.0%}, "
        f"max |dP diff| {diff}")
    return {"records": len(units), "max_new_tokens": config.max_new_tokens, "ours_s": round(seconds, 1),
            "reference_s": round(ref_seconds, 1), "speedup": round(ref_seconds / seconds, 2),
            "same_answers": round(float(same.mean()), 3), "max_abs_dp_diff_where_same": diff,
            "note": "ours: ModelProjector.measure (decoder batches, states read off decoding, samples on the prompt "
                    "cache), no disk cache; reference: generate per record, then a full forward with "
                    "output_hidden_states for the sample and for the base answer"}


# ---------------------------------------------------------------------------------------------- subprocesses

CHILD = textwrap.dedent("""
    import json, os, sys, time
    start = time.perf_counter()
    result = {}
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "load":
        from auditor.model.loading import load_model
        imported = time.perf_counter()
        load_model("default")
        loaded = time.perf_counter()
        load_model("default")  # again in the same process: the file loading alone, every import done
        result.update(import_s=imported - start, load_s=loaded - imported, reload_s=time.perf_counter() - loaded)
    else:
        from auditor.cli import main
        try:
            main(args, standalone_mode=False)
        except SystemExit as exc:
            result["exit"] = exc.code
    result["wall_s"] = time.perf_counter() - start
    status = open("/proc/self/status").read().split("\\n")
    for key in ("VmHWM", "VmRSS"):
        line = next((l for l in status if l.startswith(key + ":")), None)
        if line:
            result[key] = int(line.split()[1]) * 1024
    with open(os.environ["BENCH_RESULT"], "w") as fh:
        json.dump(result, fh)
""")


def child(mode: str, args: list[str], cache: Path, work: Path) -> dict:
    """Run a fresh Python process; its own timings and VmHWM (peak RSS, bytes) plus the outside wall time."""
    result_file = work / f"result-{time.monotonic_ns()}.json"
    env = {**os.environ, "DATASET_AUDIT_CACHE": str(cache), "BENCH_RESULT": str(result_file)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", CHILD, mode, *args], env=env, cwd=work,
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


def command_seconds(args: list[str], cache: Path, work: Path, runs: int) -> dict:
    """Wall time of `dataset-audit ARGS` as a fresh process (interpreter start included): median of `runs`."""
    exe = str(Path(sys.executable).with_name("dataset-audit"))
    env = {**os.environ, "DATASET_AUDIT_CACHE": str(cache)}
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
            "note": "wall time of the whole process, interpreter start-up included, median of the runs"}


def baseline_folder(records_file: Path, folder: Path) -> int:
    """A scan folder standing for an earlier default scan of `records_file`: its scores.parquet has every record's
    sample_id (and placeholder scores), its manifest the default scoring settings. What a --baseline run reads."""
    from dataclasses import asdict

    from auditor.config import DECODING_RULE, ScanConfig
    from auditor.data import Record, read_records
    from auditor.scanning.folder import ScanFolder
    from auditor.scanning.result import scores_table
    from auditor.scanning.scoring import TraitScores
    from auditor.vectors.persona import PersonaVector, builtin_vector_path

    records = [r for r in read_records(records_file) if isinstance(r, Record)]
    rng = np.random.default_rng(0)
    traits = []
    for trait in DEFAULT_TRAITS:
        score = rng.normal(0.0, 0.2, len(records))
        layer = PersonaVector.load(builtin_vector_path(trait)).layer
        traits.append(TraitScores(trait, score * 10, score, score >= 0.5, 0.5, layer))
    table = scores_table(records, traits, np.zeros(len(records), dtype=bool), [[] for _ in records])
    config = ScanConfig(inputs=[str(records_file)])
    manifest = {"decoding_rule": DECODING_RULE, "settings": {k: v for k, v in asdict(config).items()
                                                            if k not in ("inputs", "out")}}
    folder.mkdir(parents=True, exist_ok=True)
    ScanFolder(folder).write(table, [], {"records": {"total": len(records)}}, manifest)
    return len(records)


def bench_gate(sizes: dict, shared: Path, work: Path) -> dict:
    """A pre-merge gate: a 20,000-record dataset scanned before, 500 new records added; time from process start
    to the exit code of `scan --baseline ... --fail-on ...` (default settings: generate mode, three traits)."""
    old, new = sizes["gate_baseline_records"], sizes["gate_new_records"]
    data = work / "gate.jsonl"
    synthetic_records(data, old)
    n = baseline_folder(data, work / "gate-baseline")
    example = EXAMPLE.read_text(encoding="utf-8").splitlines()
    added = []
    for i in range(new):  # the example's records, each made distinct
        record = json.loads(example[i % len(example)])
        record["messages"][-1]["content"] += f" (v{i})" if i >= len(example) else ""
        added.append(json.dumps(record))
    with open(data, "a", encoding="utf-8") as fh:
        fh.write("\n".join(added) + "\n")
    cache = fresh_cache(shared, work, "cache-gate")
    log(f"gate: {n} records in the baseline, {new} new; scan --baseline in a fresh process, empty cache")
    result = command_seconds(["scan", str(data), "--baseline", str(work / "gate-baseline" / "scores.parquet"),
                              "--fail-on", "evil:flagged>5%", "--out", str(work / "gate-out"), "-q"], cache, work, 1)
    summary = json.loads((work / "gate-out" / "summary.json").read_text())
    shutil.rmtree(cache, ignore_errors=True)
    log(f"  {result['median_s']} s to exit code {result['exit']}; {summary['records']}")
    return {"baseline_records": n, "new_records": new, "seconds_to_verdict": result["median_s"],
            "exit": result["exit"], "records": summary["records"],
            "note": "the baseline folder stands for an earlier default scan of the 20,000 records (their sample ids, "
                    "placeholder scores, the default settings); the 500 new records are scored by the model: base "
                    "answers generated, nothing cached. Whole process: start-up, reading, model load, scoring, "
                    "outputs and report"}


# ---------------------------------------------------------------------------------------------- report

def verdicts(results: dict) -> list[dict]:
    checks = []
    sections = results["sections"]

    def check(name, value, target, ok):
        checks.append({"metric": name, "value": value, "target": target, "pass": bool(ok)})

    if "generation" in sections:
        g = sections["generation"]
        check(f"base answers at the scan's defaults (new tokens/s, prefill included; limit "
              f"{g['limit']['new_tokens_per_s']})", f"{g['default_new_tokens_per_s']} "
              f"({g['default_fraction_of_limit']:.0%} of the limit, {g['speedup_over_old_path']}x the old path)",
              ">= 150 (stretch: 230)", g["default_new_tokens_per_s"] >= 150)
        same = min(r["same_as_reference"] for r in g["variants"] if "ours" in r["variant"])
        check("greedy answers identical to transformers generate, one prompt at a time", f"{same:.0%}", ">= 95%",
              same >= 0.95)
    if "scan" in sections:
        s = sections["scan"]
        check(f"generate-mode scan of {s['records']} records vs the reference loop",
              f"{s['speedup']}x ({s['ours_s']} s vs {s['reference_s']} s)", ">= 10x", s["speedup"] >= 10)
        diff = s["max_abs_dp_diff_where_same"]
        check("dP vs the reference where the answers match", f"max {diff:.1e}" if diff is not None else "n/a",
              "<= 1e-3", diff is not None and diff <= 1e-3)
    if "startup" in sections:
        for row in sections["startup"]["commands"]:
            check(f"`{row['command'][:60]}` (fresh process)", f"{row['median_s']} s", "<= 0.5 s", row["median_s"] <= 0.5)
    if "load" in sections:
        lo = sections["load"]
        check("warm model load, fresh process (imports included)", f"{lo['warm_load_s']} s (cold {lo['cold_load_s']} s)",
              "<= 3 s", lo["warm_load_s"] <= 3)
    if "gate" in sections:
        g = sections["gate"]
        check(f"CI gate: {g['new_records']} new records on a {g['baseline_records']}-record baseline, process start "
              "to exit code", f"{g['seconds_to_verdict']} s", "measured", True)
    if "scoring" in sections:
        s = sections["scoring"]
        check("scoring given pairs (--base-responses none or FILE), batch 8", f"{s['speedup_default_batch']}x", ">= 5x",
              s["speedup_default_batch"] >= 5)
    if "flops" in sections:
        for row in sections["flops"]["batches"]:
            if row["batch"] >= 8:
                check(f"forward FLOP rate, batch {row['batch']} x {row['seq']} tokens",
                      f"{row['fraction_of_mm_peak']:.0%} of mm ({row['gflops_per_s']} GFLOP/s)", ">= 50%",
                      row["fraction_of_mm_peak"] >= 0.5)
    if "memory" in sections:
        m = sections["memory"]
        largest = m["sizes"][-1]
        check(f"peak RSS, {largest['records']}-record scan", f"{largest['peak_rss_gb']} GB "
              f"(+{m['growth_gb_per_10k_records']} GB per 10k records)", "<= 2.5 GB, flat",
              largest["peak_rss_gb"] <= 2.5)
    if "rescan" in sections:
        r = sections["rescan"]
        check(f"rescan with {r['changed_records']}/{r['records']} records changed vs full scan",
              f"{r['ratio']:.1%} ({r['changed_rescan_s']} s / {r['full_scan_s']} s)", "<= 5%", r["ratio"] <= 0.05)
    return checks


def markdown(results: dict) -> str:
    m = results["machine"]
    lines = [f"Machine: {m['cpu_model']}, {m['cpu_count']} CPUs, torch {m['torch']} with {m['torch_threads']} threads, "
             f"transformers {m['transformers']}, device {m['device']}"
             + (" (--quick sizes)" if results["quick"] else ""), "",
             "| metric | measured | target | met |", "|---|---|---|---|"]
    lines += [f"| {c['metric']} | {c['value']} | {c['target']} | {'yes' if c['pass'] else 'NO'} |"
              for c in results["targets"]]
    sections = results["sections"]
    if "generation" in sections:
        g = sections["generation"]
        lines += ["", f"Base answers, {g['prompts']} example prompts (the references on the first "
                      f"{g['reference_prompts']}), up to {g['max_new_tokens']} new tokens; limit "
                      f"{g['limit']['new_tokens_per_s']} new tok/s ({g['limit']['gflop_per_new_token']} GFLOP per token "
                      f"at torch.mm's {g['limit']['mm_gflops_per_s']} GFLOP/s):", "",
                  "| variant | prompts | seconds | new tokens/s | same answers as the reference |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {r['variant']} | {r['prompts']} | {r['seconds']} | {r['new_tokens_per_s']} | "
                  f"{r['same_as_reference']:.0%} |" for r in g["variants"]]
    if "scan" in sections:
        s = sections["scan"]
        lines += ["", f"Generate-mode scan, {s['records']} records: ours {s['ours_s']} s, the reference loop "
                      f"{s['reference_s']} s ({s['speedup']}x); same answers {s['same_answers']:.0%}, largest dP "
                      f"difference where they match {s['max_abs_dp_diff_where_same']}."]
    if "startup" in sections:
        lines += ["", "| command (fresh process) | median s | min | max |", "|---|---:|---:|---:|"]
        lines += [f"| `{r['command']}` | {r['median_s']} | {r['min_s']} | {r['max_s']} |"
                  for r in sections["startup"]["commands"]]
    if "gate" in sections:
        g = sections["gate"]
        lines += ["", f"CI gate: {g['new_records']} new records on a {g['baseline_records']}-record baseline: "
                      f"{g['seconds_to_verdict']} s from process start to exit code {g['exit']}."]
    if "scoring" in sections:
        s = sections["scoring"]
        lines += ["", f"Scoring, {s['samples']} example samples ({s['tokens']} tokens), layers {s['layers']} "
                      f"(the reference does {s['reference_over_ours_flops_per_token']}x our matmul FLOPs per token):", "",
                  "| variant | tokens/s | vs reference | max abs diff | note |", "|---|---|---|---|---|"]
        ref = s["variants"][0]["tokens_per_s"]
        lines += [f"| {r['variant']} | {r['tokens_per_s']} | {r['tokens_per_s'] / ref:.2f}x | "
                  f"{r['max_abs_diff_vs_reference']:.1e} | {r['note']} |" for r in s["variants"]]
    if "flops" in sections:
        f = sections["flops"]
        lines += ["", f"Forward FLOP rate ({f['layers_run']} of {f['of_layers']} layers; torch.mm fp32 "
                      f"{f['mm_gflops_per_s']} GFLOP/s by size, {f['threads']} threads):", "",
                  "| batch x seq | GFLOP/s | of mm peak | tokens/s | mm at MLP shape, GFLOP/s |", "|---|---|---|---|---|"]
        lines += [f"| {r['batch']} x {r['seq']} | {r['gflops_per_s']} | {r['fraction_of_mm_peak']:.0%} | "
                  f"{r['tokens_per_s']} | {r['mm_rate_at_mlp_shape_gflops']} |" for r in f["batches"]]
    if "memory" in sections:
        mem = sections["memory"]
        lines += ["", f"Peak RSS of `{mem['command']}`:", "", "| records | peak RSS (GB) | seconds | records/s |",
                  "|---|---|---|---|"]
        lines += [f"| {r['records']} | {r['peak_rss_gb']} | {r['seconds']} | {r['records_per_s']} |" for r in mem["sizes"]]
    if "rescan" in sections:
        r = sections["rescan"]
        lines += ["", f"Rescan: full {r['full_scan_s']} s, {r['changed_records']} of {r['records']} records changed "
                      f"{r['changed_rescan_s']} s, nothing changed {r['unchanged_rescan_s']} s."]
    return "\n".join(lines)


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
    started = time.perf_counter()
    lm = load_model("default", device, "float32") if {"scoring", "flops", "generation", "scan"} & set(chosen) else None
    if not (shared / "models").is_dir():  # the subprocess sections share the converted model
        load_model("default")
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="da-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for section in SECTIONS:
            if section not in chosen:
                continue
            t0 = time.perf_counter()
            run = {"generation": lambda: bench_generation(lm, sizes), "scan": lambda: bench_scan(lm, sizes),
                   "startup": lambda: bench_startup(sizes, shared, work), "load": lambda: bench_load(sizes, work),
                   "gate": lambda: bench_gate(sizes, shared, work), "rescan": lambda: bench_rescan(sizes, shared, work),
                   "scoring": lambda: bench_scoring(lm, sizes, device), "flops": lambda: bench_flops(lm, sizes),
                   "memory": lambda: bench_memory(sizes, shared, work)}[section]
            value = run()
            value["section_s"] = round(time.perf_counter() - t0, 1)
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
        results["sections"] = {**{k: v for k, v in earlier["sections"].items() if k not in results["sections"]},
                               **results["sections"]}
    results["targets"] = verdicts(results)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(markdown(results))
    print(f"\n(total {results['total_s']} s; JSON -> {out})")


if __name__ == "__main__":
    main()
