"""On-disk cache of family CGs: build every NAS-Bench-201 CG once, load it in seconds afterwards.

:func:`cached_cgs` returns ``[family.to_cg(s) for s in specs]`` (identical CGs: same nodes,
edges, names and meta), reading what it can from the cache and building (optionally in worker
processes) and storing the rest.

Layout and format
-----------------
``cache_dir()/cgs/<family>-<cg_version>-<source hash>-f<CG format>-c<CACHE_VERSION>/shard-*.npz``.
A shard is a plain ``.npz`` (loaded with ``allow_pickle=False``; nothing is ever unpickled):

* ``keys``: one build key per CG (``sha256`` of the family's *normalised* spec, see
  :func:`build_key`; not the isomorphism-invariant ``spec_hash``, because e.g. two isomorphic
  NB-101 labellings can split channels differently);
* a vocabulary of distinct node rows (``rows``: JSON of ``[op, in, out, weight, groups, stride,
  dilation, bias, flops, params]``) and node names (``names``: JSON list), shared by all CGs;
* per CG: ``node_ptr`` offsets into ``node_row`` / ``node_name`` (int32 vocabulary ids) and
  ``edge_ptr`` offsets into ``edges`` (int32 pairs); ``cg_names`` / ``metas`` (JSON).

The directory name changes with the family's ``cg_version`` attribute (bump it when a builder
changes), a hash of the source files of the family module and of the ``engine`` modules it uses
(so an edited builder never serves stale CGs, even without a bump),
:data:`engine.graphs.cg.FORMAT_VERSION` and :data:`CACHE_VERSION`.  New CGs go to a new shard (atomic rename); more than :data:`MAX_SHARDS` shards are
merged into one.  A shard that cannot be read is ignored (its CGs are rebuilt).
"""

from __future__ import annotations

import functools
import gc
import hashlib
import json
import os
import sys
import time
import types
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from engine.families.base import Family, SpecError, get
from engine.graphs.cg import CG, FORMAT_VERSION, Node
from engine.paths import cache_dir
from engine.train.callbacks import Callback, notify

#: bump when the shard layout changes
CACHE_VERSION = 1
#: merge shards when a family has more than this many
MAX_SHARDS = 8
#: below this many CGs to build, build in this process (worker start-up costs seconds)
PARALLEL_MIN = 1024
#: CGs per work item
CHUNK = 256

_ARRAYS = ("keys", "rows", "names", "node_ptr", "node_row", "node_name", "edge_ptr", "edges", "cg_names", "metas")


