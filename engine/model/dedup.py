"""Inference without repeated work: message passing on the *quotient* of a packed batch.

In eval mode (no dropout) a node's state after ``l`` GraphConv layers depends only on its
features and on the states of its neighbours after ``l - 1`` layers, i.e. on its ``l``-hop
neighbourhood (Weisfeiler-Lehman colour refinement).  CGs repeat structure a lot -- the cells
of a NB-201 / NB-101 / DARTS network are stacked copies, and every network of a family shares
its stem -- so many nodes of a batch have the same ``l``-hop neighbourhood and hence the same
state.  :func:`refine` partitions the nodes of a :class:`PackedGraphs` into such classes, level
by level, and the encoders (:meth:`engine.model.encoder.GraphEncoder.forward`,
:meth:`engine.model.kgnn.KGNNRegressor.forward`) then evaluate each layer once per *class*
instead of once per node.  Measured on 2,000 NB-201 CGs (176 nodes each): 4 bidirectional
layers need 0.33 M class states instead of 1.4 M node states; 6 forward layers 0.22 M instead
of 2.1 M.

The arithmetic per class is the arithmetic of the full pass for any node of the class (same
operands, same summation order -- the sparse aggregations list a representative's neighbours
in node order, as :meth:`PackedGraphs.adj` does; the readout adds node states in node order),
so the results equal the full pass up to float rounding of the dense kernels (a test checks
it).  Classes are found by hashing: level 0 groups nodes with bit-identical feature rows
(checked exactly); level ``l`` hashes (own class, multiset of in-neighbour classes[, multiset of
out-neighbour classes]) with two independent 64-bit hashes, each a sum of pseudo-random values
per (class, role) over the node and its edges (cumulative sums over the edges sorted by
endpoint), groups by the first and checks that the second agrees within every group, falling
back to grouping by both, so a wrong merge would need a simultaneous collision of both
(probability ~2^-128 per pair).  Classes are numbered by first appearance, so they do not
depend on the hash function.

Set ``engine.model.dedup.ENABLED = False`` (or ``GENNAPE_DEDUP=0``) to run the plain per-node
pass.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch

#: use the quotient pass in eval-mode, gradient-free forward passes
ENABLED = os.environ.get("GENNAPE_DEDUP", "1") not in ("0", "false", "False", "")

_U64 = np.uint64
_M1, _M2 = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB)
_S30, _S27, _S31 = _U64(30), _U64(27), _U64(31)
# odd multipliers of the two independent hashes (fixed: the grouping is deterministic)
_K = np.array([[0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93,
                0xA0761D6478BD642F, 0xE7037ED1A0B428DB],
               [0x8EBC6AF09C88C6E3, 0x589965CC75374CC3, 0x1D8E4E27C47D124F, 0xFF51AFD7ED558CCD,
                0xC4CEB9FE1A85EC53, 0x2545F4914F6CDD1D]], dtype=np.uint64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser (a bijection of uint64), vectorised."""
    x = x ^ (x >> _S30)
    x *= _M1
    x ^= x >> _S27
    x *= _M2
    x ^= x >> _S31
    return x


