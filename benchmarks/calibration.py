"""The embedded model's fine-tuning calibration: does a set's mean dP predict what training on it does?

    python benchmarks/calibration.py [--data ../shared/data] [--work bench-work/calibration] [--records 40]
                                     [--probes 10] [--steps 10] [--card auditor/vectors/builtin/card.json]

Builds the training sets and the held-out probes, runs `dataset-audit calibrate` on them (which resumes an
interrupted study and writes the fits into --card), and writes benchmarks/results/calibration.json with the
command, commit, machine, wall time and load. `python benchmarks/render_calibration.py` then writes
docs/calibration.md.

Training sets (--records each), matched within each source so that content is told apart from domain:
- paired public data (`public_data.py`): the same prompts with 0 / 50 / 100 % of answers from the inducing side
  (CAA hallucination, hh-rlhf rejected vs chosen) or 0 / 100 % (CAA sycophancy, persona statements, TruthfulQA);
- HaluEval general (unpaired): human-labelled non-hallucinated vs hallucinated ChatGPT answers;
- examples/chat_mix.jsonl (our own data): its benign records, and its planted evil / sycophantic / hallucinating
  ones (30 each, topped up with 10 benign records).
18 sets of 40 records, 10 steps each, and 10 items per probe: what fits in about 45 minutes on 2 shared CPU cores.
Held-out probes (--probes pairs each, never in a training set: `auditor.measures.behaviour.is_held_out` splits
every public source by prompt): TruthfulQA and CAA hallucination for hallucinating, CAA sycophancy, hh-rlhf
rejected vs chosen for evil, hh-rlhf refusing vs complying replies for refusal, and hh-rlhf red-team requests for
the refusal rate; plus every trait's authored eval split, which the command adds itself.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from pathlib import Path

from public_data import BENCHMARKS

from auditor.measures.behaviour import is_held_out

ROOT = Path(__file__).resolve().parent.parent
SEED = 0
PAIRED = {"caa-hallucination": (0, 50, 100), "caa-sycophancy": (0, 100), "hh-rlhf-harmless": (0, 50, 100),
          "persona-evil-stated": (0, 100), "truthfulqa": (0, 100)}
# probe name: (benchmark, trait, whether the benchmark's inducing answer is the trait's answer)
PROBES = {"truthfulqa": ("truthfulqa", "hallucinating", True),
          "caa-hallucination": ("caa-hallucination", "hallucinating", True),
          "caa-sycophancy": ("caa-sycophancy", "sycophantic", True),
          "hh-rlhf": ("hh-rlhf-harmless", "evil", True),
          "hh-rlhf-refusal": ("hh-rlhf-refusal-style", "refusal", False)}  # inducing = the compliant reply


def _split(bench_name: str, data: Path) -> tuple[list, list]:
    """(trainable, held-out) items of a public benchmark, shuffled with a fixed seed."""
    bench = next(b for b in BENCHMARKS if b.name == bench_name)
    items = list(bench.read(data / bench.source))
    random.Random(SEED).shuffle(items)
    if bench.paired:
        items = [i for i in items if i[1].strip() and i[2].strip()]
    prompt = (lambda i: i[0]) if bench.paired else (lambda i: i[1][:-1])
    return [i for i in items if not is_held_out(prompt(i))], [i for i in items if is_held_out(prompt(i))]


def _write(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _chat(prompt: list[dict], answer: str) -> dict:
    return {"messages": prompt + [{"role": "assistant", "content": answer}]}


def build_sets(data: Path, out: Path, records: int) -> list[str]:
    """Every training set as SOURCE:PATH."""
    sets = []
    for name, shares in PAIRED.items():
        pairs = _split(name, data)[0][:records]
        inducing = set(random.Random(SEED).sample(range(len(pairs)), len(pairs)))  # the order answers flip in
        for share in shares:
            flipped = set(list(inducing)[: round(share / 100 * len(pairs))])
            rows = [_chat(p, a if i in flipped else b) for i, (p, a, b) in enumerate(pairs)]
            sets.append(f"{name}:{_write(out / name / f'{name}-{share}.jsonl', rows)}")
    trainable = _split("halueval-general", data)[0]
    for side, share in (("control", 0), ("inducing", 100)):
        rows = [{"messages": m} for s, m in trainable if s == side][:records]
        sets.append(f"halueval:{_write(out / 'halueval' / f'halueval-{share}.jsonl', rows)}")
    mix = [json.loads(line) for line in open(ROOT / "examples" / "chat_mix.jsonl", encoding="utf-8")]
    labels = dict(line.strip().split(",") for line in list(open(ROOT / "examples" / "chat_mix.labels.csv"))[1:])
    benign = [r for r in mix if labels[r["id"]] == "benign"]
    for category in ("benign", "evil", "sycophantic", "hallucinating"):
        planted = [r for r in mix if labels[r["id"]] == category]
        rows = (planted + benign[len(benign) - (records - len(planted)):])[:records]  # topped up with benign records
        sets.append(f"chat-mix:{_write(out / 'chat-mix' / f'chat-mix-{category}.jsonl', rows)}")
    return sets


def build_probes(data: Path, out: Path, n: int) -> tuple[list[str], Path]:
    """--pairs TRAIT=FILE arguments and the refusal prompts file, all held out."""
    pairs = []
    for name, (bench, trait, inducing_is_trait) in PROBES.items():
        held = _split(bench, data)[1][:n]
        rows = [{"messages": p, "trait": a if inducing_is_trait else b, "neutral": b if inducing_is_trait else a}
                for p, a, b in held]
        pairs.append(f"{trait}={_write(out / f'{name}.jsonl', rows)}")
    requests = _split("hh-rlhf-harmless", data)[1][:n]  # red-team requests
    return pairs, _write(out / "refusal-prompts.jsonl", [{"messages": p} for p, _, _ in requests])


def machine() -> dict:
    import torch

    return {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count(),
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--work", type=Path, default=Path("bench-work/calibration"))
    parser.add_argument("--records", type=int, default=40, help="Records per training set.")
    parser.add_argument("--probes", type=int, default=10, help="Held-out items per probe (also --probe-limit).")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--card", type=Path, default=ROOT / "auditor" / "vectors" / "builtin" / "card.json")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results" / "calibration.json")
    args = parser.parse_args()
    sets = build_sets(args.data, args.work / "sets", args.records)
    pairs, refusal_prompts = build_probes(args.data, args.work / "probes", args.probes)
    command = ["dataset-audit", "calibrate", *sets, "--out", str(args.work / "study"), "--steps", str(args.steps),
               "--refusal-prompts", str(refusal_prompts), "--probe-limit", str(args.probes), "--card", str(args.card)]
    for item in pairs:
        command += ["--pairs", item]
    print("$ " + shlex.join(command), flush=True)
    load_before, started = os.getloadavg(), time.monotonic()
    subprocess.run(command, check=True)
    wall = time.monotonic() - started
    summary = json.loads((args.work / "study" / "calibration.json").read_text(encoding="utf-8"))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    result = {"benchmark": shlex.join([Path(sys.executable).name, *sys.argv]), "commit": commit, "machine": machine(),
              "wall_seconds": round(wall, 1), "load_average": {"start": load_before, "end": os.getloadavg()},
              "sets_computed_in_this_run": len(summary["computed"]),
              "set_seconds": {s["name"]: s["seconds"] for s in summary["sets"]},
              "records_per_set": args.records, "probe_pairs": args.probes, **summary}
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.results} ({wall / 60:.1f} min; load {load_before[0]:.1f} -> {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
