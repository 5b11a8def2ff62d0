"""What a scan produces: `ScanResult`, and the one schema of scores.parquet (its columns, how a table is
made from results and checked when read back), with the summary and manifest of a scan.

Nothing here imports torch: scan folders are read by commands that load no model.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from ..config import DECODING_RULE, ScanConfig
from ..data import Quarantined, Record
from ..data.hub import HubDataset
from ..errors import AuditError
from ..evaluation.card import NOT_EVALUATED
from ..evaluation.prediction import NO_CALIBRATION, Prediction
from ..files import file_sha256
from ..version import __version__
from .groups import group_summary
from .scoring import BELOW, TraitScores, sign

if TYPE_CHECKING:
    from ..vectors.persona import PersonaVector
    from .base_sample import Estimate

# scores.parquet: one row per scored record, these columns, then <trait>_<kind> for each trait and kind.
RECORD_COLUMNS = {
    "index": pa.int64(),  # 0-based record number in its file
    "source": pa.string(),
    "line": pa.int64(),
    "sample_id": pa.string(),  # hash of the record's messages
    "prompt": pa.string(),  # the last user message before the scored answer
    "response": pa.string(),  # the scored (last) assistant answer
    "conversation": pa.string(),  # all messages, JSON
    "truncated": pa.bool_(),
    "tags": pa.list_(pa.string()),
}
TRAIT_COLUMNS = {"dp": pa.float64(), "score": pa.float64(), "flagged": pa.bool_()}
# A scan with preference pairs also has `rejected` (the rejected conversation, JSON; null for plain records) and,
# per trait, these (null for plain records); a pair's <trait>_dp, _score and _flagged are its margin's.
PAIR_COLUMNS = ("dp_chosen", "dp_rejected", "margin")
# With `scan --group-by FIELD`, a `group` column (after RECORD_COLUMNS) holds each record's group (scanning.groups);
# its metadata names the field: {"group_by": FIELD}.
GROUP_COLUMN = "group"
# With `scan --base-sample N`, a `base_estimated` column (after the group column, if any) marks the records whose dP
# is estimated from the sample's base answers rather than measured against their own (scanning.base_sample).
ESTIMATED_COLUMN = "base_estimated"
# A trait flagged below the model's answers (refusal) says so in the metadata of its columns: {"flags": "below"}.
REQUIRED_COLUMNS = ("source", "line", "index", "sample_id", "truncated")  # what every reader relies on


def trait_columns(trait: str) -> dict[str, pa.DataType]:
    return {f"{trait}_{kind}": kind_type for kind, kind_type in TRAIT_COLUMNS.items()}


def trait_sign(schema: pa.Schema, trait: str) -> int:
    """+1 when the trait's concern is a positive dP, -1 when it is a negative one (see scoring.py)."""
    metadata = schema.field(f"{trait}_score").metadata or {}
    return sign(metadata.get(b"flags", b"above").decode())


def table_traits(schema: pa.Schema) -> list[str]:
    """The traits of a scores table: names with all TRAIT_COLUMNS, in column order."""
    names = set(schema.names)
    candidates = [n.removesuffix("_score") for n in schema.names if n.endswith("_score")]
    return [t for t in candidates if set(trait_columns(t)) <= names]


def column(table: pa.Table, name: str) -> np.ndarray:
    """One column as a numpy array. (Through Python values: pyarrow's own conversion imports pandas, a third of a
    second that the model-free commands would spend before doing anything.)"""
    values = table.column(name)
    kind = values.type
    dtype = (float if pa.types.is_floating(kind) else bool if pa.types.is_boolean(kind)
             else np.int64 if pa.types.is_integer(kind) else object)
    items = values.to_pylist()
    return np.array([np.nan if v is None else v for v in items] if dtype is float else items, dtype=dtype)


def row_numbers(rows: np.ndarray) -> pa.Array:
    """Row numbers for `Table.take`."""
    return arrow_array(rows, pa.int64())


def _bits(flags: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(flags, bitorder="little"))


