"""Combining the GENNAPE members into one ``score`` (paper "Unseen Architecture Ranking").

Members predict on different scales (accuracy in %, a pairwise logit, log FLOPs), so each
member's values are first put on one scale by a :class:`Standardizer` fitted on a reference
population -- by default the very set being predicted:

* ``"rank"`` (default): the z-score of the (average, tie-aware) ranks, i.e. a member only
  contributes the *order* it assigns -- robust to a member producing outliers on an unseen
  family.  A value outside the reference range continues linearly beyond the extreme rank with
  slope 1 / std(values), so the map stays strictly monotone (important when predicting new CGs
  against a fixed reference, e.g. during search);
* ``"zscore"``: ``(v - mean) / std`` of the values.

The ensemble value is ``sum_m w_m z_m`` with weights summing to 1: equal weights zero-shot,
``softmax(KT_m / T)`` over each member's Kendall tau on the fine-tuning samples after
fine-tuning (:func:`kt_softmax_weights`).  Zero-shot, a second set of weights may apply to the
architectures *inside* the training domain (``ensemble.in_domain_members``; novelty <= 1, see
:mod:`engine.model.domain`): there the learned members have been validated, outside they
extrapolate.  Both sums use the same standardisers, so the two kinds of row share one scale.

Ties of the ensemble value (exact, or within float32 rounding: ``TIE_ULPS`` / ``TIE_STD``)
are broken by the anchor: ``score`` gets ``TIE_EPS`` times the anchor's z-score added after the
quantile map below, so tied architectures keep the anchor's order.

``score`` reports the ensemble in accuracy units by *quantile mapping* onto an anchor member's
accuracy predictions (CL+FCM+T by default): the i-th best ensemble value in the reference gets
the i-th best anchor prediction (:class:`QuantileMap`), bent into (0, 100) near the bounds
(:func:`bounded_accuracy`).  The order of ``score`` is the ensemble's order; its values have the
anchor's distribution.  With a single CG the ensemble is degenerate and ``score`` equals the
anchor's prediction (bounded as above).

Note: with the default reference (the predicted set itself) ``score`` is *set-relative* -- a
CG's score depends on the other CGs predicted with it.  Pass a fixed reference
(``GennapePredictor.reference(cgs)``) for scores comparable across calls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STANDARDIZE_MODES = ("rank", "zscore")


def _finite(values: np.ndarray) -> np.ndarray:
    v = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        fill = np.nanmedian(v[np.isfinite(v)]) if np.any(np.isfinite(v)) else 0.0
        v = np.where(np.isfinite(v), v, fill)
    return v


#: Near-ties, merged into one knot of the monotone maps below.  The learned members compute in
#: float32, so equivalent architectures (NB-201's isomorphic cells) get values a few float32 units
#: in the last place apart (up to 8e-6 accuracy points); as separate knots they got distinct ranks
#: and anchor quantiles, the maps were nearly vertical there, and a score moved by up to 0.005
#: points with the batch it was predicted in.  A member's reference values closer than
#: ``TIE_ULPS`` float32 ulps (at their largest magnitude) are one knot of its standardiser; real
#: differences stay apart (VGG-16 and VGG-16-BN differ in log10 params by 1.8e-5, the tolerance
#: there is 3.9e-6).  Ensemble values closer than ``TIE_STD`` of their standard deviation are one
#: knot of the quantile map (a rank changes the ensemble by ~1e-3 std in a population of 1,000).
TIE_ULPS = 4
TIE_STD = 1e-4


def _knots(sorted_values: np.ndarray, tol: float | None = None) -> np.ndarray:
    """Knot index of every sorted value: a new knot starts after each gap larger than ``tol``
    (default: :data:`TIE_ULPS` float32 ulps at the largest magnitude)."""
    if sorted_values.size == 0:
        return np.zeros(0, dtype=np.int64)
    if tol is None:
        tol = TIE_ULPS * float(np.finfo(np.float32).eps) * float(np.abs(sorted_values).max())
    return np.r_[0, np.cumsum(np.diff(sorted_values) > tol)].astype(np.int64)


@dataclass
class Standardizer:
    """Monotone map of one member's values to a standard scale (see module docstring)."""

    mode: str
    xs: np.ndarray      # sorted reference values (near-ties merged, see TIE_ULPS)
    zs: np.ndarray      # their standardised values
    scale: float        # 1 / std of reference values (0 if degenerate)
    mean: float

    @classmethod
    def fit(cls, values: np.ndarray, mode: str = "rank") -> Standardizer:
        if mode not in STANDARDIZE_MODES:
            raise ValueError(f"ensemble.standardize must be one of {STANDARDIZE_MODES}, got {mode!r}")
        v = _finite(values)
        std = float(v.std()) if v.size else 0.0
        mean = float(v.mean()) if v.size else 0.0
        scale = 1.0 / std if std > 1e-12 else 0.0
        if mode == "zscore" or v.size == 0:
            xs = np.unique(v)
            zs = (xs - mean) * scale
            return cls(mode, xs, zs, scale, mean)
        vs = np.sort(v)
        knot = _knots(vs)
        counts = np.bincount(knot)
        rank = np.bincount(knot, weights=np.arange(1.0, v.size + 1.0)) / counts  # average rank of tied values
        ranks = rank[knot]
        rstd = float(ranks.std())
        zs = (rank - ranks.mean()) / rstd if rstd > 1e-12 else np.zeros_like(rank)
        xs = np.bincount(knot, weights=vs) / counts
        if xs.size == 1:  # every value a tie: no spread to scale by (a std of float noise would blow it up)
            scale = 0.0
        return cls(mode, xs, zs, scale, mean)

    def transform(self, values: np.ndarray) -> np.ndarray:
        v = _finite(values)
        if self.xs.size == 0:
            return np.zeros_like(v)
        if self.mode == "zscore" or self.xs.size == 1:
            if self.xs.size == 1 and self.mode == "rank":
                return (v - self.xs[0]) * self.scale
            return (v - self.mean) * self.scale
        out = np.interp(v, self.xs, self.zs)
        lo, hi = v < self.xs[0], v > self.xs[-1]
        out[lo] = self.zs[0] + (v[lo] - self.xs[0]) * self.scale
        out[hi] = self.zs[-1] + (v[hi] - self.xs[-1]) * self.scale
        return out


