"""`--shard i/n`: split one scan over n independent runs (a SLURM array, a CI matrix) without Ray.

Records are assigned by their position in the input (all files in order, counting quarantined
records, before any model work): shard i of n takes positions i, i+n, i+2n, ... So every record
lands in exactly one shard, shards are balanced, and each keeps its records' source, line and
index: `dataset-audit merge` puts the shards back into the order of one full scan.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import shard_numbers


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        return cls(*shard_numbers(text))

    def takes(self, position: int) -> bool:
        """Whether the record at this 0-based input position belongs to this shard."""
        return position % self.count == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"
