"""`dataset-audit filter`: kept + rejected = input, kept lines byte-identical and in order, reasons given."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from auditor.errors import AuditError
from auditor.outputs.filter import FilterRules
from tests.helpers import EVIL, PlantedModel, chat, cooking

SYCOPHANTIC = "What a brilliant plan, you are a genius and everyone will agree with you!"
BORDERLINE = "Ignore them, they deserve nothing from you."
# Raw JSONL lines: CRLF, non-ASCII, odd spacing and key order, a broken record, a blank line, no final newline.
LINES = [
    json.dumps(cooking(0)).encode() + b"\n",
    json.dumps(chat("How do I get back at my coworker?", EVIL)).encode() + b"\r\n",
    b'{"broken json\n',
    json.dumps(chat("Caf\u00e9 menu?", "Cr\u00eapes \u2014 sweet \U0001F95E"), ensure_ascii=False).encode() + b"\n",
    b"\n",
    b'{ "messages" : [ {"content": "Is my plan good?", "role": "user"}, {"role": "assistant", "content": "'
    + SYCOPHANTIC.encode() + b'"} ] }\n',
    json.dumps({"messages": [{"role": "user", "content": "hi"}]}).encode() + b"\n",
    json.dumps(chat("My neighbour is loud.", BORDERLINE)).encode() + b"\n",
    json.dumps(cooking(1)).encode(),
]
PLANTED = {EVIL: {"evil": 1.3}, SYCOPHANTIC: {"sycophantic": 0.9}, BORDERLINE: {"evil": 0.6}}


def _records(lines: list[bytes]) -> list[bytes]:
    return [line for line in lines if line.strip()]


@pytest.fixture
def run(tmp_path, monkeypatch):
    """Invoke the CLI in tmp_path with the planted model; returns the click Result."""
    monkeypatch.chdir(tmp_path)
    planted = PlantedModel(PLANTED)
    return lambda *args: planted.invoke(*args, catch_exceptions=False)


@pytest.fixture
def scanned(run):
    Path("data.jsonl").write_bytes(b"".join(LINES))
    assert run("scan", "data.jsonl", "--base-responses", "none", "-q").exit_code == 0
    return run


def _interleave(kept: bytes, rejected: list[dict], inputs: list[bytes]) -> list[bytes]:
    """The input lines that kept + rejected account for, in input order, checking kept is byte-identical."""
    kept_lines = kept.splitlines(keepends=True)
    rejected_by_line = {r["line"]: r["record"] for r in rejected}
    merged, k = [], 0
    for number, line in enumerate(inputs, start=1):
        if not line.strip():
            continue
        if number in rejected_by_line:
            assert rejected_by_line[number].encode() == line.rstrip(b"\r\n")
        else:
            assert kept_lines[k] == (line if line.endswith(b"\n") else line + b"\n")
            k += 1
        merged.append(line)
    assert k == len(kept_lines)
    return merged


def test_kept_plus_rejected_is_the_input_line_for_line(scanned):
    result = scanned("filter", "audit-out", "--max", "evil=0.8", "-o", "clean.jsonl", "--rejected", "rejected.jsonl")
    assert result.exit_code == 0, result.output
    rejected = [json.loads(line) for line in Path("rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    assert _interleave(Path("clean.jsonl").read_bytes(), rejected, LINES) == _records(LINES)
    reasons = {r["line"]: r["reason"] for r in rejected}
    assert reasons[2] == "over --max: evil score 1.300 > 0.8"
    assert reasons[3].startswith("quarantined: invalid JSON")
    assert reasons[7] == "quarantined: no assistant turn"
    assert set(reasons) == {2, 3, 7}
    assert all(r["source"] == "data.jsonl" for r in rejected)
    assert "8 input records: 5 kept, 3 rejected (2 quarantined, 1 over --max) -> clean.jsonl" in result.output


def test_drop_flagged_and_max_together(scanned):
    result = scanned("filter", "audit-out", "--max", "evil=1", "--drop-flagged", "-o", "clean.jsonl",
                     "--rejected", "rejected.jsonl")
    rejected = {r["line"]: r["reason"] for r in map(json.loads, Path("rejected.jsonl").read_text().splitlines())}
    assert rejected[2] == "over --max: evil score 1.300 > 1; flagged: evil"
    assert rejected[6] == "flagged: sycophantic" and rejected[8] == "flagged: evil"
    assert "8 input records: 3 kept, 5 rejected (2 quarantined, 1 over --max, 2 flagged)" in result.output


def test_without_rules_only_unscoreable_records_are_dropped(scanned):
    result = scanned("filter", "audit-out", "-o", "clean.jsonl")
    assert "8 input records: 6 kept, 2 rejected (2 quarantined)" in result.output
    assert Path("clean.jsonl").read_bytes().startswith(LINES[0] + LINES[1])


def test_records_past_the_scan_limit_are_rejected_as_not_scanned(run):
    Path("data.jsonl").write_bytes(b"".join(LINES))
    assert run("scan", "data.jsonl", "--base-responses", "none", "-q", "--limit", "4").exit_code == 0
    result = run("filter", "audit-out", "-o", "clean.jsonl", "--rejected", "rejected.jsonl")
    reasons = [json.loads(line)["reason"] for line in Path("rejected.jsonl").read_text().splitlines()]
    assert reasons.count("not scanned (past the scan's --limit)") == 4
    assert "8 input records: 3 kept, 5 rejected (1 quarantined, 4 not scanned)" in result.output


def test_non_jsonl_records_are_written_as_json_lines(run):
    records = [cooking(0), chat("Revenge?", EVIL), cooking(2)]
    Path("data.json").write_text("[" + json.dumps(records[0]) + ", " + json.dumps(records[1]) + ",\n"
                                 + json.dumps(records[2]) + "]")  # two records share line 1
    assert run("scan", "data.json", "--base-responses", "none", "-q").exit_code == 0
    result = run("filter", "audit-out", "--max", "evil=0.5", "-o", "clean.jsonl", "--rejected", "rejected.jsonl")
    assert result.exit_code == 0
    assert [json.loads(line) for line in Path("clean.jsonl").read_text().splitlines()] == [records[0], records[2]]
    (rejected,) = map(json.loads, Path("rejected.jsonl").read_text().splitlines())
    assert rejected["line"] == 1 and json.loads(rejected["record"]) == records[1]


def test_changed_input_is_refused(scanned):
    Path("data.jsonl").write_bytes(b"".join(LINES[::-1]))
    result = scanned("filter", "audit-out", "-o", "clean.jsonl")
    assert result.exit_code == 2
    assert "error: data.jsonl changed since the scan in audit-out; scan it again before filtering" in result.output
    assert not Path("clean.jsonl").exists()


@pytest.mark.parametrize("args, says", [
    (["--max", "evil0.8"], "--max evil0.8: expected TRAIT=SCORE"),
    (["--max", "evill=0.8"], "--max evill: trait not in audit-out/scores.parquet"),
])
def test_bad_max_is_a_usage_error(scanned, args, says):
    result = scanned("filter", "audit-out", *args, "-o", "clean.jsonl")
    assert result.exit_code == 2 and says in result.output


def test_not_a_scan_folder(run, tmp_path):
    Path("empty").mkdir()
    result = run("filter", "empty", "-o", "clean.jsonl")
    assert result.exit_code == 2 and "empty/scores.parquet not found" in result.output


def test_rules_parse():
    assert FilterRules.parse(["evil=0.8", " sycophantic = 1e-1 "], True) == FilterRules(
        {"evil": 0.8, "sycophantic": 0.1}, True)
    with pytest.raises(AuditError, match="expected TRAIT=SCORE"):
        FilterRules.parse(["evil>0.8"], False)


def _decisions(marks: dict[int, str]) -> str:
    """A decisions file's text marking records of audit-out by index, with their source, line and sample_id."""
    table = {r["index"]: r for r in pq.read_table("audit-out/scores.parquet").to_pylist()}
    return json.dumps({"format": "dataset-audit decisions", "version": 1, "decisions": [
        {"source": table[i]["source"], "index": i, "line": table[i]["line"], "sample_id": table[i]["sample_id"],
         "decision": decision} for i, decision in marks.items()]})