@dataclass
class QuantileMap:
    """Monotone map from ensemble values to an anchor's accuracy distribution."""

    xs: np.ndarray   # sorted ensemble values of the reference (near-ties merged, see TIE_STD)
    ys: np.ndarray   # matching anchor accuracies (sorted anchor predictions, averaged over ties)
    slope: float     # linear continuation beyond the ends: std(anchor) / std(ensemble)

    @classmethod
    def fit(cls, ensemble: np.ndarray, anchor: np.ndarray) -> QuantileMap:
        e, a = _finite(ensemble), _finite(anchor)
        if e.size != a.size:
            raise ValueError("QuantileMap.fit: ensemble and anchor must have the same length")
        a_sorted = np.sort(a)
        e_sorted = np.sort(e, kind="stable")
        es, as_ = float(e.std()) if e.size else 0.0, float(a.std()) if a.size else 0.0
        # knots: runs of (near-)equal ensemble values, each at its mean and its anchors' mean
        knot = _knots(e_sorted, TIE_STD * es)
        counts = np.bincount(knot)
        xs = np.bincount(knot, weights=e_sorted) / counts
        ys = np.bincount(knot, weights=a_sorted) / counts
        slope = as_ / es if es > 1e-12 else 0.0
        return cls(xs, ys, slope)

    def __call__(self, ensemble: np.ndarray) -> np.ndarray:
        e = _finite(ensemble)
        if self.xs.size == 0:
            return e
        out = np.interp(e, self.xs, self.ys)
        lo, hi = e < self.xs[0], e > self.xs[-1]
        out[lo] = self.ys[0] + (e[lo] - self.xs[0]) * self.slope
        out[hi] = self.ys[-1] + (e[hi] - self.xs[-1]) * self.slope
        return out


def equal_weights(members: tuple[str, ...] | list[str]) -> dict[str, float]:
    if not members:
        raise ValueError("ensemble needs at least one member")
    return {m: 1.0 / len(members) for m in members}


def kt_softmax_weights(kts: dict[str, float], temperature: float = 1.0) -> dict[str, float]:
    """``softmax(KT_m / temperature)`` over members (NaN KT counts as 0)."""
    if temperature <= 0:
        raise ValueError(f"ft_temperature must be > 0, got {temperature}")
    names = list(kts)
    k = np.array([0.0 if not np.isfinite(kts[m]) else kts[m] for m in names]) / temperature
    w = np.exp(k - k.max())
    w /= w.sum()
    return {m: float(x) for m, x in zip(names, w)}