def _factorize(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class ids numbered by first appearance and the first node of every class (ascending)."""
    codes, uniques = pd.factorize(key, sort=False)
    codes = codes.astype(np.int64, copy=False)
    first = np.flatnonzero(np.r_[True, codes[1:] > np.maximum.accumulate(codes)[:-1]]) if codes.size else codes
    return codes, first


def _factorize_pair(h1: np.ndarray, h2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    codes, first = _factorize(h1)
    if np.array_equal(h2[first][codes], h2):
        return codes, first
    # a collision of the first hash (never observed): group by both hashes
    _, inv = np.unique(np.stack([h1, h2], 1), axis=0, return_inverse=True)
    return _factorize(inv.reshape(-1).astype(np.uint64))


@dataclass
class Level:
    """One refinement level ``l``: node -> class, and (l >= 1) how a class's state is computed
    from the classes of level ``l - 1``."""

    cls: np.ndarray                       # (n,) int64 class of every node
    reps: np.ndarray                      # (U,) int64 first node of every class (ascending)
    root: torch.Tensor | None = None      # (U,) class at l - 1 of each representative
    fwd: sp.csr_matrix | None = None      # (U, U_prev): in-neighbour classes (node order)
    rev: sp.csr_matrix | None = None      # (U, U_prev): out-neighbour classes (node order)

    @property
    def size(self) -> int:
        return int(self.reps.shape[0])


@dataclass
class Quotient:
    levels: list[Level]
    readout: sp.csr_matrix                # (B, U_L): node states of each graph, node order
    sizes: torch.Tensor                   # (B,) nodes per graph

    def spmm(self, m: sp.csr_matrix, h: torch.Tensor, mean: bool = False) -> torch.Tensor:
        """``m @ h`` (sum over the listed rows in order; ``mean``: divided by the row count as
        :meth:`PackedGraphs.adj` ``(mean=True)`` does)."""
        if mean:
            m = row_normalised(m)
        return torch.from_numpy(np.asarray(m @ h.numpy()))

    def mean(self, h: torch.Tensor) -> torch.Tensor:
        """Per-graph mean of the node states given per class of the last level (as
        :func:`engine.model.encoder.segment_mean`)."""
        return self.spmm(self.readout, h) / self.sizes.clamp(min=1).unsqueeze(1).to(h.dtype)


def row_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    """``m`` with every row divided by its entry count (a mean instead of a sum)."""
    counts = np.diff(m.indptr)
    out = sp.csr_matrix(((1.0 / np.maximum(counts, 1)).astype(np.float32).repeat(counts), m.indices, m.indptr),
                        shape=m.shape)
    out.has_sorted_indices = True
    return out


def row_block(m: sp.csr_matrix, start: int, stop: int) -> sp.csr_matrix:
    """Rows ``start:stop`` of ``m`` as a CSR view of its arrays (no copy, entry order kept)."""
    a, b = int(m.indptr[start]), int(m.indptr[stop])
    out = sp.csr_matrix((m.data[a:b], m.indices[a:b], m.indptr[start:stop + 1] - a), shape=(stop - start, m.shape[1]))
    out.has_sorted_indices = True
    return out


def _csr(rows: np.ndarray, cols: np.ndarray, n_rows: int, n_cols: int) -> sp.csr_matrix:
    """CSR with ones at (rows, cols); ``rows`` must be non-decreasing (entry order is kept)."""
    indptr = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_rows), out=indptr[1:])
    data = np.ones(rows.shape[0], dtype=np.float32)
    m = sp.csr_matrix((data, cols.astype(np.int64, copy=False), indptr), shape=(n_rows, n_cols))
    m.has_sorted_indices = True  # do not let scipy reorder (the order is the summation order)
    return m


def _level0(packed) -> Level:
    if "quotient0" in packed._cache:
        return packed._cache["quotient0"]
    op = packed.op.numpy()
    bits = np.ascontiguousarray(packed.dense.numpy()).view(np.uint32)
    # the feature rows as 64-bit words (two float32 columns each; a zero column pads odd widths)
    words = bits if bits.shape[1] % 2 == 0 else np.concatenate([bits, np.zeros((bits.shape[0], 1), np.uint32)], 1)
    words = np.ascontiguousarray(words).view(np.uint64)
    h = op.astype(np.uint64) * _K[0, 0]
    for j in range(words.shape[1]):
        h += words[:, j] * (_K[(j + 1) % 2, (j + 1) % 6] ^ _U64((j + 1) << 8))
    cls, reps = _factorize(_mix(h))
    if not (np.array_equal(op[reps][cls], op) and np.array_equal(np.take(bits[reps], cls, axis=0), bits)):
        # a hash collision (never observed): exact grouping of the feature rows
        rows = np.concatenate([op[:, None].astype(np.uint64), bits.astype(np.uint64)], 1)
        _, inv = np.unique(rows, axis=0, return_inverse=True)
        cls, reps = _factorize(inv.reshape(-1).astype(np.uint64))
    level = Level(cls, reps)
    packed._cache["quotient0"] = level
    return level


@dataclass
class _Segments:
    """Edges sorted by one endpoint (``key``, the node that aggregates) with the offsets of
    each node's run, so per-node sums of a per-edge array are a cumulative sum and a
    difference (no scatter)."""

    key: np.ndarray     # (E,) sorted endpoint of every edge
    other: np.ndarray   # (E,) the other endpoint
    ptr: np.ndarray     # (n + 1,) edges of node v are key[ptr[v]:ptr[v + 1]]

    @classmethod
    def of(cls, key: np.ndarray, other: np.ndarray, n: int) -> _Segments:
        ptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(key, minlength=n), out=ptr[1:])
        return cls(key, other, ptr)

    def rows_of(self, nodes: np.ndarray, cls: np.ndarray, n_cols: int) -> sp.csr_matrix:
        """``(len(nodes), n_cols)`` CSR whose row ``i`` lists ``cls`` of the other endpoints of
        the edges of ``nodes[i]``, in edge order (the ``fwd`` / ``rev`` matrices of a level,
        with ``nodes`` the class representatives)."""
        starts = self.ptr[nodes]
        counts = self.ptr[nodes + 1] - starts
        indptr = np.zeros(nodes.shape[0] + 1, dtype=np.int64)
        np.cumsum(counts, out=indptr[1:])
        edges = np.arange(int(indptr[-1]), dtype=np.int64) + np.repeat(starts - indptr[:-1], counts)
        m = sp.csr_matrix((np.ones(edges.shape[0], dtype=np.float32), cls[self.other[edges]], indptr),
                          shape=(nodes.shape[0], n_cols))
        m.has_sorted_indices = True  # do not let scipy reorder (the order is the summation order)
        return m

    def sums(self, values: np.ndarray) -> np.ndarray:
        """``(n,)`` per-node sums of the per-edge uint64 ``values`` (wrapping arithmetic)."""
        acc = np.zeros(values.shape[0] + 1, dtype=np.uint64)
        np.cumsum(values, out=acc[1:])
        return np.diff(acc[self.ptr])


def _edge_orders(packed) -> tuple[_Segments, _Segments]:
    """Edges (src, dst) ordered by (dst, src) -- grouped by target -- and by (src, dst) --
    grouped by source (cached)."""
    if "edge_orders" not in packed._cache:
        src, dst = (t.numpy() for t in packed.edge_index)
        n = max(packed.num_nodes, 1)
        fo = np.argsort(dst * n + src, kind="stable")
        ro = np.argsort(src * n + dst, kind="stable")
        packed._cache["edge_orders"] = (_Segments.of(dst[fo], src[fo], n), _Segments.of(src[ro], dst[ro], n))
    return packed._cache["edge_orders"]


def _class_table(size: int, lvl: int, role: int, k: int) -> np.ndarray:
    """``(size,)`` pseudo-random uint64 values per class of the previous level, independent
    for each level, role (own / in-neighbour / out-neighbour) and hash ``k``."""
    ids = np.arange(size, dtype=np.uint64)
    return _mix(ids * _K[k, role + 3] + _U64(0x1000 * lvl + 0x100 * role + 17 * k + 1))


def refine(packed, layers: int, bidirectional: bool) -> Quotient:
    """The quotient of ``packed`` for ``layers`` rounds of message passing (cached on it)."""
    key = ("quotient", int(layers), bool(bidirectional))
    if key in packed._cache:
        return packed._cache[key]
    # edges ordered as the CSR rows of PackedGraphs.adj (by target, then source) and reversed
    ins, outs = _edge_orders(packed)
    levels = [_level0(packed)]
    if not bidirectional:
        finer = max((k[1] for k in packed._cache if isinstance(k, tuple) and k[0] == "quotient" and k[2]), default=0)
        if finer:
            levels = _forward_levels_from(packed._cache[("quotient", finer, True)], min(layers, finer))
    for lvl in range(len(levels), layers + 1):
        prev = levels[-1]
        c = prev.cls
        # two independent hashes of (own class, multiset of in-neighbour classes[, multiset of
        # out-neighbour classes]): sums of per-class random values (a linear hash over
        # Z / 2^64: distinct signatures collide with probability ~2^-64 per hash)
        c_in = c[ins.other]
        c_out = c[outs.other] if bidirectional else None
        hs = []
        for k in range(2):
            h = _class_table(prev.size, lvl, 0, k)[c]
            h += ins.sums(_class_table(prev.size, lvl, 1, k)[c_in])
            if bidirectional:
                h += outs.sums(_class_table(prev.size, lvl, 2, k)[c_out])
            hs.append(h)
        cls, reps = _factorize_pair(*hs)
        # class i's row lists its representative's neighbours (reps[i] is the first node of class i)
        fwd = ins.rows_of(reps, c, prev.size)
        rev = outs.rows_of(reps, c, prev.size) if bidirectional else None
        levels.append(Level(cls, reps, torch.from_numpy(c[reps]), fwd, rev))
    last = levels[-1]
    graph = packed.batch.numpy()
    readout = _csr(graph, last.cls, len(packed), last.size)
    q = Quotient(levels, readout, packed.sizes)
    packed._cache[key] = q
    return q


def _forward_levels_from(bidir: Quotient, layers: int) -> list[Level]:
    """Levels ``0..layers`` of the forward-only refinement derived from a bidirectional one.

    The bidirectional classes of level ``l`` refine the forward-only ones (their signature
    contains the forward one), so a forward class is a union of bidirectional classes and the
    forward signature of a bidirectional class can be read off its representative's row of
    ``fwd``.  Hashing the ``U`` bidirectional classes instead of the ``n`` nodes gives the same
    classes: a forward class's first node is the representative of its first bidirectional
    class, so numbering by first appearance agrees."""
    levels = [bidir.levels[0]]
    to_prev = np.arange(bidir.levels[0].size, dtype=np.int64)  # bidirectional -> forward class at l - 1
    for lvl in range(1, layers + 1):
        b, prev = bidir.levels[lvl], levels[-1]
        own = to_prev[b.root.numpy()]
        ins = to_prev[b.fwd.indices]
        ptr = b.fwd.indptr.astype(np.int64, copy=False)
        hs = []
        for k in range(2):
            h = _class_table(prev.size, lvl, 0, k)[own]
            acc = np.zeros(ins.shape[0] + 1, dtype=np.uint64)
            np.cumsum(_class_table(prev.size, lvl, 1, k)[ins], out=acc[1:])
            h += np.diff(acc[ptr])
            hs.append(h)
        codes, first = _factorize_pair(*hs)
        counts = np.diff(ptr)[first]
        starts = ptr[first]
        offsets = np.cumsum(counts) - counts
        entries = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(offsets - starts, counts)
        rows = np.repeat(np.arange(first.shape[0], dtype=np.int64), counts)
        fwd = _csr(rows, ins[entries], first.shape[0], prev.size)
        levels.append(Level(codes[b.cls], b.reps[first], torch.from_numpy(own[first]), fwd, None))
        to_prev = codes
    return levels


def active(module: torch.nn.Module) -> bool:
    """Whether ``module``'s forward may use the quotient pass (eval mode, no autograd)."""
    return ENABLED and not module.training and not torch.is_grad_enabled()
