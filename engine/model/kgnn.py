"""The k-GNN regressor baseline with the authors' configuration (reference doc §2).

    node features --Linear(F, 32)--> 6 x [GraphConv(32, 32), tanh]  (directed data-flow edges)
      -> mean readout -> Linear-Linear-ReLU-Linear-Linear (32 wide) -> Linear(32, 1)

Trained end-to-end on CGs with MSE on the accuracy as a *fraction* (the authors' raw target),
Adam lr 1e-4, gradient-norm clip 5.0, batch 32, 40 epochs, best epoch by dev MAPE (all in
:class:`engine.model.config.KGNNConfig`; the training loop is
:func:`engine.train.fit.train_kgnn`).

Differences from the authors' code (documented, deliberate): our node features
(:func:`engine.graphs.cg.feature_names`) go through one Linear instead of the authors' separate
op-embedding tables + shape Linear (which are themselves a Linear over a one-hot + shape
vector); the unused ``init_ff`` and aggregator GraphConv of their code are not instantiated.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.nn import GraphConv

from engine.model import dedup
from engine.model.config import KGNNConfig
from engine.model.encoder import NodeEmbedding, fast_tanh, graph_conv, quotient_layer, segment_mean
from engine.model.packing import PackedGraphs


class KGNNRegressor(nn.Module):
    """CG batch -> predicted accuracy fraction (B,)."""

    def __init__(self, cfg: KGNNConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or KGNNConfig()
        self.cfg = cfg
        d = cfg.hidden
        self.embed = NodeEmbedding(d)
        self.convs = nn.ModuleList(GraphConv(d, d) for _ in range(cfg.layers))
        self.post_proj = nn.Sequential(nn.Linear(d, d), nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d), nn.Linear(d, d))
        self.regressor = nn.Linear(d, 1)

    def forward(self, packed: PackedGraphs) -> torch.Tensor:
        if dedup.active(self):  # eval: one state per class of identical neighbourhoods
            q = dedup.refine(packed, len(self.convs), False)
            reps = torch.from_numpy(q.levels[0].reps)
            h = self.embed(packed.op[reps], packed.dense[reps])
            for i, conv in enumerate(self.convs):
                h = quotient_layer(q.levels[i + 1], h, conv, None, fast_tanh)
            return self.regressor(self.post_proj(q.mean(h))).squeeze(-1)
        h = self.embed(packed.op, packed.dense)
        adj = packed.adj()
        for conv in self.convs:
            h = fast_tanh(graph_conv(conv, h, adj))
        return self.regressor(self.post_proj(segment_mean(h, packed))).squeeze(-1)

    def loss(self, packed: PackedGraphs, y_frac: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(self(packed), y_frac.to(torch.float32))

    @torch.no_grad()
    def predict_percent(self, packed: PackedGraphs, max_nodes: int = 300_000) -> torch.Tensor:
        was = self.training
        self.eval()
        try:
            out = [self(chunk) for _, _, chunk in packed.chunks(max_nodes=max_nodes)]
        finally:
            self.train(was)
        return torch.cat(out) * 100.0
