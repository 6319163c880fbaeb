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

**Identified directions only** (``min_variance``, off by default).  In every labelled family FLOPs
and params are rank-collinear (Spearman 0.988-1.000), so the training data cannot tell the
regression how to weigh them *against each other*: left free, it put a large weight on the
``log FLOPs - log params`` contrast, a direction with 0.08% of the training variance.  In
ImageNet-style spaces the two decorrelate (Spearman 0.13-0.28 on the OFA families), and that
unsupported weight then decides the ranking.  So the fit is restricted to the principal directions
of the pooled within-family (centred, standardised) statistics that carry at least
``min_variance`` of their total variance; the coefficient along every other direction is zero.
``min_variance=0`` gives the unrestricted fit.  Not adopted: it also dropped a direction one
held-out family's ranking rests on.

**Merged collinear statistics** (``merge_collinear``, a Spearman threshold).  A narrower form of
the same idea: statistics whose within-family Spearman correlation reaches the threshold in
*every* training family are merged into one feature (the sum of their standardised values), so
only their common direction gets a coefficient; every other statistic keeps its own.  On the
shipped checkpoint's training data (and in every leave-one-family-out fold), 0.98 merges log
FLOPs with log params and nothing else; the shipped checkpoint uses it.
``min_variance`` and ``merge_collinear`` exclude each other (README, "graph_stats and collinear
statistics", for what each did in leave-one-family-out).
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


def _rank_correlation(x: np.ndarray) -> np.ndarray:
    """Spearman correlation matrix of the columns; 0 where a column has no spread (or < 3 rows)."""
    from scipy.stats import rankdata

    if x.shape[0] < 3:
        return np.zeros((x.shape[1], x.shape[1]))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.nan_to_num(np.corrcoef(rankdata(x, axis=0), rowvar=False))


def merged_directions(rho: np.ndarray, threshold: float) -> tuple[np.ndarray, list[list[int]]]:
    """Merge statistics whose correlation ``rho`` (the smallest over the training families) is at
    least ``threshold``, transitively: ``(directions (k, groups), groups of column indices)``;
    a group's direction is the normalised sum of its statistics."""
    k = rho.shape[0]
    group = list(range(k))
    for i in range(k):
        for j in range(i + 1, k):
            if rho[i, j] >= threshold:
                old, new = group[j], group[i]
                group = [new if g == old else g for g in group]
    groups = [[i for i in range(k) if group[i] == g] for g in dict.fromkeys(group)]
    directions = np.zeros((k, len(groups)))
    for c, grp in enumerate(groups):
        directions[grp, c] = 1.0 / np.sqrt(len(grp))
    return directions, groups


def identified_directions(centred: np.ndarray, min_variance: float) -> tuple[np.ndarray, np.ndarray]:
    """Principal directions of ``centred`` rows that carry at least ``min_variance`` of the total
    variance: ``(directions (k, d), explained share per direction (k,), descending)``.
    ``min_variance <= 0`` keeps the identity basis (no restriction)."""
    k = centred.shape[1]
    cov = centred.T @ centred / max(centred.shape[0] - 1, 1)
    vals, vecs = np.linalg.eigh(cov)
    order = np.argsort(vals)[::-1]
    vals, vecs = np.clip(vals[order], 0.0, None), vecs[:, order]
    share = vals / vals.sum() if vals.sum() > 0 else np.full(k, 1.0 / k)
    if min_variance <= 0:
        return np.eye(k), share
    keep = share >= min_variance
    keep[0] = True  # the leading direction always
    return vecs[:, keep], share


class GraphStatsRanker:
    """Pairwise logistic ranker on :func:`graph_stats` (scikit-learn style; see module doc).

    Parameters: ``C`` inverse L2 strength, ``pairs_per_group`` pairs drawn per family,
    ``min_gap`` smallest accuracy difference (percentage points) of a training pair,
    ``min_variance`` smallest share of the training variance a direction needs to get a
    coefficient, ``merge_collinear`` within-family Spearman from which statistics are merged
    (module doc; 0 = off for both), ``random_state`` seed of the pair sampling.
    Fitted attributes: ``coef_`` (4,), ``scale_`` (4,) mean within-family spread of the training
    data, ``n_pairs_``, ``directions_`` (4, d) the directions that get a coefficient,
    ``explained_`` (4,) share of the pooled within-family variance along each principal direction
    (descending), ``merged_`` groups of merged statistic names (``merge_collinear`` only).
    """

    def __init__(self, C: float = 1.0, pairs_per_group: int = 20_000, min_gap: float = 0.05,
                 min_variance: float = 0.0, merge_collinear: float = 0.0, random_state: int = 0) -> None:
        self.C = C
        self.pairs_per_group = pairs_per_group
        self.min_gap = min_gap
        self.min_variance = min_variance
        self.merge_collinear = merge_collinear
        self.random_state = random_state
        self.coef_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None
        self.directions_: np.ndarray | None = None
        self.explained_: np.ndarray | None = None
        self.merged_: list[list[str]] = []
        self.n_pairs_ = 0

    def __repr__(self) -> str:
        return (f"GraphStatsRanker(C={self.C}, pairs_per_group={self.pairs_per_group}, "
                f"min_gap={self.min_gap}, min_variance={self.min_variance}, merge_collinear={self.merge_collinear}, "
                f"fitted={self.coef_ is not None})")

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
        if not 0.0 <= self.min_variance < 1.0:
            raise ValueError(f"GraphStatsRanker: min_variance must be in [0, 1), got {self.min_variance}")
        if not 0.0 <= self.merge_collinear <= 1.0:
            raise ValueError(f"GraphStatsRanker: merge_collinear must be in [0, 1], got {self.merge_collinear}")
        if self.min_variance > 0 and self.merge_collinear > 0:
            raise ValueError("GraphStatsRanker: set min_variance or merge_collinear, not both")
        ok = np.isfinite(y) & np.isfinite(X).all(1)
        rng = np.random.default_rng(self.random_state)
        diffs, wins, spreads, centred, rho = [], [], [], [], []
        for c in np.unique(g[ok]):
            rows = np.flatnonzero(ok & (g == c))
            if rows.size < 2:
                continue
            spread = _spread(X[rows])
            spreads.append(spread)
            xs = X[rows] / np.where(spread > _MIN_SPREAD, spread, 1.0)
            centred.append(xs - xs.mean(0))
            if self.merge_collinear > 0:
                rho.append(_rank_correlation(X[rows]))
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
        self.directions_, self.explained_ = identified_directions(np.concatenate(centred), self.min_variance)
        self.merged_ = []
        if self.merge_collinear > 0:
            self.directions_, groups = merged_directions(np.min(rho, axis=0), self.merge_collinear)
            self.merged_ = [[STAT_NAMES[i] for i in grp] for grp in groups if len(grp) > 1]
        clf = LogisticRegression(C=self.C, fit_intercept=False, max_iter=2000).fit(d @ self.directions_, w)
        self.coef_ = (self.directions_ @ clf.coef_[0]).astype(np.float64)
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
        state = {"stats": list(STAT_NAMES), "coef": self.coef_.tolist(), "scale": self.scale_.tolist(),
                 "C": self.C, "pairs_per_group": self.pairs_per_group, "min_gap": self.min_gap,
                 "min_variance": self.min_variance, "merge_collinear": self.merge_collinear,
                 "random_state": self.random_state, "n_pairs": self.n_pairs_}
        if self.explained_ is not None:
            state["explained_variance"] = self.explained_.tolist()
            state["kept_directions"] = int(self.directions_.shape[1])
            state["merged"] = self.merged_
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> GraphStatsRanker:
        if not isinstance(state, dict) or list(state.get("stats", [])) != list(STAT_NAMES):
            raise ValueError(f"graph_stats state: expected statistics {list(STAT_NAMES)}, "
                             f"got {state.get('stats') if isinstance(state, dict) else state!r}")
        obj = cls(C=float(state.get("C", 1.0)), pairs_per_group=int(state.get("pairs_per_group", 20_000)),
                  min_gap=float(state.get("min_gap", 0.05)),
                  # checkpoints written before the restriction existed were fitted without it
                  min_variance=float(state.get("min_variance", 0.0)),
                  merge_collinear=float(state.get("merge_collinear", 0.0)),
                  random_state=int(state.get("random_state", 0)))
        coef = np.asarray(state["coef"], dtype=np.float64)
        scale = np.asarray(state["scale"], dtype=np.float64)
        if coef.shape != (len(STAT_NAMES),) or scale.shape != (len(STAT_NAMES),) or not (
                np.isfinite(coef).all() and np.isfinite(scale).all() and (scale > 0).all()):
            raise ValueError("graph_stats state: coef and scale must be 4 finite numbers (scale > 0)")
        obj.coef_, obj.scale_, obj.n_pairs_ = coef, scale, int(state.get("n_pairs", 0))
        obj.merged_ = [list(grp) for grp in state.get("merged", [])]
        return obj
