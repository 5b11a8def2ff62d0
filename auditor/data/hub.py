"""Hugging Face dataset ids as input: `hf://ORG/NAME[@REVISION][:SPLIT]`, read through `datasets`, streamed.

Without a network (HF_HUB_OFFLINE=1 or HF_DATASETS_OFFLINE=1, or no Hub in reach) `datasets` reads the version
in its local cache (HF_DATASETS_CACHE) that an earlier `load_dataset` left there. Rows stream one at a time, so a
large set is never held in memory; a record's line is its row number in the split (1-based).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

from ..errors import AuditError

PREFIX = "hf://"
_ID = re.compile(r"hf://(?P<name>[\w.-]+(?:/[\w.-]+)?)(?:@(?P<revision>[^:@]+))?(?::(?P<split>[\w.-]+))?")


def is_hub_id(text: object) -> bool:
    return isinstance(text, str) and text.startswith(PREFIX)


@dataclass(frozen=True)
class HubDataset:
    """One split of a Hugging Face dataset (the `train` split, else the first, when none is named)."""

    name: str
    revision: str | None = None
    split: str | None = None

    @classmethod
    def parse(cls, text: str) -> HubDataset:
        match = _ID.fullmatch(text)
        if not match:
            raise AuditError(f"{text}: expected a Hugging Face dataset id hf://ORG/NAME[@REVISION][:SPLIT]")
        return cls(match["name"], match["revision"], match["split"])

    def __str__(self) -> str:
        return PREFIX + self.name + (f"@{self.revision}" if self.revision else "") + (
            f":{self.split}" if self.split else "")

    @cached_property
    def _builder(self):
        import datasets

        try:
            return datasets.load_dataset_builder(self.name, revision=self.revision)
        except Exception as exc:  # datasets raises many kinds (ConnectionError, DatasetNotFoundError, ValueError, ...)
            from datasets import config

            raise AuditError(f"{self}: not in the local Hugging Face cache ({config.HF_DATASETS_CACHE}) and not "
                             f"loadable from the Hub ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None

    def _split(self) -> str:
        splits = list((self._builder.info.splits or {}).keys())
        if self.split:
            if splits and self.split not in splits:
                raise AuditError(f"{self}: no split {self.split!r} (splits: {', '.join(splits)})")
            return self.split
        return "train" if "train" in splits or not splits else splits[0]

    def rows(self) -> Iterator[tuple[int, object, str]]:
        """(row number, row, row as JSON) for each row of the split, streamed."""
        stream = self._builder.as_streaming_dataset(split=self._split())
        for number, row in enumerate(stream, start=1):
            yield number, row, json.dumps(row, ensure_ascii=False, default=str)

    def identity(self) -> dict:
        """What manifest.json records: the id, the revision read (the Hub commit of a cached Hub dataset), the
        split, and a fingerprint of the dataset's info (its files' checksums, split sizes)."""
        from ..cache import content_hash

        builder = self._builder
        info = builder.info
        return {"id": self.name, "revision": self.revision or builder.hash, "config": builder.config.name,
                "split": self._split(),
                "fingerprint": content_hash({"hash": builder.hash, "splits": {k: [v.num_examples, v.num_bytes]
                                                                             for k, v in (info.splits or {}).items()},
                                             "checksums": info.download_checksums})}
