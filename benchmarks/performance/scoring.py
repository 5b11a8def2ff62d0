"""Section `scoring`: activation scoring throughput against one sample at a time through the whole model."""

from __future__ import annotations

import numpy as np
import torch

from .common import default_layers, example_pairs, log, timed
from .flops import forward_flops


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
