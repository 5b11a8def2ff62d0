"""`--generator vllm` without vLLM installed: the install hint, and the requests it makes (to a stand-in vLLM)."""

import sys
import types

import pytest
from click.testing import CliRunner

from auditor.cli import main
from auditor.errors import AuditError
from auditor.model.generation import GenerationSettings, stop_ids
from auditor.model.vllm_generator import requests, vllm_answers
from tests.helpers import cooking


class FakeLLM:
    """Records how vLLM would be built and called; answers each prompt with canned token ids."""

    instances: list = []

    def __init__(self, **kwargs):
        self.kwargs, self.calls = kwargs, []
        FakeLLM.instances.append(self)

    def generate(self, inputs, params, use_tqdm=True):
        self.calls.append((inputs, params))
        canned = [[5, 6, self.stop, 7], [self.stop], []]
        return [types.SimpleNamespace(outputs=[types.SimpleNamespace(token_ids=canned[i % 3])])
                for i, _ in enumerate(inputs)]


@pytest.fixture
def fake_vllm(monkeypatch, tiny_lm):
    FakeLLM.instances, FakeLLM.stop = [], stop_ids(tiny_lm)[0]
    module = types.SimpleNamespace(LLM=FakeLLM, SamplingParams=lambda **kw: kw)
    monkeypatch.setitem(sys.modules, "vllm", module)
    monkeypatch.setattr("auditor.model.vllm_generator.ENGINES", {})
    return module


def test_without_vllm_the_error_says_how_to_install(monkeypatch, tiny_lm):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm raises ImportError
    with pytest.raises(AuditError, match=r"vLLM is not installed; install with pip install 'dataset-audit\[vllm\]'"):
        vllm_answers(tiny_lm, [[1, 2]], GenerationSettings())


def test_requests_are_the_prompt_ids_with_the_local_decoding_settings():
    inputs, params = requests([[1, 2], [3]], GenerationSettings(max_new_tokens=7), [9])
    assert inputs == [{"prompt_token_ids": [1, 2]}, {"prompt_token_ids": [3]}]
    assert params == {"max_tokens": 7, "temperature": 0.0, "repetition_penalty": 1.1, "stop_token_ids": [9],
                      "seed": None, "detokenize": False}
    assert requests([[1]], GenerationSettings(temperature=1.0, seed=3), [9])[1]["seed"] == 3


def test_answers_are_cut_at_the_first_end_token_and_the_engine_is_built_once(fake_vllm, tiny_lm):
    settings = GenerationSettings(max_new_tokens=5)
    stop = FakeLLM.stop
    assert vllm_answers(tiny_lm, [[1], [2], [3]], settings) == [[5, 6], [stop], [stop]]
    vllm_answers(tiny_lm, [[4]], settings)
    (llm,) = FakeLLM.instances
    assert llm.kwargs["model"] == llm.kwargs["tokenizer"] == tiny_lm.path and llm.kwargs["dtype"] == "float32"
    assert llm.kwargs["trust_remote_code"] is False
    assert [c[0] for c in llm.calls] == [[{"prompt_token_ids": [i]} for i in (1, 2, 3)], [{"prompt_token_ids": [4]}]]


def test_a_scan_with_generator_vllm_uses_its_answers(fake_vllm, tiny_model_dir, jsonl_file, tmp_path):
    data = jsonl_file([cooking(0), cooking(1)])
    result = CliRunner().invoke(main, ["scan", str(data), "--model", str(tiny_model_dir), "--traits", "evil",
                                       "--generator", "vllm", "--out", str(tmp_path / "out"), "-q"])
    assert result.exit_code == 0, result.output
    (llm,) = FakeLLM.instances
    assert len(llm.calls[0][0]) == 2 and llm.calls[0][1]["max_tokens"] == 64


def test_generator_vllm_needs_generated_answers(jsonl_file, tmp_path):
    result = CliRunner().invoke(main, ["scan", str(jsonl_file([cooking(0)])), "--generator", "vllm",
                                       "--base-responses", "none", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "--generator vllm: writes base answers, so it needs --base-responses generate" in result.output
