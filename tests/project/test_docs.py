"""The README and the docs site: every rendered figure matches the results it claims, the README keeps the
set-up commands CI runs, and the mkdocs site builds without warnings."""

import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

SCRIPT = ROOT / "scripts" / "render_docs.py"


def load_renderer():
    spec = importlib.util.spec_from_file_location("render_docs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_rendered_figures_match_their_results():
    done = subprocess.run([sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr


def test_check_names_a_figure_edited_by_hand():
    render = load_renderer()
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- render:example-scan -->\n(.*?)<!-- /render:example-scan -->", readme, re.S)
    assert block and "**" in block[1]
    edited = readme.replace(block[1], re.sub(r"\*\*[^*]+\*\*", "**99 s**", block[1], count=1))
    fresh, changed = render.render_text(edited, "README.md")
    assert changed == ["example-scan"]
    assert fresh == readme


def test_unknown_or_unclosed_block_is_an_error():
    render = load_renderer()
    with pytest.raises(SystemExit, match="unknown render block 'nonesuch'"):
        render.render_text("<!-- render:nonesuch -->\n<!-- /render:nonesuch -->\n", "x.md")
    with pytest.raises(SystemExit, match="no closing"):
        render.render_text("<!-- render:trust -->\nleft open\n", "x.md")


def test_results_without_provenance_say_so():
    render = load_renderer()
    without = render.Results(Path("x.json"), {"machine": "a test box", "sections": {"s": {"finished_at": "then"}}})
    assert "Command and commit: recorded before provenance was kept. Machine: a test box." in without.stamp("s")
    with_provenance = render.Results(Path("x.json"), {"provenance": {"command": "python b.py", "commit": "abc1234",
                                                                      "machine": "a test box"},
                                                      "sections": {"s": {"finished_at": "then"}}})
    assert with_provenance.stamp("s").endswith("Command: `python b.py`. Commit: abc1234. Machine: a test box.*")


def test_readme_keeps_the_set_up_commands_ci_runs():
    """.ci/run runs the README's test command one step a line: the install line, then `timed LABEL COMMAND` for the
    fast and the slow test sets."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    install = next(line for line in ci if line.startswith("pip install torch=="))
    timed = [shlex.split(line) for line in ci if line.startswith("timed ")]
    assert [t[1] for t in timed] == ["fast tests", "slow tests"]
    ci_test_command = " && ".join([install] + [shlex.join(t[2:]) for t in timed])
    assert ci_test_command.endswith("&& python -m pytest && python -m pytest -m slow")
    assert f"```bash\n{ci_test_command}\n```" in readme
    install_and_scan = install.replace("'.[test]'", ".") + " && dataset-audit scan examples/chat_mix.jsonl"
    assert f"```bash\n{install_and_scan}\n```" in readme
    assert len(readme.splitlines()) <= 250


def test_every_docs_page_is_in_the_site_navigation():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert [p for p in pages if f": {p}" not in nav] == []


def test_docs_site_builds_without_warnings(tmp_path):
    pytest.importorskip("mkdocs")
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(tmp_path)],
                          capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "validation" / "index.html").is_file()
