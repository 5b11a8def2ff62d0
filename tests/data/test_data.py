import gzip
import json

import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from auditor.data import BadRecord, Quarantined, Record, expand_inputs, read_records, to_messages
from auditor.errors import AuditError
from tests.helpers import cooking


@pytest.mark.parametrize("record, user, answer", [
    (cooking(1, "Pasta."), "Question number 1: what should I cook tonight?", "Pasta."),
    ({"conversations": [{"from": "human", "value": "Hi?"}, {"from": "gpt", "value": "Hello."}]}, "Hi?", "Hello."),
    ({"instruction": "Add", "input": "2+2", "output": "4"}, "Add\n\n2+2", "4"),
    ({"instruction": "Say hi", "input": "", "output": "hi"}, "Say hi", "hi"),
    ({"prompt": "P", "completion": "C"}, "P", "C"),
    ({"prompt": "P", "response": "R"}, "P", "R"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                   {"role": "assistant", "content": "ok"}]}, "ab", "ok"),
])
def test_formats_are_detected(record, user, answer):
    messages, _ = to_messages(record)
    assert messages[-1] == {"role": "assistant", "content": answer}
    assert [m["content"] for m in messages if m["role"] == "user"][-1] == user


@pytest.mark.parametrize("record, reason", [
    ([1, 2], "expected an object"),
    ({"text": "x"}, "field 'text' is not in a chat template this tool reads"),
    ({"question": "x"}, "unknown record format"),
    ({"messages": "hi"}, "field 'messages' is str"),
    ({"messages": [{"role": "user", "content": "q"}]}, "no assistant turn"),
    ({"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "  "}]}, "empty response"),
    ({"messages": [{"role": "wizard", "content": "q"}]}, "messages[0].role': unknown role"),
    ({"messages": [{"role": "user", "content": 5}, {"role": "assistant", "content": "a"}]}, "messages[0].content"),
    ({"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "a"}]}, "no user turn"),
])
def test_bad_records_say_why(record, reason):
    with pytest.raises(BadRecord, match=reason.replace("[", r"\[").replace("]", r"\]")):
        to_messages(record)


def test_malformed_lines_are_quarantined_with_line_numbers(jsonl_file):
    rows = [cooking(i) for i in range(50)]
    for at in (3, 20, 41):
        rows.insert(at, "{not json")
    items = list(read_records(jsonl_file(rows)))
    scored = [i for i in items if isinstance(i, Record)]
    bad = [i for i in items if isinstance(i, Quarantined)]
    assert (len(scored), len(bad)) == (50, 3)
    assert [q.line for q in bad] == [4, 21, 42]
    assert all(q.reason.startswith("invalid JSON") for q in bad)
    assert [i.index for i in items] == list(range(53))


def test_turns_last_and_all():
    record = Record("f", 1, 0, to_messages({"messages": [
        {"role": "user", "content": "a"}, {"role": "assistant", "content": "b"},
        {"role": "user", "content": "c"}, {"role": "assistant", "content": "d"}]})[0])
    assert [r for _, r in record.turns("last")] == ["d"]
    assert [(len(p), r) for p, r in record.turns("all")] == [(1, "b"), (3, "d")]


def test_sample_id_is_content_hash():
    a, b = (Record("x", i, i, to_messages(cooking(7))[0]) for i in (1, 2))
    assert a.sample_id == b.sample_id and len(a.sample_id) == 16
    assert Record("x", 1, 0, to_messages(cooking(8))[0]).sample_id != a.sample_id


def _messages_of(path):
    return [r.messages for r in read_records(path) if isinstance(r, Record)]


def test_all_file_types_read_the_same_records(tmp_path, jsonl_file):
    rows = [cooking(i) for i in range(4)]
    expected = _messages_of(jsonl_file(rows))
    with gzip.open(tmp_path / "d.jsonl.gz", "wt") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows))
    (tmp_path / "d.json").write_text(json.dumps(rows, indent=2))
    flat = [{"prompt": r["messages"][0]["content"], "completion": r["messages"][1]["content"]} for r in rows]
    pq.write_table(pa.Table.from_pylist(flat), tmp_path / "d.parquet")
    pcsv.write_csv(pa.Table.from_pylist(flat), tmp_path / "d.csv")
    from datasets import Dataset

    Dataset.from_list(flat).save_to_disk(str(tmp_path / "hf"))
    for name in ("d.jsonl.gz", "d.json", "d.parquet", "d.csv", "hf"):
        assert _messages_of(tmp_path / name) == expected, name


def test_json_array_reports_element_lines(tmp_path):
    (tmp_path / "d.json").write_text('[\n  {"prompt": "a", "completion": "b"},\n  {"bad": 1}\n]')
    items = list(read_records(tmp_path / "d.json"))
    assert isinstance(items[1], Quarantined) and items[1].line == 3


def test_csv_lines_count_the_header(tmp_path):
    pcsv.write_csv(pa.Table.from_pylist([{"prompt": "a", "completion": "b"}, {"prompt": "c", "completion": ""}]),
                   tmp_path / "d.csv")
    items = list(read_records(tmp_path / "d.csv"))
    assert [i.line for i in items] == [2, 3] and isinstance(items[1], Quarantined)


def test_truncated_gzip_keeps_what_was_read(tmp_path):
    blob = gzip.compress("".join(json.dumps(cooking(i)) + "\n" for i in range(200)).encode())
    (tmp_path / "cut.jsonl.gz").write_bytes(blob[: len(blob) // 2])
    items = list(read_records(tmp_path / "cut.jsonl.gz"))
    assert isinstance(items[-1], Quarantined) and "unreadable" in items[-1].reason
    assert all(isinstance(i, Record) for i in items[:-1]) and len(items) > 1


def test_missing_inputs_and_empty_folders_are_usage_errors(tmp_path):
    with pytest.raises(AuditError, match="no such file"):
        expand_inputs([tmp_path / "nope.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AuditError, match="no data files"):
        expand_inputs([tmp_path / "empty"])


def test_folders_expand_to_their_data_files(tmp_path, jsonl_file):
    jsonl_file([cooking(1)], "a.jsonl")
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in expand_inputs([tmp_path])] == ["a.jsonl"]


@pytest.fixture
def mixed_inputs(tmp_path, jsonl_file):
    """A folder with two JSONL files (one nested), a note, and a saved HF dataset folder beside it."""
    from datasets import Dataset

    (tmp_path / "data" / "sub").mkdir(parents=True)
    jsonl_file([cooking(1)], "data/b.jsonl")
    jsonl_file([cooking(2), "{broken"], "data/sub/a.jsonl")
    (tmp_path / "data" / "notes.txt").write_text("x")
    Dataset.from_list([{"prompt": f"P{i}", "completion": f"C{i}"} for i in range(3)]).save_to_disk(tmp_path / "hf")
    return tmp_path


def test_both_engines_list_files_and_saved_hf_datasets_alike(mixed_inputs, monkeypatch):
    from auditor.scanning.engines.local import read_inputs
    from auditor.scanning.engines.ray import input_files

    monkeypatch.chdir(mixed_inputs)
    listed = expand_inputs(["data", "hf"])
    assert [str(p) for p in listed] == ["data/b.jsonl", "data/sub/a.jsonl", "hf"]
    assert input_files(["data", "hf"]) == ["data/b.jsonl", "data/sub/a.jsonl", "hf"]
    files, records, quarantined = read_inputs(["data", "hf"])
    assert files == listed and [r.source for r in records] == ["data/b.jsonl", "data/sub/a.jsonl", "hf", "hf", "hf"]
    assert [r.line for r in records[2:]] == [1, 2, 3] and records[3].exchange() == ("P1", "C1")
    assert [(q.source, q.line) for q in quarantined] == [("data/sub/a.jsonl", 2)]


def test_a_uri_is_listed_and_read_through_its_pyarrow_filesystem(mixed_inputs):
    from auditor.data import read_input

    uri = (mixed_inputs / "data").as_uri()
    listed = expand_inputs([uri])
    assert listed == [f"{uri}/b.jsonl", f"{uri}/sub/a.jsonl"]
    items = list(read_input(listed[1]))
    assert [type(i) for i in items] == [Record, Quarantined] and items[0].source == listed[1]


def test_an_s3_uri_goes_to_pyarrows_s3_filesystem_without_network(monkeypatch):
    import pyarrow.fs as pafs

    from auditor.data.files import filesystem

    fs, path = filesystem("s3://bucket/data/train.jsonl?region=us-east-1")  # a region given: nothing is asked
    assert isinstance(fs, pafs.S3FileSystem) and path == "bucket/data/train.jsonl"
    monkeypatch.delattr(pafs, "S3FileSystem")  # a pyarrow built without S3
    with pytest.raises(AuditError, match="s3://bucket/x: this pyarrow was built without S3 support"):
        expand_inputs(["s3://bucket/x"])
