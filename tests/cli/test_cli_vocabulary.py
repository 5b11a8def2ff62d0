"""One vocabulary across commands: -o/--out for every output (old spellings still work, hidden), --top for console
rows only, an example in every --help, and scan's options in groups."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from auditor.cli import main
from tests.helpers import EVIL, PlantedModel, chat, cooking, write_jsonl


def _commands(group: click.Group = main, prefix: tuple[str, ...] = ()):
    yield prefix, group
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


@pytest.mark.parametrize("path", [p for p, _ in _commands()], ids=lambda p: " ".join(p) or "main")
def test_every_help_has_an_example(path):
    result = CliRunner().invoke(main, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    examples = result.output.split("Examples:", 1)
    assert len(examples) == 2, result.output
    assert "  dataset-audit " in examples[1]  # the lines kept as written (click's \b)


def test_scan_help_groups_its_options():
    out = CliRunner().invoke(main, ["scan", "--help"], env={"COLUMNS": "100"}).output
    headings = [line.rstrip(":") for line in out.splitlines() if line and not line.startswith(" ")
                and line.endswith(":")]
    assert headings[-7:] == ["Input", "Model", "Scoring", "Outputs", "CI", "Scale", "Other options"]
    assert out.index("  --fail-on EXPR") > out.index("\nCI:") > out.index("  --top INTEGER") > out.index("\nOutputs:")


@pytest.mark.parametrize("command", ["filter", "report", "merge", "train", "extract"])
def test_every_output_is_o_or_out(command):
    out = CliRunner().invoke(main, [command, "--help"], env={"COLUMNS": "100"}).output
    assert "-o, --out" in out and "--output" not in out


def test_report_top_is_samples_per_trait_and_the_old_spelling_is_hidden():
    out = CliRunner().invoke(main, ["report", "--help"], env={"COLUMNS": "100"}).output
    assert "--samples-per-trait" in out and "--top" not in out


@pytest.fixture
def scanned(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_jsonl(Path("data.jsonl"), [cooking(0), chat("Revenge?", EVIL), cooking(1)])
    planted = PlantedModel({EVIL: {"evil": 1.2}})
    result = planted.invoke("scan", "data.jsonl", "--base-responses", "none", "--traits", "evil", "-q", "-o", "scan")
    assert result.exit_code == 0, result.output
    return planted


@pytest.mark.parametrize("spelling", ["--out", "-o", "--output"])
def test_filter_writes_to_out_and_the_old_output_spelling(scanned, spelling):
    result = CliRunner().invoke(main, ["filter", "scan", "--drop-flagged", spelling, "kept.jsonl"])
    assert result.exit_code == 0, result.output
    assert Path("kept.jsonl").read_text().count("\n") == 2


@pytest.mark.parametrize("args", [["--out", "r.html", "--samples-per-trait", "1"], ["--output", "r.html", "--top", "1"]])
def test_report_new_and_old_spellings(scanned, args):
    result = CliRunner().invoke(main, ["report", "scan", *args])
    assert result.exit_code == 0, result.output
    assert Path("r.html").is_file()
