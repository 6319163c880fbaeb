"""NAS-Bench-101 (Ying et al., ICML 2019): cell DAGs of at most 7 vertices and 9 edges on CIFAR-10.

Spec
----
``{"matrix": 7x7 (or smaller) upper-triangular 0/1 adjacency, "ops": ["input", ..., "output"]}``
with interior ops ``conv3x3-bn-relu``, ``conv1x1-bn-relu``, ``maxpool3x3``.  The NB-101 API keys
``module_adjacency`` / ``module_operations`` are accepted too, and so is the NASLib 56-tuple
(49 adjacency ints, row-major, then 7 op ids over ``[input, output, maxpool3x3, conv1x1-bn-relu,
conv3x3-bn-relu]``) as a tuple/list or its string ``"(0, 1, 1, ...)"``.

Validation follows the NB-101 API: vertices not on an input->output path are pruned (NASLib
keys hold unpruned matrices), the pruned cell must connect input to output and have <= 9 edges;
at most 7 vertices, first op ``input``, last op ``output``, strictly upper-triangular matrix.
:meth:`NB101.validate` returns the *pruned* spec.  :meth:`NB101.canonical` is the
isomorphism-invariant form: the lexicographically smallest (matrix, ops) over all relabellings
of the interior vertices that keep the matrix upper-triangular, so isomorphic cells share
:meth:`~engine.families.base.Family.spec_hash` (exact, not a WL approximation; <= 5! labellings).

Network (the original NAS-Bench-101 TensorFlow model)
-----------------------------------------------------
stem conv3x3(128)-BN-ReLU; 3 stacks x 3 cells at 128 / 256 / 512 channels with maxpool 2x2 s2
before stacks 2 and 3 (the first cell of a stack doubles the channels); global mean; dense(10).
In a cell (``compute_vertex_channels``): the output channels are split evenly over the vertices
feeding the output (the remainder +1 to the first ones); other vertices take the max of their
successors.  Vertex input = sum of the predecessors' outputs truncated to the vertex's channels
(a channel slice, contracted into the CG edge) plus a 1x1 conv-BN-ReLU projection of the cell
input if input->vertex is an edge; conv vertices are conv(no bias)-BN-ReLU, maxpool3x3 is s1 p1.
Cell output = concat of the vertices feeding the output; with an input->output edge a 1x1
projection of the cell input is *added* to that concat (or is the whole output when no interior
vertex feeds the output).

Published numbers (``tests/test_family_nb101.py``): ``params`` equals NASLib's ``params`` for
all 500 archs of ``zc_nasbench101.json``; NASLib's ``flops`` (M, torchstat-style) are exactly
``flops / 2 / 1e6 + (ReLU elements + 2 x BN elements + 9 x maxpool3x3 output elements + 4 x
2x2-maxpool output elements) / 1e6``, i.e. the MACs agree exactly and ``flops / 2 / 1e6`` alone is
86.6-99.8 % of NASLib's number.
"""

from __future__ import annotations

import ast
import itertools
import json
import numbers
import random
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.families.base import Family, SpecError, register
from engine.families.nb201 import FastCGBuilder
from engine.graphs.cg import CG, CGBuilder

INPUT, OUTPUT = "input", "output"
CONV3, CONV1, MAXPOOL = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
INTERIOR_OPS: tuple[str, ...] = (CONV3, CONV1, MAXPOOL)
#: op ids of the NASLib 56-tuple
NASLIB_OPS: tuple[str, ...] = (INPUT, OUTPUT, MAXPOOL, CONV1, CONV3)
MAX_VERTICES = 7
MAX_EDGES = 9
STEM_CHANNELS = 128
NUM_STACKS = 3
CELLS_PER_STACK = 3
#: number of distinct (non-isomorphic) valid cells, as published
SPACE_SIZE = 423_624
CG_VERSION = "nb101-1"

Matrix = list[list[int]]


# ---------------------------------------------------------------------------------------------
# spec parsing, pruning, canonical form
# ---------------------------------------------------------------------------------------------

