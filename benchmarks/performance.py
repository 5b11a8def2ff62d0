"""How fast the scan is, measured against plain reference implementations in one run on one machine.

    python benchmarks/performance.py [--quick] [--only scoring,flops,generation,memory,load,rescan]
                                     [--out benchmarks/results/performance.json]

Sections (all ratios are taken within this one run, on this machine, with the same data and threads):

  scoring     activation scoring throughput (real tokens/s): our `response_means` against a reference
              that runs one sample at a time in fp32 through the whole model with
              `output_hidden_states=True` and the LM head; plus one row per technique in between
              (early stop, batching without length buckets, batch sizes, bf16), and the largest
              difference between our means and the reference's. Then the activations a generate-mode
              scan needs (each sample's and its base answer's): ours are read off the generation and
              the prompt's KV cache, so their cost is what they add to plain batched generation.
  flops       our forward pass (stopped after the deepest layer the default traits need) in FLOP/s,
              counted analytically from the config, as a fraction of this machine's fp32 `torch.mm`
              rate measured now with the same thread count; batch sizes 1, 8, 16, 32.
  generation  base-answer generation: `base_answers` (length-bucketed, left-padded batches, KV cache,
              per-row stop) against `model.generate` one prompt at a time, in useful new tokens/s.
  memory      peak RSS (VmHWM) of `dataset-audit scan` in a fresh process on synthetic short records
              at several dataset sizes (--base-responses none --traits evil --max-tokens 64).
  load        model load in a fresh process: cold (empty cache: the embedded GGUF is converted) and warm.
  rescan      `dataset-audit scan` (default settings: generate mode, three traits) of the example data
              with an empty cache, then again after changing 1% of the records (prompt and answer
              edited, so their base answers and projections are all recomputed), then unchanged.

Writes the results as JSON to --out and prints a markdown table; with --merge, the sections of an
existing --out file that this run does not measure are kept (each section records when it ran). --quick uses small sizes (a smoke
test in a few minutes); the defaults are the sizes the README quotes. Timings are only meaningful
on an otherwise idle machine.
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
SECTIONS = ("scoring", "flops", "generation", "memory", "load", "rescan")
DEFAULT_TRAITS = ("evil", "sycophantic", "hallucinating")

FULL = {"scoring_samples": 270, "scan_records": 40, "bf16_samples": 64, "flops_seq": 128, "flops_reps": 3, "gen_prompts": 48,
        "gen_new_tokens": 64, "memory_sizes": [1000, 5000, 20000], "warm_loads": 3, "rescan_records": 270,
        "rescan_new_tokens": 64}
QUICK = {"scoring_samples": 8, "scan_records": 4, "bf16_samples": 4, "flops_seq": 32, "flops_reps": 1, "gen_prompts": 4,
         "gen_new_tokens": 8, "memory_sizes": [20, 80], "warm_loads": 1, "rescan_records": 10,
         "rescan_new_tokens": 4}


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
    from auditor.scanning.local import read_inputs
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
    scan = bench_scan_scoring(lm, pairs[: sizes["scan_records"]], layers, sizes["gen_new_tokens"],
                              3 if sizes["scan_records"] > 8 else 1)
    best = max(ours.values(), key=lambda r: r["tokens_per_s"])
    config, seq = lm.model.config, round(tokens / len(pairs))
    head = 2 * config.hidden_size * config.vocab_size  # the LM head's FLOPs per token
    work = (forward_flops(config, lm.num_layers, 1, seq) / seq + head) / (forward_flops(config, max(layers), 1, seq) / seq)
    return {"samples": len(pairs), "tokens": tokens, "layers": layers, "variants": rows,
            "reference_over_ours_flops_per_token": round(work, 2),
            "speedup_default_batch": round(ours[8]["tokens_per_s"] / ref_row["tokens_per_s"], 2),
            "speedup_best_batch": round(best["tokens_per_s"] / ref_row["tokens_per_s"], 2),
            "max_abs_diff_vs_reference": max(r["max_abs_diff_vs_reference"] for r in rows if "ours:" in r["variant"]),
            "generate_mode_scan": scan}


def bench_scan_scoring(lm, pairs, layers, max_new_tokens: int, reps: int = 3) -> dict:
    """The activations a generate-mode scan needs: each sample's and its base answer's, ours vs the reference.

    The scan reads base answers' states off their generation and scores each sample from a copy of
    the prompt's KV cache. Our cost per batch: the samples' forward from the cache (timed directly)
    plus what reading the states adds to the generation (with-states generation minus that forward,
    minus plain generation of the same batch: one extra decode step and the hooks). The reference runs
    one full forward per sample and one per base answer. Each batch is run `reps` times, plain, with
    states and reference interleaved, and the fastest of each is kept (for ours and the reference
    alike): run times here vary by 20% or more from minute to minute.
    """
    import auditor.model.generation as generation
    from auditor.model.activations import length_batches

    settings = generation.GenerationSettings(max_new_tokens=max_new_tokens)
    prompts, samples = [p for p, _ in pairs], [r for _, r in pairs]
    log(f"scoring, generate-mode scan: {len(pairs)} records, base answers up to {max_new_tokens} tokens")
    generation.generate_batch(lm, prompts[:2], settings)  # warm-up
    forward = generation._continuation_means
    spent: list[float] = []

    def timed_forward(*args, **kwargs):
        seconds, value = timed(forward, *args, **kwargs)
        spent.append(seconds)
        return value

    generation._continuation_means = timed_forward
    answers, answer_means, sample_means = [None] * len(pairs), [None] * len(pairs), [None] * len(pairs)
    references = [None] * len(pairs)
    plain_s = samples_s = overhead_s = ref_seconds = 0.0
    try:
        for batch in length_batches([len(p) for p in prompts], 8):
            plain, forwards, extras, refs = [], [], [], []
            for _ in range(reps):
                plain.append(timed(generation.generate_batch, lm, [prompts[i] for i in batch], settings)[0])
                spent.clear()
                seconds, (new, means, sampled) = timed(generation.generate_with_states, lm, [prompts[i] for i in batch],
                                                       settings, layers, [samples[i] for i in batch])
                forwards.append(spent[0])
                extras.append(seconds - spent[0])
                both = [pairs[i] for i in batch] + [(prompts[i], a) for i, a in zip(batch, new)]
                seconds, reference = timed(reference_means, lm, both, layers)
                refs.append(seconds)
            plain_s += min(plain)
            samples_s += min(forwards)
            overhead_s += max(min(extras) - min(plain), 0.0)
            ref_seconds += min(refs)
            for row, i in enumerate(batch):
                answers[i], answer_means[i], sample_means[i] = new[row], means[row], sampled[row]
                references[i] = (reference[row], reference[len(batch) + row])
    finally:
        generation._continuation_means = forward
    base_pairs = list(zip(prompts, answers))
    reference = (np.stack([r[0] for r in references]), np.stack([r[1] for r in references]))
    ours_s = samples_s + overhead_s
    tokens = sum(len(p) + len(r) for p, r in pairs + base_pairs)
    diff = max(float(np.abs(np.stack(o) - r).max()) for o, r in zip((sample_means, answer_means), reference))
    result = {"records": len(pairs), "tokens": tokens, "reps": reps,
              "generation_plain_s": round(plain_s, 2), "sample_forward_s": round(samples_s, 2),
              "state_reading_overhead_s": round(overhead_s, 2), "ours_s": round(ours_s, 2),
              "reference_s": round(ref_seconds, 2), "ours_tokens_per_s": round(tokens / ours_s, 1),
              "reference_tokens_per_s": round(tokens / ref_seconds, 1), "speedup": round(ref_seconds / ours_s, 2),
              "max_abs_diff_vs_reference": diff}
    log(f"  reference {result['reference_tokens_per_s']} tok/s, ours {result['ours_tokens_per_s']} tok/s "
        f"(samples' forward {samples_s:.1f} s + reading states {overhead_s:.1f} s; plain generation {plain_s:.1f} s)")
    return result


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

@torch.inference_mode()
def generate_one_by_one(lm, prompts, settings) -> list[list[int]]:
    """The straightforward way: `model.generate` on one prompt at a time (same stop tokens and penalty)."""
    from auditor.model.generation import stop_ids

    stops, answers = stop_ids(lm), []
    for prompt in prompts:
        ids = torch.tensor([prompt], device=lm.device)
        out = lm.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                max_new_tokens=settings.max_new_tokens, repetition_penalty=settings.repetition_penalty,
                                eos_token_id=stops, pad_token_id=lm.tokenizer.pad_token_id, top_p=None, top_k=None,
                                temperature=None)[0, len(prompt):].tolist()
        cut = next((i for i, t in enumerate(out) if t in stops), len(out))
        answers.append(out[:cut] or out[:1])
    return answers


def bench_generation(lm, sizes: dict) -> dict:
    from auditor.model.generation import GenerationSettings, base_answers

    settings = GenerationSettings(max_new_tokens=sizes["gen_new_tokens"])
    prompts = [p for p, _ in example_pairs(lm, sizes["gen_prompts"])]
    log(f"generation: {len(prompts)} prompts, max_new_tokens {settings.max_new_tokens}")
    base_answers(lm, prompts[:2], settings, 2)  # warm-up
    rows = []
    seconds, single = timed(generate_one_by_one, lm, prompts, settings)
    new = sum(len(a) for a in single)
    rows.append({"variant": "reference: model.generate, 1 prompt at a time", "seconds": round(seconds, 2),
                 "new_tokens": new, "new_tokens_per_s": round(new / seconds, 1), "same_answers_as_reference": 1.0})
    log(f"  one by one: {rows[-1]['new_tokens_per_s']} new tok/s")
    for batch_size in (8, 16):
        seconds, answers = timed(base_answers, lm, prompts, settings, batch_size)
        answers = answers.ids
        new = sum(len(a) for a in answers)
        same = sum(a == b for a, b in zip(answers, single)) / len(prompts)
        rows.append({"variant": f"ours: base_answers, batches of {batch_size}" + (" (scan default)" if batch_size == 8 else ""),
                     "seconds": round(seconds, 2), "new_tokens": new, "new_tokens_per_s": round(new / seconds, 1),
                     "same_answers_as_reference": round(same, 3)})
        log(f"  batches of {batch_size}: {rows[-1]['new_tokens_per_s']} new tok/s")
    ref = rows[0]["new_tokens_per_s"]
    return {"prompts": len(prompts), "max_new_tokens": settings.max_new_tokens, "variants": rows,
            "speedup_default_batch": round(rows[1]["new_tokens_per_s"] / ref, 2),
            "speedup_best_batch": round(max(r["new_tokens_per_s"] for r in rows[1:]) / ref, 2),
            "note": "new tokens = answer tokens kept (up to the first stop token); padding steps not counted. "
                    "Greedy answers can differ in a few tokens between batched and single runs (float rounding)."}


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
    args = ["-q", "--max-new-tokens", str(sizes["rescan_new_tokens"])]
    log(f"rescan: full scan of {n} example records (generate mode, three traits), empty cache")
    full = child("scan", ["scan", str(original), "--out", str(work / "out-full"), *args], cache, work)
    log(f"  full {full['wall_s']:.1f} s; rescan with {k} changed records")
    incremental = child("scan", ["scan", str(changed), "--out", str(work / "out-changed"), *args], cache, work)
    unchanged = child("scan", ["scan", str(changed), "--out", str(work / "out-unchanged"), *args], cache, work)
    log(f"  changed {incremental['wall_s']:.1f} s, unchanged {unchanged['wall_s']:.1f} s")
    shutil.rmtree(cache, ignore_errors=True)
    return {"records": n, "changed_records": k, "changed_fraction": round(k / n, 4),
            "max_new_tokens": sizes["rescan_new_tokens"],
            "full_scan_s": round(full["wall_s"], 2), "changed_rescan_s": round(incremental["wall_s"], 2),
            "unchanged_rescan_s": round(unchanged["wall_s"], 2),
            "ratio": round(incremental["wall_s"] / full["wall_s"], 4),
            "note": "wall time inside a fresh process (interpreter start-up excluded, imports and model load "
                    "included); changed records have their last user message and last answer edited, so both "
                    "their base answers and their projections are recomputed"}


# ---------------------------------------------------------------------------------------------- report

def verdicts(results: dict) -> list[dict]:
    checks = []
    sections = results["sections"]

    def check(name, value, target, ok):
        checks.append({"metric": name, "value": value, "target": target, "pass": bool(ok)})

    if "scoring" in sections:
        s = sections["scoring"]
        g = s["generate_mode_scan"]
        check("scoring in a generate-mode scan (the default): samples + base answers",
              f"{g['speedup']}x ({g['ours_tokens_per_s']} vs {g['reference_tokens_per_s']} tok/s)", ">= 5x",
              g["speedup"] >= 5)
        check("scoring given pairs (--base-responses none or FILE), batch 8", f"{s['speedup_default_batch']}x", ">= 5x",
              s["speedup_default_batch"] >= 5)
    if "flops" in sections:
        for row in sections["flops"]["batches"]:
            if row["batch"] >= 8:
                check(f"forward FLOP rate, batch {row['batch']} x {row['seq']} tokens",
                      f"{row['fraction_of_mm_peak']:.0%} of mm ({row['gflops_per_s']} GFLOP/s)", ">= 50%",
                      row["fraction_of_mm_peak"] >= 0.5)
    if "generation" in sections:
        g = sections["generation"]
        check("batched generation vs per-sample (batch 8, scan default)", f"{g['speedup_default_batch']}x", ">= 3x",
              g["speedup_default_batch"] >= 3)
    if "memory" in sections:
        m = sections["memory"]
        largest = m["sizes"][-1]
        check(f"peak RSS, {largest['records']}-record scan", f"{largest['peak_rss_gb']} GB "
              f"(+{m['growth_gb_per_10k_records']} GB per 10k records)", "<= 2.5 GB, flat",
              largest["peak_rss_gb"] <= 2.5)
    if "load" in sections:
        lo = sections["load"]
        check("warm model load, fresh process (includes transformers' first-use imports)",
              f"{lo['warm_load_s']} s (cold {lo['cold_load_s']} s)", "<= 3 s", lo["warm_load_s"] <= 3)
        check("warm model load, transformers already imported (second load in a process)",
              f"{lo['same_process_reload_s']} s", "<= 3 s", lo["same_process_reload_s"] <= 3)
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
    if "scoring" in sections:
        s = sections["scoring"]
        lines += ["", f"Scoring, {s['samples']} example samples ({s['tokens']} tokens), layers {s['layers']} "
                      f"(the reference does {s['reference_over_ours_flops_per_token']}x our matmul FLOPs per token):", "",
                  "| variant | tokens/s | vs reference | max abs diff | note |", "|---|---|---|---|---|"]
        ref = s["variants"][0]["tokens_per_s"]
        lines += [f"| {r['variant']} | {r['tokens_per_s']} | {r['tokens_per_s'] / ref:.2f}x | "
                  f"{r['max_abs_diff_vs_reference']:.1e} | {r['note']} |" for r in s["variants"]]
        g = s["generate_mode_scan"]
        lines += ["", f"Scoring in a generate-mode scan, {g['records']} records ({g['tokens']} sample + base-answer tokens): "
                      f"the reference's two forwards per record take {g['reference_s']} s ({g['reference_tokens_per_s']} tok/s); "
                      f"ours take {g['ours_s']} s ({g['ours_tokens_per_s']} tok/s, {g['speedup']}x): the samples' forward "
                      f"from the prompt cache {g['sample_forward_s']} s plus {g['state_reading_overhead_s']} s that reading "
                      f"the states adds to generation (plain generation {g['generation_plain_s']} s; fastest of "
                      f"{g['reps']} runs per batch, for the reference too). Max abs diff from the reference's means "
                      f"{g['max_abs_diff_vs_reference']:.1e}."]
    if "flops" in sections:
        f = sections["flops"]
        lines += ["", f"Forward FLOP rate ({f['layers_run']} of {f['of_layers']} layers; torch.mm fp32 "
                      f"{f['mm_gflops_per_s']} GFLOP/s by size, {f['threads']} threads):", "",
                  "| batch x seq | GFLOP/s | of mm peak | tokens/s | mm at MLP shape, GFLOP/s |", "|---|---|---|---|---|"]
        lines += [f"| {r['batch']} x {r['seq']} | {r['gflops_per_s']} | {r['fraction_of_mm_peak']:.0%} | "
                  f"{r['tokens_per_s']} | {r['mm_rate_at_mlp_shape_gflops']} |" for r in f["batches"]]
    if "generation" in sections:
        g = sections["generation"]
        lines += ["", f"Generation, {g['prompts']} example prompts, max {g['max_new_tokens']} new tokens:", "",
                  "| variant | new tokens/s | seconds | same answers as reference |", "|---|---|---|---|"]
        lines += [f"| {r['variant']} | {r['new_tokens_per_s']} | {r['seconds']} | {r['same_answers_as_reference']:.0%} |"
                  for r in g["variants"]]
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
    lm = load_model("default", device, "float32") if {"scoring", "flops", "generation"} & set(chosen) else None
    if not (shared / "models").is_dir():  # the subprocess sections share the converted model
        load_model("default")
    work = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="da-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        for section in SECTIONS:
            if section not in chosen:
                continue
            t0 = time.perf_counter()
            if section == "scoring":
                value = bench_scoring(lm, sizes, device)
            elif section == "flops":
                value = bench_flops(lm, sizes)
            elif section == "generation":
                value = bench_generation(lm, sizes)
            elif section == "memory":
                value = bench_memory(sizes, shared, work)
            elif section == "load":
                value = bench_load(sizes, work)
            else:
                value = bench_rescan(sizes, shared, work)
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
