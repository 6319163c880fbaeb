"""Few-shot fine-tuning of a fitted :class:`engine.model.predictor.GennapePredictor`.

Paper protocol ("Transferability Prediction Error"): k = 50 labelled CGs of the target family;
Eq. 5 labels use the mean / std of the *source* training set; the model is a deep copy of the
pre-trained one.  Here:

* the encoder and the FCM centroids stay frozen (embeddings of the k CGs are computed once);
* every head member (CL, CL+T, CL+FCM, CL+FCM+T) trains ``finetune.head_epochs`` full-batch
  epochs at ``finetune.head_lr`` on the k samples (source Eq. 5 / Z statistics);
* the pairwise scorers train on all pairs of the k samples and are re-calibrated on them;
* the k-GNN trains ``finetune.kgnn_epochs`` epochs at batch ``finetune.kgnn_batch_size``
  (the authors use batch 1 x 100 epochs; the defaults are cheaper, configurable);
* ensemble weights = ``softmax(KT_m / ft_temperature)`` of each member's Kendall tau on the k
  samples after fine-tuning.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from typing import Any

import numpy as np
import torch

from engine.model.ensemble import kt_softmax_weights
from engine.model.packing import as_packed
from engine.train.callbacks import Callback, notify


def finetune_predictor(base, cgs, acc: Any, k: int | None = None, seed: int = 0,
                       callback: Callback | None = None):
    """See module docstring; returns a new predictor (``base`` is not modified)."""
    from engine.model.predictor import HEAD_MEMBERS, PAIR_MEMBERS, _kendall, _labels, split_k
    from engine.train.fit import linear_calibration, train_ensemble, train_kgnn, train_pairwise

    t_start = time.perf_counter()
    cfg = base.config
    ft = cfg.finetune
    packed_all = as_packed(cgs)
    a_all = _labels(acc, len(packed_all), "finetune")
    labelled = np.flatnonzero(np.isfinite(a_all))
    k = ft.k if k is None else int(k)
    if k < 2:
        raise ValueError(f"finetune: k must be >= 2, got {k}")
    if labelled.size < 2:
        raise ValueError(f"finetune: need at least 2 labelled CGs, got {labelled.size}")
    chosen, _ = split_k(labelled.size, k, seed)
    idx = labelled[chosen]
    packed = packed_all.select(idx)
    a = a_all[idx]
    flops = packed.flops.numpy()

    model = copy.deepcopy(base)
    model._eval()
    with torch.no_grad():
        h = model.cl.encoder(packed) if len(packed) else torch.zeros(0, model.embed_dim)
    u = torch.from_numpy(model.fcm_memberships(h.double().numpy())).to(torch.float32)
    n = len(packed)
    notify(callback, "finetune", 0, 4, {"k": n})

    hc = dataclasses.replace(cfg.heads, batch_size=max(n, 1))  # full batch
    for j, (name, (use_fcm, kind)) in enumerate(HEAD_MEMBERS.items()):
        y = torch.from_numpy(model.transforms[kind].transform(a, flops)).to(torch.float32)
        train_ensemble(model.heads[name], h, y, u if use_fcm else None, hc, seed=seed + j,
                       epochs=ft.head_epochs, lr=ft.head_lr)
    notify(callback, "finetune", 1, 4, {"stage": "heads"})

    pc = cfg.pairwise
    y_pair = (torch.from_numpy(a).to(torch.float32) if pc.target == "acc"
              else torch.from_numpy(model.transforms["flops"].transform(a, flops)).to(torch.float32))
    pcf = dataclasses.replace(pc, batch_size=max(n * (n - 1), 1), pairs_per_epoch=max(n * (n - 1), 1))
    for j, (name, use_fcm) in enumerate(PAIR_MEMBERS.items()):
        train_pairwise(model.pairwise[name], h, y_pair, u if use_fcm else None, pcf, seed=seed + 10 + j,
                       epochs=ft.head_epochs, lr=ft.head_lr, min_gap=1e-9)
        with torch.no_grad():
            g = model.pairwise[name](h, u if use_fcm else None).numpy()
        model.pair_calibration[name] = linear_calibration(g, y_pair.numpy())
    notify(callback, "finetune", 2, 4, {"stage": "pairwise"})

    if model.kgnn is not None and ft.kgnn_epochs > 0:
        y_frac = torch.from_numpy(a / 100.0).to(torch.float32)
        train_kgnn(model.kgnn, packed, y_frac, cfg.kgnn, seed=seed + 20, epochs=ft.kgnn_epochs,
                   batch_size=ft.kgnn_batch_size, lr=ft.kgnn_lr)
    notify(callback, "finetune", 3, 4, {"stage": "kgnn"})

    vals, _ = model.member_predictions(packed)
    kts = {m: _kendall(a, vals[m]) for m in model.finetune_members}
    model.weights = kt_softmax_weights(kts, cfg.ensemble.ft_temperature)
    # the fine-tuned weights were measured on the target family: they apply to every row
    model.config = model.config.override({"ensemble.in_domain_members": []})
    model._eval()
    card = dict(model.model_card)
    card["finetune"] = {"k": int(n), "seed": int(seed), "kendall_tau_on_finetune_set": kts,
                        "weights": dict(model.weights), "seconds": time.perf_counter() - t_start,
                        "label_range": [float(a.min()), float(a.max())] if n else None}
    card["weights"] = dict(model.weights)
    model.model_card = card
    notify(callback, "finetune", 4, 4, {"seconds": card["finetune"]["seconds"]})
    return model
