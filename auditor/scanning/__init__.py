"""The scan: records -> base answers -> activations -> projection differences -> a ScanResult.

`scan(config)` checks the settings and runs the engine `config.engine` names: `local` (this process,
auditor.scanning.local) or `ray` (a Ray Data pipeline, auditor.scanning.ray_engine). The engines load lazily,
so the scan folder's readers (folder, result) stay free of torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..config import NO_BASE, ScanConfig
from ..errors import AuditError
from .shard import Shard

if TYPE_CHECKING:
    from .local import ProjectorFactory
    from .result import ScanResult


def check_scan_settings(config: ScanConfig) -> None:
    """Settings that cannot work together, as one usage error each (before any reading or model work)."""
    if config.shard:
        Shard.parse(config.shard)
    if config.generator == "vllm" and not config.generates:
        raise AuditError("--generator vllm writes base answers: use it with --base-responses generate")
    if config.engine == "ray":
        if config.shard:
            raise AuditError("--shard splits a local scan; --engine ray spreads the whole scan over the cluster")
        if config.baseline:
            raise AuditError("--baseline works with the local engine only (drop --engine ray)")


def scan(config: ScanConfig, show_progress: bool = False, projector: ProjectorFactory | None = None) -> ScanResult:
    """Score every record of `config.inputs`; quarantine what cannot be scored.

    With `config.baseline`, records already in that scores.parquet copy their scores from it, uncomputed.
    `projector(config, show)` gives the model side (tests hand in one that plants scores); the local
    engine only.
    """
    from .card import predictions, vector_sha256, verdicts

    check_scan_settings(config)
    if config.engine == "ray":
        from .ray_engine import scan_on_ray

        result = scan_on_ray(config, show_progress)
    else:
        from .local import scan_local

        result = scan_local(config, show_progress, projector)
    shas, mode = {v.trait: vector_sha256(v.source) for v in result.vectors}, card_mode(config.base_responses)
    result.verdicts = verdicts(shas, mode)
    result.predictions = predictions(shas, mode, {t.trait: t.summary()["mean_dp"] for t in result.traits})
    return result


def card_mode(base_responses: str) -> str:
    """The card's mode for a scan's --base-responses: `none` (cheap mode), else `generate`."""
    return "none" if base_responses == NO_BASE else "generate"
