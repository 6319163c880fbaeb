"""Contrastive pre-training objective of the GENNAPE encoder (paper Eq. 1).

For a batch of N CGs the encoder runs twice in train mode; dropout makes the two embeddings
of each CG differ (the two "views"), giving 2N embeddings ``h``.  A projection MLP maps them to
the unit sphere in ``p`` dimensions, ``z = proj(h) / ||proj(h)||``, and

    sim(z_i, z_l) = z_i . z_l / tau

    L = - 1/(2N) sum_i sum_{l != i} alpha_l^(i) log( exp(sim(z_i, z_l)) / sum_{r != i} exp(sim(z_i, z_r)) )

(the paper sums over i; we average, which only rescales the learning rate).

Soft positives ``alpha^(i)``: a distribution over the other 2N - 1 embeddings from the
*spectral distance* sigma between the underlying undirected graphs -- the Euclidean distance
between their q = 21 smallest normalised-Laplacian eigenvalues (Dwivedi & Bresson 2021):

    alpha_l^(i) = softmax_{l != i}( -sigma(i, l) / tau_s )

Sign convention: the paper writes "alpha^(i) is the softmax of sigma(i, *)", but sigma is a
*distance* and the view partner of i has sigma = 0 while it must be i's strongest positive, so
the softmax is taken over the *negated* distance: more similar graphs get more weight and the
partner (sigma = 0) gets the most.  Other graphs with an identical spectrum share the partner's
weight.  ``tau_s`` sets how quickly the weight falls off with spectral distance (small tau_s
-> almost only the partner, i.e. plain SimCLR / NT-Xent).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.model.config import ContrastiveConfig, EncoderConfig
from engine.model.encoder import GraphEncoder
from engine.model.packing import PackedGraphs


def soft_positive_targets(spectra: torch.Tensor, tau_s: float) -> torch.Tensor:
    """``(2N, 2N)`` soft-positive weights for the two stacked views of N graphs
    (:func:`engine.graphs.spectral.soft_positive_weights` on the duplicated spectra).

    ``spectra``: ``(N, q)`` eigenvalues of the N graphs.  Row i sums to 1 over l != i; the
    diagonal is 0; the partner view (i +- N) has distance 0, hence the largest weight.
    """
    from engine.graphs.spectral import soft_positive_weights

    s = torch.as_tensor(spectra, dtype=torch.float32)
    return soft_positive_weights(torch.cat([s, s]), float(tau_s)).to(torch.float32)


def soft_contrastive_loss(z: torch.Tensor, targets: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 1 for unit-norm projections ``z`` (2N, p) and soft targets (2N, 2N) with a zero
    diagonal (mean over anchors)."""
    if tau <= 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    logits = z @ z.t() / tau
    eye = torch.eye(z.shape[0], dtype=torch.bool)
    logits = logits.masked_fill(eye, float("-inf"))
    logp = torch.log_softmax(logits, dim=1).masked_fill(eye, 0.0)
    return -(targets * logp).sum(1).mean()


class ContrastiveEncoder(nn.Module):
    """Graph encoder + projection head, owning the contrastive objective (:meth:`loss`)."""

    def __init__(self, enc_cfg: EncoderConfig | None = None, cl_cfg: ContrastiveConfig | None = None) -> None:
        super().__init__()
        self.cl_cfg = cl_cfg or ContrastiveConfig()
        self.encoder = GraphEncoder(enc_cfg or EncoderConfig())
        e = self.encoder.embed_dim
        self.proj = nn.Sequential(nn.Linear(e, e), nn.ReLU(), nn.Linear(e, self.cl_cfg.proj_dim))

    @property
    def embed_dim(self) -> int:
        return self.encoder.embed_dim

    def forward(self, packed: PackedGraphs) -> torch.Tensor:
        """Embeddings ``h`` (B, e) -- what FCM and the heads use."""
        return self.encoder(packed)

    def project(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.proj(h), dim=1)

    def loss(self, packed: PackedGraphs, spectra: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """Eq. 1 on one batch (call in ``train()`` mode so dropout makes two views).

        Returns the loss and metrics: ``loss`` and ``pos_top1`` (fraction of anchors whose most
        similar other embedding is their own view partner)."""
        n = len(packed)
        h = torch.cat([self.encoder(packed), self.encoder(packed)])
        z = self.project(h)
        targets = soft_positive_targets(spectra, self.cl_cfg.tau_s)
        loss = soft_contrastive_loss(z, targets, self.cl_cfg.tau)
        with torch.no_grad():
            sim = z @ z.t()
            sim.fill_diagonal_(float("-inf"))
            partner = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
            top1 = (sim.argmax(1) == partner).float().mean().item()
        return loss, {"loss": float(loss.item()), "pos_top1": top1}
