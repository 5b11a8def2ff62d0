"""Public labelled datasets (`../shared/data`, see each folder's SOURCE.md) as pairs of chat JSONL files.

Each benchmark is a trait plus two files, "inducing" (responses that show the trait) and "control".
Where the source pairs two answers to one prompt, both files hold the same prompts in the same order,
so the base model answers each prompt once. Items are drawn at random with a fixed seed.
"""

from __future__ import annotations

import csv
import gzip
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from auditor.evaluation.evaluate import CONTROL, INDUCING
from auditor.measures.behaviour import REFUSAL_STYLE

Pair = tuple[list[dict], str, str]  # prompt messages, inducing response, control response


@dataclass(frozen=True)
class Benchmark:
    name: str
    trait: str
    source: str  # folder under the data root
    describe: str
    read: Callable[[Path], Iterator]  # yields Pairs, or (INDUCING or CONTROL, messages) for unpaired data
    paired: bool = True


def _user(text: str) -> list[dict]:
    return [{"role": "user", "content": text.strip()}]


def _persona(root: Path, stated: bool) -> Iterator[Pair]:
    """Dark-triad / harm-endorsing statements: the answer that endorses the statement vs the one that rejects it.

    The answer is a fixed sentence ("Yes, I would say that."), or with `stated` a yes repeats the statement.
    """
    for path in sorted((root / "persona").glob("*.jsonl")):
        if path.stem == "desire-to-persuade-people-to-be-less-harmful-to-others":
            continue  # its trait-matching answers point away from evil
        for line in open(path, encoding="utf-8"):
            item = json.loads(line)
            if item["label_confidence"] >= 0.9:
                yes = f"Yes. {item['statement']}" if stated else "Yes, I would say that."
                sentence = {"Yes": yes, "No": "No, I would not say that."}
                yield (_user(item["question"]), sentence[item["answer_matching_behavior"].strip()],
                       sentence[item["answer_not_matching_behavior"].strip()])


def _hh_messages(transcript: str) -> list[dict]:
    parts = re.split(r"\n\n(Human|Assistant): ", transcript)
    return [{"role": "user" if role == "Human" else "assistant", "content": text.strip()}
            for role, text in zip(parts[1::2], parts[2::2])]


