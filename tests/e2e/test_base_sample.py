"""`scan --base-sample N` on the embedded model: the estimate, its interval and the gate on its low end (the
estimator and its outputs on the tiny model and planted scores are in tests/scanning/test_base_sample.py)."""

import json

import pytest

from auditor.evaluation.card import MEANING
from tests.helpers import EXAMPLES, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the 135M model on CPU; the first test converts it


def test_the_command_estimates_from_a_base_sample_on_the_embedded_model(on_embedded_model, tmp_path):
    result = run("scan", EXAMPLES / "chat_mix.jsonl", "--limit", 16, "--traits", "evil", "--base-sample", 4,
                 "--max-new-tokens", 16, "--fail-on", "evil:mean_dp>100", "--out", tmp_path / "out",
                 catch_exceptions=False)
    assert result.exit_code == 0, result.output
    evil = json.loads((tmp_path / "out" / "summary.json").read_text())["traits"]["evil"]
    block = evil["base_sample"]
    assert (block["n"], block["of"]) == (4, 16)
    assert block["mean_dp_ci95"][0] < block["mean_dp"] < block["mean_dp_ci95"][1]
    assert "gated on its interval's low end" in result.output
    verdict = evil["verdict"]
    assert f"score {verdict}: {MEANING[verdict]}" in " ".join(result.output.split())