def _as_bit(v: Any, where: str) -> int:
    if isinstance(v, bool) or isinstance(v, numbers.Integral):
        if int(v) in (0, 1):
            return int(v)
    raise SpecError(f"nb101 spec: {where} is {v!r}; expected 0 or 1")


def naslib_to_spec(t: Any) -> dict[str, Any]:
    """``{"matrix", "ops"}`` (unpruned) of a NASLib 56-tuple."""
    vals = list(t)
    if len(vals) != 56:
        raise SpecError(f"nb101 NASLib tuple: expected 56 ints (49 adjacency + 7 op ids), got {len(vals)}")
    for i, v in enumerate(vals):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise SpecError(f"nb101 NASLib tuple: element {i} is {v!r}; expected an int")
    matrix = [[int(vals[r * 7 + c]) for c in range(7)] for r in range(7)]
    ops = []
    for k, v in enumerate(vals[49:]):
        if not 0 <= v < len(NASLIB_OPS):
            raise SpecError(f"nb101 NASLib tuple: op id {k} (element {49 + k}) is {v!r}; expected 0-4 over "
                            f"{list(NASLIB_OPS)}")
        ops.append(NASLIB_OPS[int(v)])
    return {"matrix": matrix, "ops": ops}


def prune(matrix: Matrix, ops: list[str]) -> tuple[Matrix, list[str]] | None:
    """Drop vertices not on an input->output path; ``None`` when input does not reach output."""
    n = len(ops)
    fwd = {0}
    for v in range(1, n):
        if any(matrix[u][v] for u in fwd):
            fwd.add(v)
    bwd = {n - 1}
    for u in range(n - 2, -1, -1):
        if any(matrix[u][v] for v in bwd):
            bwd.add(u)
    keep = sorted(fwd & bwd)
    if 0 not in keep or n - 1 not in keep:
        return None
    return [[matrix[a][b] for b in keep] for a in keep], [ops[a] for a in keep]


def compute_vertex_channels(c_in: int, c_out: int, matrix: Matrix) -> list[int]:
    """Channels of every vertex of a (pruned) cell, as in NAS-Bench-101."""
    n = len(matrix)
    ch = [0] * n
    ch[0], ch[n - 1] = c_in, c_out
    if n == 2:
        return ch
    feeding = [v for v in range(1, n - 1) if matrix[v][n - 1]]
    base, extra = divmod(c_out, len(feeding))
    for k, v in enumerate(feeding):
        ch[v] = base + (1 if k < extra else 0)
    for v in range(n - 3, 0, -1):
        if not matrix[v][n - 1]:
            ch[v] = max(ch[d] for d in range(v + 1, n - 1) if matrix[v][d])
    return ch


def canonical_spec(matrix: Matrix, ops: list[str]) -> dict[str, Any]:
    """Smallest (matrix, ops) over relabellings of the interior vertices that stay upper-triangular."""
    n = len(ops)
    best = None
    for perm in itertools.permutations(range(1, n - 1)):
        pos = (0, *perm, n - 1)  # pos[old] = new index
        inv = [0] * n
        for old, new in enumerate(pos):
            inv[new] = old
        ok = True
        for a in range(n):
            for b in range(a + 1, n):
                if matrix[a][b] and pos[a] > pos[b]:
                    ok = False
                    break
            if not ok:
                break
        if not ok:
            continue
        key = (tuple(matrix[inv[r]][inv[c]] for r in range(n) for c in range(n)), tuple(ops[inv[r]] for r in range(n)))
        if best is None or key < best:
            best = key
    assert best is not None
    flat, cops = best
    return {"matrix": [list(flat[r * n:(r + 1) * n]) for r in range(n)], "ops": list(cops)}


# ---------------------------------------------------------------------------------------------
# PyTorch network
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class _CellPlan:
    matrix: tuple[tuple[int, ...], ...]
    ops: tuple[str, ...]
    channels: tuple[int, ...]

    @property
    def n(self) -> int:
        return len(self.ops)