#: weight of the anchor's z-score added to ``score`` (accuracy points), only to break ties of the
#: ensemble value (e.g. two CGs on which the members disagree symmetrically: sums of ranks) in the
#: anchor's favour; added after the quantile map, whose knots merge such ties
TIE_EPS = 1e-6


class DegenerateReference(ValueError):
    """A reference population whose architectures the model does not tell apart (fewer than
    two distinct ensemble values): it cannot rank anything."""


@dataclass
class EnsembleReference:
    """Standardisers per member and the quantile map, fitted on one reference population."""

    standardizers: dict[str, Standardizer]
    qmap: QuantileMap
    anchor_std: Standardizer | None = None
    stats_scale: np.ndarray | None = None   # the population's spread for the graph_stats member

    @classmethod
    def fit(cls, members: dict[str, np.ndarray], weights: dict[str, float], anchor: np.ndarray,
            mode: str = "rank", inside_weights: dict[str, float] | None = None,
            inside: np.ndarray | None = None) -> EnsembleReference:
        """``inside_weights`` / ``inside``: see :meth:`ensemble` (the reference population's own
        rows are gated the same way)."""
        stds = {m: Standardizer.fit(members[m], mode) for m in {**weights, **(inside_weights or {})}}
        anchor_std = Standardizer.fit(anchor, "zscore")
        ref = cls(stds, QuantileMap(np.zeros(0), np.zeros(0), 0.0), anchor_std)
        ref.qmap = QuantileMap.fit(ref.ensemble(members, weights, None, inside_weights, inside), anchor)
        return ref

    def ensemble(self, members: dict[str, np.ndarray], weights: dict[str, float],
                 anchor: np.ndarray | None = None, inside_weights: dict[str, float] | None = None,
                 inside: np.ndarray | None = None) -> np.ndarray:
        """The weighted sum of standardised members; rows where ``inside`` is true (inside the
        training domain, :mod:`engine.model.domain`) use ``inside_weights`` instead of ``weights``
        when given (both sums are on the same standardised scale)."""
        out = combine(members, weights, self.standardizers)
        if inside_weights and inside is not None and np.any(inside):
            out = np.where(np.asarray(inside, dtype=bool), combine(members, inside_weights, self.standardizers), out)
        if anchor is not None and self.anchor_std is not None:
            out = out + TIE_EPS * self.anchor_std.transform(anchor)
        return out

    def score(self, members: dict[str, np.ndarray], weights: dict[str, float],
              anchor: np.ndarray | None = None, inside_weights: dict[str, float] | None = None,
              inside: np.ndarray | None = None) -> np.ndarray:
        mapped = self.qmap(self.ensemble(members, weights, None, inside_weights, inside))
        if anchor is not None and self.anchor_std is not None:  # ties (one knot of the map): the anchor's order
            mapped = mapped + TIE_EPS * self.anchor_std.transform(anchor)
        return bounded_accuracy(mapped)


#: width (accuracy points) of the bands next to 0 and 100 where :func:`bounded_accuracy` bends
ACC_MARGIN = 2.0


def bounded_accuracy(x: np.ndarray, margin: float = ACC_MARGIN) -> np.ndarray:
    """A strictly increasing map of the real line onto (0, 100): the identity on
    ``[margin, 100 - margin]``, bending towards the bounds outside (``100 - m^2 / (m + d)`` at a
    distance ``d`` above ``100 - m``; continuous slope, so no two values tie until ``d`` ~ 1e13).

    ``score`` goes through it: the anchor member extrapolates on architectures unlike its training
    data (an ImageNet OFA-ResNet got 100.99 in the default workspace), and an accuracy above 100
    is not one.  Being strictly increasing, it changes no ranking metric."""
    x = np.asarray(x, dtype=np.float64)
    out = x.copy()
    hi, lo = x > 100.0 - margin, x < margin
    out[hi] = 100.0 - margin * margin / (margin + (x[hi] - (100.0 - margin)))
    out[lo] = margin * margin / (margin + (margin - x[lo]))
    return out


def combine(members: dict[str, np.ndarray], weights: dict[str, float],
            standardizers: dict[str, Standardizer]) -> np.ndarray:
    """``sum_m w_m * standardizer_m(values_m)`` (weights renormalised to sum 1)."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError("ensemble weights must sum to > 0")
    out = None
    for m, w in weights.items():
        z = standardizers[m].transform(members[m]) * (w / total)
        out = z if out is None else out + z
    return out
