"""Render every figure in README.md and docs/*.md from the files that measured it.

A figure lives between marker comments, `<!-- render:NAME -->` ... `<!-- /render:NAME -->`, and is written
only by this script, from benchmarks/results/*.json or the shipped detection card
(auditor/vectors/builtin/card.json), with a stamp naming the file, the command, the commit and the machine
that the results file records. A results file that does not record them is said to be from before
provenance was kept, with what it does record (the machine, each section's finishing time); nothing is
filled in from elsewhere.

    python scripts/render_docs.py           # rewrite the blocks in place
    python scripts/render_docs.py --check   # exit 1 when a block differs from what its results say

A results file may carry `"provenance": {"command": ..., "commit": ..., "machine": ...}` at its top level or
in a section (a section's wins); `machine` may also be a top-level object, as benchmarks/performance.py writes.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from auditor.evaluation.card import MEANING, RULE, Card, builtin_card, card_table  # noqa: E402  (the verdict rule)

BUILTIN_CARD = Path(str(builtin_card()))  # the card the package ships

RESULTS = ROOT / "benchmarks" / "results"
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"(<!-- render:(?P<name>[a-z0-9-]+) -->\n)(?P<body>.*?)(<!-- /render:(?P=name) -->)", re.S)
OPENING = re.compile(r"<!-- render:([a-z0-9-]+) -->")
MODES = ("generate", "none")


def rel(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


@dataclass(frozen=True)
class Results:
    """One benchmark results file."""

    path: Path
    data: dict

    @classmethod
    def load(cls, name: str) -> Results:
        path = RESULTS / f"{name}.json"
        return cls(path, json.loads(path.read_text(encoding="utf-8")))

    def section(self, name: str) -> dict:
        return self.data["sections"][name]

    def stamp(self, *sections: str) -> str:
        """Where a figure comes from: file and sections, command, commit, machine."""
        top = self.data.get("provenance", {})
        found = [{**top, **self.section(s).get("provenance", {})} for s in sections] or [top]
        command = "; ".join(sorted({p["command"] for p in found if p.get("command")}))
        commit = ", ".join(sorted({p["commit"] for p in found if p.get("commit")}))
        machines = list(dict.fromkeys(describe_machine(p["machine"]) for p in found if p.get("machine")))
        if not machines and self.data.get("machine"):
            machines = [describe_machine(self.data["machine"])]
        where = f"`{rel(self.path)}`"
        if sections:
            finished = [f"`{s}`" + (f" finished {t}" if (t := self.section(s).get("finished_at")) else "")
                        for s in sections]
            where += ", section " + ", ".join(finished)
        parts = [f"From {where}."]
        if not command and not commit:
            parts.append("Command and commit: recorded before provenance was kept.")
        else:
            parts.append(f"Command: `{command}`." if command else "Command: recorded before provenance was kept.")
            parts.append(f"Commit: {commit}." if commit else "Commit: recorded before provenance was kept.")
        parts.append(f"Machine: {'; '.join(machines)}." if machines else "Machine: not recorded.")
        return "*" + " ".join(parts) + "*"


def describe_machine(machine: dict | str) -> str:
    if isinstance(machine, str):
        return machine
    cores = machine.get("cpu_affinity") or machine.get("cpu_count")
    words = [machine.get("cpu_model", "CPU") + (f", {cores} cores" if cores else "")]
    words += [f"{key} {machine[key]}" for key in ("device", "torch", "transformers", "python") if machine.get(key)]
    if machine.get("torch_threads"):
        words.append(f"{machine['torch_threads']} torch threads")
    return ", ".join(words)


def shown(text: str) -> str:
    """A recorded command as a user of this repository would type it: the bundled examples by their relative
    path, not by the path they had on the measuring machine."""
    return re.sub(r"\S*/(examples/)", r"\1", text)


def table(header: list[str], rows: list[list], align: str | None = None) -> list[str]:
    return ["| " + " | ".join(header) + " |", align or "|" + "---|" * len(header),
            *("| " + " | ".join(str(c) for c in row) + " |" for row in rows)]


def seconds(s: float) -> str:
    return f"{s:.0f} s" if s >= 100 else f"{s:.1f} s" if s >= 1 else f"{s:.2f} s"


# ---- the shipped detection card -------------------------------------------------------------------------

def card_stamp() -> str:
    return (f"*From `{rel(BUILTIN_CARD)}` (the detection benchmark's results, written by "
            "`benchmarks/detection.py --card`). Command, commit and machine: recorded before provenance was kept; "
            f"model {Card.load(BUILTIN_CARD).model}.*")


def render_trust() -> list[str]:
    """Per trait: its verdict in each mode and its benchmarks' AUROC (generate / none)."""
    card = Card.load(BUILTIN_CARD)
    rows = []
    for trait, entry in sorted(card.traits.items()):
        verdicts = [card.verdict(trait, mode) for mode in MODES]
        verdict = verdicts[0] if len(set(verdicts)) == 1 else " / ".join(verdicts) + " (generate / cheap)"
        benches = "; ".join(name + " " + " / ".join(f"{modes[m]['auroc']:.2f}" for m in MODES if m in modes)
                            for name, modes in sorted(entry["benchmarks"].items()))
        rows.append([f"`{trait}`" + (" (flagged below)" if entry.get("flags") == "below" else ""),
                     f"**{verdict}**", benches])
    return table(["trait", "verdict", "public benchmarks: AUROC generate / cheap mode"], rows) + ["", card_stamp()]


