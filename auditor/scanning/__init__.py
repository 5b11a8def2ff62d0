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
    from ..evaluation.card import verdicts

    if config.engine == "ray":
        from .engines.ray import scan_on_ray

        result = scan_on_ray(config, show_progress)
    else:
        from .engines.local import scan_local

        result = scan_local(config, show_progress, projector)
    result.verdicts = verdicts({v.trait: v.source for v in result.vectors}, card_mode(config))
    return result


def card_mode(config: ScanConfig) -> str:
    """The detection card's mode for these settings: `none` (cheap mode), else `generate`."""
    return "none" if config.base_responses == NO_BASE else "generate"
