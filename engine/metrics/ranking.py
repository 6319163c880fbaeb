"""Regression and ranking metrics for accuracy predictors (numpy / scipy / sklearn only).

Conventions
-----------
* ``y_true`` holds accuracies in **percent** (the project's label unit), ``y_pred`` the
  predictions in the same unit when ``scale_known`` (else any score where larger = better).
* Inputs are 1-D array-likes of equal length (``(n, 1)`` columns and CPU tensors are
  accepted).  Empty inputs, mismatched lengths and NaN / inf values raise :class:`ValueError`
  naming the offending argument and positions.
* A metric that is mathematically undefined for valid input (fewer than two items, a constant
  truth vector, a constant prediction for a correlation) returns ``nan`` instead of raising, so
  a dashboard that shows many metrics never fails because one of them is undefined.  Each
  function's docstring lists its ``nan`` cases.

Metrics that follow the authors' code (``gennape-reference.md`` §3):

* :func:`pairwise_kt`: the "KT" of ``demo_functions.pairwise_kt`` (not scipy's Kendall tau);
* :func:`ndcg_at_k`: sklearn ``ndcg_score`` with relevance = min-max scaled truth x 20;
* :func:`top_k_overlap`: ``|top-k by prediction ∩ top-k by truth| / k`` (``eval_utils``).
"""

from __future__ import annotations

import math
import warnings
from numbers import Real
from typing import Any

import numpy as np
from scipy.stats import rankdata

__all__ = [
    "mae", "srcc", "kendall_tau", "pairwise_kt", "ndcg_at_k", "top_k_overlap", "precision_at_k",
    "regret_at_1", "all_metrics", "METRIC_KEYS",
]

#: Default multiplier that turns the project's percent labels into the authors' fractions.
PERCENT_TO_FRACTION = 0.01

#: Keys of :func:`all_metrics` for the default ``k=10``.
METRIC_KEYS = ("mae", "srcc", "kendall_tau", "pairwise_kt", "ndcg@10", "precision@10", "regret@1")

_PAIR_BLOCK_ELEMS = 4_000_000  # pairwise_kt memory bound: ~4M booleans per block


# ---------------------------------------------------------------------------------------------
# input checking
# ---------------------------------------------------------------------------------------------

def _as_vector(x: Any, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # torch tensor without importing torch
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a 1-D sequence of numbers ({exc})") from None
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (or a single column), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty; need at least one value")
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        shown = ", ".join(f"{name}[{i}]={arr[i]}" for i in bad[:5])
        more = f" and {bad.size - 5} more" if bad.size > 5 else ""
        raise ValueError(f"{name} has {bad.size} non-finite value(s): {shown}{more}")
    return arr


def _check_pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    t = _as_vector(y_true, "y_true")
    p = _as_vector(y_pred, "y_pred")
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} values but y_pred has {p.size}; they must pair up one to one")
    return t, p


def _check_k(k: Any, n: int, allow_none: bool = False) -> int:
    if k is None and allow_none:
        return n
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        hint = " (use None for the full list)" if allow_none else ""
        raise ValueError(f"k must be a positive integer{hint}, got {k!r}")
    return min(int(k), n)


def _is_constant(x: np.ndarray) -> bool:
    return bool(np.all(x == x[0]))


# ---------------------------------------------------------------------------------------------
# regression
# ---------------------------------------------------------------------------------------------

def mae(y_true: Any, y_pred: Any) -> float:
    """Mean absolute error, in the unit of the inputs (accuracy points for percent labels)."""
    t, p = _check_pair(y_true, y_pred)
    return float(np.mean(np.abs(t - p)))


# ---------------------------------------------------------------------------------------------
# correlations
# ---------------------------------------------------------------------------------------------

def srcc(y_true: Any, y_pred: Any) -> float:
    """Spearman rank correlation (``scipy.stats.spearmanr``).

    ``nan`` when n < 2 or either vector is constant (the correlation is undefined).
    """
    from scipy.stats import spearmanr

    t, p = _check_pair(y_true, y_pred)
    if t.size < 2 or _is_constant(t) or _is_constant(p):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(spearmanr(t, p).statistic)


