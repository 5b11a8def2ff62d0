"""The scan pipeline: records -> base answers -> activations -> projection differences -> outputs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .activations import response_means
from .baseline import Baseline
from .cache import KeyedStore, cache_dir, content_hash
from .chat import clip_messages, clip_response, encode_prompt, encode_response, fit
from .config import ScanConfig
from .data import Quarantined, Record, expand_inputs, read_records
from .errors import AuditError
from .explain import tag_sample
from .generation import AnswerCache, GenerationSettings, StateCapture, base_answers
from .models import DEFAULT_MODEL, LoadedModel, load_model
from .scoring import TraitScores, projection_difference, score_trait
from .shard import Shard
from .trait_vectors import progress, trait_name, vector_for
from .vectors import PersonaVector


@dataclass
class Unit:
    """One scored assistant turn: its record, token ids, and whether it was cut to --max-tokens."""

    record: int
    prompt: list[int]
    response: list[int]
    truncated: bool
    prompt_key: str


@dataclass
class ScanResult:
    records: list[Record]
    quarantined: list[Quarantined]
    traits: list[TraitScores]
    truncated: np.ndarray
    vectors: list[PersonaVector]
    files: list[Path]
    model_name: str
    tags: list[list[str]]
    device: str
    dtype: str
    reused: np.ndarray  # records whose scores were copied from --baseline, not computed


@contextmanager
def _oom_hint(batch_size: int) -> Iterator[None]:
    """Out of accelerator memory becomes a usage error that says which batch size to try."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        raise AuditError(f"out of GPU memory at --batch-size {batch_size}; "
                         f"try --batch-size {max(batch_size // 2, 1)} or a smaller --max-tokens") from exc


def read_inputs(config: ScanConfig) -> tuple[list[Path], list[Record], list[Quarantined]]:
    """All records of all inputs (up to --limit, of --shard only), split into scoreable and quarantined."""
    shard = Shard.parse(config.shard) if config.shard else None
    files = expand_inputs(config.inputs)
    records, quarantined, seen = [], [], 0
    for path in files:
        for item in read_records(path):
            if config.limit is not None and seen >= config.limit:
                return files, records, quarantined
            if shard is None or shard.takes(seen):
                (records if isinstance(item, Record) else quarantined).append(item)
            seen += 1
    return files, records, quarantined


def in_input_order(items: list, files: list[Path]) -> list:
    """Records or quarantine entries sorted as they appear in the inputs: by file, then index in the file."""
    order = {str(path): i for i, path in enumerate(files)}
    return sorted(items, key=lambda item: (order.get(item.source, len(order)), item.source, item.index))


def load_vectors(lm: LoadedModel, config: ScanConfig, show: bool) -> list[PersonaVector]:
    """Vectors from --vectors files for their traits, else the shipped or extracted-and-cached ones."""
    given = {PersonaVector.load(Path(p)).trait: p for p in config.vectors}
    names = {trait_name(spec) for spec in config.traits}
    for trait in set(given) - names if config.traits else ():
        raise AuditError(f"{given[trait]}: a vector for trait {trait!r}, which is not in --traits "
                         f"({', '.join(sorted(names))}); add it to --traits")
    specs = [given.get(trait_name(spec), spec) for spec in config.traits] if config.traits else list(given.values())
    return [vector_for(lm, spec, config.model == DEFAULT_MODEL, config.batch_size, show) for spec in specs]


def _units(lm: LoadedModel, records: list[Record], config: ScanConfig, skip: np.ndarray) -> list[Unit]:
    units = []
    for r, record in enumerate(records):
        if skip[r]:
            continue
        for prompt_messages, response in record.turns(config.turns):
            clipped, dropped = clip_messages(prompt_messages, config.max_tokens)
            response, cut_text = clip_response(response, config.max_tokens)
            prompt, resp, cut = fit(encode_prompt(lm.tokenizer, clipped),
                                    encode_response(lm.tokenizer, response), config.max_tokens)
            units.append(Unit(r, prompt, resp, cut or dropped or cut_text, content_hash(prompt_messages)))
    return units


def answers_from_file(path: str, lm: LoadedModel) -> dict[str, list[int]]:
    """Base answers given by the user: chat records whose last assistant turn answers a prompt, by prompt hash."""
    if not Path(path).is_file():
        raise AuditError(f"--base-responses {path}: not 'generate', 'none' or a file")
    answers = {}
    for item in read_records(Path(path)):
        if isinstance(item, Record):
            prompt, response = item.turns("last")[0]
            answers[content_hash(prompt)] = encode_response(lm.tokenizer, response)
    return answers


