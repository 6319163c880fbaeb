"""The three Once-for-All (OFA) families: ProxylessNAS (``ofa_pn``), MobileNetV3 (``ofa_mbv3``) and
ResNet-50 (``ofa_resnet``) sub-networks, for ImageNet (1000 classes) at the spec's resolution.

The architectures follow OFA's network classes (``OFAProxylessNASNets`` w1.3, ``OFAMobileNetV3``
w1.2, ``OFAResNets``) as summarised in ``docs/gennape-reference.md`` section 4.4.  Channel counts
use OFA's :func:`make_divisible` (nearest multiple of 8, at least 8, bumped by 8 when rounding
loses more than 10 %).

Specs (OFA's own ``set_active_subnet`` format plus the resolution)
------------------------------------------------------------------
``ofa_mbv3``: ``{"ks": [20], "e": [20], "d": [5], "image_size": r}``; stage ``s`` (0..4) uses
blocks ``4s .. 4s + d[s] - 1`` with kernel ``ks[i]`` in {3, 5, 7} and expansion ``e[i]`` in
{3, 4, 6}; ``d[s]`` in {2, 3, 4}.

``ofa_pn``: ``{"ks": [21], "e": [21], "d": [5], "image_size": r}``; like MBv3 for the first 5
stages, and entry 20 is the single block of the 6th stage (depth fixed at 1).  OFA's 6-entry
``d`` (whose last entry OFA clamps to 1) is accepted and normalised to 5 entries.

``ofa_resnet``: ``{"d": [5], "e": [18], "w": [6], "image_size": r}``; ``d[0]`` in {0, 2} is the
stem (2 = with the extra residual conv; OFA treats any value other than 2 as 0, so 1 is accepted
and normalised to 0); ``d[1..4]`` in {0, 1, 2} are added to the minimum blocks (2, 2, 4, 2);
``e[i]`` in {0.2, 0.25, 0.35} is the expansion of block slot ``i`` (slots 0-3, 4-7, 8-13, 14-17 per
stage; a stage uses its first ``2 + d`` / ``4 + d`` slots); ``w[0]`` indexes the stem mid width
(24, 24, 32), ``w[1]`` the stem output (40, 48, 64) and ``w[2..5]`` the stage widths (x 0.65, 0.8,
1.0 of 256, 512, 1024, 2048).

**Unused slots** (blocks beyond a stage's depth) are ignored by the network; ``validate`` accepts
any allowed value, 0 or ``None`` there and normalises them to 0, so equal architectures share one
canonical form.  ``image_size`` (aliases ``r`` -- an int or a one-element list, as in OFA's
configs -- and ``resolution``) is an int in 32..512; :meth:`sample` draws OFA's elastic
resolutions 128..224 in steps of 4.  Specs may also be JSON strings.  For ``ofa_pn`` / ``ofa_mbv3``
the authors' record format is accepted too: ``{"net_config": [[op, ...] per stage], "image_size": r}``
or ``[r, net_config]`` with op names ``"mbconv2_e{E}_k{K}"`` (PN) / ``"mbconv3_e{E}_k{K}"`` (MBv3);
the stage depth is the list length (an extra leading ``[..._e1_k3]`` list for the fixed first
block is tolerated).

Sampling
--------
:meth:`sample` follows OFA's ``sample_active_subnet``: every decision (each depth, kernel,
expansion, width, the resolution) is uniform and independent.  This is *not* uniform over distinct
architectures (that would put ~89 % of the mass on depth 4 in every MBConv stage), but it is the
distribution the OFA / GENNAPE datasets were drawn from.

Networks and CGs
----------------
:meth:`build_module` returns a plain ``nn.Module`` (BN + activation modules, ``nn.Hardswish`` /
``nn.Hardsigmoid`` for MBv3, ``AdaptiveAvgPool2d(1)`` for global pooling, no dropout).  :meth:`to_cg`
is a direct :class:`~engine.graphs.cg.CGBuilder` builder that mirrors the module node for node under
the CG conventions (tested against ``from_module``).  Two details:

* ResNet shortcuts are ``AvgPool2d(s, s, ceil_mode=True) -> conv1x1 -> BN`` whenever the shape
  changes, including the first block of stage 1 where the stride is 1 but the width changes: OFA
  keeps a 1x1 / stride-1 average pool there, and so do the module and the CG (an ``avgpool`` node,
  as in the authors' TF CGs).
* SE modules (MBv3 stages 2, 4, 5): ``AdaptiveAvgPool2d(1) -> conv1x1 (bias) -> ReLU -> conv1x1
  (bias) -> Hardsigmoid``, multiplied onto the depthwise output (``mul`` node, input order
  ``[x, gate]``).
"""

