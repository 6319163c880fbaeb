"""Tiny reference networks shared by the CG import tests (plain ``torch.nn``; no torchvision).

* :class:`SmallConvNet` -- conv-bn-relu-pool-linear, and :func:`small_convnet_cg`, the same
  network hand-built with :class:`~engine.graphs.cg.CGBuilder` (the conventions contract);
* :func:`cifar_resnet` -- a ResNet basic-block CIFAR net (from ``engine.bench.cg``);
* :class:`MobileNetV2ish` -- inverted residuals with depthwise convs, squeeze-excite and
  hardswish;
* :class:`TinyViT` -- patch-embedding conv, cls token, position embedding, pre-norm blocks
  with attention (``F.scaled_dot_product_attention`` or a hand-written ``q @ k^T``) and a
  GELU MLP; :class:`MHAViT` uses ``nn.MultiheadAttention``;
* :class:`TinyConvNeXt` (channels-last LayerNorm via permute, 7x7 depthwise, layer scale),
  :class:`TinyRegNet` (group convs, squeeze-excite with functional pooling) and
  :class:`TinySwin` (window attention with a relative-position bias table, shifted windows
  with ``torch.roll``) -- modern hand-designed patterns;
* :class:`TorchvisionPatterns` -- ShuffleNetV2's channel shuffle, Swin's mask built by item
  assignment, a norm after window attention and cosine attention (``F.normalize``);
* :class:`ActivationsAndGRN` -- LeakyReLU / PReLU / ELU / Mish (no op of their own: relu, silu)
  and ConvNeXt V2's global response norm (``torch.norm``, ``torch.addcmul``);
* :class:`HandWrittenActivations` -- swish and h-swish written out, as the once-for-all (OFA)
  code base does (``x * torch.sigmoid(x)``, ``x * F.relu6(x + 3.) / 6.``);
* :class:`HiddenAttention` / :class:`PlainAttention` -- the same window attention called through a
  function hidden from symbolic tracing with ``torch.fx.wrap`` (as torchvision's Swin does) or
  directly; :class:`HiddenUntraceable` hides a function that only runs on real tensors;
* odd cases: :class:`Untraceable` (data-dependent control flow), :class:`WithUnknownOp`,
  :class:`AddChain`, :class:`ShapeBranching`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from engine.bench.cg import CifarResNet, ResNet50
from engine.graphs.cg import CG, CGBuilder

__all__ = ["SmallConvNet", "small_convnet_cg", "cifar_resnet", "ResNet50", "MobileNetV2ish", "TinyViT",
           "MHAViT", "Untraceable", "WithUnknownOp", "AddChain", "ShapeBranching", "Attention", "TinyConvNeXt",
           "TinyRegNet", "TinySwin", "HiddenAttention", "PlainAttention", "HiddenUntraceable", "TorchvisionPatterns",
           "ActivationsAndGRN", "HandWrittenActivations"]


class SmallConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.drop = nn.Dropout(0.1)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(self.features(x))
        return self.fc(self.drop(x.view(x.size(0), -1)))


def small_convnet_cg() -> CG:
    """:class:`SmallConvNet` built by hand with ``CGBuilder`` (what a family ``to_cg`` does)."""
    b = CGBuilder("small", input_hwc=(32, 32, 3))
    x = b.input()
    x = b.act(b.bn(b.conv(x, 8, 3)), "relu")
    x = b.pool(x, "maxpool", 2, 2, padding=0)
    x = b.act(b.bn(b.conv(x, 16, 3, stride=2, bias=True)), "relu")
    return b.output(b.linear(b.mean(x), 10))


def cifar_resnet(blocks: int = 1, width: int = 8) -> nn.Module:
    return CifarResNet(blocks=blocks, width=width)


class SqueezeExcite(nn.Module):
    def __init__(self, c: int, r: int = 4):
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // r, 1)
        self.fc2 = nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        return x * s


class InvertedResidual(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, expand: int, se: bool):
        super().__init__()
        hidden = c_in * expand
        self.use_res = stride == 1 and c_in == c_out
        layers = [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.Hardswish(),
                  nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                  nn.Hardswish()]
        if se:
            layers.append(SqueezeExcite(hidden))
        layers += [nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        y = self.block(x)
        return x + y if self.use_res else y


class MobileNetV2ish(nn.Module):
    def __init__(self, num_classes: int = 10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1, bias=False), nn.BatchNorm2d(8), nn.ReLU6())
        self.blocks = nn.Sequential(
            InvertedResidual(8, 8, 1, 2, se=True),
            InvertedResidual(8, 16, 2, 3, se=False),
            InvertedResidual(16, 16, 1, 3, se=True),
        )
        self.head = nn.Sequential(nn.Conv2d(16, 32, 1, bias=False), nn.BatchNorm2d(32), nn.Hardswish())
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(32, num_classes))

    def forward(self, x):
        x = self.head(self.blocks(self.stem(x)))
        return self.classifier(x.mean((2, 3)))


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, sdpa: bool = True):
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.sdpa = sdpa
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        if self.sdpa:
            x = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q @ k.transpose(-2, -1)) * self.scale
            x = attn.softmax(dim=-1) @ v
        return self.proj(x.transpose(1, 2).reshape(b, n, c))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, sdpa: bool, mha: bool = False):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.mha = mha
        self.attn = nn.MultiheadAttention(dim, heads, batch_first=True) if mha else Attention(dim, heads, sdpa)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(2 * dim, dim))

    def forward(self, x):
        h = self.norm1(x)
        x = x + (self.attn(h, h, h, need_weights=False)[0] if self.mha else self.attn(h))
        return x + self.mlp(self.norm2(x))


class TinyViT(nn.Module):
    """ViT-style: 16 patches of 8x8 on a 32x32 image, cls token, learned position embedding."""

    def __init__(self, dim: int = 32, depth: int = 2, heads: int = 4, num_classes: int = 10, sdpa: bool = True,
                 mha: bool = False):
        super().__init__()
        self.patch = nn.Conv2d(3, dim, 8, 8)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, 17, dim))
        self.blocks = nn.Sequential(*[Block(dim, heads, sdpa, mha) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = self.blocks(x + self.pos_embed)
        return self.head(self.norm(x)[:, 0])


class MHAViT(TinyViT):
    def __init__(self, **kw):
        super().__init__(mha=True, **kw)


class Untraceable(nn.Module):
    """Branches on tensor values: cannot be traced symbolically."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.conv(x)
        if y.sum() > 0:
            y = torch.relu(y)
        return y.mean((2, 3))


