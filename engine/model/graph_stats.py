"""``graph_stats``: a within-family pairwise ranker on four whole-graph statistics.

Not in the paper.  Leave-one-family-out on NB-101 / NB-201 / NB-301 showed that FLOPs and
params rank an unseen family better than every embedding-based member, and that a *linear*
ranker on a few whole-graph statistics ranks it better still, on each of the three families
(README, "Zero-shot ranking").  The statistics, per CG:

=================== ======================================================================
log10_flops         log10 of the CG's FLOPs
log10_params        log10 of its parameter count
log_nodes           ln of its number of CG nodes
log_weighted_ops    ln(1 + number of conv / depthwise / group-conv / linear / matmul nodes)
=================== ======================================================================

The score is ``sum_k coef_k * x_k / s_k``, where ``s_k`` is the standard deviation of
statistic ``k`` over the population being ranked (the predicted set, or a fixed reference
population).  Standardising within the population is what makes the weights transfer: a
224 px ImageNet network has 100x the FLOPs of a CIFAR cell, but within a family only the
*spread* of each statistic matters.  It also makes the score set-relative, like the
ensemble's rank standardisation (:mod:`engine.model.ensemble`); pass a fixed reference for
scores comparable across calls.  When a statistic has (almost) no spread in the population, or
the population has fewer than three CGs, the training families' spread is used instead.

Training (:meth:`GraphStatsRanker.fit`): the statistics of each family (``groups``) are
standardised with that family's own spread, random pairs of CGs of the same family whose
accuracies differ by more than ``min_gap`` are drawn, and an L2-regularised logistic
regression without intercept learns ``P(i more accurate than j) = sigmoid(coef . (x_i - x_j))``.
Pairs never mix families: accuracies of different benchmarks are not comparable.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.graphs.ops import OP_INDEX

STAT_NAMES = ("log10_flops", "log10_params", "log_nodes", "log_weighted_ops")
WEIGHTED_OPS = ("conv", "depthwise", "group_conv", "linear", "matmul")
_WEIGHTED_IDX = np.array([OP_INDEX[o] for o in WEIGHTED_OPS], dtype=np.int64)
_MIN_SPREAD = 1e-6


def graph_stats(packed) -> np.ndarray:
    """``(B, 4)`` float64 statistics (:data:`STAT_NAMES`) of a ``PackedGraphs``."""
    n = len(packed)
    sizes = packed.sizes.numpy().astype(np.int64)
    op = packed.op.numpy()
    graph_of = np.repeat(np.arange(n), sizes)
    weighted = np.bincount(graph_of[np.isin(op, _WEIGHTED_IDX)], minlength=n)
    flops = np.maximum(packed.flops.numpy().astype(np.float64), 1.0)
    params = np.maximum(packed.params.numpy().astype(np.float64), 1.0)
    return np.column_stack([np.log10(flops), np.log10(params), np.log(np.maximum(sizes, 1)),
                            np.log1p(weighted)])


def _spread(x: np.ndarray) -> np.ndarray:
    return x.std(0) if x.shape[0] else np.zeros(x.shape[1])


class GraphStatsRanker:
    """Pairwise logistic ranker on :func:`graph_stats` (scikit-learn style; see module doc).

    Parameters: ``C`` inverse L2 strength, ``pairs_per_group`` pairs drawn per family,
    ``min_gap`` smallest accuracy difference (percentage points) of a training pair,
    ``random_state`` seed of the pair sampling.  Fitted attributes: ``coef_`` (4,),
    ``scale_`` (4,) mean within-family spread of the training data, ``n_pairs_``.
    """

    def __init__(self, C: float = 1.0, pairs_per_group: int = 20_000, min_gap: float = 0.05,
                 random_state: int = 0) -> None:
        self.C = C
        self.pairs_per_group = pairs_per_group
        self.min_gap = min_gap
        self.random_state = random_state
        self.coef_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.n_pairs_ = 0

    def __repr__(self) -> str:
        return (f"GraphStatsRanker(C={self.C}, pairs_per_group={self.pairs_per_group}, "
                f"min_gap={self.min_gap}, fitted={self.coef_ is not None})")

    def fit(self, X: Any, y: Any, groups: Any = None) -> GraphStatsRanker:
        """``X`` (N, 4) statistics, ``y`` (N,) accuracies (%), ``groups`` (N,) family labels
        (None: one family).  Needs at least one family with two distinct accuracies."""
        from sklearn.linear_model import LogisticRegression

        X = np.asarray(X, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64).reshape(-1)
        if X.ndim != 2 or X.shape[1] != len(STAT_NAMES):
            raise ValueError(f"GraphStatsRanker.fit: X has shape {X.shape}, expected (N, {len(STAT_NAMES)})")
        if y.shape[0] != X.shape[0]:
            raise ValueError(f"GraphStatsRanker.fit: {y.shape[0]} labels for {X.shape[0]} rows")
        g = np.zeros(y.shape[0], dtype=np.int64) if groups is None else np.unique(
            np.asarray(groups).astype(str), return_inverse=True)[1].reshape(-1)
        if g.shape[0] != y.shape[0]:
            raise ValueError(f"GraphStatsRanker.fit: {g.shape[0]} group labels for {y.shape[0]} rows")
        ok = np.isfinite(y) & np.isfinite(X).all(1)
        rng = np.random.default_rng(self.random_state)
        diffs, wins, spreads = [], [], []
        for c in np.unique(g[ok]):
            rows = np.flatnonzero(ok & (g == c))
            if rows.size < 2:
                continue
            spread = _spread(X[rows])
            spreads.append(spread)
            xs = X[rows] / np.where(spread > _MIN_SPREAD, spread, 1.0)
            i = rng.integers(0, rows.size, self.pairs_per_group)
            j = rng.integers(0, rows.size, self.pairs_per_group)
            keep = np.abs(y[rows][i] - y[rows][j]) > self.min_gap
            diffs.append(xs[i[keep]] - xs[j[keep]])
            wins.append((y[rows][i[keep]] > y[rows][j[keep]]).astype(np.int64))
        d = np.concatenate(diffs) if diffs else np.zeros((0, len(STAT_NAMES)))
        w = np.concatenate(wins) if wins else np.zeros(0, dtype=np.int64)
        if d.shape[0] < 2 or np.unique(w).size < 2:
            raise ValueError("GraphStatsRanker.fit: no usable training pairs (need a family with at least two "
                             f"labelled CGs whose accuracies differ by more than {self.min_gap} points)")
        clf = LogisticRegression(C=self.C, fit_intercept=False, max_iter=2000).fit(d, w)
        self.coef_ = clf.coef_[0].astype(np.float64)
        self.scale_ = np.mean(spreads, axis=0)
        self.n_pairs_ = int(d.shape[0])
        return self

    def _check_fitted(self) -> None:
        if self.coef_ is None:
            raise ValueError("GraphStatsRanker is not fitted: call fit(X, y, groups) or from_state(...)")

    def population_scale(self, X: Any) -> np.ndarray:
        """Per-statistic spread of a population (training spread where it has none)."""
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        s = _spread(X) if X.shape[0] >= 3 else np.zeros(len(STAT_NAMES))
        return np.where(s > _MIN_SPREAD, s, self.scale_)

    def decision_function(self, X: Any, scale: np.ndarray | None = None) -> np.ndarray:
        """Score per row (higher = predicted more accurate); ``scale``: a reference
        population's :meth:`population_scale` (default: that of ``X`` itself)."""
        self._check_fitted()
        X = np.asarray(X, dtype=np.float64)
        s = self.population_scale(X) if scale is None else np.asarray(scale, dtype=np.float64)
        return (X / s) @ self.coef_

    # --- serialisation ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        self._check_fitted()
        return {"stats": list(STAT_NAMES), "coef": self.coef_.tolist(), "scale": self.scale_.tolist(),
                "C": self.C, "pairs_per_group": self.pairs_per_group, "min_gap": self.min_gap,
                "random_state": self.random_state, "n_pairs": self.n_pairs_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GraphStatsRanker:
        if not isinstance(state, dict) or list(state.get("stats", [])) != list(STAT_NAMES):
            raise ValueError(f"graph_stats state: expected statistics {list(STAT_NAMES)}, "
                             f"got {state.get('stats') if isinstance(state, dict) else state!r}")
        obj = cls(C=float(state.get("C", 1.0)), pairs_per_group=int(state.get("pairs_per_group", 20_000)),
                  min_gap=float(state.get("min_gap", 0.05)), random_state=int(state.get("random_state", 0)))
        coef = np.asarray(state["coef"], dtype=np.float64)
        scale = np.asarray(state["scale"], dtype=np.float64)
        if coef.shape != (len(STAT_NAMES),) or scale.shape != (len(STAT_NAMES),) or not (
                np.isfinite(coef).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("graph_stats state: coef and scale must be 4 finite numbers (scale > 0)")
        obj.coef_, obj.scale_, obj.n_pairs_ = coef, scale, int(state.get("n_pairs", 0))
        return obj
