"""Fast CG -> tensor conversion and a compact batch format for the GENNAPE models.

:meth:`engine.graphs.cg.CG.to_pyg` builds one ``torch_geometric.data.Data`` per CG and
``Batch.from_data_list`` then collates them; both are pure Python per node and cost about
1 ms per NB-201-sized CG.  The models here only need the node-feature matrix, the directed
edge list and per-graph offsets, so :func:`pack` builds exactly that for a whole list of CGs
at once:

* one pass over the nodes collecting integer attributes (no per-node feature lists);
* the features of :func:`engine.graphs.cg.feature_names` computed vectorised with numpy
  (equal to ``cg.node_features()`` up to float32 rounding; a test checks it);
* distinct node attribute tuples are converted once (a vocabulary of integer rows), so
  converting CGs is one C-level pass over all their nodes plus gathers (the CGs of one
  :func:`pack` call that are not memoised yet are converted together), and the feature columns
  that do not depend on the owning CG are computed once per vocabulary row;
* per-CG arrays are memoised (:class:`FeatureCache`) so predicting the same CG objects again
  (the app, search loops, the ensemble members) converts each CG only once.

:class:`PackedGraphs` is the batch format: ``x`` (all nodes, F features), ``edge_index``
(global node ids, source -> target data flow), ``ptr`` / ``eptr`` (node / edge offsets per
graph) and ``flops`` / ``params`` per graph.  It can be sliced (:meth:`PackedGraphs.select`)
into mini-batches without touching Python objects again, and it caches the sparse adjacency
matrices used by the encoders.
"""

from __future__ import annotations

import itertools
import operator
import threading
import warnings
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from engine.graphs.cg import CG, MAX_COUNT, MAX_DIM, CGError, feature_names
from engine.graphs.ops import OP_INDEX, OPS

N_OPS = len(OPS)
N_FEATURES = len(feature_names())
_ZERO_W = (0, 0, 0, 0)
# columns of the per-node integer table built by _node_table
_T_OP, _T_IH, _T_IW, _T_IC, _T_OH, _T_OW, _T_OC, _T_WCI, _T_WCO, _T_KH, _T_KW, _T_S, _T_D, _T_B = range(14)


# ---------------------------------------------------------------------------------------------
# per-CG arrays (memoised)
# ---------------------------------------------------------------------------------------------

class _CGArrays:
    """One CG's arrays: the node rows of the integer table (see ``_T_*``) and their FLOPs are
    either gathered from a shared vocabulary (``vocab`` and ``rows``, the fast path) or held
    directly (``_cg_arrays_slow``)."""

    __slots__ = ("rows", "vocab", "_table", "_flops", "edges", "base_h", "total_flops", "total_params")

    def __init__(self, table: np.ndarray | None, flops: np.ndarray | None, edges: np.ndarray, base_h: int,
                 total_flops: float, total_params: float, rows: np.ndarray | None = None,
                 vocab: _RowVocab | None = None) -> None:
        self._table, self._flops = table, flops    # (n, 14) int32 / (n,) float64, or None
        self.rows, self.vocab = rows, vocab         # (n,) int32 rows of vocab.arrays()
        self.edges = edges                          # (e, 2) int64
        self.base_h, self.total_flops, self.total_params = base_h, total_flops, total_params

    @property
    def num_nodes(self) -> int:
        return int((self.rows if self.rows is not None else self._flops).shape[0])

    @property
    def table(self) -> np.ndarray:
        return self._table if self.rows is None else self.vocab.arrays()[0][self.rows]

    @property
    def flops(self) -> np.ndarray:
        return self._flops if self.rows is None else self.vocab.arrays()[1][self.rows]


def _in_range(row: tuple, flops, params) -> bool:
    """Whether a node's integer row fits the int32 table and its FLOPs / params the checked range
    (:data:`engine.graphs.cg.MAX_DIM`, :data:`engine.graphs.cg.MAX_COUNT`)."""
    return (all(isinstance(v, int) and 0 <= v <= MAX_DIM for v in row)
            and 0 <= flops <= MAX_COUNT and 0 <= params <= MAX_COUNT)