def _without_answers(records: list[Record], answers: dict, config: ScanConfig) -> tuple[list, list]:
    """Split records into those whose every scored prompt has a given base answer, and the rest (quarantined)."""
    keep, missing = [], []
    for record in records:
        if all(content_hash(prompt) in answers for prompt, _ in record.turns(config.turns)):
            keep.append(record)
        else:
            missing.append(Quarantined(record.source, record.line, record.index,
                                       f"no base answer for this prompt in {config.base_responses}", record.raw))
    return keep, missing


def _base_answers(lm: LoadedModel, units: list[Unit], config: ScanConfig, show: bool,
                  given: dict[str, list[int]] | None, cached: bool = True,
                  capture: StateCapture | None = None) -> list[list[int]] | None:
    if config.base_responses == "none":
        return None
    if given is not None:
        return [given[u.prompt_key] for u in units]
    settings = GenerationSettings(max_new_tokens=config.max_new_tokens)
    prompts = [u.prompt for u in units]
    if config.generator == "vllm":
        from .vllm_generator import vllm_answers

        return vllm_answers(lm, prompts, settings)
    with progress(len(units), "base answers", show) as step:
        return base_answers(lm, prompts, settings, config.batch_size,
                            AnswerCache(lm, settings) if cached else None, on_batch=step, capture=capture)


def generated_answers(lm: LoadedModel, records: list[Record], config: ScanConfig, cached: bool = True,
                      show: bool = False) -> dict[str, list[int]]:
    """The model's base answer to every scored prompt of `records`, by prompt hash (as from a base-answers file)."""
    units = _units(lm, records, config, skip=np.zeros(len(records), dtype=bool))
    with _oom_hint(config.batch_size):
        answers = _base_answers(lm, units, config, show, None, cached)
    return {u.prompt_key: a for u, a in zip(units, answers or [])}


def _projection_store(lm: LoadedModel, vectors: list[PersonaVector]) -> KeyedStore:
    """Projections already computed for this model, dtype and these exact vectors (resume, rescans)."""
    key = content_hash({"model": lm.name, "fp": lm.fingerprint(), "dtype": str(lm.dtype),
                        "vectors": [[v.trait, v.layer, v.unit().tolist()] for v in vectors]})
    return KeyedStore(cache_dir() / "projections" / f"{lm.name}-{key}.jsonl")


def _project(means: np.ndarray, layers: list[int], vectors: list[PersonaVector]) -> np.ndarray:
    """[n, traits] projections of response means [n, len(layers), hidden] on each trait's unit vector."""
    return np.stack([means[:, layers.index(v.layer)] @ v.unit().numpy() for v in vectors], axis=1)


def _projections(lm: LoadedModel, pairs: list, vectors: list[PersonaVector], config: ScanConfig,
                 desc: str, show: bool, cached: bool = True, known: dict[int, np.ndarray] | None = None) -> np.ndarray:
    """[n, traits] projections of each pair's response-averaged state on each trait's unit vector.

    Pairs seen before (same token ids) are read from the cache; new ones are computed in chunks and
    cached as they finish, so an interrupted scan resumes where it stopped. `known`: projections
    already in hand by pair index (read off the generation; NaN where they were not), cached and not
    computed. `cached=False` (Ray workers) neither reads nor writes the cache.
    """
    layers = sorted({v.layer for v in vectors})
    store = _projection_store(lm, vectors) if cached else KeyedStore(None)
    keys = [content_hash(pair, 24) for pair in pairs]
    store.add([(keys[i], row.tolist()) for i, row in (known or {}).items()
               if store.get(keys[i]) is None and not np.isnan(row).any()])  # NaN: never computed
    out = np.array([store.get(k) or [np.nan] * len(vectors) for k in keys], dtype=np.float64).reshape(-1, len(vectors))
    first: dict[str, int] = {}  # a pair repeated in `pairs` (one base answer shared by paired samples) runs once
    for i in range(len(pairs)):
        if np.isnan(out[i]).any():
            first.setdefault(keys[i], i)
    todo = list(first.values())
    chunk = config.batch_size * 8
    with progress(len(pairs), desc, show) as step:
        step(len(pairs) - len(todo))
        for start in range(0, len(todo), chunk):
            part = todo[start : start + chunk]
            values = _project(response_means(lm, [pairs[i] for i in part], layers, config.batch_size, on_batch=step),
                              layers, vectors)
            out[part] = values
            store.add([(keys[i], row.tolist()) for i, row in zip(part, values)])
    repeats = [i for i in range(len(pairs)) if np.isnan(out[i]).any()]
    out[repeats] = out[[first[keys[i]] for i in repeats]]
    return out


@dataclass
class Scored:
    """The scores of a list of records (those with a base answer), in their order."""

    records: list[Record]
    missing: list[Quarantined]  # records with no base answer in the given ones
    traits: list[TraitScores]
    truncated: np.ndarray
    reused: np.ndarray


