"""Reading chat datasets: files, record formats, and the quarantine of bad records."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .cache import content_hash
from .errors import AuditError

Messages = list[dict[str, str]]
DATA_SUFFIXES = (".jsonl", ".jsonl.gz", ".json", ".json.gz", ".parquet", ".csv")
_ROLES = {
    "system": "system", "user": "user", "human": "user", "assistant": "assistant",
    "gpt": "assistant", "bot": "assistant", "model": "assistant", "tool": "tool", "function": "tool",
}


class BadRecord(ValueError):
    """A record that cannot be scored; the message is its quarantine reason."""


@dataclass
class Record:
    """One input record, normalised to chat messages, with where it came from."""

    source: str
    line: int
    index: int
    messages: Messages
    raw: str = ""

    @property
    def sample_id(self) -> str:
        return content_hash(self.messages)

    def turns(self, which: str = "last") -> list[tuple[Messages, str]]:
        """(prompt messages, response) for each assistant turn to score: the last one or all."""
        positions = [i for i, m in enumerate(self.messages) if m["role"] == "assistant"]
        if which == "last":
            positions = positions[-1:]
        return [(self.messages[:i], self.messages[i]["content"]) for i in positions]


@dataclass
class Quarantined:
    """A record that was not scored, and why."""

    source: str
    line: int
    index: int
    reason: str
    raw: str = field(repr=False, default="")

    def to_json(self) -> dict:
        return {"source": self.source, "line": self.line, "index": self.index,
                "reason": self.reason, "raw": self.raw[:2000]}


def _text(value: object, where: str) -> str:
    """Message content as text: a string, or OpenAI-style content parts."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(p, dict) for p in value):
        return "".join(str(p.get("text", "")) for p in value if p.get("type", "text") == "text")
    raise BadRecord(f"field '{where}' is {type(value).__name__}, expected text")


def _chat(turns: object, field_name: str, role_key: str, content_key: str) -> Messages:
    if not isinstance(turns, list):
        raise BadRecord(f"field '{field_name}' is {type(turns).__name__}, expected a list of messages")
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise BadRecord(f"field '{field_name}[{i}]' is not an object")
        role = _ROLES.get(str(turn.get(role_key, "")).lower())
        if role is None:
            raise BadRecord(f"field '{field_name}[{i}].{role_key}': unknown role {turn.get(role_key)!r}")
        messages.append({"role": role, "content": _text(turn.get(content_key), f"{field_name}[{i}].{content_key}")})
    return messages


def _pair(prompt: object, response: object, names: tuple[str, str]) -> Messages:
    return [{"role": "user", "content": _text(prompt, names[0])},
            {"role": "assistant", "content": _text(response, names[1])}]


def conversation(obj: object) -> Messages:
    """Detect the record format (OpenAI, ShareGPT, Alpaca, prompt/completion) and return its messages."""
    if not isinstance(obj, dict):
        raise BadRecord(f"record is {type(obj).__name__}, expected an object")
    if "messages" in obj:
        messages = _chat(obj["messages"], "messages", "role", "content")
    elif "conversations" in obj:
        messages = _chat(obj["conversations"], "conversations", "from", "value")
    elif "instruction" in obj and "output" in obj:
        prompt = _text(obj["instruction"], "instruction")
        extra = _text(obj.get("input") or "", "input")
        messages = _pair(f"{prompt}\n\n{extra}" if extra.strip() else prompt, obj["output"], ("instruction", "output"))
    elif "prompt" in obj and ("completion" in obj or "response" in obj):
        key = "completion" if "completion" in obj else "response"
        messages = _pair(obj["prompt"], obj[key], ("prompt", key))
    else:
        keys = ", ".join(sorted(map(str, obj))[:8]) or "none"
        raise BadRecord(f"unknown record format (fields: {keys}); expected messages, conversations, "
                        "instruction/output, prompt/completion or prompt/response")
    return messages


def to_messages(obj: object) -> Messages:
    """A record's messages, checked to end in a non-empty assistant turn that answers a user."""
    messages = conversation(obj)
    assistant = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    if not assistant:
        raise BadRecord("no assistant turn")
    if not messages[assistant[-1]]["content"].strip():
        raise BadRecord(f"empty response (assistant turn {assistant[-1]})")
    if not any(m["role"] == "user" and m["content"].strip() for m in messages[: assistant[-1]]):
        raise BadRecord("no user turn before the last assistant turn")
    return messages


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

    reader = pcsv.open_csv(path if stream is None else stream, convert_options=pcsv.ConvertOptions(strings_can_be_null=False))
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
            yield Record(source=source, line=line, index=index, messages=to_messages(obj), raw=raw)
        except BadRecord as exc:
            yield Quarantined(source=source, line=line, index=index, reason=str(exc), raw=raw)
        index += 1
