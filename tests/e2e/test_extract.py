"""`extract` on the embedded model (a short generated extraction), then a scan with the vector it wrote."""

import json

import pytest

from auditor.traits import Trait, load_trait
from auditor.vectors.persona import PersonaVector
from tests.helpers import EXAMPLES, run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]  # the 135M model on CPU; the first test converts it
EXAMPLE = EXAMPLES / "chat_mix.jsonl"


def test_extract_on_the_embedded_model_then_scan(on_embedded_model, tmp_path):
    """A short generated extraction on the real default model (3+3 questions, one pair), then a scan with it."""
    evil = load_trait("evil")
    path = tmp_path / "evil-small.json"
    Trait(name="evil", description=evil.description, instructions=evil.instructions[:1],
          questions={split: evil.questions[split][:3] for split in ("extract", "eval")},
          judge_rubric=evil.judge_rubric).save(path)
    vector = tmp_path / "evil.safetensors"
    result = run("extract", path, "--max-new-tokens", 16, "--out", vector, "-q")
    assert result.exit_code == 0, result.output
    extracted = PersonaVector.load(vector)
    assert extracted.model_name == "SmolLM2-135M-Instruct" and extracted.calibration.n == 3
    out = tmp_path / "scan"
    result = run("scan", EXAMPLE, "--limit", 4, "--traits", "evil", "--vectors", vector,
                 "--base-responses", "none", "--out", out, "-q")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "manifest.json").read_text())["vectors"]["evil"]["source"] == str(vector)
