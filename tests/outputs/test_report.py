"""The HTML report: renders a scan folder, escapes sample text, stays offline and small."""

from __future__ import annotations

import base64
import hashlib
import re
from html import unescape
from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from auditor.errors import AuditError
from auditor.html import template_environment
from auditor.outputs.report import HIST_BINS, TEMPLATE, histogram, render_report
from tests.helpers import TRAITS, make_scan


@pytest.fixture()
def scan(tmp_path: Path) -> Path:
    return make_scan(tmp_path / "scan", 60)


def table_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-rank="\d+" data-trait="([^"]+)"', html)


def test_report_renders_summary_table_themes_and_quarantine(scan: Path) -> None:
    out = render_report(scan)
    assert out == scan / "report.html"
    html = out.read_text(encoding="utf-8")
    flagged = pq.read_table(scan / "scores.parquet", columns=[f"{t}_flagged" for t in TRAITS])
    expected = {t: int(pc.sum(flagged.column(f"{t}_flagged")).as_py()) for t in TRAITS}
    assert all(expected.values())
    rows = table_rows(html)
    assert {t: rows.count(t) for t in TRAITS} == expected
    for t in TRAITS:
        assert f'aria-label="Histogram of {t} scores over 61 samples"' in html
    assert html.count('<line class="thr"') == 3
    assert html.count('<article class="card theme">') >= 2
    assert "invalid_json" in html and "train.jsonl:10000" in html
    assert "Qwen/Qwen2.5-7B-Instruct" in html and "How to read this" in html


def test_table_is_ranked_by_score_and_limited_to_top_n(scan: Path, tmp_path: Path) -> None:
    html = render_report(scan, tmp_path / "top.html", top_n=4).read_text(encoding="utf-8")
    assert sorted(table_rows(html)) == sorted(TRAITS * 4)
    scores = [float(s) for s in re.findall(r'<tr data-rank="\d+" data-trait="[^"]+" data-score="([^"]+)"', html)]
    assert scores == sorted(scores, reverse=True)


def test_sample_text_is_escaped(scan: Path) -> None:
    html = render_report(scan).read_text(encoding="utf-8")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "<script>alert(1)" not in html and "<img src=x" not in html and "<svg onload" not in html
    assert "<b>not bold</b>" not in html and "{<script>x" not in html
    assert html.count("<script") == 1  # only the report's own script


def test_csp_meta_present_and_script_hash_matches(scan: Path) -> None:
    html = render_report(scan).read_text(encoding="utf-8")
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)">', html)
    assert csp and "default-src 'none'" in csp.group(1)
    script = re.search(r"<script>(.*?)</script>", html, re.DOTALL).group(1)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp.group(1)


def test_no_external_resources(scan: Path) -> None:
    html = render_report(scan).read_text(encoding="utf-8")
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z]+:)?//""", html, re.IGNORECASE)
    assert not re.search(r"(?<![a-z])url\(|@import", html, re.IGNORECASE)  # CSS url(), not createObjectURL(
    assert all(h.startswith("#") for h in re.findall(r'href="([^"]*)"', html))


def test_rows_name_their_records_for_review(scan: Path) -> None:
    html = render_report(scan).read_text(encoding="utf-8")
    review = re.search(r'<div class="controls review" id="review" data-folder="scan" data-created="([^"]*)" '
                       r'data-scores-sha256="([0-9a-f]{64})">', html)
    assert review and review.group(2) == hashlib.sha256((scan / "scores.parquet").read_bytes()).hexdigest()
    table = pq.read_table(scan / "scores.parquet", columns=["source", "index", "line", "sample_id"]).to_pylist()
    named = re.findall(r'data-source="([^"]*)" data-index="(\d+)" data-line="(\d+)" data-sample="([0-9a-f]+)">', html)
    assert len(named) == len(table_rows(html)) > 0
    for source, index, line, sample_id in named:
        record = table[int(index)]
        assert (unescape(source), int(line), sample_id) == (record["source"], record["line"], record["sample_id"])
    assert html.count('<button type="button" class="mark" data-mark="drop"') == len(named)


def test_large_scan_report_stays_small(tmp_path: Path) -> None:
    folder = make_scan(tmp_path / "big", 20_000, seed=1)
    html = render_report(folder).read_text(encoding="utf-8")
    assert len(html.encode()) < 10 * 1024 * 1024
    assert len(table_rows(html)) == 3 * 200


def test_no_flags_no_quarantine(tmp_path: Path) -> None:
    folder = make_scan(tmp_path / "clean", 30, flag=False, xss=False, quarantine=0)
    (folder / "quarantine.jsonl").unlink()
    html = render_report(folder).read_text(encoding="utf-8")
    assert table_rows(html) == []
    assert "No samples are flagged" in html and "No records were quarantined" in html


def test_output_is_written_atomically_where_asked(scan: Path, tmp_path: Path) -> None:
    target = tmp_path / "nested" / "r.html"
    assert render_report(scan, target) == target
    assert [p.name for p in target.parent.iterdir()] == ["r.html"]
    assert not (scan / "report.html").exists()


def test_missing_scores_is_an_audit_error(scan: Path) -> None:
    (scan / "scores.parquet").unlink()
    with pytest.raises(AuditError, match=r"scores\.parquet"):
        render_report(scan)


@pytest.mark.parametrize("threshold", [1.0, 0.37, 4.0])
def test_histogram_bins_split_exactly_at_the_threshold(threshold: float) -> None:
    scores = np.random.default_rng(0).normal(0.3, 0.6, 5000)
    scores[:3] = [25.0, -9.0, np.nan]  # outliers land in the end bins, NaN is left out
    hist = histogram(scores, threshold)
    bars = hist["bars"]
    assert len(bars) == HIST_BINS and hist["n"] == 4999
    assert sum(b["count"] for b in bars) == 4999
    assert sum(b["count"] for b in bars if b["over"]) == int(np.sum(scores >= threshold))
    assert bars[-1]["title"].endswith("or more") and bars[0]["title"].endswith("or less")
    assert hist["left"] <= hist["threshold_x"] <= hist["right"]
    below = histogram(scores, -threshold, below=True)["bars"]  # a trait flagged below: the low side is marked
    assert sum(b["count"] for b in below if b["over"]) == int(np.sum(scores <= -threshold))


def test_the_templates_ship_as_a_package() -> None:
    assert template_environment().get_template(TEMPLATE).filename.endswith("report.html.j2")
