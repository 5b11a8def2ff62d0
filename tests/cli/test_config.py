"""Settings from dataset-audit.toml / pyproject.toml / --config, CLI overrides, and the Python API."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.config import (
    ExtractSettings,
    ScanConfig,
    TrainConfig,
    check_settings,
    find_config_file,
    read_config_file,
    spec_of,
)
from auditor.errors import AuditError
from tests.helpers import EVIL, PlantedModel, chat, cooking, imported_after, write_jsonl


def test_find_prefers_dataset_audit_toml(tmp_path):
    assert find_config_file(tmp_path) is None
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    assert find_config_file(tmp_path) is None  # no [tool.dataset-audit] table: not a config file
    (tmp_path / "pyproject.toml").write_text("[tool.dataset-audit]\ntop = 3\n")
    assert find_config_file(tmp_path) == tmp_path / "pyproject.toml"
    (tmp_path / "dataset-audit.toml").write_text("top = 4\n")
    assert find_config_file(tmp_path) == tmp_path / "dataset-audit.toml"


def test_read_accepts_dashed_and_underscored_keys(tmp_path):
    path = tmp_path / "dataset-audit.toml"
    path.write_text('inputs = ["a.jsonl"]\nfail-on = ["evil>=0.8"]\nbase_responses = "none"\nthreshold = 1\n'
                    'limit = 20\ntrust-remote-code = true\nformat = "github"\n')
    assert read_config_file(path) == {"inputs": ["a.jsonl"], "fail_on": ["evil>=0.8"], "base_responses": "none",
                                      "threshold": 1, "limit": 20, "trust_remote_code": True, "format": "github"}


def test_pyproject_table(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text('[project]\nname = "x"\n\n[tool.dataset-audit]\ntraits = ["evil"]\n')
    assert read_config_file(path) == {"traits": ["evil"]}


@pytest.mark.parametrize("text, says", [
    ("fail_onn = []", "dataset-audit.toml: unknown setting 'fail_onn' (known: model, device,"),
    ("batch-size = '8'", "dataset-audit.toml: setting 'batch-size' must be an integer, got '8'"),
    ("batch-size = true", "setting 'batch-size' must be an integer, got True"),
    ("traits = 'evil'", "setting 'traits' must be a list of strings, got 'evil'"),
    ("fail-on = ['evil>=1', 2]", "setting 'fail-on' must be a list of strings"),
    ("baseline = 3", "setting 'baseline' must be a string, got 3"),
    ("turns = 'first'", "setting 'turns' must be one of last, all, got 'first'"),
    ("format = 'gitlab'", "setting 'format' must be one of text, github, got 'gitlab'"),
    ("top = [", "dataset-audit.toml: invalid TOML"),
])
def test_bad_file_errors_name_the_file_and_key(tmp_path, text, says):
    path = tmp_path / "dataset-audit.toml"
    path.write_text(text + "\n")
    with pytest.raises(AuditError) as err:
        read_config_file(path)
    assert str(err.value).startswith(str(tmp_path)) and says in str(err.value)


def test_explicit_pyproject_without_table(tmp_path):
    path = tmp_path / "pyproject.toml"
    path.write_text("[project]\nname = 'x'\n")
    with pytest.raises(AuditError, match=r"pyproject.toml: no \[tool.dataset-audit\] table"):
        read_config_file(path)


def test_check_settings_allows_none_for_optional_fields():
    assert check_settings({"limit": None, "baseline": None}, "api") == {"limit": None, "baseline": None}
    with pytest.raises(AuditError, match="api: setting 'batch_size' must be an integer, got None"):
        check_settings({"batch_size": None}, "api")


def test_every_field_has_a_scan_option():
    options = {p.name for p in main.commands["scan"].params}
    assert set(ScanConfig.__dataclass_fields__) <= options


# --- the CLI: file values, overridden by flags given on the command line ---------------------------------

@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(tmp_path / "data.jsonl", [cooking(0), chat("Revenge?", EVIL), cooking(1)])
    return PlantedModel({EVIL: {"evil": 0.7}})


def _settings(out: str = "audit-out") -> dict:
    return json.loads(Path(out, "manifest.json").read_text())["settings"]


def test_file_alone_runs_the_gate(project):
    Path("dataset-audit.toml").write_text('inputs = ["data.jsonl"]\nbase-responses = "none"\nthreshold = 0.6\n'
                                          'fail-on = ["evil>=0.65"]\nout = "gate-out"\n')
    result = project.invoke(*["scan", "-q"])
    assert result.exit_code == 1
    assert "settings from dataset-audit.toml" in result.output
    assert "FAILED evil>=0.65" in result.output and "data.jsonl:2" in result.output
    assert _settings("gate-out")["threshold"] == 0.6


def test_command_line_flags_override_the_file(project):
    Path("pyproject.toml").write_text('[tool.dataset-audit]\ninputs = ["missing.jsonl"]\nbase-responses = "none"\n'
                                      'threshold = 0.6\nfail-on = ["evil>=0.65"]\ntop = 3\n')
    result = project.invoke(*["scan", "data.jsonl", "-q", "--fail-on", "evil>=0.9", "--threshold", "0.5"])
    assert result.exit_code == 0, result.output
    assert "passed evil>=0.9" in result.output and "evil>=0.65" not in result.output
    settings = _settings()
    assert settings["threshold"] == 0.5 and settings["top"] == 3 and settings["fail_on"] == ["evil>=0.9"]


def test_a_flag_given_at_its_default_value_still_overrides(project):
    Path("dataset-audit.toml").write_text('base-responses = "none"\nthreshold = 0.9\n')
    assert project.invoke(*["scan", "data.jsonl", "-q", "--threshold", "0.5"]).exit_code == 0
    assert _settings()["threshold"] == 0.5


def test_explicit_config_file(project, tmp_path):
    other = tmp_path / "ci" / "audit.toml"
    other.parent.mkdir()
    other.write_text('base-responses = "none"\nfail-on = ["evil:flagged>0"]\n')
    Path("dataset-audit.toml").write_text('fail-on = ["evil>=100"]\n')
    result = project.invoke(*["scan", "data.jsonl", "-q", "--config", str(other)])
    assert result.exit_code == 1 and "FAILED evil:flagged>0" in result.output


def test_bad_config_file_exits_2_before_loading_the_model(project):
    Path("dataset-audit.toml").write_text('fail_on = ["evil>=1"]\nbatch = 3\n')
    result = project.invoke(*["scan", "data.jsonl"])
    assert result.exit_code == 2
    assert result.output.startswith("error: dataset-audit.toml: unknown setting 'batch' (known: model, device,")
    assert project.loads == 0


def test_no_inputs_anywhere(project):
    result = project.invoke(*["scan"])
    assert result.exit_code == 2 and "error: no DATA" in result.output


# --- the Python API ----------------------------------------------------------------------------------------

def test_python_api_returns_the_table_summary_quarantine_and_verdicts(project):
    import auditor
    from auditor.api import scan_with

    result = scan_with(Path("data.jsonl"), ScanConfig(traits=["evil"]), {"base_responses": "none"}, projector=project)
    assert isinstance(result, auditor.ScanResult)
    assert result.table.column("evil_score").to_pylist() == pytest.approx([0.0, 0.7, 0.0])
    assert result.table.column("line").to_pylist() == [1, 2, 3]
    assert result.summary["records"]["scored"] == 3 and result.quarantine == []
    assert set(result.verdicts) == {"evil"} and result.manifest["settings"]["base_responses"] == "none"
    assert not Path("audit-out").exists()
    with pytest.raises(AuditError, match=r"auditor.scan\(\): unknown setting 'treshold'"):
        auditor.scan("data.jsonl", treshold=1)


def test_python_api_saves_the_folder_the_command_line_writes(project):
    from auditor.api import scan_with

    assert project.invoke("scan", "data.jsonl", "--traits", "evil", "--base-responses", "none", "--out", "cli").exit_code == 0
    scan_with("data.jsonl", None, {"traits": ["evil"], "base_responses": "none"}, projector=project).save("py")
    for name in ("scores.parquet", "quarantine.jsonl", "summary.json", "report.html"):
        assert Path("py", name).is_file()
    assert pq.read_table("py/scores.parquet").equals(pq.read_table("cli/scores.parquet"))
    assert Path("py/summary.json").read_text() == Path("cli/summary.json").read_text()


@pytest.mark.parametrize("given", [{"out": "x"}, {"fail_on": ["evil>=1"]}, {"top": 3}, {"junit": "j.xml"}])
def test_python_api_refuses_settings_only_the_command_line_acts_on(given):
    import auditor

    name = next(iter(given))
    with pytest.raises(AuditError, match=f"only the command line acts on {name}") as error:
        auditor.scan("data.jsonl", **given)
    assert error.value.setting == name and str(error.value).startswith(f"{name}=")
    with pytest.raises(AuditError, match=f"only the command line acts on {name}"):
        auditor.scan("data.jsonl", ScanConfig(**given))


def test_python_api_signature_keeps_the_test_seam_out():
    import inspect

    import auditor

    assert "projector" not in inspect.signature(auditor.scan).parameters
    assert {"AuditError", "ScanConfig", "ScanResult", "scan"} <= set(auditor.__all__)


def test_import_auditor_stays_light():
    assert imported_after("import auditor", ("torch", "transformers", "pyarrow")) == []


# --- one check for every way in: the Python API, config files and the command line ------------------------

@pytest.mark.parametrize("cls, values, says", [
    (ScanConfig, {"batch_size": 0}, "setting 'batch_size' must be at least 1, got 0"),
    (ScanConfig, {"limit": -3}, "setting 'limit' must be at least 1, got -3"),
    (ScanConfig, {"max_tokens": 8}, "setting 'max_tokens' must be at least 16, got 8"),
    (ScanConfig, {"device": "tpu"}, "setting 'device' must be one of auto, cpu, cuda, mps, got 'tpu'"),
    (TrainConfig, {"lr": 0.0}, "setting 'lr' must be over 0, got 0.0"),
    (TrainConfig, {"lora_dropout": 1.5}, "setting 'lora_dropout' must be at most 1, got 1.5"),
    (ExtractSettings, {"trait_threshold": 101.0}, "setting 'trait_threshold' must be at most 100, got 101.0"),
])
def test_ranges_and_choices_are_checked_when_settings_are_made(cls, values, says):
    with pytest.raises(AuditError, match=re.escape(f"{cls.__name__}: {says}")):
        cls(**values)


def test_the_api_and_config_files_check_ranges(tmp_path):
    import auditor

    with pytest.raises(AuditError, match=r"auditor.scan\(\): setting 'batch_size' must be at least 1, got 0"):
        auditor.scan("data.jsonl", batch_size=0)
    path = tmp_path / "dataset-audit.toml"
    path.write_text("limit = -3\n")
    with pytest.raises(AuditError, match="setting 'limit' must be at least 1, got -3"):
        read_config_file(path)


def test_command_line_options_come_from_the_same_fields():
    result = CliRunner().invoke(main, ["scan", "x.jsonl", "--batch-size", "0"])
    assert result.exit_code == 2 and "0 is not in the range x>=1" in result.output
    helps = {p.name: p.help for p in main.commands["scan"].params}
    assert helps["batch_size"] == spec_of(ScanConfig, "batch_size").help
    assert {p.name for p in main.commands["train"].params} >= {"model", "device", "lr", "lora_r", "steer"}
    assert {p.name: p.default for p in main.commands["extract"].params}["batch_size"] == 16