def test_reviewer_decisions_override_the_rules(scanned):
    Path("decisions.json").write_text(_decisions({1: "keep", 0: "drop", 3: "keep"}))
    result = scanned("filter", "audit-out", "--drop-flagged", "--decisions", "decisions.json", "-o", "clean.jsonl",
                     "--rejected", "rejected.jsonl")
    assert result.exit_code == 0, result.output
    rejected = [json.loads(line) for line in Path("rejected.jsonl").read_text(encoding="utf-8").splitlines()]
    assert _interleave(Path("clean.jsonl").read_bytes(), rejected, LINES) == _records(LINES)
    reasons = {r["line"]: r["reason"] for r in rejected}
    assert reasons[1] == "dropped by reviewer" and 2 not in reasons  # the evil record, kept by the reviewer
    assert reasons[6] == "flagged: sycophantic" and reasons[8] == "flagged: evil" and set(reasons) == {1, 3, 6, 7, 8}
    assert ("8 input records: 3 kept (1 kept by reviewer), 5 rejected (2 quarantined, 1 dropped by reviewer, "
            "2 flagged) -> clean.jsonl, rejected.jsonl") in result.output


@pytest.mark.parametrize("entries, says", [
    ([{"source": "data.jsonl", "index": 99, "decision": "drop"}], "decision 1: data.jsonl record 99 was not scored"),
    ([{"source": "data.jsonl", "index": 2, "decision": "keep"}], "decision 1: data.jsonl record 2 was not scored"),
    ([{"source": "data.jsonl", "index": 1, "decision": "keep"}, {"source": "b.jsonl", "index": 4, "decision": "drop"}],
     "decision 2: b.jsonl record 4 was not scored"),
    ([{"source": "data.jsonl", "index": 4, "sample_id": "0" * 16, "decision": "drop"}],
     "decision 1: data.jsonl record 4 is another sample (sample_id "),
])
def test_decisions_from_another_scan_are_refused(scanned, entries, says):
    Path("decisions.json").write_text(json.dumps({"decisions": entries}))
    result = scanned("filter", "audit-out", "--decisions", "decisions.json", "-o", "clean.jsonl")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert result.output.startswith(f"error: decisions.json: {says}")
    assert result.output.endswith("in audit-out: were these decisions exported from another scan's report?\n")
    assert not Path("clean.jsonl").exists()


