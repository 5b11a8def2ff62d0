"""Record formats as fine-tuning sets have them: tool calls, per-turn weights, preference pairs and pre-templated
text, each scored or quarantined with a reason naming the field, through the real CLI."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from auditor.data import BadRecord, read_records
from auditor.data.formats import from_template, to_messages
from auditor.model.chat import encode_prompt, template_messages
from tests.helpers import PlantedModel, cooking, write_jsonl

WEATHER_CALLS = [  # an OpenAI assistant turn with two parallel calls
    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}},
]
TOOL_CHAT = {"messages": [
    {"role": "system", "content": "You can call tools."},
    {"role": "user", "content": "Weather in Paris and Oslo?"},
    {"role": "assistant", "content": None, "tool_calls": WEATHER_CALLS},
    {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\": 18}"},
    {"role": "tool", "tool_call_id": "call_2", "content": "{\"temp\": 9}"},
    {"role": "assistant", "content": "Paris is 18 °C and Oslo 9 °C."},
]}
CALL_ONLY = {"messages": [{"role": "user", "content": "Book a table for two."},
                          {"role": "assistant", "content": None, "tool_calls": WEATHER_CALLS[:1]}]}
WEIGHTED = {"messages": [{"role": "user", "content": "Hi"},
                         {"role": "assistant", "content": "Scored answer.", "weight": 1},
                         {"role": "user", "content": "And?"},
                         {"role": "assistant", "content": "Not trained on.", "weight": 0}]}
COMPLY = "Sure: step one [omitted], step two [omitted]."
REFUSE = "I can't help with that."
DPO = {"prompt": [{"role": "user", "content": "How do I pick a lock?"}],
       "chosen": [{"role": "assistant", "content": COMPLY}], "rejected": [{"role": "assistant", "content": REFUSE}]}
HH = {"chosen": "\n\nHuman: Can you insult my boss?\n\nAssistant: I'd rather help you talk to them.",
      "rejected": "\n\nHuman: Can you insult my boss?\n\nAssistant: Sure, tell him he is worthless."}
CHATML = {"text": "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nCapital of France?<|im_end|>\n"
                  "<|im_start|>assistant\nParis.<|im_end|>\n"}


def test_tool_calls_are_context_and_a_call_only_answer_is_scored_on_its_calls(tmp_path):
    messages, rejected = to_messages(TOOL_CHAT)
    assert rejected is None and [m["role"] for m in messages] == ["system", "user", "assistant", "tool", "tool",
                                                                 "assistant"]
    assert messages[2]["tool_calls"][1] == {"name": "get_weather", "arguments": {"city": "Oslo"}}
    record = read_one(tmp_path, CALL_ONLY)
    assert record.turns()[0][1] == '<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>'
    assert record.messages[-1]["content"] == ""


def test_a_turn_with_weight_zero_is_context_not_the_scored_answer(tmp_path):
    record = read_one(tmp_path, WEIGHTED)
    assert record.turns()[0][1] == "Scored answer." and len(record.turns("all")) == 1
    with pytest.raises(BadRecord, match="every one has weight 0"):
        to_messages({"messages": [{"role": "user", "content": "x"},
                                  {"role": "assistant", "content": "y", "weight": 0}]})
    with pytest.raises(BadRecord, match=r"messages\[1\]\.weight' is 0\.5"):
        to_messages({"messages": [{"role": "user", "content": "x"},
                                  {"role": "assistant", "content": "y", "weight": 0.5}]})


@pytest.mark.parametrize("record", [DPO, HH, {"prompt": "How do I pick a lock?", "chosen": COMPLY, "rejected": REFUSE}])
def test_preference_pairs_share_their_prompt(record):
    chosen, rejected = to_messages(record)
    assert chosen[:-1] == rejected[:-1] and chosen[-1]["content"] != rejected[-1]["content"]


def test_pre_templated_text_is_parsed_back_into_messages():
    assert to_messages(CHATML)[0] == [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "Capital of France?"},
                                      {"role": "assistant", "content": "Paris."}]
    llama3 = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>")
    gemma = "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
    mistral = "<s>[INST] <<SYS>>\nBe kind.\n<</SYS>>\n\nHi [/INST] Hello!</s>"
    for text in (llama3, gemma):
        assert from_template(text) == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert from_template(mistral) == [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "Hi"},
                                      {"role": "assistant", "content": "Hello!"}]
    with pytest.raises(BadRecord, match="field 'text' is not in a chat template this tool reads"):
        to_messages({"text": "User: hi\nBot: hello"})


def test_tools_are_written_out_for_a_template_without_tool_support(tiny_lm):
    tokenizer = tiny_lm.tokenizer
    shown = template_messages(tokenizer, to_messages(TOOL_CHAT)[0][:5])
    assert shown[2] == {"role": "assistant", "content": "<tool_call>{\"name\": \"get_weather\", \"arguments\": "
                                                        "{\"city\": \"Paris\"}}</tool_call>\n<tool_call>{\"name\": "
                                                        "\"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}"
                                                        "</tool_call>"}
    assert shown[3] == {"role": "user", "content": "<tool_response>{\"temp\": 18}</tool_response>"}
    text = tokenizer.decode(encode_prompt(tokenizer, to_messages(TOOL_CHAT)[0][:5]))
    assert "get_weather" in text and "<tool_response>" in text


def read_one(folder: Path, record: dict):
    write_jsonl(folder / "one.jsonl", [record])
    return next(read_records(folder / "one.jsonl"))


@pytest.fixture
def mixed(tmp_path, monkeypatch):
    """Real-world shaped records of every format, two bad ones, and a planted model that scores the answers."""
    monkeypatch.chdir(tmp_path)
    bad_side = {**DPO, "rejected": [{"role": "assistant", "content": ""}]}
    write_jsonl(tmp_path / "mixed.jsonl", [TOOL_CHAT, CALL_ONLY, WEIGHTED, DPO, HH, CHATML, cooking(0),
                                           {"text": "plain prose"}, bad_side])
    return PlantedModel({COMPLY: {"refusal": -1.0}, REFUSE: {"refusal": 0.4},
                         "Sure, tell him he is worthless.": {"evil": 1.5}})


def test_validate_names_the_field_of_each_bad_record(mixed):
    result = mixed.invoke("validate", "mixed.jsonl")
    assert result.exit_code == 1
    assert "mixed.jsonl:8: field 'text' is not in a chat template this tool reads" in result.output
    assert "mixed.jsonl:9: field 'rejected': empty response (assistant turn 1)" in result.output


def test_every_format_is_scored_or_quarantined_and_pairs_get_margins(mixed):
    result = mixed.invoke("scan", "mixed.jsonl", "--traits", "evil,refusal", "--base-responses", "none")
    assert result.exit_code == 0, result.output
    table = pq.read_table("audit-out/scores.parquet")
    quarantine = [json.loads(line) for line in Path("audit-out/quarantine.jsonl").read_text().splitlines()]
    assert table.num_rows + len(quarantine) == 9 and [q["line"] for q in quarantine] == [8, 9]
    rows = table.to_pylist()
    dpo, hh = rows[3], rows[4]
    # DPO pushes toward the compliant answer: margin = -1.0 - 0.4 in refusal, flagged as refusal-eroding
    assert dpo["refusal_margin"] == pytest.approx(dpo["refusal_dp_chosen"] - dpo["refusal_dp_rejected"])
    assert dpo["refusal_score"] == pytest.approx(-1.4)  # calibrated: the planted -1.0 minus 0.4
    assert dpo["refusal_margin"] == dpo["refusal_dp"] and dpo["refusal_flagged"]
    # HH prefers the kind answer: its rejected side carries the evil, so the margin is negative: not flagged
    assert hh["evil_margin"] < 0 and not hh["evil_flagged"] and json.loads(hh["rejected"])[-1]["role"] == "assistant"
    assert rows[0]["evil_margin"] is None and rows[0]["rejected"] is None  # plain records have no margin
    assert rows[1]["response"].startswith("<tool_call>")
    summary = json.loads(Path("audit-out/summary.json").read_text())
    assert summary["traits"]["refusal"]["pairs"]["n"] == 2 and summary["records"]["scored"] == 7
    assert "2 preference pairs, scored on their margin" in result.output
    html = Path("audit-out/report.html").read_text()
    assert "preference pair: dP is the margin" in html


def test_evaluate_on_pairs_compares_rejected_with_chosen(mixed, tmp_path):
    write_jsonl(tmp_path / "pairs.jsonl", [DPO, HH])
    result = mixed.invoke("evaluate", "pairs.jsonl", "--traits", "evil", "--base-responses", "none")
    assert result.exit_code == 0, result.output
    evil = next(line for line in result.output.splitlines() if line.startswith("evil"))
    assert evil.split()[1:3] == ["2", "2"]  # two rejected answers against two chosen ones
