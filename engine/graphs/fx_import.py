"""Computation graphs from ``torch.nn.Module`` objects (``from_module``).

How it works
------------
1. **Concrete-shape fx tracing.**  A :class:`torch.fx.Tracer` records the module's forward, and
   every recorded node is evaluated immediately on **meta** tensors (shapes only, no compute,
   no memory).  Because every proxy knows its concrete value, Python control flow that depends
   on *shapes* (``if x.dim() == 4``, ``len(x.shape)``, ``range(x.size(1))``) is specialised to
   the given input shape; control flow that depends on tensor *values* raises
   :class:`~engine.graphs.cg.CGError` (export the model to ONNX instead).  The user's module is
   never modified: leaf modules run as meta-device shallow copies.
2. **Mapping to the vocabulary** (the "CG conventions" contract with the family builders; see
   the module tables below): leaf modules (``nn.Conv2d``, ``nn.BatchNorm2d``, activations, ...),
   ``torch.nn.functional`` calls and tensor methods become one CG node each; shape-only ops
   (view, flatten, permute, getitem, chunk, dropout, ``F.pad``, ...) and element-wise ops with a
   single activation input and constants (``x + 3``, ``x / 6``) are contracted into edges.
3. **Clean-up** (:func:`assemble`, shared with the ONNX importer): nodes that do not reach the
   output are dropped, chains of ``add`` (``mul``) nodes whose intermediate has a single consumer
   are merged into one n-ary node, and the same computation gets one form however the code wrote
   it: a per-channel affine ``mul`` / ``add`` right after a norm belongs to the norm, an
   element-wise node's input shape is its largest operand's, a pool over the whole map is a
   ``mean``; a mean of a mean is one ``mean`` and ``relu6(x + 3)`` a ``hardsigmoid``
   (:func:`merge_reductions`, :func:`fuse_activations`); padding before an activation or norm
   moves on to the consumer that reads it (``ZeroPad2d -> ReLU -> Conv`` as ``ReLU -> Conv``
   with the padding in the conv's edge).

Leaf modules are those of ``torch.nn`` (and the known types); a subclass with a ``forward`` of
its own (timm's ``BatchNormAct2d``, a same-padding conv) is traced through, so nothing it adds is
lost.  4-D tensors are read as ``(B, C, H, W)`` unless they are channels-last: after
``permute(0, 2, 3, 1)``, any op on such a tensor, or tokens ``(B, N, C)`` reshaped to
``(B, H, W, C)`` with ``H * W = N`` (ConvNeXt / Swin blocks).

Parameters and FLOPs
--------------------
``cg.params == sum(p.numel() for p in module.parameters())``: a leaf module's node owns the
module's parameters; a parameter read with ``get_attr`` (ViT cls token, position embedding,
layer-scale gamma, ``F.conv2d`` weights) is owned by the first CG node that consumes it (an
``x + pos_embed`` or ``torch.cat([cls, x])`` with a *parameter* operand is therefore kept as an
``add`` / ``concat`` node with a single predecessor); a shared parameter is counted once;
parameters never used by forward are put on the ``output`` node (with a warning).
FLOPs (per sample) = 2 x MACs of conv / linear / matmul from the real operand shapes.

``nn.MultiheadAttention`` is a leaf expanded into ``linear (in-proj, D -> 3D) -> matmul ->
softmax -> matmul -> linear (out-proj)`` (three separate q/k/v linears for cross-attention), and
``F.scaled_dot_product_attention`` into ``matmul -> [add: a mask / bias with parameters or from
activations] -> softmax -> matmul``, i.e. exactly what a hand-written attention traces to.
``x - y`` of two activations maps to ``add``, ``x / y`` to ``mul``; reductions (``mean``, ``sum``, ``amax`` over dims, ``torch.norm``, global pools) map to
``mean``.  Activations without an op of their own map to the closest one (LeakyReLU, PReLU, ELU,
CELU, SELU, RReLU -> ``relu``; Mish -> ``silu``), ``F.normalize`` to ``layernorm``.
Functions that libraries hide from symbolic tracing (``torch.fx.wrap``) are traced into.
Anything else that touches an activation becomes ``other`` with one warning naming the ops.
"""

from __future__ import annotations

import contextlib
import math
import operator
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import fx, nn
from torch.fx.proxy import Attribute, Proxy, TraceError

from engine.graphs.cg import CG, MAX_NODES, SHAPE_PRESERVING_OPS, CGError, Node, first_line
from engine.graphs.ops import conv_kind

Shape = tuple[int, int, int]

__all__ = ["from_module", "hwc"]


# ---------------------------------------------------------------------------------------------
# shapes
# ---------------------------------------------------------------------------------------------

def reorders_one_tensor(pairs, out_hwc: Shape, raw) -> bool:
    """Whether a concat of ``pairs`` (``(producer, shape)``) only puts pieces of one tensor back
    in another order -- one producer and as many elements out as it makes
    (``torch.cat([x[:, 1:], x[:, :1]])``): shape plumbing, contracted like ``torch.roll`` (the ONNX
    importer reads an exported roll, ``Slice`` + ``Concat``, the same way)."""
    prods = _unique(p for p, _ in pairs)
    return len(prods) == 1 and math.prod(out_hwc) == math.prod(raw[prods[0]].out_shape)


def _fold_batch(dims: list[int], batch: int) -> list[int]:
    """``dims`` with a first dimension that is a multiple ``k * batch`` of the batch (windows or
    tokens folded into it) written as ``[batch, k * dims[1], ...]`` -- ``[batch, k, dims[1]]``
    for 2-D -- so that :func:`hwc`'s per-sample shape keeps every element."""
    if len(dims) < 2 or batch < 1 or dims[0] == batch or dims[0] % batch:
        return list(dims)
    k = dims[0] // batch
    return [batch, k, dims[1]] if len(dims) == 2 else [batch, k * dims[1], *dims[2:]]


def hwc(shape) -> Shape:
    """The CG ``(H, W, C)`` of a tensor shape (batch dimension first).

    ``[B, C, H, W] -> (H, W, C)``, ``[B, N, D] -> (N, 1, D)``, ``[B, D] -> (1, 1, D)``,
    ``[D] -> (1, 1, D)``, ``[B, C, D, H, W] -> (H, W, C * D)``; zero-sized dims count as 1.
    """
    s = [max(1, int(v)) for v in shape]
    r = len(s)
    if r == 0:
        return (1, 1, 1)
    if r == 1:
        return (1, 1, s[0])
    if r == 2:
        return (1, 1, s[1])
    if r == 3:
        return (s[1], 1, s[2])
    if r == 4:
        return (s[2], s[3], s[1])
    return (s[-2], s[-1], math.prod(s[1:-2]))


def _pair(v, default: int = 1) -> tuple[int, int]:
    if v is None:
        return (default, default)
    if isinstance(v, int):
        return (v, v)
    v = [int(x) for x in v]
    if len(v) == 0:
        return (default, default)
    if len(v) == 1:
        return (v[0], 1)
    return (v[-2], v[-1])


def _first_tensor(value) -> torch.Tensor | None:
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, (tuple, list)):
        for v in value:
            t = _first_tensor(v)
            if t is not None:
                return t
    if isinstance(value, dict):
        for v in value.values():
            t = _first_tensor(v)
            if t is not None:
                return t
    return None


# ---------------------------------------------------------------------------------------------
# vocabulary tables
# ---------------------------------------------------------------------------------------------

_ACT_MODULES: tuple[tuple[type, str], ...] = (
    (nn.ReLU, "relu"), (nn.ReLU6, "relu6"), (nn.Hardswish, "hardswish"), (nn.Hardsigmoid, "hardsigmoid"),
    (nn.Sigmoid, "sigmoid"), (nn.SiLU, "silu"), (nn.GELU, "gelu"), (nn.Tanh, "tanh"),
    (nn.Softmax, "softmax"), (nn.LogSoftmax, "softmax"), (nn.Softmax2d, "softmax"),
    # no op of their own in the CG vocabulary: the closest one (ONNX's LeakyRelu / PRelu / Elu /
    # Selu / Celu / Mish map the same way)
    (nn.LeakyReLU, "relu"), (nn.PReLU, "relu"), (nn.ELU, "relu"), (nn.CELU, "relu"), (nn.SELU, "relu"),
    (nn.RReLU, "relu"), (nn.Mish, "silu"),
)
_NORM_MODULES: tuple[type, ...] = tuple(t for t in (
    nn.LayerNorm, nn.GroupNorm, nn.modules.instancenorm._InstanceNorm, nn.LocalResponseNorm,
    getattr(nn, "RMSNorm", None)) if t is not None)
#: padding modules are plumbing, as F.pad and ONNX Pad are (NASNet's ZeroPad2d)
_PAD_MODULES: tuple[type, ...] = (
    nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd, nn.modules.padding._ReplicationPadNd,
    nn.modules.padding._CircularPadNd)
_CONTRACT_MODULES: tuple[type, ...] = (
    nn.Identity, nn.Flatten, nn.Unflatten, nn.modules.dropout._DropoutNd, nn.ChannelShuffle,
    nn.PixelShuffle, nn.PixelUnshuffle, *_PAD_MODULES)
