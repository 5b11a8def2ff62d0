"""Render benchmarks/results/calibration.json (from benchmarks/calibration.py) as docs/calibration.md.

    python benchmarks/render_calibration.py [--results benchmarks/results/calibration.json] [--out docs/calibration.md]

Tables of r per trait, measure and mode with their intervals next to the paper's numbers, one inline SVG
scatter plot per trait (mean dP in generate mode against the change in the trait's authored preference), and a
plain statement of which traits the embedded model's dP predicts.
"""

from __future__ import annotations

import argparse
import json
from html import escape
from pathlib import Path

from auditor.evaluation.calibration import Fit

ROOT = Path(__file__).resolve().parent.parent
# Chen et al. 2025 (Persona Vectors), Pearson r of dataset-level projection difference vs trait expression after
# fine-tuning, 24 training sets; raw projection = without the base answer (our closest mode: none).
PAPER = {"evil": {"Qwen2.5-7B": 0.84, "Llama-3.1-8B": 0.95, "Qwen2.5-7B raw projection": 0.78},
         "sycophantic": {"Qwen2.5-7B": 0.75, "Llama-3.1-8B": 0.92, "Qwen2.5-7B raw projection": 0.54},
         "hallucinating": {"Qwen2.5-7B": 0.41, "Llama-3.1-8B": 0.59, "Qwen2.5-7B raw projection": 0.64}}
PLOT_MEASURE, PLOT_MODE = "preference", "generate"
COLOURS = ["#1b6ca8", "#d1495b", "#66a182", "#edae49", "#8d5a97", "#00798c", "#30638e", "#a05a2c", "#555555"]
W, H, PAD = 420, 300, 48


def _r(f: dict) -> str:
    return f"{f['r']:+.2f} [{f['r_low']:+.2f}, {f['r_high']:+.2f}]"


def _rho(f: dict) -> str:
    return f"{f['rho']:+.2f} [{f['rho_low']:+.2f}, {f['rho_high']:+.2f}]"


def fits_table(result: dict) -> list[str]:
    lines = ["| trait | measure | mode | r [95%] | ρ [95%] | within source | a (per unit dP) | b (drift) | s "
             "| predicts |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for trait, fits in result["fits"].items():
        for f in sorted(fits, key=lambda f: (f["measure"], result["modes"].index(f["mode"]))):
            lines.append(f"| {trait} | {f['measure']} | {f['mode']} | {_r(f)} | {_rho(f)} | "
                         f"{f['within_source'][0]}/{f['within_source'][1]} | {f['a']:+.3g} | {f['b']:+.3g} | "
                         f"{f['s']:.3g} | {'**yes**' if Fit(**f).predicts else 'no'} |")
    return lines


def paper_table(result: dict) -> list[str]:
    modes = result["modes"]
    lines = ["| trait | " + " | ".join(f"ours, {m}: shift" for m in modes) + " | "
             + " | ".join(f"ours, {m}: preference" for m in modes) + " | paper Qwen2.5-7B | paper Llama-3.1-8B | "
             "paper Qwen raw projection |", "|---|" + "---:|" * (2 * len(modes) + 3)]
    for trait, fits in result["fits"].items():
        by = {(f["measure"], f["mode"]): f for f in fits}
        cells = [_r(by[m, mode]) if (m, mode) in by else "–" for m in ("shift", "preference") for mode in modes]
        paper = PAPER.get(trait, {})
        lines.append(f"| {trait} | " + " | ".join(cells) + " | "
                     + " | ".join(f"{paper[k]:.2f}" if k in paper else "–"
                                  for k in ("Qwen2.5-7B", "Llama-3.1-8B", "Qwen2.5-7B raw projection")) + " |")
    return lines


def scatter(result: dict, trait: str) -> str:
    """Mean dP (generate) against the change in the trait's authored preference, one colour per source."""
    fit = next((f for f in result["fits"].get(trait, []) if f["measure"] == PLOT_MEASURE and f["mode"] == PLOT_MODE),
               None)
    points = [(s["mean_dp"][trait][PLOT_MODE], s["change"][trait][PLOT_MEASURE], s["source"], s["name"])
              for s in result["sets"] if PLOT_MEASURE in s["change"].get(trait, {})]
    if not points:
        return ""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys + [0.0]), max(ys + [0.0])
    x0, x1 = x0 - 0.05 * (x1 - x0 or 1), x1 + 0.05 * (x1 - x0 or 1)
    y0, y1 = y0 - 0.08 * (y1 - y0 or 1), y1 + 0.08 * (y1 - y0 or 1)

    def px(x: float) -> float:
        return PAD + (x - x0) / (x1 - x0) * (W - PAD - 10)

    def py(y: float) -> float:
        return H - PAD - (y - y0) / (y1 - y0) * (H - PAD - 10)

    sources = sorted({p[2] for p in points})
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W + 170}" height="{H}" role="img" '
             f'aria-label="{escape(trait)}: mean dP against preference change" font-family="sans-serif" '
             'font-size="11">',
             f'<rect x="{PAD}" y="10" width="{W - PAD - 10}" height="{H - PAD - 10}" fill="none" stroke="#999"/>',
             f'<line x1="{PAD}" x2="{W - 10}" y1="{py(0):.1f}" y2="{py(0):.1f}" stroke="#ccc" stroke-dasharray="3,3"/>']
    if fit:
        parts.append(f'<line x1="{px(x0):.1f}" y1="{py(fit["a"] * x0 + fit["b"]):.1f}" x2="{px(x1):.1f}" '
                     f'y2="{py(fit["a"] * x1 + fit["b"]):.1f}" stroke="#333"/>')
    for x, y, source, name in points:
        colour = COLOURS[sources.index(source) % len(COLOURS)]
        parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="4" fill="{colour}">'
                     f'<title>{escape(name)}: dP {x:+.2f}, change {y:+.4f}</title></circle>')
    for i, source in enumerate(sources):
        colour = COLOURS[i % len(COLOURS)]
        parts.append(f'<circle cx="{W + 8}" cy="{20 + 16 * i}" r="4" fill="{colour}"/>'
                     f'<text x="{W + 16}" y="{24 + 16 * i}">{escape(source)}</text>')
    parts += [f'<text x="{PAD}" y="{H - PAD + 14}">{x0:+.2f}</text>',
              f'<text x="{W - 10}" y="{H - PAD + 14}" text-anchor="end">{x1:+.2f}</text>',
              f'<text x="{(PAD + W) / 2}" y="{H - 12}" text-anchor="middle">mean {escape(trait)} dP (generate)</text>',
              f'<text x="{PAD - 4}" y="{py(y1) + 4:.1f}" text-anchor="end">{y1:+.3f}</text>',
              f'<text x="{PAD - 4}" y="{py(y0):.1f}" text-anchor="end">{y0:+.3f}</text>',
              f'<text x="12" y="{H / 2}" transform="rotate(-90 12 {H / 2})" text-anchor="middle">change in '
              'preference (nats/token)</text>', "</svg>"]
    return "\n".join(parts)


