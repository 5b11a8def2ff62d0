"""The report in a real browser: headless Chromium driven over the DevTools protocol on a pipe.

No extra Python dependency: Chromium's `--remote-debugging-pipe` reads NUL-separated JSON
commands on fd 3 and writes replies and events on fd 4.
"""

from __future__ import annotations

import base64
import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_report import XSS_PROMPT, make_scan

from auditor.outputs.report import render_report

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
        metrics = {"width": 1366, "height": 900, "deviceScaleFactor": 1, "mobile": False}
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
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == "Page.loadEventFired" for e in self.events):
            self.events.append(self._read(deadline))

    def js(self, expression: str):
        """Evaluate JavaScript in the page and return its JSON value."""
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=self.session)
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


def test_screenshot(page: Browser, tmp_path: Path) -> None:
    shot = page.screenshot(tmp_path / "report.png")
    full = page.screenshot(tmp_path / "report-full.png", full_page=True)
    for png in (shot, full):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    assert full.stat().st_size > shot.stat().st_size
