"""Laplacian spectra of computation graphs and the contrastive soft-positive weights.

The paper (Eq. 1) weights the contrastive pairs of graph ``i`` by ``alpha^(i)``, built from
the spectral distance ``sigma(g1, g2)``: the Euclidean distance between the ``q = 21``
smallest eigenvalues of the **normalised Laplacian** of the underlying undirected graph
(Dwivedi & Bresson 2021).

Normalised Laplacian
    ``L = I - D^-1/2 A D^-1/2`` with ``A`` the symmetric 0/1 adjacency of the undirected
    graph (edge directions dropped, duplicates and self loops ignored).  An isolated node has
    ``L_vv = 0`` (Chung's convention), so every connected component contributes one
    eigenvalue 0.  All eigenvalues lie in [0, 2]; returned values are clipped to that range.

Padding (graphs with fewer than ``q`` nodes)
    The missing entries are filled with :data:`PAD_VALUE` ``= 1.0``.  Reasons: 1 is the mean
    eigenvalue of every normalised Laplacian without isolated nodes (``trace L = n``), the
    centre of the admissible range [0, 2] (so the padding is never more than 1 away from a real
    eigenvalue) and the bulk value of large sparse graphs' spectra.  Padding with 0 would claim
    extra connected components and padding with 2 extra bipartite components, both strong false
    statements about the structure.  ``return_count=True`` also returns how many entries are
    real eigenvalues.  (Real CGs have far more than 21 nodes, so padding is rare.)

Solvers
    Dense ``numpy.linalg.eigvalsh`` up to :data:`DENSE_MAX_NODES` nodes; above that sparse
    shift-invert Lanczos (``scipy.sparse.linalg.eigsh`` around ``sigma < 0`` with a large
    Krylov space, which also recovers repeated eigenvalues of symmetric branch structures), with
    the dense solver as the fallback.  BLAS runs single-threaded here: for these small matrices
    threads only contend on a busy machine.

Soft-positive weights
    :func:`soft_positive_weights` computes ``alpha^(i)_l = softmax_{l != i}(-sigma(i, l) / tau_s)``.
    The paper literally writes "the softmax of sigma", which would give the *most dissimilar*
    graphs the most weight as positives; a distance must enter with a minus sign for similar
    graphs to count as the stronger positives, so we use ``-sigma``.  With the CL batch built
    as two dropout views of each CG, the other view of the same CG has distance 0 and gets the
    largest weight.

Caching: :func:`spectrum_cached` keeps spectra in a bounded in-memory LRU keyed by
``(cg.content_hash(), q)``, optionally backed by ``.npz`` files under
``engine.paths.cache_dir() / "spectra"``.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "PAD_VALUE", "DEFAULT_Q", "DENSE_MAX_NODES", "normalized_laplacian", "laplacian_spectrum",
    "laplacian_spectrum_from_edges", "spectral_distance", "pairwise_spectral_distances",
    "soft_positive_weights", "spectrum_cached", "spectra", "clear_spectrum_cache", "spectrum_cache_info",
]

DEFAULT_Q = 21
PAD_VALUE = 1.0
DENSE_MAX_NODES = 400
_CACHE_VERSION = "v1"


# ---------------------------------------------------------------------------------------------
# BLAS threads
# ---------------------------------------------------------------------------------------------

_controller = None
_controller_lock = threading.Lock()


def _single_thread_blas():
    """Context manager limiting BLAS to one thread (a no-op if threadpoolctl is unavailable)."""
    global _controller
    try:
        if _controller is None:
            with _controller_lock:
                if _controller is None:
                    from threadpoolctl import ThreadpoolController

                    _controller = ThreadpoolController()
        return _controller.limit(limits=1, user_api="blas")
    except Exception:  # pragma: no cover - threadpoolctl is a scikit-learn dependency
        return nullcontext()


# ---------------------------------------------------------------------------------------------
# Laplacian and spectrum
# ---------------------------------------------------------------------------------------------

def _check_q(q: Any) -> int:
    if isinstance(q, bool) or not isinstance(q, int | np.integer) or q < 1:
        raise ValueError(f"q (the number of eigenvalues) must be a positive integer, got {q!r}")
    return int(q)


def _undirected_edges(n: int, edges: Any) -> tuple[np.ndarray, np.ndarray]:
    """Unique undirected edges ``u < v`` as two index arrays (self loops dropped)."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"the graph needs at least one node, got n={n!r}")
    e = np.asarray(list(edges) if not isinstance(edges, np.ndarray) else edges, dtype=np.int64)
    if e.size == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if e.ndim != 2 or e.shape[1] != 2:
        raise ValueError(f"edges must be (u, v) pairs, got an array of shape {e.shape}")
    bad = np.flatnonzero((e < 0).any(1) | (e >= n).any(1))
    if bad.size:
        raise ValueError(f"edge {bad[0]} {tuple(e[bad[0]])} points to a node outside 0..{n - 1}")
    lo, hi = np.minimum(e[:, 0], e[:, 1]), np.maximum(e[:, 0], e[:, 1])
    keep = lo != hi
    key = np.unique(lo[keep] * n + hi[keep])
    return key // n, key % n


