"""Few-shot fine-tuning of a fitted :class:`engine.model.predictor.GennapePredictor`.

Paper protocol ("Transferability Prediction Error"): k = 50 labelled CGs of the target family;
Eq. 5 labels use the mean / std of the *source* training set; the model is a deep copy of the
pre-trained one.  Here:

* the encoder and the FCM centroids stay frozen (embeddings of the k CGs are computed once);
* every head member (CL, CL+T, CL+FCM, CL+FCM+T) trains ``finetune.head_epochs`` full-batch
  epochs at ``finetune.head_lr`` on the k samples (source Eq. 5 / Z statistics);
* the pairwise scorers train on all pairs of the k samples and are re-calibrated on them;
* the k-GNN trains ``finetune.kgnn_epochs`` epochs at batch ``finetune.kgnn_batch_size``
  (the authors use batch 1 x 100 epochs; the defaults are cheaper, configurable).

Ensemble weights (``finetune.selection``; ``"auto"``, the default, picks ``"cv"`` when most of the
k samples lie inside the base model's training domain and ``"paper"`` otherwise, and for samples of
a family the checkpoint was not trained on -- see :func:`auto_selection`):

* ``"paper"``: ``softmax(KT_m / ft_temperature)`` of each of ``ensemble.finetune_members`` on the
  k samples after fine-tuning -- the samples the members were just fitted to, so a member that
  memorised them looks as good as one that generalises.
* ``"cv"``: the k samples are split into ``finetune.cv_folds`` folds; for every fold a copy is
  fine-tuned on the other folds and every member's Kendall tau is measured on the held-out fold,
  for the fine-tuned member and for the pre-trained one (which never saw the fold either).  Each
  learned member then keeps the version with the higher mean out-of-fold tau (pre-trained on a
  tie) -- fine-tuning can only replace a member where it measurably helps on unseen samples of
  the target -- and the weights are ``softmax(tau_cv / ft_temperature)`` over
  ``ensemble.finetune_members`` plus ``ensemble.in_domain_members``.  The final members are
  fine-tuned on all k samples.  Last, the resulting ensemble is scored on the held-out folds
  against the base model's own ``score`` (its zero-shot weights and in-domain gate); if it does
  not rank them better, the base model is returned unchanged (``kept_base_model`` in the model
  card) -- on a family the base model already ranks well, a few samples cannot make it worse.
  The base model is returned too when nothing can be measured: held-out taus undefined (equal
  labels), or fewer than 4 samples (no 2 folds of 2).  Costs ``cv_folds + 1`` fine-tuning runs.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from engine.model.ensemble import kt_softmax_weights
from engine.model.packing import as_packed
from engine.train.callbacks import Callback, notify

SELECTIONS = ("auto", "paper", "cv")


def learned_members(model) -> tuple[str, ...]:
    """Members whose weights fine-tuning changes."""
    from engine.model.predictor import HEAD_MEMBERS, PAIR_MEMBERS

    return (*HEAD_MEMBERS, *PAIR_MEMBERS, *(("kgnn",) if model.kgnn is not None else ()))


def tune_members(model, packed, a: np.ndarray, seed: int, callback: Callback | None = None,
                 stage: str = "finetune") -> None:
    """Fine-tune ``model``'s heads, pairwise scorers and k-GNN **in place** on ``(packed, a)``."""
    from engine.model.predictor import HEAD_MEMBERS, PAIR_MEMBERS
    from engine.train.fit import linear_calibration, train_ensemble, train_kgnn, train_pairwise

    cfg = model.config
    ft = cfg.finetune
    model._eval()
    n = len(packed)
    with torch.no_grad():
        h = model.cl.encoder(packed) if n else torch.zeros(0, model.embed_dim)
    u = torch.from_numpy(model.fcm_memberships(h.double().numpy())).to(torch.float32)
    flops = packed.flops.numpy()

    hc = dataclasses.replace(cfg.heads, batch_size=max(n, 1))  # full batch
    for j, (name, (use_fcm, kind)) in enumerate(HEAD_MEMBERS.items()):
        y = torch.from_numpy(model.transforms[kind].transform(a, flops)).to(torch.float32)
        train_ensemble(model.heads[name], h, y, u if use_fcm else None, hc, seed=seed + j,
                       epochs=ft.head_epochs, lr=ft.head_lr)
    notify(callback, stage, 1, 4, {"stage": "heads"})

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
    notify(callback, stage, 2, 4, {"stage": "pairwise"})

    if model.kgnn is not None and ft.kgnn_epochs > 0:
        y_frac = torch.from_numpy(a / 100.0).to(torch.float32)
        train_kgnn(model.kgnn, packed, y_frac, cfg.kgnn, seed=seed + 20, epochs=ft.kgnn_epochs,
                   batch_size=ft.kgnn_batch_size, lr=ft.kgnn_lr)
    notify(callback, stage, 3, 4, {"stage": "kgnn"})
    model._eval()


