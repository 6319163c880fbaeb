"""Benchmark: the app as a user meets it (``python -m engine.bench app``).

Starts ``streamlit run`` with the **shipped** default workspace (15,625 NB-201 architectures plus
samples of the nine families, scored by the shipped checkpoint) in a fresh process and drives
headless Chromium through the DevTools protocol:

* ``open_default_s``: from launching the server until the Home page is rendered (what
  ``make run`` shows first; the target is ≤ 20 s);
* per page, the first visit (cold caches) and a later visit (warm caches): ``*_ready_s`` is the
  browser-side time from navigation until the page is rendered and settled (includes the new
  websocket session and drawing, e.g. the 15,841-point WebGL map), ``*_script_s`` the server-side
  script run time logged by the router (``$GENNAPE_STUDIO_TIMING``);
* ``map_rerun_*``: warm interactions on the Embedding map page (switching the projection between
  t-SNE and PCA: a full script rerun and a redraw of every point), server-side run time and
  end-to-end time until the page has settled (target ≤ 1 s).  Headless Chromium draws
  WebGL in software (no GPU), so browser-side times are upper bounds for a desktop browser.

Needs Debian's ``chromium``; without it only the server-side numbers are measured.
Environment: ``GENNAPE_STUDIO_WORKSPACE`` to benchmark another workspace file.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from engine.bench import _browser as B

PAGES = (("map", "Embedding map"), ("rankings", "Rankings"), ("clusters", "Clusters"),
         ("architecture", "Architecture"))


def _timings(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _wait_new_timing(path: Path, n_before: int, page: str, timeout: float = 120.0) -> dict:
    """The first script run of ``page`` logged after the first ``n_before`` lines (a run of the
    page navigated away from may still finish and log in between)."""
    def found():
        return next((t for t in _timings(path)[n_before:] if t["page"] == page), None)

    return B.wait_for(found, timeout, f"the script run of {page!r} to finish", interval=0.05)


def _visit(browser: B.DevTools, base: str, url_path: str, title: str, timing: Path) -> tuple[float, float]:
    n = len(_timings(timing))
    t = time.monotonic()
    browser.call("Page.navigate", url=f"{base}/{url_path}")
    run = _wait_new_timing(timing, n, url_path)  # the script has finished, then the page settles
    ready = B.wait_rendered(browser, title, timeout=180, stable_polls=3, interval=0.1)
    return ready - t, float(run["run_s"])


def _click(browser: B.DevTools, label: str, title: str, timing: Path) -> tuple[float, float]:
    """Click the button labelled ``label`` (e.g. a segmented-control option); the page reruns."""
    n = len(_timings(timing))
    t = time.monotonic()
    js = (f"(() => {{ const b = [...document.querySelectorAll('button')].find(e => e.innerText.trim() === "
          f"{json.dumps(label)}); if (!b) return false; b.click(); return true; }})()")
    if not browser.eval(js):
        raise RuntimeError(f"no button labelled {label!r} on the page {title!r}")
    run = _wait_new_timing(timing, n, "map", timeout=60)
    ready = B.wait_rendered(browser, title, timeout=60, stable_polls=3, interval=0.1)
    return max(ready, t) - t, float(run["run_s"])


def run() -> dict:
    out: dict = {}
    tmp = Path(tempfile.mkdtemp(prefix="gennape-bench-app-"))
    timing = tmp / "timing.jsonl"
    os.environ["GENNAPE_STUDIO_TIMING"] = str(timing)
    ws = os.environ.get("GENNAPE_STUDIO_WORKSPACE")
    if B.CHROMIUM is None:
        t0 = time.monotonic()
        with B.streamlit_app(tmp / "streamlit.log", workspace=Path(ws) if ws else None):
            out["server_health_s"] = round(time.monotonic() - t0, 2)
        out["browser"] = "chromium not installed: page timings skipped"
        print(json.dumps(out))
        return out
    with B.chromium() as browser:
        t0 = time.monotonic()
        with B.streamlit_app(tmp / "streamlit.log", workspace=Path(ws) if ws else None) as base:
            out["server_health_s"] = round(time.monotonic() - t0, 2)
            browser.call("Page.navigate", url=f"{base}/")
            home = B.wait_rendered(browser, "GENNAPE Studio", timeout=180, stable_polls=3, interval=0.1)
            out["open_default_s"] = round(home - t0, 2)
            print(f"app: server healthy {out['server_health_s']} s, Home rendered {out['open_default_s']} s "
                  "after launch", flush=True)
            for url_path, title in PAGES:
                ready, script = _visit(browser, base, url_path, title, timing)
                out[f"{url_path}_first_ready_s"], out[f"{url_path}_first_script_s"] = round(ready, 2), round(script, 3)
            for url_path, title in PAGES:
                ready, script = _visit(browser, base, url_path, title, timing)
                out[f"{url_path}_warm_ready_s"], out[f"{url_path}_warm_script_s"] = round(ready, 2), round(script, 3)
                print(f"app: {title}: first visit {out[f'{url_path}_first_ready_s']} s "
                      f"(script {out[f'{url_path}_first_script_s']} s), warm visit {round(ready, 2)} s "
                      f"(script {round(script, 3)} s)", flush=True)
            _visit(browser, base, "map", "Embedding map", timing)
            reruns = [_click(browser, label, "Embedding map", timing) for label in ("PCA", "t-SNE") * 3]
            out["map_rerun_script_s_median"] = round(statistics.median(r[1] for r in reruns), 3)
            out["map_rerun_ready_s_median"] = round(statistics.median(r[0] for r in reruns), 2)
            print(f"app: Embedding map warm rerun: script {out['map_rerun_script_s_median']} s, "
                  f"end to end {out['map_rerun_ready_s_median']} s (median of 6 projection switches)", flush=True)
    n_points = None
    try:
        from engine import studio

        n_points = len(studio.load_workspace(Path(ws) if ws else studio.default_asset_path()))
    except Exception:  # noqa: BLE001 - the count is informative only
        pass
    out["workspace_architectures"] = n_points
    return out
