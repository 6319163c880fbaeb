"""Member standardisation, the quantile map to accuracy units and fine-tune weights."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import rankdata

from engine.model.ensemble import (
    EnsembleReference,
    QuantileMap,
    Standardizer,
    bounded_accuracy,
    equal_weights,
    kt_softmax_weights,
)


def test_rank_standardizer_gives_rank_zscores_with_ties():
    v = np.array([3.0, 1.0, 2.0, 2.0, 10.0])
    z = Standardizer.fit(v, "rank").transform(v)
    r = rankdata(v)
    np.testing.assert_allclose(z, (r - r.mean()) / r.std())
    assert z[2] == z[3]
    assert abs(z.mean()) < 1e-12 and abs(z.std() - 1) < 1e-12


def test_zscore_standardizer():
    v = np.array([1.0, 2.0, 3.0, 6.0])
    np.testing.assert_allclose(Standardizer.fit(v, "zscore").transform(v), (v - v.mean()) / v.std())
    with pytest.raises(ValueError, match="standardize"):
        Standardizer.fit(v, "minmax")


def test_standardizer_is_monotone_beyond_the_reference():
    ref = np.array([0.0, 1.0, 2.0, 5.0])
    st = Standardizer.fit(ref, "rank")
    grid = np.linspace(-10, 20, 301)
    z = st.transform(grid)
    assert np.all(np.diff(z) >= 0) and z[0] < st.transform(np.array([0.0]))[0] < z[-1]


def test_degenerate_sets():
    st = Standardizer.fit(np.array([4.0]), "rank")
    assert st.transform(np.array([4.0]))[0] == 0.0
    q = QuantileMap.fit(np.array([0.0]), np.array([91.5]))
    assert q(np.array([0.0]))[0] == 91.5
    st2 = Standardizer.fit(np.array([2.0, 2.0, 2.0]), "zscore")
    np.testing.assert_array_equal(st2.transform(np.array([2.0, 2.0])), [0.0, 0.0])


def test_quantile_map_keeps_order_and_anchor_distribution():
    rng = np.random.default_rng(0)
    ens = rng.normal(size=50)
    anchor = 90 + rng.normal(size=50)
    q = QuantileMap.fit(ens, anchor)
    mapped = q(ens)
    np.testing.assert_allclose(np.sort(mapped), np.sort(anchor))
    assert np.array_equal(np.argsort(mapped), np.argsort(ens))
    assert q(np.array([ens.max() + 1.0]))[0] > anchor.max()


def test_reference_scores_are_stable_across_calls():
    rng = np.random.default_rng(1)
    members = {"a": rng.normal(size=30), "b": rng.normal(size=30) * 10}
    w = equal_weights(["a", "b"])
    ref = EnsembleReference.fit(members, w, anchor=85 + members["a"])
    full = ref.score(members, w)
    part = ref.score({k: v[:5] for k, v in members.items()}, w)
    np.testing.assert_allclose(full[:5], part)


def test_kt_softmax_weights():
    w = kt_softmax_weights({"a": 0.5, "b": 0.0, "c": float("nan")}, temperature=1.0)
    assert abs(sum(w.values()) - 1) < 1e-12
    assert w["a"] > w["b"] == w["c"]
    np.testing.assert_allclose(w["a"] / w["b"], np.exp(0.5))
    sharp = kt_softmax_weights({"a": 0.5, "b": 0.0}, temperature=0.1)
    assert sharp["a"] > w["a"] / (w["a"] + w["b"])


def test_ties_broken_by_anchor():
    members = {"a": np.array([1.0, 2.0]), "b": np.array([2.0, 1.0])}
    w = equal_weights(["a", "b"])
    anchor = np.array([90.0, 91.0])
    ref = EnsembleReference.fit(members, w, anchor)
    score = ref.score(members, w, anchor)
    assert score[1] > score[0]  # the anchor's order
    # one knot of the quantile map: the tied pair shares its anchor quantiles' mean (a tie, as the
    # members say), split by the anchor only at the 1e-6 level
    np.testing.assert_allclose(score, anchor.mean(), atol=1e-5)


def test_bounded_accuracy_is_strictly_increasing_onto_0_100_and_the_identity_inside():
    x = np.concatenate([[-1e9, -50.0, -1.0, 0.0], np.linspace(0.5, 99.5, 500), [100.0, 101.0, 150.0, 1e6, 1e12]])
    y = bounded_accuracy(x)
    assert np.all(np.diff(y) > 0) and np.all((y > 0) & (y < 100))
    inside = (x >= 2.0) & (x <= 98.0)
    np.testing.assert_array_equal(y[inside], x[inside])


def test_score_stays_below_100_when_the_anchor_extrapolates_and_keeps_the_order():
    """The anchor member predicts above 100 on architectures unlike its training data; the
    score keeps the ensemble's order but stays a valid accuracy."""
    rng = np.random.default_rng(0)
    anchor = np.concatenate([rng.uniform(85, 95, 20), [100.4, 101.0, 103.5]])
    members = {"a": anchor + rng.normal(0, 0.1, anchor.size), "b": rng.normal(0, 1, anchor.size)}
    w = equal_weights(("a", "b"))
    ref = EnsembleReference.fit(members, w, anchor)
    score = ref.score(members, w, anchor)
    assert score.max() < 100.0
    ens = ref.ensemble(members, w, anchor)
    assert np.array_equal(np.argsort(score, kind="stable"), np.argsort(ens, kind="stable"))


def test_a_reference_of_float_noise_has_no_scale():
    """Two copies of one network differ by float rounding: one knot, and no 1 / std of the noise
    (it mapped the scored set to 0.02 and 99.9)."""
    s = Standardizer.fit(np.array([88.20303651, 88.20303661]), "rank")
    assert s.xs.size == 1 and s.scale == 0.0
    np.testing.assert_array_equal(s.transform(np.array([70.0, 88.2, 95.0])), 0.0)


def test_near_tied_reference_values_are_one_knot():
    """Equivalent architectures get member values that differ by float rounding; as separate knots
    they made the rank standardiser and the quantile map nearly vertical, so a score jumped by up to
    0.005 points when its members moved by 1e-6 (the batch it was predicted in)."""
    rng = np.random.default_rng(0)
    v = rng.permutation(np.linspace(-3.0, 3.0, 200))  # distinct values, none within 1e-4 std
    s = Standardizer.fit(v, "rank")
    ranks = rankdata(v)  # well separated values: the ranks' z-scores, as before
    np.testing.assert_allclose(s.transform(v), (ranks - ranks.mean()) / ranks.std(), atol=1e-12)
    twins = np.r_[v, v[:50] + 1e-9]  # 50 values repeated up to rounding
    s2 = Standardizer.fit(twins, "rank")
    assert s2.xs.size == 200
    np.testing.assert_allclose(s2.transform(v[:50] + 5e-10), s2.transform(v[:50]), atol=1e-6)
    anchor = rng.normal(85, 2, size=twins.size)
    q = QuantileMap.fit(twins, anchor)
    assert q.xs.size == 200 and np.all(np.diff(q.xs) > 0)
    np.testing.assert_allclose(q(v[:50] + 5e-10), q(v[:50]), atol=1e-6)
    np.testing.assert_allclose(np.sort(q(twins)).mean(), anchor.mean(), atol=0.05)