def normalized_laplacian(n: int, edges: Any, sparse: bool = False):
    """``I - D^-1/2 A D^-1/2`` of the undirected graph (dense ``ndarray`` or scipy CSC)."""
    u, v = _undirected_edges(n, edges)
    deg = np.bincount(np.concatenate([u, v]), minlength=n).astype(np.float64)
    with np.errstate(divide="ignore"):
        inv_sqrt = np.where(deg > 0, 1.0 / np.sqrt(deg), 0.0)
    w = -inv_sqrt[u] * inv_sqrt[v]
    diag = (deg > 0).astype(np.float64)
    if sparse:
        import scipy.sparse as sp

        rows = np.concatenate([u, v, np.arange(n)])
        cols = np.concatenate([v, u, np.arange(n)])
        vals = np.concatenate([w, w, diag])
        return sp.csc_matrix((vals, (rows, cols)), shape=(n, n))
    lap = np.diag(diag)
    lap[u, v] = w
    lap[v, u] = w
    return lap


def _smallest_sparse(n: int, edges: Any, k: int) -> np.ndarray:
    from scipy.sparse.linalg import eigsh

    lap = normalized_laplacian(n, edges, sparse=True)
    v0 = np.full(n, 1.0 / np.sqrt(n)) + 1e-2 * np.random.default_rng(0).standard_normal(n)
    ncv = min(n - 1, max(64, 3 * k + 1))
    try:
        vals = eigsh(lap, k=k, sigma=-1e-2, which="LM", ncv=ncv, v0=v0, return_eigenvectors=False)
        vals = np.sort(vals)
        if vals[0] < 1e-8:  # every graph has the eigenvalue 0; anything else means a failed solve
            return vals
    except Exception:  # ARPACK no-convergence or a singular factorisation: use the dense solver
        pass
    return np.linalg.eigvalsh(lap.toarray())[:k]


def laplacian_spectrum_from_edges(n: int, edges: Any, q: int = DEFAULT_Q,
                                  return_count: bool = False) -> np.ndarray | tuple[np.ndarray, int]:
    """The ``q`` smallest normalised-Laplacian eigenvalues (ascending) of an ``n``-node graph.

    Fewer than ``q`` nodes: padded with :data:`PAD_VALUE`; ``return_count=True`` returns
    ``(spectrum, n_real)`` with ``n_real = min(n, q)``.
    """
    q = _check_q(q)
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise ValueError(f"the graph needs at least one node, got n={n!r}")
    n = int(n)
    k = min(n, q)
    with _single_thread_blas():
        if n > DENSE_MAX_NODES and k < n - 1:
            vals = _smallest_sparse(n, edges, k)
        else:
            vals = np.linalg.eigvalsh(normalized_laplacian(n, edges))[:k]
    out = np.full(q, PAD_VALUE, dtype=np.float64)
    out[:k] = np.clip(vals, 0.0, 2.0)
    return (out, k) if return_count else out


