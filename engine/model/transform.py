"""Label transforms: the paper's Eq. 5 (FLOPs-normalised Z-score) and a plain Z-score.

Eq. 5: ``y = Z(A / (log10(F + 1) + 1))`` with ``A`` the accuracy and ``F`` the FLOPs in
**GFLOPs**.  Here ``A`` is in percent (the project's label unit) and ``flops`` is passed in
FLOPs (``CG.flops``), converted with ``F = flops / 1e9``.  ``Z`` uses the mean and the
population standard deviation (``ddof=0``) of the ratio over the fitting set (the paper: the
NB-101 training split, pruned of archs below 80 %; see ``min_acc``), so the transformed
fitting labels have mean 0 and standard deviation 1 exactly.

``inverse(y, flops)`` is the exact inverse, used to turn a prediction back into an accuracy.
:class:`IdentityTransform` has the same API but ignores FLOPs (the CL and CL+FCM variants).
Both serialise to a small dict of floats (:meth:`to_state` / :func:`transform_from_state`).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

__all__ = ["LabelTransform", "FlopsTransform", "IdentityTransform", "min_acc_mask", "transform_from_state"]


def _vector(x: Any, name: str, *, min_value: float | None = None, max_value: float | None = None) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numbers ({exc})") from None
    if arr.ndim > 1:
        raise ValueError(f"{name} must be a scalar or 1-D, got shape {arr.shape}")
    flat = np.atleast_1d(arr)
    bad = np.flatnonzero(~np.isfinite(flat))
    if bad.size:
        raise ValueError(f"{name} has {bad.size} non-finite value(s), first at index {bad[0]} ({flat[bad[0]]})")
    if min_value is not None:
        low = np.flatnonzero(flat < min_value)
        if low.size:
            raise ValueError(f"{name}[{low[0]}] = {flat[low[0]]} is below {min_value} ({low.size} such value(s))")
    if max_value is not None:
        high = np.flatnonzero(flat > max_value)
        if high.size:
            raise ValueError(f"{name}[{high[0]}] = {flat[high[0]]} is above {max_value} ({high.size} such value(s))")
    return arr


def _flops_factor(flops: Any, n_expected: int | None = None) -> np.ndarray:
    """``log10(GFLOPs + 1) + 1`` (>= 1) from FLOPs."""
    f = _vector(flops, "flops", min_value=0.0)
    if n_expected is not None and f.ndim == 1 and f.size != n_expected:
        raise ValueError(f"flops has {f.size} values but the accuracies/labels have {n_expected}")
    return np.log10(f / 1e9 + 1.0) + 1.0


def min_acc_mask(acc: Any, min_acc: float | None) -> np.ndarray:
    """Boolean mask of the archs kept by the paper's pruning (``acc >= min_acc``; all when None)."""
    a = np.atleast_1d(_vector(acc, "acc"))
    if min_acc is None:
        return np.ones(a.shape, dtype=bool)
    return a >= float(min_acc)


def _size(x: np.ndarray) -> int | None:
    return None if x.ndim == 0 else x.size


