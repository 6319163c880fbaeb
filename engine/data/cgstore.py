"""Compact storage for many CGs (tens of thousands in little memory).

A :class:`engine.graphs.cg.CG` of NAS-Bench-201 has a few hundred ``Node`` objects; 15,625 of
them as Python objects take several GB.  Most node *rows* (op, shapes, weight, stride, FLOPs,
params) repeat across the architectures of a family, so :class:`CGStore` keeps

* a shared vocabulary of distinct node rows (and of node names),
* per CG only an ``int32`` array of vocabulary ids and an ``int32`` edge array,

and materialises a real ``CG`` on indexing (``store[i]``).  The store is a read-only
``Sequence[CG]``: iterate it, index it, ``len()`` it, ``take()`` a subset, ``concat()`` several.
``save()`` / ``load()`` use ``.npz`` arrays plus JSON (never pickle).
"""

from __future__ import annotations

import json
import uuid
import zipfile
from array import array
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.graphs.cg import CG, Node

STORE_VERSION = 1

#: node row = (op, in_shape, out_shape, weight, groups, stride, dilation, bias, flops, params)
Row = tuple


def _row_of(nd: Node) -> Row:
    return (nd.op, tuple(nd.in_shape), tuple(nd.out_shape), None if nd.weight is None else tuple(nd.weight),
            int(nd.groups), tuple(nd.stride), tuple(nd.dilation), bool(nd.bias), int(nd.flops), int(nd.params))


