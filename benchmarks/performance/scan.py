"""Section `scan`: a generate-mode scan's model work against the reference loop."""

from __future__ import annotations

import statistics

import numpy as np
import torch

from .common import EXAMPLE, log, timed
from .generation import reference_generate
from .scoring import reference_means


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


def ours_scan(lm, sizes: dict, runs: int = 1):
    """Our generate-mode scan's model work (no disk cache) on the example's first records: seconds (the median of
    `runs`), answers, dP."""
    from auditor.config import ScanConfig
    from auditor.scanning.engines.local import read_inputs
    from auditor.scanning.projection import ModelProjector

    config = ScanConfig(inputs=[str(EXAMPLE)], limit=sizes["scan_records"])
    _, records, _ = read_inputs(config.inputs, config.limit)
    loaded = ModelProjector.with_model(lm)(config, False)
    ours = ModelProjector(lm, loaded.vectors, config, cached=False)
    units = ours.units(records, np.zeros(len(records), dtype=bool))
    timings = [timed(ours.measure, units, False) for _ in range(runs)]
    seconds, measured = statistics.median(t for t, _ in timings), timings[0][1]
    answers = ours.answers_by_prompt(records)  # the same answers again, from no cache: for the comparison only
    return config, loaded.vectors, units, seconds, [answers[u.prompt_key] for u in units], measured.sample - measured.base


def int8_copy(lm):
    """The model with every Linear layer dynamically quantised to int8 (torch.ao's CPU recipe, deprecated there but
    present in the tested torch): measured here as a candidate, not offered by --dtype."""
    import copy
    import warnings
    from dataclasses import replace

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torch.ao.quantization.quantize_dynamic(copy.deepcopy(lm.model), {torch.nn.Linear}, dtype=torch.qint8)
    return replace(lm, model=model)


def against(answers, dp, other: tuple, ref_seconds: float) -> dict:
    """A variant's scan (seconds, answers, dP) against float32's: speed against the reference loop, agreement."""
    other_seconds, other_answers, other_dp = other
    return {"ours_s": round(other_seconds, 1), "speedup": round(ref_seconds / other_seconds, 2),
            "same_answers_as_float32": round(float(np.mean([a == b for a, b in zip(answers, other_answers)])), 3),
            "dp_pearson_r_vs_float32": round(float(np.corrcoef(dp.ravel(), other_dp.ravel())[0, 1]), 4)}


def bench_scan(lm, sizes: dict) -> dict:
    """The model work of a generate-mode scan of the example's first records, ours in float32 and in bfloat16 against
    the reference loop (float32), side by side in one run; answers and dP compared."""
    from auditor.model.generation import GenerationSettings
    from auditor.model.loading import load_model
    from auditor.model.precision import cpu_has_native_bf16

    config, vectors, units, seconds, answers, dp = ours_scan(lm, sizes, sizes["scan_runs"])
    log(f"scan: {len(units)} example records, generate mode, max_new_tokens {config.max_new_tokens}: "
        f"ours {seconds:.1f} s (float32, median of {sizes['scan_runs']})")
    bf16 = load_model("default", str(lm.device), "bfloat16")
    _, _, _, *bf16_run = ours_scan(bf16, sizes)
    del bf16
    log(f"  ours {bf16_run[0]:.1f} s (bfloat16)")
    int8_run = None
    if lm.device.type == "cpu":
        _, _, _, *int8_run = ours_scan(int8_copy(lm), sizes)
        log(f"  ours {int8_run[0]:.1f} s (int8 dynamic quantisation)")
    log("  reference loop ...")
    ref_seconds, (ref_answers, ref_dp) = timed(reference_scan, lm, units, vectors,
                                               GenerationSettings(max_new_tokens=config.max_new_tokens))
    same = np.array([a == b for a, b in zip(answers, ref_answers)])
    diff = float(np.abs(dp[same] - ref_dp[same]).max()) if same.any() else None
    log(f"  reference {ref_seconds:.1f} s: {ref_seconds / seconds:.1f}x float32; same answers {same.mean():.0%}, "
        f"max |dP diff| {diff}")
    return {"records": len(units), "max_new_tokens": config.max_new_tokens, "ours_s": round(seconds, 1),
            "reference_s": round(ref_seconds, 1), "speedup": round(ref_seconds / seconds, 2),
            "same_answers": round(float(same.mean()), 3), "max_abs_dp_diff_where_same": diff,
            "bf16": {**against(answers, dp, bf16_run, ref_seconds), "native_bf16_cpu": cpu_has_native_bf16()},
            **({"int8": against(answers, dp, int8_run, ref_seconds)} if int8_run else {}),
            "runs": sizes["scan_runs"],
            "note": "ours: ModelProjector.measure (decoder batches, states read off decoding, samples on the prompt "
                    "cache), no disk cache, float32 the median of `runs` runs (a short job: one run varies by a "
                    "fifth on this machine), bfloat16 and int8 one each; reference (one run of minutes): generate "
                    "per record, then a full forward with output_hidden_states for the sample and for the base "
                    "answer, in float32; bf16: ours with the model loaded in bfloat16 (the accuracy cost: "
                    "benchmarks/results/precision.json); int8: ours with every Linear layer of the float32 model "
                    "dynamically quantised to int8 (torch.ao)"}
