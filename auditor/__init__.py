"""dataset-audit: find fine-tuning samples that teach a model a trait, with persona vectors.

`auditor.scan(inputs, **settings)` scans data from Python and returns a pyarrow Table of scores
(see `auditor.api.scan_table`); the heavy modules load on first use, so `import auditor` stays fast.
"""

from .version import __version__

__all__ = ["__version__", "scan"]


def scan(inputs, **settings):
    """Scan `inputs` and return a pyarrow Table of scores: see `auditor.api.scan_table`."""
    from .api import scan_table

    return scan_table(inputs, **settings)
