"""Tests for engine.model.clustering.FuzzyCMeans (paper Eqs. 2-4)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from engine.model.clustering import FuzzyCMeans, fcm_memberships


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=150, centers=[[0, 0], [10, 0], [0, 10]], cluster_std=0.8, random_state=1)
    return X, y


@pytest.fixture(scope="module")
def fitted(blobs):
    X, _ = blobs
    return FuzzyCMeans(n_clusters=3, random_state=0).fit(X)


def eq2_literal(X, centers, m):
    """Eq. 2 written out with loops over samples and clusters."""
    n, c = len(X), len(centers)
    u = np.zeros((n, c))
    for i in range(n):
        d = [np.linalg.norm(X[i] - centers[j]) for j in range(c)]
        for k in range(c):
            u[i, k] = 1.0 / sum((d[k] ** 2 / d[j] ** 2) ** (1.0 / (m - 1)) for j in range(c))
    return u


# sklearn's own estimator checks (all 50 applicable checks pass; the array-API one skips itself
# unless SCIPY_ARRAY_API is set).
@parametrize_with_checks([FuzzyCMeans(n_clusters=3, random_state=0)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


def test_memberships_on_simplex(fitted, blobs):
    X, _ = blobs
    for u in (fitted.membership_, fitted.predict_proba(X[:7] + 0.3)):
        assert np.all(u >= 0) and np.all(u <= 1)
        np.testing.assert_allclose(u.sum(1), 1.0, atol=1e-12)
    assert fitted.membership_.shape == (150, 3)
    assert fitted.cluster_centers_.shape == (3, 2)


def test_predict_is_argmax(fitted, blobs):
    X, _ = blobs
    np.testing.assert_array_equal(fitted.predict(X), fitted.predict_proba(X).argmax(1))
    np.testing.assert_array_equal(fitted.predict(X), fitted.labels_)
    np.testing.assert_array_equal(FuzzyCMeans(n_clusters=3, random_state=0).fit_predict(X), fitted.labels_)


def test_objective_non_increasing_and_converged(fitted):
    h = fitted.objective_history_
    assert len(h) == fitted.n_iter_ >= 1
    assert np.all(np.diff(h) <= 1e-10 * h[:-1])
    assert fitted.objective_ == pytest.approx(h[-1])
    assert fitted.n_iter_ < fitted.max_iter  # converged to tol=1e-9 on easy blobs


def test_objective_definition(fitted, blobs):
    X, _ = blobs
    d2 = fitted.transform(X) ** 2
    assert fitted.objective_ == pytest.approx(((fitted.membership_ ** fitted.m) * d2).sum(), rel=1e-9)


def test_new_points_follow_eq2(fitted, blobs):
    rng = np.random.default_rng(0)
    Z = rng.normal(3, 4, size=(20, 2))
    np.testing.assert_allclose(fitted.predict_proba(Z), eq2_literal(Z, fitted.cluster_centers_, 2.0), atol=1e-12)
    m3 = FuzzyCMeans(n_clusters=3, m=3.0, random_state=0).fit(blobs[0])
    np.testing.assert_allclose(m3.predict_proba(Z), eq2_literal(Z, m3.cluster_centers_, 3.0), atol=1e-12)


def test_transform_is_distances(fitted, blobs):
    X, _ = blobs
    want = np.linalg.norm(X[:, None, :] - fitted.cluster_centers_[None], axis=2)
    np.testing.assert_allclose(fitted.transform(X), want, atol=1e-9)
    assert list(fitted.get_feature_names_out()) == ["fuzzycmeans0", "fuzzycmeans1", "fuzzycmeans2"]


def test_permuting_samples_permutes_memberships(fitted, blobs):
    X, _ = blobs
    perm = np.random.default_rng(1).permutation(len(X))
    np.testing.assert_allclose(fitted.predict_proba(X[perm]), fitted.predict_proba(X)[perm], atol=1e-15)


def test_recovers_blobs(fitted, blobs):
    X, y = blobs
    assert adjusted_rand_score(y, fitted.labels_) == 1.0
    for true_centre in ([0, 0], [10, 0], [0, 10]):
        assert np.min(np.linalg.norm(fitted.cluster_centers_ - true_centre, axis=1)) < 0.5
    # confident memberships for points near the centres
    assert np.median(fitted.membership_.max(1)) > 0.95


def test_small_m_approaches_kmeans():
    X, _ = make_blobs(n_samples=300, centers=4, cluster_std=2.5, random_state=3)
    fcm = FuzzyCMeans(n_clusters=4, m=1.05, random_state=0).fit(X)
    assert np.isfinite(fcm.membership_).all()
    assert np.median(fcm.membership_.max(1)) > 0.99  # nearly crisp
    # from FCM's centres, k-means does not move: FCM with m -> 1 sits at a k-means fixed point
    km_from_fcm = KMeans(n_clusters=4, init=fcm.cluster_centers_, n_init=1).fit(X)
    assert adjusted_rand_score(km_from_fcm.labels_, fcm.labels_) > 0.98
    km = KMeans(n_clusters=4, n_init=10, random_state=0).fit(X)
    assert adjusted_rand_score(km.labels_, fcm.labels_) > 0.95


def test_point_on_a_centroid_gives_one_hot():
    d2 = np.array([[0.0, 4.0, 9.0], [0.0, 0.0, 1.0], [1e-300, 1.0, 1.0]])
    u = fcm_memberships(d2, 2.0)
    assert np.isfinite(u).all()
    np.testing.assert_allclose(u[0], [1, 0, 0])
    np.testing.assert_allclose(u[1], [0.5, 0.5, 0])  # two coincident centroids share
    np.testing.assert_allclose(u[2], [1, 0, 0], atol=1e-12)
    # duplicate samples: fit and predict stay finite
    X = np.array([[0.0, 0.0]] * 5 + [[1.0, 1.0]] * 5)
    est = FuzzyCMeans(n_clusters=2, random_state=0).fit(X)
    assert np.isfinite(est.membership_).all()
    np.testing.assert_allclose(est.predict_proba(est.cluster_centers_), np.eye(2), atol=1e-12)


def test_extreme_fuzzifier_is_stable():
    d2 = np.array([[1e-8, 1e8, 2.0], [3.0, 3.0 + 1e-9, 4.0]])
    for m in (1.001, 1.05, 50.0):
        u = fcm_memberships(d2, m)
        assert np.isfinite(u).all()
        np.testing.assert_allclose(u.sum(1), 1.0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"m": 1.0}, "m must be a finite number > 1"),
        ({"m": float("nan")}, "m must be a finite number > 1"),
        ({"n_clusters": 0}, "n_clusters must be a positive integer"),
        ({"n_clusters": 2.5}, "n_clusters must be a positive integer"),
        ({"n_clusters": 20}, "n_clusters=20 must be <= n_samples=10"),
        ({"max_iter": 0}, "max_iter must be a positive integer"),
        ({"tol": -1.0}, "tol must be a number >= 0"),
    ],
)
def test_bad_params_raise(params, message):
    X = np.random.default_rng(0).normal(size=(10, 2))
    with pytest.raises(ValueError, match=message):
        FuzzyCMeans(**{"n_clusters": 2, **params}).fit(X)


def test_bad_inputs_raise(fitted):
    with pytest.raises(ValueError, match="NaN"):
        FuzzyCMeans(n_clusters=2).fit(np.array([[0.0, np.nan], [1.0, 1.0], [2.0, 2.0]]))
    with pytest.raises(ValueError, match="features"):
        fitted.predict_proba(np.zeros((3, 5)))


def test_reproducible_with_seed(blobs):
    X, _ = blobs
    a = FuzzyCMeans(n_clusters=3, random_state=7).fit(X)
    b = FuzzyCMeans(n_clusters=3, random_state=7).fit(X)
    np.testing.assert_array_equal(a.cluster_centers_, b.cluster_centers_)


def test_max_iter_is_respected(blobs):
    est = FuzzyCMeans(n_clusters=3, max_iter=2, tol=0.0, random_state=0).fit(blobs[0])
    assert est.n_iter_ == 2 and len(est.objective_history_) == 2


def test_state_round_trip_through_json(fitted, blobs):
    X, _ = blobs
    state = fitted.to_state(include_membership=True)
    assert all(isinstance(v, (np.ndarray, int, float, str, type(None))) for v in state.values())
    as_json = json.loads(json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v for k, v in state.items()}))
    for s in (state, as_json):
        back = FuzzyCMeans.from_state(s)
        np.testing.assert_allclose(back.predict_proba(X), fitted.predict_proba(X), atol=1e-15)
        np.testing.assert_array_equal(back.labels_, fitted.labels_)
        assert back.get_params() == fitted.get_params()
        assert back.n_iter_ == fitted.n_iter_ and back.objective_ == pytest.approx(fitted.objective_)
    assert "membership" not in fitted.to_state()


def test_from_state_errors(fitted):
    good = fitted.to_state()
    with pytest.raises(ValueError, match="missing field 'cluster_centers'"):
        FuzzyCMeans.from_state({k: v for k, v in good.items() if k != "cluster_centers"})
    with pytest.raises(ValueError, match="n_clusters=5"):
        FuzzyCMeans.from_state({**good, "n_clusters": 5})
    with pytest.raises(ValueError, match="finite"):
        FuzzyCMeans.from_state({**good, "cluster_centers": [[np.nan, 0.0]] * 3})
    with pytest.raises(ValueError, match="format"):
        FuzzyCMeans.from_state({**good, "format": "something-else"})
    with pytest.raises(ValueError, match="m must be"):
        FuzzyCMeans.from_state({**good, "m": 0.5})


def test_stopping_at_max_iter_warns_and_says_so():
    from sklearn.exceptions import ConvergenceWarning

    X = np.random.default_rng(0).normal(size=(60, 3))
    with pytest.warns(ConvergenceWarning, match="stopped at max_iter=1"):
        short = FuzzyCMeans(n_clusters=3, max_iter=1, random_state=0).fit(X)
    assert short.n_iter_ == 1 and short.converged_ is False
    full = FuzzyCMeans(n_clusters=3, random_state=0).fit(X)
    assert full.converged_ is True and full.n_iter_ < full.max_iter
