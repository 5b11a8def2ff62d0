"""The model work of a scan: each scored turn as token ids, the model's own (base) answers, and the
projections of both on the trait vectors.

`Projector` is the seam between the scan and the model: the local and Ray engines call it, and tests
hand in one that plants scores. `ModelProjector` is the real one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..cache import Batches, KeyedStore, cache_dir, cached_compute, content_hash
from ..config import ScanConfig, flagged
from ..data import Record, read_records
from ..errors import AuditError

if TYPE_CHECKING:
    from ..model.loading import LoadedModel
    from ..vectors.persona import PersonaVector


@dataclass
class Unit:
    """One scored assistant turn: its record, token ids, and whether it was cut to --max-tokens."""

    record: int
    prompt: list[int]
    response: list[int]
    truncated: bool
    prompt_key: str  # the hash of its prompt messages, which base-answer files are matched by
    side: str = ""  # of a preference pair: CHOSEN or REJECTED (data.records)


@dataclass
class Measured:
    """[units, traits] projections of each unit's sample response and of the base answer to its prompt
    (None in cheap mode: the calibration's neutral mean stands in)."""

    sample: np.ndarray
    base: np.ndarray | None


class Projector(Protocol):
    """What a scan engine needs from the model side."""

    vectors: list[PersonaVector]
    model_name: str
    device: str
    dtype: str

    def has_base_answers(self, record: Record) -> bool:
        """False when base answers are given in a file that has none for one of the record's prompts."""

    def units(self, records: Sequence[Record], skip: np.ndarray) -> list[Unit]:
        """The scored turns of the records not skipped, as token ids."""

    def measure(self, units: list[Unit], show: bool, answered: np.ndarray | None = None) -> Measured:
        """Base answers as the settings say, and the projections of samples and base answers; with `answered`
        (per unit), base answers for those units only, the others' base rows NaN (scanning.base_sample)."""


@contextmanager
def oom_hint(batch_size: int) -> Iterator[None]:
    """Out of accelerator memory becomes a usage error that says which batch size to try."""
    import torch

    try:
        yield
    except torch.OutOfMemoryError as exc:
        raise AuditError(f"out of GPU memory; try `batch_size` {max(batch_size // 2, 1)} or a smaller `max_tokens`",
                         "batch_size", batch_size) from exc


def project(means: np.ndarray, layers: list[int], vectors: Sequence[PersonaVector]) -> np.ndarray:
    """[n, traits] projections of response means [n, len(layers), hidden] on each trait's unit vector."""
    return np.stack([means[:, layers.index(v.layer)] @ v.unit().numpy() for v in vectors], axis=1)


def answers_from_file(path: str, lm: LoadedModel) -> dict[str, list[int]]:
    """Base answers given by the user: chat records whose last assistant turn answers a prompt, by prompt hash."""
    from ..model.chat import encode_response

    if not Path(path).is_file():
        raise AuditError("not 'generate', 'none' or a file", "base_responses", path)
    answers = {}
    for item in read_records(Path(path)):
        if isinstance(item, Record):
            prompt, response = item.turns("last")[0]
            answers[content_hash(prompt)] = encode_response(lm.tokenizer, response)
    return answers


class ModelProjector:
    """The projector of a loaded model and its vectors, under a scan's settings.

    `cached`: use the disk caches of base answers and projections (off on Ray workers, which must not
    append to one file at once). `given`: base answers by prompt hash (from a file, or from Ray's
    generation stage); by default read from `config.base_file` when that is set.
    """

    def __init__(self, lm: LoadedModel, vectors: list[PersonaVector], config: ScanConfig, cached: bool = True,
                 given: dict[str, list[int]] | None = None):
        self.lm, self.vectors, self.config, self.cached = lm, vectors, config, cached
        if given is None and config.base_file:
            given = answers_from_file(config.base_file, lm)
        self.given = given
        self.layers = sorted({v.layer for v in vectors})
        self.model_name, self.device = lm.name, str(lm.device)
        self.dtype = lm.dtype_name

    @classmethod
    def load(cls, config: ScanConfig, show: bool = False) -> ModelProjector:
        """Load the model `config` names, and its vectors."""
        from ..model.loading import load_model

        lm = load_model(config.model, config.device, config.dtype, config.trust_remote_code)
        return cls.with_model(lm)(config, show)

    @classmethod
    def with_model(cls, lm: LoadedModel) -> Callable[[ScanConfig, bool], ModelProjector]:
        """A projector factory for a model already loaded (notebooks, benchmarks, tests): it loads the vectors."""
        from ..vectors.resolve import load_vectors

        def factory(config: ScanConfig, show: bool = False) -> ModelProjector:
            return cls(lm, load_vectors(lm, config.traits, config.vectors, config.batch_size, show), config)

        return factory

    def has_base_answers(self, record: Record) -> bool:
        return self.given is None or all(content_hash(p) in self.given for _, p, _ in record.sides(self.config.turns))

    def units(self, records: Sequence[Record], skip: np.ndarray) -> list[Unit]:
        from ..model.chat import clip_messages, clip_response, encode_prompt, encode_response, fit

        max_tokens, tokenizer, units = self.config.max_tokens, self.lm.tokenizer, []
        for r, record in enumerate(records):
            if skip[r]:
                continue
            for side, prompt_messages, response in record.sides(self.config.turns):
                clipped, dropped = clip_messages(prompt_messages, max_tokens)
                response, cut_text = clip_response(response, max_tokens)
                prompt, resp, cut = fit(encode_prompt(tokenizer, clipped), encode_response(tokenizer, response),
                                        max_tokens)
                units.append(Unit(r, prompt, resp, cut or dropped or cut_text, content_hash(prompt_messages), side))
        return units

    def measure(self, units: list[Unit], show: bool, answered: np.ndarray | None = None) -> Measured:
        chosen = np.arange(len(units)) if answered is None else np.flatnonzero(answered)
        asked = [units[i] for i in chosen]
        with oom_hint(self.config.batch_size):
            answers, answer_states, sample_states = self._base_answers(asked, show, read_states=True)
            sample = self._projections([(u.prompt, u.response) for u in units], "scoring samples", show,
                                       {int(chosen[i]): state for i, state in sample_states.items()})
            base = None
            if answers is not None:
                base = np.full((len(units), len(self.vectors)), np.nan)
                base[chosen] = self._projections([(u.prompt, a) for u, a in zip(asked, answers)],
                                                 "scoring base answers", show, answer_states)
        return Measured(sample, base)

    def answers_by_prompt(self, records: Sequence[Record]) -> dict[str, list[int]]:
        """The model's base answer to every scored prompt of `records`, by prompt hash (as from a base-answers file)."""
        units = self.units(records, np.zeros(len(records), dtype=bool))
        with oom_hint(self.config.batch_size):
            answers, _, _ = self._base_answers(units, show=False, read_states=False)
        return {u.prompt_key: a for u, a in zip(units, answers or [])}

    def _base_answers(self, units: list[Unit], show: bool, read_states: bool
                      ) -> tuple[list[list[int]] | None, dict[int, np.ndarray], dict[int, np.ndarray]]:
        """Base answers per unit (None in cheap mode), and the projections read off their generation by unit:
        of the answers, and of the units' own responses run on the same prompt cache."""
        from ..model.generation import AnswerCache, GenerationSettings, base_answers
        from ..progress import progress

        if self.given is not None:
            return [self.given[u.prompt_key] for u in units], {}, {}
        if not self.config.generates:
            return None, {}, {}
        settings = GenerationSettings(max_new_tokens=self.config.max_new_tokens)
        prompts = [u.prompt for u in units]
        if self.config.generator == "vllm":
            from ..model.vllm_generator import vllm_answers

            return vllm_answers(self.lm, prompts, settings), {}, {}
        with progress(len(units), "base answers", show) as step:
            answers = base_answers(self.lm, prompts, settings, self.config.gen_batch_size,
                                   AnswerCache(self.lm, settings) if self.cached else None, step,
                                   layers=self.layers if read_states else (),
                                   samples=[u.response for u in units],
                                   reduce=lambda means: project(means, self.layers, self.vectors))
        return answers.ids, answers.states, answers.sample_states

    def _store(self) -> KeyedStore:
        """Projections already computed for this model, dtype and these exact vectors (resume, rescans): keyed by
        the settings that change the projection of given tokens (config.Spec.measures), as given and as loaded."""
        if not self.cached:
            return KeyedStore(None)
        lm = self.lm
        settings = {name: getattr(self.config, name) for name in flagged(ScanConfig, lambda spec: spec.measures)}
        key = content_hash({"settings": settings, "model": lm.name, "fp": lm.fingerprint(), "dtype": str(lm.dtype),
                            "vectors": [[v.trait, v.layer, v.unit().tolist()] for v in self.vectors]})
        return KeyedStore(cache_dir() / "projections" / f"{lm.name}-{key}.jsonl")

    def _projections(self, pairs: list[tuple[list[int], list[int]]], desc: str, show: bool,
                     known: dict[int, np.ndarray]) -> np.ndarray:
        """[n, traits] projections of each pair's response-averaged state on each trait's unit vector.

        Pairs seen before (same token ids) come from the cache; new ones are computed in chunks and cached
        as they finish, so an interrupted scan resumes where it stopped. `known`: projections already in
        hand by pair index (read off the generation), cached and not computed.
        """
        from ..model.activations import response_means
        from ..progress import progress

        store, batch = self._store(), self.config.batch_size
        keys = [content_hash(pair, 24) for pair in pairs]
        store.add([(keys[i], row.tolist()) for i, row in known.items()
                   if keys[i] not in store and not np.isnan(row).any()])  # NaN: never computed

        def compute(todo: list[int]) -> Batches:
            for start in range(0, len(todo), batch * 8):
                part = todo[start : start + batch * 8]
                means = response_means(self.lm, [pairs[i] for i in part], self.layers, batch)
                yield part, project(means, self.layers, self.vectors).tolist()

        with progress(len(pairs), desc, show) as step:
            values = cached_compute(keys, store, compute, step)
        return np.array(values, dtype=np.float64).reshape(len(pairs), len(self.vectors))