def _plan(matrix: Matrix, ops: list[str], c_in: int, c_out: int) -> _CellPlan:
    return _CellPlan(tuple(tuple(r) for r in matrix), tuple(ops), tuple(compute_vertex_channels(c_in, c_out, matrix)))


def _conv_bn_relu(c_in: int, c_out: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, k, 1, (k - 1) // 2, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=False))


class Cell(nn.Module):
    """One NB-101 module (cell) of a pruned spec at given input / output channels."""

    def __init__(self, plan: _CellPlan) -> None:
        super().__init__()
        self.plan = plan
        n, m, ch = plan.n, plan.matrix, plan.channels
        self.proj = nn.ModuleDict({str(t): _conv_bn_relu(ch[0], ch[t], 1) for t in range(1, n) if m[0][t]})
        vertex = {}
        for t in range(1, n - 1):
            op = plan.ops[t]
            if op == MAXPOOL:
                vertex[str(t)] = nn.MaxPool2d(3, 1, 1)
            else:
                vertex[str(t)] = _conv_bn_relu(ch[t], ch[t], 3 if op == CONV3 else 1)
        self.vertex = nn.ModuleDict(vertex)

    def forward(self, x):
        n, m, ch = self.plan.n, self.plan.matrix, self.plan.channels
        tensors = [x]
        for t in range(1, n - 1):
            ins = []
            for s in range(1, t):
                if m[s][t]:  # truncate a wider predecessor to this vertex's channels
                    ins.append(tensors[s] if ch[s] == ch[t] else tensors[s][:, :ch[t]])
            if m[0][t]:
                ins.append(self.proj[str(t)](x))
            v = ins[0]
            for other in ins[1:]:
                v = v + other
            tensors.append(self.vertex[str(t)](v))
        feed = [tensors[t] for t in range(1, n - 1) if m[t][n - 1]]
        if not feed:
            return self.proj[str(n - 1)](x)
        out = feed[0] if len(feed) == 1 else torch.cat(feed, dim=1)
        if m[0][n - 1]:
            out = out + self.proj[str(n - 1)](x)
        return out


class Network(nn.Module):
    """The NAS-Bench-101 CIFAR-10 network of one (pruned) cell."""

    def __init__(self, matrix: Matrix, ops: list[str], num_classes: int = 10) -> None:
        super().__init__()
        self.stem = _conv_bn_relu(3, STEM_CHANNELS, 3)
        layers: list[nn.Module] = []
        c_in = c = STEM_CHANNELS
        for s in range(NUM_STACKS):
            if s > 0:
                layers.append(nn.MaxPool2d(2, 2))
                c *= 2
            for _ in range(CELLS_PER_STACK):
                layers.append(Cell(_plan(matrix, ops, c_in, c)))
                c_in = c
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x):
        out = self.layers(self.stem(x))
        return self.classifier(out.mean((2, 3)))


# ---------------------------------------------------------------------------------------------
# direct CG builder
# ---------------------------------------------------------------------------------------------

def _conv_bn_relu_cg(b: CGBuilder, x: int, c_in: int, c_out: int, k: int, name: str) -> int:
    """conv(k)-BN-ReLU reading the first ``c_in`` channels of node ``x`` (slice in the edge)."""
    h, w, _ = b.shape(x)
    y = b.add("conv", [x], (h, w, c_out), in_shape=(h, w, c_in), weight=(c_in, c_out, k, k), name=f"{name}.conv")
    return b.act(b.bn(y, name=f"{name}.bn"), "relu", name=f"{name}.relu")


