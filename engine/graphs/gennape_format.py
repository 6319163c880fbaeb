"""Import the GENNAPE authors' computation graphs (pickled caches and JSON state dicts).

The authors' code (``model_src.comp_graph.tf_comp_graph``, reference §1) stores a CG as a
``ComputeGraph`` with ``weighted_nodes + regular_nodes`` (edges index into that list), each
node carrying ``label``, ``op_type_idx`` (their 32-entry vocabulary), ``resolution = [H_in,
H_out, W_in, W_out, C_in, C_out]``, ``strides`` (NHWC), ``metadata`` (``use_bias``,
``dilations``, ...) and, for weighted nodes, ``shape = [C_in, C_out, k1, k2]``.

Safety
------
Pickles are read with :class:`RestrictedUnpickler`, which resolves **only** the three GENNAPE
classes (mapped to inert stand-ins that just hold their ``__dict__``) and a tiny allowlist of
harmless builtins (``set``, ``frozenset``, ``collections.OrderedDict``, and
``copyreg._reconstructor`` / ``object`` used by protocol 0-1 pickles of plain classes).  Any
other global -- ``os.system``, ``numpy`` arrays, the authors' NB-301 ``Genotype`` -- is refused
with :class:`UnsafePickleError` naming it.  (So NB-101 / NB-301 caches whose ``original config``
holds numpy arrays or Genotypes are refused; convert them to the JSON state-dict format.)

Conversion to our vocabulary
----------------------------
op index / label -> our op: conv -> ``conv`` (``depthwise`` when the label says depthwise),
depthwise -> ``depthwise``, weighted matmul -> ``linear`` (regular matmul -> ``matmul``),
batchnorm, relu, relu6, add, mul, concat, maxpool, avgpool, sigmoid, tanh, swish -> ``silu``,
gelu, mean and global -> ``mean``, identity, zero; ``paddings`` is contracted into edges (we
contract pads); a ``spacetobatchnd -> conv -> batchtospacend`` triplet (TF dilated conv) is
contracted to the conv with the outer resolution and ``dilation = round(H_outer / H_inner)``,
lone ones are contracted; spacetodepth / depthtospace, ``<oov>`` and reserved -> ``other``.
Extra nodes labelled input / output inside the graph are contracted; nodes off every
input -> output path are dropped (``meta["dropped_nodes"]``).  Shapes: ``in = (H_in, W_in,
C_in)``, ``out = (H_out, W_out, C_out)``; weights use the activation channels (the stored
``shape`` channels are sometimes normalised floats) and the kernel from ``shape`` (FC: 1x1);
FLOPs / params come from :func:`engine.graphs.cg.node_cost` (BN counted as affine, 2C).
Where the authors' resolutions break our shape rule (a shape-preserving node reading more
than its parent produces) the node's input shape is set to its parent's output
(``meta["repaired_shapes"]``).
"""

from __future__ import annotations

import collections
import copyreg
import io
import json
import math
import pickle
from typing import Any

from engine.graphs.cg import CG, MAX_NODES, SHAPE_PRESERVING_OPS, CGError, Node, node_cost, reachable, read_file

__all__ = ["load_gennape", "load_gennape_records", "cg_from_state", "RestrictedUnpickler", "UnsafePickleError",
           "GENNAPE_OPS"]

MAX_PICKLE_BYTES = 512 * 1024 * 1024

#: the authors' op vocabulary (index = op_type_idx)
GENNAPE_OPS: tuple[str, ...] = (
    "<oov>", "input", "output", "conv", "depthwise", "batchnorm", "relu", "relu6", "matmul", "add", "mul",
    "concat", "maxpool", "avgpool", "sigmoid", "tanh", "swish", "gelu", "paddings", "mean", "spacetobatchnd",
    "batchtospacend", "spacetodepthnd", "depthtospacend", "global", "identity", "zero", "reserved1", "reserved2",
    "reserved3", "reserved4", "reserved5")

