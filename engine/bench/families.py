"""Family CG builders: ``python -m engine.bench families``.

* NB-201: all 15,625 CGs built cold through :func:`engine.families.cache.cached_cgs` (into a
  temporary cache folder, default workers), then loaded again from disk (cached);
* every registered family: mean direct ``to_cg`` time over a small sample, with nodes / edges.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

SAMPLE = 20


def run() -> dict:
    import torch

    torch.set_num_threads(1)
    from engine.families import cache as cg_cache
    from engine.families import get, names

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="gennape-bench-") as tmp:
        root = Path(tmp)
        specs = list(get("nb201").enumerate())
        t0 = time.perf_counter()
        cgs = cg_cache.cached_cgs("nb201", specs, root=root)
        out["nb201_all_cold_s"] = time.perf_counter() - t0
        out["nb201_all_nodes"] = float(sum(cg.num_nodes for cg in cgs))
        del cgs
        folder = cg_cache.family_cache_dir("nb201", root)
        out["nb201_cache_mb"] = sum(p.stat().st_size for p in folder.glob("*.npz")) / 1e6
        for path in folder.glob("*.npz"):  # force a read from disk, as a new process would
            cg_cache._LOADED.pop(str(path), None)
        t0 = time.perf_counter()
        cgs = cg_cache.cached_cgs("nb201", specs, root=root)
        out["nb201_all_cached_load_s"] = time.perf_counter() - t0
        del cgs
    print(f"nb201: all {len(specs)} CGs cold {out['nb201_all_cold_s']:.1f} s, cached load "
          f"{out['nb201_all_cached_load_s']:.2f} s, cache {out['nb201_cache_mb']:.1f} MB")
    for name in names():
        fam = get(name)
        try:
            specs = fam.sample(SAMPLE, seed=0)
        except Exception as exc:  # noqa: BLE001 - a broken family must not stop the benchmark
            print(f"{name}: sample failed ({type(exc).__name__}: {exc})")
            continue
        times, nodes, edges = [], [], []
        for s in specs:
            t0 = time.perf_counter()
            cg = fam.to_cg(s)
            times.append(time.perf_counter() - t0)
            nodes.append(cg.num_nodes)
            edges.append(cg.num_edges)
        ms = 1000 * statistics.mean(times)
        out[f"{name}_to_cg_ms"] = ms
        out[f"{name}_mean_nodes"] = statistics.mean(nodes)
        print(f"{name}: to_cg {ms:.2f} ms/CG (mean of {len(specs)}), {statistics.mean(nodes):.0f} nodes, "
              f"{statistics.mean(edges):.0f} edges")
    return out