def _cell_cg(b: CGBuilder, x: int, plan: _CellPlan, name: str) -> int:
    n, m, ch = plan.n, plan.matrix, plan.channels
    h, w, _ = b.shape(x)
    tensors = [x]
    for t in range(1, n - 1):
        ins = [tensors[s] for s in range(1, t) if m[s][t]]
        if m[0][t]:
            ins.append(_conv_bn_relu_cg(b, x, ch[0], ch[t], 1, f"{name}.proj{t}"))
        shape = (h, w, ch[t])
        v = ins[0] if len(ins) == 1 else b.add("add", ins, shape, in_shape=shape, name=f"{name}.v{t}.add")
        if plan.ops[t] == MAXPOOL:
            y = b.add("maxpool", [v], shape, in_shape=shape, name=f"{name}.v{t}.maxpool")
        else:
            y = _conv_bn_relu_cg(b, v, ch[t], ch[t], 3 if plan.ops[t] == CONV3 else 1, f"{name}.v{t}")
        tensors.append(y)
    feed = [tensors[t] for t in range(1, n - 1) if m[t][n - 1]]
    if not feed:
        return _conv_bn_relu_cg(b, x, ch[0], ch[n - 1], 1, f"{name}.proj{n - 1}")
    out = b.concat(feed, name=f"{name}.concat")
    if m[0][n - 1]:
        out = b.sum([out, _conv_bn_relu_cg(b, x, ch[0], ch[n - 1], 1, f"{name}.proj{n - 1}")], name=f"{name}.add")
    return out


def build_cg(matrix: Matrix, ops: list[str], num_classes: int = 10, name: str = "", validate: bool = True) -> CG:
    """The NB-101 CG of a pruned cell, built directly."""
    b = FastCGBuilder(name, input_hwc=(32, 32, 3))
    x = b.input()
    x = _conv_bn_relu_cg(b, x, 3, STEM_CHANNELS, 3, "stem")
    c_in = c = STEM_CHANNELS
    k = 0
    for s in range(NUM_STACKS):
        if s > 0:
            x = b.pool(x, "maxpool", 2, 2, 0, name=f"layers.{k}.maxpool")
            k += 1
            c *= 2
        for _ in range(CELLS_PER_STACK):
            x = _cell_cg(b, x, _plan(matrix, ops, c_in, c), f"layers.{k}")
            c_in = c
            k += 1
    x = b.linear(b.mean(x, name="mean"), num_classes, name="classifier")
    return b.output(x, validate=validate)


# ---------------------------------------------------------------------------------------------
# the family
# ---------------------------------------------------------------------------------------------

