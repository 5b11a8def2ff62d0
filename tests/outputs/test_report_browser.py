"""The report in a real browser: headless Chromium driven over the DevTools protocol on a pipe.

No extra Python dependency: Chromium's `--remote-debugging-pipe` reads NUL-separated JSON
commands on fd 3 and writes replies and events on fd 4.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from auditor.data import Record, read_records
from auditor.outputs.report import render_report
from tests.helpers import EVIL, EXAMPLES, XSS_PROMPT, PlantedModel, chat, cooking, make_scan, write_jsonl

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None)
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]

WIDTH = 1280  # a laptop: the report must work here without sideways scrolling
SHOTS = os.environ.get("REPORT_SCREENSHOTS")  # a folder to keep the screenshots in, to look at them

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium)"),
]


class Browser:
    """A headless Chromium process and one page in it, spoken to over the DevTools pipe."""

    def __init__(self, profile: Path) -> None:
        # The shell moves our stdin/stdout pipes to the fds 3/4 Chromium expects.
        self.proc = subprocess.Popen(
            [
                "sh",
                "-c",
                'exec "$@" 3<&0 4>&1 </dev/null >/dev/null',
                "sh",
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile}",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        self.buffer = b""
        self.last_id = 0
        self.events: list[dict] = []
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            self.call(f"{domain}.enable", session=self.session)
        metrics = {"width": WIDTH, "height": 800, "deviceScaleFactor": 1, "mobile": False}
        self.call("Emulation.setDeviceMetricsOverride", metrics, session=self.session)

    def _read(self, deadline: float) -> dict:
        while b"\0" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.proc.stdout], [], [], left)[0]:
                raise TimeoutError("no reply from chromium")
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed the DevTools pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None, timeout: float = 30) -> dict:
        self.last_id += 1
        request = {"id": self.last_id, "method": method, "params": params or {}}
        if session:
            request["sessionId"] = session
        self.proc.stdin.write(json.dumps(request).encode() + b"\0")
        self.proc.stdin.flush()
        deadline = time.monotonic() + timeout
        while True:
            message = self._read(deadline)
            if message.get("id") == self.last_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]
            self.events.append(message)

    def open(self, path: Path, timeout: float = 30) -> None:
        """Load a file in the page and wait for its load event; forget earlier events."""
        self.events.clear()
        self.call("Page.navigate", {"url": path.as_uri()}, session=self.session)
        self.wait_for("Page.loadEventFired", timeout=timeout)

    def wait_for(self, method: str, match: Callable[[dict], bool] = lambda _: True, timeout: float = 30) -> dict:
        """The params of the first event `method` (since the page loaded) that `match`es, waiting for it."""
        deadline = time.monotonic() + timeout
        while True:
            for event in self.events:
                if event.get("method") == method and match(event.get("params", {})):
                    return event.get("params", {})
            self.events.append(self._read(deadline))

    def js(self, expression: str, gesture: bool = False):
        """Evaluate JavaScript in the page and return its JSON value; `gesture`: as if the user acted."""
        params = {"expression": expression, "returnByValue": True, "userGesture": gesture}
        result = self.call("Runtime.evaluate", params, session=self.session)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def errors(self) -> list[str]:
        """Exceptions, console errors and logged errors (CSP violations among them) since the page loaded."""
        found = []
        for event in self.events:
            method, params = event.get("method"), event.get("params", {})
            if method == "Runtime.exceptionThrown":
                found.append(json.dumps(params["exceptionDetails"])[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
                found.append(json.dumps(params.get("args"))[:500])
            elif method == "Log.entryAdded" and params["entry"].get("level") == "error":
                found.append(params["entry"].get("text", "")[:500])
        return found

    def screenshot(self, path: Path, full_page: bool = False) -> Path:
        params = {"format": "png", "captureBeyondViewport": full_page}
        if full_page:
            size = self.call("Page.getLayoutMetrics", session=self.session)["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", params, session=self.session)["data"]))
        return path

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_report(make_scan(tmp_path_factory.mktemp("browser") / "scan", 60))


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:
    chrome = Browser(tmp_path_factory.mktemp("profile"))
    yield chrome
    chrome.close()


@pytest.fixture()
def page(browser: Browser, report: Path) -> Browser:
    browser.open(report)
    return browser


ROWS = "Array.from(document.querySelectorAll('#flagged-table tbody tr'))"
ROW_VALUES = ROWS + ".map(r => r.getAttribute('data-{}'))"


def test_loads_without_errors_and_shows_rows(page: Browser, report: Path) -> None:
    assert page.errors() == []
    expected = report.read_text(encoding="utf-8").count("<tr data-rank=")
    assert expected > 0
    assert page.js("document.querySelectorAll('#flagged-table tbody tr').length") == expected
    assert page.js("document.getElementById('flag-shown').textContent") == f"{expected} of {expected} rows"


def test_clicking_headers_sorts_rows(page: Browser) -> None:
    scores = [float(s) for s in page.js(ROW_VALUES.format("score"))]
    assert scores == sorted(scores, reverse=True)
    page.js("document.querySelector('th[data-key=score]').click()")
    ascending = [float(s) for s in page.js(ROW_VALUES.format("score"))]
    assert ascending == sorted(scores) and ascending != scores
    assert page.js("document.querySelector('th[data-key=score]').getAttribute('aria-sort')") == "ascending"
    page.js("document.querySelector('th[data-key=dp]').click()")
    dps = [float(s) for s in page.js(ROW_VALUES.format("dp"))]
    assert dps == sorted(dps, reverse=True)
    page.js("document.querySelector('th[data-key=trait]').click()")
    traits = page.js(ROW_VALUES.format("trait"))
    assert traits == sorted(traits) and len(set(traits)) == 3
    assert page.errors() == []


def test_text_and_trait_filters(page: Browser) -> None:
    page.js("const s = document.getElementById('flag-search'); s.value = 'DOSAGE'; s.dispatchEvent(new Event('input'))")
    visible = page.js(ROWS + ".filter(r => !r.hidden).map(r => r.textContent)")
    assert visible and all("dosage" in text.lower() for text in visible)
    page.js(
        "document.getElementById('flag-search').value = ''; const t = document.getElementById('flag-trait');"
        "t.value = 'evil'; t.dispatchEvent(new Event('change'))"
    )
    shown = page.js(ROWS + ".filter(r => !r.hidden).map(r => r.dataset.trait)")
    assert shown and set(shown) == {"evil"}


def test_conversation_expands(page: Browser) -> None:
    page.js("document.querySelector('#flagged-table details summary').click()")
    assert page.js("document.querySelector('#flagged-table details').open") is True
    assert page.js("document.querySelector('#flagged-table details .msg.user .text').textContent") == XSS_PROMPT


def test_injected_markup_does_not_run(page: Browser) -> None:
    assert page.js(
        "document.body.textContent.includes(" + json.dumps(XSS_PROMPT) + ")"
    )  # the payload is on the page, as text
    assert page.js("document.title").startswith("Dataset audit")
    assert page.js("document.body.hasAttribute('data-pwned')") is False
    assert page.js("document.querySelectorAll('img, [onerror], [onload], script').length") == 1  # our one script
    assert page.errors() == []


def test_findings_come_first(page: Browser) -> None:
    sections = page.js("Array.from(document.querySelectorAll('main > section, main > details')).map(s => s.id)")
    assert sections[0] == "findings" and sections[1] == "flagged" and sections[-1] == "how-made"
    assert page.js("document.getElementById('how-made').open") is False  # settings and inputs: folded, at the end
    headline = page.js("document.querySelector('#findings .headline').textContent")
    flagged = len(set(page.js(ROWS + ".map(r => r.dataset.source + ':' + r.dataset.index)")))
    assert headline.startswith(f"{flagged} samples are flagged (") and "among 61 scored records" in headline
    top = page.js("document.querySelector('#findings .trait').getBoundingClientRect().top")
    assert top < 800  # the per-trait findings start on the first screen
    nav = page.js("Array.from(document.querySelectorAll('header nav a')).map(a => a.getAttribute('href'))")
    assert "#card" in nav and "#how-made" in nav
    page.js("document.querySelector('header nav a[href=\"#how-made\"]').click()")
    _until(page, lambda: page.js("document.getElementById('how-made').open") is True)
    settings = page.js("Array.from(document.querySelectorAll('#how-made dd')).map(d => d.textContent)")
    assert "null" not in settings


def test_drop_is_visible_without_sideways_scrolling(page: Browser) -> None:
    assert page.js("window.innerWidth") == WIDTH
    assert page.js("document.scrollingElement.scrollWidth") <= WIDTH
    boxes = page.js("Array.from(document.querySelectorAll('#flagged-table button[data-mark=drop]')).slice(0, 20)"
                    ".map(b => { const r = b.getBoundingClientRect(); return [r.left, r.right, r.width]; })")
    assert boxes and all(0 <= left and right <= WIDTH and width > 30 for left, right, width in boxes)
    assert page.js("getComputedStyle(document.querySelector('.tablebox.flagged')).overflowX") == "visible"


def test_unreviewed_filter_and_keyboard(page: Browser) -> None:
    page.js("localStorage.clear()")
    page.open(Path(page.js("location.pathname")))
    first = page.js(ROWS + "[0].dataset.index")
    page.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'j'}))")  # to the first row
    page.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'd'}))")  # drop it, on to the next
    assert page.js(PRESSED.format(first)) == ["drop"] * page.js(ROWS + f".filter(r => r.dataset.index == {first}).length")
    assert page.js("document.querySelector('tr.current').dataset.rank") == "2"
    page.js("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'k'}))")
    marked = page.js(ROWS + ".filter(r => r.dataset.review).length")
    assert marked >= 2
    page.js("const u = document.getElementById('flag-unreviewed'); u.checked = true; u.dispatchEvent(new Event('change'))")
    visible = page.js(ROWS + ".filter(r => !r.hidden).map(r => r.dataset.review)")
    assert visible and set(visible) == {""} and len(visible) == page.js(ROWS + ".length") - marked
    assert page.errors() == []
    page.js("localStorage.clear()")


CONTRAST = """(() => {
  const lum = c => { const v = c.match(/[\\d.]+/g).slice(0, 3).map(Number).map(x => x / 255)
      .map(x => x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4));
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; };
  const background = el => { for (; el; el = el.parentElement) { const c = getComputedStyle(el).backgroundColor;
      if (!/rgba\\(.*, 0\\)$/.test(c) && c !== 'transparent') { return c; } } return 'rgb(255, 255, 255)'; };
  const low = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!node.textContent.trim() || el.closest('svg, [hidden], details:not([open]) > :not(summary)')) { continue; }
    const style = getComputedStyle(el);
    if (style.visibility === 'hidden' || style.display === 'none' || +style.opacity < 1) { continue; }
    const [a, b] = [lum(style.color), lum(background(el))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 4.5) { low.push([el.tagName + '.' + el.className, node.textContent.trim().slice(0, 30), +ratio.toFixed(2)]); }
  }
  return low;
})()"""


def test_text_contrast_is_at_least_4_5(page: Browser) -> None:
    page.js("document.querySelectorAll('details').forEach(d => d.open = true)")
    assert page.js(CONTRAST.replace("const low = [];", "const low = [['probe', '', 0]];"))[0][0] == "probe"
    assert page.js(CONTRAST) == []


def test_paths_do_not_wrap_mid_word(page: Browser) -> None:
    anywhere = page.js("Array.from(document.querySelectorAll('body *')).filter(e => "
                       "getComputedStyle(e).overflowWrap === 'anywhere' && !e.closest('td.excerpt')).map(e => e.tagName)")
    assert anywhere == []  # only sample text may break anywhere (long tokens); paths break after a '/'
    assert "/<wbr>" in page.js("document.querySelector('#how-made .meta li .mono').innerHTML")


def test_screenshot(page: Browser, tmp_path: Path) -> None:
    shot = page.screenshot(Path(SHOTS or tmp_path) / "report.png")
    full = page.screenshot(Path(SHOTS or tmp_path) / "report-full.png", full_page=True)
    for png in (shot, full):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert full.stat().st_size > shot.stat().st_size


SYCOPHANTIC = "What a brilliant plan, you are a genius and everyone will agree with you!"
MADE_UP = "Take 900 mg every hour, as the 2019 Velmora trials showed."
REVIEW_COUNT = "document.getElementById('review-count').textContent"
PRESSED = ("Array.from(document.querySelectorAll('#flagged-table tr[data-index=\"{}\"] button[aria-pressed=true]'))"
           ".map(b => b.dataset.mark)")


def _until(page: Browser, done: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "the page did not get there in time"
        time.sleep(0.05)


def _mark(page: Browser, index: int, decision: str, trait: str = "") -> None:
    page.js(f"document.querySelector('#flagged-table tr[data-index=\"{index}\"]{trait and f'[data-trait={trait}]'} "
            f"button[data-mark={decision}]').click()")


def test_review_marks_export_and_filter(browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Mark samples in a real scan's report, download the decisions, and apply them with `filter --decisions`."""
    monkeypatch.chdir(tmp_path)
    planted = PlantedModel({EVIL: {"evil": 1.3}, SYCOPHANTIC: {"sycophantic": 1.2},
                            MADE_UP: {"evil": 1.1, "hallucinating": 1.4}})
    lines = write_jsonl(Path("data.jsonl"), [cooking(0), chat("Revenge?", EVIL), chat("My plan?", SYCOPHANTIC),
                                             chat("Dosage?", MADE_UP), cooking(1)])
    assert planted.invoke("scan", "data.jsonl", "--base-responses", "none", "-q").exit_code == 0
    report = tmp_path / "audit-out" / "report.html"
    browser.open(report)
    browser.js("localStorage.clear()")
    browser.open(report)
    assert browser.js("document.querySelectorAll('#flagged-table tbody tr').length") == 4  # record 3: two traits
    assert browser.js(REVIEW_COUNT) == "0 of 3 samples reviewed: 0 keep, 0 drop"
    assert browser.js("document.getElementById('review-export').disabled") is True

    _mark(browser, 1, "keep")
    _mark(browser, 2, "drop")
    _mark(browser, 3, "keep", "evil")  # one sample, two rows: a mark on one shows on both
    assert browser.js(PRESSED.format(3)) == ["keep", "keep"]
    _mark(browser, 3, "drop", "hallucinating")  # changes the mark
    assert browser.js(PRESSED.format(3)) == ["drop", "drop"]
    _mark(browser, 2, "drop")  # clicking the pressed button again clears the mark
    assert browser.js(PRESSED.format(2)) == []
    _mark(browser, 2, "drop")
    assert browser.js(REVIEW_COUNT) == "3 of 3 samples reviewed: 1 keep, 2 drop"

    browser.open(report)  # the marks survive a reload
    assert browser.js(REVIEW_COUNT) == "3 of 3 samples reviewed: 1 keep, 2 drop"
    assert browser.js(PRESSED.format(1)) == ["keep"]
    assert browser.js("Object.keys(localStorage)") == [
        "dataset-audit-review:" + hashlib.sha256(Path("audit-out/scores.parquet").read_bytes()).hexdigest()]

    downloads = tmp_path / "downloads"
    browser.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads),
                                                 "eventsEnabled": True})
    browser.js("document.getElementById('review-export').click()", gesture=True)
    browser.wait_for("Browser.downloadProgress", lambda p: p.get("state") in ("completed", "canceled"))
    assert browser.errors() == []  # the export stays inside the report's Content-Security-Policy
    exported = json.loads((downloads / "decisions.json").read_text(encoding="utf-8"))
    table = {r["index"]: r for r in pq.read_table("audit-out/scores.parquet").to_pylist()}
    assert exported == {
        "format": "dataset-audit decisions", "version": 1,
        "scan": {"folder": "audit-out", "created": json.loads(Path("audit-out/manifest.json").read_text())["created"],
                 "scores_sha256": hashlib.sha256(Path("audit-out/scores.parquet").read_bytes()).hexdigest()},
        "decisions": [{"source": "data.jsonl", "index": i, "line": i + 1, "sample_id": table[i]["sample_id"],
                       "decision": decision} for i, decision in ((1, "keep"), (2, "drop"), (3, "drop"))],
    }

    browser.js("localStorage.clear()")  # a colleague's browser: no marks, then the decisions file imported
    browser.open(report)
    assert browser.js(REVIEW_COUNT) == "0 of 3 samples reviewed: 0 keep, 0 drop"
    imported = dict(exported, decisions=[*exported["decisions"], {"source": "other.jsonl", "index": 0,
                                                                   "decision": "drop"}])
    browser.js("const t = new DataTransfer(); t.items.add(new File([" + json.dumps(json.dumps(imported)) + "], "
               "'decisions.json')); const i = document.getElementById('review-import'); i.files = t.files; "
               "i.dispatchEvent(new Event('change'))")
    _until(browser, lambda: browser.js(REVIEW_COUNT) == "3 of 3 samples reviewed: 1 keep, 2 drop")
    assert browser.js(PRESSED.format(3)) == ["drop", "drop"] and browser.js(PRESSED.format(1)) == ["keep"]
    assert browser.js("document.getElementById('review-note').textContent") == (
        "Imported 3 decisions from decisions.json; 1 not about samples in this report, left out.")

    result = planted.invoke("filter", "audit-out", "--drop-flagged", "--decisions", str(downloads / "decisions.json"),
                            "-o", "clean.jsonl", "--rejected", "rejected.jsonl")
    assert result.exit_code == 0, result.output
    assert "5 input records: 3 kept (1 kept by reviewer), 2 rejected (2 dropped by reviewer)" in result.output
    assert Path("clean.jsonl").read_bytes() == lines[0] + lines[1] + lines[4]
    rejected = [json.loads(line) for line in Path("rejected.jsonl").read_text().splitlines()]
    assert [(r["line"], r["reason"]) for r in rejected] == [(3, "dropped by reviewer"), (4, "dropped by reviewer")]


