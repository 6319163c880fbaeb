"""Drive the running app from outside: ``streamlit run`` as a subprocess and headless Chromium
through the DevTools protocol (used by ``engine.bench.app`` and ``tests/test_browser.py``).

Nothing here imports streamlit: the app runs in its own process.  The DevTools client uses the
``websockets`` package (a streamlit dependency).  Chromium is Debian's ``chromium`` package;
callers check :data:`CHROMIUM` and skip when it is missing.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - localhost only
        return r.read().decode()


def wait_for(predicate, timeout: float, what: str, interval: float = 0.3):
    """Poll ``predicate`` until it returns something truthy; TimeoutError naming ``what``."""
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


def _stop(proc: subprocess.Popen) -> None:
    """Stop only this process: terminate, then kill after 10 s."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@contextlib.contextmanager
def streamlit_app(log_path: Path, workspace: Path | None = None, timeout: float = 120.0) -> Iterator[str]:
    """Start ``streamlit run app/streamlit_app.py`` on a free port; yield its base URL once healthy.

    ``workspace`` replaces the default workspace file (``$GENNAPE_STUDIO_WORKSPACE``).  Only the
    started process is stopped at the end.
    """
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if workspace is not None:
        env["GENNAPE_STUDIO_WORKSPACE"] = str(workspace)
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app/streamlit_app.py", "--server.port", str(port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: proc.poll() is None and http_get(f"{base}/_stcore/health") == "ok", timeout,
                     "the app's health endpoint")
            yield base
        finally:
            _stop(proc)


class DevTools:
    """Minimal Chrome DevTools Protocol client."""

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


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[DevTools]:
    """Headless Chromium with a throw-away profile; yields a DevTools client on its first page."""
    if CHROMIUM is None:
        raise RuntimeError("headless Chromium is not installed (Debian package 'chromium')")
    profile = tempfile.mkdtemp(prefix="gennape-chromium-")
    proc = subprocess.Popen(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         f"--window-size={width},{height}", "--remote-debugging-port=0", f"--user-data-dir={profile}", "about:blank"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        port_file = Path(profile) / "DevToolsActivePort"
        port = int(wait_for(lambda: port_file.exists() and port_file.read_text().split("\n")[0], 30,
                            "Chromium's DevTools port"))
        targets = wait_for(lambda: [t for t in json.loads(http_get(f"http://127.0.0.1:{port}/json/list"))
                                    if t.get("type") == "page"], 20, "a Chromium page target")
        dt = DevTools(targets[0]["webSocketDebuggerUrl"])
        dt.call("Page.enable")
        dt.call("Emulation.setDeviceMetricsOverride", width=width, height=height, deviceScaleFactor=1, mobile=False)
        try:
            yield dt
        finally:
            dt.close()
    finally:
        _stop(proc)
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


def wait_rendered(browser: DevTools, title: str, timeout: float = 60.0, stable_polls: int = 4,
                  interval: float = 0.5) -> float:
    """Wait until the page shows ``title``, nothing runs and the DOM size is unchanged for
    ``stable_polls`` polls; return the monotonic time of the first of those polls (when the page
    was in fact ready — the extra polls only confirm it)."""
    history: list[tuple[float, int]] = []

    def settled():
        raw = browser.eval(STATE_JS)
        if not raw:
            return False
        st = json.loads(raw)
        if title not in st["h1"] or st["busy"]:
            history.clear()
            return False
        now = time.monotonic()
        if history and history[-1][1] != st["size"]:
            history.clear()
        history.append((now, st["size"]))
        return history[0][0] if len(history) >= stable_polls else False

    return wait_for(settled, timeout, f"the page {title!r} to render", interval=interval)