_TO_OURS = {
    "input": "input", "output": "output", "conv": "conv", "depthwise": "depthwise", "batchnorm": "batchnorm",
    "relu": "relu", "relu6": "relu6", "matmul": "matmul", "add": "add", "mul": "mul", "concat": "concat",
    "maxpool": "maxpool", "avgpool": "avgpool", "sigmoid": "sigmoid", "tanh": "tanh", "swish": "silu",
    "gelu": "gelu", "mean": "mean", "global": "mean", "identity": "identity", "zero": "zero",
    "paddings": "_contract", "spacetobatchnd": "_s2b", "batchtospacend": "_b2s",
}


class UnsafePickleError(CGError):
    """The pickle references a class or function outside the GENNAPE allowlist."""


# ---------------------------------------------------------------------------------------------
# restricted unpickling
# ---------------------------------------------------------------------------------------------

class _StandIn:
    """Inert holder of a pickled object's attributes (no methods run on load)."""

    def __setstate__(self, state):
        if isinstance(state, tuple) and len(state) == 2:  # (dict state, slot state)
            state = {**(state[0] or {}), **(state[1] or {})}
        if not isinstance(state, dict):
            raise UnsafePickleError(f"unexpected pickled state of type {type(state).__name__} for "
                                    f"{type(self).__name__}")
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return f"<GENNAPE {type(self).__name__} stand-in>"


class ComputeGraph(_StandIn):
    """Stand-in for ``model_src.comp_graph.tf_comp_graph.ComputeGraph``."""


class RegularNode(_StandIn):
    """Stand-in for ``model_src.comp_graph.tf_comp_graph.RegularNode``."""


class WeightedNode(_StandIn):
    """Stand-in for ``model_src.comp_graph.tf_comp_graph.WeightedNode``."""


_GENNAPE_MODULE = "model_src.comp_graph.tf_comp_graph"
_ALLOWED: dict[tuple[str, str], Any] = {
    (_GENNAPE_MODULE, "ComputeGraph"): ComputeGraph,
    (_GENNAPE_MODULE, "RegularNode"): RegularNode,
    (_GENNAPE_MODULE, "WeightedNode"): WeightedNode,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "object"): object,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("__builtin__", "object"): object,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("copyreg", "_reconstructor"): copyreg._reconstructor,
    ("copy_reg", "_reconstructor"): copyreg._reconstructor,
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the GENNAPE CG classes (as stand-ins) and a few builtins."""

    def find_class(self, module: str, name: str):
        obj = _ALLOWED.get((module, name))
        if obj is None:
            raise UnsafePickleError(
                f"refusing to unpickle {module}.{name}: only {_GENNAPE_MODULE}.{{ComputeGraph, RegularNode, "
                "WeightedNode} and plain containers are allowed in GENNAPE files")
        return obj

    def persistent_load(self, pid):
        raise UnsafePickleError("refusing to unpickle a persistent id (not a GENNAPE file)")


def _unpickle(data: bytes, label: str) -> Any:
    if len(data) > MAX_PICKLE_BYTES:
        raise CGError(f"{label}: {len(data)} bytes exceeds the limit of {MAX_PICKLE_BYTES}")
    try:
        return RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{label}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise CGError(f"{label}: not a readable GENNAPE pickle ({type(exc).__name__}: {exc})") from None


# ---------------------------------------------------------------------------------------------
# state dict -> CG
# ---------------------------------------------------------------------------------------------

def _state_of(obj: Any) -> dict | None:
    """The ``get_cg_state_dict``-style dict of a stand-in or an already plain dict."""
    if isinstance(obj, ComputeGraph):
        return obj.__dict__
    if isinstance(obj, dict) and ("edge_pairs" in obj or "regular_nodes" in obj):
        return obj
    return None


def _node_state(obj: Any, where: str) -> dict:
    if isinstance(obj, (RegularNode, WeightedNode)):
        return obj.__dict__
    if isinstance(obj, dict):
        return obj
    raise CGError(f"{where}: expected a GENNAPE node (dict or RegularNode/WeightedNode), got {type(obj).__name__}")


def _label_index(label: str) -> int:
    """The authors' lookup: exact word, else the longest vocabulary word inside the label, else 0."""
    label = label.lower()
    if label in GENNAPE_OPS:
        return GENNAPE_OPS.index(label)
    hits = [w for w in GENNAPE_OPS[1:] if w in label]
    return GENNAPE_OPS.index(max(hits, key=len)) if hits else 0