def caveats(result: dict) -> list[str]:
    """What a reader must weigh with the verdicts: how many fits were tried, and the within-source order."""
    fits = [f for trait_fits in result["fits"].values() for f in trait_fits]
    right = sum(f["within_source"][0] for f in fits)
    total = sum(f["within_source"][1] for f in fits)
    return [f"{len(fits)} fits were tried (trait × measure × mode); at a 95% level about {len(fits) / 40:.0f} of "
            "them would have an interval above 0 by chance, so a fit whose interval only just clears 0 is weak "
            "evidence on its own. Within-source order over all fits: "
            f"{right} of {total} pairs right ({right / max(total, 1):.0%}; 50% is chance). Where a trait's order is "
            "near half, its pooled r comes from differences between sources (domains) rather than from the trait "
            "content of the data."]


def verdicts(result: dict) -> list[str]:
    lines = []
    for trait, fits in result["fits"].items():
        good = [f for f in fits if Fit(**f).predicts]
        if good:
            lines.append(f"- **{trait}: predicted** by " + "; ".join(
                f"{f['measure']} in {f['mode']} mode (r {_r(f)}, within source {f['within_source'][0]}/"
                f"{f['within_source'][1]})" for f in good) + ".")
        elif not fits:
            lines.append(f"- **{trait}: not fitted** (see below).")
        else:
            best = max(fits, key=lambda f: f["r"])
            lines.append(f"- **{trait}: not predicted**: no measure's r interval lies above 0 "
                         f"(highest: {best['measure']}, {best['mode']}: r {_r(best)}).")
    return lines


def mode_comparison(result: dict) -> list[str]:
    """Whether the prompt-token reference (App. I) and cheap mode predict better than generate mode, fit by fit."""
    by = {(t, f["measure"], f["mode"]): f for t, fits in result["fits"].items() for f in fits}
    lines = []
    for mode in ("prompt", "none"):
        pairs = [(by[k], by[k[:2] + (mode,)]) for k in by if k[2] == "generate" and k[:2] + (mode,) in by]
        higher = sum(other["r"] > gen["r"] for gen, other in pairs)
        lines.append(f"- `{mode}` against `generate`: higher r in {higher} of {len(pairs)} trait × measure fits; "
                     f"predicts in {sum(Fit(**o).predicts for _, o in pairs)} of them, `generate` in "
                     f"{sum(Fit(**g).predicts for g, _ in pairs)}.")
    return lines