def arrow_array(values: Sequence | np.ndarray, kind: pa.DataType) -> pa.Array:
    """`values` as an Arrow array of `kind` (int64, float64 with NaN as null, bool, string or list of strings; None
    is null), made from buffers: `pa.array` imports pandas to check its input, a third of a second that every scan
    and the model-free commands would spend for it."""
    n = len(values)
    if kind in (pa.int64(), pa.float64()):
        data = np.ascontiguousarray(values, dtype=np.int64 if kind == pa.int64() else np.float64)
        valid = None if kind == pa.int64() or not np.isnan(data).any() else _bits(~np.isnan(data))
        return pa.Array.from_buffers(kind, n, [valid, pa.py_buffer(data)])
    if kind == pa.bool_():
        return pa.Array.from_buffers(kind, n, [None, _bits(np.asarray(values, dtype=bool))])
    valid = np.array([v is not None for v in values], dtype=bool)
    if kind == pa.list_(pa.string()):
        items = arrow_array([item for v in values if v is not None for item in v], pa.string())
        offsets = np.zeros(n + 1, dtype=np.int32)
        np.cumsum([len(v) if v is not None else 0 for v in values], out=offsets[1:])
        return pa.Array.from_buffers(kind, n, [None if valid.all() else _bits(valid), pa.py_buffer(offsets)],
                                     children=[items])
    encoded = [v.encode("utf-8") if v is not None else b"" for v in values]
    ends = np.cumsum([len(e) for e in encoded], dtype=np.int64)
    if n and ends[-1] >= 2**31:  # past 32-bit offsets: pyarrow splits the column into chunks
        return pa.array(values, kind)
    offsets = np.concatenate([[0], ends]).astype(np.int32)
    return pa.Array.from_buffers(kind, n, [None if valid.all() else _bits(valid), pa.py_buffer(offsets),
                                           pa.py_buffer(b"".join(encoded))])


def group_field(schema: pa.Schema) -> str | None:
    """The `--group-by` field of a scores table with a group column, else None."""
    if GROUP_COLUMN not in schema.names:
        return None
    return (schema.field(GROUP_COLUMN).metadata or {}).get(b"group_by", b"").decode() or None


def scores_table(records: list[Record], traits: list[TraitScores], truncated: np.ndarray,
                 tags: list[list[str]], group_by: str | None = None, groups: list[str] | None = None,
                 estimated: np.ndarray | None = None) -> pa.Table:
    """The scores table of scored records, in their order; with `group_by`, their `groups` in a group column; with
    `estimated` (a --base-sample scan), which records' dP is estimated."""
    exchanges = [r.exchange() for r in records]
    values: dict[str, Sequence | np.ndarray] = {
        "index": [r.index for r in records], "source": [r.source for r in records], "line": [r.line for r in records],
        "sample_id": [r.sample_id for r in records], "prompt": [p for p, _ in exchanges],
        "response": [a for _, a in exchanges],
        "conversation": [json.dumps(r.messages, ensure_ascii=False) for r in records],
        "truncated": truncated, "tags": tags,
    }
    fields = [pa.field(name, kind) for name, kind in RECORD_COLUMNS.items()]
    arrays = [arrow_array(values[name], kind) for name, kind in RECORD_COLUMNS.items()]
    with_pairs = any(r.is_pair for r in records)
    if with_pairs:
        fields.append(pa.field("rejected", pa.string()))
        arrays.append(arrow_array([json.dumps(r.rejected, ensure_ascii=False) if r.is_pair else None for r in records],
                                  pa.string()))
    if group_by:
        fields.append(pa.field(GROUP_COLUMN, pa.string(), metadata={"group_by": group_by}))
        arrays.append(arrow_array(groups or [], pa.string()))
    if estimated is not None:
        fields.append(pa.field(ESTIMATED_COLUMN, pa.bool_()))
        arrays.append(arrow_array(estimated, pa.bool_()))
    for t in traits:
        metadata = {"flags": t.flags} if t.flags == BELOW else None
        for (name, kind), data in zip(trait_columns(t.trait).items(), (t.dp, t.score, t.flagged)):
            fields.append(pa.field(name, kind, metadata=metadata))
            arrays.append(arrow_array(data, kind))
        if with_pairs:
            pairs = t.pairs
            assert t.dp_chosen is not None and t.dp_rejected is not None  # set for every trait of a scan with pairs
            for kind, data in zip(PAIR_COLUMNS, (t.dp_chosen, t.dp_rejected, np.where(pairs, t.dp, np.nan))):
                fields.append(pa.field(f"{t.trait}_{kind}", pa.float64(), metadata=metadata))
                arrays.append(arrow_array(data, pa.float64()))  # NaN -> null
    return pa.table(arrays, schema=pa.schema(fields))


