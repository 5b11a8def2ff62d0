"""Section `flops`: our forward pass in FLOP/s as a fraction of this machine's fp32 torch.mm rate."""

from __future__ import annotations

import time

import torch

from .common import default_layers, log


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
