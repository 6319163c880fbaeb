"""graph_stats member: statistics, the within-family pairwise ranker, persistence, predictor use."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.metrics import srcc
from engine.model.config import GennapeConfig
from engine.model.graph_stats import STAT_NAMES, WEIGHTED_OPS, GraphStatsRanker, graph_stats
from engine.model.packing import as_packed
from engine.model.predictor import GennapePredictor
from engine.model.synthetic import synthetic_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(40, seed=3)


def test_statistics_match_the_cg_objects(data):
    cgs, _ = data
    x = graph_stats(as_packed(cgs))
    assert x.shape == (len(cgs), len(STAT_NAMES))
    for row, cg in zip(x, cgs, strict=True):
        weighted = sum(n.op in WEIGHTED_OPS for n in cg.nodes)
        np.testing.assert_allclose(row, [np.log10(cg.flops), np.log10(cg.params), np.log(len(cg.nodes)),
                                         np.log1p(weighted)], rtol=1e-12)


def _family(rng, n, shift, spread, coef):
    """Statistics of one synthetic family and accuracies following ``coef`` (within family)."""
    x = shift + spread * rng.normal(size=(n, 4))
    return x, 85.0 + ((x - shift) / spread) @ coef


def test_ranker_learns_a_within_family_rule_that_survives_a_scale_shift():
    rng = np.random.default_rng(0)
    coef = np.array([1.0, 0.5, -1.0, 0.8])
    xa, ya = _family(rng, 300, np.array([8.0, 6.0, 4.0, 3.0]), np.array([0.4, 0.3, 0.5, 0.5]), coef)
    xb, yb = _family(rng, 300, np.array([7.0, 5.0, 5.0, 3.5]), np.array([0.2, 0.2, 0.3, 0.4]), coef)
    # family b is 10 points less accurate: pairs never mix families, so the offset is harmless
    r = GraphStatsRanker(random_state=0).fit(np.vstack([xa, xb]), np.concatenate([ya, yb - 10.0]),
                                             np.array(["a"] * 300 + ["b"] * 300))
    assert r.n_pairs_ > 30_000
    np.testing.assert_allclose(r.coef_ / np.linalg.norm(r.coef_), coef / np.linalg.norm(coef), atol=0.05)
    # an unseen family 100x larger (2 decades of FLOPs) with its own spreads ranks as well
    xt, yt = _family(rng, 200, np.array([10.0, 8.0, 6.0, 4.0]), np.array([0.1, 0.6, 0.2, 0.3]), coef)
    assert srcc(yt, r.decision_function(xt)) > 0.97


def test_scores_are_invariant_to_shifting_and_rescaling_the_population():
    rng = np.random.default_rng(1)
    x, y = _family(rng, 100, np.zeros(4), np.ones(4), np.array([1.0, -0.5, 0.2, 0.3]))
    r = GraphStatsRanker().fit(x, y)
    base = r.decision_function(x)
    moved = r.decision_function(x * np.array([2.0, 3.0, 0.5, 1.0]) + 7.0)
    np.testing.assert_allclose(moved - moved.mean(), base - base.mean(), atol=1e-9)
    # a fixed reference scale makes single rows comparable with the batch
    scale = r.population_scale(x)
    np.testing.assert_allclose(r.decision_function(x[:1], scale), base[:1])
    # one row or a statistic without spread falls back to the training spread
    np.testing.assert_allclose(r.population_scale(x[:1]), r.scale_)


def test_state_round_trip_and_errors():
    rng = np.random.default_rng(2)
    x, y = _family(rng, 50, np.zeros(4), np.ones(4), np.ones(4))
    r = GraphStatsRanker(C=0.5, pairs_per_group=500).fit(x, y)
    r2 = GraphStatsRanker.from_state(r.to_state())
    np.testing.assert_array_equal(r2.decision_function(x), r.decision_function(x))
    assert r2.C == 0.5 and r2.pairs_per_group == 500
    with pytest.raises(ValueError, match="expected statistics"):
        GraphStatsRanker.from_state({**r.to_state(), "stats": ["a"]})
    with pytest.raises(ValueError, match="finite"):
        GraphStatsRanker.from_state({**r.to_state(), "scale": [1.0, 0.0, 1.0, 1.0]})
    with pytest.raises(ValueError, match="not fitted"):
        GraphStatsRanker().decision_function(x)
    with pytest.raises(ValueError, match=r"expected \(N, 4\)"):
        GraphStatsRanker().fit(x[:, :3], y)
    with pytest.raises(ValueError, match="no usable training pairs"):
        GraphStatsRanker().fit(x, np.full(len(y), 90.0))
    with pytest.raises(ValueError, match="group labels"):
        GraphStatsRanker().fit(x, y, groups=["a"] * 3)


def test_predictor_member_reference_and_checkpoint(data, tmp_path):
    torch.manual_seed(0)
    cgs, acc = data
    cfg = GennapeConfig.tiny().override({"kgnn.enabled": False,
                                         "ensemble.members": ["graph_stats", "flops_baseline", "cl"]})
    groups = np.array(["a", "b"] * (len(cgs) // 2), dtype=object)
    pred = GennapePredictor(cfg).fit(cgs, acc, groups=groups)
    assert pred.members == ("graph_stats", "flops_baseline", "cl")
    df = pred.predict(cgs)
    x = graph_stats(as_packed(cgs))
    np.testing.assert_allclose(df["graph_stats"], pred.stats.decision_function(x))
    ref = pred.reference(cgs)
    few = pred.predict(cgs[:3], reference=ref)
    np.testing.assert_allclose(few["graph_stats"], df["graph_stats"][:3])
    np.testing.assert_allclose(few["score"], df["score"][:3], rtol=1e-5)
    assert "mae" not in pred.evaluate(cgs, acc)["graph_stats"]
    pred.save(tmp_path / "ck")
    back = GennapePredictor.load(tmp_path / "ck")
    np.testing.assert_allclose(back.predict(cgs).to_numpy(float), df.to_numpy(float))
    # a member named by the ensemble weights but missing from the checkpoint is an error
    import json

    state = json.loads((tmp_path / "ck" / "state.json").read_text())
    state["graph_stats"] = None
    (tmp_path / "ck" / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match="lacks"):
        GennapePredictor.load(tmp_path / "ck")


def test_disabled_member_is_left_out(data):
    cgs, acc = data
    cfg = GennapeConfig.tiny().override({"kgnn.enabled": False, "graph_stats.enabled": False})
    pred = GennapePredictor(cfg).fit(cgs, acc)
    assert pred.stats is None and "graph_stats" not in pred.members
    assert np.isnan(pred.predict(cgs)["graph_stats"]).all()


def test_ranking_survives_an_input_size_shift():
    """The same architectures built for 224 px input (about 49x the FLOPs) rank as at 32 px."""
    small, acc = synthetic_dataset(30, seed=5, hw=32)
    large, _ = synthetic_dataset(30, seed=5, hw=224)
    assert np.median([b.flops / a.flops for a, b in zip(small, large, strict=True)]) > 10
    r = GraphStatsRanker().fit(graph_stats(as_packed(small)), acc)
    s32 = r.decision_function(graph_stats(as_packed(small)))
    s224 = r.decision_function(graph_stats(as_packed(large)))
    assert srcc(s32, s224) > 0.95


def test_directions_without_training_variance_get_no_weight():
    """FLOPs and params move together in every training family; their contrast gets no coefficient."""
    rng = np.random.default_rng(4)
    n = 400
    size = rng.normal(size=n)
    x = np.column_stack([size, size + 0.05 * rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)])
    # the labels follow the contrast (0.1% of the variance) as much as the size: the unrestricted
    # fit learns it, the restricted one cannot
    y = 90.0 + size + 20.0 * (x[:, 0] - x[:, 1]) + 0.5 * x[:, 2]
    free = GraphStatsRanker(min_variance=0.0).fit(x, y)
    kept = GraphStatsRanker(min_variance=0.01).fit(x, y)
    assert free.directions_.shape == (4, 4) and kept.directions_.shape == (4, 3)
    np.testing.assert_allclose(kept.explained_.sum(), 1.0)
    assert kept.explained_[-1] < 1e-3
    # unrestricted: a large weight on the contrast; restricted: the two collinear statistics share one
    assert abs(free.coef_[0] - free.coef_[1]) > 0.5 * np.abs(free.coef_).max()
    assert abs(kept.coef_[0] - kept.coef_[1]) < 0.01 * np.abs(kept.coef_).max()
    # exactly: no weight along the dropped principal direction
    z = x / x.std(0)
    dropped = np.linalg.eigh(np.cov((z - z.mean(0)).T))[1][:, 0]
    assert abs(kept.coef_ @ dropped) < 1e-9
    assert kept.coef_[0] > 0 and kept.coef_[2] > 0
    # where the two decorrelate, the restricted ranker follows the shared size, not the contrast
    xt = np.column_stack([rng.normal(size=n), rng.normal(size=n), np.zeros(n), np.zeros(n)])
    yt = xt[:, 0] + xt[:, 1]
    assert srcc(yt, kept.decision_function(xt)) > 0.99
    assert srcc(yt, free.decision_function(xt)) < srcc(yt, kept.decision_function(xt)) - 0.1


def test_min_variance_state_and_errors():
    rng = np.random.default_rng(5)
    x, y = _family(rng, 60, np.zeros(4), np.ones(4), np.ones(4))
    r = GraphStatsRanker(min_variance=0.02).fit(x, y)
    state = r.to_state()
    assert state["min_variance"] == 0.02 and len(state["explained_variance"]) == 4
    assert GraphStatsRanker.from_state(state).min_variance == 0.02
    # a checkpoint written before the restriction existed was fitted without it
    old = {k: v for k, v in state.items() if k not in ("min_variance", "explained_variance", "kept_directions")}
    back = GraphStatsRanker.from_state(old)
    assert back.min_variance == 0.0
    np.testing.assert_array_equal(back.decision_function(x), r.decision_function(x))
    with pytest.raises(ValueError, match="min_variance"):
        GraphStatsRanker(min_variance=1.0).fit(x, y)
    with pytest.raises(ValueError, match="min_variance"):
        GraphStatsRanker(min_variance=-0.1).fit(x, y)


def test_statistics_collinear_in_every_family_are_merged():
    rng = np.random.default_rng(6)
    xs, ys, gs = [], [], []
    for fam, noise in (("a", 0.01), ("b", 0.05)):
        size = rng.normal(size=300)
        x = np.column_stack([size, size + noise * rng.normal(size=300), rng.normal(size=300), rng.normal(size=300)])
        xs.append(x)
        ys.append(90.0 + size + 20.0 * (x[:, 0] - x[:, 1]) - 0.5 * x[:, 3])
        gs += [fam] * 300
    x, y = np.vstack(xs), np.concatenate(ys)
    r = GraphStatsRanker(merge_collinear=0.98).fit(x, y, gs)
    assert r.merged_ == [["log10_flops", "log10_params"]] and r.directions_.shape == (4, 3)
    np.testing.assert_allclose(r.coef_[0], r.coef_[1])
    assert r.coef_[0] > 0 and r.coef_[3] < 0
    back = GraphStatsRanker.from_state(r.to_state())
    assert back.merged_ == r.merged_ and back.merge_collinear == 0.98
    np.testing.assert_array_equal(back.decision_function(x), r.decision_function(x))
    # collinear in one family only: nothing is merged
    x2 = x.copy()
    x2[300:, 1] = rng.normal(size=300)
    assert GraphStatsRanker(merge_collinear=0.98).fit(x2, y, gs).merged_ == []
    with pytest.raises(ValueError, match="not both"):
        GraphStatsRanker(min_variance=0.01, merge_collinear=0.98).fit(x, y, gs)
    with pytest.raises(ValueError, match="merge_collinear"):
        GraphStatsRanker(merge_collinear=1.5).fit(x, y, gs)


@pytest.mark.parametrize("updates, match", [
    ({"graph_stats.merge_collinear": 1.5}, "merge_collinear"),
    ({"graph_stats.min_variance": -0.1}, "min_variance"),
    ({"graph_stats.min_variance": 0.01, "graph_stats.merge_collinear": 0.98}, "not both"),
])
def test_config_rejects_bad_graph_stats_options_before_training(updates, match):
    with pytest.raises(ValueError, match=match):
        GennapeConfig().override(updates)