def kendall_tau(y_true: Any, y_pred: Any) -> float:
    """Kendall's tau-b (``scipy.stats.kendalltau``, ties adjusted).

    ``nan`` when n < 2 or either vector is constant.
    """
    from scipy.stats import kendalltau

    t, p = _check_pair(y_true, y_pred)
    if t.size < 2 or _is_constant(t) or _is_constant(p):
        return math.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(kendalltau(t, p, variant="b").statistic)


def pairwise_kt(y_true: Any, y_pred: Any, filter: float = 1e-4, scale: float = PERCENT_TO_FRACTION, *,
                rank_predictions: bool = False) -> float:
    """The authors' pairwise "KT" (``demo_functions.pairwise_kt``), reproduced step by step.

    1. Multiply both vectors by ``scale`` (to the authors' fraction scale), then by 1e6, and
       round to integers; the threshold becomes ``round(filter * 1e6)``.
    2. Sort items by truth, descending (stable: equal truths keep their input order).
    3. Each pair ``i < j`` in that order scores +1 if ``pred_i >= pred_j`` (prediction ties
       count as concordant), else -1.
    4. If ``filter`` is non-zero, keep only pairs with ``t_i - t_j >= threshold``.
    5. Return the mean score rounded to 4 decimals.

    ``scale``: the authors' truths are fractions in [0, 1]; ours are percent, so the default
    ``scale=0.01`` makes the default ``filter=1e-4`` mean 1e-4 on the fraction scale, i.e.
    **0.01 accuracy points**.  Pass ``scale=1.0`` for fraction labels.  Predictions are scaled
    and rounded like the truths (as the authors do), so predictions closer than ``1e-6 / scale``
    tie.

    ``rank_predictions=True`` (for scores, which are not accuracies): step 1 replaces the
    predictions by their ranks instead of rounding them, so the result depends only on their
    order (the rounding would tie scores of a small range), and a constant prediction, which has
    no order, gives ``nan``.

    Returns ``nan`` when n < 2 or no pair passes the filter (e.g. constant truths).  Note the
    authors' tie rule gives a constant prediction a score of 1.0.  With ``filter=0`` truth ties
    are scored in input order (as in the authors' code), so only ``filter > 0`` is invariant to
    permuting the items.  Cost: O(n^2) time, memory bounded by blocks (~0.5 s for n = 10k).
    """
    t, p = _check_pair(y_true, y_pred)
    if not (isinstance(filter, Real) and math.isfinite(filter) and filter >= 0):
        raise ValueError(f"filter must be a finite number >= 0, got {filter!r}")
    if not (isinstance(scale, Real) and math.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be a finite number > 0, got {scale!r}")
    n = t.size
    if n < 2:
        return math.nan
    if scale == PERCENT_TO_FRACTION and float(np.max(t)) <= 1.0 and float(np.ptp(t)) > 0:
        warnings.warn("pairwise_kt: every label lies in 0..1 but scale=0.01 reads them as percent, so the 1e-4 "
                      "filter becomes 1 accuracy point; pass scale=1.0 for fraction labels", UserWarning, stacklevel=2)
    if rank_predictions and np.all(p == p[0]):
        return math.nan
    ti = np.rint(t * scale * 1e6)
    pi = rankdata(p, method="average") if rank_predictions else np.rint(p * scale * 1e6)
    thr = float(round(filter * 1e6))
    order = np.argsort(-ti, kind="stable")
    ts, ps = ti[order], pi[order]
    block = max(1, _PAIR_BLOCK_ELEMS // n)
    kept = 0
    concordant = 0
    for s in range(0, n - 1, block):
        e = min(s + block, n - 1)
        rows = np.arange(s, e)[:, None]
        cols = np.arange(s + 1, n)[None, :]
        mask = cols > rows
        if thr > 0:
            mask &= (ts[s:e, None] - ts[None, s + 1:]) >= thr
        kept += int(mask.sum())
        concordant += int((mask & (ps[s:e, None] >= ps[None, s + 1:])).sum())
    if kept == 0:
        return math.nan
    return round((2 * concordant - kept) / kept, 4)


# ---------------------------------------------------------------------------------------------
# top of the ranking
# ---------------------------------------------------------------------------------------------

def ndcg_at_k(y_true: Any, y_pred: Any, k: int | None = 10) -> float:
    """NDCG@k exactly as the authors compute it (AceNAS relevance + sklearn ``ndcg_score``).

    Relevance ``rel = clip((y - min y) / (max y - min y), 0, 1) * 20`` over the evaluated set;
    linear gain; items ranked by prediction with tied predictions averaged
    (``ignore_ties=False``); normalised by the ideal DCG@k.  ``k=None`` uses the full list
    and ``k > n`` is clamped to ``n``.

    ``nan`` when n < 2 or the truth is constant (every ranking is ideal; NDCG is undefined).
    """
    from sklearn.metrics import ndcg_score

    t, p = _check_pair(y_true, y_pred)
    k = _check_k(k, t.size, allow_none=True)
    if t.size < 2 or _is_constant(t):
        return math.nan
    rel = np.clip((t - t.min()) / (t.max() - t.min()), 0.0, 1.0) * 20.0
    return float(ndcg_score(rel[None, :], p[None, :], k=k, ignore_ties=False))


def _topk_inclusion(x: np.ndarray, k: int) -> np.ndarray:
    """Probability that each item is among the top k when ties are broken uniformly at random."""
    kth = np.sort(x)[::-1][k - 1]
    above = x > kth
    tied = x == kth
    prob = above.astype(np.float64)
    prob[tied] = (k - above.sum()) / tied.sum()
    return prob


def top_k_overlap(y_true: Any, y_pred: Any, k: int = 10) -> float:
    """``|top-k by prediction ∩ top-k by truth| / k`` (``eval_utils`` "top-k overlap").

    Ties are handled so the value never depends on input order: prediction ties at the k-th
    place are resolved by expectation over uniformly random tie-breaking, and an item whose
    truth equals the k-th best true value counts as a true top-k item (so a perfect predictor
    scores 1 even with tied truths).  Without ties this is the plain set overlap.  ``k > n`` is
    clamped to ``n`` (giving 1.0).  Range [0, 1]; defined for every valid input.
    """
    t, p = _check_pair(y_true, y_pred)
    k = _check_k(k, t.size)
    true_top = t >= np.sort(t)[::-1][k - 1]
    return float(np.dot(_topk_inclusion(p, k), true_top) / k)


#: Alias: the project calls the top-k overlap "precision@k".
precision_at_k = top_k_overlap


def regret_at_1(y_true: Any, y_pred: Any) -> float:
    """True best accuracy minus the true accuracy of the predicted best (>= 0, unit of y_true).

    When several items tie for the best prediction, their true accuracies are averaged (the
    expected regret of picking one of them at random).
    """
    t, p = _check_pair(y_true, y_pred)
    picked = p == p.max()
    return float(t.max() - t[picked].mean())


# ---------------------------------------------------------------------------------------------
# everything at once
# ---------------------------------------------------------------------------------------------

def all_metrics(y_true: Any, y_pred: Any, k: int = 10, *, scale_known: bool = True,
                scale: float = PERCENT_TO_FRACTION, kt_filter: float = 1e-4) -> dict[str, float]:
    """All metrics in one dict: ``mae, srcc, kendall_tau, pairwise_kt, ndcg@k, precision@k, regret@1``.

    ``scale_known=False`` means the predictions are scores, not accuracies (e.g. a transformed
    target or a zero-cost proxy): MAE is then ``nan``; the ranking metrics and regret (which uses
    true accuracies only) are still reported.  ``scale`` / ``kt_filter`` go to
    :func:`pairwise_kt`.  Invalid input raises one :class:`ValueError`; undefined metrics are
    ``nan`` (see each function).

    With ``scale_known=False``, :func:`pairwise_kt` compares the predictions' **ranks**: its
    rounding to ``1e-6 / scale`` is meant for accuracies, and would tie scores of a small range
    (a rescaled score would otherwise change the metric); and it is ``nan`` for a constant score,
    which has no order (the authors' tie rule would give it 1.0).
    """
    t, p = _check_pair(y_true, y_pred)
    _check_k(k, t.size)
    return {
        "mae": mae(t, p) if scale_known else math.nan,
        "srcc": srcc(t, p),
        "kendall_tau": kendall_tau(t, p),
        "pairwise_kt": pairwise_kt(t, p, filter=kt_filter, scale=scale, rank_predictions=not scale_known),
        f"ndcg@{k}": ndcg_at_k(t, p, k=k),
        f"precision@{k}": top_k_overlap(t, p, k=k),
        "regret@1": regret_at_1(t, p),
    }
