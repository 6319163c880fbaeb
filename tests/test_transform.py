"""Tests for engine.model.transform (paper Eq. 5 and the plain Z-score)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.model.transform import (
    FlopsTransform,
    IdentityTransform,
    LabelTransform,
    min_acc_mask,
    transform_from_state,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    acc = rng.uniform(70, 95, 200)
    flops = rng.uniform(5e6, 3e9, 200)  # 5 MFLOPs .. 3 GFLOPs
    return acc, flops


def test_eq5_by_hand(data):
    acc, flops = data
    t = FlopsTransform().fit(acc, flops)
    r = acc / (np.log10(flops / 1e9 + 1) + 1)
    np.testing.assert_allclose(t.transform(acc, flops), (r - r.mean()) / r.std(), rtol=1e-12)
    assert t.mean_ == pytest.approx(r.mean()) and t.std_ == pytest.approx(r.std())
    # 9 GFLOPs -> factor log10(10) + 1 = 2
    assert (t.transform(80.0, 9e9) * t.std_ + t.mean_) == pytest.approx(40.0)


@pytest.mark.parametrize("cls", [FlopsTransform, IdentityTransform])
def test_zscore_on_fitted_data_and_round_trip(cls, data):
    acc, flops = data
    t = cls().fit(acc, flops)
    y = t.transform(acc, flops)
    assert y.mean() == pytest.approx(0.0, abs=1e-12)
    assert y.std() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(t.inverse(y, flops), acc, atol=1e-9, rtol=0)


@given(st.floats(0, 100), st.floats(0, 1e12), st.floats(-5, 5))
def test_exact_inverse_property(acc, flops, y):
    t = FlopsTransform().fit([80.0, 90.0, 95.0], [1e8, 5e8, 2e9])
    assert float(t.inverse(t.transform(acc, flops), flops)) == pytest.approx(acc, abs=1e-9)
    assert float(t.transform(t.inverse(y, flops), flops)) == pytest.approx(y, abs=1e-9)


def test_identity_ignores_flops(data):
    acc, _ = data
    t = IdentityTransform().fit(acc)
    np.testing.assert_allclose(t.transform(acc), (acc - acc.mean()) / acc.std())
    np.testing.assert_allclose(t.transform(acc, flops=123.0), t.transform(acc))


def test_monotonic_in_acc_at_fixed_flops(data):
    acc, flops = data
    t = FlopsTransform().fit(acc, flops)
    grid = np.linspace(0, 100, 101)
    for f in (0.0, 1e6, 1e9, 1e11):
        assert np.all(np.diff(t.transform(grid, np.full_like(grid, f))) > 0)
    # at fixed accuracy more FLOPs -> lower label (cheaper nets are rewarded)
    assert t.transform(90.0, 1e8) > t.transform(90.0, 1e10)


def test_min_acc_pruning(data):
    acc, flops = data
    keep = min_acc_mask(acc, 80.0)
    assert keep.sum() == (acc >= 80).sum() and min_acc_mask(acc, None).all()
    t = FlopsTransform().fit(acc, flops, min_acc=80.0)
    y = t.transform(acc[keep], flops[keep])
    assert y.mean() == pytest.approx(0.0, abs=1e-12) and y.std() == pytest.approx(1.0)
    assert t.n_fit_ == keep.sum() and t.min_acc == 80.0
    # pruned archs are still transformable
    assert np.isfinite(t.transform(acc, flops)).all()


def test_shapes_and_scalars(data):
    acc, flops = data
    t = FlopsTransform().fit(acc, flops)
    assert np.ndim(t.transform(90.0, 1e9)) == 0
    assert t.transform(acc[:5], flops[:5]).shape == (5,)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda t: t.fit([80, 90], [1e9, -1.0]), r"flops\[1\] = -1.0 is below 0"),
        (lambda t: t.fit([80, np.nan], [1e9, 1e9]), "acc has 1 non-finite value"),
        (lambda t: t.fit([80, 90], [1e9, np.nan]), "flops has 1 non-finite"),
        (lambda t: t.fit([80, 190], [1e9, 1e9]), r"acc\[1\] = 190.0 is above 100"),
        (lambda t: t.fit([80, 90], [1e9, 1e9, 1e9]), "flops has 3 values but"),
        (lambda t: t.fit([80, 90], None), "needs flops"),
        (lambda t: t.fit([80], [1e9]), "at least 2 archs"),
        (lambda t: t.fit([0.8, 0.9], [1e9, 2e9]), "looks like fractions"),
        (lambda t: t.fit([80, 80], [1e9, 1e9]), "ratios are equal"),
        (lambda t: t.fit([70, 75, 90], [1e9, 1e9, 1e9], min_acc=80), "after pruning acc < 80"),
        (lambda t: t.transform([80.0], [1e9]), "not fitted"),
    ],
)
def test_clear_errors(call, message):
    with pytest.raises(ValueError, match=message):
        call(FlopsTransform())


def test_state_round_trip(data):
    acc, flops = data
    for t in (FlopsTransform().fit(acc, flops, min_acc=75), IdentityTransform().fit(acc)):
        state = json.loads(json.dumps(t.to_state()))
        for back in (transform_from_state(state), LabelTransform.from_state(state), type(t).from_state(state)):
            assert type(back) is type(t)
            np.testing.assert_array_equal(back.transform(acc, flops), t.transform(acc, flops))
            assert back.min_acc == t.min_acc and back.n_fit_ == t.n_fit_
    with pytest.raises(ValueError, match="unknown kind"):
        transform_from_state({"kind": "log", "mean": 0, "std": 1})
    with pytest.raises(ValueError, match="expects 'flops'"):
        FlopsTransform.from_state({"kind": "identity", "mean": 0, "std": 1})
    with pytest.raises(ValueError, match="std > 0"):
        transform_from_state({"kind": "flops", "mean": 0, "std": 0})
    with pytest.raises(ValueError, match="missing field 'std'"):
        transform_from_state({"kind": "flops", "mean": 0})
