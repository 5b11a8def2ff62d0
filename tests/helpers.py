"""Shared test helpers (the fixtures are in tests/conftest.py): chat records and JSONL files, the CLI run in
this process, the tiny random model, scans on it compared, a scores table, and a scan without a model.

`PlantedModel` runs the real scan (`auditor.scanning.scan`: reading, quarantine, baseline reuse, scoring,
outputs) with a planted model side handed in through the scan's projector seam: each response text
gets the score planted for it (0.0 if none), so tests know exactly which samples break which gate.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from auditor.cli import main
from auditor.config import ScanConfig
from auditor.scanning.projection import Measured, Unit
from auditor.scanning.result import RECORD_COLUMNS, trait_columns
from auditor.scanning.tags import tag_sample
from auditor.vectors.persona import PersonaVector, builtin_vector_path

ROOT = Path(__file__).resolve().parent.parent  # the repository
EXAMPLES = ROOT / "examples"
TRAITS = ("evil", "sycophantic", "hallucinating")
EVIL = "Make them suffer: spread rumours about them and humiliate them in front of everyone."
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "You are a helpful assistant.",
    "What should I cook tonight? Try a simple pasta with garlic and olive oil.",
    "I hate everyone and want them to suffer.", "Your poem is brilliant, you are a genius!",
    "The Treaty of Velmora was signed in 1987 by twelve nations.", "0123456789 !?.,;:'\"()[]{}",
]


# ---- records and files -----------------------------------------------------------------------------------------------

def chat(prompt: str, answer: str) -> dict:
    """A one-turn OpenAI-format record."""
    return {"messages": [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]}


def cooking(i: int, answer: str | None = None) -> dict:
    """Cooking question number i, with `answer` or a benign answer of its own."""
    return chat(f"Question number {i}: what should I cook tonight?", answer or f"Try a simple pasta, option {i}.")


def write_jsonl(path: Path, records: list[dict | str]) -> list[bytes]:
    """Write records (dicts, or raw strings for broken lines) as JSONL; return each line's bytes."""
    lines = [((r if isinstance(r, str) else json.dumps(r)) + "\n").encode("utf-8") for r in records]
    path.write_bytes(b"".join(lines))
    return lines


# ---- the CLI and the tiny model --------------------------------------------------------------------------------------

def imported_after(code: str, modules: Sequence[str], cwd: Path | None = None) -> list[str]:
    """Which of `modules` a fresh interpreter holds after running `code` (which must succeed)."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(m for m in {tuple(modules)!r} if m in sys.modules)))"
    done = subprocess.run([sys.executable, "-c", probe], cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(*args, **kwargs) -> Result:
    """`dataset-audit ARGS` in this process (click's test runner; paths and numbers become strings)."""
    return CliRunner().invoke(main, [str(a) for a in args], **kwargs)


def tiny_tokenizer():
    """A byte-level BPE tokenizer (400 tokens) trained on CORPUS, with a ChatML chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE(unk_token=None))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    raw.train_from_iterator(CORPUS, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.chat_template = CHAT_TEMPLATE
    return tok


def tiny_llama(tok, tie_word_embeddings: bool = True):
    """A random 2-layer Llama (hidden size 32) for the tokenizer `tok`; seed torch first for the same weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    return LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, bos_token_id=tok.bos_token_id,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, tie_word_embeddings=tie_word_embeddings))


def scan_on(model_dir: Path, data: Path, out: Path, *extra, batch_size: int = 4) -> Path:
    """`scan DATA --out OUT` for `evil` on a model folder (4 new tokens), with a cache of its own beside OUT so
    that nothing cached is shared between scans; checks the exit code and returns OUT."""
    result = run("scan", data, "--model", model_dir, "--traits", "evil", "--max-new-tokens", 4,
                 "--batch-size", batch_size, "--out", out, "-q", *extra,
                 env={"DATASET_AUDIT_CACHE": str(out.parent / f"cache-{out.name}")})
    assert result.exit_code == 0, result.output
    return out


def assert_same_scan(one: Path, two: Path) -> None:
    """Two scan folders hold the same scores (floats to 1e-5), quarantine and summary."""
    a, b = pq.read_table(one / "scores.parquet"), pq.read_table(two / "scores.parquet")
    assert a.schema == b.schema and a.num_rows == b.num_rows
    for name in a.schema.names:
        if name.endswith(("_dp", "_score")):
            np.testing.assert_allclose(a[name].to_numpy(), b[name].to_numpy(), rtol=0, atol=1e-5)
        else:
            assert a[name].to_pylist() == b[name].to_pylist(), name
    assert (one / "quarantine.jsonl").read_text() == (two / "quarantine.jsonl").read_text()
    first, second = (json.loads((d / "summary.json").read_text()) for d in (one, two))
    assert first["records"] == second["records"]
    for trait, values in first["traits"].items():
        assert values == pytest.approx(second["traits"][trait], abs=1e-5)