def score_records(lm: LoadedModel, vectors: list[PersonaVector], records: list[Record], config: ScanConfig, *,
                  given: dict[str, list[int]] | None = None, baseline: Baseline | None = None,
                  cached: bool = True, show: bool = False) -> Scored:
    """dP, score and flag per record and trait: the model work of a scan, on any slice of the records.

    `given`: base answers by prompt hash (a base-answers file, or an earlier generation stage);
    records with a prompt missing from it are returned as `missing`. Without it, base answers are
    generated as `config.base_responses` says. A record's dP is the mean over its scored turns.
    """
    missing: list[Quarantined] = []
    if given is not None:
        records, missing = _without_answers(records, given, config)
    reused = baseline.reused(records) if baseline else np.zeros(len(records), dtype=bool)
    units = _units(lm, records, config, skip=reused)
    # generated answers, and a sample per prompt, come with their states: no separate pass for them
    layers = sorted({v.layer for v in vectors})
    generating = given is None and config.base_responses == "generate"
    capture = StateCapture(layers, {tuple(u.prompt): u.response for u in units} if generating else {},
                           reduce=lambda means: _project(means, layers, vectors))
    with _oom_hint(config.batch_size):
        answers = _base_answers(lm, units, config, show, given, cached, capture)
        sampled = {i: capture.sampled[p] for i, u in enumerate(units)
                   if (p := tuple(u.prompt)) in capture.sampled and capture.samples[p] == u.response}
        sample = _projections(lm, [(u.prompt, u.response) for u in units], vectors, config, "scoring samples",
                              show, cached, sampled)
        base = None
        if answers is not None:
            base = _projections(lm, [(u.prompt, a) for u, a in zip(units, answers)], vectors, config,
                                "scoring base answers", show, cached, capture.answers)
    owner = np.array([u.record for u in units], dtype=np.int64)
    counts = np.bincount(owner, minlength=len(records)).clip(min=1)
    results = []
    for t, vector in enumerate(vectors):
        unit_dp = projection_difference(vector, sample[:, t], None if base is None else base[:, t])
        dp = np.bincount(owner, weights=unit_dp, minlength=len(records)) / counts
        results.append(score_trait(vector, dp, config.threshold))
    truncated = np.zeros(len(records), dtype=bool)
    truncated[[u.record for u in units if u.truncated]] = True
    if baseline:
        baseline.fill(records, reused, results, truncated)
    return Scored(records, missing, results, truncated, reused)


def check_scan_settings(config: ScanConfig) -> None:
    """Settings that cannot work together, as one usage error each (before any reading or model work)."""
    if config.turns not in ("last", "all"):
        raise AuditError(f"--turns {config.turns}: use 'last' or 'all'")
    if config.shard:
        Shard.parse(config.shard)
    if config.concurrency < 1 or config.num_gpus_per_worker < 0:
        raise AuditError(f"--concurrency {config.concurrency} / --num-gpus-per-worker {config.num_gpus_per_worker}: "
                         "use at least 1 actor and 0 or more GPUs")
    if config.generator == "vllm" and config.base_responses != "generate":
        raise AuditError("--generator vllm writes base answers: use it with --base-responses generate")
    if config.engine == "ray":
        if config.shard:
            raise AuditError("--shard splits a local scan; --engine ray spreads the whole scan over the cluster")
        if config.baseline:
            raise AuditError("--baseline works with the local engine only (drop --engine ray)")


def scan(config: ScanConfig, show_progress: bool = False, lm: LoadedModel | None = None) -> ScanResult:
    """Score every record of `config.inputs`; quarantine what cannot be scored.

    With `config.baseline`, records already in that scores.parquet copy their scores from it, uncomputed.
    With `config.engine == "ray"`, the same scan runs as a Ray Data pipeline (auditor.ray_engine).
    """
    check_scan_settings(config)
    if config.engine == "ray":
        from .ray_engine import scan_on_ray

        return scan_on_ray(config, show_progress)
    files, records, quarantined = read_inputs(config)
    baseline = Baseline.load(config.baseline, config) if config.baseline else None
    lm = lm or load_model(config.model, config.device, config.dtype, config.trust_remote_code)
    vectors = load_vectors(lm, config, show_progress)
    if baseline:
        baseline.check_traits([v.trait for v in vectors])
    given = None
    if config.base_responses not in ("generate", "none"):
        given = answers_from_file(config.base_responses, lm)
    scored = score_records(lm, vectors, records, config, given=given, baseline=baseline, show=show_progress)
    tags = [tag_sample(r.messages) for r in scored.records]
    return ScanResult(scored.records, in_input_order(quarantined + scored.missing, files), scored.traits,
                      scored.truncated, vectors, files, lm.name, tags, str(lm.device),
                      str(lm.dtype).replace("torch.", ""), scored.reused)