def laplacian_spectrum(cg, q: int = DEFAULT_Q, return_count: bool = False) -> np.ndarray | tuple[np.ndarray, int]:
    """The ``q`` smallest normalised-Laplacian eigenvalues of a :class:`~engine.graphs.cg.CG`'s
    underlying undirected graph (see the module docstring for padding and conventions)."""
    nodes = getattr(cg, "nodes", None)
    edges = getattr(cg, "edges", None)
    if nodes is None or edges is None:
        raise ValueError(f"laplacian_spectrum expects a CG (with .nodes and .edges), got {type(cg).__name__}")
    return laplacian_spectrum_from_edges(len(nodes), edges, q=q, return_count=return_count)


# ---------------------------------------------------------------------------------------------
# distances and weights
# ---------------------------------------------------------------------------------------------

def spectral_distance(s1: Any, s2: Any) -> float:
    """Euclidean distance between two spectra of equal length (the paper's ``sigma``)."""
    a, b = np.asarray(s1, dtype=np.float64), np.asarray(s2, dtype=np.float64)
    if a.ndim != 1 or a.shape != b.shape:
        raise ValueError(f"spectra must be 1-D of equal length, got shapes {a.shape} and {b.shape}")
    return float(np.linalg.norm(a - b))


def _is_torch(x: Any) -> bool:
    return type(x).__module__.split(".")[0] == "torch"


def pairwise_spectral_distances(spectra_: Any) -> np.ndarray:
    """``(N, N)`` Euclidean distances between the rows of ``spectra_`` ``(N, q)``."""
    s = np.asarray(spectra_, dtype=np.float64)
    if s.ndim != 2:
        raise ValueError(f"spectra must be an (N, q) array, got shape {s.shape}")
    sq = (s * s).sum(1)
    d2 = sq[:, None] + sq[None, :] - 2.0 * s @ s.T
    np.maximum(d2, 0.0, out=d2)
    np.fill_diagonal(d2, 0.0)
    return np.sqrt(d2)


