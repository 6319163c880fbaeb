"""Computation Graphs (CGs): the one architecture representation of the whole pipeline.

A CG is a DAG whose nodes are atomic operations (see :mod:`engine.graphs.ops`) and whose
edges are directed, featureless data flow (GENNAPE, "Methodology", Fig. 4).

Shapes
------
Every node stores its input and output activation shape as ``(H, W, C)``:

* rank-4 ``[B, C, H, W]`` tensors map to ``(H, W, C)``;
* rank-3 token tensors ``[B, N, D]`` (ViTs) map to ``(N, 1, D)``;
* rank-2 ``[B, D]`` tensors (after flatten / global pooling) map to ``(1, 1, D)``.

A node with several inputs (add, concat, mul, matmul) stores its *first* input's shape as
``in_shape`` (as the authors' CGs do).  Weighted nodes also store ``weight = (C_in, C_out, kH,
kW)`` (whole-layer channels, not per group; a linear layer is ``(in, out, 1, 1)``).

FLOPs and params
----------------
* ``flops`` = 2 x multiply-accumulates of conv / depthwise / group_conv / linear / matmul nodes.
  Bias additions, normalisation, activations, pooling and element-wise ops count 0.  This
  is the quantity the paper's Eq. 5 takes (in GFLOPs = flops / 1e9).
* ``params`` = number of trainable parameters owned by the node; for a CG built from a
  ``torch.nn.Module`` the total equals ``sum(p.numel() for p in module.parameters())``
  (BatchNorm / LayerNorm affine weights included, running statistics excluded).

JSON
----
``CG.to_json()`` / :func:`load_json` use a versioned format (``format_version``) that is
validated field by field on load and round-trips exactly.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import warnings
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.graphs.ops import OP_INDEX, OPS, WEIGHTED_OPS

FORMAT_VERSION = 1
FEATURE_VERSION = 1
MAX_NODES = 20_000
MAX_JSON_BYTES = 64 * 1024 * 1024
#: largest shape / weight / stride / dilation / groups value (what the int32 feature tables hold)
MAX_DIM = 2**31 - 1
#: largest per-node FLOPs / params count (2^53: exact in float64; a CG's totals stay far below int64)
MAX_COUNT = 2**53

#: ops whose output has the shape of their (single) input
SHAPE_PRESERVING_OPS = frozenset({
    "batchnorm", "layernorm", "relu", "relu6", "hardswish", "hardsigmoid", "sigmoid", "silu", "gelu",
    "tanh", "softmax", "identity", "zero", "output"})

Shape = tuple[int, int, int]


class CGError(ValueError):
    """Malformed computation graph; the message names the node / field and what was expected."""


def first_line(exc: BaseException, default: str = "") -> str:
    """The first non-empty line of ``exc``'s message (``default`` when it has none): what an
    error message quotes of a library's multi-line exception."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else default


def at_path(path: str | Path, message: str) -> str:
    """``message`` about the file ``path``, naming it once: kept when it starts with the path,
    the bare file name at its start replaced by the path, else the path put in front."""
    full, name = str(path), Path(path).name
    if message.startswith(full):
        return message
    if message.startswith(name + ":"):
        return full + message[len(name):]
    return f"{full}: {message}"


# ---------------------------------------------------------------------------------------------
# cost model
# ---------------------------------------------------------------------------------------------

def conv_out_size(size: int, k: int, stride: int = 1, padding: int | None = None, dilation: int = 1) -> int:
    """Output length of a convolution / pooling window (PyTorch arithmetic)."""
    if padding is None:  # "same"-style padding for odd kernels
        padding = dilation * (k - 1) // 2
    return (size + 2 * padding - dilation * (k - 1) - 1) // stride + 1