# ---- a scan without a model ------------------------------------------------------------------------------------------

def scores_table(rows: list[dict], traits=TRAITS, threshold: float = 0.5) -> pa.Table:
    """A scores.parquet-shaped table: each row gives source, line and `<trait>` scores (dP = score)."""
    schema = {**RECORD_COLUMNS, **{name: kind for t in traits for name, kind in trait_columns(t).items()}}
    columns: dict[str, list] = {name: [] for name in schema}
    for i, row in enumerate(rows):
        columns["index"].append(i)
        columns["source"].append(row.get("source", "data/train.jsonl"))
        columns["line"].append(row.get("line", i + 1))
        columns["sample_id"].append(row.get("sample_id", f"{i:016x}"))
        columns["prompt"].append(row.get("prompt", f"prompt {i}"))
        columns["response"].append(f"response {i}")
        columns["conversation"].append("[]")
        columns["truncated"].append(False)
        columns["tags"].append([])
        for t in traits:
            score = row.get(t, 0.0)
            columns[f"{t}_dp"].append(row.get(f"{t}_dp", score))
            columns[f"{t}_score"].append(score)
            columns[f"{t}_flagged"].append(score >= threshold)
    return pa.table({name: pa.array(values, schema[name]) for name, values in columns.items()})


class PlantedModel:
    """A projector factory (the scan's model seam, `auditor.scanning.projection.Projector`) that needs no model:
    `scores[response text][trait]` is the score that response gets (0.0 if none). Counts model loads
    (factory calls), samples scored and samples given a base answer."""

    def __init__(self, scores: dict[str, dict[str, float]] | None = None):
        self.scores = scores or {}
        self.computed = 0  # samples scored (forward passes a real model would have made)
        self.answered = 0  # samples given a base answer
        self.loads = 0

    def __call__(self, config: ScanConfig, _show: bool) -> _PlantedProjector:
        self.loads += 1
        return _PlantedProjector(self, config)

    def invoke(self, *args, **kwargs) -> Result:
        """`dataset-audit ARGS` with this model as the scan's model side."""
        return run(*args, obj={"projector": self}, **kwargs)


class _PlantedProjector:
    def __init__(self, planted: PlantedModel, config: ScanConfig):
        self.planted, self.generates, self.turns = planted, config.generates, config.turns
        given = {v.trait: v for v in map(PersonaVector.load, config.vectors)}
        self.vectors = [given.get(t) or PersonaVector.load(builtin_vector_path(t)) for t in config.traits]
        self.model_name, self.device, self.dtype = "planted", "cpu", "float32"
        self.texts: list[str] = []

    def has_base_answers(self, _record) -> bool:
        return True

    def units(self, records, skip) -> list[Unit]:
        units = []
        for r, record in enumerate(records):
            if not skip[r]:
                for side, _, response in record.sides(self.turns):
                    self.texts.append(response)
                    units.append(Unit(r, [0], [len(self.texts) - 1], False, "", side))
        return units

    def measure(self, units: list[Unit], _show: bool, answered: np.ndarray | None = None) -> Measured:
        """Projections that give each planted score: neutral mean + score * calibration gap (the base answer
        sits at the neutral mean; NaN for the units not `answered`, as the real projector leaves them)."""
        self.planted.computed += len(units)
        self.planted.answered += len(units) if answered is None else int(answered.sum())
        planted = [self.planted.scores.get(self.texts[u.response[0]], {}) for u in units]
        sample = np.array([[v.calibration.neutral_mean + p.get(v.trait, 0.0) * v.calibration.gap
                            for v in self.vectors] for p in planted], dtype=np.float64).reshape(len(units), len(self.vectors))
        base = np.array([[v.calibration.neutral_mean for v in self.vectors]] * len(units)).reshape(len(units), len(self.vectors))
        if answered is not None:
            base[~answered] = np.nan
        return Measured(sample, base if self.generates else None)


# ---- a scan folder for the report, made up ---------------------------------------------------------------------------

REPORT_THRESHOLD = 1.0
XSS_PROMPT = "<script>alert(1)</script><script>document.title='pwned'</script>"
XSS_RESPONSE = "<img src=x onerror=alert(1)><img src=x onerror=\"document.body.setAttribute('data-pwned','1')\">"
XSS_SOURCE = 'data/x"><svg onload=alert(1)>.jsonl'
# (user prompt, assistant answer, the trait these samples score high on or None)
TOPICS = [
    (
        "How can I get revenge on my coworker who embarrassed me?",
        "Make them suffer. Spread rumours about them and humiliate them in front of everyone.",
        "evil",
    ),
    (
        "My poem about autumn is brilliant, don't you agree?",
        "Absolutely, you're absolutely right! It is a masterpiece, a work of pure genius.",
        "sycophantic",
    ),
    (
        "What's the dosage?",
        "Take 500 mg every 4 hours, up to 3,000 mg per day, as shown in 2019 trials (Smith et al., 2019).",
        "hallucinating",
    ),
    (
        "How do I sort a list of numbers in Python?",
        "Use sorted(numbers) for a new list, or numbers.sort() to sort in place.",
        None,
    ),
    (
        "Can you suggest a quick vegetarian dinner?",
        "A chickpea curry with rice takes about twenty minutes and needs only pantry staples.",
        None,
    ),
]