def restore_member(model, base, name: str) -> None:
    """Put ``base``'s pre-trained weights of member ``name`` back into ``model``."""
    if name in model.heads:
        model.heads[name].load_state_dict(base.heads[name].state_dict())
    elif name in model.pairwise:
        model.pairwise[name].load_state_dict(base.pairwise[name].state_dict())
        model.pair_calibration[name] = base.pair_calibration.get(name, (1.0, 0.0))
    elif name == "kgnn" and model.kgnn is not None:
        model.kgnn.load_state_dict(base.kgnn.state_dict())
    else:
        raise ValueError(f"restore_member: {name!r} is not a learned member")


def auto_selection(base, packed, families: set[str] | None = None) -> tuple[str, str]:
    """``finetune.selection = "auto"``: ``("cv", why)`` when most of the samples lie inside the
    base model's training domain (novelty <= 1), else ``("paper", why)``.  Samples whose family is
    known (``families``: every sample's CG names one) and is none of the checkpoint's training
    families (``model_card["source_families"]``) are outside whatever the novelty says.

    Measured (README, "Fine-tuning"): inside the domain the base model's in-domain members already
    rank unseen cells well and the paper's weights lose to them (NB-201, three label sets: SRCC
    0.905 -> 0.833 paper, -> 0.902 cv); outside, on the leave-one-family-out targets, the paper's
    weights were as good or better (NB-101 0.805 paper vs 0.789 cv).  The novelty alone called
    some NB-301 samples inside an NB-101 model's domain, and cross-validation on 10 of them kept the
    base model, which ranks NB-301 inversely (README, evaluation harness)."""
    if base.domain is None or not len(packed):
        return "paper", "auto: the checkpoint has no domain reference, so the paper's weights"
    trained = {str(f) for f in (base.model_card or {}).get("source_families") or []}
    if families and trained and not families & trained:
        return "paper", (f"auto: the samples' family ({', '.join(sorted(families))}) is not one the checkpoint "
                         f"was trained on ({', '.join(sorted(trained))}), so the paper's weights")
    h = base.embed(packed)
    inside = int(np.sum(base.novelty_from_embeddings(h) <= 1.0))
    if 2 * inside > len(packed):
        return "cv", (f"auto: {inside} of {len(packed)} samples lie inside the checkpoint's training domain, "
                      "so cross-validated selection")
    return "paper", (f"auto: {inside} of {len(packed)} samples lie inside the checkpoint's training domain, "
                     "so the paper's weights")


