"""Benchmark: the search's feasibility bottleneck (``python -m engine.bench search``).

The paper names checking that mutated CGs are feasible networks as its search bottleneck.
Measured here on one CPU thread, medians over a few runs:

* ``interpret`` (CG -> ``nn.Module``) and ``check_feasible`` (build + forward pass) per CG for
  NB-201, NB-101, ofa_mbv3 (224 px) and ofa_resnet (224 px) networks;
* ``mutate`` (one feasible CG mutation, checks included) per call;
* spec search throughput (candidates per second) in NB-201 with a params proxy scorer
  (so the number is the search machinery, not the predictor).
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import torch


def _median_time(fn, repeats: int = 5) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run() -> dict:
    from engine import families
    from engine.search.evolution import SearchConfig
    from engine.search.interpret import check_feasible, interpret
    from engine.search.mutate import mutate
    from engine.search.runner import params_proxy, run_search

    old = torch.get_num_threads()
    torch.set_num_threads(1)
    out: dict[str, dict] = {}
    try:
        for name in ("nb201", "nb101", "ofa_mbv3", "ofa_resnet"):
            fam = families.get(name)
            spec = fam.sample(1, seed=0)[0]
            if name.startswith("ofa_"):
                spec = {**{k: v for k, v in fam.validate(spec).items() if k not in ("r", "resolution")},
                        "image_size": 224}
            cg = fam.to_cg(spec)
            rng = np.random.default_rng(0)
            row = {"nodes": cg.num_nodes, "gflops": round(cg.flops / 1e9, 3),
                   "interpret_ms": 1e3 * _median_time(lambda cg=cg: interpret(cg)),
                   "check_feasible_ms": 1e3 * _median_time(lambda cg=cg: check_feasible(cg)),
                   "mutate_ms": 1e3 * _median_time(lambda cg=cg, rng=rng: mutate(cg, rng))}
            out[name] = {k: round(v, 2) if isinstance(v, float) else v for k, v in row.items()}
            print(f"{name:11s} {row['nodes']:4d} nodes {row['gflops']:7.3f} GFLOPs  interpret "
                  f"{row['interpret_ms']:7.1f} ms  check_feasible {row['check_feasible_ms']:7.1f} ms  "
                  f"mutate {row['mutate_ms']:7.1f} ms", flush=True)
        arch = families.get("nb201").sample(1, seed=0)[0]
        t = time.perf_counter()
        res = run_search(("nb201", arch), params_proxy, SearchConfig(budget=200, seed=0))
        dt = time.perf_counter() - t
        out["nb201_spec_search"] = {"candidates": len(res.history), "seconds": round(dt, 2),
                                    "candidates_per_s": round(len(res.history) / dt, 1)}
        print(f"nb201 spec search: {len(res.history)} candidates in {dt:.2f} s", flush=True)
    finally:
        torch.set_num_threads(old)
    return out
