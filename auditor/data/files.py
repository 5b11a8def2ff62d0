"""Reading data files: JSONL (optionally gzipped), JSON arrays, Parquet, CSV, folders of them and saved
Hugging Face datasets, local or in object storage (listed through pyarrow.fs), row by row, with the line of
every record; nothing is dropped."""

from __future__ import annotations

import gzip
import io
import json
import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.fs as pafs

from ..errors import AuditError
from .formats import FORMATS_IN_WORDS, has_a_format, to_messages
from .hub import HubDataset, is_hub_id
from .records import BadRecord, Quarantined, Record

logger = logging.getLogger(__name__)
DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".csv")


@contextmanager
def open_binary(path: Path, stream: BinaryIO | None = None) -> Iterator[BinaryIO | io.BufferedIOBase]:
    """The file's bytes (gunzipped for .gz): from `stream` when given (left open), else from `path`."""
    if stream is None:
        with gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb") as fh:
            yield fh
    else:
        yield gzip.GzipFile(fileobj=stream, mode="rb") if path.suffix == ".gz" else stream


def parse_line(raw: bytes, number: int) -> tuple[object, str]:
    """One JSONL line as (object or BadRecord, text)."""
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte-order mark
        raw = raw[3:]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return BadRecord(f"not valid UTF-8 (byte {exc.start})"), raw.decode("utf-8", "replace")
    try:
        return json.loads(text), text
    except json.JSONDecodeError as exc:
        return BadRecord(f"invalid JSON: {exc.msg} at column {exc.colno}"), text
    except RecursionError:
        return BadRecord("invalid JSON: nested too deeply"), text


SNIFF_BYTES = 8192  # how much of a text file is looked at to tell it from a binary one
_TEXT_CONTROLS = b"\t\n\r\f\b\x1b"


def looks_binary(head: bytes) -> bool:
    """Whether a file's first bytes are binary rather than text: more than a tenth of them control bytes or
    bytes that are not UTF-8 (a stray bad byte in a text file is that record's quarantine reason instead)."""
    if not head:
        return False
    text = head.decode("utf-8", "replace")
    if len(head) == SNIFF_BYTES:  # a character cut at the end of the sniffed bytes is no sign of binary
        text = text.rstrip("\ufffd")
    odd = sum(ch == "\ufffd" or (ord(ch) < 32 and ch.encode() not in _TEXT_CONTROLS) for ch in text)
    return odd > len(text) / 10


def _jsonl_rows(path: Path, stream: BinaryIO | None = None) -> Iterator[tuple[int, object, str]]:
    """(line number, parsed object or BadRecord, raw text) for each non-blank line; a binary file is one
    BadRecord."""
    number = 0
    try:
        with open_binary(path, stream) as fh:
            if looks_binary(fh.peek(SNIFF_BYTES)[:SNIFF_BYTES] if hasattr(fh, "peek") else b""):
                yield 1, BadRecord("not a text data file (binary content in its first bytes)"), ""
                return
            for number, raw in enumerate(fh, start=1):
                if raw.strip():
                    yield number, *parse_line(raw, number)
    except (OSError, EOFError) as exc:  # e.g. a truncated gzip: what was read is kept
        yield number + 1, BadRecord(f"file unreadable from here on ({exc})"), ""


