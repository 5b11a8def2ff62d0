"""`--shard i/n`: split one scan over n independent runs (a SLURM array, a CI matrix) without Ray.

Records are assigned by their position in the input (all files in order, counting quarantined
records, before any model work): shard i of n takes positions i, i+n, i+2n, ... So every record
lands in exactly one shard, shards are balanced, and each keeps its records' source, line and
index: `dataset-audit merge` puts the shards back into the order of one full scan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import AuditError

_SHARD = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SHARD.fullmatch(text)
        if not match:
            raise AuditError(f"--shard {text}: expected I/N, e.g. 0/4 (the first of 4 shards)")
        index, count = int(match[1]), int(match[2])
        if count < 1 or index >= count:
            raise AuditError(f"--shard {text}: I must be 0 to N-1 and N at least 1 (e.g. 0/{max(count, 2)})")
        return cls(index, count)

    def takes(self, position: int) -> bool:
        """Whether the record at this 0-based input position belongs to this shard."""
        return position % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