def render_card_detail() -> list[str]:
    """Every row of the card: per trait, benchmark and mode, AUROC, mean-dP difference and whether detected."""
    card = Card.load(BUILTIN_CARD)
    rows = [list(row) for row in card_table(card)]
    return table(["trait", "benchmark", "mode", "AUROC", "mean-dP difference [95% CI]", "detected"], rows,
                 "|---|---|---|---:|---:|---|") + ["", card_stamp()]


def render_verdicts() -> list[str]:
    """The verdict rule and what each verdict means, in the code's words."""
    return [f"Rule: {RULE}.", "", *table(["verdict", "what it means"], [[f"**{v}**", m] for v, m in MEANING.items()])]


# ---- benchmarks/results/performance.json ----------------------------------------------------------------

def render_example_scan() -> list[str]:
    """The one timing of a scan of the bundled example."""
    perf = Results.load("performance")
    r = perf.section("rescan")
    return [f"A default scan of the bundled example ({r['records']} records, three traits, base answers "
            f"generated, model already converted, nothing cached) took **{seconds(r['full_scan_s'])}** on the "
            "development machine below; the first run adds the one-time model conversion "
            f"({seconds(perf.section('load')['cold_load_s'])}).", "", perf.stamp("rescan", "load")]


def render_perf_jobs() -> list[str]:
    perf = Results.load("performance")
    r, g, load, mem = (perf.section(s) for s in ("rescan", "gate", "load", "memory"))
    rows = [[f"scan of the bundled example ({r['records']} records, generate mode, three traits, nothing cached)",
             seconds(r["full_scan_s"])],
            [f"the same scan after {r['changed_records']} of the {r['records']} records changed",
             seconds(r["changed_rescan_s"])],
            ["the same scan again, nothing changed", seconds(r["unchanged_rescan_s"])],
            [f"CI gate: `scan --baseline` of a {g['baseline_records']:,}-record scan with {g['new_records']} new "
             "records, process start to exit code", seconds(g["seconds_to_verdict"])],
            *([[f"the same gate with `--base-sample {g['base_sample']['n']}` (same decisions: "
                f"{'yes' if g['base_sample']['same_decisions'] else 'NO'})",
                seconds(g["base_sample"]["seconds_to_verdict"])]] if "base_sample" in g else []),
            ["first model load (one-time GGUF conversion)", seconds(load["cold_load_s"])],
            ["model load in a fresh process, imports included", seconds(load["warm_load_s"])]]
    rows += [[f"`{shown(c['command'])}`, fresh process (median of {perf.section('startup')['runs']})",
              seconds(c["median_s"])] for c in perf.section("startup")["commands"]]
    rows += [[f"peak RSS, `scan --base-responses none` of {s['records']:,} records", f"{s['peak_rss_gb']:.2f} GB"]
             for s in mem["sizes"]]
    return table(["job", "measured"], rows, "|---|---:|") + [
        "", perf.stamp("rescan", "gate", "load", "startup", "memory")]


