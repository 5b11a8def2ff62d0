"""Shared fixtures: a tiny random 2-layer Llama with a ChatML tokenizer (no download), JSONL files, and the
embedded model's cache. The helpers they use, and tests import, are in tests/helpers.py."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.helpers import tiny_llama, tiny_tokenizer, write_jsonl


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    """Every test gets its own cache folder unless it sets DATASET_AUDIT_CACHE itself."""
    monkeypatch.setenv("DATASET_AUDIT_CACHE", str(tmp_path / "cache"))


@pytest.fixture(autouse=True)
def _float32_on_every_cpu(monkeypatch):
    """`dtype` auto depends on the CPU (model.precision); tests run alike everywhere, as on a CPU without bf16.
    Tests of that rule patch it back."""
    from auditor.model import precision

    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A saved HF model folder: random 2-layer Llama, hidden 32, with a chat template."""
    torch.manual_seed(0)
    tok = tiny_tokenizer()
    model = tiny_llama(tok)
    path = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_lm(tiny_model_dir):
    from auditor.model.loading import load_model

    return load_model(str(tiny_model_dir), device="cpu")


@pytest.fixture
def jsonl_file(tmp_path):
    """`jsonl_file(records, name="data.jsonl")`: write records (dicts, or raw strings for broken lines) to a JSONL
    file in the test's folder and return its path."""

    def write(records, name="data.jsonl") -> Path:
        path = tmp_path / name
        write_jsonl(path, records)
        return path

    return write


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
