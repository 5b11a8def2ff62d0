"""The pre-commit hook definition at the repository root (.pre-commit-hooks.yaml), run by `pre-commit try-repo`
on a project with a good and a bad data file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT, cooking, write_jsonl


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_hook_passes_good_data_and_fails_bad_data(tmp_path):
    pytest.importorskip("pre_commit")
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    write_jsonl(project / "data" / "good.jsonl", [cooking(i) for i in range(3)])
    write_jsonl(project / "data" / "bad.jsonl", [cooking(0), "{not json"])
    (project / "data" / "empty.jsonl").write_text("")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home"), "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    subprocess.run(["git", "init", "-q"], cwd=project, check=True, env=env)
    subprocess.run(["git", "add", "."], cwd=project, check=True, env=env)

    def hook(*files: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pre_commit", "try-repo", str(ROOT), "dataset-audit-validate",
                               "--files", *files], cwd=project, env=env, capture_output=True, text=True, timeout=300)

    good = hook("data/good.jsonl")
    assert good.returncode == 0, good.stdout + good.stderr
    assert "dataset-audit validate...." in good.stdout and good.stdout.rstrip().endswith("Passed")
    bad = hook("data/good.jsonl", "data/bad.jsonl")
    assert bad.returncode == 1
    assert "data/bad.jsonl:2: invalid JSON" in bad.stdout
    empty = hook("data/empty.jsonl")  # an empty training file does not pass
    assert empty.returncode == 1 and "- exit code: 2" in empty.stdout  # pre-commit exits 1 for any failed hook
    assert "error: no records in data/empty.jsonl" in empty.stdout
