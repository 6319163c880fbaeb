"""Contrastive objective (Eq. 1), MLP heads, the FCM MLP ensemble and the pairwise scorer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.model.config import ContrastiveConfig, EncoderConfig, HeadConfig, PairwiseConfig
from engine.model.contrastive import ContrastiveEncoder, soft_contrastive_loss, soft_positive_targets
from engine.model.heads import MLPEnsemble, MLPHead, PairwiseScorer, sample_pairs
from engine.model.packing import pack
from engine.model.synthetic import synthetic_dataset
from engine.train.fit import linear_calibration, train_ensemble, train_pairwise
from engine.train.pretrain import graph_spectra, pretrain_contrastive

pytestmark = pytest.mark.usefixtures("one_thread")



def test_soft_targets_rows_partner_and_similarity():
    spectra = torch.tensor([[0.0, 0.5, 1.0], [0.0, 0.5, 1.1], [0.0, 1.5, 2.0]])
    t = soft_positive_targets(spectra, tau_s=0.1)
    n = spectra.shape[0]
    assert t.shape == (2 * n, 2 * n)
    torch.testing.assert_close(t.sum(1), torch.ones(2 * n))
    assert torch.all(t.diagonal() == 0)
    for i in range(2 * n):
        partner = (i + n) % (2 * n)
        assert t[i].argmax().item() == partner
    # graph 0 is spectrally closer to graph 1 than to graph 2: more weight
    assert t[0, 1] > t[0, 2]


def test_contrastive_loss_identical_views_lower_than_shuffled():
    torch.manual_seed(0)
    n = 8
    z1 = F.normalize(torch.randn(n, 16), dim=1)
    targets = soft_positive_targets(torch.rand(n, 5), tau_s=0.01)
    same = soft_contrastive_loss(torch.cat([z1, z1]), targets, tau=0.1)
    shuffled = soft_contrastive_loss(torch.cat([z1, z1[torch.randperm(n)]]), targets, tau=0.1)
    assert torch.isfinite(same) and torch.isfinite(shuffled)
    assert same < shuffled


def test_contrastive_pretraining_runs_and_learns():
    cgs, _ = synthetic_dataset(16, seed=1)
    packed = pack(cgs)
    spectra = graph_spectra(cgs, q=21)
    assert spectra.shape == (16, 21) and torch.isfinite(spectra).all()
    torch.manual_seed(0)
    model = ContrastiveEncoder(EncoderConfig(hidden=16, layers=2), ContrastiveConfig(proj_dim=8, batch_size=8))
    loss, metrics = model.loss(packed.select(range(8)), spectra[:8])
    assert torch.isfinite(loss) and 0.0 <= metrics["pos_top1"] <= 1.0
    hist = pretrain_contrastive(model, packed, spectra, ContrastiveConfig(proj_dim=8, batch_size=8, lr=3e-3),
                                epochs=15)
    assert len(hist["loss"]) == 15 and np.isfinite(hist["loss"]).all()
    assert np.mean(hist["loss"][-3:]) < hist["loss"][0]


def test_head_overfits_one_batch():
    torch.manual_seed(0)
    h = torch.randn(16, 8)
    y = torch.randn(16)
    head = MLPHead(8, hidden=32, layers=2)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(400):
        loss = head.loss(h, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert head.loss(h, y).item() < 1e-3


def test_ensemble_with_one_cluster_is_a_single_mlp():
    torch.manual_seed(0)
    ens = MLPEnsemble(8, n_heads=1, hidden=16, layers=2)
    head = MLPHead(8, hidden=16, layers=2)
    head.load_state_dict(ens.heads[0].state_dict())
    h = torch.randn(5, 8)
    torch.testing.assert_close(ens(h), head(h))
    torch.testing.assert_close(ens(h, torch.ones(5, 1)), head(h))
    y = torch.randn(5)
    torch.testing.assert_close(ens.loss(h, y), head.loss(h, y))


def test_ensemble_prediction_is_membership_weighted_convex_combination():
    torch.manual_seed(0)
    ens = MLPEnsemble(8, n_heads=3, hidden=16, layers=1)
    h = torch.randn(6, 8)
    u = torch.softmax(torch.randn(6, 3), 1)
    outs = ens.head_outputs(h)
    pred = ens(h, u)
    torch.testing.assert_close(pred, (u * outs).sum(1))
    assert torch.all(pred <= outs.max(1).values + 1e-6) and torch.all(pred >= outs.min(1).values - 1e-6)
    one_hot = torch.eye(3)[torch.tensor([0, 1, 2, 0, 1, 2])]
    torch.testing.assert_close(ens(h, one_hot), outs[torch.arange(6), torch.tensor([0, 1, 2, 0, 1, 2])])


def test_local_and_joint_losses_train_ensemble():
    torch.manual_seed(0)
    h = torch.randn(64, 4)
    y = h[:, 0] * 2 + h[:, 1]
    u = torch.softmax(torch.randn(64, 2), 1)
    for mode in ("local", "joint"):
        ens = MLPEnsemble(4, n_heads=2, hidden=32, layers=2, loss_mode=mode)
        before = ens.loss(h, y, u).item()
        train_ensemble(ens, h, y, u, HeadConfig(epochs=60, batch_size=16, lr=3e-3))
        assert ens.loss(h, y, u).item() < 0.2 * before


def test_pairwise_scorer_learns_order_and_is_antisymmetric():
    torch.manual_seed(0)
    h = torch.randn(40, 4)
    y = 90 + h[:, 0] - 0.5 * h[:, 2]
    scorer = PairwiseScorer(4, n_heads=1, hidden=16, layers=2)
    hist = train_pairwise(scorer, h, y, None, PairwiseConfig(epochs=40, pairs_per_epoch=2000, batch_size=256, lr=3e-3))
    assert hist["pair_acc"][-1] > 0.9
    p = scorer.prob_better(h[:5], h[5:10])
    q = scorer.prob_better(h[5:10], h[:5])
    torch.testing.assert_close(p + q, torch.ones(5))
    a, b = linear_calibration(scorer(h).detach().numpy(), y.numpy())
    assert a > 0


def test_sample_pairs_respects_gap():
    g = torch.Generator().manual_seed(0)
    y = torch.tensor([1.0, 1.01, 2.0, 3.0, 3.005])
    pairs = sample_pairs(y, 100, 0.5, g)
    assert pairs.shape[0] > 0
    assert torch.all((y[pairs[:, 0]] - y[pairs[:, 1]]).abs() >= 0.5)
    big = sample_pairs(torch.arange(1000.0), 500, 1.0, g)
    assert big.shape[0] == 500 and torch.all(big[:, 0] != big[:, 1])


def test_sample_pairs_within_groups():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(900)
    groups = torch.tensor([0] * 600 + [1] * 250 + [2] * 50)
    pairs = sample_pairs(y, 4000, 0.0, g, groups)
    assert pairs.shape[0] == 4000 and torch.all(pairs[:, 0] != pairs[:, 1])
    assert torch.all(groups[pairs[:, 0]] == groups[pairs[:, 1]])
    counts = torch.bincount(groups[pairs[:, 0]], minlength=3).tolist()
    assert all(c > 0 for c in counts) and counts[0] > counts[1] > counts[2]  # i is uniform over rows
    small = sample_pairs(y[:30], 4000, 0.0, g, torch.arange(30) % 3)  # all same-group ordered pairs
    assert small.shape[0] == 3 * 10 * 9
    assert torch.all((small[:, 0] % 3) == (small[:, 1] % 3))
    with pytest.raises(ValueError, match="groups has 3 entries"):
        sample_pairs(y, 10, 0.0, g, torch.zeros(3))


def test_linear_calibration_within_groups_keeps_the_order():
    import numpy as np

    # two families: within each, a higher score means higher accuracy; the family with higher
    # scores has lower accuracies overall, so a pooled fit has a negative slope
    s = np.array([0.0, 1.0, 2.0, 10.0, 11.0, 12.0])
    t = np.array([90.0, 91.0, 92.0, 70.0, 71.0, 72.0])
    groups = np.array([0, 0, 0, 1, 1, 1])
    a_pooled, _ = linear_calibration(s, t)
    a, b = linear_calibration(s, t, groups)
    assert a == pytest.approx(1.0) and b == pytest.approx(t.mean() - s.mean())
    # a non-positive slope never turns the member constant: order kept, tiny spread
    assert 0 < a_pooled < 1e-2
    pred = a_pooled * s
    assert np.all(np.diff(pred) > 0)
    assert linear_calibration(np.ones(4), t[:4]) == (0.0, pytest.approx(t[:4].mean()))


def test_linear_calibration_constant_within_groups_keeps_the_order():
    import numpy as np

    s = np.array([0.0, 0.0, 5.0, 5.0])  # constant inside each group, different between them
    t = np.array([80.0, 82.0, 90.0, 92.0])
    a, _ = linear_calibration(s, t, np.array([0, 0, 1, 1]))
    assert 0 < a < 1e-2
