"""`dtype` auto: bfloat16 on a CPU only with native bf16 and shipped evidence for the embedded model."""

import json

import pytest
import torch

from auditor.model import precision


@pytest.fixture
def evidence_says(tmp_path, monkeypatch):
    def write(holds: bool | None, native: bool) -> None:
        path = tmp_path / "precision.json"
        path.write_text(json.dumps({} if holds is None else {"bfloat16": {"use": holds}}))
        monkeypatch.setattr(precision, "EVIDENCE", path)
        monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: native)
    return write


@pytest.mark.parametrize(("holds", "native", "is_default", "expected"), [
    (True, True, True, torch.bfloat16),     # evidence + native bf16 + the embedded model
    (True, False, True, torch.float32),     # no bf16 instructions: bf16 would be slower
    (False, True, True, torch.float32),     # measured: the scores did not hold, or it was not faster
    (None, True, True, torch.float32),      # no evidence at all
    (True, True, False, torch.float32),     # evidence is for the embedded model only
])
def test_auto_on_cpu_follows_the_evidence(evidence_says, holds, native, is_default, expected):
    evidence_says(holds, native)
    assert precision.pick_dtype(torch.device("cpu"), "auto", is_default) == expected


def test_explicit_dtype_and_gpus(evidence_says):
    evidence_says(False, False)
    assert precision.pick_dtype(torch.device("cpu"), "bfloat16") == torch.bfloat16
    assert precision.pick_dtype(torch.device("cpu"), "float32", True) == torch.float32
    assert precision.pick_dtype(torch.device("cuda")) == torch.bfloat16


def test_unreadable_evidence_means_none(tmp_path):
    (tmp_path / "precision.json").write_text("{not json")
    assert precision.evidence(tmp_path / "precision.json") == {}
    assert not precision.bf16_pays(True, tmp_path / "precision.json")