def _cg_arrays_slow(cg: CG) -> _CGArrays:
    nodes = cg.nodes
    rows = [(OP_INDEX[n.op], *n.in_shape, *n.out_shape, *(n.weight or _ZERO_W),
             max(n.stride), max(n.dilation), 1 if n.bias else 0) for n in nodes]
    for n, row in zip(nodes, rows):
        if len(row) != 14 or not _in_range(row, n.flops, n.params):
            raise CGError(f"CG {cg.name!r}, node {n.id} ({n.op}): shapes, weight, stride and dilation must be ints "
                          f"in 0..{MAX_DIM:,} and flops / params in 0..{MAX_COUNT:,} (CG.validate() checks this); "
                          f"got in {n.in_shape}, out {n.out_shape}, weight {n.weight}, stride {n.stride}, "
                          f"dilation {n.dilation}, flops {n.flops!r}, params {n.params!r}")
    table = np.array(rows, dtype=np.int32).reshape(len(nodes), 14)
    flops = np.fromiter((n.flops for n in nodes), dtype=np.float64, count=len(nodes))
    if cg.edges:
        edges = np.array(cg.edges, dtype=np.int64).reshape(-1, 2)
    else:
        edges = np.zeros((0, 2), dtype=np.int64)
    base_h = next((n.out_shape[0] for n in nodes if n.op == "input"), 1)
    params = float(sum(n.params for n in nodes))
    return _CGArrays(table, flops, edges, int(base_h), float(flops.sum()), params)


#: a node's vocabulary key, read from its instance dict (``vars(node)``): item lookups are
#: cheaper than attribute lookups, and this pass over every node dominates converting CGs
#: (measured on 2,000 NB-201 CGs, 353k nodes, 15 alternating runs: median 106 ms instead of 113 ms with
#: ``attrgetter``)
_NODE_KEY = operator.itemgetter("op", "in_shape", "out_shape", "weight", "stride", "dilation", "bias", "flops",
                                "params")
_INPUT = OP_INDEX["input"]