def _json_array_rows(path: Path, stream: BinaryIO | None = None) -> Iterator[tuple[int, object, str]]:
    try:
        with open_binary(path, stream) as fh:
            text = fh.read().decode("utf-8-sig")
        items = json.loads(text)
    except UnicodeDecodeError as exc:
        raise AuditError(f"{path}: not valid UTF-8 (byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise AuditError(f"{path}:{exc.lineno}: invalid JSON ({exc.msg})") from exc
    except RecursionError as exc:
        raise AuditError(f"{path}: invalid JSON (nested too deeply)") from exc
    if not isinstance(items, list):
        raise AuditError(f"{path}: expected a JSON array of records (or use .jsonl)")
    decoder, pos, line, counted = json.JSONDecoder(), text.index("[") + 1, 1, 0
    for item in items:  # each element's line, for quarantine entries
        while text[pos] in " \t\r\n,":
            pos += 1
        line += text.count("\n", counted, pos)
        counted = pos
        pos = decoder.raw_decode(text, pos)[1]
        yield line, item, json.dumps(item, ensure_ascii=False)


def _table_rows(table, first_line: int) -> Iterator[tuple[int, object, str]]:
    for offset, row in enumerate(table.to_pylist()):
        yield first_line + offset, row, json.dumps(row, ensure_ascii=False, default=str)


def _parquet_rows(path: Path, stream: BinaryIO | None = None) -> Iterator[tuple[int, object, str]]:
    import pyarrow.parquet as pq

    line = 1
    for batch in pq.ParquetFile(path if stream is None else stream).iter_batches(batch_size=4096):
        yield from _table_rows(batch, line)
        line += batch.num_rows


def _csv_rows(path: Path, stream: BinaryIO | None = None) -> Iterator[tuple[int, object, str]]:
    import pyarrow.csv as pcsv

    options = pcsv.ConvertOptions(strings_can_be_null=False)
    reader = pcsv.open_csv(path if stream is None else stream, convert_options=options)
    line = 2  # line 1 is the header
    for batch in reader:
        rows = batch.to_pylist()
        for row in rows:  # CSV cells holding JSON (e.g. a messages column) are decoded
            for key in ("messages", "conversations"):
                if isinstance(row.get(key), str):
                    try:
                        row[key] = json.loads(row[key])
                    except json.JSONDecodeError:
                        pass
        yield from ((line + i, row, json.dumps(row, ensure_ascii=False, default=str)) for i, row in enumerate(rows))
        line += len(rows)


def _hf_dataset_rows(path: Path) -> Iterator[tuple[int, object, str]]:
    from datasets import load_from_disk

    dataset = load_from_disk(str(path))
    if hasattr(dataset, "keys"):  # a DatasetDict: read its train split, else its first
        dataset = dataset["train"] if "train" in dataset else dataset[next(iter(dataset.keys()))]
    for start in range(0, len(dataset), 4096):
        yield from _table_rows(dataset.data.slice(start, 4096), start + 1)


HF_DATASET_FILES = ("dataset_info.json", "state.json", "dataset_dict.json")  # one of them marks a saved HF dataset


def is_uri(path: str | Path) -> bool:
    """Whether an input names object storage (s3://bucket/key, gs://, ...) rather than a local path."""
    return "://" in str(path)


def filesystem(item: str | Path) -> tuple[pafs.FileSystem, str]:
    """The pyarrow filesystem an input lives on, and its path there: a URI's (FileSystem.from_uri), else the
    local one (with the path made absolute)."""
    if not is_uri(item):
        return pafs.LocalFileSystem(), os.path.abspath(item)
    scheme = str(item).split("://", 1)[0]
    if scheme == "s3" and not hasattr(pafs, "S3FileSystem"):
        raise AuditError(f"{item}: this pyarrow was built without S3 support; install the pyarrow wheel from PyPI")
    try:
        return pafs.FileSystem.from_uri(str(item))
    except (OSError, ValueError, NotImplementedError, pa.ArrowException) as exc:
        raise AuditError(f"{item}: cannot open its filesystem ({exc})") from None


def _is_hf_dataset(fs: pafs.FileSystem, path: str) -> bool:
    return any(info.type == pafs.FileType.File
               for info in fs.get_file_info([f"{path.rstrip('/')}/{name}" for name in HF_DATASET_FILES]))


def expand_inputs(paths: Sequence[str | Path]) -> list[Path | str | HubDataset]:
    """Files, saved HF dataset folders and HF dataset ids (hf://...) to read, through pyarrow.fs: local paths (as
    Paths) and object-storage URIs (as URIs); a plain folder is searched for data files, in sorted order, keeping
    those that hold records (holds_records)."""
    found: list[Path | str | HubDataset] = []
    for raw in paths:
        if is_hub_id(raw):
            found.append(HubDataset.parse(str(raw)))
            continue
        fs, root = filesystem(raw)
        shown = str(raw) if is_uri(raw) else Path(raw)
        try:
            info = fs.get_file_info(root)
            if info.type == pafs.FileType.NotFound:
                raise AuditError(f"{shown}: no such file or directory")
            if info.type == pafs.FileType.File or _is_hf_dataset(fs, root):
                found.append(shown)
                continue
            inside = [f.path for f in fs.get_file_info(pafs.FileSelector(root, recursive=True))
                      if f.type == pafs.FileType.File and f.path.endswith(DATA_SUFFIXES)]
        except OSError as exc:
            raise AuditError(f"{shown}: cannot list it ({exc})") from None
        if not inside:
            raise AuditError(f"{shown}: no data files found (looked for {', '.join(DATA_SUFFIXES)})")
        if is_uri(raw):
            scheme = str(raw).split("://", 1)[0]
            found.extend(f"{scheme}://{p}" for p in sorted(inside))
        else:
            local = sorted(Path(raw) / Path(p).relative_to(root) for p in inside)
            found.extend(file for file in local if holds_records(file))
    return found


def read_input(item: Path | str | HubDataset) -> Iterator[Record | Quarantined]:
    """Every row of one listed input (see expand_inputs): a local file or HF dataset folder, a HF dataset id, or a
    URI's file opened through its pyarrow filesystem."""
    if isinstance(item, HubDataset):
        yield from read_records(item)
        return
    if not is_uri(item):
        yield from read_records(Path(item))
        return
    fs, path = filesystem(item)
    if _is_hf_dataset(fs, path):
        raise AuditError(f"{item}: saved HF dataset folders are read from local disk only")
    with fs.open_input_file(path) as fh:
        yield from read_records(Path(path), io.BufferedReader(fh), source=str(item))


def _columns(path: Path) -> list[str] | None:
    """The columns of a CSV or Parquet file (None for other files)."""
    name = path.name.lower()
    if name.endswith(".csv"):
        import pyarrow.csv as pcsv

        with pcsv.open_csv(path) as reader:
            return reader.schema.names
    if name.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_schema(path).names
    return None


def holds_records(path: Path) -> bool:
    """Whether a file found in a folder is data to read: a table (CSV, Parquet) whose columns fit no record
    format (e.g. a labels file beside the data) is not, and a note on stderr says it is skipped."""
    try:
        columns = _columns(path)
    except (OSError, ValueError) as exc:  # unreadable: read it, so that its records say why
        logger.debug("%s: %s", path, exc)
        return True
    if columns is None or has_a_format(columns):
        return True
    shown = ", ".join(columns[:6]) + (", ..." if len(columns) > 6 else "")
    logger.info("skipped %s: its columns (%s) fit no record format (%s)", path, shown, FORMATS_IN_WORDS)
    return False


def _rows(path: Path, stream: BinaryIO | None) -> Iterator[tuple[int, object, str]]:
    name = path.name.lower()
    if stream is None and path.is_dir() and _is_hf_dataset(pafs.LocalFileSystem(), os.path.abspath(path)):
        return _hf_dataset_rows(path)
    if name.endswith((".jsonl", ".jsonl.gz")):
        return _jsonl_rows(path, stream)
    if name.endswith((".json", ".json.gz")):
        return _json_array_rows(path, stream)
    if name.endswith(".parquet"):
        return _parquet_rows(path, stream)
    if name.endswith(".csv"):
        return _csv_rows(path, stream)
    raise AuditError(f"{path}: unsupported file type (use {', '.join(DATA_SUFFIXES)} or a saved HF dataset folder)")


def read_records(path: Path | str | HubDataset, stream: BinaryIO | None = None, source: str | None = None
                 ) -> Iterator[Record | Quarantined]:
    """Every row of one input, as a Record or a Quarantined entry; nothing is dropped.

    `stream`: the file already open (a seekable binary file, e.g. from object storage), else `path`
    is opened. `source`: how records name their file [default: str(path)].
    """
    index, source = 0, source or str(path)
    rows = path.rows() if isinstance(path, HubDataset) else _rows(Path(path), stream)
    for line, obj, raw in rows:
        try:
            if isinstance(obj, BadRecord):
                raise obj
            messages, rejected = to_messages(obj)
            yield Record(source=source, line=line, index=index, messages=messages, raw=raw, rejected=rejected)
        except BadRecord as exc:
            yield Quarantined(source=source, line=line, index=index, reason=str(exc), raw=raw)
        index += 1
