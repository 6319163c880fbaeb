"""``novelty``: how far an architecture lies from the CGs the checkpoint was trained on.

Not in the paper.  The learned members (heads, pairwise scorers, k-GNN) read the contrastive
embedding; for an architecture unlike every training CG they extrapolate, and nothing in their
output says so.  FCM membership entropy (:func:`engine.studio.membership_entropy`) rises for
such architectures too, but it has no scale: it is also high for a CG *between* two training
clusters, and its training values already reach 0.75 at the median.

The novelty of a CG is the Euclidean distance of its embedding to the nearest FCM centroid,
divided by the 99th percentile of the same distance over the training CGs:

* ``novelty <= 1``: as close to a cluster as 99 % of the training CGs (inside the training domain);
* ``novelty > 1``: farther than 99 % of them; ``2`` = twice that distance.  The learned members
  extrapolate there; the FLOPs / params / graph-statistics members do not read the embedding.

The signal is one-sided.  Above 1 means extrapolation.  At or below 1 does *not* mean the
learned members can be trusted: leave one family out, every NB-101 and NB-301 cell and 87 % of
the NB-201 cells read as inside a model trained on the other two benchmarks, and its learned
members still ranked them worse than FLOPs (README, "Which architectures are outside the training
domain?").  So novelty flags ImageNet-sized and otherwise foreign networks, not every unseen family.

:class:`DomainReference` holds the training distances' percentiles (0, 1, ..., 100), fitted in
:meth:`engine.model.predictor.GennapePredictor.fit` or afterwards with
:meth:`~engine.model.predictor.GennapePredictor.calibrate_domain` (``python -m engine
calibrate-domain``) for a checkpoint saved before it existed.  ``python -m engine.evaluate.domain``
measures how well it separates held-out CGs of the training families from other families.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: the training-distance percentile that maps to novelty 1
LEVEL = 99


def nearest_centroid_distance(h: Any, centers: Any) -> np.ndarray:
    """``(N,)`` Euclidean distance of each embedding row to its nearest centroid row."""
    h = np.asarray(h, dtype=np.float64)
    c = np.asarray(centers, dtype=np.float64)
    if h.ndim != 2 or c.ndim != 2 or h.shape[1] != c.shape[1]:
        raise ValueError(f"nearest_centroid_distance: embeddings {h.shape} and centroids {c.shape} "
                         "must be 2-D with the same width")
    if h.shape[0] == 0:
        return np.zeros(0)
    # |h - c|^2 = |h|^2 - 2 h.c + |c|^2, clipped at 0 against rounding
    d2 = (h * h).sum(1)[:, None] - 2.0 * h @ c.T + (c * c).sum(1)[None, :]
    return np.sqrt(np.maximum(d2.min(1), 0.0))


class DomainReference:
    """Percentiles of the training CGs' nearest-centroid distances (see module docstring).

    Fitted attributes: ``percentiles_`` (101,) the 0th..100th percentiles, ``n_`` how many
    distances they summarise.  :meth:`novelty` divides by ``percentiles_[LEVEL]``;
    :meth:`percentile` places a distance among the training ones (0..100)."""

    def __init__(self) -> None:
        self.percentiles_: np.ndarray | None = None
        self.n_ = 0

    def __repr__(self) -> str:
        if self.percentiles_ is None:
            return "DomainReference(fitted=False)"
        return f"DomainReference(n={self.n_}, p{LEVEL}={self.threshold:.4g})"

    def fit(self, distances: Any) -> DomainReference:
        d = np.asarray(distances, dtype=np.float64).reshape(-1)
        d = d[np.isfinite(d)]
        if d.size < 2:
            raise ValueError(f"DomainReference.fit: need at least 2 finite distances, got {d.size}")
        self.percentiles_ = np.percentile(d, np.arange(101))
        self.n_ = int(d.size)
        return self

    def _check(self) -> None:
        if self.percentiles_ is None:
            raise ValueError("DomainReference is not fitted: call fit(distances) or from_state(...)")

    @property
    def threshold(self) -> float:
        """The training distance that maps to novelty 1 (its :data:`LEVEL`-th percentile)."""
        self._check()
        return float(max(self.percentiles_[LEVEL], 1e-12))

    def novelty(self, distances: Any) -> np.ndarray:
        """Distance / :attr:`threshold` (> 1: outside the training domain)."""
        return np.asarray(distances, dtype=np.float64) / self.threshold

    def percentile(self, distances: Any) -> np.ndarray:
        """Share (%) of training CGs at most this far from their nearest centroid (100 beyond all)."""
        self._check()
        p = self.percentiles_
        return np.interp(np.asarray(distances, dtype=np.float64), p, np.arange(101.0), left=0.0, right=100.0)

    # --- serialisation ----------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        self._check()
        return {"level": LEVEL, "percentiles": self.percentiles_.tolist(), "n": self.n_}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> DomainReference:
        if not isinstance(state, dict):
            raise ValueError(f"domain state: expected an object, got {type(state).__name__}")
        p = np.asarray(state.get("percentiles", []), dtype=np.float64)
        if p.shape != (101,) or not np.isfinite(p).all() or (np.diff(p) < 0).any() or p[0] < 0:
            raise ValueError("domain state: 'percentiles' must be 101 finite, non-negative, non-decreasing numbers")
        if int(state.get("level", LEVEL)) != LEVEL:
            raise ValueError(f"domain state: level {state.get('level')} is not {LEVEL}")
        obj = cls()
        obj.percentiles_, obj.n_ = p, int(state.get("n", 0))
        return obj
