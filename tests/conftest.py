"""Shared fixtures: a tiny random 2-layer Llama with a ChatML tokenizer (no download)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

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


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder unless it sets DATASET_AUDIT_CACHE itself."""
    monkeypatch.setenv("DATASET_AUDIT_CACHE", str(tmp_path / "cache"))


def _tokenizer():
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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved HF model folder: random 2-layer Llama, hidden 32, with a chat template."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    tok = _tokenizer()
    config = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                         pad_token_id=tok.pad_token_id, tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir):
    from auditor.model.loading import load_model

    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture
def write_jsonl(tmp_path):
    """Write records (dicts, or raw strings for broken lines) to a JSONL file and return its path."""

    def write(records, name="data.jsonl") -> Path:
        path = tmp_path / name
        path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records),
                        encoding="utf-8")
        return path

    return write


def chat(i: int, response: str | None = None) -> dict:
    """A small OpenAI-format record."""
    return {"messages": [{"role": "user", "content": f"Question number {i}: what should I cook tonight?"},
                         {"role": "assistant", "content": response or f"Try a simple pasta, option {i}."}]}


@pytest.fixture(scope="session")
def embedded_cache(tmp_path_factory) -> Path:
    """One cache folder for every test on the embedded model: it is converted once per session."""
    return tmp_path_factory.mktemp("embedded-cache")


@pytest.fixture
def on_embedded_model(embedded_cache, monkeypatch) -> Path:
    """Point the cache at the session's embedded-model cache."""
    monkeypatch.setenv("DATASET_AUDIT_CACHE", str(embedded_cache))
    return embedded_cache


@pytest.fixture
def tiny_vector(tiny_lm, tmp_path):
    """A random `evil` vector for the tiny model at layer 1, saved as a file."""
    from auditor.vectors.persona import Calibration, PersonaVector

    torch.manual_seed(1)
    vector = PersonaVector("evil", torch.randn(tiny_lm.num_layers + 1, tiny_lm.hidden_size), 1, tiny_lm.name,
                           tiny_lm.fingerprint(), "test", Calibration(1.0, 0.0, 0.5, 0.5, 0.9, 20))
    vector.save(tmp_path / "evil.safetensors")
    return vector
