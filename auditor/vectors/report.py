"""What an extraction shows: the per-layer table on the terminal, and a self-contained HTML report."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path

from rich.table import Table

from ..files import atomic_write_text
from ..html import template_environment
from ..text import excerpt
from ..traits import SPLITS, Trait
from ..version import __version__
from .contrastive import KEPT, VARIANTS, AnswerPair
from .persona import PersonaVector

TEMPLATE = "extraction.html.j2"
EXAMPLES_SHOWN = 6
ANSWER_CHARS = 1200
WEAK_AUROC = 0.6
COLORS = {"response_avg": "#2c5cc5", "prompt_avg": "#2f855a", "prompt_last": "#b7791f"}


def layer_table(vectors: dict[str, PersonaVector]) -> Table:
    """Held-out separation and norm per layer for the main vector, AUROC for the others; the chosen layer marked."""
    main, *others = vectors.values()
    table = Table(title=f"{main.trait}: held-out separation per layer ({main.method})", title_justify="left")
    for name in ("layer", "AUROC", "Cohen's d", "norm", *(f"AUROC {v.method.split('_diff')[0]}" for v in others)):
        table.add_column(name, justify="right")
    for s in main.layer_stats:
        layer, chosen = s["layer"], s["layer"] == main.layer
        table.add_row(f"{layer}{' ◀' if chosen else ''}", f"{s['auroc']:.3f}", f"{s['d']:.2f}", f"{s['norm']:.2f}",
                      *(f"{v.layer_stats[layer]['auroc']:.3f}" for v in others), style="bold" if chosen else None)
    return table


def chosen_line(vector: PersonaVector) -> str:
    cal = vector.calibration
    return (f"{vector.trait}: layer {vector.layer} of {len(vector.layer_stats) - 1}, held-out AUROC {cal.auroc:.3f}, "
            f"Cohen's d {vector.layer_stats[vector.layer]['d']:.2f}, calibration gap {cal.gap:.3f} (n={cal.n})")


def weak_warning(vector: PersonaVector) -> str | None:
    """A warning when the vector barely tells held-out trait answers from the others, else None."""
    cal = vector.calibration
    if cal.gap <= 0 or cal.auroc < WEAK_AUROC:
        return (f"warning: at layer {vector.layer} the held-out AUROC is {cal.auroc:.2f} and the calibration gap "
                f"{cal.gap:.3f}: this vector barely separates the trait, so scan scores from it are unreliable")
    return None


def render_extraction_report(path: Path, trait: Trait, vectors: dict[str, PersonaVector], pairs: list[AnswerPair],
                             judge: str, settings: dict[str, object]) -> Path:
    """Write the report to `path`: layers, pair verdicts and example answers (authored ones without pairs)."""
    main_name, main = next(iter(vectors.items()))
    html = template_environment().get_template(TEMPLATE).render(
        version=__version__,
        created=dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        trait=trait,
        model=main.model_name,
        judge=judge,
        settings=[(k, str(v)) for k, v in settings.items()],
        vectors=[_vector_card(name, v) for name, v in vectors.items()],
        chosen=chosen_line(main),
        warning=weak_warning(main),
        charts=[_chart(vectors, "auroc", "held-out AUROC", 0.5, 1.0, 0.5),
                _chart({main_name: main}, "d", f"Cohen's d (held out, {main_name})", None, None, 0.0)],
        layers=[{"layer": s["layer"], "auroc": s["auroc"], "d": s["d"], "norm": s["norm"],
                 "chosen": s["layer"] == main.layer} for s in main.layer_stats],
        verdicts=_verdicts(pairs),
        examples=_pair_examples(pairs, trait) if pairs else _authored_examples(trait),
    )
    atomic_write_text(path, html)
    return path


def _vector_card(name: str, vector: PersonaVector) -> dict:
    return {"name": name, "tokens": VARIANTS.get(name, "answer tokens"), "method": vector.method,
            "layer": vector.layer, "auroc": vector.calibration.auroc, "gap": vector.calibration.gap,
            "color": COLORS.get(name, "#4a5568"), "source": Path(vector.source).name if vector.source else ""}


def _verdicts(pairs: list[AnswerPair]) -> list[dict]:
    """Per split: how many pairs there were, were kept, and were dropped for each reason."""
    rows = []
    for split in SPLITS:
        counts = Counter(p.verdict for p in pairs if p.split == split)
        if counts:
            rows.append({"split": split, "total": sum(counts.values()), "kept": counts.pop(KEPT, 0),
                         "dropped": sorted(counts.items(), key=lambda kv: -kv[1])})
    return rows


def _answer(text: str) -> str:
    return excerpt(text, ANSWER_CHARS, flatten=False)


def _pair_examples(pairs: list[AnswerPair], trait: Trait) -> list[dict]:
    """Some kept and some dropped extraction pairs, one per question."""
    extract = [p for p in pairs if p.split == "extract"]
    chosen = (_first_per_question([p for p in extract if p.kept])[:EXAMPLES_SHOWN]
              + _first_per_question([p for p in extract if not p.kept])[: EXAMPLES_SHOWN // 2])
    return [{"question": p.question, "verdict": p.verdict, "kept": p.kept,
             "pos": {"system": trait.instructions[p.instruction]["pos"], "text": _answer(p.texts[0]),
                     "trait": p.scores.get("trait_pos"), "coherence": p.scores.get("coherence_pos")},
             "neg": {"system": trait.instructions[p.instruction]["neg"], "text": _answer(p.texts[1]),
                     "trait": p.scores.get("trait_neg"), "coherence": p.scores.get("coherence_neg")}}
            for p in chosen]


def _first_per_question(pairs: list[AnswerPair]) -> list[AnswerPair]:
    first: dict[str, AnswerPair] = {}
    for pair in pairs:
        first.setdefault(pair.question, pair)
    return list(first.values())


def _authored_examples(trait: Trait) -> list[dict]:
    return [{"question": e.question, "verdict": "authored", "kept": True,
             "pos": {"system": "", "text": _answer(e.trait), "trait": None, "coherence": None},
             "neg": {"system": "", "text": _answer(e.neutral), "trait": None, "coherence": None}}
            for e in trait.examples_in("extract")[:EXAMPLES_SHOWN]]


def _chart(vectors: dict[str, PersonaVector], key: str, title: str, lo: float | None, hi: float | None,
           reference: float) -> dict:
    """SVG geometry of one statistic per layer, one line per vector, the main vector's layer marked."""
    width, height, left, right, top, bottom = 560.0, 200.0, 40.0, 12.0, 12.0, 26.0
    values = {name: [s[key] for s in v.layer_stats] for name, v in vectors.items()}
    flat = [x for series in values.values() for x in series] + [reference]
    lo = min(flat) if lo is None else min(lo, *flat)
    hi = max(flat) if hi is None else max(hi, *flat)
    hi = hi if hi > lo else lo + 1.0
    layers = len(next(iter(values.values())))
    x = lambda layer: left + layer / max(layers - 1, 1) * (width - left - right)
    y = lambda v: top + (hi - v) / (hi - lo) * (height - top - bottom)
    main = next(iter(vectors.values()))
    step = max(1, round(layers / 12))
    return {
        "title": title, "width": width, "height": height, "left": left, "right": width - right,
        "top": top, "base": height - bottom,
        "lines": [{"name": name, "color": COLORS.get(name, "#4a5568"),
                   "points": " ".join(f"{x(l):.1f},{y(v):.1f}" for l, v in enumerate(series)),
                   "dots": [(x(l), y(v), f"{name} layer {l}: {v:.3f}") for l, v in enumerate(series)]}
                  for name, series in values.items()],
        "reference_y": y(reference),
        "y_ticks": [(y(v), f"{v:.2f}") for v in (lo, (lo + hi) / 2, hi)],
        "x_ticks": [(x(l), str(l)) for l in range(0, layers, step)],
        "chosen_x": x(main.layer),
        "chosen": main.layer,
    }