@register
class NB101(Family):
    name = "nb101"
    title = "NAS-Bench-101"
    dataset = "cifar10"
    input_hwc = (32, 32, 3)
    num_classes = 10
    spec_help = ('{"matrix": upper-triangular 0/1 adjacency (<= 7x7, <= 9 edges after pruning), "ops": '
                 '["input", conv3x3-bn-relu | conv1x1-bn-relu | maxpool3x3 ..., "output"]}; or a NASLib 56-tuple '
                 '(49 adjacency ints + 7 op ids over input, output, maxpool3x3, conv1x1-bn-relu, conv3x3-bn-relu)')
    cg_version = CG_VERSION

    # --- parsing ---------------------------------------------------------------------------
    def _raw(self, spec: Any) -> tuple[Any, Any]:
        if isinstance(spec, str):
            text = spec.strip()
            try:
                parsed = json.loads(text) if text.startswith("{") else ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise SpecError(f"nb101 spec {spec[:80]!r} cannot be parsed; expected {self.spec_help}") from None
            return self._raw(parsed)
        if isinstance(spec, dict):
            matrix = spec.get("matrix", spec.get("module_adjacency"))
            ops = spec.get("ops", spec.get("module_operations"))
            if matrix is None:
                raise SpecError("nb101 spec: missing field 'matrix' (upper-triangular 0/1 adjacency)")
            if ops is None:
                raise SpecError("nb101 spec: missing field 'ops' (['input', ..., 'output'])")
            if hasattr(matrix, "tolist"):
                matrix = matrix.tolist()
            return matrix, list(ops) if isinstance(ops, list | tuple) else ops
        if isinstance(spec, tuple | list) or hasattr(spec, "tolist"):
            vals = spec.tolist() if hasattr(spec, "tolist") else spec
            d = naslib_to_spec(vals)
            return d["matrix"], d["ops"]
        raise SpecError(f"nb101 spec of type {type(spec).__name__} is not recognised; expected {self.spec_help}")

    def validate(self, spec: Any) -> dict[str, Any]:
        matrix, ops = self._raw(spec)
        if not isinstance(ops, list) or not all(isinstance(o, str) for o in ops):
            raise SpecError(f"nb101 spec: field 'ops' must be a list of op names, got {ops!r}")
        n = len(ops)
        if not 2 <= n <= MAX_VERTICES:
            raise SpecError(f"nb101 spec: field 'ops' has {n} vertices; expected 2 to {MAX_VERTICES}")
        if not isinstance(matrix, list | tuple) or len(matrix) != n or not all(
                isinstance(r, list | tuple) and len(r) == n for r in matrix):
            raise SpecError(f"nb101 spec: field 'matrix' must be {n}x{n} (one row/column per op), got {matrix!r}")
        mat = [[_as_bit(matrix[r][c], f"matrix[{r}][{c}]") for c in range(n)] for r in range(n)]
        for r in range(n):
            for c in range(r + 1):
                if mat[r][c]:
                    raise SpecError(f"nb101 spec: matrix[{r}][{c}] = 1 but the matrix must be strictly upper-"
                                    "triangular (edges go from a lower to a higher vertex index)")
        if ops[0] != INPUT:
            raise SpecError(f"nb101 spec: ops[0] is {ops[0]!r}; expected 'input'")
        if ops[-1] != OUTPUT:
            raise SpecError(f"nb101 spec: ops[{n - 1}] is {ops[-1]!r}; expected 'output'")
        for i, o in enumerate(ops[1:-1], start=1):
            if o not in INTERIOR_OPS:
                raise SpecError(f"nb101 spec: ops[{i}] is {o!r}; expected one of {', '.join(INTERIOR_OPS)}")
        pruned = prune(mat, ops)
        if pruned is None:
            raise SpecError("nb101 spec: the input is not connected to the output (no input->output path)")
        pm, pops = pruned
        edges = sum(map(sum, pm))
        if edges > MAX_EDGES:
            raise SpecError(f"nb101 spec: {edges} edges after pruning; at most {MAX_EDGES} are allowed")
        return {"matrix": pm, "ops": pops}

    def canonical(self, spec: Any) -> str:
        d = self.validate(spec)
        return json.dumps(canonical_spec(d["matrix"], d["ops"]), separators=(",", ":"))

    # --- sampling --------------------------------------------------------------------------
    def sample(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` distinct (non-isomorphic) valid cells: random 7x7 upper-triangular adjacency
        (each edge with probability 1/2) and uniform interior ops, invalid draws rejected."""
        def draw(rng: random.Random) -> dict[str, Any] | None:
            mat = [[1 if c > r and rng.random() < 0.5 else 0 for c in range(MAX_VERTICES)] for r in range(MAX_VERTICES)]
            ops = [INPUT] + [rng.choice(INTERIOR_OPS) for _ in range(MAX_VERTICES - 2)] + [OUTPUT]
            try:
                return self.validate({"matrix": mat, "ops": ops})
            except SpecError:
                return None  # invalid draw: rejected

        n = int(n)
        return self._distinct(n, seed, draw, max_draws=200 * n + 1000)

    def space_size(self) -> int:
        return SPACE_SIZE

    # --- builders --------------------------------------------------------------------------
    def build_module(self, spec: Any, num_classes: int | None = None):
        d = self.validate(spec)
        return Network(d["matrix"], d["ops"], num_classes or self.num_classes)

    def to_cg(self, spec: Any, num_classes: int | None = None) -> CG:
        d = self.validate(spec)
        cg = build_cg(d["matrix"], d["ops"], num_classes or self.num_classes, name=f"nb101-{self.spec_hash(d)}")
        cg.meta.update({"family": self.name, "spec": d})
        return cg
