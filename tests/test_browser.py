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
import os
from pathlib import Path

import pytest

from app.ui.registry import PAGES
from engine.bench._browser import CHROMIUM, chromium, streamlit_app, wait_rendered

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed (make test installs the Debian "
                                                 "'chromium' package with apt-get when it can)"),
]


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    """A running app on a free port (a small workspace file so it starts in seconds)."""
    from test_app_engine import tiny_workspace

    from engine import studio

    tmp = tmp_path_factory.mktemp("browser")
    ws_path = tmp / "default_workspace.npz"
    studio.save_workspace(tiny_workspace(40, with_upload=True), ws_path)
    with streamlit_app(tmp / "streamlit.log", workspace=ws_path, timeout=60) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    with chromium() as dt:
        yield dt


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
        wait_rendered(browser, "GENNAPE Studio" if page.default else page.title)
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
