"""Section `scan`: a generate-mode scan's model work against the reference loop."""

from __future__ import annotations

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
