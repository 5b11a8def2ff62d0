"""Worked example: fine-tune the embedded model on the planted-evil samples of the bundled example, with
and without preventative steering, and compare what training did along the evil direction.

    python examples/preventative_steering.py [--work DIR] [--coef 1.5] [--epochs 3] [--lr 2e-4]

Both runs go through the real CLI (`dataset-audit train`, then `dataset-audit shift`). For each model
(base, plain fine-tune, steered fine-tune) it also generates answers to the evil trait's 20 evaluation
questions and scores them along the evil vector in the base model, on the vector's calibration scale
(0 = the authored neutral answers, 1 = the authored evil answers). Finished training runs are reused, so
an interrupted example resumes. About 20-30 minutes on 2 CPU cores; figures are in the README.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def evil_subset(work: Path) -> Path:
    labels = {row["id"]: row["category"] for row in csv.DictReader(open(HERE / "chat_mix.labels.csv"))}
    path = work / "evil.jsonl"
    lines = [line for line in open(HERE / "chat_mix.jsonl", encoding="utf-8")
             if labels.get(json.loads(line).get("id")) == "evil"]
    path.write_text("".join(lines), encoding="utf-8")
    return path


def cli(*args: object) -> None:
    print("$ dataset-audit " + " ".join(map(str, args)), flush=True)
    subprocess.run(["dataset-audit", *map(str, args)], check=True)


def train(data: Path, out: Path, args: argparse.Namespace, steer: list[str]) -> None:
    if (out / "training.json").is_file():
        print(f"reusing {out}")
        return
    cli("train", data, "--out", out, "--lr", args.lr, "--epochs", args.epochs, "--max-tokens", 256, "-q", *steer)


def shift(tuned: Path) -> float:
    cli("shift", "--finetuned", tuned, "--traits", "evil", "--json", tuned / "shift.json", "-q")
    return json.loads((tuned / "shift.json").read_text())[0]["shift"]


def answer_scores(models: dict[str, str]) -> dict[str, float]:
    """Mean evil score of each model's answers to the evil evaluation questions (measured in the base model)."""
    import numpy as np

    from auditor.measures.shift import question_prompts
    from auditor.model.activations import response_means
    from auditor.model.generation import GenerationSettings, generate_batch
    from auditor.model.loading import load_model
    from auditor.vectors.resolve import vector_for

    base = load_model("default")
    vector = vector_for(base, "evil")
    prompts = question_prompts(base, "evil")
    scores = {}
    for name, spec in models.items():
        lm = base if spec == "default" else load_model(spec)
        answers = [a for i in range(0, len(prompts), 10)
                   for a in generate_batch(lm, prompts[i:i + 10], GenerationSettings(max_new_tokens=64))]
        means = response_means(base, list(zip(prompts, answers)), [vector.layer])[:, 0]
        projection = means @ vector.unit().numpy()
        scores[name] = float(np.mean((projection - vector.calibration.neutral_mean) / vector.calibration.gap))
        print(f"{name}: {base.tokenizer.decode(answers[0], skip_special_tokens=True)[:160]!r}")
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("preventative-steering-out"))
    parser.add_argument("--coef", type=float, default=1.5)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=2e-4)
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    data = evil_subset(args.work)
    plain, steered = args.work / "plain", args.work / f"steered-{args.coef:g}"
    train(data, plain, args, [])
    train(data, steered, args, ["--steer", f"evil={args.coef:g}"])
    shifts = {"plain": shift(plain), "steered": shift(steered)}
    scores = answer_scores({"base": "default", "plain": str(plain), "steered": str(steered)})
    rows = [("base", None, scores["base"]), ("plain fine-tune", shifts["plain"], scores["plain"]),
            (f"steered fine-tune (evil x{args.coef:g})", shifts["steered"], scores["steered"])]
    print("\n| model | evil shift (last prompt token, layer 16) | evil score of answers |\n|---|---|---|")
    for name, moved, score in rows:
        print(f"| {name} | {'-' if moved is None else f'{moved:+.3f}'} | {score:+.3f} |")
    (args.work / "results.json").write_text(json.dumps({"shift": shifts, "answer_scores": scores,
                                                        "settings": vars(args) | {"work": str(args.work)}},
                                                       indent=2) + "\n")
    ok = shifts["steered"] < shifts["plain"]
    print(f"\nsteering {'reduced' if ok else 'did NOT reduce'} the evil shift")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