def build_key(family: Family, spec: Any, options: dict[str, Any] | None = None) -> str:
    """Cache key of one spec: hash of the family's normalised spec and the ``to_cg`` options
    (raises ``SpecError``)."""
    norm = family.validate(spec)
    text = json.dumps(norm, sort_keys=True, separators=(",", ":"), default=str)
    opts = json.dumps(options or {}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{family.name}:{text}:{opts}".encode()).hexdigest()[:32]


@functools.cache
def _source_tag(module_name: str) -> str:
    """Hash of the source of a family module and of the ``engine`` modules it takes objects from
    (builders, helpers) plus the CG core, so editing a builder never serves stale CGs."""
    mod = sys.modules.get(module_name)
    if mod is None:
        return "nosrc"
    deps = {module_name, "engine.graphs.cg", "engine.graphs.ops"}
    for value in vars(mod).values():
        dep = value.__name__ if isinstance(value, types.ModuleType) else getattr(value, "__module__", None)
        if isinstance(dep, str) and dep.startswith("engine.") and dep in sys.modules:
            deps.add(dep)
    h = hashlib.sha256()
    for dep in sorted(deps):
        path = getattr(sys.modules.get(dep), "__file__", None)
        if path:
            try:
                h.update(Path(path).read_bytes())
            except OSError:
                h.update(dep.encode())
    return h.hexdigest()[:8]


def family_cache_dir(family: Family | str, root: Path | None = None) -> Path:
    """The folder holding ``family``'s shards (not created): named after the family, its
    ``cg_version`` attribute, a hash of its builder sources and the CG / cache formats."""
    fam = get(family) if isinstance(family, str) else family
    version = str(getattr(fam, "cg_version", "0"))
    tag = f"{fam.name}-{version}-{_source_tag(type(fam).__module__)}-f{FORMAT_VERSION}-c{CACHE_VERSION}"
    return (root or cache_dir()) / "cgs" / tag


# ---------------------------------------------------------------------------------------------
# packing CGs into arrays
# ---------------------------------------------------------------------------------------------

def _row_of(nd: Node) -> tuple:
    return (nd.op, tuple(nd.in_shape), tuple(nd.out_shape), None if nd.weight is None else tuple(nd.weight),
            int(nd.groups), tuple(nd.stride), tuple(nd.dilation), bool(nd.bias), int(nd.flops), int(nd.params))


def _row_from_json(r: list) -> tuple:
    return (r[0], tuple(r[1]), tuple(r[2]), None if r[3] is None else tuple(r[3]), r[4], tuple(r[5]), tuple(r[6]),
            bool(r[7]), r[8], r[9])


@dataclass
class _Pack:
    """Arrays of many CGs sharing a row / name vocabulary (in memory form of a shard)."""

    keys: list[str]
    rows: list[tuple]
    names: list[str]
    node_ptr: np.ndarray
    node_row: np.ndarray
    node_name: np.ndarray
    edge_ptr: np.ndarray
    edges: np.ndarray
    cg_names: list[str]
    metas: list[str]

    def __len__(self) -> int:
        return len(self.keys)

    @classmethod
    def from_cgs(cls, keys: Sequence[str], cgs: Sequence[CG]) -> _Pack:
        rows: dict[tuple, int] = {}
        names: dict[str, int] = {}
        node_row: list[int] = []
        node_name: list[int] = []
        edges: list[int] = []
        node_ptr = [0]
        edge_ptr = [0]
        for cg in cgs:
            for nd in cg.nodes:
                r = _row_of(nd)
                node_row.append(rows.setdefault(r, len(rows)))
                node_name.append(names.setdefault(nd.name, len(names)))
            for u, v in cg.edges:
                edges.append(u)
                edges.append(v)
            node_ptr.append(len(node_row))
            edge_ptr.append(len(edges) // 2)
        return cls(list(keys), list(rows), list(names), np.asarray(node_ptr, np.int64),
                   np.asarray(node_row, np.int32), np.asarray(node_name, np.int32), np.asarray(edge_ptr, np.int64),
                   np.asarray(edges, np.int32).reshape(-1, 2), [cg.name for cg in cgs],
                   [json.dumps(cg.meta, separators=(",", ":"), default=str) for cg in cgs])

    @classmethod
    def merge(cls, packs: Sequence[_Pack]) -> _Pack:
        rows: dict[tuple, int] = {}
        names: dict[str, int] = {}
        node_row, node_name, node_ptr, edge_ptr, edges = [], [], [np.zeros(1, np.int64)], [np.zeros(1, np.int64)], []
        keys, cg_names, metas = [], [], []
        n_off = e_off = 0
        for p in packs:
            rmap = np.asarray([rows.setdefault(r, len(rows)) for r in p.rows] or [0], np.int32)
            nmap = np.asarray([names.setdefault(s, len(names)) for s in p.names] or [0], np.int32)
            node_row.append(rmap[p.node_row])
            node_name.append(nmap[p.node_name])
            node_ptr.append(p.node_ptr[1:] + n_off)
            edge_ptr.append(p.edge_ptr[1:] + e_off)
            edges.append(p.edges)
            n_off += int(p.node_ptr[-1])
            e_off += int(p.edge_ptr[-1])
            keys.extend(p.keys)
            cg_names.extend(p.cg_names)
            metas.extend(p.metas)
        cat = np.concatenate
        return cls(keys, list(rows), list(names), cat(node_ptr), cat(node_row or [np.zeros(0, np.int32)]),
                   cat(node_name or [np.zeros(0, np.int32)]), cat(edge_ptr),
                   cat(edges or [np.zeros((0, 2), np.int32)]).reshape(-1, 2), cg_names, metas)

    def cg(self, i: int) -> CG:
        """Materialise CG ``i`` (fresh objects; call with the garbage collector paused for speed)."""
        a, b = int(self.node_ptr[i]), int(self.node_ptr[i + 1])
        rows, names = self.rows, self.names
        nodes = []
        for k, (r, m) in enumerate(zip(self.node_row[a:b].tolist(), self.node_name[a:b].tolist())):
            op, ins, outs, weight, groups, stride, dilation, bias, flops, params = rows[r]
            nodes.append(Node(k, op, ins, outs, names[m], weight, groups, stride, dilation, bias, flops, params))
        ea, eb = int(self.edge_ptr[i]), int(self.edge_ptr[i + 1])
        e = self.edges[ea:eb]
        edges = list(zip(e[:, 0].tolist(), e[:, 1].tolist()))
        return CG(nodes=nodes, edges=edges, name=self.cg_names[i], meta=json.loads(self.metas[i]))

    # --- disk ------------------------------------------------------------------------------
    def save(self, path: Path) -> None:
        def text(obj) -> np.ndarray:
            return np.frombuffer(json.dumps(obj, separators=(",", ":")).encode(), dtype=np.uint8)

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        with open(tmp, "wb") as fh:
            np.savez_compressed(
                fh, keys=np.asarray(self.keys, dtype="U32"), rows=text(self.rows), names=text(self.names),
                node_ptr=self.node_ptr, node_row=self.node_row, node_name=self.node_name, edge_ptr=self.edge_ptr,
                edges=self.edges, cg_names=text(self.cg_names), metas=text(self.metas))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> _Pack:
        with open(path, "rb") as fh, np.load(fh, allow_pickle=False) as z:  # fh: closed even when np.load fails
            missing = [k for k in _ARRAYS if k not in z.files]
            if missing:
                raise ValueError(f"{path}: missing arrays {missing}")

            def text(k: str):
                return json.loads(z[k].tobytes().decode())

            pack = cls([str(k) for k in z["keys"].tolist()], [_row_from_json(r) for r in text("rows")], text("names"),
                       z["node_ptr"], z["node_row"], z["node_name"], z["edge_ptr"], z["edges"].reshape(-1, 2),
                       text("cg_names"), text("metas"))
        if len(pack.metas) != len(pack.keys):
            raise ValueError(f"{path}: inconsistent array lengths")
        check_arrays(path, len(pack.keys), len(pack.rows), len(pack.names), pack.node_ptr, pack.node_row,
                     pack.node_name, pack.edge_ptr, pack.edges)
        return pack


def check_arrays(path: Any, n: int, n_rows: int, n_names: int, node_ptr: np.ndarray, node_row: np.ndarray,
                 node_name: np.ndarray, edge_ptr: np.ndarray, edges: np.ndarray) -> None:
    """Raise ``ValueError`` naming ``path`` unless the packed arrays of ``n`` CGs (a cache shard,
    an :class:`engine.data.cgstore.CGStore`) are consistent: offsets, vocabulary ids and every
    edge inside its own CG.  A file that passes materialises without an ``IndexError``."""
    if len(node_ptr) != n + 1 or len(edge_ptr) != n + 1:
        raise ValueError(f"{path}: inconsistent array lengths")
    if (n and (int(node_ptr[0]) != 0 or int(edge_ptr[0]) != 0 or np.any(np.diff(node_ptr) < 0)
               or np.any(np.diff(edge_ptr) < 0))
            or int(node_ptr[-1]) != len(node_row) or int(edge_ptr[-1]) != len(edges) or len(node_name) != len(node_row)):
        raise ValueError(f"{path}: offsets do not match the node / edge arrays")
    if len(node_row) and (int(node_row.min()) < 0 or int(node_row.max()) >= n_rows
                          or int(node_name.min()) < 0 or int(node_name.max()) >= n_names):
        raise ValueError(f"{path}: vocabulary ids out of range")
    if len(edges):  # per graph, the largest endpoint against its node count (no per-edge temporaries)
        flat = np.asarray(edges).reshape(-1)
        has = np.flatnonzero(np.diff(edge_ptr) > 0)
        largest = np.maximum.reduceat(flat, 2 * np.asarray(edge_ptr, dtype=np.int64)[has])
        if int(flat.min()) < 0 or np.any(largest >= np.diff(node_ptr)[has]):
            raise ValueError(f"{path}: an edge points outside its graph")


# ---------------------------------------------------------------------------------------------
# shard index (memoised per process)
# ---------------------------------------------------------------------------------------------

_LOADED: dict[str, tuple[tuple[float, int], _Pack]] = {}


def _shards(folder: Path) -> list[tuple[Path, _Pack]]:
    out = []
    if not folder.exists():
        return out
    for path in sorted(folder.glob("shard-*.npz")):
        try:
            st = path.stat()
            sig = (st.st_mtime, st.st_size)
            hit = _LOADED.get(str(path))
            if hit is None or hit[0] != sig:
                hit = (sig, _Pack.load(path))
                _LOADED[str(path)] = hit
            out.append((path, hit[1]))
        except Exception as exc:  # noqa: BLE001 - a shard is only a cache: any unreadable one (truncated,
            # corrupted bytes -> zlib.error, edited, another format) is ignored and its CGs are rebuilt
            import warnings

            warnings.warn(f"CG cache: ignoring unreadable shard {path} ({exc})", stacklevel=2)
            _LOADED.pop(str(path), None)
    return out


def _write_shard(folder: Path, pack: _Pack) -> Path:
    path = folder / f"shard-{time.strftime('%Y%m%d%H%M%S')}-{os.getpid()}-{uuid.uuid4().hex[:8]}.npz"
    pack.save(path)
    st = path.stat()
    _LOADED[str(path)] = ((st.st_mtime, st.st_size), pack)
    return path


def _compact(folder: Path, shards: list[tuple[Path, _Pack]]) -> list[tuple[Path, _Pack]]:
    """Merge all shards into one (deduplicated by key); best effort."""
    seen: set[str] = set()
    parts = []
    for _, p in shards:
        idx = [i for i, k in enumerate(p.keys) if not (k in seen or seen.add(k))]
        parts.append(p if len(idx) == len(p) else _Pack.from_cgs([p.keys[i] for i in idx], _materialise(p, idx)))
    merged = _Pack.merge(parts)
    try:
        path = _write_shard(folder, merged)
    except OSError:
        return shards
    for old, _ in shards:
        try:
            old.unlink()
        except OSError:
            pass
        _LOADED.pop(str(old), None)
    return [(path, merged)]


def _materialise(pack: _Pack, idx: Sequence[int]) -> list[CG]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        return [pack.cg(i) for i in idx]
    finally:
        if enabled:
            gc.enable()


# ---------------------------------------------------------------------------------------------
# building
# ---------------------------------------------------------------------------------------------

def _build_pack(family_name: str, keys: list[str], specs: list[Any], options: dict[str, Any]) -> _Pack:
    """Worker entry point: build and pack the CGs of ``specs``."""
    import torch

    torch.set_num_threads(1)
    fam = get(family_name)
    return _Pack.from_cgs(keys, [fam.to_cg(s, **options) for s in specs])


def _build(fam: Family, keys: list[str], specs: list[Any], callback: Callback | None, workers: int,
           options: dict[str, Any]) -> _Pack:
    total = len(specs)
    chunks = [(keys[i:i + CHUNK], specs[i:i + CHUNK]) for i in range(0, total, CHUNK)]
    packs: list[_Pack] = []
    done = 0
    notify(callback, "cg-cache", 0, total, {"family": fam.name})
    if workers > 1 and len(chunks) > 1:
        import multiprocessing as mp

        try:
            with mp.get_context("spawn").Pool(workers) as pool:
                for pack in pool.imap(_pool_build, [(fam.name, k, s, options) for k, s in chunks]):
                    packs.append(pack)
                    done += len(pack)
                    notify(callback, "cg-cache", done, total, {"family": fam.name})
            return _Pack.merge(packs)
        except (KeyError, OSError, RuntimeError, ImportError) as exc:  # e.g. a family only registered here
            import warnings

            warnings.warn(f"CG cache: worker processes failed ({type(exc).__name__}: {exc}); building in this "
                          "process", stacklevel=3)
            packs, done = [], 0
    for k, s in chunks:
        packs.append(_Pack.from_cgs(k, [fam.to_cg(x, **options) for x in s]))
        done += len(s)
        notify(callback, "cg-cache", done, total, {"family": fam.name})
    return _Pack.merge(packs)


def _pool_build(args: tuple[str, list[str], list[Any], dict[str, Any]]) -> _Pack:
    return _build_pack(*args)


def _spawn_safe() -> bool:
    """Whether worker processes may be spawned by default: a spawned worker imports the main
    module again, which for a script run by path (``python my_script.py``) runs its unguarded
    top-level code once more per worker (a script without ``if __name__ == "__main__"`` would
    repeat all its work).  ``python -m ...`` (its module is imported by name), an interactive
    session or a notebook are safe.  Inside the Streamlit app the main module is the page script
    (a file without a spec), so the app builds missing CGs in its own process: a worker would
    run the page again."""
    main = sys.modules.get("__main__")
    return getattr(main, "__file__", None) is None or getattr(main, "__spec__", None) is not None


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------

def cached_cgs(family_name: str, specs: Sequence[Any], callback: Callback | None = None,
               workers: int | None = None, root: Path | None = None,
               options: dict[str, Any] | None = None) -> list[CG]:
    """``[get(family_name).to_cg(s, **options) for s in specs]`` through the on-disk cache.

    ``workers``: processes used to build missing CGs (default: up to 2 when at least
    :data:`PARALLEL_MIN` are missing and the main module can be spawned safely (see
    :func:`_spawn_safe`: not a script run by path), else this process).  Progress goes to ``callback`` as
    stage ``"cg-cache"`` (building) and ``"cg-load"`` (reading).  An invalid spec raises
    :class:`~engine.families.base.SpecError` naming its index before anything is built.
    ``options`` (e.g. ``{"num_classes": 100}`` for NB-201) are part of the cache key; ``root``
    overrides :func:`engine.paths.cache_dir`.
    """
    options = dict(options or {})
    fam = get(family_name)
    specs = list(specs)
    keys = []
    for i, s in enumerate(specs):
        try:
            keys.append(build_key(fam, s, options))
        except SpecError as exc:
            raise SpecError(f"specs[{i}]: {exc}") from None
    folder = family_cache_dir(fam, root)
    shards = _shards(folder)
    if len(shards) > MAX_SHARDS:
        shards = _compact(folder, shards)
    where: dict[str, tuple[_Pack, int]] = {}
    for _, pack in shards:
        for j, k in enumerate(pack.keys):
            where.setdefault(k, (pack, j))
    missing: dict[str, Any] = {}
    for k, s in zip(keys, specs):
        if k not in where and k not in missing:
            missing[k] = s
    if missing:
        if workers is None:
            workers = min(2, os.cpu_count() or 1) if len(missing) >= PARALLEL_MIN and _spawn_safe() else 1
        pack = _build(fam, list(missing), list(missing.values()), callback, max(1, int(workers)), options)
        try:
            _write_shard(folder, pack)
        except OSError as exc:  # read-only cache: still return the CGs
            import warnings

            warnings.warn(f"CG cache: cannot write to {folder} ({exc})", stacklevel=2)
        for j, k in enumerate(pack.keys):
            where[k] = (pack, j)
    out: list[CG] = []
    total = len(specs)
    enabled = gc.isenabled()
    gc.disable()
    try:
        for i, k in enumerate(keys):
            pack, j = where[k]
            out.append(pack.cg(j))
            if callback is not None and (i + 1) % 1000 == 0:
                notify(callback, "cg-load", i + 1, total, {"family": fam.name})
    finally:
        if enabled:
            gc.enable()
    notify(callback, "cg-load", total, total, {"family": fam.name})
    return out


def clear(family_name: str | None = None, root: Path | None = None) -> int:
    """Delete cached shards (of one family or all); returns the number of files removed."""
    base = (root or cache_dir()) / "cgs"
    folders = [family_cache_dir(family_name, root)] if family_name else (
        [p for p in base.iterdir() if p.is_dir()] if base.exists() else [])
    removed = 0
    for folder in folders:
        for path in folder.glob("shard-*.npz"):
            try:
                path.unlink()
                removed += 1
            except OSError:
                pass
            _LOADED.pop(str(path), None)
    return removed
