"""Supervised training loops of the GENNAPE members (heads, pairwise scorers, k-GNN).

Each loop is deterministic given ``seed`` (its own ``torch.Generator`` for shuffling and pair
sampling), reports progress through :func:`engine.train.callbacks.notify` and, when validation
data is given, restores the parameters of the epoch with the best validation loss.
"""

from __future__ import annotations

import contextlib
import copy
import math

import numpy as np
import torch

from engine.model.config import HeadConfig, KGNNConfig, PairwiseConfig
from engine.model.heads import MLPEnsemble, PairwiseScorer, sample_pairs
from engine.model.kgnn import KGNNRegressor
from engine.model.packing import PackedGraphs
from engine.train.callbacks import Callback, notify


@contextlib.contextmanager
def small_ops_threads(n: int = 1):
    """Run tiny-tensor training (MLP heads on embeddings) with ``n`` intra-op threads: on a
    shared machine extra threads only add synchronisation cost for such small ops."""
    old = torch.get_num_threads()
    torch.set_num_threads(min(n, old))
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _gen(seed: int) -> torch.Generator:
    g = torch.Generator()
    g.manual_seed(int(seed))
    return g


def _train_ensemble(model: MLPEnsemble, h: torch.Tensor, y: torch.Tensor, u: torch.Tensor | None,
                   cfg: HeadConfig, seed: int = 0, callback: Callback | None = None, stage: str = "heads",
                   val: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None,
                   epochs: int | None = None, lr: float | None = None) -> dict[str, list[float]]:
    """Fit an :class:`MLPEnsemble` on frozen embeddings ``h`` (N, e), labels ``y`` (N,) and
    memberships ``u`` (N, C) or None (single head) with Adam + mini-batches."""
    epochs = cfg.epochs if epochs is None else epochs
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr if lr is None else lr, weight_decay=cfg.weight_decay)
    g = _gen(seed)
    n = h.shape[0]
    hist: dict[str, list[float]] = {"loss": [], "val_loss": []}
    best, best_state = math.inf, None
    y = y.to(torch.float32)
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for s in range(0, n, cfg.batch_size):
            idx = perm[s:s + cfg.batch_size]
            loss = model.loss(h[idx], y[idx], None if u is None else u[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.item()) * len(idx)
        hist["loss"].append(total / max(n, 1))
        metrics = {"epoch": ep + 1, "loss": hist["loss"][-1]}
        if val is not None:
            model.eval()
            with torch.no_grad():
                vl = float(model.loss(val[0], val[1].to(torch.float32), val[2]).item())
            hist["val_loss"].append(vl)
            metrics["val_loss"] = vl
            if vl < best:
                best, best_state = vl, copy.deepcopy(model.state_dict())
        notify(callback, stage, ep + 1, epochs, metrics)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return hist


def _train_pairwise(model: PairwiseScorer, h: torch.Tensor, y: torch.Tensor, u: torch.Tensor | None,
                   cfg: PairwiseConfig, seed: int = 0, callback: Callback | None = None, stage: str = "pairwise",
                   epochs: int | None = None, lr: float | None = None, min_gap: float | None = None,
                   groups: torch.Tensor | None = None) -> dict[str, list[float]]:
    """Fit a :class:`PairwiseScorer` with the logistic pair loss; each epoch draws
    ``pairs_per_epoch`` fresh random pairs (all pairs for small sets), within ``groups`` when
    given (see :func:`sample_pairs`)."""
    epochs = cfg.epochs if epochs is None else epochs
    gap = cfg.min_gap if min_gap is None else min_gap
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr if lr is None else lr, weight_decay=cfg.weight_decay)
    g = _gen(seed)
    hist: dict[str, list[float]] = {"loss": [], "pair_acc": []}
    y = y.to(torch.float32)
    for ep in range(epochs):
        model.train()
        pairs = sample_pairs(y, cfg.pairs_per_epoch, gap, g, groups)
        if pairs.shape[0] == 0:
            notify(callback, stage, ep + 1, epochs, {"epoch": ep + 1, "pairs": 0})
            continue
        total = 0.0
        for s in range(0, pairs.shape[0], cfg.batch_size):
            pb = pairs[s:s + cfg.batch_size]
            rows, inv = torch.unique(pb, return_inverse=True)
            loss = model.loss(h[rows], y[rows], inv, None if u is None else u[rows])
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += float(loss.item()) * pb.shape[0]
        model.eval()
        with torch.no_grad():
            sc = model(h, u)
            acc = float(((sc[pairs[:, 0]] > sc[pairs[:, 1]]) == (y[pairs[:, 0]] > y[pairs[:, 1]])).float().mean())
        hist["loss"].append(total / pairs.shape[0])
        hist["pair_acc"].append(acc)
        notify(callback, stage, ep + 1, epochs, {"epoch": ep + 1, "loss": hist["loss"][-1], "pair_acc": acc})
    model.eval()
    return hist


