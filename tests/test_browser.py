"""Real-browser smoke test: the running app in headless Chromium, every page.

Starts ``streamlit run`` on a free localhost port (with a small workspace file so it starts in
seconds), waits for ``/_stcore/health``, then drives Debian's ``chromium`` through the DevTools
protocol: for each page (``url_path`` from ``app/ui/registry.py``) it waits until the page title
is rendered and the script has finished, saves a screenshot and checks that it is not blank
(PIL: more than a handful of colours) and that the DOM has no Streamlit exception box.

Why DevTools and not ``chromium --screenshot``: Streamlit renders over a websocket after the load
event, and the one-shot ``--screenshot`` / ``--virtual-time-budget`` mode captures before that
(blank page).  ``make test`` installs ``chromium`` with apt-get when missing; without it this
test skips with the reason.  Screenshots are kept in ``$GENNAPE_SCREENSHOT_DIR`` when set.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from app.ui.registry import PAGES

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (make test installs the Debian "
                                                 "'chromium' package with apt-get when it can)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - localhost only
        return r.read().decode()


def _wait(predicate, timeout: float, what: str, interval: float = 0.3):
    end = time.monotonic() + timeout
    last = None
    while time.monotonic() < end:
        try:
            last = predicate()
            if last:
                return last
        except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
            last = exc
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (last: {last!r})")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """A running app on a free port, stopped (only this process) at the end."""
    from test_app_engine import tiny_workspace

    from engine import studio

    tmp = tmp_path_factory.mktemp("browser")
    ws_path = tmp / "default_workspace.npz"
    studio.save_workspace(tiny_workspace(40, with_upload=True), ws_path)
    port = _free_port()
    env = {**os.environ, "GENNAPE_STUDIO_WORKSPACE": str(ws_path), "PYTHONPATH": str(ROOT)}
    log = open(tmp / "streamlit.log", "w")  # noqa: SIM115 - closed in the teardown
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py", "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(lambda: proc.poll() is None and _get(f"{base}/_stcore/health") == "ok", 60, "the app's health endpoint")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


class DevTools:
    """Minimal Chrome DevTools Protocol client over the ``websockets`` package (a streamlit dependency)."""

    def __init__(self, ws_url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connect(ws_url, max_size=None, open_timeout=20)
        self.next_id = 0

    def call(self, method: str, **params):
        self.next_id += 1
        mid = self.next_id
        self.ws.send(json.dumps({"id": mid, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == mid:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def eval(self, expression: str):
        res = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return res.get("result", {}).get("value")

    def close(self) -> None:
        self.ws.close()


@pytest.fixture(scope="module")
def browser():
    profile = tempfile.mkdtemp(prefix="gennape-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--window-size=1400,1000", "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        port = int(_wait(lambda: port_file.exists() and port_file.read_text().split("\n")[0], 30,
                         "Chromium's DevTools port"))
        targets = _wait(lambda: [t for t in json.loads(_get(f"http://127.0.0.1:{port}/json/list"))
                                 if t.get("type") == "page"], 20, "a Chromium page target")
        dt = DevTools(targets[0]["webSocketDebuggerUrl"])
        dt.call("Page.enable")
        dt.call("Emulation.setDeviceMetricsOverride", width=1400, height=1000, deviceScaleFactor=1, mobile=False)
        yield dt
        dt.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


STATE_JS = """(() => {
  const app = document.querySelector('[data-testid="stApp"]');
  if (!app) return null;
  const status = document.querySelector('[data-testid="stStatusWidget"]');
  return JSON.stringify({
    h1: [...document.querySelectorAll('h1')].map(e => e.innerText.trim()),
    busy: !!(status && /running/i.test(status.innerText))
          || document.querySelectorAll('[data-testid="stSpinner"], [data-testid="stSkeleton"], '
                                       + '[data-testid="stExpanderIconSpinner"], [data-stale="true"]').length > 0,
    size: document.querySelectorAll('*').length,
  });
})()"""


def _wait_rendered(browser: DevTools, title: str, timeout: float = 60.0) -> None:
    """Until the page shows ``title``, nothing is running and the DOM has not changed for ~1.5 s."""
    history: list[int] = []

    def settled():
        raw = browser.eval(STATE_JS)
        if not raw:
            return False
        st = json.loads(raw)
        if title not in st["h1"] or st["busy"]:
            history.clear()
            return False
        history.append(st["size"])
        return len(history) >= 4 and len(set(history[-4:])) == 1

    _wait(settled, timeout, f"the page {title!r} to render", interval=0.5)


def test_every_page_in_a_real_browser(app_url, browser, tmp_path):
    from PIL import Image

    keep = os.environ.get("GENNAPE_SCREENSHOT_DIR")
    out_dir = Path(keep) if keep else tmp_path
    out_dir.mkdir(parents=True, exist_ok=True)
    arch = "tinybench:a3"  # the Architecture page draws this one's graph (deep link ?arch=)
    for page in PAGES:
        url = app_url + ("/" if page.default else f"/{page.url_path}")
        if page.url_path == "architecture":
            url += f"?arch={arch}"
        browser.call("Page.navigate", url=url)
        _wait_rendered(browser, "GENNAPE Studio" if page.default else page.title)
        shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
        path = out_dir / f"{page.url_path}.png"
        path.write_bytes(shot)
        img = Image.open(path).convert("RGB")
        assert img.size == (1400, 1000)
        colours = img.getcolors(maxcolors=1 << 20)
        assert colours is None or len(colours) > 16, f"{page.url_path}: the screenshot is (nearly) blank"
        dom = browser.eval("document.documentElement.outerHTML")
        assert 'data-testid="stException"' not in dom, f"{page.url_path}: an exception box is shown"
        assert "Traceback (most recent call last)" not in dom, f"{page.url_path}: a traceback is shown"
        assert "cdn.jsdelivr.net" not in dom
        if page.url_path == "architecture":  # the pyvis graph is drawn inside its iframe
            frames = browser.eval("[...document.querySelectorAll('iframe')].map(f => (f.srcdoc || '').length)")
            assert frames and max(frames) > 100_000, f"no graph iframe on the Architecture page: {frames}"