def render_perf_generation() -> list[str]:
    perf = Results.load("performance")
    g = perf.section("generation")
    rows = [[v["variant"], v["prompts"], v["seconds"], v["new_tokens_per_s"], f"{v['same_as_reference']:.0%}"]
            for v in g["variants"]]
    return [f"Up to {g['max_new_tokens']} new tokens per answer; the machine's limit is "
            f"{g['limit']['new_tokens_per_s']} new tokens/s ({g['limit']['gflop_per_new_token']} GFLOP per token at "
            f"`torch.mm`'s {g['limit']['mm_gflops_per_s']} GFLOP/s, measured in the same run).", "",
            *table(["variant", "prompts", "seconds", "new tokens/s", "same answers as the reference"], rows,
                   "|---|---:|---:|---:|---:|"), "", perf.stamp("generation")]


def render_perf_scan() -> list[str]:
    perf = Results.load("performance")
    s = perf.section("scan")
    return [f"Generate-mode scan of {s['records']} records, up to {s['max_new_tokens']} new tokens: ours "
            f"{seconds(s['ours_s'])}, the reference loop {seconds(s['reference_s'])} (**{s['speedup']}x**); same "
            f"answers for {s['same_answers']:.0%} of the records, dP within {s['max_abs_dp_diff_where_same']:.1e} of "
            "the reference's where they match." + _bf16_scan(s), "", perf.stamp("scan")]


def _bf16_scan(s: dict) -> str:
    if "bf16" not in s:
        return ""
    b = s["bf16"]
    return (f" The same scan with the model in bfloat16: {seconds(b['ours_s'])} (**{b['speedup']}x**); "
            f"{b['same_answers_as_float32']:.0%} of its answers equal float32's, dP r {b['dp_pearson_r_vs_float32']} "
            f"against float32 (this CPU {'has' if b['native_bf16_cpu'] else 'lacks'} native bf16 instructions)."
            + _int8_scan(s))


def _int8_scan(s: dict) -> str:
    if "int8" not in s:
        return ""
    q = s["int8"]
    return (f" With every linear layer dynamically quantised to int8: {seconds(q['ours_s'])} (**{q['speedup']}x**); "
            f"{q['same_answers_as_float32']:.0%} of its answers equal float32's, dP r {q['dp_pearson_r_vs_float32']}.")


def render_perf_targets() -> list[str]:
    from benchmarks.performance.report import verdicts  # the targets as they stand, checked again on the figures

    perf = Results.load("performance")
    perf.data["targets"] = verdicts(perf.data)
    met = {True: "yes", False: "**no**", None: "not measured"}
    rows = [[shown(t["metric"]), t["value"], t["target"], met[t["pass"]]] for t in perf.data["targets"]]
    return table(["metric", "measured", "target", "met"], rows) + ["", perf.stamp(*perf.data["sections"])]


def render_perf_scoring() -> list[str]:
    perf = Results.load("performance")
    s = perf.section("scoring")
    ref = s["variants"][0]["tokens_per_s"]
    rows = [[v["variant"], v["samples"], v["tokens_per_s"], f"{v['tokens_per_s'] / ref:.2f}x",
             f"{v['max_abs_diff_vs_reference']:.1e}", v["note"]] for v in s["variants"]]
    return [f"{s['samples']} example samples ({s['tokens']:,} tokens), layers {s['layers']}:", "",
            *table(["variant", "samples", "tokens/s", "vs reference", "max abs diff", "note"], rows,
                   "|---|---:|---:|---:|---:|---|"), "", perf.stamp("scoring")]


def render_perf_flops() -> list[str]:
    perf = Results.load("performance")
    f = perf.section("flops")
    rows = [[f"{b['batch']} x {b['seq']}", b["gflops_per_s"], f"{b['fraction_of_mm_peak']:.0%}", b["tokens_per_s"]]
            for b in f["batches"]]
    return [f"{f['layers_run']} of {f['of_layers']} layers run; `torch.mm` peak {f['mm_peak_gflops_per_s']} GFLOP/s "
            f"with {f['threads']} threads; counted: {f['counted']}.", "",
            *table(["batch x seq", "GFLOP/s", "of mm peak", "tokens/s"], rows, "|---|---:|---:|---:|"), "",
            perf.stamp("flops")]


