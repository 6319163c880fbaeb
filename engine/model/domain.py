"""``novelty``: how far an architecture lies from the CGs the checkpoint was trained on.

Not in the paper.  The learned members (heads, pairwise scorers, k-GNN) read the contrastive
embedding; for an architecture unlike every training CG they extrapolate, and nothing in their
output says so.  FCM membership entropy (:func:`engine.studio.membership_entropy`) rises for
ImageNet-sized networks too, but it has no scale (the training CGs' median is already 0.75) and
it cannot tell one CIFAR cell benchmark from another.

The novelty of a CG is the Euclidean distance of its embedding to the nearest training embedding
(a bank of at most :data:`MAX_BANK` of them), divided by the 99th percentile of the same distance
over the bank itself, each bank row's nearest *other* row (leave one out):

* ``novelty <= 1``: as close to a training CG as 99 % of the training CGs are to each other;
* ``novelty > 1``: farther; ``2`` = twice that distance.  The learned members extrapolate there;
  the FLOPs / params / graph-statistics members do not read the embedding.

Why the nearest training CG and not the nearest FCM centroid (the first version): leave one
benchmark out, the centroid distance called *every* NB-101 and NB-301 cell inside a model trained
on the other two benchmarks, while the nearest-neighbour distance calls 0.4 % / 0 % of them inside
and 99-100 % of held-out NB-201 cells inside (README, "Which architectures are outside the
training domain?").  Benchmarks occupy distinct regions near the same centroids.

:class:`DomainReference` holds the bank and the percentiles, fitted in
:meth:`engine.model.predictor.GennapePredictor.fit` or afterwards with
:meth:`~engine.model.predictor.GennapePredictor.calibrate_domain` (``python -m engine
calibrate-domain``).  A checkpoint stores the bank in ``domain.safetensors`` and the percentiles
in ``state.json``.  ``python -m engine.evaluate.domain`` measures how well novelty separates
held-out CGs of the training families from other families.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: the training-distance percentile that maps to novelty 1
LEVEL = 99
#: most training embeddings kept in the bank (a seeded subsample beyond)
MAX_BANK = 4000
KIND = "nearest-training-cg"
#: rows of ``h`` per matrix product: a (256, bank) block of squared distances stays in cache
#: (2,000 x 3,225 x 64: 10-11 ms, against 15-16 ms in blocks of 2,048; the same distances)
_CHUNK = 256


def nearest_distance(h: Any, bank: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """``(N,)`` Euclidean distance of each row of ``h`` to its nearest row of ``bank``;
    ``exclude_self``: ``h`` *is* ``bank`` and row i may not match itself (leave one out).

    float32, by the expansion ``|h|^2 - 2 h.b + |b|^2`` on data centred
    on the bank mean (one fused matrix product per chunk of rows; ~10 ms for 2,000 x 3,225 x 64
    on 2 cores): distances are exact to ~1e-6 except near 0, where cancellation leaves ~1e-3."""
    import torch

    h = np.asarray(h, dtype=np.float32)
    b = np.asarray(bank, dtype=np.float32)
    if h.ndim != 2 or b.ndim != 2 or h.shape[1] != b.shape[1]:
        raise ValueError(f"nearest_distance: embeddings {h.shape} and bank {b.shape} must be 2-D with the same width")
    if h.shape[0] == 0 or b.shape[0] == 0:
        return np.full(h.shape[0], np.inf)
    centre = b.mean(0, keepdims=True)
    bt = torch.from_numpy(b - centre)
    ht = torch.from_numpy(h - centre)
    b2 = (bt * bt).sum(1)
    out = np.empty(h.shape[0], dtype=np.float64)
    with torch.no_grad():
        for s in range(0, h.shape[0], _CHUNK):
            x = ht[s:s + _CHUNK]
            d2 = torch.addmm(b2[None, :], x, bt.T, alpha=-2.0)  # |b|^2 - 2 x.b; |x|^2 is added after the min
            if exclude_self:
                idx = torch.arange(x.shape[0])
                d2[idx, idx + s] = float("inf")
            m = d2.min(1).values + (x * x).sum(1)
            out[s:s + x.shape[0]] = np.sqrt(np.maximum(m.double().numpy(), 0.0))
    return out


class DomainReference:
    """A bank of training embeddings and its leave-one-out nearest-neighbour distances'
    percentiles (see module docstring).

    Fitted attributes: ``bank_`` (M, d) float32, ``percentiles_`` (101,) the 0th..100th
    percentiles, ``n_`` how many training CGs the bank was drawn from."""

    def __init__(self, max_bank: int = MAX_BANK, random_state: int = 0) -> None:
        self.max_bank = max_bank
        self.random_state = random_state
        self.bank_: np.ndarray | None = None
        self.percentiles_: np.ndarray | None = None
        self.n_ = 0

    def __repr__(self) -> str:
        if self.percentiles_ is None:
            return "DomainReference(fitted=False)"
        return f"DomainReference(n={self.n_}, bank={self.bank_.shape[0]}, p{LEVEL}={self.threshold:.4g})"

    def fit(self, h: Any) -> DomainReference:
        """``h``: ``(N, d)`` embeddings of the training CGs (non-finite rows are dropped)."""
        h = np.asarray(h, dtype=np.float32)
        if h.ndim != 2:
            raise ValueError(f"DomainReference.fit: expected (N, d) embeddings, got shape {h.shape}")
        h = h[np.isfinite(h).all(1)]
        if h.shape[0] < 3:
            raise ValueError(f"DomainReference.fit: need at least 3 finite embeddings, got {h.shape[0]}")
        self.n_ = int(h.shape[0])
        if h.shape[0] > self.max_bank:
            keep = np.sort(np.random.default_rng(self.random_state).choice(h.shape[0], self.max_bank, replace=False))
            h = h[keep]
        self.bank_ = np.ascontiguousarray(h)
        self.percentiles_ = np.percentile(nearest_distance(h, h, exclude_self=True), np.arange(101))
        return self

    def _check(self) -> None:
        if self.percentiles_ is None or self.bank_ is None:
            raise ValueError("DomainReference is not fitted: call fit(embeddings) or from_state(...)")

    @property
    def threshold(self) -> float:
        """The distance that maps to novelty 1 (the :data:`LEVEL`-th percentile)."""
        self._check()
        return float(max(self.percentiles_[LEVEL], 1e-9))

    def distances(self, h: Any) -> np.ndarray:
        """Distance of each embedding to its nearest bank row."""
        self._check()
        return nearest_distance(h, self.bank_)

    def novelty(self, h: Any) -> np.ndarray:
        """Nearest-bank distance / :attr:`threshold` (> 1: outside the training domain)."""
        return self.distances(h) / self.threshold

    def percentile(self, h: Any) -> np.ndarray:
        """Share (%) of bank rows whose own nearest-neighbour distance is at most this CG's."""
        self._check()
        return np.interp(self.distances(h), self.percentiles_, np.arange(101.0), left=0.0, right=100.0)

    # --- serialisation: small numbers to JSON, the bank to a tensor file --------------------
    def to_state(self) -> dict[str, Any]:
        self._check()
        return {"kind": KIND, "level": LEVEL, "percentiles": self.percentiles_.tolist(), "n": self.n_,
                "bank_rows": int(self.bank_.shape[0]), "max_bank": self.max_bank, "random_state": self.random_state}

    @classmethod
    def from_state(cls, state: dict[str, Any], bank: Any) -> DomainReference:
        if not isinstance(state, dict):
            raise ValueError(f"domain state: expected an object, got {type(state).__name__}")
        if state.get("kind") != KIND:
            raise ValueError(f"domain state: kind {state.get('kind')!r} is not {KIND!r}")
        p = np.asarray(state.get("percentiles", []), dtype=np.float64)
        if p.shape != (101,) or not np.isfinite(p).all() or (np.diff(p) < 0).any() or p[0] < 0:
            raise ValueError("domain state: 'percentiles' must be 101 finite, non-negative, non-decreasing numbers")
        if int(state.get("level", LEVEL)) != LEVEL:
            raise ValueError(f"domain state: level {state.get('level')} is not {LEVEL}")
        b = np.asarray(bank, dtype=np.float32)
        if b.ndim != 2 or b.shape[0] != int(state.get("bank_rows", -1)) or not np.isfinite(b).all():
            raise ValueError(f"domain bank: expected {state.get('bank_rows')} finite rows, got shape {b.shape}")
        obj = cls(int(state.get("max_bank", MAX_BANK)), int(state.get("random_state", 0)))
        obj.bank_, obj.percentiles_, obj.n_ = np.ascontiguousarray(b), p, int(state.get("n", 0))
        return obj