class _RowVocab(dict):
    """Distinct node attribute tuples -> row of a shared integer table (so converting a CG is
    one C-level pass over its nodes; the Python work is done once per *distinct* node).
    New rows are added under a lock: the app converts CGs from several session threads."""

    MAX_ROWS = 1_000_000

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[tuple] = []
        self.flops: list[float] = []
        self.params: list[int] = []
        self._arrays: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._lock = threading.Lock()

    def __missing__(self, key: tuple) -> int:
        op, ins, outs, weight, stride, dil, bias, fl, pa = key
        row = (OP_INDEX[op], *ins, *outs, *(weight or _ZERO_W), max(stride), max(dil), 1 if bias else 0)
        if len(row) != 14 or not isinstance(pa, int) or not _in_range(row, fl, pa):
            # the slow path converts the CG alone and names what is wrong; a row that would not
            # fit the int32 table never enters the shared vocabulary (it would break every later call)
            raise TypeError("node fields outside the fast path")
        with self._lock:
            idx = dict.get(self, key)  # another thread may have added it meanwhile
            if idx is None:
                idx = len(self.rows)
                self.rows.append(row)
                self.flops.append(fl)
                self.params.append(pa)
                self._arrays = None
                self[key] = idx
        return idx

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(table, flops, params, dense)`` of every row so far; ``dense``: the feature
        columns of :func:`_dense_features` that do not depend on the owning CG (the columns
        in ``_GRAPH_COLUMNS`` are placeholders)."""
        with self._lock:
            if self._arrays is None or self._arrays[0].shape[0] != len(self.rows):
                table = np.array(self.rows, dtype=np.int32).reshape(-1, 14)
                flops = np.array(self.flops, dtype=np.float64)
                ones = np.ones(table.shape[0])
                self._arrays = (table, flops, np.array(self.params, dtype=np.int64),
                                _dense_features(table, flops, ones, ones))
            return self._arrays


_VOCAB = _RowVocab()


def _cg_arrays(cg: CG) -> _CGArrays:
    return _cg_arrays_many([cg])[0]


def _cg_arrays_many(cgs: Sequence[CG]) -> list[_CGArrays]:
    """Convert several CGs at once: one C-level pass over all their nodes (vocabulary
    lookups) and one over all their edges, then per-CG views of the results."""
    global _VOCAB
    if len(_VOCAB) > _RowVocab.MAX_ROWS:
        _VOCAB = _RowVocab()
    vocab = _VOCAB  # one vocabulary for the lookups and the gathers, even if another thread resets it
    sizes = np.fromiter(map(len, map(operator.attrgetter("nodes"), cgs)), dtype=np.int64, count=len(cgs))
    esizes = np.fromiter(map(len, map(operator.attrgetter("edges"), cgs)), dtype=np.int64, count=len(cgs))
    total, etotal = int(sizes.sum()), int(esizes.sum())
    try:
        keys = map(_NODE_KEY, map(vars, itertools.chain.from_iterable(cg.nodes for cg in cgs)))
        rows = np.fromiter(map(vocab.__getitem__, keys), dtype=np.int32, count=total)
    except (TypeError, ValueError):  # unhashable / unusual node fields: convert one by one
        if len(cgs) > 1:
            return [_cg_arrays_many([cg])[0] for cg in cgs]
        return [_cg_arrays_slow(cgs[0])]
    pairs = itertools.chain.from_iterable(itertools.chain.from_iterable(cg.edges for cg in cgs))
    edges = np.fromiter(pairs, dtype=np.int64, count=2 * etotal).reshape(etotal, 2)
    vt, vf, vp, _ = vocab.arrays()
    ptr = np.zeros(len(cgs) + 1, dtype=np.int64)
    np.cumsum(sizes, out=ptr[1:])
    eptr = np.zeros(len(cgs) + 1, dtype=np.int64)
    np.cumsum(esizes, out=eptr[1:])
    # first input node of every CG (its output height normalises the shape features)
    inputs = np.flatnonzero(vt[rows, _T_OP] == _INPUT)
    graph = np.searchsorted(ptr, inputs, side="right") - 1
    first = np.r_[True, graph[1:] != graph[:-1]] if graph.size else graph.astype(bool)
    base_h = np.ones(len(cgs), dtype=np.int64)
    base_h[graph[first]] = vt[rows[inputs[first]], _T_OH]
    node_flops, node_params = vf[rows], vp[rows]
    bound = float(np.abs(vf).max(initial=0.0)) * float(sizes.max(initial=0))
    if bound < 2.0 ** 53 and np.all(vf == np.floor(vf)):
        # integer FLOPs whose sums stay below 2^53: every summation order gives the exact sum
        totals = np.add.reduceat(np.r_[node_flops, 0.0], ptr[:-1])
        totals[sizes == 0] = 0.0
        flops_of = totals.tolist()
    else:
        flops_of = [float(node_flops[a:b].sum()) for a, b in zip(ptr[:-1].tolist(), ptr[1:].tolist())]
    params = np.add.reduceat(np.r_[node_params, 0], ptr[:-1])
    params[sizes == 0] = 0
    bounds = ptr.tolist()
    ebounds = eptr.tolist()
    return [_CGArrays(None, None, edges[ebounds[i]:ebounds[i + 1]], h, f, float(p),
                      rows=rows[bounds[i]:bounds[i + 1]], vocab=vocab)
            for i, (h, f, p) in enumerate(zip(base_h.tolist(), flops_of, params.tolist()))]


class FeatureCache:
    """Memoises per-CG arrays by object identity.

    CG objects are treated as immutable once converted: an entry is dropped when its CG is
    garbage collected and ignored when the CG's node or edge list object (or length) changed.
    Call :meth:`clear` after mutating a CG's nodes in place.  The cache empties itself when it
    holds more than ``max_nodes`` nodes (about 64 bytes each).
    """

    def __init__(self, max_nodes: int = 4_000_000) -> None:
        self.max_nodes = max_nodes
        self._nodes = 0
        self._store: dict[int, tuple[weakref.ref, tuple, _CGArrays]] = {}

    @staticmethod
    def _signature(cg: CG) -> tuple:
        return (id(cg.nodes), len(cg.nodes), id(cg.edges), len(cg.edges))

    def get(self, cg: CG) -> _CGArrays:
        key = id(cg)
        hit = self._store.get(key)
        if hit is not None and hit[0]() is cg and hit[1] == self._signature(cg):
            return hit[2]
        arrays = _cg_arrays(cg)
        self._put(cg, arrays)
        return arrays

    def get_many(self, cgs: Sequence[CG]) -> list[_CGArrays]:
        """:meth:`get` for several CGs; the ones not cached are converted together."""
        out: list[_CGArrays | None] = []
        missing: dict[int, CG] = {}
        for cg in cgs:
            hit = self._store.get(id(cg))
            if hit is not None and hit[0]() is cg and hit[1] == self._signature(cg):
                out.append(hit[2])
            else:
                out.append(None)
                missing[id(cg)] = cg
        if missing:
            fresh = dict(zip(missing, _cg_arrays_many(list(missing.values()))))
            for cg in missing.values():
                self._put(cg, fresh[id(cg)])
            out = [a if a is not None else fresh[id(cg)] for a, cg in zip(out, cgs)]
        return out

    def _put(self, cg: CG, arrays: _CGArrays) -> None:
        key = id(cg)
        if self._nodes + len(cg.nodes) > self.max_nodes:
            self.clear()
        try:
            ref = weakref.ref(cg, lambda _r, k=key, s=self._store: s.pop(k, None))
        except TypeError:  # not weak-referenceable: do not cache
            return
        self._store[key] = (ref, self._signature(cg), arrays)
        self._nodes += len(cg.nodes)

    def clear(self) -> None:
        self._store.clear()
        self._nodes = 0

    def __len__(self) -> int:
        return len(self._store)


#: process-wide cache used by :func:`pack` unless told otherwise
DEFAULT_CACHE = FeatureCache()


def clear_feature_cache() -> None:
    """Forget every memoised CG conversion (after mutating CGs in place), including the
    vocabulary of distinct node rows."""
    global _VOCAB
    DEFAULT_CACHE.clear()
    _VOCAB = _RowVocab()


# ---------------------------------------------------------------------------------------------
# packed batch
# ---------------------------------------------------------------------------------------------

@dataclass
class PackedGraphs:
    """Many CGs as flat tensors (see module docstring)."""

    op: torch.Tensor           # (n_nodes,) int64 op index (the one-hot part of the features)
    dense: torch.Tensor        # (n_nodes, F - len(OPS)) float32, the other feature columns
    edge_index: torch.Tensor   # (2, n_edges) int64, global node ids, source -> target
    ptr: torch.Tensor          # (B + 1,) int64 node offsets
    eptr: torch.Tensor         # (B + 1,) int64 edge offsets
    flops: torch.Tensor        # (B,) float64
    params: torch.Tensor       # (B,) float64
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.ptr.numel() - 1)

    @property
    def num_nodes(self) -> int:
        return int(self.op.shape[0])

    @property
    def x(self) -> torch.Tensor:
        """The full ``(n_nodes, F)`` feature matrix of :func:`engine.graphs.cg.feature_names`
        (built on demand; the encoders use ``op`` and ``dense`` directly)."""
        if "x" not in self._cache:
            onehot = torch.zeros(self.num_nodes, N_OPS, dtype=self.dense.dtype)
            onehot[torch.arange(self.num_nodes), self.op] = 1.0
            self._cache["x"] = torch.cat([onehot, self.dense], 1)
        return self._cache["x"]

    @property
    def sizes(self) -> torch.Tensor:
        return self.ptr[1:] - self.ptr[:-1]

    @property
    def batch(self) -> torch.Tensor:
        """Graph index of every node (PyG's ``batch`` vector)."""
        if "batch" not in self._cache:
            self._cache["batch"] = torch.repeat_interleave(torch.arange(len(self)), self.sizes)
        return self._cache["batch"]

    def adj(self, reverse: bool = False, mean: bool = False) -> torch.Tensor:
        """Sparse CSR ``(n, n)`` matrix A with ``A[t, s] = 1`` for each edge ``s -> t``
        (``reverse=True``: each edge ``t -> s``), i.e. PyG's ``adj_t`` for source -> target
        message passing; ``mean=True`` divides each row by its number of entries (mean
        aggregation).  Cached."""
        key = f"adj{'_rev' if reverse else ''}{'_mean' if mean else ''}"
        if key not in self._cache:
            src, dst = self.edge_index
            rows, cols = (src, dst) if reverse else (dst, src)
            n = self.num_nodes
            order = torch.argsort(rows * n + cols)
            rows, cols = rows[order], cols[order]
            counts = torch.bincount(rows, minlength=n)
            crow = torch.zeros(n + 1, dtype=torch.int64)
            crow[1:] = torch.cumsum(counts, 0)
            vals = torch.ones(rows.numel(), dtype=self.dense.dtype)
            if mean:
                vals = vals / counts[rows].to(vals.dtype)
            with warnings.catch_warnings():  # "CSR support is in beta" notice
                warnings.simplefilter("ignore")
                self._cache[key] = torch.sparse_csr_tensor(crow, cols, vals, (n, n), check_invariants=False)
        return self._cache[key]

    def select(self, idx: Sequence[int] | np.ndarray | torch.Tensor) -> PackedGraphs:
        """The sub-batch of graphs ``idx`` (in that order)."""
        idx_t = torch.as_tensor(np.asarray(idx, dtype=np.int64))
        starts, counts = self.ptr[idx_t], self.sizes[idx_t]
        estarts = self.eptr[idx_t]
        ecounts = self.eptr[idx_t + 1] - estarts
        new_ptr = torch.zeros(len(idx_t) + 1, dtype=torch.int64)
        new_ptr[1:] = torch.cumsum(counts, 0)
        new_eptr = torch.zeros(len(idx_t) + 1, dtype=torch.int64)
        new_eptr[1:] = torch.cumsum(ecounts, 0)
        node_ids = _ranges(starts, counts)
        edge_ids = _ranges(estarts, ecounts)
        shift = torch.repeat_interleave(new_ptr[:-1] - starts, ecounts)
        return PackedGraphs(
            op=self.op[node_ids], dense=self.dense[node_ids], edge_index=self.edge_index[:, edge_ids] + shift,
            ptr=new_ptr, eptr=new_eptr, flops=self.flops[idx_t], params=self.params[idx_t])

    def chunks(self, max_nodes: int = 200_000, max_graphs: int = 4096) -> Iterator[tuple[int, int, PackedGraphs]]:
        """Consecutive sub-batches ``(start, stop, packed)`` of at most ``max_nodes`` nodes
        (at least one graph each) and ``max_graphs`` graphs."""
        n = len(self)
        start = 0
        ptr = self.ptr.tolist()
        while start < n:
            stop = start + 1
            while stop < n and stop - start < max_graphs and ptr[stop + 1] - ptr[start] <= max_nodes:
                stop += 1
            if start == 0 and stop == n:
                yield 0, n, self
            else:
                yield start, stop, self.select(range(start, stop))
            start = stop

    @staticmethod
    def concat(parts: Sequence[PackedGraphs]) -> PackedGraphs:
        """Concatenate several packs (graph order preserved)."""
        if len(parts) == 1:
            return parts[0]
        node_off = 0
        ops, dense, eis = [], [], []
        ptrs, eptrs = [torch.zeros(1, dtype=torch.int64)], [torch.zeros(1, dtype=torch.int64)]
        edge_off = 0
        for p in parts:
            ops.append(p.op)
            dense.append(p.dense)
            eis.append(p.edge_index + node_off)
            ptrs.append(p.ptr[1:] + node_off)
            eptrs.append(p.eptr[1:] + edge_off)
            node_off += p.num_nodes
            edge_off += int(p.edge_index.shape[1])
        return PackedGraphs(torch.cat(ops), torch.cat(dense), torch.cat(eis, 1), torch.cat(ptrs), torch.cat(eptrs),
                            torch.cat([p.flops for p in parts]), torch.cat([p.params for p in parts]))


def _ranges(starts: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Concatenation of ``arange(s, s + c)`` for each (s, c)."""
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.int64)
    offsets = torch.cumsum(counts, 0) - counts
    return torch.arange(total) - torch.repeat_interleave(offsets - starts, counts)


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------

def _lg(v: np.ndarray, scale: float) -> np.ndarray:
    return np.log2(1.0 + v) / scale


def _dense_features(table: np.ndarray, node_flops: np.ndarray, base_h: np.ndarray, total: np.ndarray) -> np.ndarray:
    """The non-one-hot columns of :func:`engine.graphs.cg._node_feature_row` (FEATURE_VERSION 1),
    vectorised.  ``base_h`` / ``total`` are per node (the owning CG's input height and FLOPs)."""
    def col(k: int) -> np.ndarray:
        return table[:, k].astype(np.float64)

    safe = np.where(total > 0, total, 1.0)
    dense = np.stack([
        _lg(col(_T_IH), 8), _lg(col(_T_IW), 8), _lg(col(_T_IC), 12),
        _lg(col(_T_OH), 8), _lg(col(_T_OW), 8), _lg(col(_T_OC), 12),
        col(_T_IH) / base_h, col(_T_OH) / base_h,
        col(_T_KH) / 7.0, col(_T_KW) / 7.0, _lg(col(_T_WCI), 12), _lg(col(_T_WCO), 12),
        col(_T_S) / 4.0, col(_T_D) / 4.0, col(_T_B),
        np.where(total > 0, node_flops / safe, 0.0),
    ], axis=1).astype(np.float32)
    return dense


#: columns of _dense_features that depend on the owning CG (input height, total FLOPs)
_GRAPH_COLUMNS = (6, 7, 15)


def _graph_columns(dense: np.ndarray, in_h: np.ndarray, out_h: np.ndarray, node_flops: np.ndarray,
                   base_h: np.ndarray, total: np.ndarray) -> None:
    """Fill the ``_GRAPH_COLUMNS`` of ``dense`` in place, as :func:`_dense_features` computes them."""
    dense[:, 6] = in_h / base_h  # int32 / float64: computed in float64, as in _dense_features
    dense[:, 7] = out_h / base_h
    if np.all(total > 0):
        dense[:, 15] = node_flops / total
    else:
        dense[:, 15] = np.where(total > 0, node_flops / np.where(total > 0, total, 1.0), 0.0)


def pack(cgs: Sequence[CG], cache: FeatureCache | None = DEFAULT_CACHE) -> PackedGraphs:
    """Convert CGs to one :class:`PackedGraphs` (features as in :meth:`CG.node_features`)."""
    if isinstance(cgs, CG):
        cgs = [cgs]
    if len(cgs) == 0:
        raise ValueError("pack: no computation graphs given")
    bad = next((i for i, c in enumerate(cgs) if not isinstance(c, CG)), None)
    if bad is not None:
        raise TypeError(f"item {bad} is a {type(cgs[bad]).__name__}, expected a CG (build one with from_module, "
                        "from_onnx, load_json or a family's to_cg; a PackedGraphs or CGStore is accepted whole)")
    arrays = cache.get_many(cgs) if cache is not None else _cg_arrays_many(cgs)
    sizes = np.fromiter((a.num_nodes for a in arrays), dtype=np.int64, count=len(arrays))
    esizes = np.fromiter((a.edges.shape[0] for a in arrays), dtype=np.int64, count=len(arrays))
    ptr = np.zeros(len(arrays) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(sizes)
    eptr = np.zeros(len(arrays) + 1, dtype=np.int64)
    eptr[1:] = np.cumsum(esizes)
    base_h = np.repeat(np.array([a.base_h for a in arrays], dtype=np.float64), sizes)
    totals = np.array([a.total_flops for a in arrays], dtype=np.float64)
    vocab = arrays[0].vocab
    if vocab is not None and all(a.vocab is vocab for a in arrays):
        # graph-independent columns precomputed per vocabulary row, then the per-graph ones
        vt, vf, _, vd = vocab.arrays()
        rows = np.concatenate([a.rows for a in arrays])
        op = np.take(vt[:, _T_OP], rows).astype(np.int64)
        dense = np.take(vd, rows, axis=0)
        _graph_columns(dense, np.take(vt[:, _T_IH], rows), np.take(vt[:, _T_OH], rows), np.take(vf, rows), base_h,
                       np.repeat(totals, sizes))
    else:
        table = np.concatenate([a.table for a in arrays])
        op = table[:, _T_OP].astype(np.int64)
        dense = _dense_features(table, np.concatenate([a.flops for a in arrays]), base_h, np.repeat(totals, sizes))
    edges = np.concatenate([a.edges for a in arrays]) + np.repeat(ptr[:-1], esizes)[:, None]
    return PackedGraphs(
        op=torch.from_numpy(op), dense=torch.from_numpy(dense), edge_index=torch.from_numpy(np.ascontiguousarray(edges.T)),
        ptr=torch.from_numpy(ptr), eptr=torch.from_numpy(eptr),
        flops=torch.from_numpy(totals), params=torch.tensor([a.total_params for a in arrays], dtype=torch.float64))


def _is_store(obj) -> bool:
    """Duck-typed :class:`engine.data.cgstore.CGStore` check (no import of engine.data here)."""
    return all(hasattr(obj, a) for a in ("rows", "node_row", "node_ptr", "edges", "edge_ptr", "flops", "params"))


def pack_store(store) -> PackedGraphs:
    """Vectorised :func:`pack` of a whole :class:`engine.data.cgstore.CGStore`.

    The store keeps one vocabulary of distinct node rows; features are computed once per
    vocabulary row and gathered, so no ``CG`` / ``Node`` object is ever materialised."""
    n_graphs = len(store.node_ptr) - 1
    if n_graphs <= 0:
        raise ValueError("pack: no computation graphs given")
    vocab = [(OP_INDEX[op], *ins, *outs, *(weight or _ZERO_W), max(stride), max(dil), 1 if bias else 0)
             for op, ins, outs, weight, _groups, stride, dil, bias, _fl, _pa in store.rows]
    vocab_table = np.array(vocab, dtype=np.int32).reshape(len(vocab), 14)
    vocab_flops = np.array([r[8] for r in store.rows], dtype=np.float64)
    node_row = np.asarray(store.node_row, dtype=np.int64)
    table = vocab_table[node_row]
    node_flops = vocab_flops[node_row]
    ptr = np.asarray(store.node_ptr, dtype=np.int64)
    eptr = np.asarray(store.edge_ptr, dtype=np.int64)
    sizes, esizes = np.diff(ptr), np.diff(eptr)
    graph_of_node = np.repeat(np.arange(n_graphs), sizes)
    base_h = np.ones(n_graphs, dtype=np.float64)
    inputs = np.flatnonzero(table[:, _T_OP] == OP_INDEX["input"])
    base_h[graph_of_node[inputs][::-1]] = table[inputs[::-1], _T_OH]  # first input node of each graph wins
    totals = np.asarray(store.flops, dtype=np.float64)
    # graph-independent columns once per vocabulary row, then the three per-graph columns
    ones = np.ones(len(vocab))
    dense = _dense_features(vocab_table, vocab_flops, ones, ones)[node_row]
    bh, tot = base_h[graph_of_node], totals[graph_of_node]
    dense[:, 6] = table[:, _T_IH] / bh
    dense[:, 7] = table[:, _T_OH] / bh
    dense[:, 15] = np.where(tot > 0, node_flops / np.where(tot > 0, tot, 1.0), 0.0)
    edges = np.asarray(store.edges, dtype=np.int64).reshape(-1, 2) + np.repeat(ptr[:-1], esizes)[:, None]
    return PackedGraphs(
        op=torch.from_numpy(table[:, _T_OP].astype(np.int64)), dense=torch.from_numpy(dense),
        edge_index=torch.from_numpy(np.ascontiguousarray(edges.T)),
        ptr=torch.from_numpy(ptr.copy()), eptr=torch.from_numpy(eptr.copy()),
        flops=torch.from_numpy(totals.copy()), params=torch.from_numpy(np.asarray(store.params, dtype=np.float64)))


def as_packed(graphs) -> PackedGraphs:
    """Accept a :class:`PackedGraphs`, a ``CGStore``, one CG or a sequence of CGs."""
    if isinstance(graphs, PackedGraphs):
        return graphs
    if isinstance(graphs, CG):
        return pack([graphs])
    if _is_store(graphs):
        return pack_store(graphs)
    if isinstance(graphs, (str, bytes, dict)) or not hasattr(graphs, "__iter__"):
        raise TypeError(f"expected CGs (a CG, a sequence of CGs, a PackedGraphs or a CGStore), "
                        f"got a {type(graphs).__name__}")
    return pack(list(graphs))
