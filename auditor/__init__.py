"""dataset-audit: find fine-tuning samples that teach a model a trait, with persona vectors.

`auditor.scan(inputs, config, **overrides)` scans data from Python and returns a ScanResult (see
`auditor.api.scan`). `ScanConfig`, `ScanResult` and `AuditError` are here too; they load on first use, so
`import auditor` stays fast and free of torch and pyarrow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import AuditError
from .version import __version__

if TYPE_CHECKING:
    from .api import scan
    from .config import ScanConfig
    from .outputs.scan_result import ScanResult

__all__ = ["AuditError", "ScanConfig", "ScanResult", "__version__", "scan"]
_LAZY = {"scan": "api", "ScanConfig": "config", "ScanResult": "outputs.scan_result"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'auditor' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
