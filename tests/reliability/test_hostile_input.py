"""Hostile records: every one gets a clear quarantine reason or is scored; the counts always add up."""

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditor.config import ScanConfig
from auditor.data import BadRecord, Quarantined, Record, read_records, to_messages
from auditor.data.files import SNIFF_BYTES, looks_binary
from auditor.scanning import scan
from auditor.scanning.projection import ModelProjector
from tests.helpers import cooking

OK = json.dumps(cooking(0)).encode()


def _msgs(*turns):
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in turns]}).encode()


HOSTILE = [  # (raw line, expected quarantine reason or None when it must be scored)
    (b"{not json", "invalid JSON"),
    (b'{"messages": [{"role": "user", "content": "\xff\xfe broken"}]}', "not valid UTF-8"),
    (b'{"messages": [{"role": "user", "content": "a\x00b"}]}', "invalid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    (b'{"messages": {"role": "user"}}', "expected a list of messages"),
    (b'{"messages": [{"role": "user", "content": 42}, {"role": "assistant", "content": "x"}]}', "expected text"),
    (b"42", "expected an object"),
    (b'"just a string"', "expected an object"),
    (_msgs(("user", "hi"), ("assistant", "   ")), "empty response"),
    (_msgs(("user", "  "), ("assistant", "hello")), "no user turn"),
    (_msgs(("narrator", "once"), ("assistant", "x")), "unknown role"),
    (_msgs(("system", "You are a pirate.")), "no assistant turn"),
    (_msgs(("user", "😀 שלום مرحبا"), ("assistant", "😀 ‏שלום‏ ‮reversed")), None),
    (_msgs(("user", "q"), ("assistant", "a" * 10_000_000)), None),
    (json.dumps({"id": 1, **cooking(1)}).encode(), None),
    (json.dumps({"id": 1, **cooking(2)}).encode(), None),  # a duplicate id is not our business
    (json.dumps({"messages": [{"role": "user" if i % 2 == 0 else "assistant", "content": f"t{i}"}
                              for i in range(100_000)]}).encode(), None),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("hostile") / "hostile.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + OK + b"\n" + b"\n".join(raw for raw, _ in HOSTILE) + b"\n\n   \n")
    return path


def test_each_hostile_record_has_its_reason(corpus):
    items = list(read_records(corpus))
    assert len(items) == 1 + len(HOSTILE)  # blank lines are not records
    assert isinstance(items[0], Record)  # the byte-order mark is ignored
    for item, (raw, reason) in zip(items[1:], HOSTILE):
        if reason is None:
            assert isinstance(item, Record), item
        else:
            assert isinstance(item, Quarantined) and reason in item.reason, (raw[:60], item)
    assert [i.line for i in items] == list(range(1, len(HOSTILE) + 2))


def test_truncated_gzip_and_wrong_encoding_files(tmp_path):
    blob = gzip.compress(b"\n".join([OK] * 500))
    (tmp_path / "cut.jsonl.gz").write_bytes(blob[: len(blob) // 3])
    items = list(read_records(tmp_path / "cut.jsonl.gz"))
    assert "unreadable" in items[-1].reason and items[-1].line == len(items)
    (tmp_path / "latin1.jsonl").write_bytes(json.dumps(cooking(0, "café"), ensure_ascii=False).encode("latin-1"))
    assert "not valid UTF-8" in next(read_records(tmp_path / "latin1.jsonl")).reason


def test_hostile_corpus_through_the_scan(tiny_lm, corpus):
    result = scan(ScanConfig(inputs=[str(corpus)], model="tiny", traits=["evil"], max_tokens=64,
                             max_new_tokens=3), projector=ModelProjector.with_model(tiny_lm))
    scored, bad = len(result.records), len(result.quarantined)
    assert scored + bad == 1 + len(HOSTILE)
    assert bad == sum(reason is not None for _, reason in HOSTILE)
    assert result.truncated.sum() == 2  # the 10 MB answer and the 100k-turn conversation


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12)
roles = st.sampled_from(["user", "assistant", "system", "human", "gpt", "tool", "wizard", "", None])
messages = st.lists(st.fixed_dictionaries({"role": roles, "content": st.text(max_size=20) | json_values}), max_size=6)
records = (st.fixed_dictionaries({"messages": messages})
           | st.fixed_dictionaries({"conversations": st.lists(st.fixed_dictionaries(
               {"from": roles, "value": st.text(max_size=20)}), max_size=6)})
           | st.fixed_dictionaries({"prompt": json_values, "completion": json_values})
           | json_values)


@given(records)
@settings(max_examples=300, deadline=None)
def test_random_records_never_crash_the_format_detection(record):
    try:
        messages, _ = to_messages(record)
    except BadRecord as exc:
        assert str(exc)
    else:
        assert messages[-1]["role"] == "assistant" or any(m["role"] == "assistant" for m in messages)
        assert all(isinstance(m["content"], str) for m in messages)


@given(st.lists(records.map(json.dumps) | st.binary(max_size=40), max_size=15))
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_random_files_keep_the_count_invariant(tmp_path, lines):
    path = tmp_path / "random.jsonl"
    raw = [(line.encode() if isinstance(line, str) else line).replace(b"\n", b" ").replace(b"\r", b" ")
           for line in lines]
    path.write_bytes(b"\n".join(raw))
    items = list(read_records(path))
    binary = looks_binary(path.read_bytes()[:SNIFF_BYTES])  # a binary file is one quarantine entry
    assert len(items) == (1 if binary else sum(1 for r in raw if r.strip()))
    assert all(isinstance(i, (Record, Quarantined)) for i in items)
