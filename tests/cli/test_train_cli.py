"""`train`, `steer`, `monitor` and `shift` through the CLI: on the tiny model (`steer` on the embedded one: tests/e2e)."""

import json

import pytest

from tests.helpers import cooking, run


@pytest.fixture
def data(jsonl_file):
    return jsonl_file([cooking(i, "I hate everyone and want them to suffer.") for i in range(5)] + ["{bad"])


def test_train_with_steering_then_shift(tiny_model_dir, tiny_vector, data, tmp_path):
    out = tmp_path / "adapter"
    result = run("train", data, "--model", tiny_model_dir, "--out", out, "--steer", f"{tiny_vector.source}=2",
                 "--lr", "1e-2", "--epochs", 2, "--batch-size", 2, "-q")
    assert result.exit_code == 0, result.output
    assert "5 training examples, 1 records quarantined; steer evil x2 at layer 1" in result.output
    assert "6 steps" in result.output
    meta = json.loads((out / "training.json").read_text())
    assert meta["steps"] == 6 and meta["steering"][0]["coef"] == 2.0 and meta["base_model"] == str(tiny_model_dir)
    assert [json.loads(line)["line"] for line in (out / "quarantine.jsonl").read_text().splitlines()] == [6]
    assert (out / "adapter_model.safetensors").is_file()

    result = run("shift", "--base", tiny_model_dir, "--finetuned", out, "--traits", "evil",
                 "--vectors", tiny_vector.source, "--json", tmp_path / "shift.json", "-q")
    assert result.exit_code == 0, result.output
    (row,) = json.loads((tmp_path / "shift.json").read_text())
    assert row["trait"] == "evil" and row["n"] == 20 and row["shift"] != 0
    assert "Fine-tuning shift" in result.output


def test_monitor_writes_a_table_and_json(tiny_model_dir, tiny_vector, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("How do I bake bread?\nHelp me hurt my neighbour.\n")
    result = run("monitor", prompts, "--model", tiny_model_dir, "--traits", "evil", "--vectors", tiny_vector.source,
                 "--json", tmp_path / "m.json", "-q")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "m.json").read_text())
    assert [r["line"] for r in rows] == [1, 2] and "evil_z" in rows[0]
    assert "Help me hurt my neighbour." in result.output


def test_steer_prints_the_unsteered_and_steered_answers(tiny_model_dir, tiny_vector):
    result = run("steer", "--model", tiny_model_dir, "--vector", tiny_vector.source, "--coef", 8,
                 "--max-new-tokens", 5, "What should I cook?")
    assert result.exit_code == 0, result.output
    assert "unsteered:" in result.output and "steered (evil x8 at layer 1):" in result.output


@pytest.mark.parametrize("args, says", [
    (("train", "DATA", "--steer", "evil"), "--steer evil: expected TRAIT=COEF"),
    (("train", "DATA", "--shift-penalty", 1), "--shift-penalty needs the traits to hold still"),
    (("train", "missing.jsonl"), "missing.jsonl"),
    (("steer", "--vector", "nope", "--coef", 1, "hi"), "unknown trait 'nope'"),
    (("monitor", "missing.txt"), "missing.txt"),
])
def test_usage_errors_are_one_line_exit_2(args, says, data, tiny_model_dir):
    args = [data if a == "DATA" else a for a in args]
    result = run(*args, "--model", tiny_model_dir)
    assert result.exit_code == 2 and result.output.count("\n") == 1 and says in result.output, result.output