def soft_positive_weights(spectra_: Any, tau_s: float = 0.1):
    """Contrastive soft-positive weights ``(N, N)`` from spectra ``(N, q)``.

    ``alpha[i, l] = exp(-sigma(i, l) / tau_s) / sum_{r != i} exp(-sigma(i, r) / tau_s)`` for
    ``l != i``, and 0 on the diagonal; each row sums to 1 and closer spectra get larger
    weights (note the minus sign; see the module docstring).  ``tau_s`` sets the sharpness:
    spectral distances between CGs are typically 0.01 - 1, so the default 0.1 separates
    near-identical topologies from different ones while keeping every weight positive.  A
    ``torch.Tensor`` input gives a tensor on the same device (no gradient is needed through it).
    Needs ``N >= 2``.
    """
    if not (isinstance(tau_s, int | float) and np.isfinite(tau_s) and tau_s > 0):
        raise ValueError(f"tau_s must be a finite number > 0, got {tau_s!r}")
    if _is_torch(spectra_):
        import torch

        s = spectra_.detach().to(torch.float64)
        if s.ndim != 2 or s.shape[0] < 2:
            raise ValueError(f"soft_positive_weights needs an (N >= 2, q) tensor, got shape {tuple(s.shape)}")
        logits = -torch.cdist(s, s) / tau_s
        logits.fill_diagonal_(float("-inf"))
        return torch.softmax(logits, dim=1).to(spectra_.dtype if spectra_.is_floating_point() else torch.float32)
    s = np.asarray(spectra_, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] < 2:
        raise ValueError(f"soft_positive_weights needs an (N >= 2, q) array, got shape {s.shape}")
    if not np.isfinite(s).all():
        raise ValueError("soft_positive_weights: spectra contain NaN or inf")
    logits = -pairwise_spectral_distances(s) / tau_s
    np.fill_diagonal(logits, -np.inf)
    logits -= logits.max(1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(1, keepdims=True)
    return w


# ---------------------------------------------------------------------------------------------
# cache
# ---------------------------------------------------------------------------------------------

class _LRU:
    """A small thread-safe LRU of ``key -> (spectrum, count)``."""

    def __init__(self, maxsize: int = 8192):
        self.maxsize = maxsize
        self._data: OrderedDict[tuple[str, int], tuple[np.ndarray, int]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.disk_hits = 0

    def get(self, key):
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key, value) -> None:
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = self.disk_hits = 0

    def __len__(self) -> int:
        return len(self._data)


_CACHE = _LRU()


def clear_spectrum_cache(maxsize: int | None = None) -> None:
    """Empty the in-memory cache (and optionally change its capacity); disk files are kept."""
    _CACHE.clear()
    if maxsize is not None:
        if maxsize < 1:
            raise ValueError(f"maxsize must be >= 1, got {maxsize}")
        _CACHE.maxsize = int(maxsize)


def spectrum_cache_info() -> dict[str, int]:
    return {"size": len(_CACHE), "maxsize": _CACHE.maxsize, "hits": _CACHE.hits, "misses": _CACHE.misses,
            "disk_hits": _CACHE.disk_hits}


def _disk_path(directory: Path, key: str, q: int) -> Path:
    return directory / f"{_CACHE_VERSION}-{key}-q{q}.npz"


def _read_disk(path: Path, q: int) -> tuple[np.ndarray, int] | None:
    try:
        with np.load(path) as f:
            spec, count = np.asarray(f["spectrum"], dtype=np.float64), int(f["count"])
        if spec.shape == (q,) and np.isfinite(spec).all() and 0 <= count <= q:
            return spec, count
    except Exception:  # unreadable / truncated / foreign file: recompute and overwrite
        return None
    return None


def _write_disk(path: Path, spec: np.ndarray, count: int) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp.npz")
        np.savez(tmp, spectrum=spec, count=np.int64(count))
        os.replace(tmp, path)
    except OSError:  # a read-only or full disk must not break the caller
        pass


def spectrum_cached(cg, q: int = DEFAULT_Q, *, return_count: bool = False, disk: bool = False,
                    directory: str | Path | None = None):
    """:func:`laplacian_spectrum` memoised by ``(cg.content_hash(), q)``.

    In-memory LRU always; with ``disk=True`` also ``.npz`` files in ``directory`` (default
    ``engine.paths.cache_dir() / "spectra"``).  Returns a fresh copy each call.
    """
    q = _check_q(q)
    key = (cg.content_hash(), q)
    hit = _CACHE.get(key)
    if hit is None and disk:
        if directory is None:
            from engine.paths import cache_dir

            directory = cache_dir() / "spectra"
        path = _disk_path(Path(directory), key[0], q)
        hit = _read_disk(path, q) if path.exists() else None
        if hit is not None:
            _CACHE.disk_hits += 1
        else:
            spec, count = laplacian_spectrum(cg, q=q, return_count=True)
            hit = (spec, count)
            _write_disk(path, spec, count)
        _CACHE.put(key, hit)
    elif hit is None:
        spec, count = laplacian_spectrum(cg, q=q, return_count=True)
        hit = (spec, count)
        _CACHE.put(key, hit)
    spec, count = hit
    return (spec.copy(), count) if return_count else spec.copy()


def spectra(cgs: Iterable[Any] | Sequence[Any], q: int = DEFAULT_Q, *, cached: bool = True,
            disk: bool = False) -> np.ndarray:
    """Stack the spectra of many CGs into an ``(N, q)`` array (BLAS single-threaded)."""
    rows = []
    with _single_thread_blas():
        for cg in cgs:
            rows.append(spectrum_cached(cg, q, disk=disk) if cached else laplacian_spectrum(cg, q))
    if not rows:
        return np.zeros((0, _check_q(q)))
    return np.stack(rows)
