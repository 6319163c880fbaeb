"""Check: the importers on random layer stacks (no labels, no weights that matter).

Builds seeded random ``nn.Sequential`` stacks of common blocks -- convs, depthwise convs, norms
(BN, GroupNorm, channels-last LayerNorm), activations, pools, padding modules, residual adds,
two-branch concats and small functional pieces (``F.interpolate``, gates, slices, ``F.pad``,
``clamp``, ``x - mean``) -- on 8-32 px inputs, skips the stacks PyTorch itself cannot run, and
reports

* ``from_module``: how many import to a valid CG with exact params, how many contain an
  ``other`` node (an op without a vocabulary entry), and every failure;
* ``--onnx``: each stack exported with TorchScript (``do_constant_folding=False``) and, with
  ``--dynamo``, the dynamo exporter (``optimize=False``), both BatchNorm-keeping; the ONNX CG must
  have the torch.fx CG's ops (as a multiset), FLOPs and params.

    PYTHONPATH=. python scripts/random_stack_check.py --n 500 --seed 7
    PYTHONPATH=. python scripts/random_stack_check.py --n 120 --seed 11 --onnx [--dynamo]
"""

from __future__ import annotations

import argparse
import collections
import io
import random
import sys
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from engine.cg import from_module, from_onnx
from engine.graphs.cg import CGError

_FNS = ("interpolate", "mul2", "gate", "perm", "pad", "slice", "clamp", "abs", "minus_mean")


class _Residual(nn.Module):
    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x):
        y = self.body(x)
        return x + y if y.shape == x.shape else y


class _Concat(nn.Module):
    def __init__(self, a: nn.Module, b: nn.Module) -> None:
        super().__init__()
        self.a, self.b = a, b

    def forward(self, x):
        return torch.cat([self.a(x), self.b(x)], 1)


class _Fn(nn.Module):
    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind

    def forward(self, x):
        k = self.kind
        if k == "interpolate":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        if k == "mul2":
            return x * 2.0
        if k == "gate":
            return x * torch.sigmoid(x)
        if k == "perm":
            return x.permute(0, 2, 3, 1).contiguous().permute(0, 3, 1, 2)
        if k == "pad":
            return F.pad(x, (1, 1, 1, 1))
        if k == "slice":
            return x[:, :, 1:, 1:]
        if k == "clamp":
            return x.clamp(0, 6)
        if k == "abs":
            return x.abs()
        return x - x.mean((2, 3), keepdim=True)


class _ChannelsLastNorm(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.ln = nn.LayerNorm(c)

    def forward(self, x):
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _block(rng: random.Random, c: int) -> tuple[nn.Module, int]:
    kind = rng.choice(["conv", "dw", "bn", "act", "pool", "res", "cat", "fn", "fn", "gn", "pad", "ln"])
    if kind == "conv":
        co = rng.choice([4, 8, 12])
        return nn.Conv2d(c, co, rng.choice([1, 3]), stride=rng.choice([1, 2]), padding=rng.choice([0, 1])), co
    if kind == "dw":
        return nn.Conv2d(c, c, 3, padding=1, groups=c), c
    if kind == "bn":
        return nn.BatchNorm2d(c), c
    if kind == "act":
        return rng.choice([nn.ReLU, nn.GELU, nn.SiLU, nn.Hardswish, nn.Hardsigmoid, nn.ReLU6, nn.Tanh, nn.Sigmoid,
                           nn.LeakyReLU, nn.Mish, nn.ELU])(), c
    if kind == "pool":
        return rng.choice([nn.MaxPool2d(2), nn.AvgPool2d(3, 1, 1), nn.MaxPool2d(3, 2, 1)]), c
    if kind == "res":
        return _Residual(nn.Sequential(nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c), nn.ReLU())), c
    if kind == "cat":
        return _Concat(nn.Conv2d(c, 4, 1), nn.Conv2d(c, 4, 3, padding=1)), 8
    if kind == "fn":
        return _Fn(rng.choice(_FNS)), c
    if kind == "gn":
        return nn.GroupNorm(2 if c % 2 == 0 else 1, c), c
    if kind == "pad":
        return rng.choice([nn.ZeroPad2d(1), nn.ReflectionPad2d(1), nn.ConstantPad2d((0, 1, 0, 1), 0.0)]), c
    return _ChannelsLastNorm(c), c


def random_stack(rng: random.Random, max_blocks: int = 10) -> tuple[nn.Module, int]:
    """A seeded random classifier stack and its input size."""
    c, layers = 3, []
    for _ in range(rng.randint(1, max_blocks)):
        layer, c = _block(rng, c)
        layers.append(layer)
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, 10)]
    return nn.Sequential(*layers).eval(), rng.choice([8, 16, 17, 32])


def _export(model: nn.Module, x: torch.Tensor, dynamo: bool) -> bytes:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            return torch.onnx.export(model, (x,), dynamo=True, optimize=False, verbose=False).model_proto \
                .SerializeToString()
        buf = io.BytesIO()
        torch.onnx.export(model, (x,), buf, dynamo=False, do_constant_folding=False, opset_version=17)
        return buf.getvalue()


def _signature(cg) -> tuple:
    return sorted(n.op for n in cg.nodes), cg.flops, cg.params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=500, help="stacks to build")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--onnx", action="store_true", help="compare the ONNX route (TorchScript export)")
    parser.add_argument("--dynamo", action="store_true", help="with --onnx: the dynamo exporter instead")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    counts: collections.Counter = collections.Counter()
    examples: dict[str, str] = {}
    for _ in range(args.n):
        model, hw = random_stack(rng)
        x = torch.randn(1, 3, hw, hw, generator=torch.Generator().manual_seed(0))
        try:
            with torch.no_grad():
                model(x)
        except RuntimeError:
            counts["not runnable in PyTorch (skipped)"] += 1
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fx = from_module(model, tuple(x.shape))
                if args.onnx:
                    cg = from_onnx(_export(model, x, args.dynamo))
        except CGError as exc:
            counts["CGError"] += 1
            examples.setdefault("CGError", f"{str(exc)[:300]}\n    {str(model)[:400]}")
            continue
        except Exception as exc:  # noqa: BLE001 - a crash is what this check looks for
            counts[f"crash {type(exc).__name__}"] += 1
            examples.setdefault(type(exc).__name__, f"{str(exc)[:300]}\n    {str(model)[:400]}")
            continue
        if args.onnx:
            same = _signature(cg) == _signature(fx)
            counts["ONNX = torch.fx (ops, FLOPs, params)" if same else "ONNX differs"] += 1
            if not same:
                examples.setdefault("ONNX differs", f"{_signature(cg)} vs {_signature(fx)}\n    {str(model)[:400]}")
        else:
            exact = fx.params == sum(p.numel() for p in model.parameters())
            counts["valid CG, exact params" if exact else "params differ"] += 1
            if fx.op_counts().get("other"):
                counts["  of which with an 'other' node"] += 1
    route = ("ONNX (dynamo) vs torch.fx" if args.dynamo else "ONNX (TorchScript) vs torch.fx") if args.onnx \
        else "from_module"
    print(f"{route}: {args.n} random stacks, seed {args.seed}")
    for key, value in sorted(counts.items(), key=lambda kv: (kv[0].startswith(" "), kv[0])):
        print(f"  {key}: {value}")
    for key, text in examples.items():
        print(f"example ({key}): {text}")
    bad = sum(v for k, v in counts.items() if k.startswith(("CGError", "crash", "ONNX differs", "params differ")))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