def cv_folds(n: int, folds: int, seed: int) -> list[np.ndarray]:
    """Seeded split of ``range(n)`` into ``min(folds, n // 2)`` folds of at least 2 rows each
    ([] when fewer than 2 such folds fit)."""
    f = min(int(folds), n // 2)
    if f < 2:
        return []
    perm = np.random.default_rng(seed + 7919).permutation(n)
    return [np.sort(p) for p in np.array_split(perm, f)]


@dataclasses.dataclass
class CrossValidation:
    """Out-of-fold member values on the k samples: ``pretrained[m]`` from the base model (which
    saw none of them), ``finetuned[m]`` row by row from the copy fine-tuned without that row's fold."""

    folds: list[np.ndarray]
    pretrained: dict[str, np.ndarray]
    finetuned: dict[str, np.ndarray]

    def kendall(self, a: np.ndarray, values: dict[str, np.ndarray]) -> dict[str, float]:
        """Mean over folds of each member's Kendall tau on the held-out fold."""
        return {m: fold_mean(a, v, self.folds) for m, v in values.items()}


def fold_mean(a: np.ndarray, v: np.ndarray, folds: list[np.ndarray]) -> float:
    """Mean over folds of Kendall tau between ``a`` and ``v`` on each fold's rows (NaN-aware)."""
    from engine.model.predictor import _kendall

    taus = np.array([_kendall(a[f], v[f]) for f in folds], dtype=np.float64)
    return float(np.nanmean(taus)) if np.isfinite(taus).any() else float("nan")


def cross_validate(base, packed, a: np.ndarray, folds: list[np.ndarray], seed: int,
                   callback: Callback | None = None) -> CrossValidation:
    """For each fold, a deep copy of ``base`` fine-tuned on the other folds predicts the fold."""
    pre, _ = base.member_predictions(packed)
    post = {m: np.full(len(packed), np.nan) for m in pre}
    n = len(packed)
    for f, test in enumerate(folds):
        model = copy.deepcopy(base)
        train = np.setdiff1d(np.arange(n), test)
        tune_members(model, packed.select(train), a[train], seed=seed + 1000 * (f + 1))
        vals, _ = model.member_predictions(packed.select(test))
        for m in post:
            post[m][test] = vals[m]
        notify(callback, "finetune cv", f + 1, len(folds), {"fold": f})
    return CrossValidation(folds, pre, post)


def _fold_scores(values: dict[str, np.ndarray], weights: dict[str, float], cfg, folds) -> np.ndarray:
    """The weighted ensemble of ``values`` computed within each fold (as ``predict`` would on
    that fold alone; only the order within a fold matters)."""
    from engine.model.ensemble import EnsembleReference

    out = np.full(len(next(iter(values.values()))), np.nan)
    anchor = cfg.ensemble.anchor
    for f in folds:
        sub = {m: v[f] for m, v in values.items()}
        ref = EnsembleReference.fit(sub, weights, sub[anchor], cfg.ensemble.standardize)
        out[f] = ref.score(sub, weights, sub[anchor])
    return out


def _fold_base_scores(base, packed, folds) -> np.ndarray:
    """The base model's ``score`` (its own weights and in-domain gate) on each fold alone."""
    out = np.full(len(packed), np.nan)
    for f in folds:
        out[f] = base.predict(packed.select(f))["score"].to_numpy(dtype=np.float64)
    return out


def finetune_predictor(base, cgs, acc: Any, k: int | None = None, seed: int = 0,
                       callback: Callback | None = None, families: Sequence[str] | None = None):
    """See module docstring; returns a new predictor (``base`` is not modified)."""
    from engine.model.predictor import _kendall, _labels, split_k

    t_start = time.perf_counter()
    cfg = base.config
    ft = cfg.finetune
    if ft.selection not in SELECTIONS:
        raise ValueError(f"finetune.selection must be one of {SELECTIONS}, got {ft.selection!r}")
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
    n = len(packed)
    base._eval()

    if families is not None and len(families) != len(packed_all):
        raise ValueError(f"finetune: {len(families)} families for {len(packed_all)} CGs")
    wanted, reason = ft.selection, ""
    if wanted == "auto":
        if families is not None:
            named = [families[i] for i in idx]
        else:  # the CGs' own meta (a PackedGraphs has none)
            metas = [getattr(cgs[i], "meta", None) for i in idx] if isinstance(cgs, Sequence) else []
            named = [m.get("family") if isinstance(m, dict) else None for m in metas]
        known = bool(named) and all(named)
        wanted, reason = auto_selection(base, packed, {str(f) for f in named} if known else None)
    folds = cv_folds(n, ft.cv_folds, seed) if wanted == "cv" else []
    selection = wanted if wanted == "cv" else "paper"
    cv = cv_pre = cv_ft = None
    if folds:
        notify(callback, "finetune cv", 0, len(folds), {"k": n, "folds": len(folds)})
        cv = cross_validate(base, packed, a, folds, seed, callback)
        cv_pre, cv_ft = cv.kendall(a, cv.pretrained), cv.kendall(a, cv.finetuned)

    info: dict[str, Any] = {"k": int(n), "seed": int(seed), "selection": selection}
    if reason:
        info["selection_reason"] = reason
    learned = learned_members(base)
    keep_base, kept, weights = False, [], {}
    if wanted == "cv" and not folds:
        # nothing can be measured: keep the base model, as cv does when it measures no gain (the
        # paper's weights from 2-3 samples ranked NB-201 with SRCC 0.70-0.87 where the base had 0.94)
        keep_base = True
        info.update({"selection_note": f"cross-validation needs at least 4 samples (2 folds of 2); {n} given: the "
                                       "base model is kept", "kept_pretrained": list(learned),
                     "kept_base_model": True})
    if folds:
        kept = [m for m in learned
                if not (np.isfinite(cv_ft[m]) and (not np.isfinite(cv_pre[m]) or cv_ft[m] > cv_pre[m]))]
        pool = (*(cfg.ensemble.finetune_members or cfg.ensemble.members), *cfg.ensemble.in_domain_members)
        names = base._available(dict.fromkeys(pool))
        kts = {m: (cv_pre[m] if m in kept else cv_ft[m]) for m in names}
        weights = kt_softmax_weights(kts, cfg.ensemble.ft_temperature)
        # the whole fine-tuned ensemble against the base model's own score, fold by fold (the
        # choices above used the same folds, which flatters the fine-tuned side: keeping the
        # base model on a tie or a loss is the conservative call)
        oof = {m: (cv.pretrained[m] if m in kept else cv.finetuned[m]) for m in cv.pretrained}
        tau_tuned = fold_mean(a, _fold_scores(oof, weights, cfg, folds), folds)
        tau_base = fold_mean(a, _fold_base_scores(base, packed, folds), folds)
        # kept unless the fine-tuned ensemble measurably ranks better (nothing measurable, e.g. equal labels: kept)
        keep_base = not (np.isfinite(tau_tuned) and (not np.isfinite(tau_base) or tau_tuned > tau_base))
        info.update({"folds": len(folds), "cv_pairs": int(sum(f.size * (f.size - 1) // 2 for f in folds)),
                     "kendall_tau_cv": kts, "kept_pretrained": list(learned) if keep_base else kept,
                     "kendall_tau_cv_pretrained": {m: cv_pre[m] for m in learned},
                     "kendall_tau_cv_finetuned": {m: cv_ft[m] for m in learned},
                     "kendall_tau_cv_ensemble": {"base": tau_base, "finetuned": tau_tuned},
                     "kept_base_model": keep_base})

    model = copy.deepcopy(base)
    if not keep_base:  # (keep_base: fine-tuning did not beat the base model on held-out folds)
        notify(callback, "finetune", 0, 4, {"k": n})
        tune_members(model, packed, a, seed, callback)
    vals, _ = model.member_predictions(packed)
    in_sample = {m: _kendall(a, vals[m]) for m in model.finetune_members}
    if not keep_base:
        for m in kept:
            restore_member(model, base, m)
        model.weights = weights if folds else kt_softmax_weights(in_sample, cfg.ensemble.ft_temperature)
        # the fine-tuned weights were measured on the target family: they apply to every row
        model.config = model.config.override({"ensemble.in_domain_members": []})
    model._eval()
    card = dict(model.model_card)
    info.update({"kendall_tau_on_finetune_set": in_sample, "weights": dict(model.weights),
                 "seconds": time.perf_counter() - t_start,
                 "label_range": [float(a.min()), float(a.max())] if n else None})
    card["finetune"] = info
    card["weights"] = dict(model.weights)
    model.model_card = card
    notify(callback, "finetune", 4, 4, {"seconds": info["seconds"]})
    return model