from __future__ import annotations

import json
import numbers
import random
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from torch import nn

from engine.families.base import Family, SpecError, register
from engine.graphs.cg import CG, CGBuilder, conv_out_size

KS_CHOICES = (3, 5, 7)
E_CHOICES = (3, 4, 6)
D_CHOICES = (2, 3, 4)
RESNET_E_CHOICES = (0.2, 0.25, 0.35)
RESNET_D_CHOICES = (0, 1, 2)
RESNET_W_CHOICES = (0, 1, 2)
#: OFA's elastic training resolutions (what :meth:`sample` draws)
SAMPLE_RESOLUTIONS = tuple(range(128, 225, 4))
MIN_RES, MAX_RES = 32, 512
NUM_CLASSES = 1000


def make_divisible(v: float, divisor: int = 8, min_value: int | None = None) -> int:
    """OFA's channel rounding: nearest multiple of ``divisor`` (>= ``min_value``), plus one more
    ``divisor`` when rounding down lost more than 10 %."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


# ---------------------------------------------------------------------------------------------
# PyTorch building blocks
# ---------------------------------------------------------------------------------------------

_ACTS = {"relu": nn.ReLU, "relu6": nn.ReLU6, "hswish": nn.Hardswish}
_CG_ACT = {"relu": "relu", "relu6": "relu6", "hswish": "hardswish"}


def conv_bn_act(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: str | None = None,
                bn: bool = True, bias: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(c_out))
    if act is not None:
        layers.append(_ACTS[act]())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """OFA's SE module (reduction 4): GAP -> conv1x1 -> ReLU -> conv1x1 -> h-sigmoid -> x * gate."""

    def __init__(self, c: int):
        super().__init__()
        mid = make_divisible(c // 4)
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(c, mid, 1, bias=True), nn.ReLU(),
                                  nn.Conv2d(mid, c, 1, bias=True), nn.Hardsigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


def mb_mid(c_in: int, e: int) -> int:
    return c_in if e == 1 else make_divisible(round(c_in * e))


class MBConv(nn.Module):
    """Inverted bottleneck: [1x1 expand, BN, act] -> depthwise kxk, BN, act -> [SE] -> 1x1, BN
    [+ x when ``residual``]."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int, e: int, act: str, se: bool = False,
                 residual: bool = False):
        super().__init__()
        mid = mb_mid(c_in, e)
        layers: list[nn.Module] = []
        if e != 1:
            layers.append(conv_bn_act(c_in, mid, 1, act=act))
        layers.append(conv_bn_act(mid, mid, k, stride, groups=mid, act=act))
        if se:
            layers.append(SqueezeExcite(mid))
        layers.append(conv_bn_act(mid, c_out, 1))
        self.body = nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return y + x if self.residual else y


class MobileNetLike(nn.Module):
    """stem -> blocks -> head (conv1x1-BN-act) -> GAP [-> conv1x1-act] -> linear."""

    def __init__(self, stem: nn.Module, blocks: Sequence[nn.Module], head: nn.Module, mix: nn.Module | None,
                 classifier: nn.Linear):
        super().__init__()
        self.stem = stem
        self.blocks = nn.Sequential(*blocks)
        self.head = head
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.mix = mix if mix is not None else nn.Identity()
        self.classifier = classifier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(self.head(self.blocks(self.stem(x))))
        return self.classifier(torch.flatten(self.mix(x), 1))


class Bottleneck(nn.Module):
    """OFA ResNet bottleneck: 1x1-BN-ReLU, 3x3(stride)-BN-ReLU, 1x1-BN, + shortcut, ReLU."""

    def __init__(self, c_in: int, c_out: int, e: float, stride: int):
        super().__init__()
        mid = make_divisible(round(c_out * e))
        self.body = nn.Sequential(conv_bn_act(c_in, mid, 1, act="relu"), conv_bn_act(mid, mid, 3, stride, act="relu"),
                                  conv_bn_act(mid, c_out, 1))
        if stride == 1 and c_in == c_out:
            self.shortcut: nn.Module = nn.Identity()
        else:
            self.shortcut = nn.Sequential(nn.AvgPool2d(stride, stride, 0, ceil_mode=True),
                                          nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class StemResidual(nn.Module):
    """The optional stem block of OFA-ResNet: conv3x3-BN-ReLU + identity (no activation after)."""

    def __init__(self, c: int):
        super().__init__()
        self.conv = conv_bn_act(c, c, 3, act="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x) + x


class OFAResNetModule(nn.Module):
    def __init__(self, stem: Sequence[nn.Module], blocks: Sequence[nn.Module], c_last: int):
        super().__init__()
        self.stem = nn.Sequential(*stem, nn.MaxPool2d(3, 2, 1))
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.pool(self.blocks(self.stem(x))), 1))


# ---------------------------------------------------------------------------------------------
# CG counterparts (same nodes, same order of inputs)
# ---------------------------------------------------------------------------------------------

def _cg_conv_bn_act(b: CGBuilder, x: int, c_out: int, k: int, stride: int = 1, groups: int = 1,
                    act: str | None = None, bn: bool = True, bias: bool = False, name: str = "") -> int:
    x = b.conv(x, c_out, k, stride=stride, groups=groups, bias=bias, padding=k // 2, name=f"{name}.conv")
    if bn:
        x = b.bn(x, name=f"{name}.bn")
    if act is not None:
        x = b.act(x, _CG_ACT[act], name=f"{name}.act")
    return x


def _cg_mbconv(b: CGBuilder, x: int, c_out: int, k: int, stride: int, e: int, act: str, se: bool,
               residual: bool, name: str) -> int:
    c_in = b.shape(x)[2]
    mid = mb_mid(c_in, e)
    y = x
    if e != 1:
        y = _cg_conv_bn_act(b, y, mid, 1, act=act, name=f"{name}.expand")
    y = _cg_conv_bn_act(b, y, mid, k, stride, groups=mid, act=act, name=f"{name}.dw")
    if se:
        g = b.mean(y, name=f"{name}.se.pool")
        g = b.act(b.conv(g, make_divisible(mid // 4), 1, bias=True, name=f"{name}.se.reduce"), "relu",
                  name=f"{name}.se.relu")
        g = b.act(b.conv(g, mid, 1, bias=True, name=f"{name}.se.expand"), "hardsigmoid", name=f"{name}.se.gate")
        y = b.mul([y, g], name=f"{name}.se.mul")
    y = _cg_conv_bn_act(b, y, c_out, 1, name=f"{name}.project")
    return b.add("add", [y, x], b.shape(y), name=f"{name}.add") if residual else y


def _pool_ceil(size: int, k: int, s: int) -> int:
    out = -(-(size - k) // s) + 1
    if (out - 1) * s >= size:
        out -= 1
    return out


def _cg_bottleneck(b: CGBuilder, x: int, c_out: int, e: float, stride: int, name: str) -> int:
    h, w, c_in = b.shape(x)
    mid = make_divisible(round(c_out * e))
    y = _cg_conv_bn_act(b, x, mid, 1, act="relu", name=f"{name}.conv1")
    y = _cg_conv_bn_act(b, y, mid, 3, stride, act="relu", name=f"{name}.conv2")
    y = _cg_conv_bn_act(b, y, c_out, 1, name=f"{name}.conv3")
    if stride == 1 and c_in == c_out:
        sc = x
    else:
        sc = b.add("avgpool", [x], (_pool_ceil(h, stride, stride), _pool_ceil(w, stride, stride), c_in),
                   stride=(stride, stride), name=f"{name}.shortcut.pool")
        sc = b.bn(b.conv(sc, c_out, 1, name=f"{name}.shortcut.conv"), name=f"{name}.shortcut.bn")
    y = b.add("add", [y, sc], b.shape(y), name=f"{name}.add")
    return b.act(y, "relu", name=f"{name}.relu")


# ---------------------------------------------------------------------------------------------
# spec parsing helpers
# ---------------------------------------------------------------------------------------------

def _is_int(v: Any) -> bool:
    """Python or NumPy integer, not bool."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


class _OFABase(Family):
    dataset = "imagenet"
    input_hwc = (224, 224, 3)
    num_classes = NUM_CLASSES

    def _err(self, msg: str) -> SpecError:
        return SpecError(f"{self.name} spec: {msg}")

    def _load(self, spec: Any) -> Any:
        if isinstance(spec, str):
            try:
                return json.loads(spec)
            except json.JSONDecodeError as exc:
                raise self._err(f"not valid JSON ({exc.msg} at char {exc.pos}); {self.spec_help}") from None
        return spec

    def _resolution(self, spec: dict[str, Any]) -> int:
        keys = [k for k in ("image_size", "r", "resolution") if k in spec]
        if len(keys) != 1:
            raise self._err("expected exactly one of 'image_size' (or 'r' / 'resolution') giving the input "
                            f"resolution, got {keys or 'none'}")
        r = spec[keys[0]]
        if isinstance(r, list | tuple) and len(r) == 1:
            r = r[0]
        if not _is_int(r) or not MIN_RES <= r <= MAX_RES:
            raise self._err(f"field {keys[0]!r} is {r!r}; expected an int in {MIN_RES}..{MAX_RES} "
                            "(OFA trains 128..224 in steps of 4)")
        return int(r)

    def _int_list(self, spec: dict[str, Any], key: str, lengths: tuple[int, ...]) -> list[Any]:
        if key not in spec:
            raise self._err(f"missing field {key!r}; {self.spec_help}")
        v = spec[key]
        if not isinstance(v, list | tuple) or len(v) not in lengths:
            n = f"{len(v)} entries" if isinstance(v, list | tuple) else type(v).__name__
            want = " or ".join(str(n_) for n_ in lengths)
            raise self._err(f"field {key!r} must be a list of {want} entries, got {n}")
        return list(v)

    def _check_slots(self, key: str, values: list[Any], active: set[int], allowed: tuple) -> list[Any]:
        out = []
        for i, v in enumerate(values):
            ok_value = (_is_int(v) or isinstance(v, numbers.Real)) and not isinstance(v, bool) \
                and any(v == a for a in allowed)
            if i in active:
                if not ok_value:
                    raise self._err(f"{key}[{i}] is {v!r}; allowed {', '.join(map(str, allowed))}")
                out.append(next(a for a in allowed if a == v))
            else:
                if not (ok_value or v is None or v == 0):
                    raise self._err(f"{key}[{i}] is {v!r} (an unused slot); allowed "
                                    f"{', '.join(map(str, allowed))}, 0 or null")
                out.append(0)
        return out

    def input_shape(self, spec: Any) -> tuple[int, int, int, int]:
        r = self.validate(spec)["image_size"]
        return (1, 3, r, r)


class _OFAMobile(_OFABase):
    """Shared parts of the two MBConv families (PN and MBv3)."""

    #: per searchable stage: (base width, stride, act, se) -- widths are scaled by ``WIDTH``; the
    #: last stage of PN has depth 1
    BASE_STAGES: ClassVar[tuple[tuple[int, int, str, bool], ...]]
    WIDTH: ClassVar[float]
    FIXED_LAST_BLOCK: ClassVar[bool] = False
    OP_PREFIX: ClassVar[str]
    MAX_DEPTH = 4

    @property
    def stages(self) -> tuple[tuple[int, int, str, bool], ...]:
        """(width, stride, act, se) per stage after width scaling."""
        return tuple((make_divisible(w * self.WIDTH), st, a, se) for w, st, a, se in self.BASE_STAGES)

    @property
    def n_dyn_stages(self) -> int:
        return len(self.BASE_STAGES) - (1 if self.FIXED_LAST_BLOCK else 0)

    @property
    def n_slots(self) -> int:
        return self.MAX_DEPTH * self.n_dyn_stages + (1 if self.FIXED_LAST_BLOCK else 0)

    def _blocks(self, s: dict[str, Any]) -> list[list[int]]:
        """Slot indices of the active blocks, per stage."""
        out = [[self.MAX_DEPTH * i + j for j in range(s["d"][i])] for i in range(self.n_dyn_stages)]
        if self.FIXED_LAST_BLOCK:
            out.append([self.MAX_DEPTH * self.n_dyn_stages])
        return out

    def _from_net_config(self, net_config: Any, r: Any) -> dict[str, Any]:
        if not isinstance(net_config, list | tuple):
            raise self._err(f"'net_config' must be a list of per-stage op-name lists, got {type(net_config).__name__}")
        stages = list(net_config)
        if len(stages) == len(self.BASE_STAGES) + 1:  # leading fixed first block
            first = stages.pop(0)
            if list(first) != [f"{self.OP_PREFIX}_e1_k3"]:
                raise self._err(f"net_config[0] is {first!r}; with {len(self.BASE_STAGES) + 1} lists the first must be "
                                f"the fixed first block ['{self.OP_PREFIX}_e1_k3']")
        if len(stages) != len(self.BASE_STAGES):
            raise self._err(f"'net_config' must have {len(self.BASE_STAGES)} stage lists, got {len(stages)}")
        ks = [0] * self.n_slots
        e = [0] * self.n_slots
        d = []
        for si, ops in enumerate(stages):
            last = self.FIXED_LAST_BLOCK and si == len(self.BASE_STAGES) - 1
            depths = (1,) if last else D_CHOICES
            if not isinstance(ops, list | tuple) or len(ops) not in depths:
                raise self._err(f"net_config[{si}] must list {' / '.join(map(str, depths))} ops, got {ops!r}")
            if not last:
                d.append(len(ops))
            for j, op in enumerate(ops):
                ee, kk = self._parse_op(op, f"net_config[{si}][{j}]")
                slot = self.MAX_DEPTH * si + j
                ks[slot], e[slot] = kk, ee
        return {"ks": ks, "e": e, "d": d, "image_size": r}

    def _parse_op(self, op: Any, where: str) -> tuple[int, int]:
        pre = f"{self.OP_PREFIX}_e"
        try:
            assert isinstance(op, str) and op.startswith(pre)
            e_str, k_str = op[len(pre):].split("_k")
            return int(e_str), int(k_str)
        except (AssertionError, ValueError):
            raise self._err(f"{where} is {op!r}; expected '{self.OP_PREFIX}_e{{E}}_k{{K}}' with E in "
                            f"{E_CHOICES}, K in {KS_CHOICES}") from None

    def validate(self, spec: Any) -> dict[str, Any]:
        spec = self._load(spec)
        if isinstance(spec, list | tuple) and len(spec) == 2 and isinstance(spec[1], list | tuple):
            spec = self._from_net_config(spec[1], spec[0])
        if not isinstance(spec, dict):
            raise self._err(f"expected a dict, got {type(spec).__name__}; {self.spec_help}")
        if "net_config" in spec:
            res_key = next((k for k in ("image_size", "r", "resolution") if k in spec), "image_size")
            spec = self._from_net_config(spec["net_config"], spec.get(res_key))
        allowed = {"ks", "e", "d", "image_size", "r", "resolution"}
        unknown = set(spec) - allowed
        if unknown:
            raise self._err(f"unknown field(s) {sorted(unknown)}; expected ks, e, d, image_size")
        r = self._resolution(spec)
        n_dyn = self.n_dyn_stages
        d = self._int_list(spec, "d", (n_dyn, n_dyn + 1) if self.FIXED_LAST_BLOCK else (n_dyn,))
        for i, v in enumerate(d[:n_dyn]):
            if not _is_int(v) or v not in D_CHOICES:
                raise self._err(f"d[{i}] is {v!r}; allowed {', '.join(map(str, D_CHOICES))}")
        if len(d) > n_dyn and d[n_dyn] not in (1, *D_CHOICES):
            raise self._err(f"d[{n_dyn}] is {d[n_dyn]!r}; the last stage has a single block (OFA clamps it to 1), "
                            "allowed 1..4")
        d = [int(v) for v in d[:n_dyn]]
        ks = self._int_list(spec, "ks", (self.n_slots,))
        e = self._int_list(spec, "e", (self.n_slots,))
        active = {i for stage in self._blocks({"d": d}) for i in stage}
        return {"ks": self._check_slots("ks", ks, active, KS_CHOICES),
                "e": self._check_slots("e", e, active, E_CHOICES),
                "d": d, "image_size": r}

    def sample(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            ks = [rng.choice(KS_CHOICES) for _ in range(self.n_slots)]
            e = [rng.choice(E_CHOICES) for _ in range(self.n_slots)]
            d = [rng.choice(D_CHOICES) for _ in range(self.n_dyn_stages)]
            out.append(self.validate({"ks": ks, "e": e, "d": d, "image_size": rng.choice(SAMPLE_RESOLUTIONS)}))
        return out

    def space_size(self) -> int:
        per_stage = sum((len(KS_CHOICES) * len(E_CHOICES)) ** dd for dd in D_CHOICES)
        size = per_stage ** self.n_dyn_stages * len(SAMPLE_RESOLUTIONS)
        if self.FIXED_LAST_BLOCK:
            size *= len(KS_CHOICES) * len(E_CHOICES)
        return size

    # the architecture -------------------------------------------------------------------
    def _plan(self, s: dict[str, Any]):
        """(stem width, stem act, first-block width, first-block act, first-block residual), blocks
        as (c_out, k, stride, e, act, se, residual), head widths."""
        raise NotImplementedError

    def build_module(self, spec: Any) -> nn.Module:
        s = self.validate(spec)
        stem_c, stem_act, first_c, first_act, first_res, blocks, head_c, mix_c = self._plan(s)
        stem = conv_bn_act(3, stem_c, 3, 2, act=stem_act)
        mods = [MBConv(stem_c, first_c, 3, 1, 1, first_act, residual=first_res)]
        c = first_c
        for c_out, k, stride, e, act, se, res in blocks:
            mods.append(MBConv(c, c_out, k, stride, e, act, se, res))
            c = c_out
        head = conv_bn_act(c, head_c, 1, act=self.HEAD_ACT)
        mix = conv_bn_act(head_c, mix_c, 1, act=self.HEAD_ACT, bn=False) if mix_c else None
        return MobileNetLike(stem, mods, head, mix, nn.Linear(mix_c or head_c, NUM_CLASSES)).eval()

    def to_cg(self, spec: Any) -> CG:
        s = self.validate(spec)
        r = s["image_size"]
        stem_c, stem_act, first_c, first_act, first_res, blocks, head_c, mix_c = self._plan(s)
        b = CGBuilder(f"{self.name}-{self.spec_hash(s)}", input_hwc=(r, r, 3), meta={"family": self.name})
        x = _cg_conv_bn_act(b, b.input(), stem_c, 3, 2, act=stem_act, name="stem")
        x = _cg_mbconv(b, x, first_c, 3, 1, 1, first_act, False, first_res, "blocks.0")
        for i, (c_out, k, stride, e, act, se, res) in enumerate(blocks, start=1):
            x = _cg_mbconv(b, x, c_out, k, stride, e, act, se, res, f"blocks.{i}")
        x = b.mean(_cg_conv_bn_act(b, x, head_c, 1, act=self.HEAD_ACT, name="head"), name="pool")
        if mix_c:
            x = _cg_conv_bn_act(b, x, mix_c, 1, act=self.HEAD_ACT, bn=False, name="mix")
        return b.output(b.linear(x, NUM_CLASSES, name="classifier"))

    HEAD_ACT: ClassVar[str]

    def _stage_blocks(self, s: dict[str, Any], c_first: int) -> list[tuple]:
        out = []
        c = c_first
        for (width, stride, act, se), slots in zip(self.stages, self._blocks(s)):
            for j, slot in enumerate(slots):
                st = stride if j == 0 else 1
                out.append((width, s["ks"][slot], st, s["e"][slot], act, se, st == 1 and c == width))
                c = width
        return out


@register
class OFAProxyless(_OFAMobile):
    name = "ofa_pn"
    title = "OFA ProxylessNAS"
    OP_PREFIX = "mbconv2"
    FIXED_LAST_BLOCK = True
    HEAD_ACT = "relu6"
    WIDTH = 1.3
    BASE_STAGES = tuple((w, s, "relu6", False) for w, s in zip((24, 40, 80, 96, 192, 320), (2, 2, 2, 1, 2, 1)))
    spec_help = ('OFA-ProxylessNAS spec: {"ks": [21 ints in 3/5/7], "e": [21 ints in 3/4/6], '
                 '"d": [5 ints in 2/3/4], "image_size": int 32..512, OFA uses 128..224}; slot 4s+j = block j of stage s, slot 20 = '
                 "the single block of stage 6; unused slots may be 0")

    def _plan(self, s):
        stem_c = make_divisible(32 * self.WIDTH)          # 40
        first_c = make_divisible(16 * self.WIDTH)         # 24
        head_c = make_divisible(1280 * self.WIDTH)        # 1664
        return (stem_c, "relu6", first_c, "relu6", False, self._stage_blocks(s, first_c), head_c, 0)


@register
class OFAMobileNetV3(_OFAMobile):
    name = "ofa_mbv3"
    title = "OFA MobileNetV3"
    OP_PREFIX = "mbconv3"
    HEAD_ACT = "hswish"
    WIDTH = 1.2
    BASE_STAGES = tuple(zip((24, 40, 80, 112, 160), (2, 2, 2, 1, 2), ("relu", "relu", "hswish", "hswish", "hswish"),
                            (False, True, False, True, True)))
    spec_help = ('OFA-MobileNetV3 spec: {"ks": [20 ints in 3/5/7], "e": [20 ints in 3/4/6], '
                 '"d": [5 ints in 2/3/4], "image_size": int 32..512, OFA uses 128..224}; slot 4s+j = block j of stage s; '
                 "unused slots may be 0")

    def _plan(self, s):
        stem_c = make_divisible(16 * self.WIDTH)          # 24
        head_c = make_divisible(960 * self.WIDTH)         # 1152
        mix_c = make_divisible(1280 * self.WIDTH)         # 1536
        return (stem_c, "hswish", stem_c, "relu", True, self._stage_blocks(s, stem_c), head_c, mix_c)


@register
class OFAResNet(_OFABase):
    name = "ofa_resnet"
    title = "OFA ResNet-50"
    BASE_DEPTH = (2, 2, 4, 2)
    MAX_EXTRA = 2
    STRIDES = (1, 2, 2, 2)
    WIDTH_MULTS = (0.65, 0.8, 1.0)
    STAGE_WIDTHS = tuple(tuple(make_divisible(w * m) for m in (0.65, 0.8, 1.0)) for w in (256, 512, 1024, 2048))
    STEM_OUT = tuple(make_divisible(64 * m) for m in (0.65, 0.8, 1.0))      # 40, 48, 64
    STEM_MID = tuple(make_divisible(c // 2) for c in STEM_OUT)              # 24, 24, 32
    N_SLOTS = sum(d + 2 for d in BASE_DEPTH)                                # 18
    spec_help = ('OFA-ResNet-50 spec: {"d": [stem 0/2, then 4 ints in 0/1/2], "e": [18 floats in 0.2/0.25/0.35], '
                 '"w": [6 ints in 0/1/2], "image_size": int 32..512, OFA uses 128..224}; stage s uses the first base+d[s+1] of its '
                 "e slots (4, 4, 6, 4 slots); unused slots may be 0")

    def _slots(self, d: list[int]) -> list[list[int]]:
        out, start = [], 0
        for base, extra in zip(self.BASE_DEPTH, d[1:]):
            out.append(list(range(start, start + base + extra)))
            start += base + self.MAX_EXTRA
        return out

    def validate(self, spec: Any) -> dict[str, Any]:
        spec = self._load(spec)
        if not isinstance(spec, dict):
            raise self._err(f"expected a dict, got {type(spec).__name__}; {self.spec_help}")
        unknown = set(spec) - {"d", "e", "w", "image_size", "r", "resolution"}
        if unknown:
            raise self._err(f"unknown field(s) {sorted(unknown)}; expected d, e, w, image_size")
        r = self._resolution(spec)
        d = self._int_list(spec, "d", (5,))
        if not _is_int(d[0]) or d[0] not in (0, 1, 2):
            raise self._err(f"d[0] (stem) is {d[0]!r}; allowed 0 or 2 (1 is treated as 0, as OFA does)")
        d[0] = 2 if d[0] == 2 else 0
        for i in range(1, 5):
            if not _is_int(d[i]) or d[i] not in RESNET_D_CHOICES:
                raise self._err(f"d[{i}] is {d[i]!r}; allowed {', '.join(map(str, RESNET_D_CHOICES))} "
                                f"(added to the stage's minimum of {self.BASE_DEPTH[i - 1]} blocks)")
        w = self._int_list(spec, "w", (6,))
        for i, v in enumerate(w):
            if not _is_int(v) or v not in RESNET_W_CHOICES:
                raise self._err(f"w[{i}] is {v!r}; allowed 0, 1, 2 (width multipliers 0.65, 0.8, 1.0)")
        e = self._int_list(spec, "e", (self.N_SLOTS,))
        active = {i for stage in self._slots(d) for i in stage}
        return {"d": [int(v) for v in d], "e": self._check_slots("e", e, active, RESNET_E_CHOICES),
                "w": [int(v) for v in w], "image_size": r}

    def sample(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        rng = random.Random(seed)
        out = []
        for _ in range(n):
            d = [rng.choice((0, 2))] + [rng.choice(RESNET_D_CHOICES) for _ in range(4)]
            e = [rng.choice(RESNET_E_CHOICES) for _ in range(self.N_SLOTS)]
            w = [rng.choice(RESNET_W_CHOICES) for _ in range(6)]
            out.append(self.validate({"d": d, "e": e, "w": w, "image_size": rng.choice(SAMPLE_RESOLUTIONS)}))
        return out

    def space_size(self) -> int:
        n_e, n_w = len(RESNET_E_CHOICES), len(RESNET_W_CHOICES)
        size = 2 * n_w * n_w * len(SAMPLE_RESOLUTIONS)
        for base in self.BASE_DEPTH:
            size *= n_w * sum(n_e ** (base + extra) for extra in RESNET_D_CHOICES)
        return size

    def _plan(self, s: dict[str, Any]) -> tuple[int, int, bool, list[tuple[int, float, int]]]:
        mid, out = self.STEM_MID[s["w"][0]], self.STEM_OUT[s["w"][1]]
        blocks = []
        for si, slots in enumerate(self._slots(s["d"])):
            width = self.STAGE_WIDTHS[si][s["w"][2 + si]]
            for j, slot in enumerate(slots):
                blocks.append((width, s["e"][slot], self.STRIDES[si] if j == 0 else 1))
        return mid, out, s["d"][0] == 2, blocks

    def build_module(self, spec: Any) -> nn.Module:
        s = self.validate(spec)
        mid, out, extra, plan = self._plan(s)
        stem: list[nn.Module] = [conv_bn_act(3, mid, 3, 2, act="relu")]
        if extra:
            stem.append(StemResidual(mid))
        stem.append(conv_bn_act(mid, out, 3, act="relu"))
        blocks, c = [], out
        for width, e, stride in plan:
            blocks.append(Bottleneck(c, width, e, stride))
            c = width
        return OFAResNetModule(stem, blocks, c).eval()

    def to_cg(self, spec: Any) -> CG:
        s = self.validate(spec)
        r = s["image_size"]
        mid, out, extra, plan = self._plan(s)
        b = CGBuilder(f"{self.name}-{self.spec_hash(s)}", input_hwc=(r, r, 3), meta={"family": self.name})
        x = _cg_conv_bn_act(b, b.input(), mid, 3, 2, act="relu", name="stem.0")
        if extra:
            y = _cg_conv_bn_act(b, x, mid, 3, act="relu", name="stem.1")
            x = b.add("add", [y, x], b.shape(y), name="stem.1.add")
        x = _cg_conv_bn_act(b, x, out, 3, act="relu", name="stem.2")
        h, w, c = b.shape(x)
        x = b.add("maxpool", [x], (conv_out_size(h, 3, 2, 1), conv_out_size(w, 3, 2, 1), c), stride=(2, 2),
                  name="stem.pool")
        for i, (width, e, stride) in enumerate(plan):
            x = _cg_bottleneck(b, x, width, e, stride, f"blocks.{i}")
        return b.output(b.linear(b.mean(x, name="pool"), NUM_CLASSES, name="classifier"))
