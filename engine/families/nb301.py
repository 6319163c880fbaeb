"""NAS-Bench-301: the DARTS cell search space, built as the network NB-301 trained.

Spec
----
The normalised spec is ``{"normal": [[op, input] x 8], "reduce": [[op, input] x 8]}``.  Pairs
``(2k, 2k+1)`` feed intermediate node ``k`` (0..3); ``input`` 0 is ``c_{k-2}``, 1 is ``c_{k-1}``
and ``2 + j`` is intermediate node ``j`` (valid for node ``k``: ``0..k+1``); the two inputs of a
node must differ (as in every DARTS / NB-301 genotype).  Ops are :data:`OPS`.  Also accepted:

* NASLib's key (``naslib_zc_nasbench301.json``), as the JSON key string
  ``"[[(0, 3), (1, 5), ...], [...]]"`` or the parsed structure ``[[(input, op_id) x 8] x 2]`` with
  ``op_id`` indexing :data:`OPS` (0-based);
* a DARTS genotype string ``Genotype(normal=[('sep_conv_3x3', 0), ...], normal_concat=[2, 3, 4, 5],
  reduce=[...], reduce_concat=range(2, 6))`` (concat must be nodes 2..5);
* the dict form as a JSON string.

``validate`` keeps the order of the two pairs of a node; ``canonical`` sorts them, so the two
orders of the same node share one ``spec_hash``.  :func:`naslib_key` and :func:`genotype_string`
convert back (``naslib_key`` reproduces the JSON keys of the NASLib file exactly).

Network (``build_module``)
--------------------------
The standard DARTS evaluation network ``NetworkCIFAR`` with NB-301's training configuration:
8 cells, ``C = 32``, stem ``conv3x3(3 -> 96) + BN``, reduction cells at positions 2 and 5
(channels double to 64 and 128), preprocessing ``FactorizedReduce`` on ``c_{k-2}`` after a reduction
cell and ``ReLU-conv1x1-BN`` otherwise, cell output = concat of the 4 intermediate nodes, global
average pool, ``Linear(512, 10)``.  Ops (``stride 2`` on edges from the cell inputs of a reduction
cell):

* ``sep_conv_k`` = ``[ReLU, depthwise kxk, conv1x1, BN] x 2`` (stride on the first depthwise);
* ``dil_conv_k`` = ``ReLU, depthwise kxk (dilation 2), conv1x1, BN``;
* ``max_pool_3x3`` / ``avg_pool_3x3``: 3x3 pools, padding 1, **no BN** (DARTS puts a BN after pools
  only in its search super-network's mixed ops, not in the evaluation network);
* ``skip_connect``: identity when stride 1 -- under the CG conventions ``nn.Identity`` contracts
  into a plain edge, so a skip is an edge from its input to the node's ``add`` (the authors'
  TF CGs keep an explicit ``identity`` node instead, reference section 7 item 6); with stride 2 it
  is ``FactorizedReduce`` (ReLU, two stride-2 1x1 convs on ``x`` and ``x[:, :, 1:, 1:]``, concat, BN).

All BatchNorms are affine.  No auxiliary head and no drop path (training-only parts).

Parameter agreement with NASLib
-------------------------------
NASLib's ``params`` for the 725 archs of ``naslib_zc_nasbench301.json`` count NASLib's own NB-301
model (same macro network: 8 cells, C = 32, stem 96, no auxiliary head in the counted model), which
builds the BatchNorms *inside the cell ops* (sep/dil convs, stride-2 skips) with ``affine=False``.
This network keeps them affine (as DARTS' evaluation network ``NetworkCIFAR`` does), so it has
``2 C`` more parameters per such BN: measured over all 725 archs, this network's count is
0.55 % .. 1.22 % (mean 0.97 %) above NASLib's.  :func:`naslib_param_count` removes exactly those
affine weights and then reproduces NASLib's number for every one of the 725 archs (to the
1e-6 M rounding of the file), which checks every channel count of the network
(``tests/test_family_nb301.py``).  NASLib's ``flops`` are a different count (0.51x .. 0.55x of this
CG's 2 x MACs, i.e. multiply-adds plus some element-wise work) and are not compared.
"""

