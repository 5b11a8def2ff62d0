"""Where dataset-audit keeps converted models and cached base answers."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


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


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file so that a reader never sees it half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class KeyedStore:
    """An append-only JSONL file of {"key": ..., "value": ...}: survives a kill (a cut last line is ignored).

    With no path, it only keeps values in memory (processes that must not share a cache file).
    """

    def __init__(self, path: Path | None):
        self.path = path
        self.values: dict[str, object] = {}
        if path is not None and path.is_file():
            with open(path, encoding="utf-8") as fh:
                for line in fh:
                    try:
                        row = json.loads(line)
                        self.values[row["key"]] = row["value"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        continue  # a line cut short by a kill: that value is computed again

    def get(self, key: str):
        return self.values.get(key)

    def add(self, items: list[tuple[str, object]]) -> None:
        if self.path is None:
            self.values.update(items)
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            for key, value in items:
                self.values[key] = value
                fh.write(json.dumps({"key": key, "value": value}) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
