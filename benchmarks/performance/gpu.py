"""Section `gpu` (CUDA only): the decoder at large batches with CUDA graphs against eager steps, the example scan in
generate mode as a fresh process, and a 10,000-record synthetic generate-mode scan projected to 100,000."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from .common import EXAMPLE, example_pairs, log, timed
from .processes import child, fresh_cache, synthetic_records


def bench_gpu(sizes: dict, shared: Path, work: Path) -> dict:
    from auditor.config import ScanConfig
    from auditor.model import decoding, generation
    from auditor.model.generation import GenerationSettings
    from auditor.model.loading import load_model

    if not torch.cuda.is_available():
        raise RuntimeError("section gpu needs a CUDA device")
    lm = load_model("default", "cuda")  # dtype auto: bfloat16 on GPUs
    config = ScanConfig()
    settings = GenerationSettings(max_new_tokens=config.max_new_tokens)
    prompts = [p for p, _ in example_pairs(lm, sizes["gen_prompts"])]
    stops, spared = generation.stop_ids(lm), sorted(set(lm.tokenizer.all_special_ids) | {lm.tokenizer.pad_token_id})
    batch = sizes["gpu_batch"]
    rows = (prompts * (batch // len(prompts) + 1))[:batch]
    decoder, rates = decoding.Decoder(lm), {}
    for steps in ("eager", "graphs", "graphs"):  # the first graphs run includes the captures
        torch.cuda.synchronize()
        seconds, done = timed(decoding.decode, decoder, rows, settings.max_new_tokens, stops, spared,
                              settings.repetition_penalty, steps=steps)
        torch.cuda.synchronize()
        rates[steps] = round(sum(len(a) for a in done.answers) / seconds, 1)
        log(f"gpu: batch {batch}, {steps} steps: {rates[steps]} new tok/s ({seconds:.2f} s)")
    cache = fresh_cache(shared, work, "cache-gpu")
    example_args = ["scan", str(EXAMPLE), "--out", str(work / "out-gpu-example"), "-q", "--gen-batch-size", str(batch)]
    example = child("scan", example_args, cache, work)
    log(f"gpu: example scan {example['wall_s']:.1f} s")
    data = work / f"synthetic-{sizes['gpu_records']}.jsonl"
    synthetic_records(data, sizes["gpu_records"])
    big = child("scan", ["scan", str(data), "--out", str(work / "out-gpu-big"), "-q", "--gen-batch-size", str(batch)],
                cache, work)
    shutil.rmtree(cache, ignore_errors=True)
    per_record = big["wall_s"] / sizes["gpu_records"]
    return {"gpu": torch.cuda.get_device_name(0), "batch": batch, "new_tokens_per_s": rates["graphs"],
            "eager_new_tokens_per_s": rates["eager"], "example_scan_s": round(example["wall_s"], 1),
            "example_command": "dataset-audit " + " ".join(example_args[:1] + ["examples/chat_mix.jsonl"] +
                                                            example_args[4:]),
            "records": sizes["gpu_records"], "records_s": round(big["wall_s"], 1),
            "projected_100k_s": round(per_record * 100_000, 0),
            "note": "fresh processes with an empty cache (the converted model shared); the 100,000-record figure is "
                    "the 10,000-record run's seconds per record times 100,000 (start-up counted once per 10,000)"}