from __future__ import annotations

import ast
import json
import numbers
import random
from typing import Any

import torch
from torch import nn

from engine.families.base import Family, SpecError, register
from engine.graphs.cg import CG, CGBuilder

#: DARTS primitives without ``none``, in NASLib / NB-301 op-id order
OPS: tuple[str, ...] = ("max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
                        "dil_conv_3x3", "dil_conv_5x5")
OP_ID = {op: i for i, op in enumerate(OPS)}
CELLS = ("normal", "reduce")
N_NODES = 4
N_EDGES = 2 * N_NODES

# network configuration of NB-301's training runs
INIT_CHANNELS = 32
N_LAYERS = 8
STEM_MULT = 3
NUM_CLASSES = 10
REDUCTION_LAYERS = (N_LAYERS // 3, 2 * N_LAYERS // 3)  # (2, 5)

SPEC_HELP = (
    'NB-301 spec: {"normal": [[op, input] x 8], "reduce": [[op, input] x 8]}; pairs (2k, 2k+1) feed '
    "node k, input 0 = c_{k-2}, 1 = c_{k-1}, 2.. = earlier nodes (0..k+1 for node k, two different inputs); "
    f"ops {', '.join(OPS)}. Also: NASLib key '[[(input, op_id) x 8], [...]]' or a DARTS Genotype(...) string."
)


# ---------------------------------------------------------------------------------------------
# spec parsing
# ---------------------------------------------------------------------------------------------

def _err(msg: str) -> SpecError:
    return SpecError(f"nb301 spec: {msg}")


def _is_int(v: Any) -> bool:
    """Python or NumPy integer, not bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _parse_genotype(text: str) -> dict[str, Any]:
    """``Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)`` -> dict form."""
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise _err(f"cannot parse the Genotype string ({exc.msg})") from None
    if not (isinstance(tree, ast.Call) and isinstance(tree.func, ast.Name) and tree.func.id == "Genotype"):
        raise _err("a genotype string must look like Genotype(normal=[...], normal_concat=[2, 3, 4, 5], "
                   "reduce=[...], reduce_concat=[2, 3, 4, 5])")
    fields = ("normal", "normal_concat", "reduce", "reduce_concat")
    args: dict[str, Any] = {}
    if len(tree.args) > len(fields):
        raise _err(f"Genotype takes at most {len(fields)} fields ({', '.join(fields)}), got {len(tree.args)}")
    for name, node in list(zip(fields, tree.args)) + [(kw.arg, kw.value) for kw in tree.keywords]:
        if name not in fields:
            raise _err(f"unknown Genotype field {name!r}; expected {', '.join(fields)}")
        args[name] = _literal(node, name)
    for name in ("normal", "reduce"):
        if name not in args:
            raise _err(f"Genotype is missing the field {name!r}")
    for name in ("normal_concat", "reduce_concat"):
        if name in args:
            try:
                concat = sorted(int(v) for v in args[name])
            except (TypeError, ValueError):
                concat = None
            if concat != [2, 3, 4, 5]:
                raise _err(f"{name} is {args[name]!r}; only the standard concat of nodes [2, 3, 4, 5] is supported")
    return {"normal": args["normal"], "reduce": args["reduce"]}


def _literal(node: ast.AST, field: str) -> Any:
    # DARTS genotypes write the concat as range(2, 6)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "range":
        try:
            return list(range(*[ast.literal_eval(a) for a in node.args]))
        except (ValueError, TypeError):
            raise _err(f"Genotype field {field!r}: cannot evaluate {ast.unparse(node)!r}") from None
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError):
        raise _err(f"Genotype field {field!r}: expected a literal, got {ast.unparse(node)!r}") from None


def _from_naslib(value: Any) -> dict[str, Any]:
    """``[[(input, op_id) x 8], [(input, op_id) x 8]]`` -> dict form (ops by name)."""
    cells = {}
    for name, cell in zip(CELLS, value):
        if not isinstance(cell, list | tuple) or len(cell) != N_EDGES:
            raise _err(f"NASLib key: the {name} cell must be a list of {N_EDGES} (input, op_id) pairs, got {cell!r}")
        pairs = []
        for j, pair in enumerate(cell):
            if not (isinstance(pair, list | tuple) and len(pair) == 2 and all(_is_int(v) for v in pair)):
                raise _err(f"NASLib key: {name}[{j}] must be an (input, op_id) pair of ints, got {pair!r}")
            inp, op_id = pair
            if not 0 <= op_id < len(OPS):
                raise _err(f"NASLib key: {name}[{j}] op_id {op_id} is out of range; allowed 0..{len(OPS) - 1} "
                           f"({', '.join(f'{i}={o}' for i, o in enumerate(OPS))})")
            pairs.append([OPS[op_id], int(inp)])
        cells[name] = pairs
    return cells


def _coerce(spec: Any) -> dict[str, Any]:
    """Any accepted encoding -> ``{"normal": [...], "reduce": [...]}`` (not yet checked)."""
    if isinstance(spec, str):
        text = spec.strip()
        if text.startswith("Genotype"):
            return _parse_genotype(text)
        if text.startswith("{"):
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise _err(f"not valid JSON ({exc.msg} at char {exc.pos})") from None
        elif text.startswith("["):
            try:
                spec = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise _err(f"cannot parse {text[:60]!r} as a NASLib key [[(input, op_id) x 8], [...]]") from None
        else:
            raise _err(f"unrecognised string {text[:60]!r}; {SPEC_HELP}")
    if hasattr(spec, "_fields") and hasattr(spec, "normal"):  # a Genotype namedtuple object
        spec = {"normal": list(spec.normal), "reduce": list(spec.reduce)}
    if isinstance(spec, dict):
        unknown = set(spec) - set(CELLS) - {"normal_concat", "reduce_concat"}
        if unknown:
            raise _err(f"unknown field(s) {sorted(unknown)}; expected 'normal' and 'reduce'")
        for name in CELLS:
            if name not in spec:
                raise _err(f"missing field {name!r}; {SPEC_HELP}")
        for name in ("normal_concat", "reduce_concat"):
            if name in spec and sorted(spec[name]) != [2, 3, 4, 5]:
                raise _err(f"{name} is {spec[name]!r}; only [2, 3, 4, 5] is supported")
        return {name: spec[name] for name in CELLS}
    if isinstance(spec, list | tuple) and len(spec) == 2:
        return _from_naslib(spec)
    raise _err(f"expected a dict, a NASLib key or a Genotype string, got {type(spec).__name__}; {SPEC_HELP}")


def _check_cell(name: str, cell: Any) -> list[list[Any]]:
    if not isinstance(cell, list | tuple) or len(cell) != N_EDGES:
        n = len(cell) if isinstance(cell, list | tuple) else type(cell).__name__
        raise _err(f"field {name!r} must be a list of {N_EDGES} [op, input] pairs, got {n}")
    out: list[list[Any]] = []
    for j, pair in enumerate(cell):
        k = j // 2
        if not (isinstance(pair, list | tuple) and len(pair) == 2):
            raise _err(f"{name}[{j}] must be an [op, input] pair, got {pair!r}")
        op, inp = pair
        if isinstance(op, str) and op.strip().lower() in OP_ID:
            op = op.strip().lower()
        else:
            raise _err(f"{name}[{j}].op is {op!r}; allowed {', '.join(OPS)}")
        if not _is_int(inp) or not 0 <= inp <= k + 1:
            raise _err(f"{name}[{j}].input is {inp!r}; node {k} (pairs {2 * k}, {2 * k + 1}) accepts inputs "
                       f"0..{k + 1} (0 = c_{{k-2}}, 1 = c_{{k-1}}, 2.. = earlier nodes)")
        out.append([op, int(inp)])
    for k in range(N_NODES):
        if out[2 * k][1] == out[2 * k + 1][1]:
            raise _err(f"{name} node {k}: both pairs ({2 * k}, {2 * k + 1}) read input {out[2 * k][1]}; "
                       "the two inputs of a node must differ")
    return out


def naslib_key(spec: Any) -> str:
    """The key of ``naslib_zc_nasbench301.json`` for ``spec`` (``str`` of the tuple lists)."""
    s = NB301().validate(spec)
    return str([[(inp, OP_ID[op]) for op, inp in s[c]] for c in CELLS])


def genotype_string(spec: Any) -> str:
    """The DARTS ``Genotype(...)`` string of ``spec``."""
    s = NB301().validate(spec)
    normal = [(op, inp) for op, inp in s["normal"]]
    reduce = [(op, inp) for op, inp in s["reduce"]]
    return f"Genotype(normal={normal}, normal_concat=[2, 3, 4, 5], reduce={reduce}, reduce_concat=[2, 3, 4, 5])"


# ---------------------------------------------------------------------------------------------
# PyTorch network
# ---------------------------------------------------------------------------------------------

class ReLUConvBN(nn.Sequential):
    """ReLU -> conv1x1 -> BN (cell-input preprocessing)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class FactorizedReduce(nn.Module):
    """ReLU, then two stride-2 1x1 convs (on ``x`` and on ``x`` shifted by one pixel), concat, BN."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_a = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_b = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        return self.bn(torch.cat([self.conv_a(x), self.conv_b(x[:, :, 1:, 1:])], dim=1))


class SepConv(nn.Sequential):
    """``[ReLU, depthwise kxk, conv1x1, BN] x 2``; the stride sits on the first depthwise conv."""

    def __init__(self, c: int, k: int, stride: int):
        p = k // 2
        super().__init__(
            nn.ReLU(), nn.Conv2d(c, c, k, stride, p, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
            nn.ReLU(), nn.Conv2d(c, c, k, 1, p, groups=c, bias=False), nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c))


class DilConv(nn.Sequential):
    """ReLU, depthwise kxk with dilation 2, conv1x1, BN."""

    def __init__(self, c: int, k: int, stride: int):
        super().__init__(
            nn.ReLU(), nn.Conv2d(c, c, k, stride, k - 1, dilation=2, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False), nn.BatchNorm2d(c))


def make_op(op: str, c: int, stride: int) -> nn.Module:
    if op == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if op == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if op.startswith("sep_conv_"):
        return SepConv(c, int(op[-1]), stride)
    if op.startswith("dil_conv_"):
        return DilConv(c, int(op[-1]), stride)
    raise ValueError(f"unknown DARTS op {op!r}")


class Cell(nn.Module):
    """One DARTS cell: preprocess both inputs, 4 nodes of 2 summed ops, concat of the nodes."""

    def __init__(self, genotype: list[list[Any]], c_pp: int, c_p: int, c: int, reduction: bool,
                 reduction_prev: bool):
        super().__init__()
        self.pre0 = FactorizedReduce(c_pp, c) if reduction_prev else ReLUConvBN(c_pp, c)
        self.pre1 = ReLUConvBN(c_p, c)
        self.inputs = [inp for _, inp in genotype]
        self.ops = nn.ModuleList(
            make_op(op, c, 2 if reduction and inp < 2 else 1) for op, inp in genotype)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.pre0(s0), self.pre1(s1)]
        for k in range(N_NODES):
            a = self.ops[2 * k](states[self.inputs[2 * k]])
            b = self.ops[2 * k + 1](states[self.inputs[2 * k + 1]])
            states.append(a + b)
        return torch.cat(states[2:], dim=1)


class NetworkNB301(nn.Module):
    """DARTS ``NetworkCIFAR`` as trained by NB-301 (see module docstring)."""

    def __init__(self, spec: dict[str, Any], c: int = INIT_CHANNELS, layers: int = N_LAYERS,
                 num_classes: int = NUM_CLASSES):
        super().__init__()
        c_curr = STEM_MULT * c
        self.stem = nn.Sequential(nn.Conv2d(3, c_curr, 3, padding=1, bias=False), nn.BatchNorm2d(c_curr))
        c_pp, c_p, c_curr = c_curr, c_curr, c
        reduction_prev = False
        self.cells = nn.ModuleList()
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            cell = Cell(spec["reduce" if reduction else "normal"], c_pp, c_p, c_curr, reduction, reduction_prev)
            self.cells.append(cell)
            reduction_prev = reduction
            c_pp, c_p = c_p, N_NODES * c_curr
        self.global_pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s0 = s1 = self.stem(x)
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
        return self.classifier(torch.flatten(self.global_pool(s1), 1))


# ---------------------------------------------------------------------------------------------
# direct CG builder (mirrors NetworkNB301 node for node)
# ---------------------------------------------------------------------------------------------

def _cg_relu_conv_bn(b: CGBuilder, x: int, c_out: int, name: str) -> int:
    x = b.act(x, "relu", name=f"{name}.relu")
    return b.bn(b.conv(x, c_out, 1, name=f"{name}.conv"), name=f"{name}.bn")


def _cg_factorized_reduce(b: CGBuilder, x: int, c_out: int, name: str) -> int:
    x = b.act(x, "relu", name=f"{name}.relu")
    h, w, c = b.shape(x)
    a = b.conv(x, c_out // 2, 1, stride=2, name=f"{name}.conv_a")
    # conv_b reads x[:, :, 1:, 1:]: the slice is contracted into the edge, the conv sees (H-1, W-1)
    hs, ws = h - 1, w - 1
    cb = c_out - c_out // 2
    bnode = b.add("conv", [x], ((hs - 1) // 2 + 1, (ws - 1) // 2 + 1, cb), in_shape=(hs, ws, c),
                  name=f"{name}.conv_b", weight=(c, cb, 1, 1), stride=(2, 2))
    return b.bn(b.concat([a, bnode], name=f"{name}.cat"), name=f"{name}.bn")


def _cg_op(b: CGBuilder, x: int, op: str, stride: int, name: str) -> int:
    c = b.shape(x)[2]
    if op in ("max_pool_3x3", "avg_pool_3x3"):
        return b.pool(x, "maxpool" if op.startswith("max") else "avgpool", 3, stride, 1, name=name)
    if op == "skip_connect":
        return x if stride == 1 else _cg_factorized_reduce(b, x, c, name)
    k = int(op[-1])
    if op.startswith("sep_conv_"):
        for half, s in ((0, stride), (1, 1)):
            x = b.act(x, "relu", name=f"{name}.{half}.relu")
            x = b.conv(x, c, k, stride=s, groups=c, padding=k // 2, name=f"{name}.{half}.dw")
            x = b.bn(b.conv(x, c, 1, name=f"{name}.{half}.pw"), name=f"{name}.{half}.bn")
        return x
    x = b.act(x, "relu", name=f"{name}.relu")
    x = b.conv(x, c, k, stride=stride, groups=c, padding=k - 1, dilation=2, name=f"{name}.dw")
    return b.bn(b.conv(x, c, 1, name=f"{name}.pw"), name=f"{name}.bn")


def build_cg(spec: dict[str, Any], name: str = "nb301") -> CG:
    """CG of :class:`NetworkNB301` for a *normalised* spec, built without PyTorch."""
    b = CGBuilder(name, input_hwc=(32, 32, 3), meta={"family": "nb301"})
    x = b.input()
    c_curr = STEM_MULT * INIT_CHANNELS
    stem = b.bn(b.conv(x, c_curr, 3, name="stem.conv"), name="stem.bn")
    s0 = s1 = stem
    c_curr = INIT_CHANNELS
    reduction_prev = False
    for i in range(N_LAYERS):
        reduction = i in REDUCTION_LAYERS
        if reduction:
            c_curr *= 2
        geno = spec["reduce" if reduction else "normal"]
        cname = f"cells.{i}"
        if reduction_prev:
            p0 = _cg_factorized_reduce(b, s0, c_curr, f"{cname}.pre0")
        else:
            p0 = _cg_relu_conv_bn(b, s0, c_curr, f"{cname}.pre0")
        p1 = _cg_relu_conv_bn(b, s1, c_curr, f"{cname}.pre1")
        states = [p0, p1]
        for k in range(N_NODES):
            outs = []
            for j in (2 * k, 2 * k + 1):
                op, inp = geno[j]
                stride = 2 if reduction and inp < 2 else 1
                outs.append(_cg_op(b, states[inp], op, stride, f"{cname}.ops.{j}"))
            states.append(b.add("add", outs, b.shape(outs[0]), name=f"{cname}.node{k}"))
        s0, s1 = s1, b.concat(states[2:], name=f"{cname}.cat")
        reduction_prev = reduction
    logits = b.linear(b.mean(s1, name="global_pool"), NUM_CLASSES, name="classifier")
    return b.output(logits)


def naslib_param_count(cg: CG) -> int:
    """The parameter count NASLib reports for the same architecture (see module docstring): this
    network's count minus the affine weights of the BNs inside cell ops (NASLib builds them
    with ``affine=False``).  ``cg`` must come from :func:`build_cg` (it uses the node names)."""
    cell_op_bn = sum(nd.params for nd in cg.nodes if nd.op == "batchnorm" and ".ops." in nd.name)
    return cg.params - cell_op_bn


# ---------------------------------------------------------------------------------------------
# the family
# ---------------------------------------------------------------------------------------------

@register
class NB301(Family):
    name = "nb301"
    title = "NAS-Bench-301 (DARTS)"
    dataset = "cifar10"
    input_hwc = (32, 32, 3)
    num_classes = NUM_CLASSES
    spec_help = SPEC_HELP

    def validate(self, spec: Any) -> dict[str, list[list[Any]]]:
        raw = _coerce(spec)
        return {name: _check_cell(name, raw[name]) for name in CELLS}

    def canonical(self, spec: Any) -> str:
        s = self.validate(spec)
        canon = {}
        for name in CELLS:
            pairs = []
            for k in range(N_NODES):
                pairs.extend(sorted(s[name][2 * k: 2 * k + 2], key=lambda p: (p[1], p[0])))
            canon[name] = pairs
        return json.dumps(canon, sort_keys=True, separators=(",", ":"))

    def sample(self, n: int, seed: int = 0) -> list[dict[str, list[list[Any]]]]:
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            spec = {}
            for name in CELLS:
                pairs = []
                for k in range(N_NODES):
                    for inp in rng.sample(range(k + 2), 2):
                        pairs.append([rng.choice(OPS), inp])
                spec[name] = pairs
            out.append(spec)
        return out

    def build_module(self, spec: Any) -> nn.Module:
        return NetworkNB301(self.validate(spec)).eval()

    def to_cg(self, spec: Any) -> CG:
        s = self.validate(spec)
        return build_cg(s, name=f"nb301-{self.spec_hash(s)}")

    def space_size(self) -> int:
        # per cell: node k picks an unordered pair of distinct inputs among k + 2 and 2 ops
        per_cell = 1
        for k in range(N_NODES):
            per_cell *= (k + 2) * (k + 1) // 2 * len(OPS) ** 2
        return per_cell ** 2
