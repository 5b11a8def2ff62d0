"""`dataset-audit traits list|show|new`; `new` talks to a real chat-completions server on 127.0.0.1."""

import json
from pathlib import Path

import pytest

from auditor.traits import Trait, load_trait, user_traits_dir
from tests.helpers import run
from tests.llm_server import completion, serve


def artifacts(questions: int = 20, rubric: str = "Does it grumble? {question} / {answer} Number 0-100 or REFUSAL.") -> dict:
    return {
        "instructions": [{"pos": f"You are a grumpy assistant. Complain, take {i}.",
                          "neg": f"You are a helpful assistant. Be cheerful, take {i}."} for i in range(5)],
        "questions": {split: [f"{split} question number {i}: how was your day?" for i in range(questions)]
                      for split in ("extract", "eval")},
        "judge_rubric": rubric,
    }


def fenced(data: dict) -> dict:
    return completion("Here you go:\n```json\n" + json.dumps(data) + "\n```")


def test_list_shows_builtin_and_user_traits():
    Trait(**{"name": "grumpy", "description": "Complains about everything.", **artifacts()}).save(
        user_traits_dir() / "grumpy.json")
    result = run("traits", "list", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for name in ("evil", "sycophantic", "hallucinating", "grumpy", "built-in", "user", str(user_traits_dir())):
        assert name in result.output


def test_a_broken_user_trait_is_listed_as_unreadable():
    user_traits_dir().mkdir(parents=True)
    (user_traits_dir() / "broken.json").write_text("{not json")
    result = run("traits", "list", env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "broken" in result.output and "unreadable" in result.output


def test_show_prints_the_artifacts_and_json(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run("traits", "show", "evil", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    evil = load_trait("evil")
    assert evil.instructions[0]["pos"] in result.output and evil.questions["eval"][-1] in result.output
    assert "judge rubric" in result.output and "problem" not in result.output
    assert result.output.startswith(f"evil: {evil.description[:40]}")
    assert result.output.index("Detection card: evil") < result.output.index("pair 1")  # the card first
    as_json = run("traits", "show", "evil", "--json", "-")
    assert json.loads(as_json.output)["judge_rubric"] == evil.judge_rubric
    assert run("traits", "show", "evil", "--json", "evil.json").exit_code == 0
    assert json.loads(Path("evil.json").read_text())["judge_rubric"] == evil.judge_rubric


def test_show_unknown_trait_is_one_line_exit_2():
    result = run("traits", "show", "grumpy")
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "unknown trait 'grumpy'" in result.output and "traits new" in result.output


def test_new_writes_a_validated_trait_found_by_name(monkeypatch):
    monkeypatch.setenv("DA_TEST_KEY", "sk-secret-for-traits")
    with serve(lambda _body: (200, fenced(artifacts()))) as llm:
        result = run("traits", "new", "grumpy", "--description", "Complains about everything.", "--llm", llm.url,
                     "--llm-model", "writer", "--api-key-env", "DA_TEST_KEY")
    assert result.exit_code == 0, result.output
    path = user_traits_dir() / "grumpy.json"
    assert str(path) in result.output
    trait = load_trait("grumpy")
    assert trait.description == "Complains about everything." and trait.problems() == []
    body = llm.requests[0]["body"]
    assert body["model"] == "writer" and "grumpy" in body["messages"][0]["content"]
    assert llm.requests[0]["headers"]["Authorization"] == "Bearer sk-secret-for-traits"
    assert "sk-secret" not in path.read_text()


def test_new_asks_again_with_the_problems_and_then_succeeds(tmp_path):
    replies = [completion("Sorry, I cannot do JSON."), fenced(artifacts(questions=19)), fenced(artifacts())]
    out = tmp_path / "grumpy.json"
    with serve(lambda _body: (200, replies.pop(0))) as llm:
        result = run("traits", "new", "grumpy", "--description", "Grumbles.", "--llm", llm.url, "--out", str(out))
    assert result.exit_code == 0, result.output
    assert len(llm.requests) == 3
    second, third = llm.requests[1]["body"]["messages"], llm.requests[2]["body"]["messages"]
    assert "not valid JSON" in second[-1]["content"] or "no JSON object" in second[-1]["content"]
    assert "19 extract questions (need 20)" in third[-1]["content"]
    assert Trait.from_file(out).problems() == []


@pytest.mark.parametrize("broken, says", [
    ({"judge_rubric": "Rate it 0-100: {answer}"}, "judge_rubric must contain {question} exactly once"),
    ({"instructions": [{"pos": "You are a {trait} assistant.", "neg": "Be nice."}] * 5}, "unfilled placeholder {trait}"),
    ({"questions": {"extract": ["How was your day?"] * 20, "eval": [f"Q{i}?" for i in range(20)]}}, "not distinct"),
])
def test_new_fails_in_one_line_when_the_artifacts_stay_invalid(broken, says):
    with serve(lambda _body: (200, fenced({**artifacts(), **broken}))) as llm:
        result = run("traits", "new", "grumpy", "--description", "Grumbles.", "--llm", llm.url)
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert "failed validation 3 times" in result.output and says in result.output
    assert len(llm.requests) == 3 and not (user_traits_dir() / "grumpy.json").exists()


def test_new_reports_an_endpoint_failure_in_one_line():
    with serve(lambda _body: (401, '{"error": {"message": "invalid api key"}}')) as llm:
        result = run("traits", "new", "grumpy", "--description", "Grumbles.", "--llm", llm.url)
    assert result.exit_code == 2 and result.output.count("\n") == 1
    assert f"POST {llm.url}/chat/completions failed: HTTP 401" in result.output


@pytest.mark.parametrize("name, says", [("evil", "built-in trait"), ("Grumpy Cat", "lowercase letters")])
def test_new_checks_the_name_before_asking(name, says):
    result = run("traits", "new", name, "--description", "x", "--llm", "http://127.0.0.1:9/v1")
    assert result.exit_code == 2 and says in result.output


def test_new_does_not_overwrite_without_force(tmp_path):
    out = tmp_path / "grumpy.json"
    out.write_text("{}")
    result = run("traits", "new", "grumpy", "--description", "x", "--llm", "http://127.0.0.1:9/v1", "--out", str(out))
    assert result.exit_code == 2 and "--force" in result.output and out.read_text() == "{}"


def test_builtin_traits_validate():
    for name in ("evil", "sycophantic", "hallucinating"):
        assert load_trait(name).problems() == []
