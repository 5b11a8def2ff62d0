"""--fail-on gates: parsing expressions, and checking them on a scores table."""

from __future__ import annotations

import pytest

from auditor.errors import AuditError
from auditor.outputs.gate import Gate, check_gate, check_gates
from tests.helpers import scores_table


@pytest.mark.parametrize("text, expected", [
    ("evil>=0.8", Gate("evil>=0.8", "evil", "score", ">=", 0.8)),
    (" evil > 1 ", Gate("evil > 1", "evil", "score", ">", 1.0)),
    ("evil:score>=.5", Gate("evil:score>=.5", "evil", "score", ">=", 0.5)),
    ("evil:flagged>1%", Gate("evil:flagged>1%", "evil", "flagged", ">", 1.0, percent=True)),
    ("evil:flagged>3", Gate("evil:flagged>3", "evil", "flagged", ">", 3.0)),
    ("my-trait.v2:mean_dp>-0.1", Gate("my-trait.v2:mean_dp>-0.1", "my-trait.v2", "mean_dp", ">", -0.1)),
    ("evil:mean_dp>=1e-2", Gate("evil:mean_dp>=1e-2", "evil", "mean_dp", ">=", 0.01)),
])
def test_parse(text, expected):
    assert Gate.parse(text) == expected


@pytest.mark.parametrize("text, says", [
    ("evil=>0.8", "expected TRAIT>=SCORE"),
    ("evil<>0.8", "expected TRAIT>=SCORE"),
    ("evil>=", "expected TRAIT>=SCORE"),
    ("evil>=high", "expected TRAIT>=SCORE"),
    ("", "expected TRAIT>=SCORE"),
    ("evil:flaged>1%", "unknown metric 'flaged'"),
    ("evil>=50%", "percentage only works with TRAIT:flagged"),
    ("evil:mean_dp>1%", "percentage only works with TRAIT:flagged"),
])
def test_parse_errors_are_one_line_and_name_the_expression(text, says):
    with pytest.raises(AuditError) as err:
        Gate.parse(text)
    message = str(err.value)
    assert says in message and repr(text) in message and "\n" not in message


def _table():
    return scores_table([
        {"evil": 0.1, "line": 1},
        {"evil": 0.9, "line": 2, "source": "a.jsonl"},
        {"evil": 0.6, "line": 3},
        {"evil": 1.4, "line": 4, "source": "b.jsonl"},
        {"evil": 0.2, "line": 5},
    ] + [{"evil": 0.0, "line": 6 + i} for i in range(95)])


def test_score_gate_names_offenders_highest_first():
    result = check_gate(Gate.parse("evil>=0.9"), _table())
    assert result.failed
    assert [o.where for o in result.offenders] == ["b.jsonl:4", "a.jsonl:2"]
    assert result.offenders[0].score == pytest.approx(1.4)
    assert "2 of 100 samples score >= 0.9" in result.verdict and "max 1.40" in result.verdict


def test_score_gate_strict_operator_and_pass():
    assert not check_gate(Gate.parse("evil>1.4"), _table()).failed
    assert check_gate(Gate.parse("evil>=1.4"), _table()).failed
    passed = check_gate(Gate.parse("evil>=2"), _table())
    assert not passed.failed and passed.offenders == () and passed.lines() == [passed.verdict]


def test_flagged_share_and_count():
    table = _table()  # 3 of 100 flagged at threshold 0.5
    assert check_gate(Gate.parse("evil:flagged>2%"), table).failed
    assert not check_gate(Gate.parse("evil:flagged>3%"), table).failed
    assert check_gate(Gate.parse("evil:flagged>=3"), table).failed
    result = check_gate(Gate.parse("evil:flagged>2"), table)
    assert result.failed and "3 of 100 samples flagged (3.0%)" in result.verdict
    assert [o.line for o in result.offenders] == [4, 2, 3]


def test_mean_dp_gate():
    table = _table()  # mean dP = (0.1 + 0.9 + 0.6 + 1.4 + 0.2) / 100 = 0.032
    assert not check_gate(Gate.parse("evil:mean_dp>0.05"), table).failed
    result = check_gate(Gate.parse("evil:mean_dp>0.03"), table)
    assert result.failed and "mean dP +0.032 over 100 samples" in result.verdict
    assert [o.line for o in result.offenders][:2] == [4, 2]  # samples whose own dP is over the limit


def test_empty_table_passes_every_gate():
    empty = scores_table([])
    for text in ("evil>=0", "evil:flagged>0%", "evil:flagged>0", "evil:mean_dp>=0"):
        assert not check_gate(Gate.parse(text), empty).failed


def test_lines_list_top_offenders_then_a_count():
    table = scores_table([{"evil": 1.0 + i / 100, "line": i + 1} for i in range(8)])
    lines = check_gate(Gate.parse("evil>=1"), table).lines(shown=5)
    assert lines[0].startswith("FAILED evil>=1: 8 of 8 samples")
    assert "data/train.jsonl:8  evil score 1.07" in lines[1]
    assert lines[-1].strip() == "... and 3 more" and len(lines) == 7


def test_unknown_trait_is_a_usage_error():
    with pytest.raises(AuditError, match=r"trait 'evill' is not scanned \(traits: evil, sycophantic, hallucinating\)"):
        check_gates([Gate.parse("evill>=0.5")], _table())
