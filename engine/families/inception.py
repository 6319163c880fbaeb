"""Inception family (GENNAPE Table 2): CIFAR-10 networks of 4 stages of multi-path blocks.

Spec
----
A JSON object with 4 stages; each stage repeats one sampled block ``n_blocks`` times::

    {"stages": [
        {"n_blocks": 3,
         "paths": [{"ops": ["conv3x3", "maxpool3x3"], "width": 16, "c_internal": 16},
                   {"ops": ["depthwise5x5"], "width": 16, "c_internal": 16}]},
        ... (4 stages)
    ]}

* ``n_blocks``: 2-6 blocks in the stage (the first carries the stage's stride);
* ``paths``: 1-4 parallel paths of the block (a stage may also be written
  ``{"n_blocks": .., "block": {"paths": [..]}}``);
* ``width``: the path's output channels after the >= 16 clamp.  The multiset of widths must be
  the sampler's split of the stage channels C for that number of paths: 1 path ``[C]``, 2 paths
  ``[C/2, C/2]``, 3 paths ``[C/2, C/4, C/4]``, 4 paths ``[C/4] * 4``, each clamped to >= 16, in
  any order;
* ``ops``: the path's ordered op names, at least ``{1: 1, 2: 1, 3: 2, 4: 2}[n_paths]`` per path and at
  most ``{1: 3, 2: 4, 3: 8, 4: 10}[n_paths]`` per block in total, >= 1 conv op and <= 1 supp op per
  path.  Conv ops: ``conv3x3``, ``conv5x5``, ``inception_s3x3``, ``inception_s5x5``,
  ``inception_p3x3``, ``inception_p5x5``, ``depthwise3x3``, ``depthwise5x5``; supp ops:
  ``conv1x1``, ``avgpool3x3``, ``maxpool3x3``, ``double1x1``;
* ``c_internal``: the path's internal width, one of ``width // 2``, ``width``, ``2 * width``
  (clamped to >= 16) when the path has >= 2 channel-changing ops (every op except the pools),
  else ``width`` (optional; defaults to ``width``).

Network (the authors' TF ``InceptionNet`` with ``use_bn=True, use_bias=True``)
--------------------------------------------------------------------------------
* stem: conv3x3 (32, bias) BN ReLU6;  BN eps 1e-3, TF momentum 0.99;
* 4 stages with C = 32 / 64 / 128 / 256 at 32 / 16 / 8 / 4 px (stages 1-3 reduce: their first
  block has stride 2);
* block: every path runs on the block input; the first channel-changing op maps C_in ->
  c_internal, the last one maps -> width (a single one maps C_in -> width), the others keep
  channels; the path's first conv op carries the block stride.  Paths are concatenated (in spec
  order); a 1x1 conv (bias) + BN projects to C when the widths do not sum to C; the block input
  is added when the stride is 1 and C_in == C;
* post conv3x3 (512, bias) BN ReLU6 -> global average pool -> linear(10).

Ops (C_a -> C_b, stride s; all convs with bias except the depthwise input projection):
``convKxK`` conv BN ReLU6; ``inception_sK`` 1xK conv (stride (1, s)) BN ReLU6 -> Kx1 conv (stride
(s, 1)) BN ReLU6; ``inception_pK`` two branches of C_b // 2 and C_b - C_b // 2 channels,
concatenated then ReLU6 — stride 1: 1xK conv BN | Kx1 conv BN; stride 2: 1xK (1, s) BN -> Kx1
(s, 1) BN | Kx1 (s, 1) BN -> 1xK (1, s) BN; ``depthwiseK`` [1x1 conv, no bias/BN, if C_a != C_b] ->
KxK depthwise (stride s) BN ReLU6; ``conv1x1`` conv BN ReLU6; ``avgpool3x3``/``maxpool3x3`` 3x3
pool stride 1 + BN; ``double1x1`` 1x1 conv (C_a -> C_b) BN ReLU6 -> 1x1 conv (stride s) BN ReLU6.

Decisions where the reference is silent or ambiguous (op-level details checked against the
authors' CG of one Inception network, ``inception_best_cg.pkl``):
* "a path with >= 2 distinct channel-changing ops" is read as >= 2 such op *instances* (so
  ``[conv3x3, conv3x3]`` may have ``c_internal != width``);
* the sampler's op-count rule (uniform between the per-path minimum and the remaining budget
  less the minimum reserved for the remaining paths) is enforced in validation as "each path >=
  the minimum, the block total <= the maximum", exactly the set of reachable counts;
* the authors' TF graph has a Dropout(0) before the classifier; by the CG conventions it is
  contracted into an edge (no ``identity`` node);
* :meth:`Inception.sample` returns distinct networks.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import Counter
from functools import cache
from typing import Any

from engine.families import _program as prog
from engine.families._sampling import block_ops
from engine.families.base import SpecError, register

CONV_OPS: tuple[str, ...] = (
    "conv3x3", "conv5x5", "inception_s3x3", "inception_s5x5", "inception_p3x3", "inception_p5x5",
    "depthwise3x3", "depthwise5x5")
SUPP_OPS: tuple[str, ...] = ("conv1x1", "avgpool3x3", "maxpool3x3", "double1x1")
ALL_OPS: tuple[str, ...] = CONV_OPS + SUPP_OPS
POOL_OPS: frozenset[str] = frozenset({"avgpool3x3", "maxpool3x3"})
_ALIASES = {op.replace("-", "").replace("_", ""): op for op in ALL_OPS}

STEM_CHANNELS = 32
#: (channels, stride of the first block) per stage
STAGES: tuple[tuple[int, int], ...] = ((32, 1), (64, 2), (128, 2), (256, 2))
BLOCK_COUNTS = (2, 3, 4, 5, 6)
PATH_COUNTS = (1, 2, 3, 4)
MAX_OPS_PER_BLOCK = {1: 3, 2: 4, 3: 8, 4: 10}
MIN_OPS_PER_PATH = {1: 1, 2: 1, 3: 2, 4: 2}
MIN_CHANNELS = 16
#: c_internal choices: (factor name, probability)
INTERNAL_PROBS = (("reduce2", 0.3), ("no_change", 0.6), ("expand2", 0.1))
POST_CHANNELS = 512
NUM_CLASSES = 10
BN_EPS = 1e-3
BN_MOMENTUM = 0.01  # PyTorch convention (1 - TF momentum 0.99)


def changes_channels(op: str) -> bool:
    """Every op except the pools can map its input channels to other output channels."""
    return op not in POOL_OPS


def path_widths(c: int, n_paths: int) -> list[int]:
    """The sampler's (unshuffled) path widths for stage channels ``c``, after the >= 16 clamp."""
    if n_paths == 3:
        q = c // 4
        widths = [2 * q, q, q + c - 4 * q]
    else:
        widths = [c // n_paths] * (n_paths - 1) + [c // n_paths + c % n_paths]
    return [max(MIN_CHANNELS, w) for w in widths]


def internal_choices(width: int) -> list[int]:
    """Allowed ``c_internal`` values of a path with >= 2 channel-changing ops (distinct, sorted)."""
    return sorted({max(MIN_CHANNELS, width // 2), width, max(MIN_CHANNELS, 2 * width)})


# ---------------------------------------------------------------------------------------------
# programs (see engine.families._program)
# ---------------------------------------------------------------------------------------------

def _cbr(f, x, c, k, s=1):
    return f.act(f.bn(f.conv(x, c, k, s, bias=True)), "relu6")


def _cb(f, x, c, k, s=1):
    return f.bn(f.conv(x, c, k, s, bias=True))


def _op(f, x, op: str, c_a: int, c_b: int, s: int):
    """One op mapping ``c_a`` -> ``c_b`` channels with stride ``s``."""
    if op in ("conv3x3", "conv5x5", "conv1x1"):
        return _cbr(f, x, c_b, int(op[4]), s)
    if op.startswith("inception_s"):
        k = int(op[-1])
        return _cbr(f, _cbr(f, x, c_b, (1, k), (1, s)), c_b, (k, 1), (s, 1))
    if op.startswith("inception_p"):
        k = int(op[-1])
        h1, h2 = c_b // 2, c_b - c_b // 2
        if s == 1:
            b1 = _cb(f, x, h1, (1, k))
            b2 = _cb(f, x, h2, (k, 1))
        else:
            b1 = _cb(f, _cb(f, x, h1, (1, k), (1, s)), h1, (k, 1), (s, 1))
            b2 = _cb(f, _cb(f, x, h2, (k, 1), (s, 1)), h2, (1, k), (1, s))
        return f.act(f.concat([b1, b2]), "relu6")
    if op.startswith("depthwise"):
        k = int(op[-1])
        y = f.conv(x, c_b, 1) if c_a != c_b else x
        return f.act(f.bn(f.conv(y, c_b, k, s, bias=True, depthwise=True)), "relu6")
    if op in POOL_OPS:
        assert c_a == c_b and s == 1, "pools keep channels and resolution"
        return f.bn(f.pool(x, op[:7], 3, 1))
    if op == "double1x1":
        return _cbr(f, _cbr(f, x, c_b, 1), c_b, 1, s)
    raise KeyError(op)


def path_channels(ops: list[str], c_in: int, width: int, c_internal: int) -> list[tuple[int, int]]:
    """``(C_a, C_b)`` of every op of a path."""
    changing = [i for i, op in enumerate(ops) if changes_channels(op)]
    first, last = changing[0], changing[-1]
    out, c = [], c_in
    for i in range(len(ops)):
        c_b = width if i == last else (c_internal if i == first else c)
        out.append((c, c_b))
        c = c_b
    return out


def _path(f, x, ops: list[str], c_in: int, width: int, c_internal: int, s: int):
    first_conv = next(i for i, op in enumerate(ops) if op in CONV_OPS)
    y = x
    for i, (op, (c_a, c_b)) in enumerate(zip(ops, path_channels(ops, c_in, width, c_internal))):
        y = _op(f, y, op, c_a, c_b, s if i == first_conv else 1)
    return y


def _block(f, x, paths: list[dict], c_in: int, c: int, s: int):
    outs = [_path(f, x, p["ops"], c_in, p["width"], p["c_internal"], s) for p in paths]
    y = f.concat(outs) if len(outs) > 1 else outs[0]
    if sum(p["width"] for p in paths) != c:
        y = _cb(f, y, c, 1)
    if s == 1 and c_in == c:
        y = f.add([x, y])
    return y


def _stem(f, x):
    return _cbr(f, x, STEM_CHANNELS, 3)


def _head(f, x):
    return f.linear(f.mean(_cbr(f, x, POST_CHANNELS, 3)), NUM_CLASSES)


def _network(f, x, stages: list[dict]):
    y = f.sub("stem", _stem, x)
    c_in = STEM_CHANNELS
    for i, ((c, stride), stage) in enumerate(zip(STAGES, stages)):
        for j in range(stage["n_blocks"]):
            y = f.sub(f"s{i}b{j}", _block, y, paths=stage["paths"], c_in=c_in, c=c, s=stride if j == 0 else 1)
            c_in = c
    return f.sub("head", _head, y)


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _op_name(value: Any, where: str) -> str:
    if isinstance(value, str):
        key = value.strip().lower().replace("-", "").replace("_", "")
        if key in _ALIASES:
            return _ALIASES[key]
    raise SpecError(f"{where}: unknown op {value!r}; allowed: conv ops {', '.join(CONV_OPS)}; "
                    f"supp ops {', '.join(SUPP_OPS)}")


def _validate_path(p: Any, n_paths: int, where: str) -> dict[str, Any]:
    if not isinstance(p, dict):
        raise SpecError(f"{where}: expected an object {{ops, width, c_internal}}, got {type(p).__name__} {p!r}")
    extra = sorted(set(p) - {"ops", "width", "c_internal"})
    if extra:
        raise SpecError(f"{where}: unknown field(s) {extra}; allowed: ops, width, c_internal")
    ops = p.get("ops")
    if not isinstance(ops, list | tuple) or not ops:
        raise SpecError(f"{where}.ops: expected a non-empty list of op names, got {ops!r}")
    ops = [_op_name(v, f"{where}.ops[{k}]") for k, v in enumerate(ops)]
    lo = MIN_OPS_PER_PATH[n_paths]
    if len(ops) < lo:
        raise SpecError(f"{where}.ops: a block with {n_paths} paths needs >= {lo} ops per path, got {len(ops)}")
    if not any(op in CONV_OPS for op in ops):
        raise SpecError(f"{where}.ops: a path needs at least one conv op ({', '.join(CONV_OPS)}), got {ops!r}")
    supp = [op for op in ops if op in SUPP_OPS]
    if len(supp) > 1:
        raise SpecError(f"{where}.ops: a path has at most one supp op, got {len(supp)} ({supp!r})")
    width = p.get("width")
    if not _is_int(width) or width < MIN_CHANNELS:
        raise SpecError(f"{where}.width: expected an int >= {MIN_CHANNELS}, got {width!r}")
    c_int = p.get("c_internal", width)
    n_changing = sum(changes_channels(op) for op in ops)
    allowed = internal_choices(width) if n_changing >= 2 else [width]
    if not _is_int(c_int) or c_int not in allowed:
        why = "" if n_changing >= 2 else " (the path has fewer than 2 channel-changing ops)"
        raise SpecError(f"{where}.c_internal: got {c_int!r}; allowed for width {width}: {allowed}{why}")
    return {"ops": ops, "width": width, "c_internal": c_int}


def _validate_stage(st: Any, c: int, where: str) -> dict[str, Any]:
    if not isinstance(st, dict):
        raise SpecError(f"{where}: expected an object {{n_blocks, paths}}, got {type(st).__name__} {st!r}")
    extra = sorted(set(st) - {"n_blocks", "paths", "block"})
    if extra:
        raise SpecError(f"{where}: unknown field(s) {extra}; allowed: n_blocks, paths (or block.paths)")
    nb = st.get("n_blocks")
    if not _is_int(nb) or nb not in BLOCK_COUNTS:
        raise SpecError(f"{where}.n_blocks: expected an int in 2..6, got {nb!r}")
    if "block" in st:
        if "paths" in st or not isinstance(st["block"], dict) or set(st["block"]) != {"paths"}:
            raise SpecError(f"{where}: give either 'paths' or 'block': {{'paths': [...]}}, got {st!r}")
        paths, pwhere = st["block"]["paths"], f"{where}.block.paths"
    else:
        paths, pwhere = st.get("paths"), f"{where}.paths"
    if not isinstance(paths, list | tuple) or len(paths) not in PATH_COUNTS:
        raise SpecError(f"{pwhere}: expected a list of 1-4 paths, got {paths!r}")
    n = len(paths)
    out = [_validate_path(p, n, f"{pwhere}[{k}]") for k, p in enumerate(paths)]
    total = sum(len(p["ops"]) for p in out)
    if total > MAX_OPS_PER_BLOCK[n]:
        raise SpecError(f"{pwhere}: a block with {n} paths has at most {MAX_OPS_PER_BLOCK[n]} ops in total, "
                        f"got {total}")
    widths = [p["width"] for p in out]
    expected = path_widths(c, n)
    if sorted(widths) != sorted(expected):
        raise SpecError(f"{pwhere}: path widths {widths} do not match stage channels {c} with {n} paths; "
                        f"expected {expected} in any order")
    return {"n_blocks": nb, "paths": out}


# ---------------------------------------------------------------------------------------------
# space size
# ---------------------------------------------------------------------------------------------

@cache
def _op_lists(m: int) -> tuple[tuple[int, int], ...]:
    """``(count, n_changing)`` classes of valid op lists of length ``m`` (>= 1 conv, <= 1 supp)."""
    nc = len(CONV_OPS)
    out = [(nc ** m, m)]  # all conv
    if m >= 2:
        n_pool, n_other = len(POOL_OPS), len(SUPP_OPS) - len(POOL_OPS)
        out.append((m * n_other * nc ** (m - 1), m))
        out.append((m * n_pool * nc ** (m - 1), m - 1))
    return tuple(out)


def _path_variants(m: int, width: int) -> int:
    return sum(cnt * (len(internal_choices(width)) if n_chg >= 2 else 1) for cnt, n_chg in _op_lists(m))


def _block_variants(c: int) -> int:
    total = 0
    for n in PATH_COUNTS:
        widths = path_widths(c, n)
        orders = math.factorial(n) // math.prod(math.factorial(k) for k in Counter(widths).values())
        lo, hi = MIN_OPS_PER_PATH[n], MAX_OPS_PER_BLOCK[n]
        # every distinct ordering has the same count; use the sorted widths
        count = 0
        for ms in itertools.product(range(lo, hi + 1), repeat=n):
            if sum(ms) <= hi:
                count += math.prod(_path_variants(m, w) for m, w in zip(ms, widths))
        total += orders * count
    return total


# ---------------------------------------------------------------------------------------------
# family
# ---------------------------------------------------------------------------------------------

@register
class Inception(prog.ProgramFamily):
    name = "inception"
    program = staticmethod(_network)
    bn_eps, bn_momentum = BN_EPS, BN_MOMENTUM
    title = "Inception"
    dataset = "cifar10"
    input_hwc = (32, 32, 3)
    num_classes = NUM_CLASSES
    spec_help = ('{"stages": [4 x {"n_blocks": 2-6, "paths": [1-4 x {"ops": [...], "width": int, '
                 '"c_internal": int}]}]}; stage channels 32/64/128/256; conv ops ' + ", ".join(CONV_OPS)
                 + "; supp ops " + ", ".join(SUPP_OPS))

    def validate(self, spec: Any) -> dict[str, Any]:
        if isinstance(spec, list | tuple):
            spec = {"stages": list(spec)}
        if not isinstance(spec, dict) or set(spec) != {"stages"}:
            raise SpecError(f"inception spec: expected an object {{\"stages\": [4 stages]}}, got {spec!r}"[:400])
        stages = spec["stages"]
        if not isinstance(stages, list | tuple) or len(stages) != len(STAGES):
            raise SpecError(f"inception spec.stages: expected a list of 4 stages, got {stages!r}"[:400])
        return {"stages": [_validate_stage(st, c, f"inception spec.stages[{i}]")
                           for i, (st, (c, _)) in enumerate(zip(stages, STAGES))]}

    # --- sampler (the authors' sample_block_config) ----------------------------------------------
    @staticmethod
    def _sample_path_ops(rng: random.Random, n_ops: int) -> list[str]:
        return block_ops(rng, n_ops, CONV_OPS, ALL_OPS, SUPP_OPS)  # a supp op with probability 4/12 per draw

    def _sample_block(self, rng: random.Random, c: int) -> list[dict[str, Any]]:
        n = rng.choice(PATH_COUNTS)
        if n == 3:
            q = c // 4
            widths = [2 * q, q, q + c - 4 * q]
        else:
            widths = [c // n] * (n - 1) + [c // n + c % n]
        rng.shuffle(widths)
        widths = [max(MIN_CHANNELS, w) for w in widths]
        remaining, lo = MAX_OPS_PER_BLOCK[n], MIN_OPS_PER_PATH[n]
        paths = []
        for k, w in enumerate(widths):
            n_ops = rng.randint(lo, remaining - lo * (n - k - 1))
            remaining -= n_ops
            ops = self._sample_path_ops(rng, n_ops)
            c_int = w
            if sum(changes_channels(op) for op in ops) >= 2:
                r = rng.random()
                c_int = max(MIN_CHANNELS, w // 2) if r < 0.3 else (w if r < 0.9 else max(MIN_CHANNELS, 2 * w))
            paths.append({"ops": ops, "width": w, "c_internal": c_int})
        return paths

    def sample(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` distinct specs drawn with the authors' sampler (see the module docstring)."""
        return self._distinct(n, seed, lambda rng: {
            "stages": [{"n_blocks": rng.choice(BLOCK_COUNTS), "paths": self._sample_block(rng, c)} for c, _ in STAGES]})

    def space_size(self) -> int:
        return math.prod(len(BLOCK_COUNTS) * _block_variants(c) for c, _ in STAGES)
