"""``python -m engine.bench predictor``: GENNAPE predictor speed.

* prediction throughput (CGs/s) on pre-built CGs: cold (features computed from the CG
  objects; the first call after building them, and the best of three calls with the feature
  cache cleared), warm (the same CG objects again: memoised features) and pre-packed
  (``PackedGraphs``).  The CGs are built and a full garbage collection is run *before* timing:
  building ~350k node objects leaves Python's cyclic collector a full collection to do
  (~0.3 s for 2,000 NB-201 CGs), which belongs to building the CGs, not to predicting them;
* fine-tuning time on 50 labelled CGs, with the paper's weights and with cross-validated selection;
* contrastive pre-training and k-GNN time per epoch, measured on a subset and extrapolated to
  15,625 CGs (NAS-Bench-201).

Uses the shipped checkpoint when present, else a predictor with the *default* architecture
sizes quickly fitted on synthetic CGs (speed does not depend on the weights).  CGs are
NAS-Bench-201 networks.
Environment: ``GENNAPE_BENCH_N`` (CGs for throughput, default 2000), ``GENNAPE_BENCH_THREADS``.
"""

from __future__ import annotations

import gc
import os
import time

import numpy as np
import torch

N_REFERENCE = 15_625


def _cgs(n: int):
    from engine.families import get
    from engine.families.cache import cached_cgs

    return list(cached_cgs("nb201", get("nb201").sample(n, seed=0))), "nb201"


def _predictor():
    from engine.model import default_checkpoint_dir
    from engine.model.config import GennapeConfig
    from engine.model.predictor import GennapePredictor
    from engine.model.synthetic import synthetic_dataset

    if (default_checkpoint_dir() / "weights.safetensors").exists():
        return GennapePredictor.load(default_checkpoint_dir()), "shipped checkpoint"
    cgs, acc = synthetic_dataset(64, seed=0)
    cfg = GennapeConfig().override({"contrastive.epochs": 1, "heads.epochs": 2, "pairwise.epochs": 1,
                                    "kgnn.epochs": 1, "train.min_acc": None})
    return GennapePredictor(cfg).fit(cgs, acc), "default-size config fitted on synthetic CGs (no checkpoint)"


def _rate(fn, n: int, repeats: int = 2) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return n / best


def run() -> dict:
    from engine.model.contrastive import ContrastiveEncoder
    from engine.model.kgnn import KGNNRegressor
    from engine.model.packing import clear_feature_cache, pack
    from engine.train.fit import train_kgnn
    from engine.train.pretrain import graph_spectra, pretrain_contrastive

    threads = int(os.environ.get("GENNAPE_BENCH_THREADS", torch.get_num_threads()))
    torch.set_num_threads(threads)
    n = int(os.environ.get("GENNAPE_BENCH_N", "2000"))
    pred, origin = _predictor()
    cgs, kind = _cgs(n)
    nodes = float(np.mean([c.num_nodes for c in cgs]))
    print(f"predictor: {origin}; {n} {kind} CGs, {nodes:.0f} nodes each on average; torch threads {threads}")

    pred.predict(cgs[:64])  # warm-up
    gc.collect()  # the collector's debt from building the CGs (see module docstring)
    clear_feature_cache()
    t = time.perf_counter()
    pred.predict(cgs)
    cold = n / (time.perf_counter() - t)

    def cold_call():
        clear_feature_cache()
        pred.predict(cgs)

    cold_repeat = _rate(cold_call, n, repeats=3)
    warm = _rate(lambda: pred.predict(cgs), n)
    packed = pack(cgs)
    prepacked = _rate(lambda: pred.predict(packed), n)
    t = time.perf_counter()
    pack(cgs, cache=None)
    pack_rate = n / (time.perf_counter() - t)
    print(f"predict: cold {cold:,.0f} CGs/s (best of 3 more cold calls {cold_repeat:,.0f}), warm {warm:,.0f} CGs/s, "
          f"pre-packed {prepacked:,.0f} CGs/s (feature packing alone {pack_rate:,.0f} CGs/s)")

    acc = np.linspace(85, 93, 50) + np.random.default_rng(0).normal(0, 0.3, 50)
    times = {}
    for sel in ("paper", "cv"):
        t = time.perf_counter()
        pred.finetune(cgs[:50], acc, k=50, selection=sel)
        times[sel] = time.perf_counter() - t
    ft_s, ft_cv_s = times["paper"], times["cv"]
    print(f"fine-tune on 50 CGs: {ft_s:.1f} s (paper weights), {ft_cv_s:.1f} s (cross-validated selection, "
          f"{pred.config.finetune.cv_folds} folds)")

    sub = min(n, 512)
    sp = pack(cgs[:sub])
    t = time.perf_counter()
    spectra = graph_spectra(sp, pred.config.contrastive.q, cache=False)
    spec_s = (time.perf_counter() - t) / sub * N_REFERENCE
    torch.manual_seed(0)
    cl = ContrastiveEncoder(pred.config.encoder, pred.config.contrastive)
    t = time.perf_counter()
    pretrain_contrastive(cl, sp, spectra, pred.config.contrastive, epochs=1)
    cl_epoch = (time.perf_counter() - t) / sub * N_REFERENCE
    kg = KGNNRegressor(pred.config.kgnn)
    t = time.perf_counter()
    train_kgnn(kg, sp, torch.full((sub,), 0.9), pred.config.kgnn, epochs=1)
    kgnn_epoch = (time.perf_counter() - t) / sub * N_REFERENCE
    print(f"per epoch on {N_REFERENCE:,} CGs (extrapolated from {sub}): contrastive {cl_epoch:.0f} s, "
          f"k-GNN {kgnn_epoch:.0f} s; spectra once {spec_s:.0f} s")
    return {"predict_cold_cgs_per_s": cold, "predict_cold_repeat_cgs_per_s": cold_repeat,
            "predict_warm_cgs_per_s": warm, "predict_prepacked_cgs_per_s": prepacked,
            "pack_cgs_per_s": pack_rate, "mean_nodes": nodes, "finetune_50_s": ft_s, "finetune_50_cv_s": ft_cv_s,
            "contrastive_epoch_s_15k": cl_epoch, "kgnn_epoch_s_15k": kgnn_epoch, "spectra_s_15k": spec_s,
            "threads": threads, "cgs": kind, "predictor": origin}
