"""Fuzzy C-Means (Bezdek et al. 1984) as a scikit-learn estimator: the paper's Eqs. 2-4.

GENNAPE fits FCM centroids on the training family's CL embeddings, then weights the MLP
ensemble heads by each graph's memberships; unseen families get memberships from the fixed
centroids (Eq. 2), i.e. :meth:`FuzzyCMeans.predict_proba`.

* Eq. 2: ``U_ik = 1 / sum_j (d_ik^2 / d_ij^2)^(1 / (m - 1))`` (computed in log space, so
  ``m`` close to 1 neither overflows nor underflows).  A point lying exactly on one or more
  centroids (``d = 0``) gets membership 1 shared equally among those centroids, 0 elsewhere.
* Eq. 3: ``v_k = sum_i U_ik^m h_i / sum_i U_ik^m``.
* Eq. 4: stop when ``max_ij |U_ij(t + 1) - U_ij(t)| <= tol`` or after ``max_iter`` iterations.

Initialisation: k-means++ seeding (:func:`sklearn.cluster.kmeans_plusplus`) gives the first
centroids, then Eq. 2 gives the first memberships.  The objective
``J = sum_ik U_ik^m d_ik^2`` never increases across iterations (each step minimises J in one
block of variables), which ``objective_history_`` records.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted, validate_data

__all__ = ["FuzzyCMeans", "fcm_memberships", "squared_distances"]

STATE_FORMAT = "fuzzy-c-means/1"

_blas_controller = None


def _single_thread_blas():
    """Limit BLAS to one thread during the iterations (like scikit-learn's KMeans): the
    per-iteration products are small, and on a busy machine threaded BLAS only spin-waits."""
    global _blas_controller
    if _blas_controller is None:
        from threadpoolctl import ThreadpoolController

        _blas_controller = ThreadpoolController()
    return _blas_controller.limit(limits=1, user_api="blas")


def squared_distances(X: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances ``(n, C)``, clipped at 0 (exact 0 for identical rows)."""
    d2 = (X * X).sum(1)[:, None] - 2.0 * X @ centers.T + (centers * centers).sum(1)[None, :]
    np.maximum(d2, 0.0, out=d2)
    # the expansion above loses exactness for coincident points: recompute tiny entries directly
    tiny = d2 <= 1e-9 * (1.0 + (X * X).sum(1)[:, None])
    if tiny.any():
        rows, cols = np.nonzero(tiny)
        diff = X[rows] - centers[cols]
        d2[rows, cols] = (diff * diff).sum(1)
    return d2


def fcm_memberships(d2: np.ndarray, m: float) -> np.ndarray:
    """Eq. 2 from squared distances ``d2`` ``(n, C)``; rows sum to 1.

    Written as ``U_ik ∝ (d_ik^2)^(-1/(m-1))`` and evaluated with a log-sum-exp shift.  Rows
    with zero distances share their membership equally among the zero-distance centroids.
    """
    d2 = np.asarray(d2, dtype=np.float64)
    zero = d2 <= 0.0
    with np.errstate(divide="ignore"):
        logw = -np.log(d2) / (m - 1.0)
    logw[zero] = 0.0
    has_zero = zero.any(1)
    logw -= logw.max(1, keepdims=True)
    u = np.exp(logw)
    if has_zero.any():
        u[has_zero] = zero[has_zero].astype(np.float64)
    u /= u.sum(1, keepdims=True)
    return u


class FuzzyCMeans(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """Fuzzy C-Means clustering (paper Eqs. 2-4).

    Parameters
    ----------
    n_clusters : int, default 8
        Number of clusters C (one MLP head each in GENNAPE).
    m : float, default 2.0
        Fuzzification coefficient, must be > 1; as ``m -> 1`` FCM approaches k-means.
    max_iter : int, default 300
        Maximum number of alternating updates.
    tol : float, default 1e-9
        Eq. 4 threshold on the largest membership change (the paper's epsilon).
    random_state : int, RandomState or None
        Seeds the k-means++ initialisation.

    Attributes
    ----------
    cluster_centers_ : ndarray (C, n_features)
    membership_ : ndarray (n_samples, C), rows sum to 1 (the training memberships)
    labels_ : ndarray (n_samples,), ``argmax`` of ``membership_``
    n_iter_ : int, iterations run
    converged_ : bool, whether Eq. 4's tolerance was met (else a ``ConvergenceWarning`` was issued)
    objective_ : float, ``sum U^m d^2`` at the end
    objective_history_ : ndarray (n_iter_,), the objective after every iteration
    n_features_in_ : int
    """

    def __init__(self, n_clusters: int = 8, m: float = 2.0, max_iter: int = 300, tol: float = 1e-9,
                 random_state: Any = None):
        self.n_clusters = n_clusters
        self.m = m
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    # --- validation -----------------------------------------------------------------------
    def _check_params(self, n_samples: int) -> None:
        nc = self.n_clusters
        if isinstance(nc, bool) or not isinstance(nc, Integral) or nc < 1:
            raise ValueError(f"FuzzyCMeans: n_clusters must be a positive integer, got {nc!r}")
        if nc > n_samples:
            raise ValueError(f"FuzzyCMeans: n_clusters={nc} must be <= n_samples={n_samples}")
        if isinstance(self.m, bool) or not isinstance(self.m, Real) or not np.isfinite(self.m) or self.m <= 1:
            raise ValueError(f"FuzzyCMeans: the fuzzifier m must be a finite number > 1, got {self.m!r}")
        mi = self.max_iter
        if isinstance(mi, bool) or not isinstance(mi, Integral) or mi < 1:
            raise ValueError(f"FuzzyCMeans: max_iter must be a positive integer, got {mi!r}")
        if isinstance(self.tol, bool) or not isinstance(self.tol, Real) or not (self.tol >= 0):
            raise ValueError(f"FuzzyCMeans: tol must be a number >= 0, got {self.tol!r}")

    # --- core -----------------------------------------------------------------------------
    def _objective(self, u: np.ndarray, d2: np.ndarray) -> float:
        return float(((u ** self.m) * d2).sum())

    @staticmethod
    def _centers(X: np.ndarray, u: np.ndarray, m: float, previous: np.ndarray) -> np.ndarray:
        """Eq. 3; a cluster with zero total weight keeps its previous centre."""
        w = u ** m
        den = w.sum(0)
        centers = previous.copy()
        ok = den > 0
        num = w.T @ X
        centers[ok] = num[ok] / den[ok, None]
        return centers

    def _run(self, X: np.ndarray, rng: np.random.RandomState) -> tuple[np.ndarray, np.ndarray, list[float], bool]:
        from sklearn.cluster import kmeans_plusplus

        centers, _ = kmeans_plusplus(X, self.n_clusters, random_state=rng)
        centers = np.asarray(centers, dtype=np.float64)
        u = fcm_memberships(squared_distances(X, centers), self.m)
        history: list[float] = []
        converged = False
        for _ in range(self.max_iter):
            centers = self._centers(X, u, self.m, centers)  # Eq. 3
            d2 = squared_distances(X, centers)
            u_new = fcm_memberships(d2, self.m)  # Eq. 2
            delta = float(np.abs(u_new - u).max())
            u = u_new
            history.append(self._objective(u, d2))
            if delta <= self.tol:  # Eq. 4
                converged = True
                break
        if not converged:
            warnings.warn(f"FuzzyCMeans stopped at max_iter={self.max_iter} with the largest membership change "
                          f"{delta:.2g} > tol={self.tol:g}; raise max_iter or tol (data far from the origin lose "
                          "precision in the distances: centre it first)", ConvergenceWarning, stacklevel=3)
        return centers, u, history, converged

    def fit(self, X: Any, y: Any = None) -> FuzzyCMeans:
        """Fit centroids and memberships on ``X`` ``(n_samples, n_features)``; returns ``self``."""
        X = validate_data(self, X, dtype=np.float64, ensure_min_samples=1)
        self._check_params(X.shape[0])
        rng = check_random_state(self.random_state)
        with _single_thread_blas():
            centers, u, history, converged = self._run(X, rng)
        self.cluster_centers_ = centers
        self.membership_ = u
        self.labels_ = u.argmax(1)
        self.n_iter_ = len(history)
        self.converged_ = converged
        self.objective_ = history[-1]
        self.objective_history_ = np.asarray(history)
        return self

    # --- inference ------------------------------------------------------------------------
    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self, "cluster_centers_")
        return validate_data(self, X, dtype=np.float64, reset=False)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Memberships ``(n, C)`` of new points from the fixed centroids (Eq. 2)."""
        X = self._check_X(X)
        return fcm_memberships(squared_distances(X, self.cluster_centers_), self.m)

    def predict(self, X: Any) -> np.ndarray:
        """Hard labels: ``argmax`` of the memberships (= the nearest centroid)."""
        return self.predict_proba(X).argmax(1)

    def transform(self, X: Any) -> np.ndarray:
        """Euclidean distances ``(n, C)`` to the cluster centres."""
        X = self._check_X(X)
        return np.sqrt(squared_distances(X, self.cluster_centers_))

    @property
    def _n_features_out(self) -> int:
        return self.cluster_centers_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64"]
        return tags

    # --- serialisation --------------------------------------------------------------------
    def to_state(self, include_membership: bool = False) -> dict[str, Any]:
        """Plain dict of numpy arrays and Python scalars (no pickle) for safetensors / JSON.

        Holds the hyper-parameters, ``cluster_centers`` and the fit diagnostics; the training
        memberships only when ``include_membership`` (they are ``n x C``).
        """
        check_is_fitted(self, "cluster_centers_")
        rs = self.random_state
        state: dict[str, Any] = {
            "format": STATE_FORMAT,
            "n_clusters": int(self.n_clusters),
            "m": float(self.m),
            "max_iter": int(self.max_iter),
            "tol": float(self.tol),
            "random_state": int(rs) if isinstance(rs, Integral) and not isinstance(rs, bool) else None,
            "cluster_centers": np.array(self.cluster_centers_, dtype=np.float64),
            "n_iter": int(self.n_iter_),
            "objective": float(self.objective_),
            "objective_history": np.array(self.objective_history_, dtype=np.float64),
        }
        if include_membership:
            state["membership"] = np.array(self.membership_, dtype=np.float64)
        return state

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> FuzzyCMeans:
        """Rebuild a fitted estimator from :meth:`to_state` output (arrays may be lists, e.g.
        after JSON).  Raises :class:`ValueError` naming the missing or malformed field."""
        if not isinstance(state, dict):
            raise ValueError(f"FuzzyCMeans state must be a dict, got {type(state).__name__}")
        fmt = state.get("format", STATE_FORMAT)
        if fmt != STATE_FORMAT:
            raise ValueError(f"FuzzyCMeans state has format {fmt!r}; expected {STATE_FORMAT!r}")
        for key in ("m", "cluster_centers"):
            if key not in state:
                raise ValueError(f"FuzzyCMeans state is missing field {key!r}")
        try:
            centers = np.asarray(state["cluster_centers"], dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"FuzzyCMeans state field 'cluster_centers' is not numeric ({exc})") from None
        if centers.ndim != 2 or centers.shape[0] < 1 or centers.shape[1] < 1 or not np.isfinite(centers).all():
            raise ValueError("FuzzyCMeans state field 'cluster_centers' must be a finite (C, n_features) "
                             f"array, got shape {centers.shape}")
        n_clusters = int(state.get("n_clusters", centers.shape[0]))
        if n_clusters != centers.shape[0]:
            raise ValueError(f"FuzzyCMeans state says n_clusters={n_clusters} but 'cluster_centers' has "
                             f"{centers.shape[0]} rows")
        est = cls(n_clusters=n_clusters, m=float(state["m"]), max_iter=int(state.get("max_iter", 300)),
                  tol=float(state.get("tol", 1e-9)), random_state=state.get("random_state"))
        est._check_params(n_clusters)
        est.cluster_centers_ = centers
        est.n_features_in_ = centers.shape[1]
        est.n_iter_ = int(state.get("n_iter", 0))
        est.objective_ = float(state.get("objective", np.nan))
        est.objective_history_ = np.asarray(state.get("objective_history", []), dtype=np.float64)
        if "membership" in state:
            u = np.asarray(state["membership"], dtype=np.float64)
            if u.ndim != 2 or u.shape[1] != n_clusters:
                raise ValueError(f"FuzzyCMeans state field 'membership' must be (n, {n_clusters}), got {u.shape}")
            est.membership_ = u
            est.labels_ = u.argmax(1)
        return est
