"""The real CLI: version, help and usage errors (no model; the scans on the embedded model are in tests/e2e)."""


import pytest

from auditor import __version__
from tests.helpers import EXAMPLES, run

EXAMPLE = EXAMPLES / "chat_mix.jsonl"


def test_version_and_help():
    assert run("--version").output.strip() == f"dataset-audit, version {__version__}"
    for command in ("scan", "report", "filter", "validate", "evaluate"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Usage:" in result.output


@pytest.mark.parametrize("make, says", [
    (lambda tmp: tmp / "missing.jsonl", "no such file or directory"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no data files found"),
    (lambda tmp: (tmp / "x.txt").write_text("hi") and tmp / "x.txt", "unsupported file type"),
])
def test_unreadable_input_exits_2_with_one_line(tmp_path, make, says):
    result = run("scan", str(make(tmp_path)), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and result.output.startswith("error: ") and says in result.output


def test_bad_option_exits_2():
    assert run("scan", str(EXAMPLE), "--turns", "first").exit_code == 2