def render(result: dict) -> str:
    recipe, load = result["recipe"], result["load_average"]
    machine = result["machine"]
    sets = result["sets"]
    out = ["# Does dP predict what fine-tuning does? The embedded model's calibration", "",
           "Generated by `benchmarks/render_calibration.py` from `benchmarks/results/calibration.json`; "
           "do not edit by hand.", "",
           "The paper's central claim (Chen et al. 2025, §6, App. G–I) is that a training set's dataset-level "
           "projection difference predicts how far fine-tuning on it moves the model. `dataset-audit calibrate` "
           "tests that claim on any model. This page shows the result for the embedded model (SmolLM2-135M-Instruct). "
           "Its fits are in the shipped card (`auditor/vectors/builtin/card.json`, block `calibration`).", "",
           "## What was run", "",
           f"- {len(sets)} training sets from {len({s['source'] for s in sets})} sources, "
           f"{result['records_per_set']} records each (below). Each was scored on the base model (mean dP "
           "per trait in three modes: `generate`, `none` (cheap mode), and `prompt`, the paper's App. I "
           "reference, where the last prompt token's projection replaces the base answer).",
           f"- One fine-tuning recipe for every set: LoRA r {recipe['r']}, alpha {recipe['alpha']}, lr "
           f"{recipe['lr']:g}, {recipe['steps']} steps of {recipe['batch_size']} examples, seed {recipe['seed']}, "
           f"at most {recipe['max_tokens']} tokens per example.",
           "- The change each run caused, fine-tuned minus base, per trait: the activation shift "
           "(`dataset-audit shift`, activation units); the preference for held-out trait answers over neutral "
           "ones (mean per-token log-likelihood difference, nats/token) on the trait's authored eval split "
           "(`preference`) and on held-out public pairs (`preference:<name>`, "
           f"{result['probe_pairs']} pairs each); for refusal also the refusal rate on held-out red-team requests "
           "(`refusal_rate`, share; rule in `auditor/measures/behaviour.py`). No held-out item is in a "
           "training set.",
           "- Fit per trait, measure and mode: change = a · mean dP + b; Pearson r and Spearman ρ with "
           "bootstrap 95% intervals over the sets; within source: over every two sets of one source, how often "
           "the one with the higher dP changed more; b is the drift any fine-tuning causes; s is the larger of "
           "the residual SD and the leave-one-source-out RMSE, so prediction intervals cover the spread between "
           "sources. A trait counts as predicted when a fit's r interval lies above 0.", "",
           f"Command: `{result['command']}`", "",
           f"Benchmark: `{result['benchmark']}` at commit `{result['commit'][:12]}`; wall time "
           f"{result['wall_seconds'] / 60:.1f} min for the {result['sets_computed_in_this_run']} sets computed in "
           f"that run on {machine['cpus']} CPU cores"
           + (f" and a {machine['gpu']}" if machine["gpu"] else " (no GPU)")
           + f", shared: load average {load['start'][0]:.1f} at the start, {load['end'][0]:.1f} at the end. "
           f"Per set: {min(result['set_seconds'].values()):.0f}–{max(result['set_seconds'].values()):.0f} s.", "",
           "## Which traits the embedded model's dP predicts", "", *verdicts(result), "", *caveats(result), "",
           "## r next to the paper's", "",
           "Pearson r of mean dP against the change, with bootstrap 95% intervals; the paper's figures are "
           "point estimates over 24 sets (trait expression judged by GPT-4.1-mini) on 7–8B models.", "",
           *paper_table(result), "", "Modes compared (the paper reports the prompt-token reference at r 0.93 / 0.58 / "
           "0.69 on Qwen; ship it as a scan mode only if it predicts better here):", "", *mode_comparison(result), "",
           "## Every fit", "", *fits_table(result), "",
           "## Scatter plots", "",
           f"Mean dP ({PLOT_MODE} mode) against the change in the trait's authored preference; the line is the fit.",
           ""]
    for trait in result["fits"]:
        svg = scatter(result, trait)
        if svg:
            out += [f"### {trait}", "", svg, ""]
    out += ["## The training sets", "", "| set | source | records | "
            + " | ".join(f"{t} dP (generate)" for t in result["fits"]) + " |",
            "|---|---|---:|" + "---:|" * len(result["fits"])]
    for s in sets:
        out.append(f"| {s['name']} | {s['source']} | {s['records']} | "
                   + " | ".join(f"{s['mean_dp'][t]['generate']:+.2f}" for t in result["fits"]) + " |")
    if result["unfitted"]:
        out += ["", "Not fitted: " + "; ".join(result["unfitted"]) + "."]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "calibration.json")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "calibration.md")
    args = parser.parse_args()
    args.out.write_text(render(json.loads(args.results.read_text(encoding="utf-8"))), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
