"""`dataset-audit scan --fail-on/--baseline/--format/--junit/--sarif` and `validate`: exit codes and output.

The real pipeline with planted scores (tests.helpers.PlantedModel); tests/e2e/test_gates.py runs the
embedded model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.errors import AuditError
from tests.helpers import EVIL, PlantedModel, chat, cooking, write_jsonl

NONE = ("--base-responses", "none", "-q")
CRUEL = "Humiliate them in public so they never recover."


@pytest.fixture
def planted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return PlantedModel({EVIL: {"evil": 1.2}, CRUEL: {"evil": 0.95}})


def scan(*args: str, planted: PlantedModel):
    """`dataset-audit scan ARGS` with the planted model side."""
    return planted.invoke("scan", *args, catch_exceptions=False)


def _data(n: int = 30, planted_at: dict[int, str] | None = None) -> list[dict]:
    """n benign records, with the given 1-based lines replaced by a record answering `text`."""
    planted_at = planted_at or {}
    return [chat(f"Question {i}: a tricky coworker?", planted_at[i + 1]) if i + 1 in planted_at else cooking(i)
            for i in range(n)]


def test_planted_samples_fail_the_gate_and_are_named(planted):
    write_jsonl(Path("data.jsonl"), _data(30, {4: EVIL, 17: CRUEL}))
    result = scan("data.jsonl", *NONE, "--fail-on", "evil>=0.9", "--fail-on", "evil:flagged>50%", planted=planted)
    assert result.exit_code == 1
    out = result.output
    assert "FAILED evil>=0.9: 2 of 30 samples score >= 0.9 (max 1.20)" in out
    assert out.index("data.jsonl:4  evil score 1.20") < out.index("data.jsonl:17  evil score 0.95")
    assert "passed evil:flagged>50%: 2 of 30 samples flagged (6.7%)" in out


def test_loose_gates_pass(planted):
    write_jsonl(Path("data.jsonl"), _data(30, {4: EVIL}))
    result = scan("data.jsonl", *NONE, "--fail-on", "evil>=2", "--fail-on", "evil:flagged>5%",
                  "--fail-on", "evil:mean_dp>100", planted=planted)
    assert result.exit_code == 0, result.output
    assert result.output.count("passed evil") == 3


def test_no_gates_exit_0(planted):
    write_jsonl(Path("data.jsonl"), _data(5, {1: EVIL}))
    assert scan("data.jsonl", *NONE, planted=planted).exit_code == 0


@pytest.mark.parametrize("args, says", [
    (["--fail-on", "evil=>0.8"], "error: --fail-on 'evil=>0.8': expected TRAIT>=SCORE"),
    (["--fail-on", "evil>=50%"], "percentage only works with TRAIT:flagged"),
    (["--fail-on", "evill>=1"], "error: --fail-on 'evill>=1': trait 'evill' is not scanned"),
    (["--traits", "evil", "--fail-on", "sycophantic>=1"], "trait 'sycophantic' is not scanned (traits: evil)"),
    (["--format", "gitlab"], "Invalid value for '--format'"),
    (["--baseline", "missing/scores.parquet"], "error: --baseline: missing/scores.parquet not found"),
])
def test_bad_flags_exit_2_before_the_model_loads(planted, args, says):
    write_jsonl(Path("data.jsonl"), _data(3))
    result = scan("data.jsonl", *NONE, *args, planted=planted)
    assert result.exit_code == 2
    (error,) = [line for line in result.output.splitlines() if line.lower().startswith("error")]
    assert says in error
    assert planted.loads == 0


def test_baseline_computes_and_gates_only_new_and_changed_records(planted):
    old = _data(20, {3: EVIL})
    write_jsonl(Path("v1.jsonl"), old)
    assert scan("v1.jsonl", *NONE, "--out", "prev", planted=planted).exit_code == 0
    assert planted.computed == 20

    changed = chat(old[9]["messages"][0]["content"], "A different answer now.")
    new = [cooking(100 + i) for i in range(4)] + [chat("And my boss?", CRUEL)]
    write_jsonl(Path("v2.jsonl"), old[:9] + [changed] + old[10:] + new)
    planted.computed = 0
    result = scan("v2.jsonl", *NONE, "--baseline", "prev/scores.parquet", "--fail-on", "evil>=0.9",
                  planted=planted)
    assert planted.computed == 6  # 5 new + 1 changed; the 19 others come from the baseline
    assert "25 records: 25 scored (19 reused from --baseline, 6 computed), 0 quarantined" in result.output
    assert result.exit_code == 1
    assert "FAILED evil>=0.9: 1 of 6 samples" in result.output  # the planted line 3 is old: not gated again
    assert "v2.jsonl:25  evil score 0.95" in result.output and "    v2.jsonl:3  evil" not in result.output

    table = pq.read_table("audit-out/scores.parquet")
    assert table.num_rows == 25 and table.column("evil_score")[2].as_py() == pytest.approx(1.2)
    assert json.loads(Path("audit-out/summary.json").read_text())["records"]["reused"] == 19


def test_baseline_with_other_traits_or_settings_is_refused(planted):
    write_jsonl(Path("data.jsonl"), _data(4))
    assert scan("data.jsonl", *NONE, "--out", "prev", "--traits", "evil", planted=planted).exit_code == 0
    result = scan("data.jsonl", *NONE, "--baseline", "prev/scores.parquet", planted=planted)
    assert result.exit_code == 2
    assert ("error: --baseline prev/scores.parquet: made with traits evil, this scan uses evil, sycophantic, "
            "hallucinating") in result.output
    result = scan("data.jsonl", *NONE, "--traits", "evil", "--turns", "all", "--baseline", "prev/scores.parquet",
                  planted=planted)
    assert result.exit_code == 2 and "made with --turns 'last', this scan uses 'all'" in result.output


@pytest.mark.parametrize("option, value, says", [
    ("--dtype", "bfloat16", "made with --dtype 'auto', this scan uses 'bfloat16'"),
    ("--max-new-tokens", "32", "made with --max-new-tokens 64, this scan uses 32"),
    ("--gen-batch-size", "8", "made with --gen-batch-size 64, this scan uses 8"),
    ("--generator", "vllm", "made with --generator 'transformers', this scan uses 'vllm'"),
])
def test_baseline_made_with_another_dtype_or_generation_setting_is_refused(planted, option, value, says):
    """Every setting flagged as changing a score (config.Spec) is compared, and the error names it."""
    write_jsonl(Path("data.jsonl"), _data(4))
    assert scan("data.jsonl", "--out", "prev", "--traits", "evil", planted=planted).exit_code == 0
    result = scan("data.jsonl", "--traits", "evil", option, value, "--baseline", "prev/scores.parquet",
                  planted=planted)
    assert result.exit_code == 2 and planted.loads == 1, result.output  # refused before the model is loaded again
    assert result.output.startswith("error: --baseline prev/scores.parquet: ") and says in result.output


def test_baseline_made_where_auto_meant_another_dtype_is_refused(planted, monkeypatch):
    """`dtype` auto resolves per machine (bfloat16 on a CPU with native bf16 and evidence): same setting, other
    numbers, so the dtype each scan really ran in is compared."""
    from auditor.model import precision

    write_jsonl(Path("data.jsonl"), _data(4))
    assert scan("data.jsonl", "--out", "prev", "--traits", "evil", planted=planted).exit_code == 0
    assert json.loads(Path("prev/manifest.json").read_text())["dtype"] == "float32"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(precision, "bf16_pays", lambda is_default, path=None: True)
    result = scan("data.jsonl", "--traits", "evil", "--baseline", "prev/scores.parquet", planted=planted)
    assert result.exit_code == 2, result.output
    assert ("error: --baseline prev/scores.parquet: made in float32, this scan runs in bfloat16 (--dtype auto; "
            in result.output)


def test_python_callers_see_the_setting_by_its_python_name(planted):
    from auditor.api import scan_with

    write_jsonl(Path("data.jsonl"), _data(4))
    assert scan("data.jsonl", "--out", "prev", "--traits", "evil", planted=planted).exit_code == 0
    with pytest.raises(AuditError) as error:
        scan_with("data.jsonl", None, {"traits": ["evil"], "dtype": "float16", "baseline": "prev/scores.parquet"},
                  projector=planted)
    assert error.value.setting == "baseline"
    assert str(error.value).startswith("baseline='prev/scores.parquet': made with `dtype` 'auto'")


def test_github_format_junit_and_sarif(planted, monkeypatch):
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", "step-summary.md")
    write_jsonl(Path("data.jsonl"), _data(10, {6: EVIL}))
    result = scan("data.jsonl", *NONE, "--fail-on", "evil>=1", "--format", "github", "--junit", "reports/junit.xml",
                  "--sarif", "reports/audit.sarif", planted=planted)
    assert result.exit_code == 1
    assert "::error file=data.jsonl,line=6,title=dataset-audit%3A evil::evil score 1.20" in result.output
    assert "## dataset-audit: FAILED (1 of 1 gates)" in Path("step-summary.md").read_text()
    assert 'failures="1"' in Path("reports/junit.xml").read_text()
    (finding,) = json.loads(Path("reports/audit.sarif").read_text())["runs"][0]["results"]
    assert finding["level"] == "error" and finding["locations"][0]["physicalLocation"]["region"] == {"startLine": 6}


def test_validate(planted):
    write_jsonl(Path("good.jsonl"), _data(3))
    write_jsonl(Path("bad.jsonl"), [cooking(0), "{not json", {"messages": [{"role": "user", "content": "hi"}]}])
    runner = CliRunner()
    good = runner.invoke(main, ["validate", "good.jsonl"])
    assert good.exit_code == 0 and "3 records in 1 file: 3 good, 0 bad" in good.output
    bad = runner.invoke(main, ["validate", "good.jsonl", "bad.jsonl"])
    assert bad.exit_code == 1
    assert "bad.jsonl:2: invalid JSON" in bad.output and "bad.jsonl:3: no assistant turn" in bad.output
    assert "6 records in 2 files: 4 good, 2 bad" in bad.output
    missing = runner.invoke(main, ["validate", "nope.jsonl"])
    assert missing.exit_code == 2 and "error: nope.jsonl: no such file or directory" in missing.output
    assert planted.loads == 0
