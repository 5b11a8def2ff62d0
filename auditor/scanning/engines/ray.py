"""`scan --engine ray`: the scan as a Ray Data pipeline, for datasets and models beyond one machine.

    read (ChatRecords: JSONL/JSON/Parquet/CSV, local or object storage, with line numbers; saved HF datasets)
      -> limit -> [Answerer actors: base answers]            (--base-responses generate)
      -> Scorer actors: activations -> dP, score, flag per record
      -> rows of per-sample scalars and texts (never activations) streamed back to the driver,
         which puts them in input order; the CLI writes them to scores.parquet as for a local scan

Each actor loads the model once. Both model stages use the local engine's own ModelProjector and
`score_records`, so a record gets the same scores on either engine; only the disk caches are off on
workers (actors must not append to one cache file at once).
"""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa

from ...cache import content_hash
from ...config import ScanConfig
from ...data import Quarantined, Record, expand_inputs, is_uri, read_input, read_records
from ...data.hub import is_hub_id
from ...errors import AuditError
from ...model.loading import load_model
from ...vectors.persona import PersonaVector
from ...vectors.resolve import load_vectors
from ..groups import record_groups
from ..projection import ModelProjector
from ..result import GROUP_COLUMN, ScanResult, column, pair_scores, scores_table
from ..scoring import TraitScores
from ..tags import tag_sample
from .local import score_records

INSTALL_HINT = "install with pip install 'dataset-audit[ray]'"
READ_COLUMNS = {"file_pos": pa.int64(), "source": pa.string(), "line": pa.int64(), "index": pa.int64(),
                "raw": pa.string(), "messages": pa.string(), "rejected": pa.string(), "reason": pa.string()}
BLOCK_ROWS = 4096


def _ray():
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise AuditError(f"Ray is not installed; {INSTALL_HINT}", "engine", "ray") from None
    return ray


def input_files(inputs: list[str]) -> list[str]:
    """The inputs to read, listed as the local engine lists them (data.expand_inputs), as strings."""
    hub = [item for item in inputs if is_hub_id(item)]
    if hub:
        raise AuditError(f"{hub[0]}: Hugging Face dataset ids are read by the local engine only")
    return [str(f) for f in expand_inputs(inputs)]


def _for_ray(path: str) -> str:
    """An input as Ray is given it: local paths made absolute (workers may start elsewhere), URIs as they are."""
    return path if is_uri(path) else os.path.abspath(path)


def _is_folder(path: str) -> bool:
    """A listed input that is a local folder: a saved HF dataset (expand_inputs lists no other folders)."""
    return not is_uri(path) and Path(path).is_dir()


def _datasource(files: list[str]):
    from ray.data.datasource import FileBasedDatasource

    class ChatRecords(FileBasedDatasource):
        """Every row of each file as (file_pos, source, line, index, raw, messages or reason), by `read_records`;
        the folders among the inputs are left to `_read`."""

        def __init__(self, paths: list[str]):
            plain = [(i, p) for i, p in enumerate(paths) if not _is_folder(p)]
            super().__init__([_for_ray(p) for _, p in plain])
            self.names = {}  # how Ray names each file when reading it (with or without a URI scheme) -> ours
            for i, p in plain:
                self.names[_for_ray(p)] = self.names[_for_ray(p).split("://", 1)[-1]] = (i, p)

        def _open_input_source(self, filesystem, path, **open_args):
            return filesystem.open_input_file(path)  # seekable (Parquet), undecoded (.gz is ours to read)

        def _read_stream(self, f, path):
            file_pos, source = self.names[path]
            yield from _read_blocks(file_pos, read_records(Path(source), stream=io.BufferedReader(f), source=source))

    return ChatRecords(files)


def _read_blocks(file_pos: int, items: Iterable[Record | Quarantined]) -> Iterator[pa.Table]:
    """The rows of one input as (file_pos, source, line, index, raw, messages or reason) blocks."""
    rows: dict[str, list] = {name: [] for name in READ_COLUMNS}
    for item in items:
        rows["file_pos"].append(file_pos)
        for name in ("source", "line", "index", "raw"):
            rows[name].append(getattr(item, name))
        rows["messages"].append(json.dumps(item.messages, ensure_ascii=False) if isinstance(item, Record) else None)
        rows["rejected"].append(json.dumps(item.rejected, ensure_ascii=False)
                                if isinstance(item, Record) and item.is_pair else None)
        rows["reason"].append(None if isinstance(item, Record) else item.reason)
        if len(rows["line"]) == BLOCK_ROWS:  # stream big files in blocks
            yield _block(rows)
    if rows["line"]:
        yield _block(rows)


def _read(ray, files: list[str]):
    """The dataset of every input's rows: files through the ChatRecords datasource (on the cluster), saved HF
    dataset folders read here (`read_input`) and handed over as Arrow blocks."""
    folders = {i: f for i, f in enumerate(files) if _is_folder(f)}
    parts = [ray.data.from_arrow(list(_read_blocks(i, read_input(f))) or [_block({n: [] for n in READ_COLUMNS})])
             for i, f in folders.items()]
    if len(folders) < len(files):  # parsing is light: it must not wait for actors
        parts.insert(0, ray.data.read_datasource(_datasource(files), num_cpus=0))
    return parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]