def _hh_rlhf(root: Path) -> Iterator[Pair]:
    """Red-team conversations: the response judged more harmful (rejected) vs less harmful (chosen)."""
    with gzip.open(root / "harmless-base" / "test.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            rejected, chosen = _hh_messages(item["rejected"]), _hh_messages(item["chosen"])
            if rejected[:-1] == chosen[:-1] and rejected[-1]["role"] == "assistant" and rejected[-1]["content"]:
                yield rejected[:-1], rejected[-1]["content"], chosen[-1]["content"]


def _hh_refusal_style(root: Path) -> Iterator[Pair]:
    """Red-team conversations where the less harmful reply (chosen) refuses in so many words and the more harmful
    one (rejected) does not: the compliant reply vs the refusal."""
    for prompt, rejected, chosen in _hh_rlhf(root):
        if REFUSAL_STYLE.search(chosen) and not REFUSAL_STYLE.search(rejected):
            yield prompt, rejected, chosen


def _option(question: str, letter: str) -> str:
    """'(A) A great deal' for letter '(A)': the option with its text, not the bare letter."""
    match = re.search(r"\n\s*" + re.escape(letter) + r"\s*([^\n]*)", question)
    return f"{letter} {match.group(1).strip()}" if match else letter


def _caa_sycophancy(root: Path) -> Iterator[Pair]:
    """A user states an opinion and asks a two-option question: the option agreeing with them vs the other."""
    for item in json.load(open(root / "generate" / "sycophancy" / "generate_dataset.json", encoding="utf-8")):
        q = item["question"]
        yield (_user(q), _option(q, item["answer_matching_behavior"].strip()),
               _option(q, item["answer_not_matching_behavior"].strip()))


def _caa_hallucination(root: Path) -> Iterator[Pair]:
    """A question built on a fictional premise: the answer that goes along with it vs the one that corrects it."""
    with open(root / "raw" / "hallucination" / "alluding_questioning.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            yield _user(row["fiction_question"]), row["fiction_accepetance"], row["fiction_rejection"]


def _truthfulqa(root: Path) -> Iterator[Pair]:
    """Questions that invite misconceptions: the best incorrect answer vs the best answer."""
    with open(root / "TruthfulQA.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            yield _user(row["Question"]), row["Best Incorrect Answer"], row["Best Answer"]


def _halueval_general(root: Path) -> Iterator[tuple[str, list[dict]]]:
    """Real ChatGPT answers to Alpaca queries, human-labelled: hallucinated ("yes") vs not ("no")."""
    for line in open(root / "data" / "general_data.json", encoding="utf-8"):
        item = json.loads(line)
        side = {"yes": INDUCING, "no": CONTROL}.get(item["hallucination"])
        if side and item["chatgpt_response"].strip():
            yield side, _user(item["user_query"]) + [{"role": "assistant", "content": item["chatgpt_response"]}]


BENCHMARKS = [
    Benchmark("persona-evil", "evil", "anthropic-evals-persona",
              "9 evil-leaning persona files, label_confidence >= 0.9; 'Yes, I would say that.' vs 'No, ...' "
              "on the trait's side", partial(_persona, stated=False)),
    Benchmark("persona-evil-stated", "evil", "anthropic-evals-persona",
              "as persona-evil, but a yes repeats the statement ('Yes. <statement>')", partial(_persona, stated=True)),
    Benchmark("hh-rlhf-harmless", "evil", "hh-rlhf", "harmless-base test: rejected vs chosen last turn", _hh_rlhf),
    Benchmark("hh-rlhf-refusal", "refusal", "hh-rlhf",
              "harmless-base test: rejected (more harmful, so more compliant) vs chosen last turn", _hh_rlhf),
    Benchmark("hh-rlhf-refusal-style", "refusal", "hh-rlhf",
              "harmless-base test, pairs whose chosen reply refuses in so many words and whose rejected one does not: "
              "compliant vs refusing", _hh_refusal_style),
    Benchmark("caa-sycophancy", "sycophantic", "caa-datasets",
              "generate_dataset.json: agreeing option vs the other option", _caa_sycophancy),
    Benchmark("caa-hallucination", "hallucinating", "caa-datasets",
              "alluding_questioning.csv: fiction_accepetance vs fiction_rejection", _caa_hallucination),
    Benchmark("truthfulqa", "hallucinating", "truthfulqa", "Best Incorrect Answer vs Best Answer", _truthfulqa),
    Benchmark("halueval-general", "hallucinating", "halueval",
              "general_data.json: human-labelled hallucinated vs not (different prompts)", _halueval_general,
              paired=False),
]


def _write(path: Path, records: list[list[dict]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps({"messages": m}, ensure_ascii=False) + "\n" for m in records),
                    encoding="utf-8")
    return path


def convert(bench: Benchmark, data_root: Path, work: Path, per_side: int, seed: int = 0) -> tuple[Path, Path]:
    """Write `per_side` random inducing and control records of `bench` under `work/<name>/`; returns both paths."""
    items = list(bench.read(data_root / bench.source))
    random.Random(seed).shuffle(items)  # a smaller subset is a prefix of a larger one: scores are reused
    if bench.paired:
        chosen = [pair for pair in items if pair[1].strip() and pair[2].strip()][:per_side]  # both answers scoreable
        inducing = [prompt + [{"role": "assistant", "content": a}] for prompt, a, _ in chosen]
        control = [prompt + [{"role": "assistant", "content": b}] for prompt, _, b in chosen]
    else:
        inducing, control = ([m for side, m in items if side == s][:per_side] for s in (INDUCING, CONTROL))
    folder = work / f"{bench.name}-{per_side}"
    return _write(folder / "inducing.jsonl", inducing), _write(folder / "control.jsonl", control)
