"""Section `generation`: base answers, transformers' generate against our decoder."""

from __future__ import annotations

import time

import numpy as np
import torch

from .common import example_pairs, log, timed
from .flops import forward_flops, matmul_rate


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
