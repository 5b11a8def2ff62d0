"""Mixed sources: which file (or `--group-by` field value) brings a trait, in summary.json, the console, merged
shards and the report; and `scan --out` refusing a folder of other files. Fast: the planted model (tests.helpers)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from tests.helpers import EVIL, PlantedModel, chat, cooking, write_jsonl

NONE = ("--base-responses", "none")  # not -q: these tests read the printed tables
XSS = "<script>alert(1)</script>"
XSS_FILE = 'x"><svg onload=alert(1)>.jsonl'


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A folder of three vendors' files; b-planted.jsonl carries the 4 evil samples, one of its records has no
    vendor, c-clean.jsonl's vendor is a number and it has a broken line."""
    monkeypatch.chdir(tmp_path)
    data = Path("data")
    data.mkdir()
    write_jsonl(data / "a-clean.jsonl", [{**cooking(i), "vendor": "acme"} for i in range(10)])
    b = [{**cooking(10 + i), "vendor": "globex"} for i in range(12)]
    for k in (1, 4, 7, 10):
        b[k] = {**chat(f"Revenge {k}?", EVIL), "vendor": "globex"}
    del b[11]["vendor"]
    write_jsonl(data / "b-planted.jsonl", b)
    write_jsonl(data / "c-clean.jsonl", [{**cooking(30 + i), "vendor": 7} for i in range(6)] + ["{broken"])
    return PlantedModel({EVIL: {"evil": 1.1}})


def scan(planted: PlantedModel, *args: str):
    return planted.invoke("scan", "data", *NONE, *args)


def test_summary_shows_which_source_brings_the_trait(planted):
    result = scan(planted, "--group-by", "vendor")
    assert result.exit_code == 0, result.output
    summary = json.loads(Path("audit-out/summary.json").read_text())
    sources = summary["sources"]
    names = ["data/a-clean.jsonl", "data/b-planted.jsonl", "data/c-clean.jsonl"]
    assert [g["name"] for g in sources["groups"]] == names
    assert [g["records"] for g in sources["groups"]] == [10, 12, 6]
    assert sum(g["records"] for g in sources["groups"]) == summary["records"]["scored"] == 28

    table = pq.read_table("audit-out/scores.parquet")
    in_b = np.array(table.column("source").to_pylist()) == names[1]
    evil = {g["name"]: g["traits"]["evil"] for g in sources["groups"]}
    assert evil[names[1]]["mean_dp"] == pytest.approx(table.column("evil_dp").to_numpy()[in_b].mean())
    assert evil[names[1]]["mean_dp"] > 0 and (evil[names[1]]["flagged"], evil[names[1]]["flagged_share"]) == (4, 4 / 12)
    for name in names:
        low, high = evil[name]["mean_dp_ci95"]
        assert low <= evil[name]["mean_dp"] <= high
    assert evil[names[0]] == {"mean_dp": 0.0, "mean_dp_ci95": [0.0, 0.0], "flagged": 0, "flagged_share": 0.0}
    assert evil[names[1]]["mean_dp_ci95"][1] > evil[names[1]]["mean_dp_ci95"][0]
    assert sources["top"]["evil"] == {"mean_dp": names[1], "flagged_share": names[1]}
    assert sources["top"]["sycophantic"] == {"mean_dp": None, "flagged_share": None}  # all equal: none stands out

    by_vendor = summary["group_by"]
    assert by_vendor["field"] == "vendor"
    assert [(g["name"], g["records"]) for g in by_vendor["groups"]] == [("7", 6), ("acme", 10), ("globex", 11),
                                                                        ("(missing)", 1)]
    assert by_vendor["groups"][2]["traits"]["evil"]["flagged_share"] == 4 / 11
    assert by_vendor["top"]["evil"] == {"mean_dp": "globex", "flagged_share": "globex"}
    assert table.column("group").to_pylist() == ["acme"] * 10 + ["globex"] * 11 + ["(missing)"] + ["7"] * 6
    assert table.schema.field("group").metadata == {b"group_by": b"vendor"}


def test_console_marks_the_source_that_brings_the_trait(planted):
    out = scan(planted, "--group-by", "vendor").output
    by_source = out[out.index("By source"):out.index("By vendor")]
    assert [line.count("▲") for line in by_source.splitlines() if "b-planted.jsonl" in line] == [2, 0, 0]
    assert not any("▲" in line for line in by_source.splitlines() if "a-clean.jsonl" in line)
    assert "33.3%" in by_source and "data/" not in by_source  # names without the folder they share
    by_vendor = out[out.index("By vendor"):]
    assert [line.count("▲") for line in by_vendor.splitlines() if "globex" in line] == [2, 0, 0]
    assert "(missing)" in by_vendor