def node_cost(op: str, in_shape: Shape, out_shape: Shape, weight: tuple[int, int, int, int] | None,
              groups: int = 1, bias: bool = False) -> tuple[int, int]:
    """Default ``(flops, params)`` of a node from its shapes (see module docstring).

    ``matmul`` FLOPs need the inner dimension, which shapes alone do not give, and norm layers
    may lack affine weights: builders that know better pass explicit values.
    """
    h, w, c = out_shape
    if op in ("conv", "depthwise", "group_conv"):
        assert weight is not None
        cin, cout, kh, kw = weight
        macs = h * w * cout * (cin // groups) * kh * kw
        params = (cin // groups) * cout * kh * kw + (cout if bias else 0)
        return 2 * macs, params
    if op == "linear":
        assert weight is not None
        cin, cout, _, _ = weight
        return 2 * h * w * cin * cout, cin * cout + (cout if bias else 0)
    if op in ("batchnorm", "layernorm"):
        return 0, 2 * c
    return 0, 0


# ---------------------------------------------------------------------------------------------
# data model
# ---------------------------------------------------------------------------------------------

@dataclass
class Node:
    """One atomic operation.  ``id`` equals the node's position in ``CG.nodes``."""

    id: int
    op: str
    in_shape: Shape
    out_shape: Shape
    name: str = ""
    weight: tuple[int, int, int, int] | None = None  # (C_in, C_out, kH, kW)
    groups: int = 1
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    bias: bool = False
    flops: int = 0
    params: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "op": self.op, "name": self.name,
            "in": list(self.in_shape), "out": list(self.out_shape),
            "weight": None if self.weight is None else list(self.weight),
            "groups": self.groups, "stride": list(self.stride), "dilation": list(self.dilation),
            "bias": self.bias, "flops": self.flops, "params": self.params,
        }


_INT = itertools.repeat(int)


def _bad_dims(node: Node, where: str) -> None:
    """Raise the :class:`CGError` naming which of a node's shape / stride / dilation / groups
    fields is malformed (the slow path of :meth:`CG.validate`)."""
    for fld, length in (("in_shape", 3), ("out_shape", 3), ("stride", 2), ("dilation", 2)):
        s = getattr(node, fld)
        if len(s) != length or any((not isinstance(v, int)) or not 0 < v <= MAX_DIM for v in s):
            what = " (H, W, C)" if length == 3 else ""
            raise CGError(f"{where} ({node.op}): {fld} must be {length} ints in 1..{MAX_DIM:,}{what}, got {s!r}")
    raise CGError(f"{where} ({node.op}): groups must be an int in 1..{MAX_DIM:,}, got {node.groups!r}")


@dataclass
class CG:
    """A computation graph.  Build with :class:`CGBuilder`, ``from_module``, ``from_onnx``,
    a family's ``to_cg`` or :func:`load_json`."""

    nodes: list[Node]
    edges: list[tuple[int, int]]
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    # --- summary ---------------------------------------------------------------------------
    @property
    def num_nodes(self) -> int:
        return len(self.nodes)

    @property
    def num_edges(self) -> int:
        return len(self.edges)

    @property
    def flops(self) -> int:
        return sum(n.flops for n in self.nodes)

    @property
    def params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def input_node(self) -> Node:
        return next(n for n in self.nodes if n.op == "input")

    @property
    def output_node(self) -> Node:
        return next(n for n in self.nodes if n.op == "output")

    def op_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for n in self.nodes:
            counts[n.op] = counts.get(n.op, 0) + 1
        return counts

    def summary(self) -> str:
        return (f"{self.name or 'cg'}: {self.num_nodes} nodes, {self.num_edges} edges, "
                f"{self.flops / 1e6:.2f} MFLOPs, {self.params / 1e6:.4f} M params")

    def __repr__(self) -> str:  # keep reprs short in notebooks / logs
        return f"CG({self.summary()})"

    # --- structure ---------------------------------------------------------------------------
    def predecessors(self) -> list[list[int]]:
        preds: list[list[int]] = [[] for _ in self.nodes]
        for u, v in self.edges:
            preds[v].append(u)
        return preds

    def successors(self) -> list[list[int]]:
        succ: list[list[int]] = [[] for _ in self.nodes]
        for u, v in self.edges:
            succ[u].append(v)
        return succ

    def topological_order(self) -> list[int]:
        """Kahn's algorithm; raises :class:`CGError` naming a node on a cycle."""
        indeg = [0] * len(self.nodes)
        succ = self.successors()
        for _, v in self.edges:
            indeg[v] += 1
        queue = deque(i for i, d in enumerate(indeg) if d == 0)
        order: list[int] = []
        while queue:
            u = queue.popleft()
            order.append(u)
            for v in succ[u]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    queue.append(v)
        if len(order) != len(self.nodes):
            stuck = next(i for i, d in enumerate(indeg) if d > 0)
            raise CGError(f"graph has a cycle through node {stuck} ({self.nodes[stuck].op})")
        return order

    # --- validation --------------------------------------------------------------------------
    def validate(self) -> CG:
        """Check the invariants listed below; return ``self`` or raise :class:`CGError`.

        * 1 <= nodes <= MAX_NODES, ``nodes[i].id == i``, ops in the vocabulary;
        * shapes are 3 positive ints; weighted ops have a 4-int weight, others none;
        * edge endpoints exist, no self loops or duplicate edges;
        * exactly one ``input`` (no predecessors) and one ``output`` (no successors);
        * acyclic, and every node lies on an input -> output path;
        * shapes agree along edges: a node with one predecessor reads at most the
          predecessor's element count (equal unless a slice was contracted into the edge)
          when it is shape preserving (activations, norms, identity, output); convs and pools
          may read more (padding contracted into the edge).
        """
        n = len(self.nodes)
        if n == 0:
            raise CGError("graph has no nodes")
        if n > MAX_NODES:
            raise CGError(f"graph has {n} nodes; the limit is {MAX_NODES}")
        for i, node in enumerate(self.nodes):
            if node.id != i:
                raise CGError(f"node {i}: id is {node.id}, expected {i} (ids must equal positions)")
            if node.op not in OP_INDEX:
                raise CGError(f"node {i}: unknown op {node.op!r}; expected one of {', '.join(OPS)}")
            dims = (*node.in_shape, *node.out_shape, *node.stride, *node.dilation, node.groups)
            if (not all(map(isinstance, dims, _INT)) or min(dims) <= 0 or max(dims) > MAX_DIM
                    or len(node.in_shape) != 3 or len(node.out_shape) != 3 or len(node.stride) != 2
                    or len(node.dilation) != 2):
                _bad_dims(node, f"node {i}")
            if node.op in WEIGHTED_OPS:
                w = node.weight
                if (w is None or len(w) != 4 or not all(map(isinstance, w, _INT)) or min(w) < 0
                        or max(w) > MAX_DIM):
                    raise CGError(f"node {i} ({node.op}): weighted op needs weight (C_in, C_out, kH, kW) of ints in "
                                  f"0..{MAX_DIM:,}, got {node.weight!r}")
            elif node.weight is not None:
                raise CGError(f"node {i} ({node.op}): only weighted ops ({', '.join(sorted(WEIGHTED_OPS))}) have a "
                              f"weight, got {node.weight!r}")
            if not 0 <= node.flops <= MAX_COUNT or not 0 <= node.params <= MAX_COUNT:
                raise CGError(f"node {i} ({node.op}): flops and params must lie in 0..2^53, "
                              f"got {node.flops!r} / {node.params!r}")
        seen: set[tuple[int, int]] = set()
        for k, (u, v) in enumerate(self.edges):
            if not (0 <= u < n and 0 <= v < n):
                raise CGError(f"edge {k} ({u} -> {v}) points to a node that does not exist (0..{n - 1})")
            if u == v:
                raise CGError(f"edge {k}: self loop on node {u}")
            if (u, v) in seen:
                raise CGError(f"edge {k}: duplicate edge {u} -> {v}")
            seen.add((u, v))
        preds, succ = self.predecessors(), self.successors()
        inputs = [i for i, nd in enumerate(self.nodes) if nd.op == "input"]
        outputs = [i for i, nd in enumerate(self.nodes) if nd.op == "output"]
        if len(inputs) != 1:
            raise CGError(f"expected exactly one input node, found {len(inputs)} ({inputs[:5]})")
        if len(outputs) != 1:
            raise CGError(f"expected exactly one output node, found {len(outputs)} ({outputs[:5]})")
        src, dst = inputs[0], outputs[0]
        if preds[src]:
            raise CGError(f"node {src} (input) has incoming edges from {preds[src][:5]}")
        if succ[dst]:
            raise CGError(f"node {dst} (output) has outgoing edges to {succ[dst][:5]}")
        self.topological_order()
        fwd = reachable(src, succ)
        bwd = reachable(dst, preds)
        for i in range(n):
            if i not in fwd:
                raise CGError(f"node {i} ({self.nodes[i].op}) is not reachable from the input")
            if i not in bwd:
                raise CGError(f"node {i} ({self.nodes[i].op}) does not reach the output")
        for i, node in enumerate(self.nodes):
            if len(preds[i]) == 1 and node.op in SHAPE_PRESERVING_OPS:
                p = self.nodes[preds[i][0]]
                if math.prod(node.in_shape) > math.prod(p.out_shape):
                    raise CGError(f"edge {p.id} -> {i}: node {i} ({node.op}) reads shape {node.in_shape} "
                                  f"but node {p.id} ({p.op}) produces only {p.out_shape}")
        return self

    # --- serialisation -----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "meta": self.meta,
            "nodes": [nd.to_dict() for nd in self.nodes],
            "edges": [list(e) for e in self.edges],
        }

    def to_json(self, path: str | Path | None = None, indent: int | None = None) -> str:
        text = json.dumps(self.to_dict(), indent=indent, sort_keys=False)
        if path is not None:
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: Any, source: str = "CG JSON") -> CG:
        return _cg_from_dict(data, source)

    def fingerprint(self) -> str:
        """Hash of the structure and node attributes that ignores node numbering
        (Weisfeiler-Lehman over op + shapes + weight); isomorphic CGs share it."""
        import networkx as nx

        g = nx.DiGraph()
        for nd in self.nodes:
            g.add_node(nd.id, label=f"{nd.op}|{nd.in_shape}|{nd.out_shape}|{nd.weight}|{nd.stride}|{nd.groups}")
        g.add_edges_from(self.edges)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return nx.weisfeiler_lehman_graph_hash(g, node_attr="label", iterations=4, digest_size=16)

    def content_hash(self) -> str:
        """Hash of the exact JSON (numbering-sensitive); used for caches."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:16]

    # --- conversions -------------------------------------------------------------------------
    def to_networkx(self):
        """``networkx.DiGraph`` with every node field as attributes (for drawing)."""
        import networkx as nx

        g = nx.DiGraph(name=self.name)
        for nd in self.nodes:
            g.add_node(nd.id, **nd.to_dict())
        g.add_edges_from(self.edges)
        return g

    def node_features(self):
        """``(N, F)`` float tensor of per-node features, see :func:`feature_names`."""
        import torch

        base_h = next((n.out_shape[0] for n in self.nodes if n.op == "input"), 1)
        total = self.flops
        return torch.tensor([_node_feature_row(nd, base_h, total) for nd in self.nodes], dtype=torch.float32)

    def to_pyg(self, y: float | None = None):
        """``torch_geometric.data.Data`` with ``x`` (features), ``edge_index`` (directed data
        flow), ``op`` (op index per node) and graph attributes ``flops``, ``params``."""
        import torch
        from torch_geometric.data import Data

        x = self.node_features()
        if self.edges:
            edge_index = torch.tensor(self.edges, dtype=torch.long).t().contiguous()
        else:
            edge_index = torch.zeros((2, 0), dtype=torch.long)
        data = Data(x=x, edge_index=edge_index, num_nodes=len(self.nodes))
        data.op = torch.tensor([OP_INDEX[nd.op] for nd in self.nodes], dtype=torch.long)
        data.flops = torch.tensor([float(self.flops)], dtype=torch.float64)
        data.params = torch.tensor([float(self.params)], dtype=torch.float64)
        if y is not None:
            data.y = torch.tensor([float(y)], dtype=torch.float32)
        return data


# ---------------------------------------------------------------------------------------------
# node features (FEATURE_VERSION 1)
# ---------------------------------------------------------------------------------------------

def feature_names() -> list[str]:
    """Names of the columns of :meth:`CG.node_features`.

    Normalisation (chosen so ImageNet-sized 224 px / 2048-channel networks stay in range and
    resemble CIFAR networks of the same topology):

    * ``op=*``: one-hot over :data:`engine.graphs.ops.OPS`;
    * ``in_h, in_w, out_h, out_w``: ``log2(1 + v) / 8``;  ``in_c, out_c``: ``log2(1 + v) / 12``;
    * ``in_rel, out_rel``: H divided by the network's input H (scale-free spatial position);
    * ``k_h, k_w``: kernel size / 7 (0 for weightless nodes); ``w_cin, w_cout``: ``log2(1 + v) / 12``;
    * ``stride``: max stride / 4; ``dilation``: max dilation / 4; ``bias``: 0/1;
    * ``flops_share``: node FLOPs / CG FLOPs (0 if the CG has no FLOPs).
    """
    return ([f"op={o}" for o in OPS]
            + ["in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "in_rel", "out_rel",
               "k_h", "k_w", "w_cin", "w_cout", "stride", "dilation", "bias", "flops_share"])


def _lg(v: float, scale: float) -> float:
    return math.log2(1.0 + v) / scale


def _node_feature_row(nd: Node, base_h: int, total: int) -> list[float]:
    onehot = [0.0] * len(OPS)
    onehot[OP_INDEX[nd.op]] = 1.0
    ih, iw, ic = nd.in_shape
    oh, ow, oc = nd.out_shape
    if nd.weight is not None:
        wci, wco, kh, kw = nd.weight
    else:
        wci = wco = kh = kw = 0
    return onehot + [
        _lg(ih, 8), _lg(iw, 8), _lg(ic, 12), _lg(oh, 8), _lg(ow, 8), _lg(oc, 12),
        ih / base_h, oh / base_h,
        kh / 7.0, kw / 7.0, _lg(wci, 12), _lg(wco, 12),
        max(nd.stride) / 4.0, max(nd.dilation) / 4.0, 1.0 if nd.bias else 0.0,
        (nd.flops / total) if total else 0.0,
    ]


def reachable(start: int, adj: Sequence[Iterable[int]]) -> set[int]:
    """Nodes reachable from ``start`` (itself included) along ``adj`` (successor lists)."""
    seen = {start}
    stack = [start]
    while stack:
        u = stack.pop()
        for v in adj[u]:
            if v not in seen:
                seen.add(v)
                stack.append(v)
    return seen


# ---------------------------------------------------------------------------------------------
# JSON loading with field-level errors
# ---------------------------------------------------------------------------------------------

def _int_list(value: Any, length: int, where: str, positive: bool = True, allow_zero: bool = False) -> tuple:
    ok = isinstance(value, list) and len(value) == length and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value)
    if ok:
        if positive and not allow_zero and any(v <= 0 for v in value):
            ok = False
        if allow_zero and any(v < 0 for v in value):
            ok = False
        if any(v > MAX_DIM for v in value):
            ok = False
    if not ok:
        kind = "non-negative" if allow_zero else "positive"
        raise CGError(f"{where}: expected a list of {length} {kind} ints of at most {MAX_DIM:,}, got {value!r}")
    return tuple(value)


def _cg_from_dict(data: Any, source: str) -> CG:
    if not isinstance(data, dict):
        raise CGError(f"{source}: top level must be an object, got {type(data).__name__}")
    missing = [key for key in ("format_version", "nodes", "edges") if key not in data]
    if missing:
        raise CGError(f"{source}: missing required field(s) {', '.join(map(repr, missing))} (a CG JSON object has "
                      f"format_version {FORMAT_VERSION}, nodes and edges, as CG.to_json() writes it)")
    version = data.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:
        raise CGError(f"{source}: format_version must be {FORMAT_VERSION}, got {version!r}")
    for key in ("nodes", "edges"):
        if not isinstance(data[key], list):
            raise CGError(f"{source}: field {key!r} must be a list, got {type(data[key]).__name__}")
    if len(data["nodes"]) > MAX_NODES:
        raise CGError(f"{source}: {len(data['nodes'])} nodes exceeds the limit of {MAX_NODES}")
    name = data.get("name", "")
    if not isinstance(name, str):
        raise CGError(f"{source}: field 'name' must be a string")
    meta = data.get("meta", {})
    if not isinstance(meta, dict):
        raise CGError(f"{source}: field 'meta' must be an object")
    nodes: list[Node] = []
    required = ("id", "op", "in", "out")
    for i, raw in enumerate(data["nodes"]):
        where = f"{source}: nodes[{i}]"
        if not isinstance(raw, dict):
            raise CGError(f"{where}: expected an object, got {type(raw).__name__}")
        for key in required:
            if key not in raw:
                raise CGError(f"{where}: missing required field {key!r}")
        if type(raw["id"]) is not int or raw["id"] != i:
            raise CGError(f"{where}.id: expected {i} (ids must equal positions), got {raw['id']!r}")
        if not isinstance(raw["op"], str) or raw["op"] not in OP_INDEX:
            raise CGError(f"{where}.op: unknown op {raw['op']!r}; expected one of {', '.join(OPS)}")
        weight = raw.get("weight")
        if weight is not None:
            weight = _int_list(weight, 4, f"{where}.weight", allow_zero=True)
        for key, default, low, high in (("groups", 1, 1, MAX_DIM), ("flops", 0, 0, MAX_COUNT),
                                        ("params", 0, 0, MAX_COUNT)):
            val = raw.get(key, default)
            if not isinstance(val, int) or isinstance(val, bool) or not low <= val <= high:
                raise CGError(f"{where}.{key}: expected an int in {low}..{high:,}, got {val!r}")
        bias = raw.get("bias", False)
        if not isinstance(bias, bool):
            raise CGError(f"{where}.bias: expected true/false, got {bias!r}")
        nm = raw.get("name", "")
        if not isinstance(nm, str):
            raise CGError(f"{where}.name: expected a string, got {nm!r}")
        nodes.append(Node(
            id=i, op=raw["op"], name=nm,
            in_shape=_int_list(raw["in"], 3, f"{where}.in"),
            out_shape=_int_list(raw["out"], 3, f"{where}.out"),
            weight=weight, groups=raw.get("groups", 1),
            stride=_int_list(raw.get("stride", [1, 1]), 2, f"{where}.stride"),
            dilation=_int_list(raw.get("dilation", [1, 1]), 2, f"{where}.dilation"),
            bias=bias, flops=raw.get("flops", 0), params=raw.get("params", 0),
        ))
    edges: list[tuple[int, int]] = []
    for k, e in enumerate(data["edges"]):
        if not (isinstance(e, list) and len(e) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in e)):
            raise CGError(f"{source}: edges[{k}]: expected [src, dst] ints, got {e!r}")
        edges.append((e[0], e[1]))
    cg = CG(nodes=nodes, edges=edges, name=name, meta=dict(meta))
    try:
        cg.validate()
    except CGError as exc:
        raise CGError(f"{source}: {exc}") from None
    return cg


def read_file(source: str | Path, max_bytes: int) -> tuple[bytes, str]:
    """The bytes of the file ``source`` and its name for error messages; CGError when it is
    missing or larger than ``max_bytes`` (the importers' shared file reading)."""
    path = Path(source)
    label = str(path)
    if not path.exists():
        raise CGError(f"{label}: file not found")
    if not path.is_file():
        raise CGError(f"{label}: not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise CGError(f"{label}: file is {size:,} bytes; the limit is {max_bytes:,}")
    return path.read_bytes(), label


def load_json(source: str | Path | bytes | dict) -> CG:
    """Load a CG from a path, JSON text/bytes or an already parsed dict (validated)."""
    label = "CG JSON"
    if isinstance(source, dict):
        return _cg_from_dict(source, label)
    if isinstance(source, str) and source.lstrip("\ufeff \t\r\n")[:1] in ("{", "["):
        raw = source.lstrip("\ufeff")  # JSON text (a byte-order mark is dropped, as utf-8-sig does)
    elif isinstance(source, (str, Path)):
        raw, label = read_file(source, MAX_JSON_BYTES)
    else:
        raw = source  # bytes: json.loads detects the encoding, a UTF-8 byte-order mark included
    if len(raw) > MAX_JSON_BYTES:
        raise CGError(f"{label}: {len(raw)} bytes exceeds the limit of {MAX_JSON_BYTES}")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CGError(f"{label}: not valid JSON ({exc})") from None
    return _cg_from_dict(data, label)


# ---------------------------------------------------------------------------------------------
# builder used by family generators, importers and the search interpreter
# ---------------------------------------------------------------------------------------------

class CGBuilder:
    """Imperative CG construction with automatic shapes, FLOPs and params.

    >>> b = CGBuilder("tiny", input_hwc=(32, 32, 3))
    >>> x = b.input()
    >>> x = b.act(b.bn(b.conv(x, 16, 3)), "relu")
    >>> cg = b.output(b.linear(b.mean(x), 10))
    """

    def __init__(self, name: str = "", input_hwc: Shape = (32, 32, 3), meta: dict | None = None):
        self.name = name
        self.input_hwc = tuple(input_hwc)
        self.nodes: list[Node] = []
        self.edges: list[tuple[int, int]] = []
        self.meta = dict(meta or {})

    # generic -----------------------------------------------------------------------------
    def shape(self, nid: int) -> Shape:
        return self.nodes[nid].out_shape

    def add(self, op: str, inputs: Iterable[int], out_shape: Shape, *, name: str = "",
            in_shape: Shape | None = None, weight=None, groups: int = 1, stride=(1, 1),
            dilation=(1, 1), bias: bool = False, flops: int | None = None, params: int | None = None) -> int:
        inputs = list(inputs)
        if in_shape is None:
            in_shape = self.nodes[inputs[0]].out_shape if inputs else tuple(out_shape)
        f, p = node_cost(op, tuple(in_shape), tuple(out_shape), weight, groups, bias)
        nid = len(self.nodes)
        self.nodes.append(Node(
            id=nid, op=op, name=name, in_shape=tuple(int(v) for v in in_shape),
            out_shape=tuple(int(v) for v in out_shape),
            weight=None if weight is None else tuple(int(v) for v in weight), groups=int(groups),
            stride=tuple(stride), dilation=tuple(dilation), bias=bool(bias),
            flops=int(f if flops is None else flops), params=int(p if params is None else params)))
        for u in inputs:
            if (u, nid) not in self.edges:
                self.edges.append((u, nid))
        return nid

    def input(self, name: str = "input") -> int:
        return self.add("input", [], self.input_hwc, name=name)

    def output(self, x: int, name: str = "output", validate: bool = True) -> CG:
        self.add("output", [x], self.shape(x), name=name)
        cg = CG(nodes=self.nodes, edges=self.edges, name=self.name, meta=self.meta)
        return cg.validate() if validate else cg

    # layers ------------------------------------------------------------------------------
    def conv(self, x: int, c_out: int, k: int | tuple[int, int], stride: int | tuple[int, int] = 1,
             groups: int = 1, bias: bool = False, padding: int | tuple[int, int] | None = None,
             dilation: int = 1, name: str = "") -> int:
        h, w, c = self.shape(x)
        kh, kw = (k, k) if isinstance(k, int) else k
        sh, sw = (stride, stride) if isinstance(stride, int) else stride
        ph, pw = (padding, padding) if (padding is None or isinstance(padding, int)) else padding
        oh = conv_out_size(h, kh, sh, ph, dilation)
        ow = conv_out_size(w, kw, sw, pw, dilation)
        if groups == 1:
            op = "conv"
        elif groups == c and c_out % c == 0:
            op = "depthwise"
        else:
            op = "group_conv"
        return self.add(op, [x], (oh, ow, c_out), name=name, weight=(c, c_out, kh, kw), groups=groups,
                        stride=(sh, sw), dilation=(dilation, dilation), bias=bias)

    def linear(self, x: int, c_out: int, bias: bool = True, name: str = "") -> int:
        h, w, c = self.shape(x)
        return self.add("linear", [x], (h, w, c_out), name=name, weight=(c, c_out, 1, 1), bias=bias)

    def bn(self, x: int, name: str = "", affine: bool = True) -> int:
        c = self.shape(x)[2]
        return self.add("batchnorm", [x], self.shape(x), name=name, params=2 * c if affine else 0)

    def layernorm(self, x: int, name: str = "", affine: bool = True) -> int:
        c = self.shape(x)[2]
        return self.add("layernorm", [x], self.shape(x), name=name, params=2 * c if affine else 0)

    def act(self, x: int, op: str = "relu", name: str = "") -> int:
        return self.add(op, [x], self.shape(x), name=name)

    def pool(self, x: int, op: str, k: int, stride: int = 1, padding: int | None = None, name: str = "") -> int:
        h, w, c = self.shape(x)
        oh = conv_out_size(h, k, stride, padding)
        ow = conv_out_size(w, k, stride, padding)
        return self.add(op, [x], (oh, ow, c), name=name, stride=(stride, stride))

    def mean(self, x: int, name: str = "") -> int:
        """Global average pool to ``(1, 1, C)``."""
        return self.add("mean", [x], (1, 1, self.shape(x)[2]), name=name)

    def sum(self, xs: list[int], name: str = "") -> int:
        """Element-wise ``add`` of several tensors; a single input is returned unchanged."""
        xs = list(dict.fromkeys(xs))
        if len(xs) == 1:
            return xs[0]
        return self.add("add", xs, self.shape(xs[0]), name=name)

    def mul(self, xs: list[int], name: str = "") -> int:
        shapes = [self.shape(v) for v in xs]
        out = max(shapes, key=math.prod)
        return self.add("mul", xs, out, name=name)

    def concat(self, xs: list[int], name: str = "") -> int:
        xs = list(xs)
        if len(xs) == 1:
            return xs[0]
        h, w, _ = self.shape(xs[0])
        c = sum(self.shape(v)[2] for v in xs)
        return self.add("concat", xs, (h, w, c), name=name)
