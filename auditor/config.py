"""The scan settings: one dataclass behind the CLI, config files and the Python API."""

from __future__ import annotations

import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from .errors import AuditError

DEFAULT_TRAITS = ("evil", "sycophantic", "hallucinating")
DEFAULT_THRESHOLD = 0.5
CONFIG_FILE = "dataset-audit.toml"
PYPROJECT_TABLE = "dataset-audit"  # [tool.dataset-audit] in pyproject.toml
CHOICES = {
    "turns": ("last", "all"),
    "device": ("auto", "cpu", "cuda", "mps"),
    "dtype": ("auto", "float32", "bfloat16", "float16"),
    "format": ("text", "github"),
    "engine": ("local", "ray"),
    "generator": ("transformers", "vllm"),
}


@dataclass
class ScanConfig:
    """Everything a scan run is given: what to read, how to score, how to gate and report (see manifest.json)."""

    inputs: list[str] = field(default_factory=list)
    model: str = "default"
    traits: list[str] = field(default_factory=lambda: list(DEFAULT_TRAITS))
    vectors: list[str] = field(default_factory=list)
    out: str = "audit-out"
    base_responses: str = "generate"
    batch_size: int = 8
    limit: int | None = None
    max_tokens: int = 512
    max_new_tokens: int = 64
    turns: str = "last"
    threshold: float = DEFAULT_THRESHOLD
    device: str = "auto"
    dtype: str = "auto"
    trust_remote_code: bool = False
    top: int = 10
    fail_on: list[str] = field(default_factory=list)
    baseline: str | None = None
    format: str = "text"
    junit: str | None = None
    sarif: str | None = None
    shard: str | None = None  # "i/n": score only the records at positions i, i+n, i+2n, ... (see auditor.shard)
    engine: str = "local"
    address: str | None = None  # the Ray cluster to join (--engine ray); None: RAY_ADDRESS, else a local one
    num_gpus_per_worker: float = 0.0
    concurrency: int = 1  # Ray actors per model stage
    generator: str = "transformers"  # what writes base answers: transformers, or vLLM on GPUs


def _types() -> dict[str, object]:
    return typing.get_type_hints(ScanConfig)


def _matches(value: object, hint: object) -> bool:
    """Whether a TOML/Python value fits a ScanConfig field type (int for float is fine, bool for int is not)."""
    if isinstance(hint, types.UnionType):
        return any(_matches(value, arm) for arm in typing.get_args(hint))
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return isinstance(value, list) and all(_matches(v, item) for v in value)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is type(None):
        return value is None
    return isinstance(value, hint)  # type: ignore[arg-type]


_NAMES = {str: ("a string", "strings"), int: ("an integer", "integers"), float: ("a number", "numbers"),
          bool: ("true or false", "booleans")}


def _describe(hint: object) -> str:
    if isinstance(hint, types.UnionType):
        return " or ".join(_describe(arm) for arm in typing.get_args(hint) if arm is not type(None))
    if typing.get_origin(hint) is list:
        return f"a list of {_NAMES[typing.get_args(hint)[0]][1]}"
    return _NAMES[hint][0]


def check_settings(values: Mapping[str, object], origin: str) -> dict[str, object]:
    """`values` keyed by ScanConfig field names (`batch-size` or `batch_size`), checked for name, type and choice.

    Raises AuditError naming `origin` (a file, or the API) and the offending key.
    """
    hints = _types()
    checked = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in hints:
            known = ", ".join(f.name.replace("_", "-") for f in fields(ScanConfig))
            raise AuditError(f"{origin}: unknown setting '{key}' (known: {known})")
        if not _matches(value, hints[name]):
            raise AuditError(f"{origin}: setting '{key}' must be {_describe(hints[name])}, got {value!r}")
        if name in CHOICES and value not in CHOICES[name]:
            raise AuditError(f"{origin}: setting '{key}' must be one of {', '.join(CHOICES[name])}, got {value!r}")
        checked[name] = value
    return checked


def find_config_file(directory: Path) -> Path | None:
    """`dataset-audit.toml` in `directory`, else its `pyproject.toml` if that has a [tool.dataset-audit] table."""
    own, pyproject = directory / CONFIG_FILE, directory / "pyproject.toml"
    if own.is_file():
        return own
    if pyproject.is_file() and PYPROJECT_TABLE in _read_toml(pyproject).get("tool", {}):
        return pyproject
    return None


def _read_toml(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise AuditError(f"{path}: invalid TOML ({exc})") from None
    except OSError as exc:
        raise AuditError(f"{path}: cannot read ({exc.strerror})") from None


def read_config_file(path: Path) -> dict[str, object]:
    """The checked settings of a config file: a `pyproject.toml`'s [tool.dataset-audit] table, or a whole
    `dataset-audit.toml` (any other name is read like dataset-audit.toml)."""
    data = _read_toml(path)
    if path.name == "pyproject.toml":
        if PYPROJECT_TABLE not in data.get("tool", {}):
            raise AuditError(f"{path}: no [tool.{PYPROJECT_TABLE}] table")
        return check_settings(data["tool"][PYPROJECT_TABLE], f"{path} [tool.{PYPROJECT_TABLE}]")
    return check_settings(data, str(path))