def _int(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise CGError(f"{where}: expected a number, got {v!r}")
    return v


def _hw_pair(v: Any, data_format: str) -> tuple[int, int]:
    if v is None:
        return (1, 1)
    if isinstance(v, int):
        return (v, v)
    v = list(v)
    if len(v) == 4:
        return (int(v[2]), int(v[3])) if data_format.upper().startswith("NC") else (int(v[1]), int(v[2]))
    if len(v) == 2:
        return (int(v[0]), int(v[1]))
    if len(v) == 1:
        return (int(v[0]), int(v[0]))
    return (1, 1)


class _Conv:
    """Working node during conversion."""

    __slots__ = ("op", "name", "in_shape", "out_shape", "weight", "groups", "stride", "dilation", "bias")

    def __init__(self, **kw):
        for k in self.__slots__:
            setattr(self, k, kw.get(k))


def cg_from_state(state: Any, name: str = "", source: str = "GENNAPE CG") -> CG:
    """Convert one GENNAPE ``ComputeGraph`` (stand-in or state dict) to a validated CG."""
    st = _state_of(state)
    if st is None:
        raise CGError(f"{source}: expected a GENNAPE ComputeGraph / state dict with 'edge_pairs', "
                      f"'weighted_nodes', 'regular_nodes', got {type(state).__name__}")
    for key in ("edge_pairs", "regular_nodes"):
        if not isinstance(st.get(key), (list, tuple)):
            raise CGError(f"{source}: field {key!r} must be a list")
    weighted = st.get("weighted_nodes") or []
    if not isinstance(weighted, (list, tuple)):
        raise CGError(f"{source}: field 'weighted_nodes' must be a list")
    raw_nodes = list(weighted) + list(st["regular_nodes"])
    n = len(raw_nodes)
    if n == 0:
        raise CGError(f"{source}: the graph has no nodes")
    if n > MAX_NODES:
        raise CGError(f"{source}: {n} nodes exceeds the limit of {MAX_NODES}")
    max_h = float(st.get("max_derived_H") or 256)
    max_w = float(st.get("max_derived_W") or 256)
    max_c = float(st.get("max_hidden_size") or 512)
    nodes: list[_Conv] = []
    for i, obj in enumerate(raw_nodes):
        where = f"{source}: node {i}"
        nd = _node_state(obj, where)
        label = str(nd.get("label") or "").lower()
        str_id = str(nd.get("str_id") or "")
        idx = nd.get("op_type_idx")
        if not isinstance(idx, int) or not 0 <= idx < len(GENNAPE_OPS):
            idx = _label_index(label)
        word = GENNAPE_OPS[idx]
        is_weighted = i < len(weighted) or "shape" in nd
        op = _TO_OURS.get(word, "other")
        if op == "conv" and "depthwise" in label:
            op = "depthwise"
        if op == "matmul" and is_weighted:
            op = "linear"
        res = nd.get("resolution")
        if not isinstance(res, (list, tuple)) or len(res) != 6:
            raise CGError(f"{where} ({label!r}): resolution must be [H_in, H_out, W_in, W_out, C_in, C_out], got {res!r}")
        vals = [_int(v, f"{where}.resolution") for v in res]
        if any(isinstance(v, float) and not float(v).is_integer() for v in vals):  # normalised features
            scale = (max_h, max_h, max_w, max_w, max_c, max_c)
            vals = [v * s for v, s in zip(vals, scale)]
        hi, ho, wi, wo, ci, co = (max(1, int(round(v))) for v in vals)
        meta = nd.get("metadata") or {}
        if not isinstance(meta, dict):
            meta = {}
        fmt = str(meta.get("data_format") or "NHWC")
        weight = None
        groups = 1
        if op in ("conv", "depthwise", "linear"):
            shape = nd.get("shape") or [ci, co, 1, 1]
            try:
                kh, kw = (max(1, int(round(float(shape[2])))), max(1, int(round(float(shape[3])))))
            except (TypeError, ValueError, IndexError):
                raise CGError(f"{where} ({label!r}): weight shape must be [C_in, C_out, k1, k2], got {shape!r}") from None
            weight = (ci, co, kh, kw) if op != "linear" else (ci, co, 1, 1)
            if op == "depthwise":
                groups = ci
                if co % ci:
                    op, groups = "group_conv", math.gcd(ci, co)
        nodes.append(_Conv(op=op, name=str_id.split("|", 1)[-1], in_shape=(hi, wi, ci), out_shape=(ho, wo, co),
                           weight=weight, groups=groups, stride=_hw_pair(nd.get("strides"), fmt),
                           dilation=_hw_pair(meta.get("dilations"), fmt), bias=bool(meta.get("use_bias", False))))
    edges: set[tuple[int, int]] = set()
    for k, e in enumerate(st["edge_pairs"]):
        if not (isinstance(e, (list, tuple)) and len(e) == 2 and all(isinstance(v, int) for v in e)):
            raise CGError(f"{source}: edge_pairs[{k}] must be [src, dst] ints, got {e!r}")
        u, v = e
        if not (0 <= u < n and 0 <= v < n):
            raise CGError(f"{source}: edge_pairs[{k}] = {list(e)} points outside the {n} nodes")
        if u != v:
            edges.add((u, v))
    return _to_cg(nodes, edges, name or str(st.get("name") or ""), source, st)


def _to_cg(nodes: list[_Conv], edges: set[tuple[int, int]], name: str, source: str, st: dict) -> CG:
    n = len(nodes)
    preds = [set() for _ in range(n)]
    succ = [set() for _ in range(n)]
    for u, v in edges:
        preds[v].add(u)
        succ[u].add(v)
    alive = [True] * n

    def contract(i: int) -> None:
        for p in preds[i]:
            succ[p].discard(i)
        for c in succ[i]:
            preds[c].discard(i)
        for p in preds[i]:
            for c in succ[i]:
                if p != c:
                    succ[p].add(c)
                    preds[c].add(p)
        preds[i].clear()
        succ[i].clear()
        alive[i] = False

    # the true input / output: parent-less input, child-less output (others are contracted)
    inputs = [i for i in range(n) if nodes[i].op == "input"]
    outputs = [i for i in range(n) if nodes[i].op == "output"]
    src = next((i for i in inputs if not preds[i]), None)
    dst = next((i for i in reversed(outputs) if not succ[i]), None)
    # dilated-conv triplets: s2b -> conv -> b2s
    for i in range(n):
        if nodes[i].op == "_s2b" and len(succ[i]) == 1:
            c = next(iter(succ[i]))
            cn = nodes[c]
            if cn.op in ("conv", "depthwise", "group_conv") and len(succ[c]) == 1:
                b = next(iter(succ[c]))
                if nodes[b].op == "_b2s":
                    outer_h, outer_w = nodes[i].in_shape[0], nodes[i].in_shape[1]
                    d = (max(1, round(outer_h / max(1, cn.in_shape[0]))), max(1, round(outer_w / max(1, cn.in_shape[1]))))
                    cn.in_shape = (outer_h, outer_w, cn.in_shape[2])
                    cn.out_shape = (nodes[b].out_shape[0], nodes[b].out_shape[1], cn.out_shape[2])
                    cn.dilation = d
    for i in range(n):
        op = nodes[i].op
        if op in ("_contract", "_s2b", "_b2s") or (op == "input" and i != src) or (op == "output" and i != dst):
            contract(i)
    if src is None:  # authors' step 10: prepend an input in front of the unique source
        sources = [i for i in range(n) if alive[i] and not preds[i]]
        if len(sources) != 1:
            raise CGError(f"{source}: no input node and {len(sources)} parent-less nodes; cannot tell the input")
        s = nodes[sources[0]]
        nodes.append(_Conv(op="input", name="input", in_shape=s.in_shape, out_shape=s.in_shape, weight=None,
                           groups=1, stride=(1, 1), dilation=(1, 1), bias=False))
        preds.append(set())
        succ.append({sources[0]})
        preds[sources[0]].add(len(nodes) - 1)
        alive.append(True)
        src = len(nodes) - 1
    if dst is None:
        sinks = [i for i in range(len(nodes)) if alive[i] and not succ[i] and i != src]
        if len(sinks) != 1:
            raise CGError(f"{source}: no output node and {len(sinks)} child-less nodes; cannot tell the output")
        s = nodes[sinks[0]]
        nodes.append(_Conv(op="output", name="output", in_shape=s.out_shape, out_shape=s.out_shape, weight=None,
                           groups=1, stride=(1, 1), dilation=(1, 1), bias=False))
        preds.append({sinks[0]})
        succ.append(set())
        succ[sinks[0]].add(len(nodes) - 1)
        alive.append(True)
        dst = len(nodes) - 1
    # keep nodes on an input -> output path
    fwd = reachable(src, succ)
    bwd = reachable(dst, preds)
    keep = [i for i in range(len(nodes)) if alive[i] and i in fwd and i in bwd]
    dropped = sum(1 for i in range(len(nodes)) if alive[i]) - len(keep)
    keep = _topological(keep, succ, preds)
    new_id = {old: k for k, old in enumerate(keep)}
    out_nodes: list[Node] = []
    for k, old in enumerate(keep):
        c = nodes[old]
        out_nodes.append(Node(id=k, op=c.op, name=c.name, in_shape=c.in_shape, out_shape=c.out_shape, weight=c.weight,
                              groups=c.groups, stride=c.stride, dilation=c.dilation, bias=c.bias))
    out_edges = sorted((new_id[u], new_id[v]) for u in keep for v in succ[u] if v in new_id)
    # shape repair and costs
    in_preds: list[list[int]] = [[] for _ in out_nodes]
    for u, v in out_edges:
        in_preds[v].append(u)
    repaired = 0
    for nd in out_nodes:
        if nd.op == "output":
            nd.in_shape = nd.out_shape
        if len(in_preds[nd.id]) == 1 and nd.op in SHAPE_PRESERVING_OPS:
            p = out_nodes[in_preds[nd.id][0]]
            if math.prod(nd.in_shape) > math.prod(p.out_shape):
                nd.in_shape = p.out_shape
                if nd.op == "output":
                    nd.out_shape = p.out_shape
                repaired += 1
        nd.flops, nd.params = node_cost(nd.op, nd.in_shape, nd.out_shape, nd.weight, nd.groups, nd.bias)
    meta: dict[str, Any] = {"source": "gennape"}
    if isinstance(st.get("input_shape"), (list, tuple)):
        meta["input_shape"] = [int(v) for v in st["input_shape"] if isinstance(v, (int, float))]
    if dropped:
        meta["dropped_nodes"] = dropped
    if repaired:
        meta["repaired_shapes"] = repaired
    cg = CG(nodes=out_nodes, edges=out_edges, name=name, meta=meta)
    try:
        return cg.validate()
    except CGError as exc:
        raise CGError(f"{source}: cannot make a valid CG ({exc})") from None


def _topological(keep: list[int], succ: list[set[int]], preds: list[set[int]]) -> list[int]:
    """``keep`` in topological order (ties broken by the original index); cycles raise CGError."""
    import heapq

    kept = set(keep)
    indeg = {i: sum(1 for p in preds[i] if p in kept) for i in keep}
    heap = [i for i in keep if indeg[i] == 0]
    heapq.heapify(heap)
    order: list[int] = []
    while heap:
        u = heapq.heappop(heap)
        order.append(u)
        for v in succ[u]:
            if v in kept:
                indeg[v] -= 1
                if indeg[v] == 0:
                    heapq.heappush(heap, v)
    if len(order) != len(keep):
        raise CGError("GENNAPE CG: the graph has a cycle")
    return order


# ---------------------------------------------------------------------------------------------
# records
# ---------------------------------------------------------------------------------------------

_CG_KEYS = ("compute graph", "compute_graph", "cg", "graph", "cg_state_dict")


def _acc(rec: dict) -> float | None:
    for key in ("acc", "accuracy"):
        v = rec.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v) / 100.0 if v > 1.0 else float(v)
    v = rec.get("max_perf")
    if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
        return float(v) / 100.0
    perfs = rec.get("perfs")
    if isinstance(perfs, (list, tuple)) and perfs and all(isinstance(p, (int, float)) for p in perfs):
        return max(float(p) for p in perfs) / 100.0
    return None