class LabelTransform:
    """Base class: ``y = (r - mean) / std`` with a transform-specific ratio ``r(acc, flops)``."""

    kind: ClassVar[str] = "base"

    def __init__(self) -> None:
        self.mean_: float | None = None
        self.std_: float | None = None
        self.n_fit_: int = 0
        self.min_acc: float | None = None

    # subclasses define the ratio and its inverse
    def _ratio(self, acc: np.ndarray, flops: Any) -> np.ndarray:
        raise NotImplementedError

    def _unratio(self, r: np.ndarray, flops: Any) -> np.ndarray:
        raise NotImplementedError

    @property
    def is_fitted(self) -> bool:
        return self.mean_ is not None

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise ValueError(f"{type(self).__name__} is not fitted: call fit(acc, flops) or load a state first")

    def fit(self, acc: Any, flops: Any = None, min_acc: float | None = None) -> LabelTransform:
        """Store mean/std of the ratio over the archs with ``acc >= min_acc`` (all when None).

        ``acc`` in percent (values in [0, 100], not all <= 1, which would look like fractions),
        ``flops`` in FLOPs.  Needs at least two kept archs with different ratios (else the
        Z-score is undefined).
        """
        a = np.atleast_1d(_vector(acc, "acc", min_value=0.0, max_value=100.0))
        if a.size and a.max() <= 1.0:
            raise ValueError(f"{type(self).__name__}.fit: every accuracy is <= 1, which looks like fractions; "
                             "pass accuracies in percent (multiply by 100)")
        keep = min_acc_mask(a, min_acc)
        r = np.atleast_1d(self._ratio(a, flops))[keep]
        if r.size < 2:
            raise ValueError(f"{type(self).__name__}.fit needs at least 2 archs, got {r.size}"
                             + (f" after pruning acc < {min_acc}" if min_acc is not None else ""))
        std = float(r.std())
        if not std > 0:
            raise ValueError(f"{type(self).__name__}.fit: all {r.size} ratios are equal; the Z-score is undefined")
        self.mean_, self.std_ = float(r.mean()), std
        self.n_fit_ = int(r.size)
        self.min_acc = None if min_acc is None else float(min_acc)
        return self

    def transform(self, acc: Any, flops: Any = None) -> np.ndarray:
        """Accuracy (percent) -> label ``y``; returns an array shaped like ``acc``.  Any finite
        accuracy is accepted (so ``transform(inverse(y))`` round-trips)."""
        self._check_fitted()
        a = _vector(acc, "acc")
        return (self._ratio(a, flops) - self.mean_) / self.std_

    def inverse(self, y: Any, flops: Any = None) -> np.ndarray:
        """Label / prediction ``y`` -> accuracy (percent); the exact inverse of :meth:`transform`
        (not clipped, so a prediction may map outside [0, 100])."""
        self._check_fitted()
        yy = _vector(y, "y")
        return self._unratio(yy * self.std_ + self.mean_, flops)

    def fit_transform(self, acc: Any, flops: Any = None, min_acc: float | None = None) -> np.ndarray:
        return self.fit(acc, flops, min_acc=min_acc).transform(acc, flops)

    # --- serialisation --------------------------------------------------------------------
    def to_state(self) -> dict[str, Any]:
        """``{"kind", "mean", "std", "n_fit", "min_acc"}`` (floats / ints / None; JSON-safe)."""
        self._check_fitted()
        return {"kind": self.kind, "mean": self.mean_, "std": self.std_, "n_fit": self.n_fit_,
                "min_acc": self.min_acc}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> LabelTransform:
        if not isinstance(state, dict):
            raise ValueError(f"transform state must be a dict, got {type(state).__name__}")
        kind = state.get("kind", cls.kind)
        if cls is LabelTransform:
            return transform_from_state(state)
        if kind != cls.kind:
            raise ValueError(f"transform state has kind {kind!r}; {cls.__name__} expects {cls.kind!r}")
        try:
            mean, std = float(state["mean"]), float(state["std"])
        except KeyError as exc:
            raise ValueError(f"transform state is missing field {exc.args[0]!r}") from None
        except (TypeError, ValueError):
            raise ValueError(f"transform state fields 'mean'/'std' must be numbers, got {state.get('mean')!r}, "
                             f"{state.get('std')!r}") from None
        if not (math.isfinite(mean) and math.isfinite(std) and std > 0):
            raise ValueError(f"transform state needs finite mean and std > 0, got mean={mean}, std={std}")
        out = cls()
        out.mean_, out.std_ = mean, std
        out.n_fit_ = int(state.get("n_fit", 0))
        min_acc = state.get("min_acc")
        out.min_acc = None if min_acc is None else float(min_acc)
        return out

    def __repr__(self) -> str:
        if not self.is_fitted:
            return f"{type(self).__name__}(unfitted)"
        return f"{type(self).__name__}(mean={self.mean_:.6g}, std={self.std_:.6g}, n_fit={self.n_fit_})"


class FlopsTransform(LabelTransform):
    """Eq. 5: ``y = Z(A / (log10(GFLOPs + 1) + 1))``; ``flops`` (in FLOPs) is required."""

    kind = "flops"

    def _ratio(self, acc: np.ndarray, flops: Any) -> np.ndarray:
        if flops is None:
            raise ValueError("FlopsTransform needs flops (in FLOPs) for every accuracy")
        return acc / _flops_factor(flops, _size(np.asarray(acc)))

    def _unratio(self, r: np.ndarray, flops: Any) -> np.ndarray:
        if flops is None:
            raise ValueError("FlopsTransform.inverse needs the flops (in FLOPs) of every prediction")
        return r * _flops_factor(flops, _size(np.asarray(r)))


class IdentityTransform(LabelTransform):
    """Z-score of the accuracy alone (``flops`` accepted and ignored)."""

    kind = "identity"

    def _ratio(self, acc: np.ndarray, flops: Any) -> np.ndarray:
        return np.array(acc, dtype=np.float64)

    def _unratio(self, r: np.ndarray, flops: Any) -> np.ndarray:
        return np.array(r, dtype=np.float64)


_KINDS: dict[str, type[LabelTransform]] = {"flops": FlopsTransform, "identity": IdentityTransform}


def transform_from_state(state: dict[str, Any]) -> LabelTransform:
    """Rebuild a :class:`FlopsTransform` or :class:`IdentityTransform` from its ``to_state()``."""
    if not isinstance(state, dict):
        raise ValueError(f"transform state must be a dict, got {type(state).__name__}")
    kind = state.get("kind")
    if kind not in _KINDS:
        raise ValueError(f"transform state has unknown kind {kind!r}; expected one of {sorted(_KINDS)}")
    return _KINDS[kind].from_state(state)