class CGStoreBuilder:
    """Accumulates CGs one at a time (each CG can be dropped right after :meth:`add`)."""

    def __init__(self) -> None:
        self.rows: list[Row] = []
        self.row_index: dict[Row, int] = {}
        self.names: list[str] = []
        self.name_index: dict[str, int] = {}
        self.node_row = array("i")
        self.node_name = array("i")
        self.node_ptr = array("q", [0])
        self.edges = array("i")
        self.edge_ptr = array("q", [0])
        self.cg_names: list[str] = []
        self.cg_meta: list[str] = []
        self.flops = array("q")
        self.params = array("q")

    def _intern_row(self, row: Row) -> int:
        idx = self.row_index.get(row)
        if idx is None:
            idx = len(self.rows)
            self.rows.append(row)
            self.row_index[row] = idx
        return idx

    def _intern_name(self, name: str) -> int:
        idx = self.name_index.get(name)
        if idx is None:
            idx = len(self.names)
            self.names.append(name)
            self.name_index[name] = idx
        return idx

    def add(self, cg: CG) -> int:
        """Append ``cg``; returns its position."""
        for nd in cg.nodes:
            self.node_row.append(self._intern_row(_row_of(nd)))
            self.node_name.append(self._intern_name(nd.name))
        self.node_ptr.append(len(self.node_row))
        for u, v in cg.edges:
            self.edges.append(u)
            self.edges.append(v)
        self.edge_ptr.append(len(self.edges) // 2)
        self.cg_names.append(cg.name)
        self.cg_meta.append(json.dumps(cg.meta, sort_keys=True, default=str) if cg.meta else "")
        self.flops.append(int(cg.flops))
        self.params.append(int(cg.params))
        return len(self.cg_names) - 1

    def extend(self, cgs: Iterable[CG]) -> None:
        for cg in cgs:
            self.add(cg)

    def build(self) -> CGStore:
        return CGStore(
            rows=self.rows, names=self.names,
            node_row=np.frombuffer(self.node_row, dtype=np.int32).copy(),
            node_name=np.frombuffer(self.node_name, dtype=np.int32).copy(),
            node_ptr=np.frombuffer(self.node_ptr, dtype=np.int64).copy(),
            edges=np.frombuffer(self.edges, dtype=np.int32).reshape(-1, 2).copy(),
            edge_ptr=np.frombuffer(self.edge_ptr, dtype=np.int64).copy(),
            cg_names=self.cg_names, cg_meta=self.cg_meta,
            flops=np.frombuffer(self.flops, dtype=np.int64).copy(),
            params=np.frombuffer(self.params, dtype=np.int64).copy())


class CGStore(Sequence):
    """Read-only compact sequence of CGs (see module docstring)."""

    def __init__(self, rows: list[Row], names: list[str], node_row: np.ndarray, node_name: np.ndarray,
                 node_ptr: np.ndarray, edges: np.ndarray, edge_ptr: np.ndarray, cg_names: list[str],
                 cg_meta: list[str], flops: np.ndarray, params: np.ndarray) -> None:
        self.rows = rows
        self.names = names
        self.node_row = node_row
        self.node_name = node_name
        self.node_ptr = node_ptr
        self.edges = edges
        self.edge_ptr = edge_ptr
        self.cg_names = cg_names
        self.cg_meta = cg_meta
        self.flops = flops
        self.params = params

    # --- construction ---------------------------------------------------------------------------
    @classmethod
    def from_cgs(cls, cgs: Iterable[CG]) -> CGStore:
        b = CGStoreBuilder()
        b.extend(cgs)
        return b.build()

    @classmethod
    def empty(cls) -> CGStore:
        return CGStoreBuilder().build()

    # --- Sequence ---------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.cg_names)

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return self.take(range(*i.indices(len(self))))
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"CG index {i} out of range (store holds {n})")
        return self.get(i % n if i < 0 else i)

    def __iter__(self) -> Iterator[CG]:
        for i in range(len(self)):
            yield self.get(i)

    def get(self, i: int) -> CG:
        """Materialise CG ``i`` (fresh ``Node`` objects; safe to modify)."""
        a, b = int(self.node_ptr[i]), int(self.node_ptr[i + 1])
        rows, names = self.rows, self.names
        nodes = []
        for k, (r, nm) in enumerate(zip(self.node_row[a:b].tolist(), self.node_name[a:b].tolist())):
            op, ins, outs, weight, groups, stride, dilation, bias, flops, params = rows[r]
            nodes.append(Node(id=k, op=op, in_shape=ins, out_shape=outs, name=names[nm], weight=weight,
                              groups=groups, stride=stride, dilation=dilation, bias=bias, flops=flops,
                              params=params))
        ea, eb = int(self.edge_ptr[i]), int(self.edge_ptr[i + 1])
        edges = [(u, v) for u, v in self.edges[ea:eb].tolist()]
        meta = json.loads(self.cg_meta[i]) if self.cg_meta[i] else {}
        return CG(nodes=nodes, edges=edges, name=self.cg_names[i], meta=meta)

    def num_nodes(self) -> np.ndarray:
        return np.diff(self.node_ptr)

    def num_edges(self) -> np.ndarray:
        return np.diff(self.edge_ptr)

    def nbytes(self) -> int:
        """Approximate size of the arrays (vocabulary objects excluded)."""
        return int(sum(a.nbytes for a in (self.node_row, self.node_name, self.node_ptr, self.edges,
                                          self.edge_ptr, self.flops, self.params)))

    def __repr__(self) -> str:
        return (f"CGStore({len(self)} CGs, {len(self.node_row)} nodes, {len(self.rows)} distinct node rows, "
                f"{self.nbytes() / 1e6:.1f} MB arrays)")

    # --- subsets and merging ------------------------------------------------------------------------
    def take(self, idx: Iterable[int]) -> CGStore:
        """A new store with CGs ``idx`` (in that order); the vocabulary is shared."""
        idx = np.asarray(list(idx) if not isinstance(idx, np.ndarray) else idx, dtype=np.int64)
        if idx.size and (idx.min() < 0 or idx.max() >= len(self)):
            raise IndexError(f"CG indices must lie in 0..{len(self) - 1}")
        node_sel, node_ptr = _gather(self.node_ptr, idx)
        edge_sel, edge_ptr = _gather(self.edge_ptr, idx)
        return CGStore(rows=self.rows, names=self.names, node_row=self.node_row[node_sel],
                       node_name=self.node_name[node_sel], node_ptr=node_ptr, edges=self.edges[edge_sel],
                       edge_ptr=edge_ptr, cg_names=[self.cg_names[i] for i in idx.tolist()],
                       cg_meta=[self.cg_meta[i] for i in idx.tolist()], flops=self.flops[idx],
                       params=self.params[idx])

    @classmethod
    def concat(cls, stores: Sequence[CGStore]) -> CGStore:
        """One store holding the CGs of ``stores`` in order (vocabularies merged)."""
        stores = list(stores)
        if not stores:
            return cls.empty()
        if len(stores) == 1:
            return stores[0]
        rows: list[Row] = []
        row_index: dict[Row, int] = {}
        names: list[str] = []
        name_index: dict[str, int] = {}
        node_rows, node_names, edges, node_lens, edge_lens = [], [], [], [], []
        for s in stores:
            rmap = np.empty(len(s.rows), dtype=np.int32)
            for k, r in enumerate(s.rows):
                j = row_index.get(r)
                if j is None:
                    j = row_index[r] = len(rows)
                    rows.append(r)
                rmap[k] = j
            nmap = np.empty(len(s.names), dtype=np.int32)
            for k, nm in enumerate(s.names):
                j = name_index.get(nm)
                if j is None:
                    j = name_index[nm] = len(names)
                    names.append(nm)
                nmap[k] = j
            node_rows.append(rmap[s.node_row] if len(s.node_row) else s.node_row)
            node_names.append(nmap[s.node_name] if len(s.node_name) else s.node_name)
            edges.append(s.edges)
            node_lens.append(np.diff(s.node_ptr))
            edge_lens.append(np.diff(s.edge_ptr))
        return cls(rows=rows, names=names, node_row=np.concatenate(node_rows).astype(np.int32),
                   node_name=np.concatenate(node_names).astype(np.int32),
                   node_ptr=np.concatenate([[0], np.cumsum(np.concatenate(node_lens))]).astype(np.int64),
                   edges=np.concatenate(edges).reshape(-1, 2).astype(np.int32),
                   edge_ptr=np.concatenate([[0], np.cumsum(np.concatenate(edge_lens))]).astype(np.int64),
                   cg_names=[n for s in stores for n in s.cg_names], cg_meta=[m for s in stores for m in s.cg_meta],
                   flops=np.concatenate([s.flops for s in stores]).astype(np.int64),
                   params=np.concatenate([s.params for s in stores]).astype(np.int64))

    # --- persistence (no pickle) ------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write ``path`` (``.npz``) atomically; the vocabulary travels as JSON text."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = {"version": STORE_VERSION, "rows": [_row_to_json(r) for r in self.rows], "names": self.names,
                  "cg_names": self.cg_names, "cg_meta": self.cg_meta}
        blob = np.frombuffer(json.dumps(header, separators=(",", ":")).encode(), dtype=np.uint8)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")  # unique: two processes may save at once
        with open(tmp, "wb") as fh:
            np.savez(fh, header=blob, node_row=self.node_row, node_name=self.node_name, node_ptr=self.node_ptr,
                     edges=self.edges, edge_ptr=self.edge_ptr, flops=self.flops, params=self.params)
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> CGStore:
        """Read a store written by :meth:`save`; raises ``ValueError`` when the file is not one."""
        path = Path(path)
        try:
            with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # fh: closed even when np.load fails
                header = json.loads(z["header"].tobytes().decode())
                arrays = {k: z[k] for k in ("node_row", "node_name", "node_ptr", "edges", "edge_ptr", "flops",
                                             "params")}
            if not isinstance(header, dict):
                raise ValueError("its header is not an object")
            if header.get("version") != STORE_VERSION:
                raise ValueError(f"CG store version {header.get('version')!r}, expected {STORE_VERSION}")
            store = cls(rows=[_row_from_json(r) for r in header["rows"]], names=list(header["names"]),
                        cg_names=list(header["cg_names"]), cg_meta=list(header["cg_meta"]), **arrays)
        except (OSError, KeyError, ValueError, UnicodeDecodeError, EOFError, IndexError, TypeError,
                zipfile.BadZipFile) as exc:  # truncated, edited or another format
            raise ValueError(f"{path}: not a CG store file ({exc})") from None
        from engine.families.cache import check_arrays

        n = len(store.cg_names)
        if len(store.flops) != n or len(store.params) != n or len(store.cg_meta) != n:
            raise ValueError(f"{path}: inconsistent CG store (array lengths disagree)")
        check_arrays(f"{path}: inconsistent CG store", n, len(store.rows), len(store.names), store.node_ptr,
                     store.node_row, store.node_name, store.edge_ptr, store.edges)
        return store


def _gather(ptr: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Element indices of segments ``idx`` of a CSR ``ptr``, and the new ``ptr``."""
    starts, ends = ptr[idx], ptr[idx + 1]
    lens = ends - starts
    new_ptr = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    total = int(new_ptr[-1])
    if total == 0:
        return np.zeros(0, dtype=np.int64), new_ptr
    offsets = np.repeat(starts - new_ptr[:-1], lens)
    return np.arange(total, dtype=np.int64) + offsets, new_ptr


def _row_to_json(r: Row) -> list[Any]:
    op, ins, outs, weight, groups, stride, dilation, bias, flops, params = r
    return [op, list(ins), list(outs), None if weight is None else list(weight), groups, list(stride),
            list(dilation), bias, flops, params]


def _row_from_json(r: list[Any]) -> Row:
    op, ins, outs, weight, groups, stride, dilation, bias, flops, params = r
    return (op, tuple(ins), tuple(outs), None if weight is None else tuple(weight), int(groups), tuple(stride),
            tuple(dilation), bool(bias), int(flops), int(params))
