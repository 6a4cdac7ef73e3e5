"""The Prefect UI of a real `ingest` run, in headless Chromium: the flow run page lists the run's
artifacts (run-summary, dq-results, data-docs), and the summary and the DQ table open and render.

The run is the one test_schedule.py triggers (the shared session fixtures of conftest_server:
a real server, prefect.yaml deployed, a process worker). Chromium comes from the system
(`make chromium`, a step of `make test`); it is driven over the DevTools protocol with the
`websockets` client that Prefect already installs. Screenshots go to tests/output/ (gitignored).
"""
from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

# The shared server's fixtures (see test_schedule.py for why its names are imported late).
pytest_plugins = ["conftest_server"]

OUTPUT = Path(__file__).resolve().parent / "output"
CHROMIUM_FLAGS = [  # without the background-networking flags its connections are refused here
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-proxy-server", "--hide-scrollbars",
]
WAIT = 30  # seconds for the page to show what is looked for


def chromium_binary() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail("headless Chromium is not installed: `make chromium` installs it (apt-get install chromium)")


class Chromium:
    """Headless Chromium with one page, driven over the DevTools protocol."""

    def __init__(self, width: int = 1400, height: int = 1000):
        from websockets.sync.client import connect

        self.profile = Path(tempfile.mkdtemp(prefix="gleaner-chromium-"))
        self.process = subprocess.Popen(
            [chromium_binary(), *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
             "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            port = self._devtools_port()
            no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
            with no_proxy.open(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
                page = next(t for t in json.load(response) if t["type"] == "page")
            self.socket = connect(page["webSocketDebuggerUrl"], proxy=None, max_size=None, open_timeout=10)
        except BaseException:
            self.close()
            raise
        self.ids = itertools.count(1)

    def _devtools_port(self) -> int:
        port_file = self.profile / "DevToolsActivePort"  # Chromium writes its port here
        deadline = time.monotonic() + 30
        while not (port_file.exists() and port_file.read_text().strip()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Chromium did not start (exit status {self.process.poll()})")
            time.sleep(0.1)
        return int(port_file.read_text().split()[0])

    def send(self, method: str, **params: Any) -> dict:
        call = next(self.ids)
        self.socket.send(json.dumps({"id": call, "method": method, "params": params}))
        while True:  # events arrive in between; the answer carries the call's id
            message = json.loads(self.socket.recv(timeout=WAIT))
            if message.get("id") == call:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message["result"]

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url: str) -> None:
        self.send("Page.navigate", url=url)

    def wait_for(self, what: str, expression: str) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + WAIT
        while True:
            value = self.js(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                self.screenshot("failed")
                pytest.fail(f"{what}: not on {self.js('location.href')} within {WAIT} s "
                            f"(tests/output/ui-failed.png); the page reads:\n{self.js('document.body.innerText')[:3000]}")
            time.sleep(0.25)

    def screenshot(self, name: str) -> Path:
        OUTPUT.mkdir(exist_ok=True)
        path = OUTPUT / f"ui-{name}.png"
        path.write_bytes(base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"]))
        return path

    def close(self) -> None:
        if getattr(self, "socket", None) is not None:
            self.socket.close()
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        shutil.rmtree(self.profile, ignore_errors=True)


@pytest.fixture(scope="module")
def browser():
    for old in OUTPUT.glob("ui-*.png"):  # what is there is this session's
        old.unlink()
    chromium = Chromium()
    try:
        yield chromium
    finally:
        chromium.close()


# Find things by what the page shows, as a person would.
CARDS = "[...document.querySelectorAll('.artifact-card')].map(c => c.innerText)"


def click_card(key: str) -> str:
    return (f"(() => {{ const c = [...document.querySelectorAll('.artifact-card')]"
            f".find(c => c.innerText.split('\\n').includes({json.dumps(key)})); if (c) c.click(); return !!c; }})()")


def open_artifacts_tab(browser: Chromium, url: str) -> list[str]:
    browser.open(url)
    # The tab shows once the UI knows the run is final; the ?tab= of a URL is not honoured before.
    browser.wait_for("the flow run's Artifacts tab",
                     "(() => { const t = document.querySelector('li.p-tab#artifacts');"
                     " if (t) t.click(); return !!t; })()")
    return browser.wait_for("the run's artifact cards", f"(() => {{ const c = {CARDS}; "
                            "return c.some(t => t.includes('dq-results')) && c.some(t => t.includes('run-summary'))"
                            " ? c : null; })()")


def test_the_flow_run_page_lists_the_run_summary_and_the_dq_table(browser, live_server, ingest_run):
    assert ingest_run.state.is_completed()
    url = f"{live_server.url}/runs/flow-run/{ingest_run.id}"
    cards = open_artifacts_tab(browser, url)
    kinds = {lines[1]: lines[0] for lines in (card.split("\n") for card in cards)}  # key -> TYPE, as shown
    assert kinds.get("run-summary") == "MARKDOWN" and kinds.get("dq-results") == "TABLE", cards
    assert "data-docs" in kinds, cards
    assert browser.js("document.querySelector('li.p-tab#artifacts').classList.contains('p-tab__active')")
    assert browser.js("document.body.innerText").count(ingest_run.name) >= 1
    browser.js("document.querySelector('.flow-run-artifacts').scrollIntoView()")
    browser.screenshot("flow-run-artifacts")

    # The DQ table: one row per Great Expectations suite validated, every one passed.
    assert browser.js(click_card("dq-results"))
    rows = browser.wait_for("the dq-results table", """(() => {
        const rows = [...document.querySelectorAll('table tr')].map(r => [...r.cells].map(c => c.innerText.trim()));
        return rows.length > 1 ? rows : null; })()""")
    assert browser.js("location.pathname").startswith("/artifacts/artifact/")
    header, body = rows[0], rows[1:]
    assert header == ["step", "suite", "status", "rows_checked", "evaluated", "failed"], rows
    assert [row[0] for row in body] == ["extract", "clean", "segment", "dedup", "load"], rows
    assert all(row[2] == "passed" and int(row[3]) > 0 and row[5] == "0" for row in body), rows
    browser.screenshot("dq-results")

    # The run summary, rendered from Markdown: its heading names the run; 2 dumps, 9 new articles.
    open_artifacts_tab(browser, url)
    assert browser.js(click_card("run-summary"))
    text = browser.wait_for("the rendered run summary",
                            f"(() => {{ const h = [...document.querySelectorAll('h1')]"
                            f".find(h => h.innerText.includes({json.dumps(str(ingest_run.id))}));"
                            " return h ? document.body.innerText : null; })()")
    assert "2 found, 2 loaded, 0 already loaded, 0 quarantined" in text
    assert "9 new, 0 updated" in text
    browser.screenshot("run-summary")
