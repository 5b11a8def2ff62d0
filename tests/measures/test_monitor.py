import json

import numpy as np
import pytest

from auditor.errors import AuditError
from auditor.measures.monitor import monitor, read_prompts
from auditor.traits import load_trait


def test_prompt_formats(tmp_path):
    path = tmp_path / "p.jsonl"
    lines = ['"plain string"', '{"prompt": "a prompt"}', "",
             json.dumps({"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
                                      {"role": "assistant", "content": "dropped"}]})]
    path.write_text("\n".join(lines) + "\n")
    prompts = read_prompts(path)
    assert [p.line for p in prompts] == [1, 2, 4]
    assert [p.text for p in prompts] == ["plain string", "a prompt", "u"]
    assert [m["role"] for m in prompts[2].messages] == ["system", "user"]
    (tmp_path / "p.txt").write_text("first\n\nsecond\n")
    assert [(p.line, p.text) for p in read_prompts(tmp_path / "p.txt")] == [(1, "first"), (3, "second")]


@pytest.mark.parametrize("line, says", [("{broken", r"p.jsonl:2: invalid JSON"),
                                        ('{"text": 1}', r"p.jsonl:2: unknown record format"),
                                        ('{"messages": [{"role": "assistant", "content": "x"}]}',
                                         r"p.jsonl:2: field 'messages'")])
def test_bad_lines_name_file_and_line(tmp_path, line, says):
    path = tmp_path / "p.jsonl"
    path.write_text('"ok"\n' + line + "\n")
    with pytest.raises(AuditError, match=says):
        read_prompts(path)


def test_z_is_relative_to_the_traits_evaluation_questions(tiny_lm, tiny_vector, tmp_path):
    questions = load_trait("evil").questions["eval"]
    path = tmp_path / "q.txt"
    path.write_text("\n".join(questions) + "\n")
    rows = monitor(tiny_lm, read_prompts(path), [tiny_vector])
    z = np.array([r["evil_z"] for r in rows])
    assert len(rows) == 20 and set(rows[0]) == {"line", "prompt", "evil_projection", "evil_z"}
    assert z.mean() == pytest.approx(0, abs=1e-2) and z.std(ddof=1) == pytest.approx(1, abs=1e-2)