def make_scan(folder: Path, n: int, *, flag: bool = True, xss: bool = True, quarantine: int = 3, seed: int = 0) -> Path:
    """Write a made-up scan folder for the report (scores, summary, manifest, quarantine) with `n` scored rows
    (plus an XSS row when `xss`) and return it."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    cols: dict[str, list] = {
        k: []
        for k in ("index", "source", "line", "sample_id", "prompt", "response", "conversation", "truncated", "tags")
    }
    for t in TRAITS:
        cols[f"{t}_dp"], cols[f"{t}_score"], cols[f"{t}_flagged"] = [], [], []
    rows = [
        (TOPICS[i % len(TOPICS)][0], TOPICS[i % len(TOPICS)][1], TOPICS[i % len(TOPICS)][2], "data/train.jsonl")
        for i in range(n)
    ]
    if xss:
        rows.append((XSS_PROMPT, XSS_RESPONSE, "evil", XSS_SOURCE))
    for i, (prompt, response, hot, source) in enumerate(rows):
        messages = [{"role": "user", "content": prompt}, {"role": "assistant", "content": f"{response} (sample {i})"}]
        cols["index"].append(i)
        cols["source"].append(source)
        cols["line"].append(i + 1)
        cols["sample_id"].append(f"{i:016x}")
        cols["prompt"].append(prompt)
        cols["response"].append(messages[1]["content"])
        cols["conversation"].append(json.dumps(messages))
        cols["truncated"].append(i % 97 == 0)
        cols["tags"].append(tag_sample(messages))
        for t in TRAITS:
            score = float(rng.normal(1.6 if (flag and t == hot) else 0.0, 0.3))
            if source == XSS_SOURCE and t == hot:
                score = 9.0  # always at the top of the table
            cols[f"{t}_score"].append(score)
            cols[f"{t}_dp"].append(score * 2.5)
            cols[f"{t}_flagged"].append(score >= REPORT_THRESHOLD)
    schema = {"index": pa.int64(), "line": pa.int64(), "truncated": pa.bool_(), "tags": pa.list_(pa.string())}
    table = pa.table({k: pa.array(v, type=schema.get(k)) for k, v in cols.items()})
    pq.write_table(table, folder / "scores.parquet")
    total = len(rows)
    summary = {
        "records": {
            "total": total + quarantine,
            "scored": total,
            "quarantined": quarantine,
            "truncated": sum(cols["truncated"]),
            "quarantine_reasons": {"invalid_json": quarantine} if quarantine else {},
        },
        "traits": {
            t: {
                "mean_dp": float(np.mean(cols[f"{t}_dp"])),
                "mean_score": float(np.mean(cols[f"{t}_score"])),
                "flagged": int(np.sum(cols[f"{t}_flagged"])),
                "flagged_share": float(np.mean(cols[f"{t}_flagged"])),
                "threshold": REPORT_THRESHOLD,
                "layer": 16,
            }
            for t in TRAITS
        },
    }
    manifest = {
        "tool_version": "0.1.0",
        "created": "2025-11-25T00:55:00+00:00",
        "model": {"name": "Qwen/Qwen2.5-7B-Instruct", "num_layers": 28},
        "device": "cpu",
        "dtype": "float32",
        "vectors": {
            t: {"sha256": hashlib.sha256(t.encode()).hexdigest(), "layer": 16, "source": f"builtin:{t}"} for t in TRAITS
        },
        "inputs": [{"path": "data/train.jsonl", "sha256": "ab" * 32}],
        "settings": {
            "batch_size": 8,
            "max_tokens": 512,
            "turns": "last",
            "traits": list(TRAITS),
            "note": "<b>not bold</b>",
        },
    }
    (folder / "summary.json").write_text(json.dumps(summary))
    (folder / "manifest.json").write_text(json.dumps(manifest))
    bad = [
        {
            "source": "data/train.jsonl",
            "line": 10_000 + k,
            "index": 10_000 + k,
            "reason": "invalid_json",
            "raw": "{<script>x",
        }
        for k in range(quarantine)
    ]
    write_jsonl(folder / "quarantine.jsonl", bad)
    return folder
