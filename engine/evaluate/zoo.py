"""Hand-designed ImageNet networks with published accuracies: a zero-shot check set.

The predictor will be judged on real-world networks (ResNets, MobileNets, ViTs, ...) that no
labelled family here resembles: 224 px inputs, 1,000 classes, widths up to 4,096.  This module
builds 31 classic ImageNet classifiers **from our own compact definitions** (no torchvision
dependency, no copied code) and pairs each with the top-1 accuracy that torchvision's model
documentation publishes for its ``IMAGENET1K_V1`` weights (single 224 px crop; Inception-free
list so that every network takes the same input).  The published parameter count is stored
too and a test checks that our definition reproduces it exactly, which is what makes the
architectures trustworthy stand-ins for the published ones.

It is a *check set*, never a training or selection set: ``python -m engine.evaluate.zoo``
prints how the shipped checkpoint ranks these networks zero-shot next to FLOPs and params.
The networks come from different training recipes and eras (AlexNet 2012 to ViT 2020), so the
accuracies are not the outcome of one training pipeline: read the numbers as a sanity check
of transfer to this kind of input, not as a benchmark.

Networks are built on the ``meta`` device (shapes only, no weight memory) and traced with
:func:`engine.graphs.fx_import.from_module` at ``(1, 3, 224, 224)``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from engine.evaluate._io import check_parser, run_check, write_output
from engine.graphs.cg import CG

#: the family name of the check set's rows and CGs, and the task its networks were built for
FAMILY = "zoo"
TASK = "imagenet"
SOURCE = ("torchvision model documentation (https://pytorch.org/vision/stable/models.html), "
          "ImageNet-1K acc@1 of the IMAGENET1K_V1 weights, 224 px single crop")


# ---------------------------------------------------------------------------------------------
# building blocks
# ---------------------------------------------------------------------------------------------

def _cbr(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = nn.ReLU,
         bn: bool = True, bias: bool | None = None) -> nn.Sequential:
    """conv (no bias when followed by BN unless ``bias``) -> BN -> activation."""
    bias = not bn if bias is None else bias
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=bias)]
    if bn:
        layers.append(nn.BatchNorm2d(cout))
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


def _divisible(v: float, d: int = 8) -> int:
    """Round channels to a multiple of ``d`` without dropping more than 10% (MobileNet rule)."""
    out = max(d, int(v + d / 2) // d * d)
    return out + d if out < 0.9 * v else out


class _Head(nn.Module):
    """global average pool -> flatten -> linear."""

    def __init__(self, cin: int, classes: int = 1000, dropout: float = 0.0) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(dropout)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        return self.fc(self.drop(torch.flatten(self.pool(x), 1)))


# --- ResNet / ResNeXt / Wide ResNet ----------------------------------------------------------

class _Basic(nn.Module):
    grow = 1

    def __init__(self, cin: int, planes: int, stride: int, groups: int = 1, width: int = 64) -> None:
        super().__init__()
        self.a = _cbr(cin, planes, 3, stride)
        self.b = _cbr(planes, planes, 3, act=None)
        self.short = _shortcut(cin, planes, stride)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.b(self.a(x)) + self.short(x))


class _Bottleneck(nn.Module):
    grow = 4

    def __init__(self, cin: int, planes: int, stride: int, groups: int = 1, width: int = 64) -> None:
        super().__init__()
        mid = int(planes * width / 64) * groups
        self.a = _cbr(cin, mid, 1)
        self.b = _cbr(mid, mid, 3, stride, groups=groups)
        self.c = _cbr(mid, planes * 4, 1, act=None)
        self.short = _shortcut(cin, planes * 4, stride)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.c(self.b(self.a(x))) + self.short(x))


def _shortcut(cin: int, cout: int, stride: int) -> nn.Module:
    return nn.Identity() if stride == 1 and cin == cout else _cbr(cin, cout, 1, stride, act=None)


class ResNet(nn.Module):
    def __init__(self, block: type[nn.Module], depths: Sequence[int], groups: int = 1, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Sequential(_cbr(3, 64, 7, 2), nn.MaxPool2d(3, 2, 1))
        layers, cin = [], 64
        for i, (planes, n) in enumerate(zip((64, 128, 256, 512), depths)):
            for j in range(n):
                layers.append(block(cin, planes, 2 if (j == 0 and i > 0) else 1, groups, width))
                cin = planes * block.grow
        self.body = nn.Sequential(*layers)
        self.head = _Head(cin)

    def forward(self, x):
        return self.head(self.body(self.stem(x)))


# --- VGG / AlexNet ---------------------------------------------------------------------------

_VGG = {11: (1, 1, 2, 2, 2), 13: (2, 2, 2, 2, 2), 16: (2, 2, 3, 3, 3), 19: (2, 2, 4, 4, 4)}


class _Classifier(nn.Sequential):
    """The AlexNet / VGG fully connected classifier (dropout, 4096, 4096, 1000)."""

    def __init__(self, cin: int, dropout_first: bool = False) -> None:
        # AlexNet: dropout, linear, relu, dropout, linear, relu, linear
        layers = [nn.Dropout(0.5), nn.Linear(cin, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU()]
        if not dropout_first:  # VGG: linear, relu, dropout, linear, relu, dropout, linear
            layers = [nn.Linear(cin, 4096), nn.ReLU(), nn.Dropout(0.5), nn.Linear(4096, 4096), nn.ReLU(),
                      nn.Dropout(0.5)]
        super().__init__(*layers, nn.Linear(4096, 1000))


class VGG(nn.Module):
    def __init__(self, depth: int, bn: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for n, cout in zip(_VGG[depth], (64, 128, 256, 512, 512)):
            for _ in range(n):
                layers.append(_cbr(cin, cout, 3, bn=bn, bias=True))  # VGG convs keep their bias
                cin = cout
            layers.append(nn.MaxPool2d(2, 2))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(7)
        self.classifier = _Classifier(512 * 49)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


class AlexNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 11, 4, 2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(64, 192, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2),
            nn.Conv2d(192, 384, 3, padding=1), nn.ReLU(),
            nn.Conv2d(384, 256, 3, padding=1), nn.ReLU(),
            nn.Conv2d(256, 256, 3, padding=1), nn.ReLU(), nn.MaxPool2d(3, 2))
        self.pool = nn.AdaptiveAvgPool2d(6)
        self.classifier = _Classifier(256 * 36, dropout_first=True)

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# --- SqueezeNet ------------------------------------------------------------------------------

class _Fire(nn.Module):
    def __init__(self, cin: int, squeeze: int, expand: int) -> None:
        super().__init__()
        self.squeeze = _cbr(cin, squeeze, 1, bn=False)
        self.e1 = _cbr(squeeze, expand, 1, bn=False)
        self.e3 = _cbr(squeeze, expand, 3, bn=False)

    def forward(self, x):
        s = self.squeeze(x)
        return torch.cat([self.e1(s), self.e3(s)], 1)


class SqueezeNet(nn.Module):
    def __init__(self, version: str) -> None:
        super().__init__()
        pool = nn.MaxPool2d(3, 2, ceil_mode=True)
        if version == "1_0":
            stem = [nn.Conv2d(3, 96, 7, 2), nn.ReLU(), pool]
            fires = [(96, 16, 64), (128, 16, 64), (128, 32, 128), "M", (256, 32, 128), (256, 48, 192), (384, 48, 192),
                     (384, 64, 256), "M", (512, 64, 256)]
        else:
            stem = [nn.Conv2d(3, 64, 3, 2), nn.ReLU(), pool]
            fires = [(64, 16, 64), (128, 16, 64), "M", (128, 32, 128), (256, 32, 128), "M", (256, 48, 192),
                     (384, 48, 192), (384, 64, 256), (512, 64, 256)]
        body = [nn.MaxPool2d(3, 2, ceil_mode=True) if f == "M" else _Fire(*f) for f in fires]
        self.features = nn.Sequential(*stem, *body)
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, 1000, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


# --- DenseNet --------------------------------------------------------------------------------

class _BnReluConv(nn.Sequential):
    def __init__(self, cin: int, cout: int, k: int) -> None:
        super().__init__(nn.BatchNorm2d(cin), nn.ReLU(), nn.Conv2d(cin, cout, k, padding=(k - 1) // 2, bias=False))


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.f = nn.Sequential(_BnReluConv(cin, 4 * growth, 1), _BnReluConv(4 * growth, growth, 3))

    def forward(self, x):
        return torch.cat([x, self.f(x)], 1)


class DenseNet(nn.Module):
    def __init__(self, blocks: Sequence[int], growth: int = 32, init: int = 64) -> None:
        super().__init__()
        layers: list[nn.Module] = [_cbr(3, init, 7, 2), nn.MaxPool2d(3, 2, 1)]
        c = init
        for i, n in enumerate(blocks):
            for _ in range(n):
                layers.append(_DenseLayer(c, growth))
                c += growth
            if i < len(blocks) - 1:
                layers += [_BnReluConv(c, c // 2, 1), nn.AvgPool2d(2, 2)]
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.head = _Head(c)

    def forward(self, x):
        return self.head(self.features(x))


# --- MobileNetV2 / V3, EfficientNet ---------------------------------------------------------

class _SE(nn.Module):
    def __init__(self, c: int, squeeze: int, act: type[nn.Module], gate: type[nn.Module]) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.act = nn.Conv2d(c, squeeze, 1), act()
        self.fc2, self.gate = nn.Conv2d(squeeze, c, 1), gate()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.pool(x)))))


class _MBConv(nn.Module):
    """Inverted residual: [1x1 expand] -> kxk depthwise -> [squeeze-excite] -> 1x1 project."""

    def __init__(self, cin: int, mid: int, cout: int, k: int, stride: int, act: type[nn.Module],
                 se: int = 0, gate: type[nn.Module] = nn.Hardsigmoid, se_act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__()
        layers: list[nn.Module] = [] if mid == cin else [_cbr(cin, mid, 1, act=act)]
        layers.append(_cbr(mid, mid, k, stride, groups=mid, act=act))
        if se:
            layers.append(_SE(mid, se, se_act, gate))
        layers.append(_cbr(mid, cout, 1, act=None))
        self.f = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.f(x) if self.residual else self.f(x)


class _InvertedResidualNet(nn.Module):
    """stem conv -> stages of :class:`_MBConv` -> 1x1 conv to 1280 -> pooled linear head.

    ``stages``: ``(expand, kernel, stride, out, repeats)``; the first block of a stage strides.
    ``se``: squeeze width from a block's input channels (0 = no squeeze-excite)."""

    def __init__(self, act: type[nn.Module], stages, se: Callable[[int], int] = lambda cin: 0,
                 **block_kw) -> None:
        super().__init__()
        layers: list[nn.Module] = [_cbr(3, 32, 3, 2, act=act)]
        cin = 32
        for e, k, s, c, n in stages:
            for j in range(n):
                layers.append(_MBConv(cin, cin * e, c, k, s if j == 0 else 1, act, se=se(cin), **block_kw))
                cin = c
        layers.append(_cbr(cin, 1280, 1, act=act))
        self.features = nn.Sequential(*layers)
        self.head = _Head(1280, dropout=0.2)

    def forward(self, x):
        return self.head(self.features(x))


