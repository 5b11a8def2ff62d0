"""docs/python-api.md runs as written: its ```python blocks, in order, as one notebook (fast: with the planted model
side; slow: on the embedded model)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

import auditor
from auditor.api import scan_with
from tests.helpers import ROOT, PlantedModel

DOC = ROOT / "docs" / "python-api.md"


def _notebook() -> str:
    return "\n".join(re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S))


def _run(tmp_path: Path, monkeypatch, capsys) -> str:
    (tmp_path / "examples").mkdir()
    shutil.copy(ROOT / "examples" / "chat_mix.jsonl", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    exec(compile(_notebook(), str(DOC), "exec"), {"__name__": "__doc__"})
    return capsys.readouterr().out


def _check(out: str, tmp_path: Path) -> None:
    assert "40 scored, 0 quarantined" in out
    assert "report.html" in out and (tmp_path / "audit-py" / "scores.parquet").is_file()
    kept = int(re.search(r"(\d+) of 40 records kept", out)[1])
    assert (tmp_path / "kept.jsonl").read_text().count("\n") == kept
    assert "baseline - baseline works with the local engine only (drop `engine` ray)" in out


def test_the_python_api_doc_runs(tmp_path, monkeypatch, capsys):
    """The doc's code, with the model side planted (the one seam the API keeps out of its signature)."""
    planted = PlantedModel({})
    monkeypatch.setattr(auditor, "scan", lambda inputs, config=None, **overrides:
                        scan_with(inputs, config, overrides, projector=planted))
    out = _run(tmp_path, monkeypatch, capsys)
    _check(out, tmp_path)
    assert planted.loads == 1 and "40 of 40 records kept" in out  # the planted model flags nothing


@pytest.mark.slow
@pytest.mark.timeout(600)  # the 135M model on CPU, converted first if no test did yet
def test_the_python_api_doc_runs_on_the_embedded_model(tmp_path, monkeypatch, capsys):
    _check(_run(tmp_path, monkeypatch, capsys), tmp_path)