_KNOWN_LEAVES: tuple[type, ...] = (
    nn.modules.conv._ConvNd, nn.Linear, nn.modules.batchnorm._BatchNorm, *_NORM_MODULES,
    nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd, nn.modules.pooling._AdaptiveAvgPoolNd,
    nn.modules.pooling._AdaptiveMaxPoolNd, nn.Hardtanh, *(t for t, _ in _ACT_MODULES), *_CONTRACT_MODULES,
    nn.MultiheadAttention)

_ZERO_MODULE_NAMES = frozenset({"zero", "zeros", "zeroop", "zero_op", "zerolayer"})

_FN_ACT: dict[Any, str] = {
    F.relu: "relu", torch.relu: "relu", torch.relu_: "relu", F.relu_: "relu", F.relu6: "relu6",
    F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid",
    F.silu: "silu", F.gelu: "gelu", torch.tanh: "tanh", F.tanh: "tanh", F.softmax: "softmax",
    torch.softmax: "softmax", F.log_softmax: "softmax", torch.log_softmax: "softmax", F.softmin: "softmax",
    F.leaky_relu: "relu", F.leaky_relu_: "relu", F.elu: "relu", F.elu_: "relu", F.celu: "relu", F.selu: "relu",
    torch.selu: "relu", F.prelu: "relu", torch.prelu: "relu", F.rrelu: "relu", F.mish: "silu",
}
_METHOD_ACT: dict[str, str] = {
    "relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "sigmoid_": "sigmoid", "tanh": "tanh",
    "tanh_": "tanh", "softmax": "softmax", "log_softmax": "softmax",
}
_FN_ADD = {operator.add, operator.iadd, torch.add, operator.sub, operator.isub, torch.sub, torch.subtract}
_METHOD_ADD = {"add", "add_", "sub", "sub_", "__add__", "__radd__", "__sub__", "__rsub__", "__iadd__", "subtract"}
_FN_MUL = {operator.mul, operator.imul, torch.mul, torch.multiply, operator.truediv, operator.itruediv,
           torch.div, torch.true_divide, operator.floordiv, torch.divide, torch.addcmul}
_METHOD_MUL = {"mul", "mul_", "div", "div_", "__mul__", "__rmul__", "__truediv__", "__rtruediv__", "multiply",
               "divide", "true_divide", "addcmul", "addcmul_"}
_FN_CONCAT = {torch.cat, torch.concat, torch.concatenate, torch.stack, torch.hstack, torch.vstack, torch.dstack}
_FN_MATMUL = {operator.matmul, torch.matmul, torch.bmm, torch.mm, torch.einsum}
_METHOD_MATMUL = {"matmul", "bmm", "mm", "__matmul__"}
_FN_CONV = {F.conv1d: False, F.conv2d: False, F.conv3d: False,
            F.conv_transpose1d: True, F.conv_transpose2d: True, F.conv_transpose3d: True}
_FN_NORM = {F.batch_norm: "batchnorm", F.layer_norm: "layernorm", F.group_norm: "layernorm",
            F.instance_norm: "layernorm", F.local_response_norm: "layernorm",
            F.normalize: "layernorm"}  # L2 normalisation (Swin V2's cosine attention); ONNX LpNormalization too
if hasattr(F, "rms_norm"):
    _FN_NORM[F.rms_norm] = "layernorm"
_FN_POOL = {F.max_pool1d: "maxpool", F.max_pool2d: "maxpool", F.max_pool3d: "maxpool",
            torch.max_pool1d: "maxpool", torch.max_pool2d: "maxpool", torch.max_pool3d: "maxpool",
            F.avg_pool1d: "avgpool", F.avg_pool2d: "avgpool", F.avg_pool3d: "avgpool", torch.avg_pool1d: "avgpool"}
_FN_ADAPTIVE = {F.adaptive_avg_pool1d: "avgpool", F.adaptive_avg_pool2d: "avgpool", F.adaptive_avg_pool3d: "avgpool",
                F.adaptive_max_pool1d: "maxpool", F.adaptive_max_pool2d: "maxpool", F.adaptive_max_pool3d: "maxpool"}
_FN_REDUCE = {torch.mean, torch.sum, torch.amax, torch.max, torch.amin, torch.norm, torch.linalg.vector_norm,
              torch.linalg.norm}
_METHOD_REDUCE = {"mean", "sum", "amax", "max", "amin", "norm"}
_FN_ZERO = {torch.zeros_like}
_METHOD_ZERO = {"new_zeros", "zero_"}
_FN_FACTORY = {torch.ones_like, torch.full_like, torch.empty_like, torch.rand_like, torch.randn_like}
_METHOD_FACTORY = {"new_ones", "new_full", "new_empty", "new_tensor"}
_FN_CLAMP = {torch.clamp, torch.clip, torch.clamp_, F.hardtanh}
_METHOD_CLAMP = {"clamp", "clamp_", "clip", "clip_"}
_FN_CONTRACT = {
    operator.getitem, getattr, operator.neg, operator.pos, torch.neg, torch.flatten, torch.reshape,
    torch.transpose, torch.permute, torch.squeeze, torch.unsqueeze, torch.chunk, torch.split,
    torch.tensor_split, torch.unbind, torch.narrow, torch.select, torch.flip, torch.roll, torch.movedim,
    torch.t, torch.swapaxes, torch.broadcast_to, torch.clone, torch.detach, torch.masked_fill, torch.where,
    F.pad, F.dropout, F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout,
    torch.dropout, F.pixel_shuffle, F.pixel_unshuffle, torch.channel_shuffle, F.channel_shuffle, torch._assert,
}
_METHOD_CONTRACT = {
    "view", "view_as", "reshape", "reshape_as", "flatten", "unflatten", "permute", "transpose", "transpose_",
    "t", "contiguous", "chunk", "split", "split_with_sizes", "tensor_split", "unbind", "size", "dim",
    "numel", "expand", "expand_as", "repeat", "squeeze", "squeeze_", "unsqueeze", "unsqueeze_", "to", "type",
    "type_as", "float", "double", "half", "bfloat16", "int", "long", "bool", "clone", "detach", "narrow",
    "select", "flip", "roll", "movedim", "swapaxes", "masked_fill", "masked_fill_", "__getitem__", "cpu",
    "cuda", "requires_grad_", "neg", "__neg__",
}
_SELF_ONLY_METHODS = {"view_as", "reshape_as", "expand_as", "type_as"}


def _is_zero_module(m: nn.Module) -> bool:
    return type(m).__name__.lower() in _ZERO_MODULE_NAMES


def _own_forward(m: nn.Module) -> bool:
    """Whether ``m``'s class takes ``forward`` from a class outside ``torch.nn``."""
    owner = next((c for c in type(m).__mro__ if "forward" in c.__dict__), None)
    return owner is not None and not owner.__module__.startswith("torch.nn")


