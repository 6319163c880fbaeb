"""HiAML family (GENNAPE Table 2): CIFAR-10 networks of 4 stages built from 14 searched blocks.

Spec
----
A list of 4 block names, one per stage, e.g. ``["hiaml_a22", "hiaml_b23", "hiaml_src1", "hiaml_z"]``.
Names are case-insensitive and the ``hiaml_`` prefix is optional; a comma-separated string is
accepted too.  The normalised spec is the list of 4 full lower-case names.  The space has
14^4 = 38,416 networks (:meth:`HiAML.enumerate` lists them all).

Network (the authors' TF ``HiAMLNet``, from which their CGs were built)
--------------------------------------------------------------------------
* stem: conv3x3 stride 2 (64) -> BN -> ReLU (16 x 16);
* 4 stages x 2 blocks, both blocks of a stage use the stage's block type; stages 1 and 3 reduce
  (first block: stride 2, channels x2).  Channels 64 / 128 / 128 / 256 at 16 / 8 / 8 / 4 px;
* global average pool -> linear(10).

Block primitives (convs without bias, each followed by BN; BN eps 1e-3, TF momentum 0.9):
``Conv3`` = 3x3 conv + BN + ReLU, ``Conv1`` = 1x1 conv + BN (+ ReLU where marked ``Conv1+ReLU``),
``IncS`` = 1x3 conv (block stride on both axes) + BN + ReLU6 -> 3x1 conv + BN + ReLU6, ``Proj`` =
1x1 conv (block stride) + BN when the block reduces or changes channels, else the identity.
``x`` is the block input, ``s`` the block stride, ``C`` the block's output channels; an op
written ``(x, s)`` maps the block input to ``C`` with stride ``s``, later ops keep ``C``.

=============  =========================================================================================
``hiaml_z``    o1 = Conv3(x, s); o2 = IncS(o1); ReLU(o1 + o2)
``hiaml_a22``  o1 = Conv3(x, s); o2 = Conv1+ReLU(o1); o3 = Conv1(o2); ReLU(o1 + o3)
``hiaml_b23``  o1 = IncS(x, s); o2 = IncS(o1); ReLU(Proj(x) + o2)
``hiaml_j30``  o1 = Conv3(x, s); o2 = IncS(o1); ReLU(Proj(x) + o2)
``hiaml_g30``  o1 = IncS(x, s); o2 = IncS(Proj(x) + o1); o3 = Conv1(o2); ReLU(o1 + o3)
``hiaml_r30``  o1 = IncS(x, s); o2 = Conv1(Proj_a(x) + o1); o3 = IncS(o1); ReLU(Proj_b(x) + o2 + o3)
``hiaml_l20``  o1 = Conv3(x, s); o2 = Conv1(o1); ReLU(o2)
``hiaml_t20``  o1 = Conv1(x, s); o2 = IncS(x, s); ReLU(o1 + o2)
``hiaml_t31``  o1 = IncS(x, s); o2 = Conv1+ReLU(o1); o3 = IncS(Proj_a(x) + o2); ReLU(Proj_b(x) + o2 + o3)
``hiaml_src0`` y = Conv1+ReLU(x, s); o2 = Conv3(y); o3 = Conv3-without-ReLU(o2); ReLU(y + o3)
``hiaml_src1`` sc = Conv1+ReLU(x, s); o2 = Conv3(x -> C_in); o3 = Conv3-without-ReLU(o2, s); ReLU(sc + o3)
``hiaml_src3`` sc = Conv1(x, s); o2 = Conv1+ReLU(x -> C_in); o3 = Conv3(o2, s); o4 = Conv1(o3); ReLU(sc + o4)
``hiaml_src7`` y = Conv1(x, s); o2 = IncS(y); o3 = IncS(o2); ReLU(y + o3)
``hiaml_src8`` y = Conv1(x, s); o2 = IncS(y); o3 = Conv1(o2); ReLU(y + o3)
=============  =========================================================================================

Decisions where the reference is silent (checked against the authors' CG of one HiAML network,
``hiaml_best_cg.pkl``, whose blocks src1/src1/r30/src3 match these definitions node for node):
* a sum of three terms is one n-ary ``add`` node (the authors' TF graph has two binary adds);
* sampling draws each stage uniformly and independently (the authors' sampler) but
  :meth:`HiAML.sample` returns distinct networks (sampling without replacement).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from engine.families import _program as prog
from engine.families.base import SpecError, register

BLOCKS: tuple[str, ...] = (
    "hiaml_z", "hiaml_a22", "hiaml_b23", "hiaml_j30", "hiaml_g30", "hiaml_r30", "hiaml_l20",
    "hiaml_t20", "hiaml_t31", "hiaml_src0", "hiaml_src1", "hiaml_src3", "hiaml_src7", "hiaml_src8")

STEM_CHANNELS = 64
#: (output channels, stride of the first block) per stage
STAGES: tuple[tuple[int, int], ...] = ((64, 1), (128, 2), (128, 1), (256, 2))
BLOCKS_PER_STAGE = 2
NUM_CLASSES = 10
BN_EPS = 1e-3
BN_MOMENTUM = 0.1  # PyTorch convention (1 - TF momentum 0.9)


# ---------------------------------------------------------------------------------------------
# primitives
# ---------------------------------------------------------------------------------------------

def _conv3(f, x, c, s=1, relu=True):
    y = f.bn(f.conv(x, c, 3, s))
    return f.act(y, "relu") if relu else y


def _conv1(f, x, c, s=1, relu=False):
    y = f.bn(f.conv(x, c, 1, s))
    return f.act(y, "relu") if relu else y


def _incs(f, x, c, s=1):
    y = f.act(f.bn(f.conv(x, c, (1, 3), s)), "relu6")
    return f.act(f.bn(f.conv(y, c, (3, 1))), "relu6")


def _proj(f, x, c_in, c, s):
    if s == 1 and c_in == c:
        return x
    return f.bn(f.conv(x, c, 1, s))


# ---------------------------------------------------------------------------------------------
# blocks: fn(f, x, c_in, c, s) -> output
# ---------------------------------------------------------------------------------------------

def _z(f, x, c_in, c, s):
    o1 = _conv3(f, x, c, s)
    o2 = _incs(f, o1, c)
    return f.act(f.add([o1, o2]), "relu")


def _a22(f, x, c_in, c, s):
    o1 = _conv3(f, x, c, s)
    o2 = _conv1(f, o1, c, relu=True)
    o3 = _conv1(f, o2, c)
    return f.act(f.add([o1, o3]), "relu")


def _b23(f, x, c_in, c, s):
    o1 = _incs(f, x, c, s)
    o2 = _incs(f, o1, c)
    return f.act(f.add([_proj(f, x, c_in, c, s), o2]), "relu")


def _j30(f, x, c_in, c, s):
    o1 = _conv3(f, x, c, s)
    o2 = _incs(f, o1, c)
    return f.act(f.add([_proj(f, x, c_in, c, s), o2]), "relu")


def _g30(f, x, c_in, c, s):
    o1 = _incs(f, x, c, s)
    o2 = _incs(f, f.add([_proj(f, x, c_in, c, s), o1]), c)
    o3 = _conv1(f, o2, c)
    return f.act(f.add([o1, o3]), "relu")


def _r30(f, x, c_in, c, s):
    o1 = _incs(f, x, c, s)
    o2 = _conv1(f, f.add([_proj(f, x, c_in, c, s), o1]), c)
    o3 = _incs(f, o1, c)
    return f.act(f.add([_proj(f, x, c_in, c, s), o2, o3]), "relu")


def _l20(f, x, c_in, c, s):
    o1 = _conv3(f, x, c, s)
    return f.act(_conv1(f, o1, c), "relu")


def _t20(f, x, c_in, c, s):
    o1 = _conv1(f, x, c, s)
    o2 = _incs(f, x, c, s)
    return f.act(f.add([o1, o2]), "relu")


def _t31(f, x, c_in, c, s):
    o1 = _incs(f, x, c, s)
    o2 = _conv1(f, o1, c, relu=True)
    o3 = _incs(f, f.add([_proj(f, x, c_in, c, s), o2]), c)
    return f.act(f.add([_proj(f, x, c_in, c, s), o2, o3]), "relu")


def _src0(f, x, c_in, c, s):
    y = _conv1(f, x, c, s, relu=True)
    o2 = _conv3(f, y, c)
    o3 = _conv3(f, o2, c, relu=False)
    return f.act(f.add([y, o3]), "relu")


def _src1(f, x, c_in, c, s):
    sc = _conv1(f, x, c, s, relu=True)
    o2 = _conv3(f, x, c_in)
    o3 = _conv3(f, o2, c, s, relu=False)
    return f.act(f.add([sc, o3]), "relu")


def _src3(f, x, c_in, c, s):
    sc = _conv1(f, x, c, s)
    o2 = _conv1(f, x, c_in, relu=True)
    o3 = _conv3(f, o2, c, s)
    o4 = _conv1(f, o3, c)
    return f.act(f.add([sc, o4]), "relu")


def _src7(f, x, c_in, c, s):
    y = _conv1(f, x, c, s)
    o2 = _incs(f, y, c)
    o3 = _incs(f, o2, c)
    return f.act(f.add([y, o3]), "relu")


def _src8(f, x, c_in, c, s):
    y = _conv1(f, x, c, s)
    o2 = _incs(f, y, c)
    o3 = _conv1(f, o2, c)
    return f.act(f.add([y, o3]), "relu")


BLOCK_FNS = {
    "hiaml_z": _z, "hiaml_a22": _a22, "hiaml_b23": _b23, "hiaml_j30": _j30, "hiaml_g30": _g30,
    "hiaml_r30": _r30, "hiaml_l20": _l20, "hiaml_t20": _t20, "hiaml_t31": _t31, "hiaml_src0": _src0,
    "hiaml_src1": _src1, "hiaml_src3": _src3, "hiaml_src7": _src7, "hiaml_src8": _src8,
}


def _block(f, x, block: str, c_in: int, c: int, s: int):
    return BLOCK_FNS[block](f, x, c_in, c, s)


def _stem(f, x):
    return f.act(f.bn(f.conv(x, STEM_CHANNELS, 3, 2)), "relu")


def _head(f, x):
    return f.linear(f.mean(x), NUM_CLASSES)


def _network(f, x, blocks: list[str]):
    """Whole HiAMLNet: named sub-programs ``stem``, ``s{stage}b{block}`` and ``head``."""
    y = f.sub("stem", _stem, x)
    c_in = STEM_CHANNELS
    for i, (c, stride) in enumerate(STAGES):
        for j in range(BLOCKS_PER_STAGE):
            s = stride if j == 0 else 1
            y = f.sub(f"s{i}b{j}", _block, y, block=blocks[i], c_in=c_in, c=c, s=s)
            c_in = c
    return f.sub("head", _head, y)


# ---------------------------------------------------------------------------------------------
# family
# ---------------------------------------------------------------------------------------------

def _block_name(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise SpecError(f"{where}: expected a block name (str), got {value!r} ({type(value).__name__}); "
                        f"allowed: {', '.join(BLOCKS)}")
    key = value.strip().lower()
    if not key.startswith("hiaml_"):
        key = "hiaml_" + key
    if key not in BLOCK_FNS:
        raise SpecError(f"{where}: unknown block {value!r}; allowed: {', '.join(BLOCKS)}")
    return key


@register
class HiAML(prog.ProgramFamily):
    name = "hiaml"
    program = staticmethod(_network)
    bn_eps, bn_momentum = BN_EPS, BN_MOMENTUM
    title = "HiAML"
    dataset = "cifar10"
    input_hwc = (32, 32, 3)
    num_classes = NUM_CLASSES
    spec_help = ("list of 4 HiAML block names, one per stage, out of " + ", ".join(BLOCKS)
                 + ' (e.g. ["hiaml_a22", "hiaml_b23", "hiaml_src1", "hiaml_z"])')

    def validate(self, spec: Any) -> list[str]:
        if isinstance(spec, str):
            spec = [p for p in spec.replace(";", ",").split(",") if p.strip()]
        if not isinstance(spec, list | tuple):
            raise SpecError(f"hiaml spec: expected a list of 4 block names, got {type(spec).__name__} {spec!r}")
        if len(spec) != len(STAGES):
            raise SpecError(f"hiaml spec: expected 4 block names (one per stage), got {len(spec)}: {list(spec)!r}")
        return [_block_name(v, f"hiaml spec[{i}]") for i, v in enumerate(spec)]

    def sample(self, n: int, seed: int = 0) -> list[list[str]]:
        """``n`` distinct specs, each stage uniform over the 14 blocks (the authors' sampler)."""
        if n < 0 or n > self.space_size():
            raise ValueError(f"hiaml: n must be in 0..{self.space_size()}, got {n}")
        return self._distinct(n, seed, lambda rng: [rng.choice(BLOCKS) for _ in STAGES])

    def program_config(self, spec: list[str]) -> dict[str, Any]:
        return {"blocks": spec}

    def cg_name(self, spec: list[str]) -> str:
        return f"hiaml:{'-'.join(b[6:] for b in spec)}"

    def enumerate(self) -> Iterator[list[str]]:
        for combo in itertools.product(BLOCKS, repeat=len(STAGES)):
            yield list(combo)

    def space_size(self) -> int:
        return len(BLOCKS) ** len(STAGES)