def _records_of(obj: Any, label: str) -> list[tuple[Any, dict, str]]:
    """(graph object, record dict, record name) triples found in a loaded file."""
    if _state_of(obj) is not None:
        return [(obj, {}, "")]
    if isinstance(obj, dict):
        key = next((k for k in _CG_KEYS if k in obj), None)
        if key is not None:
            return [(obj[key], obj, "")]
        items = list(obj.items())
        if items and all(isinstance(v, dict) and any(k in v for k in _CG_KEYS) for _, v in items):
            return [(v[next(k for k in _CG_KEYS if k in v)], v, str(k)) for k, v in items]
        raise CGError(f"{label}: a dict without a GENNAPE graph (expected 'edge_pairs' or one of {list(_CG_KEYS)})")
    if isinstance(obj, (list, tuple)):
        out = []
        for i, item in enumerate(obj):
            if _state_of(item) is not None:
                out.append((item, {}, ""))
            elif isinstance(item, dict) and any(k in item for k in _CG_KEYS):
                out.append((item[next(k for k in _CG_KEYS if k in item)], item, ""))
            else:
                raise CGError(f"{label}: record {i} holds no GENNAPE graph (got {type(item).__name__})")
        if not out:
            raise CGError(f"{label}: the file holds an empty list")
        return out
    raise CGError(f"{label}: expected a GENNAPE ComputeGraph, state dict or list of records, got {type(obj).__name__}")