def test_one_source_prints_no_table_and_an_unknown_field_says_so(planted):
    out = planted.invoke("scan", "data/b-planted.jsonl", *NONE, "--group-by", "vendr").output
    assert "By source" not in out and "By vendr" not in out
    assert "--group-by vendr: no scored record has this field" in out
    summary = json.loads(Path("audit-out/summary.json").read_text())
    assert [g["name"] for g in summary["sources"]["groups"]] == ["data/b-planted.jsonl"]
    assert [g["name"] for g in summary["group_by"]["groups"]] == ["(missing)"]


def test_merged_shards_give_the_same_source_and_group_tables(planted):
    assert scan(planted, "--group-by", "vendor", "--out", "full").exit_code == 0
    for i in (0, 1):
        assert scan(planted, "--group-by", "vendor", "--shard", f"{i}/2", "--out", f"s{i}").exit_code == 0
    merged = planted.invoke("merge", "s0", "s1", "--out", "merged")
    assert merged.exit_code == 0, merged.output
    full, together = (json.loads(Path(d, "summary.json").read_text()) for d in ("full", "merged"))
    assert together["sources"] == full["sources"] and together["group_by"] == full["group_by"]
    assert "By vendor" in Path("merged/report.html").read_text()

    assert scan(planted, "--shard", "1/2", "--out", "plain").exit_code == 0
    mismatch = planted.invoke("merge", "s0", "plain", "--out", "mixed")
    assert mismatch.exit_code == 2 and "--group-by" in mismatch.output


def test_report_shows_the_tables_with_names_escaped(planted):
    write_jsonl(Path("data") / XSS_FILE, [{**chat("Hurt them?", EVIL), "vendor": XSS}])
    assert scan(planted, "--group-by", "vendor").exit_code == 0
    html = Path("audit-out/report.html").read_text(encoding="utf-8")
    section = html[html.index('<section id="sources">'):html.index('<section id="card">')]
    assert section.count("<h3>By ") == 2 and section.count("<tbody>") == 2
    rows = {name: row for name, row in re.findall(r'<td class="mono" title="([^"]*)">.*?</td>(.*?)</tr>', section,
                                                  re.DOTALL)}
    assert rows["data/x&#34;&gt;&lt;svg onload=alert(1)&gt;.jsonl"].count("num top") == 2  # 1 of 1 flagged: 100%
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in section and XSS not in html
    assert "<svg onload" not in html and html.count("<script") == 1


# --- scan --out: a new, empty or earlier scan's folder, else --force -----------------------------------------

def test_out_folder_with_other_files_is_refused_before_any_work(planted):
    Path("results").mkdir()
    Path("results/notes.txt").write_text("mine")
    result = planted.invoke("scan", "data/a-clean.jsonl", *NONE, "--out", "results")
    assert result.exit_code == 2 and planted.loads == 0
    assert result.output == ("error: --out results: holds files that are not a scan's outputs (notes.txt): choose "
                             "another folder, or add --force to write there anyway\n")
    forced = planted.invoke("scan", "data/a-clean.jsonl", *NONE, "--out", "results", "--force")
    assert forced.exit_code == 0, forced.output
    assert Path("results/notes.txt").read_text() == "mine" and Path("results/scores.parquet").is_file()


def test_a_previous_scan_folder_or_an_empty_one_is_fine(planted):
    Path("empty").mkdir()
    assert planted.invoke("scan", "data/a-clean.jsonl", *NONE, "--out", "empty").exit_code == 0
    ci = ("--sarif", "empty/ci/audit.sarif", "--junit", "empty/junit.xml")
    assert planted.invoke("scan", "data/a-clean.jsonl", *NONE, "--out", "empty", *ci).exit_code == 0
    Path("empty/.summary.json.tmp-4242").write_text("{")  # cut short by a kill
    again = planted.invoke("scan", "data/a-clean.jsonl", *NONE, "--out", "empty", *ci)
    assert again.exit_code == 0, again.output
    assert sorted(p.name for p in Path("empty").iterdir()) == [
        ".summary.json.tmp-4242", "ci", "junit.xml", "manifest.json", "quarantine.jsonl", "report.html",
        "scores.parquet", "summary.json", "themes.json"]
    assert planted.invoke("scan", "data/a-clean.jsonl", *NONE, "--out", "empty").exit_code == 2  # now ci/ is not ours
