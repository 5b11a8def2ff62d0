"""The `extract` job: a trait's persona vectors for a model, from generated and judged answers or from the
trait's authored answers, written with the per-layer summary and the HTML extraction report."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from ..config import ExtractSettings
from ..errors import AuditError
from ..model.loading import load_model
from ..progress import progress
from ..traits import load_trait
from .contrastive import MAIN, Pair, extract_from_description, save_vectors
from .fitting import extract_from_examples
from .judges import JudgeOptions, make_judge
from .persona import PersonaVector
from .report import render_extraction_report


@dataclass
class Extracted:
    """The vectors by variant (the main one first), the judged pairs, who judged, and the files written."""

    vectors: dict[str, PersonaVector]
    pairs: list[Pair]
    judge: str
    written: list[Path]

    @property
    def vector(self) -> PersonaVector:
        return self.vectors[MAIN]


def run_extract(trait_spec: str, settings: ExtractSettings, show: bool = False) -> Extracted:
    """Extract `trait_spec` (a trait name or file) as `settings` say, and write the files."""
    trait = load_trait(trait_spec)
    judge = make_judge(settings.judge, JudgeOptions(settings.judge_model, settings.api_key_env,
                                                    settings.judge_concurrency, settings.device, settings.dtype))
    lm = load_model(settings.model, settings.device, settings.dtype, settings.trust_remote_code)
    if settings.layer is not None and settings.layer > lm.num_layers:
        raise AuditError(f"--layer {settings.layer}: {lm.name} has layers 0 to {lm.num_layers}")
    if settings.from_examples:
        with progress(2 * len(trait.examples), "activations", show, "answer") as step:
            vectors = {MAIN: extract_from_examples(lm, trait, settings.batch_size, settings.layer, step)}
        pairs, judged = [], "none (authored answers)"
    else:
        result = extract_from_description(lm, trait, settings, judge, show_progress=show)
        vectors, pairs, judged = result.vectors, result.pairs, result.judge
    path = Path(settings.out or f"{trait.name}.{lm.name}.safetensors")
    written = save_vectors(vectors, path)
    if settings.report:
        shown = {"model": lm.name, "route": "authored answers" if settings.from_examples else "generated answers",
                 **({} if settings.from_examples else
                    {k: v for k, v in asdict(settings).items() if v is not None and k not in ("model", "out")})}
        written.append(render_extraction_report(path.with_suffix(".html"), trait, vectors, pairs, judged, shown))
    return Extracted(vectors, pairs, judged, written)