def _block(rows: dict[str, list]) -> pa.Table:
    """The rows read so far as an Arrow block; the lists are emptied for the next one."""
    block = pa.table({name: pa.array(values, READ_COLUMNS[name]) for name, values in rows.items()})
    for values in rows.values():
        values.clear()
    return block


def _records(batch: pa.Table) -> list[Record]:
    rows = batch.select(["source", "line", "index", "raw", "messages", "rejected", "reason"]).to_pylist()
    return [Record(r["source"], r["line"], r["index"], json.loads(r["messages"]), r["raw"],
                   json.loads(r["rejected"]) if r["rejected"] else None)
            for r in rows if r["reason"] is None]


class Answerer:
    """Ray actor: loads the model once; adds each record's base answers by prompt hash (JSON) as `answers`."""

    def __init__(self, config: ScanConfig):
        self.config = config
        lm = load_model(config.model, config.device, config.dtype, config.trust_remote_code)
        self.projector = ModelProjector(lm, [], config, cached=False)

    def __call__(self, batch: pa.Table) -> pa.Table:
        records = _records(batch)
        answers = self.projector.answers_by_prompt(records)
        keys = ({content_hash(prompt) for _, prompt, _ in r.sides(self.config.turns)} for r in records)
        own = iter(json.dumps({key: answers[key] for key in mine}) for mine in keys)
        column = [None if reason is not None else next(own) for reason in batch.column("reason").to_pylist()]
        return batch.append_column("answers", pa.array(column, pa.string()))


class Scorer:
    """Ray actor: loads the model once; turns a batch of read rows into scores rows and quarantine rows."""

    def __init__(self, config: ScanConfig, vectors: list[PersonaVector]):
        self.config = config
        lm = load_model(config.model, config.device, config.dtype, config.trust_remote_code)
        for v in vectors:
            v.check_model(lm.name, lm.hidden_size, lm.num_layers, lm.fingerprint())
        self.projector = ModelProjector(lm, vectors, config, cached=False)

    def __call__(self, batch: pa.Table) -> pa.Table:
        records, projector = _records(batch), self.projector
        if "answers" in batch.column_names:  # this batch's base answers, from the generation stage
            given = {k: v for text in batch.column("answers").to_pylist() if text for k, v in json.loads(text).items()}
            projector = ModelProjector(projector.lm, projector.vectors, self.config, cached=False, given=given)
        scored = score_records(projector, records, self.config)
        table = scores_table(scored.records, scored.traits, scored.truncated,
                             [tag_sample(r.messages) for r in scored.records], self.config.group_by,
                             record_groups(scored.records, self.config.group_by))
        pos = dict(zip(batch.column("source").to_pylist(), batch.column("file_pos").to_pylist()))
        quarantined = [Quarantined(r["source"], r["line"], r["index"], r["reason"], r["raw"] or "")
                       for r in batch.select(["source", "line", "index", "reason", "raw"]).to_pylist()
                       if r["reason"] is not None] + scored.missing
        table = table.append_column("file_pos", pa.array([pos[s] for s in table.column("source").to_pylist()],
                                                         pa.int64()))
        table = table.append_column("quarantine", pa.nulls(table.num_rows, pa.string()))
        return pa.concat_tables([table, _quarantine_rows(quarantined, pos, table.schema)])


def _quarantine_rows(items: list[Quarantined], pos: dict[str, int], schema: pa.Schema) -> pa.Table:
    """Quarantined records as rows of the scores schema: where they are, why (JSON), and nulls."""
    given = {"index": [q.index for q in items], "source": [q.source for q in items], "line": [q.line for q in items],
             "file_pos": [pos[q.source] for q in items],
             "quarantine": [json.dumps(q.to_json(), ensure_ascii=False) for q in items]}
    return pa.table([pa.array(given[f.name], f.type) if f.name in given else pa.nulls(len(items), f.type)
                     for f in schema], schema=schema)


def _prepare(config: ScanConfig) -> tuple[list[PersonaVector], str, str, str]:
    """On a worker with the model's resources: the vectors (extracted and cached there if needed), and model facts."""
    lm = load_model(config.model, config.device, config.dtype, config.trust_remote_code)
    vectors = load_vectors(lm, config.traits, config.vectors, config.batch_size)
    return vectors, lm.name, str(lm.device), lm.dtype_name


def _start(ray, config: ScanConfig, show_progress: bool) -> bool:
    """Join the Ray cluster (or start a local instance); whether its size is fixed (a local one)."""
    local = config.address is None and not os.environ.get("RAY_ADDRESS")
    if ray.is_initialized():
        pass
    elif local:
        ray.init(logging_level=logging.WARNING, log_to_driver=show_progress, include_dashboard=False)
    else:
        try:
            ray.init(address=config.address, logging_level=logging.WARNING, log_to_driver=show_progress)
        except (ConnectionError, ValueError, RuntimeError) as exc:
            raise AuditError(f"cannot start or join a Ray cluster at "
                             f"{config.address or os.environ.get('RAY_ADDRESS') or 'a local instance'} "
                             f"({str(exc).splitlines()[0]})", "engine", "ray") from None
    context = ray.data.DataContext.get_current()
    context.execution_options.preserve_order = True  # --limit takes the first records, as locally
    context.enable_progress_bars = show_progress
    return local


