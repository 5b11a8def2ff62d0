"""The `extract` job: a trait's persona vectors for a model, from generated and judged answers or from the
trait's authored answers, written with the per-layer summary and the HTML extraction report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import ExtractSettings
from ..errors import AuditError
from ..model.loading import load_model
from ..progress import progress
from ..traits import Trait, load_trait
from .contrastive import MAIN, AnswerPair, extract_from_description, save_vectors
from .fitting import extract_from_examples
from .judges import JudgeOptions, make_judge
from .pairs import fit_from_pairs, pair_activations, read_pairs
from .persona import PersonaVector
from .report import render_extraction_report


@dataclass
class Extracted:
    """The vectors by variant (the main one first), the judged pairs, who judged, and the files written."""

    vectors: dict[str, PersonaVector]
    pairs: list[AnswerPair]
    judge: str
    written: list[Path]

    @property
    def vector(self) -> PersonaVector:
        return self.vectors[MAIN]


def run_extract(trait_spec: str, settings: ExtractSettings, show: bool = False) -> Extracted:
    """Extract `trait_spec` (a trait name or file) as `settings` say, and write the files."""
    if settings.from_pairs:
        return _from_pairs(trait_spec, settings, show)
    trait = load_trait(trait_spec)
    judge = make_judge(settings.judge, JudgeOptions(settings.judge_model, settings.api_key_env,
                                                    settings.judge_concurrency, settings.device, settings.dtype))
    lm = load_model(settings.model, settings.device, settings.dtype, settings.trust_remote_code)
    _check_layer(settings.layer, lm)
    if settings.from_examples:
        with progress(2 * len(trait.examples), "activations", show, "answer") as step:
            vectors = {MAIN: extract_from_examples(lm, trait, settings.batch_size, settings.layer, step)}
        pairs, judged = [], "none (authored answers)"
    else:
        result = extract_from_description(lm, trait, settings, judge, show_progress=show)
        vectors, pairs, judged = result.vectors, result.pairs, result.judge
    return _write(trait, lm.name, vectors, pairs, judged, settings)


def _check_layer(layer: int | None, lm) -> None:
    if layer is not None and layer > lm.num_layers:
        raise AuditError(f"{lm.name} has layers 0 to {lm.num_layers}", "layer", layer)


def _write(trait: Trait, model: str, vectors: dict[str, PersonaVector], pairs: list, judged: str,
           settings: ExtractSettings, shown: dict | None = None) -> Extracted:
    path = Path(settings.out or f"{trait.name}.{model}.safetensors")
    written = save_vectors(vectors, path)
    if settings.report:
        route = "authored answers" if settings.from_examples else "generated answers"
        generated = {k: v for k, v in asdict(settings).items() if v is not None and k not in ("model", "out")}
        shown = shown or {"model": model, "route": route, **({} if settings.from_examples else generated)}
        written.append(render_extraction_report(path.with_suffix(".html"), trait, vectors, pairs, judged, shown))
    return Extracted(vectors, pairs, judged, written)


def _from_pairs(name: str, settings: ExtractSettings, show: bool) -> Extracted:
    """The vector of the user's labelled pairs (auditor.vectors.pairs), for any trait name."""
    try:
        trait = load_trait(name)
    except AuditError:  # a new trait: only its name is known
        trait = Trait(name=name, description=f"fitted from the labelled pairs in {settings.from_pairs}",
                      instructions=[], questions={"extract": [], "eval": []}, judge_rubric="")
    assert settings.from_pairs is not None  # run_extract calls this with from_pairs only
    pairs = read_pairs(Path(settings.from_pairs), Path(settings.neutral) if settings.neutral else None)
    lm = load_model(settings.model, settings.device, settings.dtype, settings.trust_remote_code)
    _check_layer(settings.layer, lm)
    with progress(2 * len(pairs), "activations", show, "answer") as step:
        pos, neg = pair_activations(lm, pairs, settings.batch_size, step)
    vector = fit_from_pairs(lm, trait.name, pos, neg, settings.folds, settings.layer, settings.flags or trait.flags)
    shown = {"model": lm.name, "route": f"labelled pairs ({len(pairs)}), layer by {settings.folds}-fold "
                                        "cross-validated AUROC", "pairs": settings.from_pairs,
             **({"neutral answers": settings.neutral} if settings.neutral else {})}
    return _write(trait, lm.name, {MAIN: vector}, [], "none (labelled pairs)", settings, shown)
