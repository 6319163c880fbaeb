"""``python -m engine.bench data``: load all 15,625 NB-201 CGs with labels; time and peak memory.

Each measurement runs in a fresh Python subprocess (so the peak RSS, ``ru_maxrss``, belongs to
that load alone) against a fresh, empty cache folder:

* ``import``: the subprocess only imports the engine and torch (baseline RSS);
* ``cold``: ``load_default("cifar10")`` with an empty cache — every CG is built from its spec
  (by ``engine.families.cache``, which may use up to 2 worker processes; ``ru_maxrss`` is this
  process's peak — Linux's children figure inherits the parent's at fork, so it is not reported);
* ``cached``: the same call again; CGs come from the on-disk compact store.

After loading, each run materialises every CG once (``for cg in ds.cgs``) to prove they are all
there and checks 15,625 finite labels.  Target: peak RSS <= 1.5 GB.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile

from engine.paths import REPO_ROOT

_SCRIPT = r"""
import json, resource, sys, time
mode = sys.argv[1]
t0 = time.perf_counter()
import numpy as np
import torch
torch.set_num_threads(1)
import engine.data as data
out = {"import_s": time.perf_counter() - t0}
if mode != "import":
    t1 = time.perf_counter()
    ds = data.load_default("cifar10")
    out["load_s"] = time.perf_counter() - t1
    store = ds.cgs
    labels = ds.labels
    out["rows"] = len(ds)
    out["cgs"] = len(store)
    out["labelled"] = int(np.isfinite(labels).sum())
    out["label_min"] = float(np.nanmin(labels))
    out["label_max"] = float(np.nanmax(labels))
    out["nodes_total"] = int(len(store.node_row))
    out["distinct_node_rows"] = len(store.rows)
    out["store_array_mb"] = store.nbytes() / 1e6
    t2 = time.perf_counter()
    n_nodes = 0
    for cg in store:
        n_nodes += cg.num_nodes
    out["materialise_all_s"] = time.perf_counter() - t2
    assert n_nodes == out["nodes_total"]
    t3 = time.perf_counter()
    sub = ds.subset(range(1000))
    pyg = sub.to_pyg()
    out["to_pyg_1000_s"] = time.perf_counter() - t3
    assert len(pyg) == 1000 and all(hasattr(d, "y") for d in pyg)
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
print("RESULT " + json.dumps(out))
"""


def _measure(mode: str, cache: str) -> dict:
    env = dict(os.environ, GENNAPE_CACHE_DIR=cache, PYTHONPATH=str(REPO_ROOT), OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", _SCRIPT, mode], cwd=str(REPO_ROOT), env=env, capture_output=True,
                          text=True, timeout=3600)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"data benchmark subprocess ({mode}) failed:\n{proc.stderr[-2000:]}")
    return json.loads(line[len("RESULT "):])


def run() -> dict:
    cache = tempfile.mkdtemp(prefix="gennape-bench-data-")
    try:
        base = _measure("import", cache)
        cold = _measure("cold", cache)
        cached = _measure("cached", cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
    res = {
        "rows": cold["rows"], "cgs": cold["cgs"], "labelled": cold["labelled"],
        "nodes_total": cold["nodes_total"], "distinct_node_rows": cold["distinct_node_rows"],
        "store_array_mb": round(cold["store_array_mb"], 1),
        "import_only_peak_rss_mb": round(base["peak_rss_mb"], 1),
        "cold_load_s": round(cold["load_s"], 2), "cold_peak_rss_mb": round(cold["peak_rss_mb"], 1),
        "cached_load_s": round(cached["load_s"], 2), "cached_peak_rss_mb": round(cached["peak_rss_mb"], 1),
        "materialise_all_cgs_s": round(cached["materialise_all_s"], 2),
        "to_pyg_1000_s": round(cached["to_pyg_1000_s"], 2),
        "target_peak_rss_mb": 1536.0,
        "meets_target": max(cold["peak_rss_mb"], cached["peak_rss_mb"]) <= 1536.0,
    }
    print(f"NB-201: {res['rows']:,} rows, {res['labelled']:,} labelled, {res['cgs']:,} CGs "
          f"({res['nodes_total']:,} nodes, {res['distinct_node_rows']} distinct node rows, "
          f"{res['store_array_mb']} MB arrays)")
    print(f"  import only        peak RSS {res['import_only_peak_rss_mb']:8.1f} MB")
    print(f"  cold load  {res['cold_load_s']:7.2f} s  peak RSS {res['cold_peak_rss_mb']:8.1f} MB")
    print(f"  cached load {res['cached_load_s']:6.2f} s  peak RSS {res['cached_peak_rss_mb']:8.1f} MB")
    print(f"  materialise all CGs {res['materialise_all_cgs_s']:.2f} s; to_pyg x1000 {res['to_pyg_1000_s']:.2f} s")
    print(f"  target <= 1.5 GB: {'met' if res['meets_target'] else 'NOT met'}")
    return res
