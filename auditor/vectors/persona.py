"""Persona vectors: a direction per layer for one trait, stored as safetensors with JSON metadata."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save

from ..errors import AuditError
from ..files import atomic_write_bytes

BUILTIN_DIR = Path(__file__).parent / "builtin"
_META_KEY = "dataset_audit"


@dataclass
class Calibration:
    """Projections of held-out trait and neutral answers at the chosen layer (on the unit vector)."""

    trait_mean: float
    neutral_mean: float
    trait_std: float
    neutral_std: float
    auroc: float
    n: int

    @property
    def gap(self) -> float:
        return self.trait_mean - self.neutral_mean


@dataclass
class PersonaVector:
    """A trait direction at every layer ([layers + 1, hidden]; row l is the output of block l-1)."""

    trait: str
    directions: torch.Tensor
    layer: int
    model_name: str
    model_fingerprint: list[float]
    method: str
    calibration: Calibration
    layer_stats: list[dict] = field(default_factory=list)
    flags: str = "above"  # "below": samples are a concern when they sit below the model's own answers
    source: str = ""  # the file it was loaded from or saved to; not stored in the file

    def unit(self, layer: int | None = None) -> torch.Tensor:
        v = self.directions[self.layer if layer is None else layer].float()
        return v / v.norm().clamp_min(1e-12)

    def metadata(self) -> dict:
        """What the file stores beside the directions (`flags` only when "below": older files read the same)."""
        return {k: v for k, v in asdict(self).items()
                if k not in ("directions", "source") and not (k == "flags" and v == "above")}

    def save(self, path: Path) -> None:
        blob = save({"directions": self.directions.float().contiguous().cpu()},
                    metadata={_META_KEY: json.dumps(self.metadata())})
        atomic_write_bytes(Path(path), blob)
        self.source = str(path)

    @classmethod
    def load(cls, path: Path) -> "PersonaVector":
        try:
            with safe_open(str(path), framework="pt") as fh:
                meta = json.loads((fh.metadata() or {})[_META_KEY])
                directions = fh.get_tensor("directions")
        except FileNotFoundError as exc:
            raise AuditError(f"{path}: vector file not found") from exc
        except (KeyError, json.JSONDecodeError, OSError, Exception) as exc:  # safetensors raises its own types
            raise AuditError(f"{path}: not a dataset-audit vector file ({exc})") from exc
        meta["calibration"] = Calibration(**meta["calibration"])
        return cls(directions=directions, source=str(path), **meta)

    def check_model(self, model_name: str, hidden_size: int, num_layers: int, fingerprint: list[float]) -> None:
        """Refuse a vector made for a different model."""
        rows, hidden = self.directions.shape
        if hidden != hidden_size or rows != num_layers + 1:
            raise AuditError(f"the {self.trait} vector was made for {self.model_name} "
                             f"({rows - 1} layers, hidden {hidden}), not for {model_name} "
                             f"({num_layers} layers, hidden {hidden_size})")
        a, b = torch.tensor(self.model_fingerprint), torch.tensor(fingerprint)
        if torch.nn.functional.cosine_similarity(a, b, dim=0) < 0.99:
            raise AuditError(f"the {self.trait} vector was made for {self.model_name}, whose weights differ "
                             f"from {model_name}; extract vectors for this model (dataset-audit extract)")


def builtin_vector_path(trait: str) -> Path:
    return BUILTIN_DIR / f"{trait}.safetensors"