def _is_leaf(m: nn.Module) -> bool:
    if _is_zero_module(m):
        return True
    if isinstance(m, _KNOWN_LEAVES):
        # a subclass with a forward of its own is traced through: timm's BatchNormAct2d (BN + its
        # activation child) as a leaf lost the activation, a BN subclass returning F.relu(...)
        # would too, and EfficientNet-PyTorch's same-padding conv calls a ZeroPad2d child
        return not _own_forward(m)
    if isinstance(m, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
        return False
    return type(m).__module__.startswith("torch.nn") and next(m.children(), None) is None


def _fn_name(node: fx.Node, module: nn.Module | None = None) -> str:
    if node.op == "call_module":
        return f"nn.{type(module).__name__}" if module is not None else str(node.target)
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    t = node.target
    mod = getattr(t, "__module__", None) or ""
    name = getattr(t, "__name__", str(t))
    if mod.startswith("torch.nn.functional"):
        return f"F.{name}"
    if mod.startswith("torch"):
        return f"torch.{name}"
    return f"{mod}.{name}" if mod and mod != "_operator" else name


# ---------------------------------------------------------------------------------------------
# concrete-shape tracer
# ---------------------------------------------------------------------------------------------

class _ConcreteMixin:
    """Proxy extras that read the traced node's concrete (meta) value."""

    def _concrete(self):
        value = self.tracer.values.get(self.node)  # type: ignore[attr-defined]
        if isinstance(value, torch.Tensor):
            raise TraceError(f"data-dependent Python control flow on the values of tensor {self.node.name!r} "
                             "(only shape-dependent control flow can be traced)")  # type: ignore[attr-defined]
        return value

    def __len__(self) -> int:
        value = self.tracer.values.get(self.node)  # type: ignore[attr-defined]
        return len(value)

    def __index__(self) -> int:
        return operator.index(self._concrete())

    def __int__(self) -> int:
        return int(self._concrete())

    def __float__(self) -> float:
        return float(self._concrete())


class _ShapeProxy(_ConcreteMixin, Proxy):
    def __getattr__(self, k):
        return _ShapeAttribute(self, k)

    def __setitem__(self, key, value):
        """``t[key] = value`` as an ``operator.setitem`` node (torch.fx proxies refuse item
        assignment; torchvision's Swin builds its attention mask that way)."""
        self.tracer.create_proxy("call_function", operator.setitem, (self, key, value), {})


class _ShapeAttribute(_ConcreteMixin, Attribute):
    def __getattr__(self, k):
        return _ShapeAttribute(self, k)


class _Root(nn.Module):
    """Wrapper so forward defaults apply and fx's tensor constants land here, not on the user's module."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def _to_meta(value):
    if isinstance(value, torch.Tensor):
        return torch.empty_like(value, device="meta")
    return value


def _meta_clone(m: nn.Module) -> nn.Module:
    """Shallow copy of ``m`` whose parameters/buffers are meta tensors (eval mode, no hooks)."""
    c = m.__class__.__new__(m.__class__)
    c.__dict__ = dict(m.__dict__)
    c._parameters = {k: None if p is None else torch.empty_like(p, device="meta") for k, p in m._parameters.items()}
    c._buffers = {k: None if b is None else torch.empty_like(b, device="meta") for k, b in m._buffers.items()}
    c._modules = {k: None if s is None else _meta_clone(s) for k, s in m._modules.items()}
    for hooks in ("_forward_hooks", "_forward_pre_hooks", "_forward_hooks_with_kwargs",
                  "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called", "_backward_hooks",
                  "_backward_pre_hooks"):
        if hooks in c.__dict__:
            c.__dict__[hooks] = type(m.__dict__[hooks])()
    c.training = False
    return c


_UNARY_MODULES: tuple[type, ...] = (
    nn.modules.batchnorm._BatchNorm, *_NORM_MODULES, *(t for t, _ in _ACT_MODULES), nn.Hardtanh,
    nn.modules.dropout._DropoutNd, nn.Identity)
_UNARY_FNS = {*_FN_ACT, *_FN_CLAMP, F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm, F.dropout,
              F.dropout1d, F.dropout2d, F.dropout3d, F.alpha_dropout, F.feature_alpha_dropout, torch.dropout,
              operator.neg, operator.pos, torch.neg, torch.clone, torch.detach}
_UNARY_METHODS = {*_METHOD_ACT, *_METHOD_CLAMP, "neg", "__neg__", "contiguous", "clone", "detach"}
_BINARY = {*_FN_ADD, *_FN_MUL}
_BINARY_METHODS = {*_METHOD_ADD, *_METHOD_MUL}


def _fast_eval(node: fx.Node, args, kwargs, module: nn.Module | None):
    """Output (meta) value of cheap, common ops without dispatching to meta kernels, many of which
    run slow Python decompositions; ``None`` means "evaluate normally"."""
    x = args[0] if args else None
    if not isinstance(x, torch.Tensor):
        if node.op == "call_function" and node.target in _BINARY and len(args) == 2 \
                and isinstance(args[1], torch.Tensor) and isinstance(x, (int, float, bool)):
            return torch.empty_like(args[1], dtype=torch.result_type(x, args[1]))
        return None
    if module is not None:
        return torch.empty_like(x) if isinstance(module, _UNARY_MODULES) else None
    target = node.target
    if (node.op == "call_function" and target in _UNARY_FNS) or (
            node.op == "call_method" and target in _UNARY_METHODS):
        if "dtype" in kwargs:
            return None
        if target == "contiguous":  # empty_like would keep a transposed input's strides
            return torch.empty(x.shape, dtype=x.dtype, device="meta")
        return torch.empty_like(x)
    if (node.op == "call_function" and target in _BINARY) or (node.op == "call_method" and target in _BINARY_METHODS):
        if len(args) < 2 or kwargs.keys() - {"alpha", "rounding_mode"}:
            return None
        y = args[1]
        if isinstance(y, torch.Tensor):
            shape = torch.broadcast_shapes(x.shape, y.shape)
        elif isinstance(y, (int, float, bool)):
            shape = x.shape
        else:
            return None
        return torch.empty(shape, dtype=torch.result_type(x, y), device="meta")
    if node.op == "call_function" and target is F.scaled_dot_product_attention and len(args) >= 3:
        q, v = args[0], args[2]
        if isinstance(v, torch.Tensor):
            return torch.empty((*q.shape[:-1], v.shape[-1]), dtype=q.dtype, device="meta")
    return None


class _Tracer(fx.Tracer):
    def __init__(self, meta_input: torch.Tensor):
        super().__init__(autowrap_modules=(math,))
        self.meta_input = meta_input
        self.values: dict[fx.Node, Any] = {}
        self.attr_objects: dict[fx.Node, Any] = {}
        self.anon: dict[str, nn.Module] = {}
        self._anon_ids: dict[int, str] = {}
        self._meta_modules: dict[int, nn.Module] = {}

    # --- module handling ---------------------------------------------------------------------
    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _is_leaf(m)

    def path_of_module(self, mod: nn.Module) -> str:
        try:
            return super().path_of_module(mod)
        except NameError:  # a module created inside forward (not registered as a child)
            name = self._anon_ids.get(id(mod))
            if name is None:
                name = f"<unregistered {len(self.anon)}: {type(mod).__name__}>"
                self._anon_ids[id(mod)] = name
                self.anon[name] = mod
            return name

    def module(self, target: str) -> nn.Module:
        return self.anon[target] if target in self.anon else self.root.get_submodule(target)

    def meta_module(self, m: nn.Module) -> nn.Module:
        c = self._meta_modules.get(id(m))
        if c is None:
            c = self._meta_modules[id(m)] = _meta_clone(m)
        return c

    def fetch_attr(self, target: str):
        obj: Any = self.root
        for part in target.split("."):  # bypass nn.Module.__getattr__, which fx patches while tracing
            if isinstance(obj, nn.Module):
                for store in (obj._parameters, obj._buffers, obj._modules):
                    if part in store:
                        obj = store[part]
                        break
                else:
                    obj = object.__getattribute__(obj, part)
            else:
                obj = getattr(obj, part)
        return obj

    # --- proxies with concrete values ----------------------------------------------------------
    def proxy(self, node: fx.Node) -> Proxy:
        return _ShapeProxy(node, self)

    def to_bool(self, obj: Proxy) -> bool:
        return bool(obj._concrete()) if isinstance(obj, _ConcreteMixin) else super().to_bool(obj)

    def iter(self, obj: Proxy):
        value = self.values.get(obj.node)
        if value is None:
            return super().iter(obj)
        return iter([obj[i] for i in range(len(value))])

    def create_node(self, kind, target, args, kwargs, name=None, type_expr=None):
        node = super().create_node(kind, target, args, kwargs, name, type_expr)
        if kind != "output":
            self.values[node] = self._evaluate(node)
        return node

    def _evaluate(self, node: fx.Node):
        def load(a):
            return fx.node.map_arg(a, lambda n: self.values[n])

        try:
            if node.op == "placeholder":
                return self.meta_input
            if node.op == "get_attr":
                obj = self.fetch_attr(node.target)
                self.attr_objects[node] = obj
                return _to_meta(obj)
            args, kwargs = load(node.args), load(node.kwargs)
            module = self.module(node.target) if node.op == "call_module" else None
            fast = _fast_eval(node, args, kwargs, module)
            if fast is not None:
                return fast
            if node.op == "call_function":
                return node.target(*args, **kwargs)
            if node.op == "call_method":
                return getattr(args[0], node.target)(*args[1:], **kwargs)
            if node.op == "call_module":
                return self.meta_module(module).forward(*args, **kwargs)
        except CGError:
            raise
        except TraceError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure of the shape pass is reported
            what = node.target if node.op != "call_function" else _fn_name(node)
            raise CGError(f"shape propagation failed at {node.op} {what!s} ({node.name}): "
                          f"{type(exc).__name__}: {first_line(exc)}; "
                          "if the model is not traceable, export it to ONNX and use from_onnx") from None
        raise CGError(f"unsupported fx node kind {node.op!r}")


# ---------------------------------------------------------------------------------------------
# graph construction
# ---------------------------------------------------------------------------------------------

@dataclass
class _Raw:
    op: str
    name: str
    inputs: list[int]
    in_shapes: list[Shape]
    out_shape: Shape
    in_shape: Shape
    weight: tuple[int, int, int, int] | None = None
    groups: int = 1
    stride: tuple[int, int] = (1, 1)
    dilation: tuple[int, int] = (1, 1)
    bias: bool = False
    flops: int = 0
    params: int = 0
    alive: bool = True


@dataclass
class _Info:
    prods: tuple[int, ...] = ()
    pending: dict[int, int] = field(default_factory=dict)  # id(parameter) -> numel


_EMPTY = _Info()


def _unique(seq) -> list:
    return list(dict.fromkeys(seq))


class _Builder:
    """Walks the traced fx graph and emits CG nodes (see the module docstring for the rules)."""

    def __init__(self, tracer: _Tracer, graph: fx.Graph, module: nn.Module, batch: int):
        self.t = tracer
        self.graph = graph
        self.batch = max(1, batch)
        self.raw: list[_Raw] = []
        self.info: dict[fx.Node, _Info] = {}
        self.nhwc: set[fx.Node] = set()  # 4-D values in channels-last layout (see _infer_layout)
        self._current: fx.Node | None = None
        self.param_numel = {id(p): p.numel() for p in module.parameters()}
        self.param_names = {id(p): n for n, p in module.named_parameters()}
        self.claimed: set[int] = set()
        self.unknown: list[str] = []
        self.output_prods: tuple[int, ...] = ()
        self.output_shape: Shape = (1, 1, 1)

    # --- helpers ---------------------------------------------------------------------------
    def value(self, n: fx.Node):
        return self.t.values.get(n)

    def arg_nodes(self, node: fx.Node, self_only: bool = False) -> list[fx.Node]:
        out: list[fx.Node] = []
        if self_only:
            return [node.args[0]] if node.args and isinstance(node.args[0], fx.Node) else []
        fx.node.map_arg((node.args, node.kwargs), lambda n: out.append(n))
        return out

    def node_hwc(self, n: fx.Node | None, shape) -> Shape:
        """:meth:`hwc` of the value of ``n``, read as ``(B, H, W, C)`` when ``n`` is channels-last."""
        dims = [int(v) for v in shape]
        if len(dims) == 4 and n is not None and n in self.nhwc:
            dims = [dims[0], dims[3], dims[1], dims[2]]
        return self.hwc(dims)

    def _infer_layout(self, node: fx.Node, args: list[fx.Node]) -> None:
        """Mark ``node`` channels-last when its 4-D value is laid out ``(B, H, W, C)``: a permute
        ``(0, 2, 3, 1)`` of a ``(B, C, H, W)`` tensor (ConvNeXt / Swin blocks after their patch
        embedding), any other 4-D op on a channels-last input (norms, linears, activations, adds,
        pads), or tokens ``(B, N, C)`` reshaped to ``(B, H, W, C)``.  Without this, a linear on
        ``(1, 56, 56, 96)`` read as 56 channels of 56 x 96."""
        t = _first_tensor(self.value(node))
        if t is None or t.dim() != 4:
            return
        src = next((a for a in args if self.info.get(a, _EMPTY).prods), None)
        s = _first_tensor(self.value(src)) if src is not None else None
        if s is None:
            return
        perm = _permutation(node, s.dim())
        if perm is not None:
            if s.dim() == 4 and ((perm == (0, 2, 3, 1) and src not in self.nhwc)
                                 or (perm == (0, 1, 2, 3) and src in self.nhwc)):
                self.nhwc.add(node)
            return
        # tokens (B, N, C) -> (B, H, W, C) with H * W = N (not attention heads (B * h, N, d) -> (B, h, N, d))
        if (s.dim() == 4 and src in self.nhwc) or (s.dim() == 3 and int(t.shape[-1]) == int(s.shape[-1])
                                                    and int(t.shape[1]) * int(t.shape[2]) == int(s.shape[1])):
            self.nhwc.add(node)

    def hwc(self, shape) -> Shape:
        """:func:`hwc` of a tensor shape whose first dimension is the batch -- or a multiple of it:
        window attention folds the windows into the batch (``[B * windows, tokens, C]``); that
        factor then counts into the next dimension, so the per-sample shape keeps every element."""
        return hwc(_fold_batch([int(v) for v in shape], self.batch))

    def acts(self, nodes: list[fx.Node]) -> list[tuple[int, Shape]]:
        """(producer, read shape) pairs of the activation arguments, in argument order."""
        pairs: list[tuple[int, Shape]] = []
        for n in nodes:
            inf = self.info.get(n, _EMPTY)
            if not inf.prods:
                continue
            t = _first_tensor(self.value(n))
            shape = self.node_hwc(n, t.shape) if t is not None else (1, 1, 1)
            pairs.extend((p, shape) for p in inf.prods)
        return pairs

    def pending(self, nodes: list[fx.Node]) -> dict[int, int]:
        out: dict[int, int] = {}
        for n in nodes:
            for k, v in self.info.get(n, _EMPTY).pending.items():
                if k not in self.claimed:
                    out[k] = v
        return out

    def claim(self, pending: dict[int, int], module: nn.Module | None = None) -> int:
        total = 0
        for k, v in pending.items():
            if k not in self.claimed:
                self.claimed.add(k)
                total += v
        if module is not None:
            for p in module.parameters():
                if id(p) not in self.claimed:
                    self.claimed.add(id(p))
                    total += p.numel()
        return total

    def emit(self, op: str, name: str, pairs: list[tuple[int, Shape]], out_value, **kw) -> int:
        inputs: list[int] = []
        shapes: list[Shape] = []
        for p, s in pairs:
            if p not in inputs:
                inputs.append(p)
                shapes.append(s)
        t = _first_tensor(out_value)
        out_shape = self.node_hwc(self._current, t.shape) if t is not None else (1, 1, 1)
        in_shape = kw.pop("in_shape", None) or (shapes[0] if shapes else out_shape)
        self.raw.append(_Raw(op=op, name=name, inputs=inputs, in_shapes=shapes, out_shape=out_shape,
                             in_shape=in_shape, **kw))
        return len(self.raw) - 1

    def per_sample(self, macs: float) -> int:
        return int(round(macs / self.batch))

    # --- main walk -------------------------------------------------------------------------
    def run(self) -> None:
        for node in self.graph.nodes:
            if node.op == "output":
                self.finish_output(node)
                continue
            try:
                self.info[node] = self.visit(node)
            except CGError:
                raise
            except Exception as exc:  # noqa: BLE001 - report the node instead of crashing the caller
                raise CGError(f"from_module cannot map {node.op} {_fn_name(node)} ({node.name}): "
                              f"{type(exc).__name__}: {exc}") from None

    def visit(self, node: fx.Node) -> _Info:
        value = self.value(node)
        if node.op == "placeholder":
            nid = self.emit("input", "input", [], value)
            return _Info((nid,))
        if node.op == "get_attr":
            obj = self.t.attr_objects.get(node)
            if isinstance(obj, torch.Tensor) and id(obj) in self.param_numel:
                return _Info((), {id(obj): self.param_numel[id(obj)]})
            return _Info()
        module = self.t.module(node.target) if node.op == "call_module" else None
        args = self.arg_nodes(node)
        self._current = node
        self._infer_layout(node, args)
        pairs = self.acts(args)
        pending = self.pending(args)
        has_tensor = _first_tensor(value) is not None
        if not pairs or not has_tensor:
            # constant (no activation input) or a non-tensor result (size, dim, shape): no CG node
            if not has_tensor:
                return _Info()
            if module is not None:
                for p in module.parameters():
                    if id(p) not in self.claimed and id(p) in self.param_numel:
                        pending[id(p)] = p.numel()
            return _Info((), pending)
        name = str(node.target).removeprefix("net.") if node.op == "call_module" else node.name
        if module is not None:
            return self.visit_module(node, module, name, args, pairs, pending, value)
        return self.visit_call(node, name, args, pairs, pending, value)

    def contract(self, pairs, pending) -> _Info:
        return _Info(tuple(_unique(p for p, _ in pairs)), pending)

    def node_info(self, nid: int) -> _Info:
        return _Info((nid,))

    def simple(self, op, name, pairs, pending, value, module=None, **kw) -> _Info:
        params = self.claim(pending, module)
        return self.node_info(self.emit(op, name, pairs, value, params=params, **kw))

    def other(self, node, name, pairs, pending, value, module=None) -> _Info:
        label = _fn_name(node, module)
        if label not in self.unknown:
            self.unknown.append(label)
        return self.simple("other", name, pairs, pending, value, module)

    # --- modules ---------------------------------------------------------------------------
    def visit_module(self, node, m, name, args, pairs, pending, value) -> _Info:
        if _is_zero_module(m):
            return self.simple("zero", name, pairs, pending, value, m)
        if isinstance(m, nn.modules.conv._ConvNd):
            w = self.value(args[0]) if args else None
            return self.conv(name, pairs, pending, value, m, m.in_channels, m.out_channels, m.kernel_size,
                             m.stride, m.dilation, m.groups, m.bias is not None, m.transposed, w)
        if isinstance(m, nn.Linear):
            return self.linear(name, pairs, pending, value, m.in_features, m.out_features, m.bias is not None, m)
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            return self.simple("batchnorm", name, pairs, pending, value, m)
        if isinstance(m, _NORM_MODULES):
            return self.simple("layernorm", name, pairs, pending, value, m)
        if isinstance(m, _CONTRACT_MODULES):
            return self.contract(pairs, pending)
        op = next((op for cls, op in _ACT_MODULES if isinstance(m, cls)), None)
        if isinstance(m, nn.Hardtanh) and not isinstance(m, nn.ReLU6):
            op = clamp_op(m.min_val, m.max_val)
            if not op:
                return self.other(node, name, pairs, pending, value, m)
        if op:
            return self.simple(_relu6_of_plus_three(op, node), name, pairs, pending, value, m)
        if isinstance(m, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            op = "maxpool" if isinstance(m, nn.modules.pooling._MaxPoolNd) else "avgpool"
            stride = m.stride if m.stride is not None else m.kernel_size
            return self.simple(op, name, pairs, pending, value, m, stride=_pair(stride))
        if isinstance(m, (nn.modules.pooling._AdaptiveAvgPoolNd, nn.modules.pooling._AdaptiveMaxPoolNd)):
            op = "avgpool" if isinstance(m, nn.modules.pooling._AdaptiveAvgPoolNd) else "maxpool"
            return self.adaptive(op, name, pairs, pending, value, m.output_size, m)
        if isinstance(m, nn.MultiheadAttention):
            return self.mha(node, m, name, pending, value)
        return self.other(node, name, pairs, pending, value, m)

    def conv(self, name, pairs, pending, value, module, cin, cout, k, stride, dilation, groups, bias,
             transposed, x_value) -> _Info:
        k = tuple(int(v) for v in (k if isinstance(k, (tuple, list)) else (k,)))
        kh, kw = (k[-2], k[-1]) if len(k) >= 2 else (k[0], 1)
        op = conv_kind(groups, cin, cout)
        out = _first_tensor(value)
        if transposed:
            macs = (x_value.numel() if isinstance(x_value, torch.Tensor) else 0) * (cout // groups) * math.prod(k)
        else:
            macs = out.numel() * (cin // groups) * math.prod(k)
        params = self.claim(pending, module)
        nid = self.emit(op, name, pairs, value, weight=(cin, cout, kh, kw), groups=int(groups),
                        stride=_pair(stride), dilation=_pair(dilation), bias=bool(bias),
                        flops=2 * self.per_sample(macs), params=params)
        return self.node_info(nid)

    def linear(self, name, pairs, pending, value, fin, fout, bias, module=None) -> _Info:
        out = _first_tensor(value)
        rows = out.numel() // max(1, fout)
        params = self.claim(pending, module)
        nid = self.emit("linear", name, pairs, value, weight=(int(fin), int(fout), 1, 1), bias=bool(bias),
                        flops=2 * self.per_sample(rows * fin * fout), params=params)
        return self.node_info(nid)

    def adaptive(self, op, name, pairs, pending, value, output_size, module=None) -> _Info:
        sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,)
        if all(s is not None and int(s) == 1 for s in sizes):
            return self.simple("mean", name, pairs, pending, value, module)
        # the stride of the equivalent fixed pooling (input / output size), as torch.onnx.export
        # writes an adaptive pooling whose input size divides evenly -- the ONNX import then agrees
        nid = self.emit(op, name, pairs, value, params=self.claim(pending, module))
        r = self.raw[nid]
        r.stride = tuple(max(1, int(i) // max(1, int(o))) for i, o in zip(r.in_shape[:2], r.out_shape[:2]))
        return self.node_info(nid)

    def mha(self, node, m: nn.MultiheadAttention, name, pending, value) -> _Info:
        """Expand ``nn.MultiheadAttention`` (see module docstring)."""
        names = ("query", "key", "value")
        srcs = [node.args[i] if i < len(node.args) else node.kwargs.get(nm) for i, nm in enumerate(names)]
        vals = [self.value(s) for s in srcs]
        pairs = [self.acts([s]) if isinstance(s, fx.Node) else [] for s in srcs]
        q, kv = vals[0], vals[1]
        e = m.embed_dim
        batched = q.dim() == 3
        lq = q.shape[1] if (batched and m.batch_first) else q.shape[0]
        ls = kv.shape[1] if (batched and m.batch_first) else kv.shape[0]
        tok = lambda d: (int(lq), 1, int(d))  # noqa: E731
        claimed_before = self.claim(pending)

        def numel(*ts):
            return sum(t.numel() for t in ts if t is not None)

        self_attn = [p for p, _ in pairs[0]] == [p for p, _ in pairs[1]] == [p for p, _ in pairs[2]]
        if self_attn and m._qkv_same_embed_dim:
            pw = numel(m.in_proj_weight, m.in_proj_bias, m.bias_k, m.bias_v)
            qkv = self.emit("linear", f"{name}.in_proj", pairs[0], None, in_shape=tok(e), weight=(e, 3 * e, 1, 1),
                            bias=m.in_proj_bias is not None, flops=2 * lq * e * 3 * e, params=pw)
            self.raw[qkv].out_shape = tok(3 * e)
            qn = kn = vn = qkv
        else:
            if m._qkv_same_embed_dim:
                w = [m.in_proj_weight.numel() // 3] * 3
            else:
                w = [numel(m.q_proj_weight), numel(m.k_proj_weight), numel(m.v_proj_weight)]
            b = [(m.in_proj_bias.numel() // 3) if m.in_proj_bias is not None else 0] * 3
            extra = [0, numel(m.bias_k), numel(m.bias_v)]
            ids = []
            dims = (e, m.kdim, m.vdim)
            lens = (lq, ls, ls)
            for i, part in enumerate(("q_proj", "k_proj", "v_proj")):
                nid = self.emit("linear", f"{name}.{part}", pairs[i], None, in_shape=(int(lens[i]), 1, int(dims[i])),
                                weight=(int(dims[i]), e, 1, 1), bias=m.in_proj_bias is not None,
                                flops=2 * lens[i] * dims[i] * e, params=w[i] + b[i] + extra[i])
                self.raw[nid].out_shape = (int(lens[i]), 1, e)
                ids.append(nid)
            qn, kn, vn = ids
        self.claimed.update(id(p) for p in (m.in_proj_weight, m.in_proj_bias, m.q_proj_weight, m.k_proj_weight,
                                            m.v_proj_weight, m.bias_k, m.bias_v) if p is not None)
        # per-head shapes as a hand-written attention traces them: q [B, h, L, hd] -> (L, hd, h)
        heads = int(m.num_heads)
        head = (int(lq), e // heads, heads)
        att = (int(lq), int(ls), heads)
        s1 = self.emit("matmul", f"{name}.qk", [(qn, head), (kn, head)], None, in_shape=head,
                       flops=2 * lq * ls * e, params=claimed_before)
        self.raw[s1].out_shape = att
        sm = self.emit("softmax", f"{name}.softmax", [(s1, att)], None, in_shape=att)
        self.raw[sm].out_shape = att
        s2 = self.emit("matmul", f"{name}.av", [(sm, att), (vn, head)], None, in_shape=att, flops=2 * lq * ls * e)
        self.raw[s2].out_shape = head
        out_params = self.claim({}, m)  # out_proj and anything left
        o = self.emit("linear", f"{name}.out_proj", [(s2, tok(e))], None, in_shape=tok(e), weight=(e, e, 1, 1),
                      bias=m.out_proj.bias is not None, flops=2 * lq * e * e, params=out_params)
        self.raw[o].out_shape = tok(e)
        return self.node_info(o)

    # --- functions and methods ----------------------------------------------------------------
    def visit_call(self, node, name, args, pairs, pending, value) -> _Info:
        fn = node.target
        is_fn = node.op == "call_function"
        method = None if is_fn else fn

        def a(i, key, default=None):
            if i < len(node.args):
                return fx.node.map_arg(node.args[i], lambda n: self.value(n))
            if key in node.kwargs:
                return fx.node.map_arg(node.kwargs[key], lambda n: self.value(n))
            return default

        # activations
        op = _FN_ACT.get(fn) if is_fn else _METHOD_ACT.get(method)
        if (is_fn and fn in _FN_CLAMP) or method in _METHOD_CLAMP:
            if is_fn and fn is F.hardtanh:
                lo, hi = a(1, "min_val", -1.0), a(2, "max_val", 1.0)
            else:
                lo, hi = a(1, "min"), a(2, "max")
            op = clamp_op(lo, hi)
            if not op:
                return self.other(node, name, pairs, pending, value)
        if op:
            return self.simple(_relu6_of_plus_three(op, node), name, pairs, pending, value)
        # element-wise combinations
        if (is_fn and fn in _FN_ADD) or method in _METHOD_ADD:
            if pending:  # x + parameter (position embedding): a real add owning the parameter
                return self.simple("add", name, pairs, pending, value)
            if len(_unique(p for p, _ in pairs)) <= 1:
                return self.contract(pairs, pending)
            return self.simple("add", name, pairs, pending, value)
        if (is_fn and fn in _FN_MUL) or method in _METHOD_MUL:
            n_act = sum(1 for n in args if self.info.get(n, _EMPTY).prods)
            if pending or n_act >= 2:
                return self.simple("mul", name, pairs, pending, value)
            return self.contract(pairs, pending)
        if is_fn and fn in _FN_CONCAT:
            tensors = node.args[0] if node.args else node.kwargs.get("tensors", ())
            if isinstance(tensors, (list, tuple)) and len(tensors) == 1 and not pending:
                return self.contract(pairs, pending)
            if not pending and hasattr(value, "shape") and reorders_one_tensor(pairs, self.hwc(value.shape), self.raw):
                return self.contract(pairs, pending)
            return self.simple("concat", name, pairs, pending, value)
        # matrix products
        if (is_fn and fn in _FN_MATMUL) or method in _METHOD_MATMUL:
            return self.matmul(node, name, args, pairs, pending, value)
        if is_fn and fn is F.linear:
            w_node = node.args[1] if len(node.args) > 1 else node.kwargs.get("weight")
            w = self.value(w_node) if isinstance(w_node, fx.Node) else None
            if isinstance(w_node, fx.Node) and not self.info.get(w_node, _EMPTY).prods and w is not None:
                b = a(2, "bias")
                return self.linear(name, pairs, pending, value, w.shape[-1], w.shape[0], b is not None)
            return self.matmul(node, name, args, pairs, pending, value)
        if is_fn and fn in _FN_CONV:
            x, w = a(0, "input"), a(1, "weight")
            groups = a(6, "groups", 1)
            if _FN_CONV[fn]:  # conv_transpose(input, weight, bias, stride, padding, output_padding, groups, dil)
                cin, cout = w.shape[0], w.shape[1] * groups
                dil = a(7, "dilation", 1)
            else:
                cin, cout = w.shape[1] * groups, w.shape[0]
                dil = a(5, "dilation", 1)
            return self.conv(name, pairs, pending, value, None, int(cin), int(cout), tuple(w.shape[2:]),
                             a(3, "stride", 1), dil, int(groups), a(2, "bias") is not None, _FN_CONV[fn], x)
        if is_fn and fn in _FN_NORM:
            return self.simple(_FN_NORM[fn], name, pairs, pending, value)
        if is_fn and fn in _FN_POOL:
            k = a(1, "kernel_size")
            stride = a(2, "stride") or k
            return self.simple(_FN_POOL[fn], name, pairs, pending, value, stride=_pair(stride))
        if is_fn and fn in _FN_ADAPTIVE:
            return self.adaptive(_FN_ADAPTIVE[fn], name, pairs, pending, value, a(1, "output_size"))
        if (is_fn and fn in _FN_REDUCE) or method in _METHOD_REDUCE:
            if isinstance(a(1, "dim"), torch.Tensor):  # element-wise max(a, b), not a reduction
                return self.other(node, name, pairs, pending, value)
            return self.simple("mean", name, pairs, pending, value)
        if is_fn and fn is F.scaled_dot_product_attention:
            return self.sdpa(node, name, pending, value)
        if (is_fn and fn in _FN_ZERO) or method in _METHOD_ZERO:
            x, out = _first_tensor(self.value(args[0])) if args else None, _first_tensor(value)
            if method == "new_zeros" and x is not None and out is not None and tuple(out.shape) != tuple(x.shape):
                return _Info((), pending)  # a new tensor of another size (a mask): a constant
            return self.simple("zero", name, self.acts(args[:1]), pending, value)
        if (is_fn and fn in _FN_FACTORY) or method in _METHOD_FACTORY:
            return _Info((), pending)
        if (is_fn and fn in _FN_CONTRACT) or method in _METHOD_CONTRACT:
            if method in _SELF_ONLY_METHODS:
                return self.contract(self.acts(args[:1]), pending)
            return self.contract(pairs, pending)
        return self.other(node, name, pairs, pending, value)

    def matmul(self, node, name, args, pairs, pending, value) -> _Info:
        operands = [n for n in node.args if isinstance(n, fx.Node)] or args
        out = _first_tensor(value)
        if node.target is torch.einsum:
            eq = node.args[0] if isinstance(node.args[0], str) else ""
            ops = [self.value(n) for n in operands]
            sizes: dict[str, int] = {}
            lhs = eq.replace(" ", "").split("->")[0].split(",")
            for term, t in zip(lhs, ops):
                if isinstance(t, torch.Tensor) and "." not in term and len(term) == t.dim():
                    for ch, d in zip(term, t.shape):
                        sizes[ch] = int(d)
            macs = math.prod(sizes.values()) if sizes else out.numel()
        else:
            a0 = self.value(operands[0]) if operands else None
            k = a0.shape[-1] if isinstance(a0, torch.Tensor) and a0.dim() >= 1 else 1
            macs = out.numel() * int(k)
        # activation @ parameter is a linear layer owning the parameter
        if len(operands) == 2 and pending and not self.info.get(operands[1], _EMPTY).prods:
            w = self.value(operands[1])
            if isinstance(w, torch.Tensor) and w.dim() == 2:
                params = self.claim(pending)
                nid = self.emit("linear", name, pairs, value, weight=(int(w.shape[0]), int(w.shape[1]), 1, 1),
                                flops=2 * self.per_sample(macs), params=params)
                return self.node_info(nid)
        params = self.claim(pending)
        return self.node_info(self.emit("matmul", name, pairs, value, flops=2 * self.per_sample(macs), params=params))

    def sdpa(self, node, name, pending, value) -> _Info:
        srcs = [node.args[i] if i < len(node.args) else node.kwargs.get(k) for i, k in
                enumerate(("query", "key", "value"))]
        q, k, v = (self.value(s) for s in srcs)
        qp, kp, vp = (self.acts([s]) if isinstance(s, fx.Node) else [] for s in srcs)
        rows = math.prod(q.shape[:-1])
        s_len, e, ev = int(k.shape[-2]), int(q.shape[-1]), int(v.shape[-1])
        att = self.hwc((*q.shape[:-1], s_len))
        # an attention mask / bias with parameters (a relative-position bias table) or computed from
        # the activations is an add before the softmax, as in the exported (decomposed) graph; a
        # constant mask (causal) is plumbing
        mask = node.args[3] if len(node.args) > 3 else node.kwargs.get("attn_mask")
        mask_pending = self.pending([mask]) if isinstance(mask, fx.Node) else {}
        mask_pairs = self.acts([mask]) if isinstance(mask, fx.Node) else []
        params = self.claim({k: v for k, v in pending.items() if k not in mask_pending})
        m1 = self.emit("matmul", f"{name}.qk", qp + kp, None, flops=2 * self.per_sample(rows * s_len * e),
                       params=params)
        self.raw[m1].out_shape = att
        scores = m1
        if mask_pending or mask_pairs:
            scores = self.emit("add", f"{name}.mask", [(m1, att)] + mask_pairs, None, in_shape=att,
                               params=self.claim(mask_pending))
            self.raw[scores].out_shape = att
        sm = self.emit("softmax", f"{name}.softmax", [(scores, att)], None, in_shape=att)
        self.raw[sm].out_shape = att
        m2 = self.emit("matmul", name, [(sm, att)] + vp, value, in_shape=att,
                       flops=2 * self.per_sample(rows * s_len * ev))
        return self.node_info(m2)

    # --- end of graph ----------------------------------------------------------------------
    def finish_output(self, node: fx.Node) -> None:
        found: list[fx.Node] = []
        fx.node.map_arg(node.args, lambda n: found.append(n))
        outputs = [(n, t) for n in found if self.info.get(n, _EMPTY).prods
                   for t in [_first_tensor(self.value(n))] if t is not None]
        if not outputs:
            raise CGError("the model's output does not depend on its input (no activation reaches the output)")
        n, t = outputs[0]
        self.output_prods = self.info[n].prods
        self.output_shape = self.hwc(t.shape)
        if len(outputs) > 1:
            shapes = ", ".join(str(tuple(o.shape)) for _, o in outputs[:4])
            warnings.warn(several_outputs(f"from_module: forward returns {len(outputs)} tensors ({shapes})",
                                          str(tuple(t.shape)), "Wrap the model so that forward returns"), stacklevel=4)


_FN_PLUS = {operator.add, operator.iadd, torch.add}
_METHOD_PLUS = {"add", "add_", "__add__", "__radd__", "__iadd__"}


def _plus_three(arg) -> bool:
    """Whether the fx node ``arg`` is ``x + 3`` (a tensor plus the number 3).  ``relu6(x + 3)``
    (``/ 6``: a scalar, contracted) is how code bases such as OFA and older MobileNetV3 ports write
    a hard sigmoid; it maps to ``hardsigmoid``, as ``nn.Hardsigmoid`` does."""
    if not isinstance(arg, fx.Node) or len(arg.args) != 2 or arg.kwargs.get("alpha", 1) != 1:
        return False
    if not ((arg.op == "call_function" and arg.target in _FN_PLUS)
            or (arg.op == "call_method" and arg.target in _METHOD_PLUS)):
        return False
    numbers = [a for a in arg.args if isinstance(a, (int, float)) and not isinstance(a, bool)]
    return len(numbers) == 1 and float(numbers[0]) == 3.0 and any(isinstance(a, fx.Node) for a in arg.args)


def _relu6_of_plus_three(op: str, node: fx.Node) -> str:
    """``op``, or ``hardsigmoid`` when ``node`` is a relu6 of ``x + 3`` (see :func:`_plus_three`)."""
    return "hardsigmoid" if op == "relu6" and node.args and _plus_three(node.args[0]) else op


_PERMUTES = {torch.permute, torch.movedim, torch.transpose, torch.swapaxes}
_PERMUTE_METHODS = {"permute", "movedim", "transpose", "swapaxes"}


def _permutation(node: fx.Node, rank: int) -> tuple[int, ...] | None:
    """The axis order a permute / movedim / transpose / swapaxes node gives its input of rank
    ``rank`` (``out.shape[i] == in.shape[perm[i]]``), or None for other nodes."""
    if not ((node.op == "call_function" and node.target in _PERMUTES)
            or (node.op == "call_method" and node.target in _PERMUTE_METHODS)):
        return None
    name = node.target if node.op == "call_method" else node.target.__name__
    rest = list(node.args[1:])
    try:
        if name == "permute":
            dims = rest[0] if len(rest) == 1 and isinstance(rest[0], (list, tuple)) else rest
            if not dims and "dims" in node.kwargs:
                dims = node.kwargs["dims"]
            perm = [int(d) % rank for d in dims]
        else:
            a, b = (int(v) % rank for v in rest[:2])
            if name == "movedim":
                perm = [i for i in range(rank) if i != a]
                perm.insert(b, a)
            else:
                perm = list(range(rank))
                perm[a], perm[b] = perm[b], perm[a]
    except (TypeError, ValueError, IndexError):
        return None
    return tuple(perm) if sorted(perm) == list(range(rank)) else None


def clamp_op(lo, hi) -> str | None:
    """The activation a clamp to ``[lo, hi]`` is (``None`` = unbounded): relu6 for [0, 6], relu for
    [0, inf); else None (torch ``clamp`` / ``hardtanh`` and ONNX ``Clip`` alike)."""
    try:
        lo = None if lo is None else float(lo)
        hi = None if hi is None else float(hi)
    except (TypeError, ValueError):
        return None
    if lo == 0.0 and hi == 6.0:
        return "relu6"
    if lo == 0.0 and (hi is None or math.isinf(hi) and hi > 0):
        return "relu"
    return None


def several_outputs(what: str, first: str, advice: str) -> str:
    """The importers' warning for a model with several outputs (the CG ends at the first)."""
    return (f"{what}; the CG ends at the first, {first}: layers that only feed the others are not on its path. "
            f"{advice} the output to score only (e.g. the logits)")


def assemble(raw: list[_Raw], output_prods, output_shape: Shape, name: str, meta: dict,
             source: str = "from_module") -> tuple[CG, int]:
    """Shared back end of the importers: append the ``output`` node, drop nodes that do not reach
    it, merge add / mul chains, renumber and validate.  ``raw[0]`` must be the ``input`` node.

    Returns the CG and the parameter count of the dropped nodes (the caller decides where it goes).
    """
    out_id = len(raw)
    raw.append(_Raw(op="output", name="output", inputs=_unique(output_prods),
                    in_shapes=[output_shape] * len(_unique(output_prods)), out_shape=output_shape,
                    in_shape=output_shape))
    # 1. drop nodes that do not reach the output
    live = {out_id}
    stack = [out_id]
    while stack:
        u = stack.pop()
        for p in raw[u].inputs:
            if p not in live:
                live.add(p)
                stack.append(p)
    dropped = [r for i, r in enumerate(raw) if i not in live and r.alive and r.op != "input"]
    for i, r in enumerate(raw):
        if i not in live:
            r.alive = False
    if not raw[0].alive:
        raise CGError(f"{source}: the model's output does not depend on its input")
    # 2. merge add / mul chains: an add whose only consumer is an add is folded into it
    consumers: list[list[int]] = [[] for _ in raw]
    for i, r in enumerate(raw):
        if r.alive:
            for p in r.inputs:
                consumers[p].append(i)
    for i, r in enumerate(raw):
        if not r.alive or r.op not in ("add", "mul") or len(consumers[i]) != 1:
            continue
        cid = consumers[i][0]
        c = raw[cid]
        if c.op != r.op:
            continue
        k = c.inputs.index(i)
        ins: list[int] = []
        shp: list[Shape] = []
        for p, sh in zip(c.inputs[:k] + r.inputs + c.inputs[k + 1:], c.in_shapes[:k] + r.in_shapes + c.in_shapes[k + 1:]):
            if p not in ins:
                ins.append(p)
                shp.append(sh)
        c.inputs, c.in_shapes = ins, shp
        c.in_shape = shp[0]
        c.params += r.params
        r.alive = False
        for p in r.inputs:
            consumers[p] = _unique(cid if x == i else x for x in consumers[p])
    # 3. a norm's affine transform written as separate ops with parameters (ONNX exports
    #    GroupNorm as InstanceNormalization -> Reshape -> Mul(weight) -> Add(bias)) is part of the
    #    norm, as nn.GroupNorm is one node: the norm takes its parameters and the shape it feeds on.
    #    (A per-channel layer scale right after a norm, as in timm's EfficientFormer, is folded in
    #    the same way: it only changes the norm's affine.)
    for i, r in enumerate(raw):
        if not r.alive or r.op not in ("mul", "add") or not r.params or len(r.inputs) != 1 \
                or r.params > max(r.out_shape[2], 1):  # per-channel parameters only
            continue
        p = r.inputs[0]
        norm = raw[p]
        if norm.op not in ("layernorm", "batchnorm") or consumers[p] != [i] \
                or math.prod(norm.out_shape) != math.prod(r.out_shape):
            continue
        norm.params += r.params
        norm.flops += r.flops
        if math.prod(norm.in_shape) == math.prod(r.out_shape):
            norm.in_shape, norm.in_shapes = r.out_shape, [r.out_shape] * len(norm.in_shapes)
        norm.out_shape = r.out_shape
        for c in consumers[i]:
            raw[c].inputs = [p if x == i else x for x in raw[c].inputs]
        consumers[p] = consumers[i]
        r.alive, r.inputs = False, []
    # 4. canonical forms, whatever way the code wrote them
    for r in raw:
        if not r.alive:
            continue
        if r.op in ("add", "mul") and len(r.in_shapes) > 1:
            # the input shape of an element-wise node is its largest operand's (the broadcast
            # one), in either operand order: torchvision's SE computes scale * x, timm's x * gate
            r.in_shape = max(r.in_shapes, key=math.prod)
        elif r.op in ("avgpool", "maxpool") and r.out_shape[:2] == (1, 1) and math.prod(r.in_shape[:2]) > 1:
            # a pool over the whole map (AvgPool2d(7) after the last stage) is global pooling,
            # as AdaptiveAvgPool2d(1) and GlobalAveragePool are
            r.op, r.stride = "mean", (1, 1)
        elif r.op in SHAPE_PRESERVING_OPS and len(r.inputs) == 1 \
                and math.prod(r.in_shape) > math.prod(raw[r.inputs[0]].out_shape):
            # padding (or another enlarging reshape) contracted into the edge of a shape-preserving
            # op (ZeroPad2d -> ReLU): the op works on its producer's map and the padding moves on
            # to the consumer, which reads the padded map as a conv reads its padding.  Raw nodes
            # are in topological order, so a chain of such ops passes the padding along.
            r.in_shape = r.out_shape = raw[r.inputs[0]].out_shape
            r.in_shapes = [r.in_shape]
    # 5. renumber
    new_id: dict[int, int] = {}
    nodes: list[Node] = []
    for i, r in enumerate(raw):
        if not r.alive:
            continue
        new_id[i] = len(nodes)
        nodes.append(Node(id=len(nodes), op=r.op, in_shape=tuple(r.in_shape), out_shape=tuple(r.out_shape),
                          name=r.name, weight=r.weight, groups=r.groups, stride=tuple(r.stride),
                          dilation=tuple(r.dilation), bias=r.bias, flops=int(r.flops), params=int(r.params)))
    edges = [(new_id[p], new_id[i]) for i, r in enumerate(raw) if r.alive for p in r.inputs]
    if dropped:
        meta["dropped_ops"] = len(dropped)
    if len(nodes) > MAX_NODES:
        raise CGError(f"{name or source}: the model has {len(nodes):,} nodes as a CG; the limit is {MAX_NODES:,}")
    cg = CG(nodes=nodes, edges=edges, name=name, meta=meta)
    try:
        cg.validate()
    except CGError as exc:
        raise CGError(f"{source} produced an invalid CG ({exc}); please report the model") from None
    return cg, sum(r.params for r in dropped)


def _power_nodes(raw: list[_Raw], source_op: dict[int, str], nid: int, x: int,
                 consumers: list[list[int]]) -> list[int] | None:
    """Ids of the nodes computing a power of ``x`` (``Pow(x, c)`` or ``x * x * x`` mul chains) ending
    at ``nid``, each used only inside the chain; ``None`` if ``nid`` is not such a chain."""
    r = raw[nid]
    if source_op.get(nid) == "Pow" and r.inputs == [x]:
        return [nid]
    if r.op != "mul" or r.params or not r.inputs:
        return None
    out = [nid]
    for p in r.inputs:
        if p == x:
            continue
        if consumers[p] != [nid]:
            return None
        sub = _power_nodes(raw, source_op, p, x, consumers)
        if sub is None:
            return None
        out += sub
    return out


def fuse_activations(raw: list[_Raw], source_op: dict[int, str]) -> None:
    """Decomposed activations written with a ``mul`` become one node (both importers):
    ``x * sigmoid(x)`` -> silu, ``x * hardsigmoid(x)`` and ``x * relu6(x)`` (``x * relu6(x + 3) / 6``:
    the constants are contracted) -> hardswish, ``x * tanh(softplus(x))`` -> silu (Mish), the Erf
    and tanh GELUs -> gelu (ONNX; ``source_op`` names the op a raw node came from)."""
    consumers: list[list[int]] = [[] for _ in raw]
    for i, r in enumerate(raw):
        for p in r.inputs:
            consumers[p].append(i)

    def sole(i: int, cid: int) -> bool:
        return consumers[i] == [cid]

    for i, r in enumerate(raw):
        if not r.alive or r.op != "mul" or len(r.inputs) != 2 or r.params:
            continue
        for x, g in (r.inputs, r.inputs[::-1]):
            gr = raw[g]
            if not gr.alive or not sole(g, i):
                continue
            fused, drop = None, [g]
            if gr.inputs == [x] and gr.op == "sigmoid":
                fused = "silu"
            elif gr.inputs == [x] and gr.op in ("hardsigmoid", "relu6"):
                fused = "hardswish"
            elif gr.inputs == [x] and source_op.get(g) == "Erf":
                fused = "gelu"
            elif gr.op == "tanh" and len(gr.inputs) == 1 and raw[gr.inputs[0]].inputs == [x] \
                    and source_op.get(gr.inputs[0]) == "Softplus" and sole(gr.inputs[0], g):
                fused, drop = "silu", [g, gr.inputs[0]]  # Mish: x * tanh(softplus(x)), as torch.fx maps nn.Mish
            elif gr.op == "tanh" and len(gr.inputs) == 1:
                # tanh GELU: x * (1 + tanh(c * (x + 0.044715 * Pow(x, 3)))) / 2
                a_id = gr.inputs[0]
                add = raw[a_id]
                if add.op == "add" and sole(a_id, g) and len(add.inputs) == 2 and x in add.inputs:
                    pw = next(p for p in add.inputs if p != x)
                    cube = _power_nodes(raw, source_op, pw, x, consumers) if sole(pw, a_id) else None
                    if cube:
                        fused, drop = "gelu", [g, a_id, *cube]
            if fused is None:
                continue
            r.op = fused
            r.inputs = [x]
            r.in_shapes = [raw[x].out_shape]
            r.in_shape = raw[x].out_shape
            for d in drop:
                raw[d].alive = False
                raw[d].inputs = []
            source_op[i] = f"{fused} pattern"
            break


def merge_reductions(raw: list[_Raw], outputs: Iterable[int] = ()) -> None:
    """A ``mean`` whose input is another ``mean`` with no other consumer is one reduction over
    both sets of axes (both importers): ``x.mean(3, keepdim=True).mean(2, keepdim=True)``, how OFA
    and other code bases write global average pooling, is one ``mean`` node, as
    ``AdaptiveAvgPool2d(1)`` is.  ``outputs``: the nodes the graph outputs (they are consumed too)."""
    consumers = [0] * len(raw)
    for r in raw:
        if r.alive:
            for p in r.inputs:
                consumers[p] += 1
    for p in outputs:
        consumers[p] += 1
    for r in raw:  # topological order: a chain of three merges from its start
        if not r.alive or r.op != "mean" or len(r.inputs) != 1:
            continue
        first = raw[r.inputs[0]]
        if not first.alive or first.op != "mean" or len(first.inputs) != 1 or consumers[r.inputs[0]] != 1:
            continue
        r.inputs, r.in_shapes, r.in_shape = list(first.inputs), list(first.in_shapes), first.in_shape
        r.flops += first.flops
        r.params += first.params
        first.alive = False
        first.inputs = []


def _finalise(b: _Builder, name: str, meta: dict) -> CG:
    if b.unknown:
        meta["unknown_ops"] = list(b.unknown)
        warnings.warn(f"from_module: mapped unsupported op(s) to 'other': {', '.join(b.unknown)}", stacklevel=3)
    fuse_activations(b.raw, {})
    merge_reductions(b.raw, b.output_prods)
    cg, dropped_params = assemble(b.raw, b.output_prods, b.output_shape, name, meta)
    leftover = [(k, v) for k, v in b.param_numel.items() if k not in b.claimed]
    extra = sum(v for _, v in leftover) + dropped_params
    if extra:
        cg.output_node.params += extra
        unused = [b.param_names.get(k, "?") for k, _ in leftover][:5]
        warnings.warn(f"from_module: {extra} parameters are not used on the input -> output path "
                      f"({', '.join(unused) or 'dead branches'}); counted on the output node", stacklevel=3)
    return cg


#: torch.fx patches ``nn.Module.__call__`` / ``__getattr__`` process-wide while tracing: one trace at a time
_TRACE_LOCK = threading.Lock()


@contextlib.contextmanager
def _into_wrapped_functions():
    """Trace *into* the functions that libraries hide from symbolic tracing with ``torch.fx.wrap``
    (torchvision's ``shifted_window_attention``, ``stochastic_depth``, ...): they exist because
    plain proxies cannot run their shape-dependent Python, but ours carry concrete shapes.  Left
    wrapped, such a function is one ``other`` node -- a Swin block's attention with its FLOPs
    gone.  torch's own wrapped helpers stay wrapped.  Call with ``_TRACE_LOCK`` held."""
    table = getattr(fx._symbolic_trace, "_wrapped_fns_to_patch", None)
    if not isinstance(table, dict):
        yield
        return
    saved = dict(table)
    for key, frame in saved.items():
        if not str(frame.get("__name__", "")).startswith("torch."):
            del table[key]
    try:
        yield
    finally:
        table.clear()
        table.update(saved)


def from_module(module: nn.Module, input_shape, name: str = "", *, onnx_fallback: bool = True) -> CG:
    """The CG of ``module`` for an input of ``input_shape`` (e.g. ``(1, 3, 32, 32)``, batch first; an
    example input tensor gives its shape).

    Tracing runs on the meta device (no compute, no weights copied) and never modifies
    ``module``.  Calls are serialised by a lock because torch.fx patches ``nn.Module`` methods
    process-wide while it traces: do not run other forward passes in parallel threads.

    A model torch.fx cannot trace (data-dependent control flow, unsupported Python) is, with
    ``onnx_fallback`` (default), exported with ``torch.onnx.export`` (TorchScript tracing of an
    eval-mode copy on one seeded random input, BatchNorm kept) and imported with ``from_onnx``;
    a warning says so and ``cg.meta["fallback"]`` records why.  Tracing records the branch taken
    for that input.  Otherwise, or when the export fails too, raises :class:`CGError` with the
    reason.
    """
    if not isinstance(module, nn.Module):
        raise CGError(f"from_module expects a torch.nn.Module, got {type(module).__name__}")
    if isinstance(input_shape, torch.Tensor):
        input_shape = tuple(input_shape.shape)
    try:
        shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise CGError(f"input_shape must be a tuple of ints like (1, 3, 32, 32), got {input_shape!r}") from None
    if not shape or any(v <= 0 for v in shape):
        raise CGError(f"input_shape must be positive ints like (1, 3, 32, 32), got {input_shape!r}")
    dtype = next((p.dtype for p in module.parameters() if p.is_floating_point()), torch.float32)
    meta_input = torch.empty(shape, device="meta", dtype=dtype)
    root = _Root(module)
    tracer = _Tracer(meta_input)
    try:
        with _TRACE_LOCK, torch.no_grad():
            try:
                with _into_wrapped_functions():
                    graph = tracer.trace(root)
            except Exception:  # noqa: BLE001 - a wrapped function that cannot be traced into stays a call
                tracer = _Tracer(meta_input)
                graph = tracer.trace(root)
    except CGError as exc:
        raise CGError(f"{exc}{_batch_hint(shape)}") from None
    except Exception as exc:  # noqa: BLE001 - any tracing failure is reported the same way
        if isinstance(exc, TraceError):
            reason = str(exc)
        else:
            reason = f"torch.fx failed ({type(exc).__name__}: {first_line(exc)})"
        if onnx_fallback:
            return _via_onnx(module, shape, dtype, name or type(module).__name__, reason)
        raise CGError(f"cannot trace {type(module).__name__}: {reason}; export the model to ONNX "
                      "(torch.onnx.export) and load it with from_onnx instead") from None
    builder = _Builder(tracer, graph, module, batch=shape[0] if len(shape) >= 2 else 1)
    try:
        builder.run()
    except CGError as exc:
        raise CGError(f"{exc}{_batch_hint(shape)}") from None
    meta = {"source": "torch.fx", "module": type(module).__name__, "input_shape": list(shape)}
    return _finalise(builder, name or type(module).__name__, meta)


def _batch_hint(shape: tuple[int, ...]) -> str:
    """A hint for an error with a 3-number ``input_shape``: usually an image's (C, H, W) without the batch."""
    if len(shape) != 3:
        return ""
    return f" (input_shape {shape} has 3 numbers: for an image model pass the batch too, e.g. {(1, *shape)})"


def _via_onnx(module: nn.Module, shape: tuple[int, ...], dtype: torch.dtype, name: str, reason: str) -> CG:
    """:func:`from_module`'s fallback: the CG of ``torch.onnx.export`` of an eval-mode copy of
    ``module`` (the caller's module is never run nor changed)."""
    import copy
    import io

    from engine.graphs.onnx_import import from_onnx

    cls = type(module).__name__
    if any(t.is_meta for t in [*module.parameters(), *module.buffers()]):
        raise CGError(f"cannot trace {cls}: {reason}; the ONNX fallback needs real weights, but the module is on "
                      "the meta device")
    try:
        net = copy.deepcopy(module).eval()
        device = next((t.device for t in [*net.parameters(), *net.buffers()]), torch.device("cpu"))
        x = torch.randn(shape, generator=torch.Generator().manual_seed(0), dtype=dtype).to(device)
        buf = io.BytesIO()
        with _TRACE_LOCK, torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (x,), buf, dynamo=False, do_constant_folding=False, opset_version=17)
        del net
        cg = from_onnx(buf.getvalue(), name, label=f"{cls} (exported to ONNX)")
    except CGError as exc:
        raise CGError(f"cannot trace {cls}: {reason}; the ONNX fallback failed too ({exc})") from None
    except Exception as exc:  # noqa: BLE001 - exporter failures of any kind
        raise CGError(f"cannot trace {cls}: {reason}; the ONNX fallback failed too "
                      f"(torch.onnx.export: {type(exc).__name__}: {first_line(exc)[:300]})") from None
    note = (f"torch.fx could not trace {cls} ({reason[:300]}); imported through torch.onnx.export instead "
            "(TorchScript tracing of one seeded random input: data-dependent branches follow that input)")
    missing = sum(p.numel() for p in module.parameters()) - cg.params
    if missing > 0:  # parameters of branches the traced input did not take; counted as torch.fx does
        cg.output_node.params += missing
        note += f"; {missing} parameters not on the traced path are counted on the output node"
    cg.meta["fallback"] = note
    cg.meta["input_shape"] = list(shape)
    warnings.warn(f"from_module: {note}", stacklevel=3)
    return cg