def pair_scores(table: pa.Table, trait: str) -> dict[str, np.ndarray]:
    """dp_chosen and dp_rejected of a trait from a scores table (NaN for plain records), if it has pairs."""
    if f"{trait}_dp_rejected" not in table.column_names:
        return {}
    return {f"dp_{side}": column(table, f"{trait}_dp_{side}") for side in ("chosen", "rejected")}


def check_scores(schema: pa.Schema, path: Path, label: str) -> None:
    """An AuditError naming `label` unless the schema has the REQUIRED_COLUMNS and at least one trait, and a group
    column, if any, is text naming its field."""
    missing = [c for c in REQUIRED_COLUMNS if c not in schema.names]
    if missing or not table_traits(schema):
        what = f"no {', '.join(missing)} column" if missing else "no <trait>_dp/_score/_flagged columns"
        raise AuditError(f"{label}: {path} is not a dataset-audit scores.parquet ({what})")
    if GROUP_COLUMN in schema.names and (schema.field(GROUP_COLUMN).type != pa.string() or not group_field(schema)):
        raise AuditError(f"{label}: {path} is not a dataset-audit scores.parquet (its {GROUP_COLUMN} column is not "
                         "text naming its `group_by` field)")


def read_scores(path: Path, label: str) -> pa.Table:
    """A scores.parquet, checked; `label` names it in errors."""
    if not Path(path).is_file():
        raise AuditError(f"{label}: {path} not found")
    try:
        table = pq.ParquetFile(path).read()  # (read_table would import pyarrow.dataset and pandas: slower to start)
    except (pa.ArrowException, OSError) as exc:
        raise AuditError(f"{label}: {path} is not a scores.parquet ({exc})") from None
    check_scores(table.schema, path, label)
    return table


def summarise(scored: int, quarantine_reasons: list[str], truncated: int, reused: int,
              traits: list[TraitScores], verdicts: dict[str, str],
              predictions: dict[str, tuple[Prediction | None, str]], sources: list[str],
              group_by: str | None = None, groups: list[str] | None = None, estimate: Estimate | None = None) -> dict:
    """summary.json: record counts (`flagged`: the samples flagged for any trait), quarantine reasons by kind, each
    trait's dataset-level view with its
    verdict (evaluation/card.py) and what fine-tuning on the set is predicted to do (`prediction`, null with a
    `prediction_note` saying why there is none: evaluation/prediction.py), with a base sample its `base_sample`
    estimate (scanning/base_sample.py), and the scored records by source file
    (`sources`, each record's) and, with `group_by`, by that field (`groups`): see scanning/groups.py."""
    reasons = Counter(reason.split(":")[0].split(" (")[0] for reason in quarantine_reasons)
    by_group = ({"group_by": {"field": group_by, **group_summary(groups, traits)}} if group_by and groups is not None
                else {})
    flagged = np.zeros(scored, dtype=bool)
    for t in traits:
        flagged |= t.flagged
    return {
        "records": {"total": scored + len(quarantine_reasons), "scored": scored,
                    "quarantined": len(quarantine_reasons), "truncated": truncated, "reused": reused,
                    "flagged": int(flagged.sum()), "quarantine_reasons": dict(reasons.most_common())},
        "traits": {t.trait: {**t.summary(), "verdict": verdicts.get(t.trait, NOT_EVALUATED),
                             **_prediction(predictions.get(t.trait, (None, NO_CALIBRATION))),
                             **({"base_sample": estimate.summary(t.trait)} if estimate else {})} for t in traits},
        "sources": group_summary(sources, traits),
        **by_group,
    }


