"""Reading data files: JSONL (optionally gzipped), JSON arrays, Parquet, CSV, folders of them and saved
Hugging Face datasets, row by row, with the line of every record; nothing is dropped."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from ..errors import AuditError
from .formats import to_messages
from .records import BadRecord, Quarantined, Record

DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".csv")


@contextmanager
def open_binary(path: Path, stream: BinaryIO | None = None) -> Iterator[BinaryIO]:
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


def _jsonl_rows(path: Path, stream: BinaryIO | None = None) -> Iterator[tuple[int, object, str]]:
    """(line number, parsed object or BadRecord, raw text) for each non-blank line."""
    number = 0
    try:
        with open_binary(path, stream) as fh:
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


def _is_hf_dataset(path: Path) -> bool:
    return path.is_dir() and any((path / f).is_file() for f in ("dataset_info.json", "state.json", "dataset_dict.json"))


def expand_inputs(paths: list[str | Path]) -> list[Path]:
    """Files and saved HF dataset folders to read; a plain folder is searched for data files."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise AuditError(f"{path}: no such file or directory")
        if path.is_file() or _is_hf_dataset(path):
            found.append(path)
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.name.endswith(DATA_SUFFIXES))
        if not files:
            raise AuditError(f"{path}: no data files found (looked for {', '.join(DATA_SUFFIXES)})")
        found.extend(files)
    return found


def _rows(path: Path, stream: BinaryIO | None) -> Iterator[tuple[int, object, str]]:
    name = path.name.lower()
    if stream is None and _is_hf_dataset(path):
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


def read_records(path: Path, stream: BinaryIO | None = None, source: str | None = None
                 ) -> Iterator[Record | Quarantined]:
    """Every row of one input, as a Record or a Quarantined entry; nothing is dropped.

    `stream`: the file already open (a seekable binary file, e.g. from object storage), else `path`
    is opened. `source`: how records name their file [default: str(path)].
    """
    index, source = 0, source or str(path)
    for line, obj, raw in _rows(Path(path), stream):
        try:
            if isinstance(obj, BadRecord):
                raise obj
            messages, rejected = to_messages(obj)
            yield Record(source=source, line=line, index=index, messages=messages, raw=raw, rejected=rejected)
        except BadRecord as exc:
            yield Quarantined(source=source, line=line, index=index, reason=str(exc), raw=raw)
        index += 1
