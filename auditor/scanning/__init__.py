"""The scan: records -> base answers -> activations -> projection differences -> a ScanResult.

`scan(config)` checks the settings and runs the engine `config.engine` names: `local` (this process,
auditor.scanning.engines.local) or `ray` (a Ray Data pipeline, auditor.scanning.engines.ray). The engines load lazily,
so the scan folder's readers (folder, result) stay free of torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import NO_BASE, ScanConfig

if TYPE_CHECKING:
    from .engines.local import ProjectorFactory
    from .result import ScanResult


def scan(config: ScanConfig, show_progress: bool = False, projector: ProjectorFactory | None = None) -> ScanResult:
    """Score every record of `config.inputs`; quarantine what cannot be scored (`config` checked its own settings).

    With `config.baseline`, records already in that scores.parquet copy their scores from it, uncomputed.
    `projector(config, show)` gives the model side (tests hand in one that plants scores); the local
    engine only.
    """
    from ..evaluation.card import predictions, vector_sha256, verdicts

    if config.engine == "ray":
        from .engines.ray import scan_on_ray

        result = scan_on_ray(config, show_progress)
    else:
        from .engines.local import scan_local

        result = scan_local(config, show_progress, projector)
    shas, mode = {v.trait: vector_sha256(v.source) for v in result.vectors}, card_mode(config.base_responses)
    result.verdicts = verdicts(shas, mode)
    result.predictions = predictions(shas, mode, {t.trait: t.summary()["mean_dp"] for t in result.traits})
    return result


def card_mode(base_responses: str) -> str:
    """The card's mode for a scan's --base-responses: `none` (cheap mode), else `generate`."""
    return "none" if base_responses == NO_BASE else "generate"