def _check_resources(ray, config: ScanConfig, stages: int, fixed: bool) -> None:
    """When the cluster cannot hold every model actor at once, Ray waits for resources: forever on a local
    instance (a usage error), else until an autoscaler adds nodes (a warning)."""
    kind, each = ("GPU", config.num_gpus_per_worker) if config.num_gpus_per_worker else ("CPU", 1.0)
    needed, have = stages * config.concurrency * each, ray.cluster_resources().get(kind, 0.0)
    if needed > have:
        error = AuditError(f"{stages} model stage{'s' if stages > 1 else ''} x `concurrency` "
                           f"{config.concurrency} x {each:g} {kind} = {needed:g} {kind}s, the Ray cluster has {have:g} "
                           f"(lower `concurrency`{' or `num_gpus_per_worker`' if kind == 'GPU' else ''}, "
                           "or add nodes)", "engine", "ray")
        if fixed:
            raise error
        logging.getLogger(__name__).warning("%s; waiting for the autoscaler", error)


def scan_on_ray(config: ScanConfig, show_progress: bool = False) -> ScanResult:
    """The scan of `config.inputs` on Ray; the same ScanResult (and so the same output files) as the local engine."""
    ray = _ray()
    files = input_files(config.inputs)
    _check_resources(ray, config, 2 if config.generates else 1, _start(ray, config, show_progress))
    resources = {"num_gpus": config.num_gpus_per_worker} if config.num_gpus_per_worker else {"num_cpus": 1}
    env = {"env_vars": {k: os.environ[k] for k in ("DATASET_AUDIT_CACHE", "HF_HOME") if k in os.environ}}
    vectors, model_name, device, dtype = ray.get(
        ray.remote(_prepare).options(**resources, runtime_env=env).remote(config))
    ds = _read(ray, files)
    if config.limit is not None:
        ds = ds.limit(config.limit)
    stage = {"batch_format": "pyarrow", "batch_size": config.batch_size * 8, "runtime_env": env, **resources,
             "compute": ray.data.ActorPoolStrategy(size=config.concurrency)}
    if config.generates:
        ds = ds.map_batches(Answerer, fn_constructor_kwargs={"config": config}, **stage)
    ds = ds.map_batches(Scorer, fn_constructor_kwargs={"config": config, "vectors": vectors}, **stage)
    blocks = [block for block in ds.iter_batches(batch_format="pyarrow", batch_size=None) if block.num_rows]
    table = pa.concat_tables(blocks, promote_options="default") if blocks else None  # pairs add columns
    return _result(table, vectors, [Path(f) for f in files], model_name, device, dtype, config)


def _result(table: pa.Table | None, vectors: list[PersonaVector], files: list[Path], model_name: str,
            device: str, dtype: str, config: ScanConfig) -> ScanResult:
    """The Ray output rows, in input order, as the ScanResult the local engine would give."""
    records, quarantined, truncated, tags = [], [], np.zeros(0, dtype=bool), []
    groups: list[str] | None = [] if config.group_by else None
    if table is not None and table.num_rows:
        table = table.take(np.lexsort((column(table, "index"), column(table, "file_pos"))))
        is_quarantine = table.column("quarantine").is_valid().to_numpy(zero_copy_only=False)
        quarantined = [Quarantined(**json.loads(text)) for text in table.filter(is_quarantine)
                       .column("quarantine").to_pylist()]
        table = table.filter(~is_quarantine)
        rows = table.select(["source", "line", "index", "conversation"]).to_pylist()
        rejected = table.column("rejected").to_pylist() if "rejected" in table.column_names else [None] * len(rows)
        records = [Record(r["source"], r["line"], r["index"], json.loads(r["conversation"]),
                          rejected=json.loads(other) if other else None) for r, other in zip(rows, rejected)]
        truncated = column(table, "truncated").astype(bool)
        tags = table.column("tags").to_pylist()
        if config.group_by:
            groups = table.column(GROUP_COLUMN).to_pylist()
    traits = []
    for v in vectors:
        dp, score = ((column(table, f"{v.trait}_{c}").astype(np.float64) if records else np.zeros(0))
                     for c in ("dp", "score"))
        sides = pair_scores(table, v.trait) if records else {}
        scores = TraitScores(v.trait, dp, score, score, config.threshold, v.layer, v.flags, **sides)
        scores.reflag()
        traits.append(scores)
    return ScanResult(records=records, quarantined=quarantined, traits=traits, truncated=truncated, vectors=vectors,
                      files=files, model_name=model_name, tags=tags, device=device, dtype=dtype,
                      reused=np.zeros(len(records), dtype=bool), group_by=config.group_by, groups=groups)
