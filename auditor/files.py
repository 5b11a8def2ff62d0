"""Writing files so that a reader never sees one half-written, and hashing them."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from .errors import AuditError

# OS errors that only writing raises (a full disk or quota, a file too big, a read-only file system)
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS})


def write_error(path: Path, exc: OSError) -> AuditError:
    """An OS error while writing `path`, as the one-line error the CLI shows (exit 2)."""
    return AuditError(f"cannot write {path}: {exc.strerror or exc}")


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Any OS error inside becomes an AuditError naming `path`: wrap the file-system calls that write it."""
    try:
        yield
    except OSError as exc:
        raise write_error(path, exc) from exc


@contextmanager
def atomic_output(path: Path, like: Path | None = None) -> Iterator[IO[bytes]]:
    """A binary file that appears at `path` only once fully written (nothing is left behind on an error).
    `like`: a file whose permission bits it takes (the file it replaces). An OS error while creating,
    writing or moving it is an AuditError naming `path`."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with writing(path):
            path.parent.mkdir(parents=True, exist_ok=True)
            fh = open(tmp, "wb")
        with fh:
            try:
                yield fh
            except OSError as exc:  # the caller's other OS errors (e.g. reading an input) pass as they are
                if exc.errno in WRITE_ERRNOS:
                    raise write_error(path, exc) from exc
                raise
            with writing(path):
                fh.flush()
        with writing(path):
            if like is not None:
                shutil.copymode(like, tmp)
            os.replace(tmp, path)
    finally:
        with suppress(OSError):  # (a folder we cannot write to holds no temporary file)
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_output(path) as fh:
        fh.write(data)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, value: object) -> None:
    """`value` as indented JSON (non-ASCII kept as is), written atomically."""
    atomic_write_text(path, json.dumps(value, indent=2, ensure_ascii=False) + "\n")


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