def render_perf_memory() -> list[str]:
    perf = Results.load("performance")
    m = perf.section("memory")
    rows = [[f"{s['records']:,}", s["peak_rss_gb"], s["seconds"], s["records_per_s"]] for s in m["sizes"]]
    return [f"`{m['command']}`: growth {m['growth_gb_per_10k_records']} GB per 10k records.", "",
            *table(["records", "peak RSS, GB", "seconds", "records/s"], rows, "|---:|---:|---:|---:|"), "",
            perf.stamp("memory")]


# ---- benchmarks/results/precision.json --------------------------------------------------------------------

def render_precision() -> list[str]:
    """float32 against bfloat16 on the CPU: the checks `--dtype auto` follows."""
    prec = Results.load("precision")
    b = prec.data["bfloat16"]
    rows = [[c["check"], c["trait"], f"{c['n'][0]} / {c['n'][1]}",
             f"{c['auroc_float32'][0]:.3f} [{c['auroc_float32'][1]:.3f}, {c['auroc_float32'][2]:.3f}]",
             f"{c['auroc_bfloat16']:.3f}", "yes" if c["holds"] else "**no**", f"{c['flag_agreement']:.1%}",
             f"{c['dp_pearson_r']:.3f}"] for c in prec.data["checks"]]
    failed = ", ".join(b["failed"])
    shipped = json.loads((ROOT / "auditor" / "model" / "precision.json").read_text(encoding="utf-8"))["bfloat16"]
    if not b["holds"]:
        verdict = f"so `--dtype auto` keeps float32 on every CPU (failed: {failed})"
    elif shipped["use"]:
        verdict = (f"and it ran {shipped['speedup']}x as fast ({shipped['speed_from']}), so `--dtype auto` runs the "
                   "embedded model in bfloat16 on CPUs with native bf16 instructions")
    else:
        verdict = (f"but it ran only {shipped['speedup']}x as fast as float32 ({shipped['speed_from']}; at least "
                   "1.1x is needed), so `--dtype auto` keeps float32 on CPUs (`--dtype bfloat16` still chooses it)")
    return [f"bfloat16 holds in {b['held']} of {b['checks']} checks, {verdict}. Rule: {b['rule']}.", "",
            *table(["check", "trait", "n (trait / control)", "AUROC float32 [95%]", "AUROC bfloat16", "holds",
                    "same flags", "dP r"], rows, "|---|---|---:|---|---:|---|---:|---:|"), "", prec.stamp()]


RENDERERS: dict[str, Callable[[], list[str]]] = {
    "trust": render_trust,
    "card-detail": render_card_detail,
    "verdicts": render_verdicts,
    "example-scan": render_example_scan,
    "perf-jobs": render_perf_jobs,
    "perf-generation": render_perf_generation,
    "perf-scan": render_perf_scan,
    "perf-targets": render_perf_targets,
    "precision": render_precision,
    "perf-scoring": render_perf_scoring,
    "perf-flops": render_perf_flops,
    "perf-memory": render_perf_memory,
}


def render_text(text: str, where: str) -> tuple[str, list[str]]:
    """The document with every block rendered afresh, and the names of the blocks that changed; an unknown or
    unclosed block is an error."""
    closed = {m["name"] for m in BLOCK.finditer(text)}
    for name in OPENING.findall(text):
        if name not in RENDERERS:
            raise SystemExit(f"error: {where}: unknown render block '{name}' (known: {', '.join(RENDERERS)})")
        if name not in closed:
            raise SystemExit(f"error: {where}: render block '{name}' has no closing <!-- /render:{name} -->")
    changed = []

    def fresh(m: re.Match) -> str:
        body = "\n".join(RENDERERS[m["name"]]()) + "\n"
        if body != m["body"]:
            changed.append(m["name"])
        return m[1] + body + m[4]

    return BLOCK.sub(fresh, text), changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a block is stale")
    args = parser.parse_args(argv)
    stale = []
    for path in DOCUMENTS:
        text, changed = render_text(path.read_text(encoding="utf-8"), rel(path))
        stale += [f"{rel(path)}: {name}" for name in changed]
        if changed and not args.check:
            path.write_text(text, encoding="utf-8")
    if args.check:
        for block in stale:
            print(f"stale: {block} differs from its results (run python scripts/render_docs.py)", file=sys.stderr)
        return 1 if stale else 0
    print("\n".join(f"rendered: {block}" for block in stale) or "every block is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