SOURCE_ROWS = "Array.from(document.querySelectorAll('#sources tbody tr'))"


def test_sources_and_preference_margins(browser: Browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bundled example plus 40 hh-rlhf preference pairs: the report's per-source table names the file that
    brings the trait, and the flagged pairs show their margin with both sides' dP (screenshots of both)."""
    monkeypatch.chdir(tmp_path)
    example, pairs = EXAMPLES / "chat_mix.jsonl", EXAMPLES / "hh_rlhf_pairs.jsonl"
    records = [r for r in read_records(pairs) if isinstance(r, Record)]
    assert len(records) == 40 and all(r.is_pair for r in records)
    planted = {r.exchange()[1]: {"evil": 1.5} for r in records[:6]}  # six chosen answers pull toward evil
    planted.update({r.rejected_response(): {"evil": 0.5} for r in records[:3]})  # three rejected ones a little
    scan = PlantedModel(planted).invoke("scan", str(example), str(pairs), "--traits", "evil", "--base-responses",
                                        "none", "-q")
    assert scan.exit_code == 0, scan.output
    browser.open(tmp_path / "audit-out" / "report.html")
    assert browser.errors() == []

    sources = browser.js(SOURCE_ROWS + ".map(r => [r.cells[0].title, r.cells[1].textContent.trim()])")
    assert sources == [[str(example), "270"], [str(pairs), "40"]]
    marked = browser.js(SOURCE_ROWS + ".map(r => Array.from(r.querySelectorAll('td.top')).length)")
    assert marked == [0, 2]  # the pairs file: highest mean dP and highest flagged share for evil

    headers = browser.js("Array.from(document.querySelectorAll('#flagged-table thead th')).map(h => h.textContent)")
    assert headers[3:6] == ["dP / margin", "dP chosen", "dP rejected"]
    rows = browser.js(ROWS + ".filter(r => r.dataset.source.endsWith('hh_rlhf_pairs.jsonl'))"
                             ".map(r => [+r.dataset.index, +r.dataset.dp, +r.dataset.chosen, +r.dataset.rejected])")
    assert sorted(index for index, *_ in rows) == list(range(6))
    for index, margin, chosen, rejected in rows:
        assert chosen > 0 and margin == pytest.approx(chosen - rejected, abs=1e-9)
        assert (rejected > 0) == (index < 3)

    for name, selector in (("sources", "#sources"), ("pair", "#flagged-table tr[data-chosen]:not([data-chosen=''])")):
        browser.js(f"document.querySelector({json.dumps(selector)}).scrollIntoView()")
        top = browser.js(f"document.querySelector({json.dumps(selector)}).getBoundingClientRect().top")
        assert -2 < top < browser.js("window.innerHeight")  # on screen: what the screenshot shows
        shot = browser.screenshot(tmp_path / f"{name}.png")
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