def _prediction(found: tuple[Prediction | None, str]) -> dict:
    prediction, note = found
    return {"prediction": prediction.to_json() if prediction else None, "prediction_note": note}


def input_entry(path: Path | str | HubDataset) -> dict:
    """An input as manifest.json lists it: its path (or hf:// id) and sha256, or a HF dataset's identity."""
    if isinstance(path, HubDataset):
        return {"path": str(path), "sha256": None, "dataset": path.identity()}
    return {"path": str(path), "sha256": file_sha256(path) if isinstance(path, Path) and path.is_file() else None}


def run_from(folder: Path, cwd: Path | None = None) -> str:
    """The directory a scan ran in (`cwd`, default the current one) as seen from its folder: manifest.json keeps it
    as `run_from`, so its relative input paths resolve wherever the folder is read from (filter)."""
    return os.path.relpath(os.path.abspath(cwd or Path.cwd()), os.path.abspath(folder))


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


@dataclass(kw_only=True)
class ScanResult:
    """Everything a scan found, in input order, and what it ran on."""

    records: list[Record]
    quarantined: list[Quarantined]
    traits: list[TraitScores]
    truncated: np.ndarray
    vectors: list[PersonaVector]
    files: Sequence[Path | str | HubDataset]  # as data.expand_inputs lists them
    model_name: str
    tags: list[list[str]]
    device: str
    dtype: str
    reused: np.ndarray  # records whose scores were copied from --baseline, not computed
    threads: int = 0  # the CPU threads torch used
    verdicts: dict[str, str] = field(default_factory=dict)  # per trait, from the cards
    predictions: dict[str, tuple[Prediction | None, str]] = field(default_factory=dict)  # per trait, from the cards
    group_by: str | None = None  # `--group-by`: the record field
    groups: list[str] | None = None  # each record's group under it (scanning.groups)
    estimated: np.ndarray | None = None  # `--base-sample`: records whose dP is estimated (scanning.base_sample)
    estimate: Estimate | None = None  # `--base-sample`: the dataset-level estimate, unless nothing is estimated

    def table(self) -> pa.Table:
        return scores_table(self.records, self.traits, self.truncated, self.tags, self.group_by, self.groups,
                            self.estimated)

    def summary(self) -> dict:
        return summarise(len(self.records), [q.reason for q in self.quarantined], int(self.truncated.sum()),
                         int(self.reused.sum()), self.traits, self.verdicts, self.predictions,
                         [r.source for r in self.records], self.group_by, self.groups, self.estimate)

    def manifest(self, config: ScanConfig) -> dict:
        """What is needed to reproduce the scan: versions, model, vector and input hashes, settings."""
        return {
            "tool_version": __version__,
            "versions": {"python": platform.python_version(), "torch": _version("torch"),
                         "transformers": _version("transformers"), "threads": self.threads},
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "decoding_rule": DECODING_RULE,
            "model": {"name": self.model_name, "spec": config.model,
                      "num_layers": int(self.vectors[0].directions.shape[0] - 1) if self.vectors else None},
            "device": self.device, "dtype": self.dtype,
            "vectors": {v.trait: {"layer": v.layer, "method": v.method, "flags": v.flags, "model": v.model_name,
                                  "source": v.source, "verdict": self.verdicts.get(v.trait, NOT_EVALUATED),
                                  "sha256": file_sha256(Path(v.source)), "calibration": asdict(v.calibration)}
                        for v in self.vectors},
            "inputs": [input_entry(p) for p in self.files],
            "run_from": run_from(Path(config.out)),
            "settings": {k: v for k, v in asdict(config).items() if k not in ("inputs", "out")},
        }
