"""MLP heads on graph embeddings, the FCM MLP ensemble (MLP-E) and the pairwise scorer.

* :class:`MLPHead` -- ``f(h)``: Linear-ReLU (x layers) - Linear -> scalar.
* :class:`MLPEnsemble` -- paper "Soft-Clustering Ensemble": C heads and
  ``y'_i = sum_j U_ij f^j(h_i)`` with FCM memberships U (rows on the simplex), so a prediction
  is always a convex combination of the heads' outputs.  With C = 1 (U = 1) it *is* a single
  MLP (the CL and CL+T variants).  Two training objectives (``HeadConfig.ensemble_loss``):

  - ``"local"`` (default): ``sum_ij U_ij (f^j(h_i) - y_i)^2 / N`` -- each head is fitted to the
    whole training set weighted by membership, i.e. it is a usable predictor on its own in its
    region; any convex combination (e.g. the diffuse memberships of an unseen family) then
    stays sensible;
  - ``"joint"``: ``sum_i (y'_i - y_i)^2 / N`` -- the combined prediction is fitted directly;
    heads may compensate for each other, which fits the training family more tightly.

* :class:`PairwiseScorer` -- CL+Pairwise / CL+Pairwise+FCM.  Rather than a classifier over
  concatenated pairs (h_i, h_j), it is a scalar scorer ``g(h)`` (optionally an FCM ensemble
  ``sum_j U_ij g^j(h_i)``) trained with the logistic loss of
  ``P(acc_i > acc_j) = sigmoid(g(h_i) - g(h_j))`` on random pairs.  This is an antisymmetric
  pairwise classifier by construction, its per-architecture score g(h) ranks a whole set in
  O(N), and :meth:`PairwiseScorer.prob_better` still answers pair queries.

All modules "own" their objective (``.loss(...)``) and take memberships as an argument.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class MLPHead(nn.Module):
    """``in_dim -> [hidden, ReLU, (Dropout)] x layers -> 1``."""

    def __init__(self, in_dim: int, hidden: int = 128, layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        d = in_dim
        for _ in range(layers):
            mods += [nn.Linear(d, hidden), nn.ReLU()]
            if dropout > 0:
                mods.append(nn.Dropout(dropout))
            d = hidden
        mods.append(nn.Linear(d, 1))
        self.net = nn.Sequential(*mods)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.net(h).squeeze(-1)

    def loss(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self(h), y)


class MLPEnsemble(nn.Module):
    """C MLP heads combined by membership (see module docstring)."""

    def __init__(self, in_dim: int, n_heads: int = 1, hidden: int = 128, layers: int = 2,
                 dropout: float = 0.0, loss_mode: str = "local") -> None:
        super().__init__()
        if n_heads < 1:
            raise ValueError(f"n_heads must be >= 1, got {n_heads}")
        if loss_mode not in ("local", "joint"):
            raise ValueError(f"ensemble loss must be 'local' or 'joint', got {loss_mode!r}")
        self.n_heads = n_heads
        self.loss_mode = loss_mode
        self.heads = nn.ModuleList(MLPHead(in_dim, hidden, layers, dropout) for _ in range(n_heads))

    def _memberships(self, h: torch.Tensor, u: torch.Tensor | None) -> torch.Tensor:
        if u is None:
            if self.n_heads != 1:
                raise ValueError(f"this ensemble has {self.n_heads} heads: memberships are required")
            return torch.ones(h.shape[0], 1, dtype=h.dtype)
        if u.shape != (h.shape[0], self.n_heads):
            raise ValueError(f"memberships must have shape ({h.shape[0]}, {self.n_heads}), got {tuple(u.shape)}")
        return u.to(h.dtype)

    def head_outputs(self, h: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` outputs f^j(h_i) of every head."""
        return torch.stack([head(h) for head in self.heads], 1)

    def forward(self, h: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        return (self._memberships(h, u) * self.head_outputs(h)).sum(1)

    def loss(self, h: torch.Tensor, y: torch.Tensor, u: torch.Tensor | None = None,
             weight: torch.Tensor | None = None) -> torch.Tensor:
        u = self._memberships(h, u)
        outs = self.head_outputs(h)
        if self.loss_mode == "joint":
            per = ((u * outs).sum(1) - y) ** 2
        else:
            per = (u * (outs - y.unsqueeze(1)) ** 2).sum(1)
        if weight is not None:
            return (per * weight).sum() / weight.sum().clamp(min=1e-12)
        return per.mean()


class PairwiseScorer(nn.Module):
    """Scalar ranking score g(h) (or an FCM mixture of C scorers) trained on pairs."""

    def __init__(self, in_dim: int, n_heads: int = 1, hidden: int = 128, layers: int = 2, dropout: float = 0.0) -> None:
        super().__init__()
        self.mix = MLPEnsemble(in_dim, n_heads, hidden, layers, dropout, loss_mode="joint")

    @property
    def n_heads(self) -> int:
        return self.mix.n_heads

    def forward(self, h: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        return self.mix(h, u)

    def prob_better(self, h_i: torch.Tensor, h_j: torch.Tensor, u_i: torch.Tensor | None = None,
                    u_j: torch.Tensor | None = None) -> torch.Tensor:
        """P(acc_i > acc_j) for aligned rows of ``h_i`` and ``h_j``."""
        return torch.sigmoid(self(h_i, u_i) - self(h_j, u_j))

    def loss(self, h: torch.Tensor, y: torch.Tensor, pairs: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
        """Logistic loss on ``pairs`` (P, 2) of row indices; the label of a pair is
        ``y[i] > y[j]``.  Scores are computed once per row of ``h``."""
        g = self(h, u)
        i, j = pairs[:, 0], pairs[:, 1]
        target = (y[i] > y[j]).to(g.dtype)
        return F.binary_cross_entropy_with_logits(g[i] - g[j], target)


def sample_pairs(y: torch.Tensor, n_pairs: int, min_gap: float, generator: torch.Generator,
                 groups: torch.Tensor | None = None) -> torch.Tensor:
    """Random index pairs (i, j), i != j, with ``|y_i - y_j| >= min_gap`` (rejection sampled;
    may return fewer than ``n_pairs`` when few pairs qualify).  With ``groups`` (one integer
    per row, e.g. the family), both members of a pair come from the same group: accuracies of
    different benchmarks (other datasets, epochs, training pipelines) are not comparable."""
    n = y.shape[0]
    if n < 2:
        return torch.zeros(0, 2, dtype=torch.long)
    if groups is not None:
        groups = torch.as_tensor(groups, dtype=torch.long)
        if groups.shape[0] != n:
            raise ValueError(f"sample_pairs: groups has {groups.shape[0]} entries for {n} rows")
    if n * (n - 1) <= 2 * n_pairs:  # small sets: all ordered pairs
        i, j = torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij")
        pairs = torch.stack([i.reshape(-1), j.reshape(-1)], 1)
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        if groups is not None:
            pairs = pairs[groups[pairs[:, 0]] == groups[pairs[:, 1]]]
        keep = (y[pairs[:, 0]] - y[pairs[:, 1]]).abs() >= min_gap
        pairs = pairs[keep]
        if pairs.shape[0] > n_pairs:
            pairs = pairs[torch.randperm(pairs.shape[0], generator=generator)[:n_pairs]]
        return pairs
    m = int(n_pairs * 1.5) + 16
    if groups is None:
        pairs = torch.randint(0, n, (m, 2), generator=generator)
    else:  # i uniform; j uniform among the rows of i's group
        order = torch.argsort(groups, stable=True)
        _, counts = torch.unique(groups[order], return_counts=True)
        starts = torch.cumsum(counts, 0) - counts
        rank = torch.empty(n, dtype=torch.long)
        rank[order] = torch.arange(n)
        gid = torch.bucketize(rank, starts, right=True) - 1  # group slot of each row
        i = torch.randint(0, n, (m,), generator=generator)
        off = (torch.rand(m, generator=generator) * counts[gid[i]]).long().clamp_max(counts[gid[i]] - 1)
        pairs = torch.stack([i, order[starts[gid[i]] + off]], 1)
    keep = (pairs[:, 0] != pairs[:, 1]) & ((y[pairs[:, 0]] - y[pairs[:, 1]]).abs() >= min_gap)
    return pairs[keep][:n_pairs]