def _mape(pred: torch.Tensor, y: torch.Tensor) -> float:
    keep = y.abs() > 1e-9
    if not bool(keep.any()):
        return math.inf
    return float(((pred[keep] - y[keep]).abs() / y[keep].abs()).mean() * 100.0)


def train_kgnn(model: KGNNRegressor, packed: PackedGraphs, y_frac: torch.Tensor, cfg: KGNNConfig, seed: int = 0,
               callback: Callback | None = None, stage: str = "kgnn", dev: PackedGraphs | None = None,
               dev_y: torch.Tensor | None = None, epochs: int | None = None, batch_size: int | None = None,
               lr: float | None = None) -> dict[str, list[float]]:
    """The authors' k-GNN recipe: MSE on accuracy fractions, Adam, grad-norm clip, fixed
    batches; with ``dev`` data the epoch with the lowest dev MAPE is kept."""
    epochs = cfg.epochs if epochs is None else epochs
    bs = cfg.batch_size if batch_size is None else batch_size
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr if lr is None else lr)
    g = _gen(seed)
    n = len(packed)
    y_frac = y_frac.to(torch.float32)
    hist: dict[str, list[float]] = {"loss": [], "dev_mape": []}
    best, best_state = math.inf, None
    steps_per_epoch = max(1, math.ceil(n / bs))
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=g)
        total = 0.0
        for b, s in enumerate(range(0, n, bs)):
            idx = perm[s:s + bs]
            loss = model.loss(packed.select(idx), y_frac[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            total += float(loss.item()) * len(idx)
            if b % 50 == 0:
                notify(callback, stage, ep * steps_per_epoch + b + 1, epochs * steps_per_epoch,
                       {"epoch": ep + 1, "loss": float(loss.item())})
        hist["loss"].append(total / max(n, 1))
        metrics = {"epoch": ep + 1, "loss": hist["loss"][-1]}
        if dev is not None and dev_y is not None and len(dev) > 0:
            pred = model.predict_percent(dev) / 100.0
            mape = _mape(pred, dev_y.to(torch.float32))
            hist["dev_mape"].append(mape)
            metrics["dev_mape"] = mape
            if mape < best:
                best, best_state = mape, copy.deepcopy(model.state_dict())
        notify(callback, stage, (ep + 1) * steps_per_epoch, epochs * steps_per_epoch, metrics)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return hist


def linear_calibration(score: np.ndarray, target: np.ndarray, groups: np.ndarray | None = None
                       ) -> tuple[float, float]:
    """Least-squares ``target ~ a * score + b`` with ``a > 0`` (keeps the score's order);
    ``(0, mean)`` when the score is constant.

    ``groups``: fit the slope *within* groups (pooled within-group covariance over variance).
    A pairwise scorer trained on pairs within each family only orders architectures inside a
    family; across families the accuracy levels differ for reasons it never saw, and a pooled
    slope can even come out negative (in one leave-one-family-out fit it did, which made both
    pairwise members constant).  When the slope is not positive the score still keeps its order,
    with a spread of 0.1% of the target's.
    """
    s = np.asarray(score, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    if s.size == 0:
        return 1.0, 0.0
    if groups is not None:
        _, inv = np.unique(np.asarray(groups), return_inverse=True)
        counts = np.bincount(inv).astype(np.float64)
        s_c = s - (np.bincount(inv, s) / counts)[inv]
        t_c = t - (np.bincount(inv, t) / counts)[inv]
    else:
        s_c, t_c = s - s.mean(), t - t.mean()
    if float(s.var()) <= 1e-18:
        return 0.0, float(t.mean())
    sv = float((s_c * s_c).mean())  # 0 when the score is constant within every group: no slope to fit
    a = float((s_c * t_c).mean() / sv) if sv > 1e-18 else 0.0
    if not a > 0.0:
        a = 1e-3 * (float(t.std()) or 1.0) / float(np.sqrt(s.var()))
    return a, float(t.mean() - a * s.mean())


def train_ensemble(*args, **kwargs) -> dict[str, list[float]]:
    """Fit an :class:`MLPEnsemble` on frozen embeddings (see :func:`_train_ensemble`), single-threaded."""
    with small_ops_threads(1):
        return _train_ensemble(*args, **kwargs)


def train_pairwise(*args, **kwargs) -> dict[str, list[float]]:
    """Fit a :class:`PairwiseScorer` (see :func:`_train_pairwise`), single-threaded."""
    with small_ops_threads(1):
        return _train_pairwise(*args, **kwargs)