class WithUnknownOp(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.Softplus()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        x = torch.exp(self.act(self.conv(x)))
        return self.fc(x.mean((2, 3)))


class AddChain(nn.Module):
    """``a + b + c`` (merged into one 3-input add) and ``x * 0.5 + 3`` (contracted)."""

    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(3, 4, 1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.c = nn.Conv2d(3, 4, 5, padding=2)

    def forward(self, x):
        y = self.a(x) + self.b(x) + self.c(x)
        y = torch.relu(y * 0.5 + 3)
        return y.flatten(1)


class ShapeBranching(nn.Module):
    """Python control flow on shapes only (specialised by concrete-shape tracing)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        if x.dim() == 4 and x.shape[-1] > 16:
            x = F.max_pool2d(x, 2)
        x = self.conv(x)
        for _ in range(len(x.shape) - 3):
            x = torch.relu(x)
        return self.fc(x.mean((2, 3)))


class _LayerNorm2d(nn.LayerNorm):
    """LayerNorm over channels of an NCHW tensor (ConvNeXt: permute, normalise, permute back)."""

    def forward(self, x):
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _ConvNeXtBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.dw = nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm = nn.LayerNorm(c)
        self.pw1, self.act, self.pw2 = nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c)
        self.gamma = nn.Parameter(torch.full((c,), 1e-6))

    def forward(self, x):
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.pw2(self.act(self.pw1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class TinyConvNeXt(nn.Module):
    def __init__(self, c: int = 16, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, c, 4, 4), _LayerNorm2d(c))
        self.stage1 = nn.Sequential(_ConvNeXtBlock(c), _ConvNeXtBlock(c))
        self.down = nn.Sequential(_LayerNorm2d(c), nn.Conv2d(c, 2 * c, 2, 2))
        self.stage2 = _ConvNeXtBlock(2 * c)
        self.norm, self.head = nn.LayerNorm(2 * c), nn.Linear(2 * c, num_classes)

    def forward(self, x):
        x = self.stage2(self.down(self.stage1(self.stem(x))))
        return self.head(self.norm(x.mean((2, 3))))


class _SE(nn.Module):
    def __init__(self, c: int, r: int = 4) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, c // r, 1), nn.Conv2d(c // r, c, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))


class _RegNetBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, group_width: int = 8) -> None:
        super().__init__()

        def cbr(i, o, k, s=1, g=1, act=True):
            layers = [nn.Conv2d(i, o, k, s, k // 2, groups=g, bias=False), nn.BatchNorm2d(o)]
            return nn.Sequential(*layers, nn.ReLU()) if act else nn.Sequential(*layers)

        self.a, self.b = cbr(cin, cout, 1), cbr(cout, cout, 3, stride, cout // group_width)
        self.se, self.c = _SE(cout), cbr(cout, cout, 1, act=False)
        self.proj = None if (cin == cout and stride == 1) else cbr(cin, cout, 1, stride, act=False)

    def forward(self, x):
        return F.relu(self.c(self.se(self.b(self.a(x)))) + (x if self.proj is None else self.proj(x)))


class TinyRegNet(nn.Module):
    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.body = nn.Sequential(_RegNetBlock(16, 32, 2), _RegNetBlock(32, 32, 1), _RegNetBlock(32, 64, 2))
        self.head = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.head(torch.flatten(F.adaptive_avg_pool2d(self.body(self.stem(x)), 1), 1))


class _WindowAttention(nn.Module):
    def __init__(self, c: int, heads: int, ws: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.bias_table = nn.Parameter(torch.zeros((2 * ws - 1) ** 2, heads))
        coords = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
        rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (ws - 1)
        self.register_buffer("index", rel[..., 0] * (2 * ws - 1) + rel[..., 1], persistent=False)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q * (c // self.heads) ** -0.5) @ k.transpose(-2, -1)
        attn = attn + self.bias_table[self.index.reshape(-1)].reshape(n, n, -1).permute(2, 0, 1).unsqueeze(0)
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class _SwinBlock(nn.Module):
    def __init__(self, c: int, heads: int, ws: int, shift: int) -> None:
        super().__init__()
        self.ws, self.shift = ws, shift
        self.n1, self.attn = nn.LayerNorm(c), _WindowAttention(c, heads, ws)
        self.n2, self.mlp = nn.LayerNorm(c), nn.Sequential(nn.Linear(c, 4 * c), nn.GELU(), nn.Linear(4 * c, c))

    def forward(self, x):
        b, h, w, c = x.shape
        ws = self.ws
        y = self.n1(x)
        if self.shift:
            y = torch.roll(y, (-self.shift, -self.shift), (1, 2))
        y = y.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        y = self.attn(y).view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        if self.shift:
            y = torch.roll(y, (self.shift, self.shift), (1, 2))
        x = x + y
        return x + self.mlp(self.n2(x))


class TinySwin(nn.Module):
    def __init__(self, c: int = 32, num_classes: int = 10) -> None:
        super().__init__()
        self.embed, self.norm0 = nn.Conv2d(3, c, 4, 4), nn.LayerNorm(c)
        self.blocks = nn.Sequential(_SwinBlock(c, 2, 4, 0), _SwinBlock(c, 2, 4, 2))
        self.norm, self.head = nn.LayerNorm(c), nn.Linear(c, num_classes)

    def forward(self, x):
        x = self.blocks(self.norm0(self.embed(x).permute(0, 2, 3, 1)))
        return self.head(self.norm(x).mean((1, 2)))


def _window_attention(x, qkv: nn.Linear, proj: nn.Linear, heads: int, ws: int):
    """Window attention with padding computed from the input's shape (Python arithmetic on sizes)."""
    b, h, w, c = x.shape
    x = F.pad(x, (0, 0, 0, (ws - w % ws) % ws, 0, (ws - h % ws) % ws))
    _, ph, pw, _ = x.shape
    x = x.view(b, ph // ws, ws, pw // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
    q, k, v = qkv(x).reshape(x.size(0), x.size(1), 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    x = ((q * (c // heads) ** -0.5) @ k.transpose(-2, -1)).softmax(-1) @ v
    x = proj(x.transpose(1, 2).reshape(-1, ws * ws, c))
    return x.view(b, ph // ws, pw // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, c)[:, :h, :w]


def hidden_window_attention(x, qkv, proj, heads: int, ws: int):
    return _window_attention(x, qkv, proj, heads, ws)


def hidden_gate(x):
    if type(x) is not torch.Tensor:  # runs on tensors (meta ones too), not on tracing proxies
        raise TypeError("hidden_gate needs a real tensor")
    return x * 2


torch.fx.wrap("hidden_window_attention")
torch.fx.wrap("hidden_gate")


class PlainAttention(nn.Module):
    def __init__(self, c: int = 32, heads: int = 2, ws: int = 4) -> None:
        super().__init__()
        self.embed, self.norm = nn.Conv2d(3, c, 4, 4), nn.LayerNorm(c)
        self.qkv, self.proj, self.head = nn.Linear(c, 3 * c), nn.Linear(c, c), nn.Linear(c, 10)
        self.heads, self.ws = heads, ws

    def attend(self, x):
        return _window_attention(x, self.qkv, self.proj, self.heads, self.ws)

    def forward(self, x):
        x = self.embed(x).permute(0, 2, 3, 1)
        return self.head((x + self.attend(self.norm(x))).mean((1, 2)))


class HiddenAttention(PlainAttention):
    def attend(self, x):
        return hidden_window_attention(x, self.qkv, self.proj, self.heads, self.ws)


class HiddenUntraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.head = nn.Conv2d(3, 8, 3), nn.Linear(8, 10)

    def forward(self, x):
        return self.head(hidden_gate(self.conv(x)).mean((2, 3)))


class TorchvisionPatterns(nn.Module):
    """What torchvision's ShuffleNetV2 and Swin V1/V2 do (see ``tests/test_fx_import.py``)."""

    def __init__(self, c: int = 16, ws: int = 4) -> None:
        super().__init__()
        self.embed, self.qkv, self.proj = nn.Conv2d(3, c, 4, 4), nn.Linear(c, 3 * c), nn.Linear(c, c)
        self.norm, self.head, self.ws = nn.LayerNorm(c), nn.Linear(c, 10), ws

    def forward(self, x):
        x = self.embed(x)
        b, c, h, w = x.shape
        x = x.view(b, 2, c // 2, h, w).transpose(1, 2).contiguous().view(b, c, h, w)  # channel shuffle
        x = x.permute(0, 2, 3, 1)
        mask = x.new_zeros((h, w))
        mask[: h // 2, :] = 1  # item assignment on a constant
        ws = self.ws
        y = x.view(b, h // ws, ws, w // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
        q, k, v = self.qkv(y).chunk(3, -1)
        attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
        y = self.proj(attn.softmax(-1) @ v)
        y = y.view(b, h // ws, w // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)
        x = x + self.norm(y) * (1 + mask.unsqueeze(-1))  # post-norm (Swin V2)
        return self.head(x.mean((1, 2)))


class ActivationsAndGRN(nn.Module):
    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(3, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)
        self.acts = nn.ModuleList([nn.LeakyReLU(0.1), nn.PReLU(c), nn.ELU(), nn.Mish()])
        self.gamma, self.beta = nn.Parameter(torch.full((c,), 0.5)), nn.Parameter(torch.full((c,), 0.1))
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        x = self.acts[1](self.acts[0](self.conv1(x)))
        x = self.acts[3](self.acts[2](self.conv2(x))).permute(0, 2, 3, 1)
        g = torch.norm(x, p=2, dim=(1, 2), keepdim=True)  # global response norm (ConvNeXt V2)
        n = g / (g.mean(dim=-1, keepdim=True) + 1e-6)
        x = x + torch.addcmul(self.beta, self.gamma, x * n)
        return self.head(x.mean((1, 2)))


class HandWrittenActivations(nn.Module):
    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.conv1, self.conv2, self.head = nn.Conv2d(3, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1), nn.Linear(c, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = x * torch.sigmoid(x)  # swish
        x = self.conv2(x)
        x = x * F.relu6(x + 3.0) / 6.0  # h-swish
        return self.head(x.mean((2, 3)))


class SqueezeExciteNet(nn.Module):
    """A conv and a squeeze-and-excitation gate, written either with modules
    (``AdaptiveAvgPool2d(1)``, ``nn.Hardsigmoid``) or as the OFA code base writes them
    (``x.mean(3, keepdim=True).mean(2, keepdim=True)``, ``F.relu6(x + 3) / 6``)."""

    def __init__(self, written_out: bool, c: int = 8) -> None:
        super().__init__()
        self.written_out = written_out
        self.conv = nn.Conv2d(3, c, 3, padding=1)
        self.reduce, self.expand = nn.Conv2d(c, c // 2, 1), nn.Conv2d(c // 2, c, 1)
        self.pool, self.gate = nn.AdaptiveAvgPool2d(1), nn.Hardsigmoid()
        self.head = nn.Linear(c, 10)

    def _pool(self, x):
        return x.mean(3, keepdim=True).mean(2, keepdim=True) if self.written_out else self.pool(x)

    def forward(self, x):
        x = self.conv(x)
        y = self.expand(F.relu(self.reduce(self._pool(x))))
        y = F.relu6(y + 3.0) / 6.0 if self.written_out else self.gate(y)
        x = x * y
        return self.head(torch.flatten(self._pool(x), 1))


class StaticSamePadConv(nn.Conv2d):
    """A ``Conv2d`` subclass that pads with a ``ZeroPad2d`` child in its own forward, as
    EfficientNet-PyTorch's ``Conv2dStaticSamePadding`` does."""

    def __init__(self, c_in: int, c_out: int, k: int, stride: int) -> None:
        super().__init__(c_in, c_out, k, stride=stride, bias=False)
        self.static_padding = nn.ZeroPad2d((0, 1, 0, 1))

    def forward(self, x):
        x = self.static_padding(x)
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation, self.groups)


class PaddedStem(nn.Module):
    """``StaticSamePadConv`` then a ``ZeroPad2d`` module before a max pool (NASNet's stem)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = StaticSamePadConv(3, 8, 3, 2), nn.BatchNorm2d(8)
        self.pad, self.pool = nn.ZeroPad2d(1), nn.MaxPool2d(3, 2)
        self.head = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = self.pool(self.pad(F.relu(self.bn(self.conv(x)))))
        return self.head(torch.flatten(x, 1))


class BatchNormAct(nn.BatchNorm2d):
    """BatchNorm2d with its activation as a child, applied in its own forward (timm's
    ``BatchNormAct2d``)."""

    def __init__(self, c: int) -> None:
        super().__init__(c)
        self.act = nn.ReLU()

    def forward(self, x):
        x = F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return self.act(x)


class GateOrder(nn.Module):
    """Conv, SE-style gate multiplied as ``gate * x`` or ``x * gate``, and global pooling by a
    fixed ``AvgPool2d`` over the whole map (``fixed_pool``) or ``AdaptiveAvgPool2d(1)``."""

    def __init__(self, gate_first: bool, fixed_pool: bool) -> None:
        super().__init__()
        self.gate_first = gate_first
        self.conv, self.bn = nn.Conv2d(3, 8, 3, padding=1), BatchNormAct(8)
        self.fc = nn.Conv2d(8, 8, 1)
        self.pool = nn.AvgPool2d(32) if fixed_pool else nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        x = self.bn(self.conv(x))
        g = torch.sigmoid(self.fc(x.mean((2, 3), keepdim=True)))
        x = g * x if self.gate_first else x * g
        return self.head(torch.flatten(self.pool(x), 1))


class SamePadGroupNorm(nn.Module):
    """A stride-2 conv with TensorFlow-style "same" padding computed from the input size at run
    time (timm's ``Conv2dSame``: ``max((ceil(x / s) - 1) * s + k - x, 0)``, then ``F.pad``) and a
    ``GroupNorm`` (which ONNX exporters write as InstanceNormalization + Mul + Add)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.norm, self.head = nn.Conv2d(3, 8, 3, stride=2), nn.GroupNorm(2, 8), nn.Linear(8, 10)

    def forward(self, x):
        ih, iw = x.size()[-2:]
        ph = max((math.ceil(ih / 2) - 1) * 2 + 3 - ih, 0)
        pw = max((math.ceil(iw / 2) - 1) * 2 + 3 - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        x = F.relu(self.norm(self.conv(x)))
        return self.head(x.mean((2, 3)))


class ChannelsLastBlock(nn.Module):
    """A ConvNeXt-style block: depthwise conv, then LayerNorm / Linear / GELU / Linear on the
    ``(B, H, W, C)`` permuted tensor, permuted back and added."""

    def __init__(self, c: int = 8) -> None:
        super().__init__()
        self.stem, self.dw = nn.Conv2d(3, c, 2, stride=2), nn.Conv2d(c, c, 7, padding=3, groups=c)
        self.norm, self.fc1, self.fc2 = nn.LayerNorm(c), nn.Linear(c, 4 * c), nn.Linear(4 * c, c)
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        y = self.dw(x).permute(0, 2, 3, 1)
        y = self.fc2(F.gelu(self.fc1(self.norm(y)))).permute(0, 3, 1, 2)
        return self.head((x + y).mean((2, 3)))


class BiasedAttention(nn.Module):
    """Tokens -> q, k, v -> ``F.scaled_dot_product_attention`` with a learned bias as the
    attention mask (relative-position bias, as in BEiT / CoAtNet / TinyViT)."""

    def __init__(self, d: int = 8, n: int = 16) -> None:
        super().__init__()
        self.embed, self.qkv, self.head = nn.Conv2d(3, d, 8, stride=8), nn.Linear(d, 3 * d), nn.Linear(d, 10)
        self.bias = nn.Parameter(torch.zeros(n, n))

    def forward(self, x):
        t = self.embed(x).flatten(2).transpose(1, 2)
        b, n, d = t.shape
        q, k, v = self.qkv(t).reshape(b, n, 3, 2, d // 2).permute(2, 0, 3, 1, 4).unbind(0)  # 2 heads
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.bias)
        return self.head(y.transpose(1, 2).reshape(b, n, d).mean(1))