class MobileNetV2(_InvertedResidualNet):
    def __init__(self) -> None:
        super().__init__(nn.ReLU6, ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 3, 2, 32, 3), (6, 3, 2, 64, 4),
                                    (6, 3, 1, 96, 3), (6, 3, 2, 160, 3), (6, 3, 1, 320, 1)))


class EfficientNetB0(_InvertedResidualNet):
    def __init__(self) -> None:
        super().__init__(nn.SiLU, ((1, 3, 1, 16, 1), (6, 3, 2, 24, 2), (6, 5, 2, 40, 2), (6, 3, 2, 80, 3),
                                   (6, 5, 1, 112, 3), (6, 5, 2, 192, 4), (6, 3, 1, 320, 1)),
                         se=lambda cin: max(1, cin // 4), gate=nn.Sigmoid, se_act=nn.SiLU)


# (kernel, expanded, out, squeeze-excite, hardswish, stride) per block
_V3_LARGE = ((3, 16, 16, 0, 0, 1), (3, 64, 24, 0, 0, 2), (3, 72, 24, 0, 0, 1), (5, 72, 40, 1, 0, 2), (5, 120, 40, 1, 0, 1),
             (5, 120, 40, 1, 0, 1), (3, 240, 80, 0, 1, 2), (3, 200, 80, 0, 1, 1), (3, 184, 80, 0, 1, 1),
             (3, 184, 80, 0, 1, 1), (3, 480, 112, 1, 1, 1), (3, 672, 112, 1, 1, 1), (5, 672, 160, 1, 1, 2),
             (5, 960, 160, 1, 1, 1), (5, 960, 160, 1, 1, 1))
_V3_SMALL = ((3, 16, 16, 1, 0, 2), (3, 72, 24, 0, 0, 2), (3, 88, 24, 0, 0, 1), (5, 96, 40, 1, 1, 2), (5, 240, 40, 1, 1, 1),
             (5, 240, 40, 1, 1, 1), (5, 120, 48, 1, 1, 1), (5, 144, 48, 1, 1, 1), (5, 288, 96, 1, 1, 2),
             (5, 576, 96, 1, 1, 1), (5, 576, 96, 1, 1, 1))


class MobileNetV3(nn.Module):
    def __init__(self, large: bool) -> None:
        super().__init__()
        cfg, hidden = (_V3_LARGE, 1280) if large else (_V3_SMALL, 1024)
        layers: list[nn.Module] = [_cbr(3, 16, 3, 2, act=nn.Hardswish)]
        cin = 16
        for k, mid, cout, se, hs, s in cfg:
            layers.append(_MBConv(cin, mid, cout, k, s, nn.Hardswish if hs else nn.ReLU,
                                  se=_divisible(mid // 4) if se else 0))
            cin = cout
        last = 6 * cin
        layers.append(_cbr(cin, last, 1, act=nn.Hardswish))
        self.features = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Linear(last, hidden), nn.Hardswish(), nn.Dropout(0.2),
                                        nn.Linear(hidden, 1000))

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# --- ShuffleNetV2 ----------------------------------------------------------------------------

class _ShuffleUnit(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        half = cout // 2
        self.stride = stride
        self.left = (nn.Sequential(_cbr(cin, cin, 3, stride, groups=cin, act=None), _cbr(cin, half, 1))
                     if stride > 1 else None)
        src = cin if stride > 1 else half
        self.right = nn.Sequential(_cbr(src, half, 1), _cbr(half, half, 3, stride, groups=half, act=None),
                                   _cbr(half, half, 1))

    def forward(self, x):
        if self.stride == 1:
            a, b = x.chunk(2, dim=1)
            out = torch.cat([a, self.right(b)], 1)
        else:
            out = torch.cat([self.left(x), self.right(x)], 1)
        n, c, h, w = out.shape
        return out.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)  # channel shuffle


class ShuffleNetV2(nn.Module):
    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = [_cbr(3, 24, 3, 2), nn.MaxPool2d(3, 2, 1)]
        cin = 24
        for cout, n in zip(widths[:3], (4, 8, 4)):
            for j in range(n):
                layers.append(_ShuffleUnit(cin, cout, 2 if j == 0 else 1))
                cin = cout
        layers.append(_cbr(cin, widths[3], 1))
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(widths[3], 1000)

    def forward(self, x):
        return self.fc(self.features(x).mean([2, 3]))


# --- Vision Transformer ----------------------------------------------------------------------

class _EncoderBlock(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.ln1, self.attn = nn.LayerNorm(dim, eps=1e-6), nn.MultiheadAttention(dim, heads, batch_first=True)
        self.ln2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp, dim), nn.Dropout(0.0))

    def forward(self, x):
        y = self.ln1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class ViT(nn.Module):
    def __init__(self, patch: int = 16, dim: int = 768, depth: int = 12, heads: int = 12, mlp: int = 3072,
                 image: int = 224) -> None:
        super().__init__()
        self.proj = nn.Conv2d(3, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + 1, dim))
        self.blocks = nn.Sequential(*(_EncoderBlock(dim, heads, mlp) for _ in range(depth)))
        self.ln = nn.LayerNorm(dim, eps=1e-6)
        self.head = nn.Linear(dim, 1000)

    def forward(self, x):
        x = self.proj(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.pos
        return self.head(self.ln(self.blocks(x))[:, 0])


# ---------------------------------------------------------------------------------------------
# the set
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ZooNet:
    name: str
    kind: str            # design family, for the report (e.g. "ResNet", "mobile")
    top1: float          # published ImageNet-1K top-1 accuracy (%)
    params: int          # published parameter count (our definition must match it exactly)
    build: Callable[[], nn.Module]


def _r(depths, block=_Bottleneck, groups=1, width=64):
    return lambda: ResNet(block, depths, groups, width)


ZOO: tuple[ZooNet, ...] = (
    ZooNet("alexnet", "plain", 56.522, 61_100_840, AlexNet),
    ZooNet("vgg11", "plain", 69.020, 132_863_336, lambda: VGG(11)),
    ZooNet("vgg13", "plain", 69.928, 133_047_848, lambda: VGG(13)),
    ZooNet("vgg16", "plain", 71.592, 138_357_544, lambda: VGG(16)),
    ZooNet("vgg19", "plain", 72.376, 143_667_240, lambda: VGG(19)),
    ZooNet("vgg11_bn", "plain", 70.370, 132_868_840, lambda: VGG(11, bn=True)),
    ZooNet("vgg13_bn", "plain", 71.586, 133_053_736, lambda: VGG(13, bn=True)),
    ZooNet("vgg16_bn", "plain", 73.360, 138_365_992, lambda: VGG(16, bn=True)),
    ZooNet("vgg19_bn", "plain", 74.218, 143_678_248, lambda: VGG(19, bn=True)),
    ZooNet("resnet18", "ResNet", 69.758, 11_689_512, _r((2, 2, 2, 2), _Basic)),
    ZooNet("resnet34", "ResNet", 73.314, 21_797_672, _r((3, 4, 6, 3), _Basic)),
    ZooNet("resnet50", "ResNet", 76.130, 25_557_032, _r((3, 4, 6, 3))),
    ZooNet("resnet101", "ResNet", 77.374, 44_549_160, _r((3, 4, 23, 3))),
    ZooNet("resnet152", "ResNet", 78.312, 60_192_808, _r((3, 8, 36, 3))),
    ZooNet("resnext50_32x4d", "ResNet", 77.618, 25_028_904, _r((3, 4, 6, 3), groups=32, width=4)),
    ZooNet("resnext101_32x8d", "ResNet", 79.312, 88_791_336, _r((3, 4, 23, 3), groups=32, width=8)),
    ZooNet("wide_resnet50_2", "ResNet", 78.468, 68_883_240, _r((3, 4, 6, 3), width=128)),
    ZooNet("wide_resnet101_2", "ResNet", 78.848, 126_886_696, _r((3, 4, 23, 3), width=128)),
    ZooNet("squeezenet1_0", "plain", 58.092, 1_248_424, lambda: SqueezeNet("1_0")),
    ZooNet("squeezenet1_1", "plain", 58.178, 1_235_496, lambda: SqueezeNet("1_1")),
    ZooNet("densenet121", "DenseNet", 74.434, 7_978_856, lambda: DenseNet((6, 12, 24, 16))),
    ZooNet("densenet161", "DenseNet", 77.138, 28_681_000, lambda: DenseNet((6, 12, 36, 24), growth=48, init=96)),
    ZooNet("densenet169", "DenseNet", 75.600, 14_149_480, lambda: DenseNet((6, 12, 32, 32))),
    ZooNet("densenet201", "DenseNet", 76.896, 20_013_928, lambda: DenseNet((6, 12, 48, 32))),
    ZooNet("mobilenet_v2", "mobile", 71.878, 3_504_872, MobileNetV2),
    ZooNet("mobilenet_v3_large", "mobile", 74.042, 5_483_032, lambda: MobileNetV3(True)),
    ZooNet("mobilenet_v3_small", "mobile", 67.668, 2_542_856, lambda: MobileNetV3(False)),
    ZooNet("shufflenet_v2_x0_5", "mobile", 60.552, 1_366_792, lambda: ShuffleNetV2((48, 96, 192, 1024))),
    ZooNet("shufflenet_v2_x1_0", "mobile", 69.362, 2_278_604, lambda: ShuffleNetV2((116, 232, 464, 1024))),
    ZooNet("efficientnet_b0", "mobile", 77.692, 5_288_548, EfficientNetB0),
    ZooNet("vit_b_16", "transformer", 81.072, 86_567_656, ViT),
)

INPUT_SHAPE = (1, 3, 224, 224)


def names() -> list[str]:
    return [z.name for z in ZOO]


def get(name: str) -> ZooNet:
    for z in ZOO:
        if z.name == name:
            return z
    raise KeyError(f"unknown zoo network {name!r}; known: {', '.join(names())}")


def build(name: str) -> nn.Module:
    """The network on the meta device (no weight memory)."""
    with torch.device("meta"):
        return get(name).build().eval()


def to_cg(name: str) -> CG:
    from engine.graphs.fx_import import from_module

    cg = from_module(build(name), INPUT_SHAPE, name=name)
    cg.meta.update({"family": FAMILY, "kind": get(name).kind, "top1": get(name).top1})
    return cg


def cgs(selection: Sequence[str] | None = None) -> list[CG]:
    return [to_cg(n) for n in (selection or names())]


def provenance():
    from engine.data import Provenance

    return Provenance(dataset="ImageNet-1K", metric="top-1 accuracy", split="validation", source=SOURCE,
                      notes="published numbers of pretrained weights from different training recipes; "
                            "a check set for zero-shot ranking, never used for training or model selection")


def dataset(selection: Sequence[str] | None = None, callback=None):
    """The check set as an :class:`engine.data.ArchDataset` (family ``zoo``, ids = network names,
    columns ``kind`` and ``published_params``), e.g. for the app's Data page."""
    from engine.data import ArchDataset
    from engine.train.callbacks import notify

    nets = [get(n) for n in dict.fromkeys(selection or names())]  # a name given twice counts once
    graphs = []
    for i, z in enumerate(nets):
        notify(callback, "zoo", i, len(nets))
        graphs.append(to_cg(z.name))
    notify(callback, "zoo", len(nets), len(nets))
    return ArchDataset.from_cgs("zoo_imagenet", graphs, [z.top1 for z in nets], provenance(), family=FAMILY,
                                ids=[z.name for z in nets],
                                extras={"kind": [z.kind for z in nets], "published_params": [z.params for z in nets]},
                                location="engine/evaluate/zoo.py")


# ---------------------------------------------------------------------------------------------
# the check
# ---------------------------------------------------------------------------------------------

def ranking_table(frame, acc) -> tuple[dict, list[dict]]:
    """The columns ranked by a zero-shot check (``score``, FLOPs, params and every member of
    a :meth:`GennapePredictor.predict` frame) and their rows of SRCC, Kendall tau-b and NDCG@10
    against the accuracies ``acc`` (columns with a non-finite value get no row)."""
    import numpy as np

    from engine.metrics.ranking import kendall_tau, ndcg_at_k, srcc
    from engine.model.config import MEMBERS

    columns = {"score": frame["score"].to_numpy(), "FLOPs": frame["flops"].to_numpy(),
               "params": frame["params"].to_numpy()}
    columns.update({m: frame[m].to_numpy() for m in MEMBERS if m not in ("flops_baseline", "params_baseline")})
    rows = []
    for label, values in columns.items():
        v = np.asarray(values, dtype=float)
        if np.all(np.isfinite(v)):
            rows.append({"method": label, "srcc": float(srcc(acc, v)), "kendall": float(kendall_tau(acc, v)),
                         "ndcg10": float(ndcg_at_k(acc, v, 10))})
    return columns, rows


def evaluate(checkpoint: str | Path | None = None, selection: Sequence[str] | None = None) -> dict:
    """Zero-shot ranking of the zoo by the predictor's score and each member, next to FLOPs and
    params: SRCC, Kendall tau-b and NDCG@10 against the published top-1."""
    import numpy as np

    from engine.metrics.ranking import srcc
    from engine.model import default_checkpoint_dir
    from engine.model.predictor import GennapePredictor

    nets = [get(n) for n in dict.fromkeys(selection or names())]  # a name given twice counts once
    graphs = [to_cg(z.name) for z in nets]
    pred = GennapePredictor.load(Path(checkpoint) if checkpoint else default_checkpoint_dir())
    frame = pred.predict(graphs)
    acc = np.array([z.top1 for z in nets])
    columns, rows = ranking_table(frame, acc)
    kinds = sorted({z.kind for z in nets})
    by_kind = {}
    for kind in kinds:
        idx = np.array([i for i, z in enumerate(nets) if z.kind == kind])
        if idx.size >= 4:  # within one design family: the kind of ranking a user does
            by_kind[kind] = {label: float(srcc(acc[idx], np.asarray(v, dtype=float)[idx]))
                             for label, v in columns.items() if np.all(np.isfinite(np.asarray(v, dtype=float)))}
    nets_out = [{"name": z.name, "kind": z.kind, "top1": z.top1, "params": z.params,
                 "gflops": float(g.flops) / 1e9, "nodes": g.num_nodes,
                 **{k: float(v[i]) for k, v in columns.items()}} for i, (z, g) in enumerate(zip(nets, graphs))]
    return {"source": SOURCE, "n": len(nets), "metrics": rows, "within_kind_srcc": by_kind, "networks": nets_out}


def verdict(res: dict) -> str:
    """One sentence: does ``score`` beat FLOPs and params on SRCC and NDCG@10?"""
    m = {r["method"]: r for r in res["metrics"]}
    if "score" not in m:
        return "no score column"
    parts = []
    for base in ("FLOPs", "params"):
        for key, label in (("srcc", "SRCC"), ("ndcg10", "NDCG@10")):
            won = m["score"][key] > m[base][key]
            parts.append(f"{'beats' if won else 'does not beat'} {base} on {label} "
                         f"({m['score'][key]:.3f} vs {m[base][key]:.3f})")
    return "score " + "; ".join(parts)


def record_in_card(res: dict, checkpoint: str | Path | None, argv: Sequence[str]) -> Path:
    """Write the check's metrics into ``model_card.json`` of the checkpoint (other keys kept)."""
    import datetime

    from engine.model import default_checkpoint_dir

    path = (Path(checkpoint) if checkpoint else default_checkpoint_dir()) / "model_card.json"
    card = json.loads(path.read_text())
    card["zoo_check"] = {
        "what": f"zero-shot ranking of {res['n']} hand-designed ImageNet networks (check set, never used for "
                "training or selection)",
        "labels": res["source"],
        "command": "python -m engine.evaluate.zoo " + " ".join(a for a in argv if a != "--card"),
        "date": datetime.date.today().isoformat(),
        "metrics": {r["method"]: {k: round(r[k], 4) for k in ("srcc", "kendall", "ndcg10")} for r in res["metrics"]},
        "within_kind_srcc": {k: {m: round(v, 4) for m, v in d.items()} for k, d in res["within_kind_srcc"].items()},
        "verdict": verdict(res),
    }
    tmp = path.with_name(path.name + ".tmp")  # same format as engine.model.checkpoint writes
    tmp.write_text(json.dumps(card, indent=2))
    tmp.replace(path)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    ap = check_parser("python -m engine.evaluate.zoo", __doc__)
    ap.add_argument("--only", nargs="*", default=None, help="network names (default: all)")
    ap.add_argument("--card", action="store_true",
                    help="record the metrics in the checkpoint's model_card.json under 'zoo_check'")
    args = ap.parse_args(argv)
    res = run_check(evaluate, args.checkpoint, args.only)
    if res is None:
        return 2
    print(f"{res['n']} hand-designed ImageNet networks; labels: {res['source']}")
    print(f"{'method':<28}{'SRCC':>8}{'KT':>8}{'NDCG@10':>9}")
    for r in res["metrics"]:
        print(f"{r['method']:<28}{r['srcc']:>8.3f}{r['kendall']:>8.3f}{r['ndcg10']:>9.3f}")
    print(verdict(res))
    kinds = res["within_kind_srcc"]
    if kinds:
        print("\nSRCC within each design family (>= 4 networks): " + ", ".join(
            f"{k} ({sum(n['kind'] == k for n in res['networks'])})" for k in kinds))
        print(f"{'method':<28}" + "".join(f"{k:>12}" for k in kinds))
        for r in res["metrics"]:
            print(f"{r['method']:<28}" + "".join(f"{kinds[k][r['method']]:>12.3f}" for k in kinds))
    if write_output(args.output, res):
        return 2
    if args.card:
        record_in_card(res, args.checkpoint, argv if argv is not None else sys.argv[1:])
    return 0 if all(math.isfinite(r["srcc"]) for r in res["metrics"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