def _read(source) -> tuple[Any, str]:
    """Parse a path / bytes / already-loaded object into Python objects (JSON or restricted pickle)."""
    label = "GENNAPE data"
    if isinstance(source, (dict, list, ComputeGraph)):
        return source, label
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data, label = read_file(source, MAX_PICKLE_BYTES)
    if not data:
        raise CGError(f"{label}: empty file")
    if data.lstrip()[:1] not in (b"{", b"["):  # not JSON: a pickle (any protocol)
        return _unpickle(data, label), label
    try:
        return json.loads(data), label
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CGError(f"{label}: not valid JSON ({exc})") from None


def load_gennape_records(source) -> list[dict]:
    """Every record of a GENNAPE file (pickle cache, labelled JSON or single CG).

    Returns dicts with ``cg`` (our :class:`CG`), ``acc`` (fraction or None), ``flops`` (our
    FLOPs of the CG), ``params`` (ours), ``name`` and, when the file has them, ``source_flops``
    / ``source_params`` (the authors' values, units unknown).
    """
    obj, label = _read(source)
    out = []
    for i, (graph, rec, rec_name) in enumerate(_records_of(obj, label)):
        where = f"{label}: record {i}" if not rec_name else f"{label}: record {rec_name!r}"
        st = _state_of(graph)
        if st is None:
            raise CGError(f"{where}: the graph is a {type(graph).__name__}, expected a GENNAPE ComputeGraph / state dict")
        cg = cg_from_state(graph, name=str(st.get("name") or rec_name or ""), source=where)
        acc = _acc(rec)
        if acc is not None:
            cg.meta["acc"] = acc
        item: dict[str, Any] = {"cg": cg, "acc": acc, "flops": cg.flops, "params": cg.params,
                                "name": cg.name or rec_name}
        for key, dst in (("flops", "source_flops"), ("n_params", "source_params")):
            v = rec.get(key)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                item[dst] = v
        out.append(item)
    return out


def load_gennape(source) -> CG | list[CG]:
    """The CG (or list of CGs, for a multi-record file) in a GENNAPE pickle / JSON file."""
    recs = load_gennape_records(source)
    obj_is_list = len(recs) > 1
    return [r["cg"] for r in recs] if obj_is_list else recs[0]["cg"]