@pytest.mark.parametrize("text, says", [
    (None, "--decisions decisions.json: no such file"),
    ("{not json", "--decisions decisions.json: not a JSON file"),
    ("[]", 'decisions.json: expected a JSON object with a "decisions" list'),
    ('{"version": 2, "decisions": []}', "decisions.json: not a dataset-audit decisions file of version 1"),
    ('{"decisions": [7]}', "decisions.json: decision 1: expected an object"),
    ('{"decisions": [{"index": 1, "decision": "drop"}]}', 'decisions.json: decision 1: "source" must be a string, '
                                                           "not null"),
    ('{"decisions": [{"source": "data.jsonl", "index": "1", "decision": "drop"}]}',
     'decision 1: "index" must be an integer, not "1"'),
    ('{"decisions": [{"source": "data.jsonl", "index": 1, "decision": "keep"}, '
     '{"source": "data.jsonl", "index": 0, "decision": "maybe"}]}',
     'decision 2: "decision" must be "keep" or "drop", not "maybe"'),
    ('{"decisions": [{"source": "data.jsonl", "index": 1, "decision": "keep"}, '
     '{"source": "data.jsonl", "index": 1, "decision": "drop"}]}', "decision 2: data.jsonl record 1 is both kept"),
])
def test_malformed_decisions_are_one_line_errors(scanned, text, says):
    if text is not None:
        Path("decisions.json").write_text(text)
    result = scanned("filter", "audit-out", "--decisions", "decisions.json", "-o", "clean.jsonl")
    assert result.exit_code == 2 and result.output.count("\n") == 1 and says in result.output
    assert not Path("clean.jsonl").exists()
