"""Untrusted content and files: no remote code by default, no pickles, outputs stay in --out."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.errors import AuditError
from auditor.model import loading as models
from auditor.vectors.persona import PersonaVector

AUDITOR = Path(models.__file__).parent


def test_remote_code_is_off_unless_asked(tiny_model_dir, tmp_path, monkeypatch):
    """(A sharded copy: a plain one-file checkpoint is read without from_pretrained, and without code of its own.)"""
    seen = []
    from transformers import AutoModelForCausalLM, AutoTokenizer

    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(tiny_model_dir).save_pretrained(sharded, max_shard_size="20KB")
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(sharded)

    for cls in (AutoModelForCausalLM, AutoTokenizer):
        original = cls.from_pretrained.__func__

        def spy(klass, *args, _original=original, **kwargs):
            seen.append(kwargs.get("trust_remote_code"))
            return _original(klass, *args, **kwargs)

        monkeypatch.setattr(cls, "from_pretrained", classmethod(spy))
    models.load_model(str(sharded))
    assert seen == [False, False]
    seen.clear()
    models.load_model(str(sharded), trust_remote_code=True)
    assert seen == [True, True]


def test_no_pickle_loading_anywhere_in_the_package():
    for path in AUDITOR.rglob("*.py"):
        text = path.read_text()
        for needle in ("import pickle", "torch.load(", "pickle.load", "allow_pickle=True", "trust_remote_code=True"):
            assert needle not in text, f"{path.name}: {needle}"


def test_a_pickle_posing_as_a_vector_is_refused(tmp_path):
    import pickle

    (tmp_path / "evil.safetensors").write_bytes(pickle.dumps({"directions": [1, 2, 3]}))
    with pytest.raises(AuditError, match="not a dataset-audit vector file"):
        PersonaVector.load(tmp_path / "evil.safetensors")


def test_scan_writes_only_inside_out(tiny_model_dir, tmp_path, monkeypatch):
    """Sample content and ids that look like paths never choose where the scan writes."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    record = {"id": "../../escape", "messages": [{"role": "user", "content": "../../../etc/passwd"},
                                                 {"role": "assistant", "content": "/tmp/pwned.html"}]}
    Path("data.jsonl").write_text(json.dumps(record) + "\n{bad\n")
    result = CliRunner().invoke(main, ["scan", "data.jsonl", "--model", str(tiny_model_dir), "--traits", "evil",
                                       "--base-responses", "none", "--out", "out", "-q"])
    assert result.exit_code == 0, result.output
    written = {str(p.relative_to(work)) for p in work.rglob("*") if p.is_file()}
    assert written - {"out/themes.json"} == {"data.jsonl", "out/scores.parquet", "out/quarantine.jsonl",
                                             "out/summary.json", "out/manifest.json", "out/report.html"}
    assert not Path("/tmp/pwned.html").exists()
