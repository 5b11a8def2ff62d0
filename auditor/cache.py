"""The on-disk cache: where converted models, base answers, projections and judgements are kept, and the
one loop that computes only what is not cached yet."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from .files import writing

Batches = Iterator[tuple[list[int], list]]  # (indices done, their values), as each batch finishes


def cache_dir() -> Path:
    """The cache root: `$DATASET_AUDIT_CACHE`, else `$XDG_CACHE_HOME/dataset-audit`, else `~/.cache/dataset-audit`."""
    env = os.environ.get("DATASET_AUDIT_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "dataset-audit"


def content_hash(obj: object, length: int = 16) -> str:
    """A stable hex digest of a JSON-serialisable object."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:length]


class KeyedStore:
    """An append-only JSONL file of {"key": ..., "value": ...}: survives a kill (a cut last line is ignored).

    With no path, it only keeps values in memory (processes that must not share a cache file).
    """

    def __init__(self, path: Path | None):
        self.path = path
        self.values: dict[str, object] = {}
        self.cut = False  # the file ends in a line cut short: the next row starts on a line of its own
        if path is not None and path.is_file():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    self.cut = not line.endswith("\n")
                    try:
                        row = json.loads(line)
                        self.values[row["key"]] = row["value"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # a line cut short by a kill: that value is computed again

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def get(self, key: str):
        return self.values.get(key)

    def add(self, items: list[tuple[str, object]]) -> None:
        if self.path is None:
            self.values.update(items)
            return
        with writing(self.path):  # a full disk is an error naming the file; what was added before stays
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as fh:
                start = "\n" if self.cut else ""
                self.cut = True  # until the rows are written in full
                fh.write(start + "".join(json.dumps({"key": k, "value": v}) + "\n" for k, v in items))
                fh.flush()
                os.fsync(fh.fileno())
                self.cut = False
        self.values.update(items)


def cached_compute(keys: Sequence[str], store: KeyedStore, compute: Callable[[list[int]], Batches],
                   on_done: Callable[[int], None] | None = None) -> list:
    """The value for each key: from `store` where it is there, else computed once per distinct key.

    `compute(indices)` gets the positions still to do (the first of each repeated key) and yields
    (indices, values) batch by batch; each batch is stored as it comes, so an interrupted run resumes
    where it stopped. `on_done(n)` counts positions finished (cached ones at once).
    """
    first: dict[str, int] = {}
    for i, key in enumerate(keys):
        if key not in store:
            first.setdefault(key, i)
    todo = list(first.values())
    if on_done and len(keys) > len(todo):
        on_done(len(keys) - len(todo))
    for done, values in compute(todo):
        store.add([(keys[i], value) for i, value in zip(done, values, strict=True)])
        if on_done:
            on_done(len(done))
    return [store.get(key) for key in keys]
