import pytest
import torch

from auditor.errors import AuditError
from auditor.vectors.persona import Calibration, PersonaVector


def _vector(layers=2, hidden=32, fingerprint=None):
    return PersonaVector(trait="evil", directions=torch.randn(layers + 1, hidden), layer=1, model_name="tiny",
                         model_fingerprint=fingerprint or [1.0, 2.0, 3.0], method="test",
                         calibration=Calibration(2.0, 0.5, 0.3, 0.2, 0.95, 20))


def test_round_trip_through_safetensors(tmp_path):
    vector = _vector()
    vector.save(tmp_path / "v.safetensors")
    loaded = PersonaVector.load(tmp_path / "v.safetensors")
    torch.testing.assert_close(loaded.directions, vector.directions)
    assert loaded.metadata() == vector.metadata()
    assert loaded.calibration.gap == pytest.approx(1.5)
    assert loaded.source == str(tmp_path / "v.safetensors")


def test_unit_vector_has_norm_one():
    assert _vector().unit().norm().item() == pytest.approx(1.0)


def test_vector_for_another_model_is_refused():
    with pytest.raises(AuditError, match="made for tiny"):
        _vector().check_model("big", hidden_size=64, num_layers=2, fingerprint=[1.0, 2.0, 3.0])
    with pytest.raises(AuditError, match="weights differ"):
        _vector().check_model("other", hidden_size=32, num_layers=2, fingerprint=[3.0, -2.0, 1.0])
    _vector().check_model("tiny-bf16", hidden_size=32, num_layers=2, fingerprint=[1.001, 2.0, 3.0])


def test_not_a_vector_file_is_a_clear_error(tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"garbage")
    with pytest.raises(AuditError, match="not a dataset-audit vector file"):
        PersonaVector.load(tmp_path / "x.safetensors")
    with pytest.raises(AuditError, match="not found"):
        PersonaVector.load(tmp_path / "missing.safetensors")
