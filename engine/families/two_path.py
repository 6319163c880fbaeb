"""Two-Path family (GENNAPE Table 2): CIFAR-10 networks of two independent chains of blocks.

Spec
----
A JSON object::

    {"path1": [["conv3x3", "maxpool3x3"], ["bottleneck-r2-k3"], ["inception_s5x5"]],
     "path2": [["double3x3"], ["conv5x5", "conv1x1", "conv3x3"]],
     "path1_reduce": [0, 2],
     "path2_reduce": [0, 1]}

* ``path1`` / ``path2``: the blocks of each path, L in {2, 3, 4} blocks per path; a block is the
  ordered list of its 1-3 op names (a block may also be written ``{"ops": [...]}`` or the
  authors' ``{"op_names": [...]}``);
* ``path1_reduce`` / ``path2_reduce``: the indices of exactly 2 reduction blocks of that path
  (stride 2, channels x2); the authors' ``path1_reduce_inds`` / ``path2_reduce_inds`` keys are
  accepted too.  Normalised form: sorted.
* op names (case-insensitive, ``-`` and ``_`` interchangeable): conv ops ``conv3x3``, ``conv5x5``,
  ``double3x3``, ``bottleneck-r2-k3``, ``bottleneck-r4-k3``, ``bottleneck-e2-k3``,
  ``inception_s3x3``, ``inception_s5x5``; supplementary ("supp") ops ``conv1x1``,
  ``bottleneck-r2-k1``, ``bottleneck-e2-k1``, ``avgpool3x3``, ``maxpool3x3``.  A block has at
  least one conv op (the authors' sampler draws a conv op first) and at most one supp op.

Swapping the two paths gives the same network (and the same CG), so :meth:`TwoPath.canonical`
orders the two paths; :meth:`TwoPath.validate` keeps the given order.

Network (the authors' TF ``TwoPathNet``)
------------------------------------------
* stem: conv3x3 (32) BN ReLU6 -> conv3x3 stride 2 (32) BN ReLU6 (16 x 16 x 32);
* each path starts from the stem output at 32 channels; a reduction block halves the resolution
  and doubles the channels, so both paths end at 4 x 4 x 128;
* a block applies its ops in order.  The first conv op carries the block stride and maps
  C_in -> C_out; every other op maps its input channels to themselves with stride 1.  A block
  whose output shape equals its input shape (every non-reduction block) adds its input
  (residual);
* concat(path1, path2) (256) -> conv3x3 (512) BN ReLU6 -> global average pool -> linear(10).

Ops (convs without bias, each followed by BN with eps 1e-3, TF momentum 0.9; C_a -> C_b, stride s):
``conv3x3``/``conv5x5`` conv BN ReLU6; ``double3x3`` conv3x3 (s, C_a -> C_a) BN ReLU6 -> conv3x3
(-> C_b) BN ReLU6; ``bottleneck-rR-kK`` / ``bottleneck-e2-kK`` KxK conv (s, C_a -> C_a // R or
2 C_a) BN -> KxK conv (-> C_b) BN, without activations (TF definition); ``inception_sK`` 1xK conv
(stride s on both axes) BN ReLU6 -> Kx1 conv BN ReLU6; ``conv1x1`` conv BN ReLU6;
``avgpool3x3``/``maxpool3x3`` 3x3 pool stride 1 ("same") + BN.

Decisions where the reference is silent (op-level details checked against the authors' CG of
one Two-Path network, ``two_path_best_cg.pkl``, whose 20 convs match these definitions):
* the authors' TF graph has a Dropout(0) before the classifier; by the CG conventions dropout is
  contracted into an edge, so the CG has no ``identity`` node there;
* :meth:`TwoPath.sample` follows the authors' sampler (L uniform in {2, 3, 4}; ops per block
  uniform in {1, 2, 3}; first op a uniform conv op, each further op uniform over all 13 ops with
  a second supp op replaced by a uniform conv op; the block's op order shuffled; 2 reduction
  blocks uniform among the path's blocks) and returns distinct networks (by :meth:`canonical`).
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

from engine.families import _program as prog
from engine.families._sampling import block_ops
from engine.families.base import SpecError, register

CONV_OPS: tuple[str, ...] = (
    "conv3x3", "conv5x5", "double3x3", "bottleneck-r2-k3", "bottleneck-r4-k3", "bottleneck-e2-k3",
    "inception_s3x3", "inception_s5x5")
SUPP_OPS: tuple[str, ...] = ("conv1x1", "bottleneck-r2-k1", "bottleneck-e2-k1", "avgpool3x3", "maxpool3x3")
ALL_OPS: tuple[str, ...] = CONV_OPS + SUPP_OPS
_ALIASES = {op.replace("-", "").replace("_", ""): op for op in ALL_OPS}

BLOCK_COUNTS = (2, 3, 4)
OPS_PER_BLOCK = (1, 2, 3)
NUM_REDUCTIONS = 2
STEM_CHANNELS = 32
POST_CHANNELS = 512
NUM_CLASSES = 10
BN_EPS = 1e-3
BN_MOMENTUM = 0.1  # PyTorch convention (1 - TF momentum 0.9)


# ---------------------------------------------------------------------------------------------
# programs (see engine.families._program)
# ---------------------------------------------------------------------------------------------

def _cbr(f, x, c, k, s=1):
    return f.act(f.bn(f.conv(x, c, k, s)), "relu6")


def _op(f, x, op: str, c_a: int, c_b: int, s: int):
    """One op mapping ``c_a`` -> ``c_b`` channels with stride ``s``."""
    if op in ("conv3x3", "conv5x5", "conv1x1"):
        return _cbr(f, x, c_b, int(op[4]), s)
    if op == "double3x3":
        return _cbr(f, _cbr(f, x, c_a, 3, s), c_b, 3)
    if op.startswith("bottleneck-"):
        _, ratio, kernel = op.split("-")
        k = int(kernel[1:])
        hidden = c_a // int(ratio[1:]) if ratio[0] == "r" else c_a * int(ratio[1:])
        y = f.bn(f.conv(x, hidden, k, s))
        return f.bn(f.conv(y, c_b, k))
    if op.startswith("inception_s"):
        k = int(op[-1])
        y = _cbr(f, x, c_b, (1, k), s)
        return _cbr(f, y, c_b, (k, 1))
    if op in ("avgpool3x3", "maxpool3x3"):
        assert c_a == c_b and s == 1, "pools keep channels and resolution"
        return f.bn(f.pool(x, op[:7], 3, 1))
    raise KeyError(op)


def _block(f, x, ops: list[str], c_in: int, c_out: int, s: int):
    first_conv = next(i for i, op in enumerate(ops) if op in CONV_OPS)
    y, c = x, c_in
    for i, op in enumerate(ops):
        if i == first_conv:
            y = _op(f, y, op, c, c_out, s)
            c = c_out
        else:
            y = _op(f, y, op, c, c, 1)
    if s == 1 and c_in == c_out:
        y = f.add([y, x])
    return y


def _stem(f, x):
    return _cbr(f, _cbr(f, x, STEM_CHANNELS, 3), STEM_CHANNELS, 3, 2)


def _head(f, x):
    y = _cbr(f, x, POST_CHANNELS, 3)
    return f.linear(f.mean(y), NUM_CLASSES)


def _network(f, x, path1: list, path2: list, path1_reduce: list, path2_reduce: list):
    stem = f.sub("stem", _stem, x)
    outs = []
    for p, (blocks, reduce) in enumerate(((path1, path1_reduce), (path2, path2_reduce)), start=1):
        y, c = stem, STEM_CHANNELS
        for i, ops in enumerate(blocks):
            red = i in reduce
            y = f.sub(f"p{p}b{i}", _block, y, ops=ops, c_in=c, c_out=2 * c if red else c, s=2 if red else 1)
            c = 2 * c if red else c
        outs.append(y)
    return f.sub("head", _head, f.concat(outs))


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------

def _op_name(value: Any, where: str) -> str:
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "").replace("_", "")
        if key in _ALIASES:
            return _ALIASES[key]
    raise SpecError(f"{where}: unknown op {value!r}; allowed: conv ops {', '.join(CONV_OPS)}; "
                    f"supp ops {', '.join(SUPP_OPS)}")


def _block_ops(value: Any, where: str) -> list[str]:
    if isinstance(value, dict):
        keys = [k for k in ("ops", "op_names") if k in value]
        if len(keys) != 1:
            raise SpecError(f"{where}: a block object needs exactly one of 'ops' / 'op_names', got keys "
                            f"{sorted(value)}")
        where, value = f"{where}.{keys[0]}", value[keys[0]]
    if not isinstance(value, list | tuple):
        raise SpecError(f"{where}: expected a list of 1-3 op names, got {type(value).__name__} {value!r}")
    if len(value) not in OPS_PER_BLOCK:
        raise SpecError(f"{where}: a block has 1-3 ops, got {len(value)}: {list(value)!r}")
    ops = [_op_name(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if not any(op in CONV_OPS for op in ops):
        raise SpecError(f"{where}: a block needs at least one conv op ({', '.join(CONV_OPS)}), got {ops!r}")
    supp = [op for op in ops if op in SUPP_OPS]
    if len(supp) > 1:
        raise SpecError(f"{where}: a block has at most one supp op, got {len(supp)} ({supp!r})")
    return ops


def _reduce_inds(value: Any, n_blocks: int, where: str) -> list[int]:
    ok = isinstance(value, list | tuple) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    if not ok or len(value) != NUM_REDUCTIONS or len(set(value)) != NUM_REDUCTIONS:
        raise SpecError(f"{where}: expected {NUM_REDUCTIONS} distinct block indices, got {value!r}")
    bad = [v for v in value if not 0 <= v < n_blocks]
    if bad:
        raise SpecError(f"{where}: block index {bad[0]} out of range; the path has {n_blocks} blocks "
                        f"(indices 0..{n_blocks - 1})")
    return sorted(value)


def _count_block_variants() -> int:
    """Distinct op lists of one block: 1-3 ordered ops, >= 1 conv op, <= 1 supp op."""
    nc, ns = len(CONV_OPS), len(SUPP_OPS)
    return sum(nc ** m + (m * ns * nc ** (m - 1) if m >= 2 else 0) for m in OPS_PER_BLOCK)


# ---------------------------------------------------------------------------------------------
# family
# ---------------------------------------------------------------------------------------------

@register
class TwoPath(prog.ProgramFamily):
    name = "two_path"
    program = staticmethod(_network)
    bn_eps, bn_momentum = BN_EPS, BN_MOMENTUM
    title = "Two-Path"
    dataset = "cifar10"
    input_hwc = (32, 32, 3)
    num_classes = NUM_CLASSES
    spec_help = ('{"path1": [[ops of block 0], ...], "path2": [...], "path1_reduce": [i, j], '
                 '"path2_reduce": [i, j]}: 2-4 blocks per path, 1-3 ops per block (>= 1 conv op, <= 1 supp op), '
                 "2 reduction blocks per path; conv ops " + ", ".join(CONV_OPS) + "; supp ops " + ", ".join(SUPP_OPS))

    def validate(self, spec: Any) -> dict[str, Any]:
        if not isinstance(spec, dict):
            raise SpecError(f"two_path spec: expected an object with path1, path2, path1_reduce, path2_reduce; "
                            f"got {type(spec).__name__} {spec!r}")
        out: dict[str, Any] = {}
        allowed = {"path1", "path2", "path1_reduce", "path2_reduce", "path1_reduce_inds", "path2_reduce_inds"}
        extra = sorted(set(spec) - allowed)
        if extra:
            raise SpecError(f"two_path spec: unknown field(s) {extra}; allowed: path1, path2, path1_reduce, "
                            "path2_reduce")
        for p in ("path1", "path2"):
            if p not in spec:
                raise SpecError(f"two_path spec: missing field {p!r} (list of 2-4 blocks)")
            blocks = spec[p]
            if not isinstance(blocks, list | tuple) or len(blocks) not in BLOCK_COUNTS:
                got = f"{len(blocks)} blocks" if isinstance(blocks, list | tuple) else type(blocks).__name__
                raise SpecError(f"two_path spec.{p}: expected a list of 2-4 blocks, got {got}: {blocks!r}")
            out[p] = [_block_ops(b, f"two_path spec.{p}[{i}]") for i, b in enumerate(blocks)]
            keys = [k for k in (f"{p}_reduce", f"{p}_reduce_inds") if k in spec]
            if len(keys) != 1:
                raise SpecError(f"two_path spec: expected field {p}_reduce (the 2 reduction block indices of {p})")
            out[f"{p}_reduce"] = _reduce_inds(spec[keys[0]], len(out[p]), f"two_path spec.{keys[0]}")
        return {k: out[k] for k in ("path1", "path2", "path1_reduce", "path2_reduce")}

    def canonical(self, spec: Any) -> str:
        s = self.validate(spec)
        a = json.dumps([s["path1"], s["path1_reduce"]], separators=(",", ":"))
        b = json.dumps([s["path2"], s["path2_reduce"]], separators=(",", ":"))
        if b < a:
            s = {"path1": s["path2"], "path2": s["path1"], "path1_reduce": s["path2_reduce"],
                 "path2_reduce": s["path1_reduce"]}
        return json.dumps(s, sort_keys=True, separators=(",", ":"))

    @staticmethod
    def _sample_block(rng: random.Random) -> list[str]:
        n_ops = rng.choice(OPS_PER_BLOCK)
        return block_ops(rng, n_ops, CONV_OPS, ALL_OPS, SUPP_OPS)  # a supp op with probability 5/13 per draw

    def _sample_path(self, rng: random.Random) -> tuple[list[list[str]], list[int]]:
        n_blocks = rng.choice(BLOCK_COUNTS)
        blocks = [self._sample_block(rng) for _ in range(n_blocks)]
        return blocks, sorted(rng.sample(range(n_blocks), NUM_REDUCTIONS))

    def sample(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` distinct specs drawn with the authors' sampler (see the module docstring)."""
        def draw(rng: random.Random) -> dict[str, Any]:
            (p1, r1), (p2, r2) = self._sample_path(rng), self._sample_path(rng)
            return {"path1": p1, "path2": p2, "path1_reduce": r1, "path2_reduce": r2}

        return self._distinct(n, seed, draw)

    def space_size(self) -> int:
        """Distinct networks (unordered pairs of paths)."""
        b = _count_block_variants()
        paths = sum(math.comb(n, NUM_REDUCTIONS) * b ** n for n in BLOCK_COUNTS)
        return paths * (paths + 1) // 2
