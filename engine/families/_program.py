"""Write-once network programs: one definition gives both the ``nn.Module`` and the CG.

A *program* is a plain Python function ``fn(f, x, **cfg) -> y`` that describes a network (or a
block of one) as calls on a backend ``f``:

* ``f.conv(x, c_out, k, stride=1, bias=False, depthwise=False)`` ("same" padding, odd kernels;
  ``k`` and ``stride`` may be ``(h, w)`` pairs);
* ``f.bn(x)``, ``f.act(x, "relu" | "relu6")``, ``f.pool(x, "maxpool" | "avgpool", k, stride)``;
* ``f.add([..])`` (one n-ary sum), ``f.concat([..])`` (channels), ``f.mean(x)`` (global average
  pool to a ``(B, C)`` tensor), ``f.linear(x, c_out)``;
* ``f.sub(name, fn, x, **cfg)``: a named sub-program (a child ``nn.Module`` named ``name``).

Three backends walk the same program:

* ``_Init`` creates the torch layers in call order (handles are channel counts);
* ``_Run`` applies them to tensors (``ProgramModule.forward``; traceable by ``torch.fx``);
* ``_Emit`` appends the matching nodes to a :class:`~engine.graphs.cg.CGBuilder` (handles are
  node ids), following the CG conventions of ``engine.graphs.fx_import`` (a conv, its BN and its
  activation are separate nodes; one ``add`` node per n-ary sum; ``concat`` per ``torch.cat``).

Control flow inside a program may depend on its config only, never on tensor values or on the
handles, so the three walks visit the same primitives in the same order and the module and its
CG agree by construction.  A program computes every channel count it needs from its config.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from typing import Any, ClassVar

import torch
from torch import nn

from engine.families.base import Family
from engine.graphs.cg import CG, CGBuilder

Program = Callable[..., Any]


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


_ACTS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "relu6": nn.ReLU6}


class _Init:
    """Creates the layers of ``mod`` in call order; a handle is the tensor's channel count."""

    def __init__(self, mod: ProgramModule):
        self.mod = mod

    def _put(self, layer: nn.Module) -> None:
        self.mod.layers.append(layer)

    def conv(self, x: int, c_out: int, k, stride=1, bias: bool = False, depthwise: bool = False) -> int:
        kh, kw = _pair(k)
        self._put(nn.Conv2d(x, c_out, (kh, kw), _pair(stride), (kh // 2, kw // 2),
                            groups=x if depthwise else 1, bias=bias))
        return c_out

    def bn(self, x: int) -> int:
        self._put(nn.BatchNorm2d(x, eps=self.mod.bn_eps, momentum=self.mod.bn_momentum))
        return x

    def act(self, x: int, op: str) -> int:
        self._put(_ACTS[op]())
        return x

    def pool(self, x: int, op: str, k: int = 3, stride: int = 1) -> int:
        if op == "maxpool":
            self._put(nn.MaxPool2d(k, stride, k // 2))
        else:  # TF "same" average pooling ignores the padded zeros
            self._put(nn.AvgPool2d(k, stride, k // 2, count_include_pad=False))
        return x

    def add(self, xs: list[int]) -> int:
        return xs[0]

    def concat(self, xs: list[int]) -> int:
        return sum(xs)

    def mean(self, x: int) -> int:
        return x

    def linear(self, x: int, c_out: int) -> int:
        self._put(nn.Linear(x, c_out))
        return c_out

    def sub(self, name: str, fn: Program, x: int, **cfg) -> int:
        child = ProgramModule(fn, x, cfg, bn_eps=self.mod.bn_eps, bn_momentum=self.mod.bn_momentum)
        self.mod.subs[name] = child
        return child.c_out


class _Run:
    """Applies the layers of ``mod`` in the order ``_Init`` created them."""

    def __init__(self, mod: ProgramModule):
        self.mod = mod
        self.i = 0

    def _next(self, x):
        layer = self.mod.layers[self.i]
        self.i += 1
        return layer(x)

    def conv(self, x, c_out, k, stride=1, bias=False, depthwise=False):
        return self._next(x)

    def bn(self, x):
        return self._next(x)

    def act(self, x, op):
        return self._next(x)

    def pool(self, x, op, k=3, stride=1):
        return self._next(x)

    def add(self, xs):
        return functools.reduce(operator.add, xs)

    def concat(self, xs):
        return xs[0] if len(xs) == 1 else torch.cat(list(xs), dim=1)

    def mean(self, x):
        return x.mean((2, 3))

    def linear(self, x, c_out):
        return self._next(x)

    def sub(self, name, fn, x, **cfg):
        return self.mod.subs[name](x)


class _Emit:
    """Appends CG nodes to a :class:`CGBuilder`; a handle is a node id."""

    def __init__(self, b: CGBuilder, prefix: str = ""):
        self.b = b
        self.prefix = prefix

    def conv(self, x: int, c_out: int, k, stride=1, bias: bool = False, depthwise: bool = False) -> int:
        groups = self.b.shape(x)[2] if depthwise else 1
        return self.b.conv(x, c_out, _pair(k), _pair(stride), groups=groups, bias=bias,
                           name=f"{self.prefix}conv")

    def bn(self, x: int) -> int:
        return self.b.bn(x, name=f"{self.prefix}bn")

    def act(self, x: int, op: str) -> int:
        return self.b.act(x, op, name=f"{self.prefix}{op}")

    def pool(self, x: int, op: str, k: int = 3, stride: int = 1) -> int:
        return self.b.pool(x, op, k, stride, name=f"{self.prefix}{op}")

    def add(self, xs: list[int]) -> int:
        return self.b.sum(list(xs), name=f"{self.prefix}add")

    def concat(self, xs: list[int]) -> int:
        return self.b.concat(list(xs), name=f"{self.prefix}concat")

    def mean(self, x: int) -> int:
        return self.b.mean(x, name=f"{self.prefix}mean")

    def linear(self, x: int, c_out: int) -> int:
        return self.b.linear(x, c_out, bias=True, name=f"{self.prefix}linear")

    def sub(self, name: str, fn: Program, x: int, **cfg) -> int:
        return fn(_Emit(self.b, f"{self.prefix}{name}/"), x, **cfg)


class ProgramModule(nn.Module):
    """``nn.Module`` running a program: ``layers`` holds its torch layers in call order and
    ``subs`` its named sub-programs.  ``c_out`` is the output channel count."""

    def __init__(self, fn: Program, in_channels: int, cfg: dict[str, Any] | None = None,
                 bn_eps: float = 1e-3, bn_momentum: float = 0.1):
        super().__init__()
        self.fn = fn
        self.cfg = dict(cfg or {})
        self.bn_eps = bn_eps
        self.bn_momentum = bn_momentum
        self.layers = nn.ModuleList()
        self.subs = nn.ModuleDict()
        self.c_out = fn(_Init(self), in_channels, **self.cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(_Run(self), x, **self.cfg)

    def extra_repr(self) -> str:
        return f"program={getattr(self.fn, '__name__', self.fn)!r}"


def build_module(fn: Program, in_channels: int, *, bn_eps: float, bn_momentum: float, **cfg) -> ProgramModule:
    """The ``nn.Module`` of program ``fn`` on ``in_channels`` input channels (PyTorch BN
    ``momentum``, i.e. ``1 - TF momentum``)."""
    return ProgramModule(fn, in_channels, cfg, bn_eps=bn_eps, bn_momentum=bn_momentum)


def build_cg(fn: Program, name: str, input_hwc: tuple[int, int, int], meta: dict | None = None, **cfg) -> CG:
    """The validated CG of program ``fn`` (input node, the program's nodes, output node)."""
    b = CGBuilder(name, input_hwc=input_hwc, meta=meta)
    y = fn(_Emit(b), b.input(), **cfg)
    return b.output(y)


class ProgramFamily(Family):
    """A family whose networks are one program: :meth:`build_module` and :meth:`to_cg` walk
    ``program`` with the validated spec as its config, so the module and the CG agree by
    construction.  Subclasses set ``program`` (a ``staticmethod``), the BN settings, and override
    :meth:`program_config` / :meth:`cg_name` where the spec is not the program's keyword dict."""

    program: ClassVar[Program]
    bn_eps: ClassVar[float]
    bn_momentum: ClassVar[float]  # PyTorch convention: 1 - TF momentum

    def program_config(self, spec: Any) -> dict[str, Any]:
        """The program's keyword arguments for a validated spec (default: the spec dict)."""
        return spec

    def cg_name(self, spec: Any) -> str:
        return f"{self.name}:{self.spec_hash(spec)}"

    def build_module(self, spec: Any) -> ProgramModule:
        """The network as a :class:`ProgramModule` (eval mode); its ``subs`` are the named parts
        (``stem``, blocks, ``head``)."""
        s = self.validate(spec)
        return build_module(self.program, self.input_hwc[2], bn_eps=self.bn_eps, bn_momentum=self.bn_momentum,
                            **self.program_config(s)).eval()

    def to_cg(self, spec: Any) -> CG:
        """Direct CG builder (same program as :meth:`build_module`; equals ``from_module``)."""
        s = self.validate(spec)
        return build_cg(self.program, self.cg_name(s), self.input_hwc, meta={"family": self.name, "spec": s},
                        **self.program_config(s))
