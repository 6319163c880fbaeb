"""Computation graphs from ONNX models (``from_onnx``).

Handles what ``torch.onnx.export`` writes with either exporter (TorchScript, ``dynamo=False``;
or the default dynamo / onnxscript exporter), and ordinary opset 11-23 models from elsewhere:

* shapes come from ``onnx.shape_inference`` (with data propagation, so ``Shape -> Gather ->
  Concat -> Reshape`` chains resolve); local functions are inlined first; when some tensors are
  still without a static shape, integer shape arithmetic the inference does not propagate
  (``Div``: a ``chunk`` exported by the TorchScript exporter) is evaluated and the inference
  re-run (:func:`_fold_shape_arithmetic`); a dynamic (symbolic) batch axis is set to 1 first
  (:func:`_pin_input_dims`);
* the op mapping and contraction rules are those of :mod:`engine.graphs.fx_import` (the CG
  conventions): Conv -> conv / depthwise / group_conv; Gemm, and MatMul with a constant
  2-D weight, -> linear (a following ``Add`` of a bias constant is folded into it);
  activation x activation MatMul / Einsum -> matmul; Relu, Clip(0, 6) -> relu6, HardSwish,
  HardSigmoid, Sigmoid, Tanh, Gelu, Softmax; BatchNormalization -> batchnorm; Layer / Group /
  InstanceNormalization -> layernorm; MaxPool / AveragePool; GlobalAveragePool, GlobalMaxPool,
  ReduceMean / ReduceSum / ReduceMax -> mean; Add / Sub -> add, Mul / Div -> mul (contracted
  when only one activation and constants take part; a Mul by an all-zero constant -> zero),
  Concat -> concat;
* shape plumbing is contracted into edges: Reshape, Flatten, Transpose, (Un)Squeeze, Slice,
  Gather on activations, Split, Expand, Pad, Cast, Identity, Dropout, Depth/SpaceToDepth;
  ``Shape`` outputs are constants, so whole ``Shape / Gather / Concat`` chains vanish;
* decomposed activations are recognised: ``x * Sigmoid(x)`` -> silu, ``x * HardSigmoid(x)``
  -> hardswish, ``x * Tanh(Softplus(x))`` (Mish) -> silu, the Erf GELU
  ``x * (1 + Erf(x / sqrt 2)) * 0.5`` and the tanh GELU -> gelu; LeakyRelu, PRelu, Elu, Selu,
  Celu -> relu and Mish -> silu (no ops of their own in the vocabulary; torch.fx maps them alike);
* anything else touching an activation -> ``other`` (one warning naming the op types).

Parameters
----------
ONNX keeps no notion of trainable parameters, so ``params`` = the sizes of the initializers
(and ``Constant`` tensors) read by weighted / norm nodes (Conv W and B, Gemm B and C,
MatMul weight + folded bias, norm scale and bias; BN running statistics excluded), plus
floating-point constants of more than one element combined with activations (cls token,
position embedding).  They are counted **per use**: both exporters de-duplicate initializers
with equal values (e.g. every freshly initialised LayerNorm shares one weight), so counting
unique initializers would undercount; truly shared weights are counted once per use.
Not parameters: the inputs of shape-like ops (``Resize`` scales, ``Reshape`` shapes, ``Pad`` pads)
and the ``ones(G)`` / ``zeros(G)`` of the ``InstanceNormalization`` an exporter writes for
``nn.GroupNorm`` (its real affine is the ``Mul`` / ``Add`` after it, folded into the norm).
The dynamo exporter's optimiser also removes all-zero biases (a fresh ``nn.MultiheadAttention``
in-projection bias, the bias a freshly initialised BN folds into its conv): those are not
counted because they are not in the file.
**Fused BN:** an eval-mode export folds BatchNorm into the preceding Conv (both exporters do
by default): the CG then has no ``batchnorm`` node and the conv gains a bias, so the count is
``params(module) - 2C + C`` per folded BN (C = its channels) when the conv had no bias.  The
file does not say whether a conv bias was folded BN, so this is not undone.  To keep BN --
the CG convention, and what the predictor's training CGs have -- export with
``do_constant_folding=False`` (TorchScript exporter) or ``optimize=False`` (dynamo exporter).
``scripts/onnx_consistency.py`` measures what folding changes in the predictions.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from engine.graphs.cg import CG, CGError, first_line, read_file
from engine.graphs.fx_import import (
    _EMPTY,
    _fold_batch,
    _Info,
    _Raw,
    _unique,
    assemble,
    clamp_op,
    fuse_activations,
    hwc,
    merge_reductions,
    several_outputs,
)
from engine.graphs.ops import conv_kind

Shape = tuple[int, int, int]

__all__ = ["bn_folding_note", "from_onnx"]

MAX_ONNX_BYTES = 2 * 1024 ** 3

_ACT = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax", "LogSoftmax": "softmax",
        "HardSwish": "hardswish", "HardSigmoid": "hardsigmoid", "Gelu": "gelu", "FastGelu": "gelu",
        "Swish": "silu", "BiasGelu": "gelu", "LeakyRelu": "relu", "PRelu": "relu", "Elu": "relu", "Selu": "relu",
        "Celu": "relu", "ThresholdedRelu": "relu", "Mish": "silu"}
_NORM = {"LayerNormalization": "layernorm", "GroupNormalization": "layernorm", "InstanceNormalization": "layernorm",
         "SimplifiedLayerNormalization": "layernorm", "RMSNormalization": "layernorm", "LpNormalization": "layernorm"}
_CONTRACT = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Split", "Expand", "Pad",
             "Cast", "CastLike", "Identity", "Dropout", "DepthToSpace", "SpaceToDepth", "Tile", "Neg",
             "Where", "Trilu", "Concat_shape", "Compress", "GatherND", "GatherElements", "ScatterND",
             "SplitToSequence", "SequenceAt"}
_NON_TENSOR = {"Shape", "Size"}
#: ops whose output is a view or a piece of their data input (see ``_OnnxBuilder.source_tensor``)
_VIEW_OPS = {"Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Split", "Gather", "Cast", "CastLike",
             "Identity", "Dropout", "SplitToSequence", "SequenceAt", "DepthToSpace", "SpaceToDepth"}
_REDUCE = {"ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "GlobalAveragePool", "GlobalMaxPool",
           "GlobalLpPool", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSumExp"}
_FLOAT_TYPES = {1, 10, 11, 16}
#: ops whose data is input 0 only (the other inputs are shapes, indices, pads or a dtype donor)
_DATA_FIRST = {"Reshape", "Expand", "Tile", "Slice", "Pad", "Squeeze", "Unsqueeze", "Split", "CastLike",
               "Resize", "Upsample", "Dropout", "SplitToSequence", "SequenceAt"}
#: ops whose constant output has the (broadcast) value of their first input (small-constant folding)
_VALUE_PRESERVING = {"Cast", "CastLike", "Identity", "Expand", "Reshape", "Squeeze", "Unsqueeze", "Flatten"}  # FLOAT, FLOAT16, DOUBLE, BFLOAT16


def _load(source, label: str = "ONNX model") -> Any:
    import onnx

    if isinstance(source, onnx.ModelProto):
        return source, label
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
    else:
        data, label = read_file(source, MAX_ONNX_BYTES)
    if not data:
        raise CGError(f"{label}: empty file, expected an ONNX model")
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # noqa: BLE001 - protobuf raises several types
        raise CGError(f"{label}: not a valid ONNX model ({type(exc).__name__}: "
                      f"{first_line(exc, 'protobuf decode error')})") from None
    del data
    if not model.graph.node and not model.graph.output:
        raise CGError(f"{label}: not a valid ONNX model (no graph nodes or outputs; is this really an .onnx file?)")
    _drop_payloads(model)
    return model, label


_PAYLOAD_FIELDS = ("raw_data", "float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data")


def _has_payload(tensor) -> bool:
    return any(len(getattr(tensor, f)) for f in _PAYLOAD_FIELDS) and tensor.data_location != 1  # 1: EXTERNAL


def _drop_payloads(model) -> None:
    """Free the values of large initializers (kept: name, type, dims).  A CG needs only their
    shapes -- values are read for small constants (clip bounds, shape arithmetic) only -- and
    ONNX shape inference copies the model, so a 550 MB VGG-16 file peaked at 2.9 GB of memory
    with the weights kept and 1.3 GB without (same CG; 0.7 s instead of 3.3 s)."""
    for init in model.graph.initializer:
        if math.prod(init.dims) > _FOLD_MAX_ELEMENTS:
            for f in _PAYLOAD_FIELDS:
                init.ClearField(f)


class _OnnxBuilder:
    def __init__(self, model, label: str):
        import onnx
        from onnx import numpy_helper

        self.onnx = onnx
        self.numpy_helper = numpy_helper
        self.label = label
        self.graph = model.graph
        self.raw: list[_Raw] = []
        self.info: dict[str, _Info] = {}
        self.shapes: dict[str, list[int | None]] = {}
        self.consts: dict[str, Any] = {}  # name -> TensorProto (initializers and Constant outputs)
        self.values: dict[str, Any] = {}  # name -> small numpy constant (Clip bounds, scalars)
        self.unknown: list[str] = []
        self.source_op: dict[int, str] = {}
        self.out_tensor: dict[int, str] = {}  # raw id -> onnx output name
        self.uses: dict[str, int] = {}
        self.producer: dict[str, Any] = {}  # tensor name -> the node that writes it
        self.nhwc: set[str] = set()  # 4-D tensors in channels-last layout (see infer_layout)
        self.batch = 1

    # --- tensors ---------------------------------------------------------------------------
    def _dims(self, vi) -> list[int | None] | None:
        t = vi.type
        if not t.HasField("tensor_type") or not t.tensor_type.HasField("shape"):
            return None
        return [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.tensor_type.shape.dim]

    def shape_of(self, name: str) -> list[int] | None:
        dims = self.shapes.get(name)
        if dims is None and name in self.consts:
            return list(self.consts[name].dims)
        if dims is None:
            return None
        return [1 if d is None else d for d in dims]

    def hwc_of(self, name: str, fallback: Shape = (1, 1, 1)) -> Shape:
        """The CG shape of tensor ``name``; a first dimension that is a multiple of the batch
        (window attention folds the windows into it) counts into the next one, as in
        ``from_module``, so the per-sample shape keeps every element."""
        dims = self.shape_of(name)
        if dims is None:
            return fallback
        if len(dims) == 4 and name in self.nhwc:
            dims = [dims[0], dims[3], dims[1], dims[2]]
        return hwc(_fold_batch(dims, self.batch))

    def infer_layout(self, node, op: str, ins: list[str]) -> None:
        """Mark ``node``'s 4-D output channels-last, as ``from_module`` does (``_infer_layout``):
        ``Transpose(perm=[0, 2, 3, 1])`` of a ``(B, C, H, W)`` tensor, any other op on a
        channels-last input, or tokens ``(B, N, C)`` reshaped to ``(B, H, W, C)``."""
        if not node.output or not node.output[0]:
            return
        out = node.output[0]
        dims = self.shape_of(out)
        src = next((n for n in ins if n and self.info.get(n, _EMPTY).prods), None)
        sd = self.shape_of(src) if src else None
        if dims is None or len(dims) != 4 or sd is None:
            return
        if op == "Transpose":
            perm = tuple(int(v) for v in self.attrs(node).get("perm", ()))
            if len(sd) == 4 and ((perm == (0, 2, 3, 1) and src not in self.nhwc)
                                 or (perm == (0, 1, 2, 3) and src in self.nhwc)):
                self.nhwc.add(out)
            return
        # tokens (B, N, C) -> (B, H, W, C) with H * W = N (not attention heads (B * h, N, d) -> (B, h, N, d))
        if (len(sd) == 4 and src in self.nhwc) or (len(sd) == 3 and dims[-1] == sd[-1] and dims[1] * dims[2] == sd[1]):
            self.nhwc.add(out)

    def numel(self, name: str) -> int:
        dims = self.shape_of(name)
        return math.prod(dims) if dims is not None else 0

    def const_value(self, name: str):
        """Value of a small constant (<= 64 elements), or None when unknown."""
        if name in self.values:
            return self.values[name]
        t = self.consts.get(name)
        if t is None or math.prod(t.dims) > 64:
            return None
        try:
            value = self.numpy_helper.to_array(t)
        except Exception:  # noqa: BLE001 - external data etc.
            return None
        self.values[name] = value
        return value

    def source_tensor(self, name: str) -> str:
        """The tensor ``name`` is a view or a piece of: followed back through :data:`_VIEW_OPS`
        (their data input), not through ops that add elements (``Pad``, ``Expand``, ``Tile``)."""
        for _ in range(256):
            node = self.producer.get(name)
            if node is None or node.op_type not in _VIEW_OPS or not node.input:
                break
            name = node.input[0]
        return name

    def is_l2_norm_of(self, divisor: str, x: str) -> bool:
        """Whether ``divisor`` is ``ReduceL2`` of ``x`` (through ``Clip`` / ``Max`` to an epsilon,
        ``Expand``, casts): ``Div(x, divisor)`` is then ``F.normalize(x)``, an L2 norm (its
        ``ReduceL2`` and ``Clip`` nodes, left without consumers, are dropped from the CG)."""
        src = self.source_tensor(x)
        name = divisor
        for _ in range(8):
            node = self.producer.get(name)
            if node is None or not node.input:
                return False
            if node.op_type == "ReduceL2":
                return self.source_tensor(node.input[0]) == src
            if node.op_type not in ("Clip", "Max", "Expand", "Cast", "CastLike", "Identity", "Reshape", "Unsqueeze"):
                return False
            name = node.input[0]
        return False

    def clamp_half(self, op: str, ins, act: str, name, pairs, out) -> _Info | None:
        """``x.clamp(0, 6)`` as the dynamo exporter writes it without optimisation: ``Max(x, 0)`` is a
        relu and ``Min(relu, 6)`` (sole consumer) turns it into a relu6 (a hardsigmoid when ``x`` is
        ``y + 3``), as ``Clip(x, 0, 6)`` is."""
        value = self.const_value(ins[1] if ins[0] == act else ins[0])
        if value is None or np.asarray(value).size != 1:
            return None
        c = float(np.asarray(value).reshape(-1)[0])
        if op == "Max" and c == 0.0:
            return self.simple("relu", name, pairs, out, op)
        prods = self.info.get(act, _EMPTY).prods
        if op == "Min" and c == 6.0 and len(prods) == 1 and self.source_op.get(prods[0]) == "Max" \
                and self.raw[prods[0]].op == "relu" and self.uses.get(act, 0) == 1:
            max_node = self.producer.get(act)
            plus_three = max_node is not None and any(self.is_plus_three(n) for n in max_node.input if n)
            self.raw[prods[0]].op = "hardsigmoid" if plus_three else "relu6"  # relu6(x + 3): see Clip
            self.out_tensor[prods[0]] = out
            return self.contract(pairs)
        return None

    def is_group_reshape(self, name: str) -> bool:
        """Whether tensor ``name`` is a ``Reshape`` of an activation into another rank or number of
        channels (dim 1), as exporters write ``nn.GroupNorm``'s ``(N, C, H, W) -> (N, G, -1)``."""
        node = self.producer.get(name)
        if node is None or node.op_type != "Reshape" or not node.input:
            return False
        src, dims = self.shapes.get(node.input[0]), self.shapes.get(name)
        if not src or not dims or len(src) < 3 or len(dims) < 2:
            return False
        return len(dims) != len(src) or (None not in (src[1], dims[1]) and src[1] != dims[1])

    def const_equals(self, ins, idx: int, value: float) -> bool:
        """Whether input ``idx`` is an initializer / Constant whose every element equals ``value``."""
        if idx >= len(ins) or ins[idx] not in self.consts:
            return False
        try:
            arr = self.numpy_helper.to_array(self.consts[ins[idx]])
        except Exception:  # noqa: BLE001 - external data etc.
            return False
        return arr.size > 0 and bool(np.all(arr == value))

    def is_zero_scalar(self, name: str) -> bool:
        """Whether ``name`` is a one-element zero written by a ``Constant`` node (``x * 0.0``), not
        an initializer: a zero-initialised trainable scale (ReZero's ``alpha * f(x)``) is a parameter."""
        producer = self.producer.get(name)
        return (producer is not None and producer.op_type == "Constant" and self.numel(name) <= 1
                and self.const_equals([name], 0, 0))

    def is_plus_three(self, name: str) -> bool:
        """Whether tensor ``name`` is written by ``Add(x, 3)`` (a constant 3, any broadcast shape)."""
        node = self.producer.get(name)
        if node is None or node.op_type != "Add" or len(node.input) != 2:
            return False
        values = [self.const_value(n) for n in node.input]
        known = [v for v in values if v is not None]
        if len(known) != 1 or sum(v is None for v in values) != 1:
            return False
        v = np.asarray(known[0])
        return v.size > 0 and v.dtype.kind in "fiu" and bool(np.all(v == 3))

    def reorders_one_tensor(self, act_names: list[str], out: str) -> bool:
        """A ``Concat`` that puts pieces of one tensor back in another order (``torch.roll`` is
        exported as ``Slice`` + ``Concat``): every input is a piece of the same tensor, which has
        as many elements as the output.  Shape plumbing, contracted (torch.fx contracts roll)."""
        sources = {self.source_tensor(n) for n in act_names}
        if len(sources) != 1:
            return False
        src, out_dims = self.shapes.get(next(iter(sources))), self.shapes.get(out)
        if not src or not out_dims or None in src or None in out_dims:
            return False
        return math.prod(src) == math.prod(out_dims)

    def param_numel(self, ins, idx) -> int:
        """Parameter count carried by input ``idx``: an initializer / Constant, or what flows into it
        from one through contracted ops (Identity aliases, Reshape); computed tensors count 0."""
        if idx >= len(ins) or not ins[idx]:
            return 0
        name = ins[idx]
        if name in self.consts:
            return self.numel(name)
        return sum(self.info.get(name, _EMPTY).pending.values())

    def is_param_like(self, name: str) -> bool:
        t = self.consts.get(name)
        return t is not None and t.data_type in _FLOAT_TYPES and math.prod(t.dims) > 1

    # --- walk --------------------------------------------------------------------------------
    def run(self) -> None:
        g = self.graph
        for init in g.initializer:
            self.consts[init.name] = init
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            dims = self._dims(vi)
            if dims is not None:
                self.shapes[vi.name] = dims
        for node in g.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1
            for name in node.output:
                self.producer[name] = node
        inputs = [vi for vi in g.input if vi.name not in self.consts]
        if not inputs:
            raise CGError(f"{self.label}: the graph has no (non-initializer) input")
        x = inputs[0]
        dims = self.shape_of(x.name)
        if dims is None:
            raise CGError(f"{self.label}: input {x.name!r} has no static shape")
        self.batch = dims[0] if len(dims) >= 2 else 1
        nid = self.emit("input", "input", [], x.name, "input")
        self.info[x.name] = _Info((nid,))
        for init_name in self.consts:
            self.info[init_name] = self.const_info(init_name)
        for node in g.node:
            self.visit(node)
        if not g.output:
            raise CGError(f"{self.label}: the graph has no output")

    def const_info(self, name: str) -> _Info:
        return _Info((), {name: self.numel(name)} if self.is_param_like(name) else {})

    def emit(self, op: str, name: str, pairs: list[tuple[int, Shape]], out_name: str, source: str,
             **kw) -> int:
        inputs: list[int] = []
        shapes: list[Shape] = []
        for p, s in pairs:
            if p not in inputs:
                inputs.append(p)
                shapes.append(s)
        in_default = shapes[0] if shapes else (1, 1, 1)
        out_shape = self.hwc_of(out_name, in_default)
        in_shape = kw.pop("in_shape", None) or (shapes[0] if shapes else out_shape)
        self.raw.append(_Raw(op=op, name=name, inputs=inputs, in_shapes=shapes, out_shape=out_shape,
                             in_shape=in_shape, **kw))
        nid = len(self.raw) - 1
        self.source_op[nid] = source
        self.out_tensor[nid] = out_name
        return nid

    def acts(self, names) -> list[tuple[int, Shape]]:
        pairs: list[tuple[int, Shape]] = []
        for n in names:
            inf = self.info.get(n, _EMPTY)
            if inf.prods:
                shape = self.hwc_of(n, self.raw[inf.prods[0]].out_shape)
                pairs.extend((p, shape) for p in inf.prods)
        return pairs

    def pending(self, names) -> dict[str, int]:
        out: dict[str, int] = {}
        for n in names:
            out.update(self.info.get(n, _EMPTY).pending)
        return out

    def per_sample(self, macs: float) -> int:
        return int(round(macs / max(1, self.batch)))

    def attrs(self, node) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def set_outputs(self, node, info: _Info) -> None:
        for o in node.output:
            if o:
                self.info[o] = info

    def visit(self, node) -> None:
        op = node.op_type
        ins = [n for n in node.input]
        if op == "Constant":
            a = {at.name: at for at in node.attribute}
            if "value" in a:
                self.consts[node.output[0]] = a["value"].t
            else:
                import numpy as np

                for key in ("value_float", "value_floats", "value_int", "value_ints"):
                    if key in a:
                        self.values[node.output[0]] = np.asarray(self.onnx.helper.get_attribute_value(a[key]))
            self.info[node.output[0]] = self.const_info(node.output[0]) if node.output[0] in self.consts else _Info()
            return
        pairs = self.acts([n for n in (ins[:1] if op in _DATA_FIRST else ins) if n])
        if not pairs and op in _VALUE_PRESERVING and ins and ins[0]:
            value = self.const_value(ins[0])
            if value is not None and node.output:
                self.values[node.output[0]] = value
        if not pairs or op in _NON_TENSOR:
            self.set_outputs(node, _Info((), self.pending(ins) if op not in _NON_TENSOR else {}))
            return
        name = node.name or (node.output[0] if node.output else op)
        self.infer_layout(node, op, ins)
        self.set_outputs(node, self.map_node(node, op, name, ins, pairs))

    def simple(self, op, name, pairs, out, source, params=0, **kw) -> _Info:
        return _Info((self.emit(op, name, pairs, out, source, params=params, **kw),))

    def contract(self, pairs, pending=None) -> _Info:
        return _Info(tuple(_unique(p for p, _ in pairs)), pending or {})

    def other(self, node, name, pairs, ins) -> _Info:
        label = node.op_type if not node.domain else f"{node.domain}.{node.op_type}"
        data = ins[:1] if node.op_type in _DATA_FIRST else ins  # Resize's scales / sizes are not parameters
        return self.simple("other", name, pairs, node.output[0], label, params=sum(self.pending(data).values()))

    def map_node(self, node, op, name, ins, pairs) -> _Info:
        out = node.output[0]
        a = self.attrs(node)
        act_names = [n for n in ins if n and self.info.get(n, _EMPTY).prods]
        if op in _ACT:  # PRelu's slope is a parameter
            return self.simple(_ACT[op], name, pairs[:1], out, op, params=self.param_numel(ins, 1))
        if op == "Clip":
            lo = self.const_value(ins[1]) if len(ins) > 1 and ins[1] else a.get("min")
            hi = self.const_value(ins[2]) if len(ins) > 2 and ins[2] else a.get("max")
            kind = clamp_op(lo, hi)
            if kind == "relu6" and self.is_plus_three(ins[0]):
                kind = "hardsigmoid"  # Clip(x + 3, 0, 6) / 6: a hard sigmoid written out (as from_module maps it)
            return self.simple(kind, name, pairs, out, op) if kind else self.other(node, name, pairs, ins)
        if op in ("Max", "Min") and len(ins) == 2 and len(act_names) == 1:
            fused = self.clamp_half(op, ins, act_names[0], name, pairs, out)
            if fused is not None:
                return fused
        if op in ("Conv", "ConvTranspose"):
            return self.conv(node, op, name, ins, pairs, a)
        if op == "Gemm":
            return self.gemm(node, name, ins, pairs, a)
        if op in ("MatMul", "Einsum"):
            return self.matmul(node, op, name, ins, pairs, a)
        if op == "BatchNormalization":
            params = self.param_numel(ins, 1) + self.param_numel(ins, 2)
            return self.simple("batchnorm", name, pairs[:1], out, op, params=params)
        if op in _NORM:
            params = self.param_numel(ins, 1) + self.param_numel(ins, 2)
            if op == "InstanceNormalization" and self.is_group_reshape(ins[0]) \
                    and self.const_equals(ins, 1, 1.0) and self.const_equals(ins, 2, 0.0):
                # nn.GroupNorm exported as Reshape(N, G, -1) -> InstanceNormalization(ones(G), zeros(G))
                # -> Reshape -> Mul(weight) -> Add(bias): the G-element scale and bias are the
                # exporter's constants, the module's affine is the Mul / Add (folded into this norm)
                params = 0
            return self.simple(_NORM[op], name, pairs[:1], out, op, params=params)
        if op in ("MaxPool", "AveragePool", "LpPool"):
            strides = a.get("strides") or [1, 1]
            kind = "maxpool" if op == "MaxPool" else "avgpool"
            return self.simple(kind, name, pairs, out, op, stride=_pair(strides))
        if op in _REDUCE:
            return self.simple("mean", name, pairs, out, op)
        if op in ("Add", "Sub", "Sum"):
            pending = self.pending([n for n in ins if n not in act_names])
            if pending:
                folded = self.fold_bias(act_names, pending)
                if folded is not None:
                    return folded
                return self.simple("add", name, pairs, out, op, params=sum(pending.values()))
            if len(_unique(p for p, _ in pairs)) <= 1:
                return self.contract(pairs)
            return self.simple("add", name, pairs, out, op)
        if op == "Div" and len(ins) == 2 and self.is_l2_norm_of(ins[1], ins[0]):
            return self.simple("layernorm", name, self.acts(ins[:1]), out, "Div")  # F.normalize
        if op == "Mul" and len(act_names) == 1 and len(ins) == 2 and self.is_zero_scalar(ins[1 - ins.index(act_names[0])]):
            return self.simple("zero", name, pairs, out, op)  # x * 0: how the search exports a 'none' edge
        if op in ("Mul", "Div"):
            pending = self.pending([n for n in ins if n not in act_names])
            if pending or len(act_names) >= 2:
                return self.simple("mul", name, pairs, out, op, params=sum(pending.values()))
            return self.contract(pairs)
        if op == "Concat":
            pending = self.pending([n for n in ins if n not in act_names])
            if len([n for n in ins if n]) == 1:
                return self.contract(pairs)
            if not pending and (len(act_names) == 1 or self.reorders_one_tensor(act_names, out)):
                # one activation and constants without parameters: padding (an exporter's F.pad);
                # or pieces of one tensor in another order (torch.roll)
                return self.contract(pairs)
            return self.simple("concat", name, pairs, out, op, params=sum(pending.values()))
        if op == "Gather":  # indexing an activation is shape plumbing; indexing a table by it is a lookup
            if ins and self.info.get(ins[0], _EMPTY).prods:
                return self.contract(self.acts(ins[:1]))
            return self.other(node, name, pairs, ins)
        if op in _CONTRACT:
            return self.contract(pairs, {})
        if op == "Erf":
            return self.simple("other", name, pairs, out, "Erf")
        if op == "Pow":
            return self.simple("other", name, pairs, out, "Pow")
        return self.other(node, name, pairs, ins)

    # --- weighted ops ----------------------------------------------------------------------
    def conv(self, node, op, name, ins, pairs, a) -> _Info:
        out = node.output[0]
        w = self.shape_of(ins[1]) if len(ins) > 1 else None
        if w is None or len(w) < 3:
            return self.other(node, name, pairs, ins)
        groups = int(a.get("group", 1))
        k = w[2:]
        if op == "ConvTranspose":
            cin, cout = w[0], w[1] * groups
            x = self.shape_of(ins[0])
            macs = (math.prod(x) if x else 0) * (cout // groups) * math.prod(k)
        else:
            cin, cout = w[1] * groups, w[0]
            y = self.shape_of(out)
            macs = (math.prod(y) if y else 0) * (cin // groups) * math.prod(k)
        kh, kw = (k[-2], k[-1]) if len(k) >= 2 else (k[0], 1)
        kind = conv_kind(groups, cin, cout)
        bias = self.param_numel(ins, 2)
        params = self.param_numel(ins, 1) + bias
        has_bias = bias > 0
        return self.simple(kind, name, self.acts(ins[:1]), out, op, params=params,
                           weight=(int(cin), int(cout), int(kh), int(kw)), groups=groups,
                           stride=_pair(a.get("strides")), dilation=_pair(a.get("dilations")), bias=has_bias,
                           flops=2 * self.per_sample(macs))

    def gemm(self, node, name, ins, pairs, a) -> _Info:
        out = node.output[0]
        act_b = len(ins) > 1 and bool(self.info.get(ins[1], _EMPTY).prods)
        bshape = self.shape_of(ins[1]) if len(ins) > 1 else None
        if act_b or bshape is None or len(bshape) != 2:
            return self.matmul(node, "Gemm", name, ins, pairs, a)
        k, n = (bshape[1], bshape[0]) if a.get("transB", 0) else (bshape[0], bshape[1])
        y = self.shape_of(out)
        macs = (math.prod(y) if y else n) * k
        bias = self.param_numel(ins, 2)
        params = self.param_numel(ins, 1) + bias
        has_bias = bias > 0
        return self.simple("linear", name, self.acts(ins[:1]), out, "Gemm", params=params,
                           weight=(int(k), int(n), 1, 1), bias=has_bias, flops=2 * self.per_sample(macs))

    def matmul(self, node, op, name, ins, pairs, a) -> _Info:
        out = node.output[0]
        y = self.shape_of(out)
        out_numel = math.prod(y) if y else 0
        operands = [n for n in ins if n]
        if op == "Einsum":
            eq = a.get("equation", b"")
            eq = eq.decode() if isinstance(eq, bytes) else str(eq)
            sizes: dict[str, int] = {}
            for term, nm in zip(eq.replace(" ", "").split("->")[0].split(","), operands):
                dims = self.shape_of(nm)
                if dims and "." not in term and len(term) == len(dims):
                    sizes.update({ch: int(d) for ch, d in zip(term, dims)})
            macs = math.prod(sizes.values()) if sizes else out_numel
        else:
            first = self.shape_of(operands[0]) if operands else None
            macs = out_numel * (first[-1] if first else 1)
        if op == "MatMul" and len(operands) == 2 and not self.info.get(operands[1], _EMPTY).prods:
            wshape = self.shape_of(operands[1])
            # the weight: an initializer, or one passed through shape ops (an unoptimised export
            # computes ``Transpose(W)`` at run time)
            carried = sum(self.pending(operands[1:]).values())
            if wshape is not None and len(wshape) == 2 and (
                    operands[1] in self.consts or carried == math.prod(wshape) > 0):
                nid = self.emit("linear", name, self.acts(operands[:1]), out, op,
                                weight=(int(wshape[0]), int(wshape[1]), 1, 1),
                                params=self.numel(operands[1]) if operands[1] in self.consts else carried,
                                flops=2 * self.per_sample(macs))
                return _Info((nid,))
        params = sum(self.pending([n for n in operands if not self.info.get(n, _EMPTY).prods]).values())
        return self.simple("matmul", name, pairs, out, op, params=params, flops=2 * self.per_sample(macs))

    def fold_bias(self, act_names, pending) -> _Info | None:
        """``MatMul(x, W) + b`` / ``Conv(x, W) + b``: fold the constant ``b`` into the producer
        (``b`` may be assembled from several tensors: BEiT's ``cat(q_bias, zeros, v_bias)``)."""
        if len(act_names) != 1 or not pending:
            return None
        src = act_names[0]
        prods = self.info.get(src, _EMPTY).prods
        if len(prods) != 1:
            return None
        r = self.raw[prods[0]]
        if r.bias or r.op not in ("linear", "conv", "depthwise", "group_conv") or self.out_tensor.get(prods[0]) != src:
            return None
        if self.uses.get(src, 0) != 1 or r.weight is None:
            return None
        bsize = sum(pending.values())
        if bsize != r.weight[1]:
            return None
        r.bias = True
        r.params += bsize
        return _Info((prods[0],))


def _pair(v, default: int = 1) -> tuple[int, int]:
    if v is None:
        return (default, default)
    v = [int(x) for x in v]
    if not v:
        return (default, default)
    return (v[0], 1) if len(v) == 1 else (v[-2], v[-1])


# ---------------------------------------------------------------------------------------------
# pattern fusion: decomposed activations
# ---------------------------------------------------------------------------------------------

#: integer ops that :func:`_fold_shape_arithmetic` evaluates when all their inputs are known
_FOLD_OPS = {"Shape", "Size", "Gather", "Add", "Sub", "Mul", "Div", "Mod", "Concat", "Unsqueeze", "Squeeze", "Slice",
             "Cast", "Reshape", "Identity", "Neg", "Abs", "Max", "Min", "ReduceProd", "Range", "Equal", "Where",
             "Transpose", "ConstantOfShape", "Expand", "Tile", "Less", "Greater", "LessOrEqual", "GreaterOrEqual",
             "Not", "And", "Or", "Floor", "Ceil", "Sqrt", "ReduceSum", "ReduceMax", "ReduceMin", "Clip"}
_FOLD_MAX_ELEMENTS = 1024
_MAX_FOLD_ROUNDS = 64


def _has_unknown_dims(model) -> bool:
    for vi in list(model.graph.value_info) + list(model.graph.output):
        t = vi.type
        if t.HasField("tensor_type") and t.tensor_type.HasField("shape"):
            if any(not (d.HasField("dim_value") and d.dim_value > 0) for d in t.tensor_type.shape.dim):
                return True
        elif t.HasField("tensor_type"):
            return True
    return False


def onnx_numpy(tensor):
    from onnx import numpy_helper

    return numpy_helper.to_array(tensor)


_COMPARE = {"Less": np.less, "Greater": np.greater, "LessOrEqual": np.less_equal,
            "GreaterOrEqual": np.greater_equal, "And": np.logical_and, "Or": np.logical_or}


def _fold_value(op: str, args: list, attrs: dict, opset: int):
    """numpy evaluation of one integer shape op (see :data:`_FOLD_OPS`); None when not handled."""
    import numpy as np

    def axes_arg(i):  # axes: an input from opset 13 (Unsqueeze / Squeeze / ReduceProd 18), else an attribute
        if len(args) > i and args[i] is not None:
            return [int(v) for v in np.asarray(args[i]).reshape(-1)]
        return [int(v) for v in attrs["axes"]] if "axes" in attrs else None

    a = args[0] if args else None
    if op in ("Identity", "Cast"):
        return a
    if op in ("Add", "Sub", "Mul"):
        return {"Add": np.add, "Sub": np.subtract, "Mul": np.multiply}[op](a, args[1])
    if op == "Div":  # integer division truncates toward zero; float division is exact (x / s before a ceil)
        q = np.true_divide(a, args[1])
        kind = np.result_type(a, args[1])
        return q.astype(kind) if kind.kind == "f" else np.trunc(q).astype(kind)
    if op == "Mod":  # fmod=0: the sign of the divisor (Python's %); fmod=1: of the dividend
        return np.fmod(a, args[1]) if attrs.get("fmod", 0) else np.mod(a, args[1])
    if op in ("Neg", "Abs"):
        return -a if op == "Neg" else np.abs(a)
    if op == "Clip":  # max(x, 0) in a "same" padding computation (timm's Conv2dSame, TorchScript export)
        lo = args[1] if len(args) > 1 and args[1] is not None else attrs.get("min")
        hi = args[2] if len(args) > 2 and args[2] is not None else attrs.get("max")
        out = np.asarray(a)
        if lo is not None:
            out = np.maximum(out, np.asarray(lo, dtype=out.dtype))
        if hi is not None:
            out = np.minimum(out, np.asarray(hi, dtype=out.dtype))
        return out
    if op in ("Max", "Min"):
        out = args[0]
        for v in args[1:]:
            out = np.maximum(out, v) if op == "Max" else np.minimum(out, v)
        return out
    if op == "Gather":
        return np.take(a, args[1], axis=int(attrs.get("axis", 0)))
    if op == "Concat":
        return np.concatenate([np.atleast_1d(v) for v in args], axis=int(attrs.get("axis", 0)))
    if op == "Unsqueeze":
        out = a
        axes = axes_arg(1) or []
        rank = np.ndim(a) + len(axes)
        for ax in sorted(x % rank for x in axes):
            out = np.expand_dims(out, ax)
        return out
    if op == "Squeeze":
        axes = axes_arg(1)
        return np.squeeze(a) if axes is None else np.squeeze(a, axis=tuple(x % np.ndim(a) for x in axes))
    if op == "Slice":
        if opset < 10:
            starts, ends, axes, steps = attrs["starts"], attrs["ends"], attrs.get("axes"), None
        else:
            starts, ends = args[1], args[2]
            axes = args[3] if len(args) > 3 and args[3] is not None else None
            steps = args[4] if len(args) > 4 and args[4] is not None else None
        starts, ends = np.asarray(starts).reshape(-1), np.asarray(ends).reshape(-1)
        axes = list(range(starts.size)) if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
        steps = [1] * starts.size if steps is None else [int(v) for v in np.asarray(steps).reshape(-1)]
        index = [slice(None)] * np.ndim(a)
        for st, en, ax, sp in zip(starts, ends, axes, steps):
            lim = a.shape[ax]
            en = int(max(min(int(en), lim), -lim - 1))  # INT64_MAX / INT64_MIN mean "to the end"
            index[ax] = slice(int(max(min(int(st), lim), -lim - 1)), en, sp)
        return a[tuple(index)]
    if op == "Reshape":
        shape = [int(v) for v in np.asarray(args[1]).reshape(-1)]
        if not attrs.get("allowzero", 0):
            shape = [a.shape[i] if v == 0 else v for i, v in enumerate(shape)]
        return np.reshape(a, shape)
    if op == "ReduceProd":
        axes = axes_arg(1)
        keep = bool(attrs.get("keepdims", 1))
        return np.prod(a, axis=None if axes is None else tuple(axes), keepdims=keep)
    # ops that create tensors: nothing larger than a shape computation is built
    if op == "Range":
        if abs((float(args[1]) - float(a)) / float(args[2] or 1)) > _FOLD_MAX_ELEMENTS:
            return None
        return np.arange(a, args[1], args[2])
    if op == "Transpose":
        return np.transpose(a, attrs.get("perm"))
    if op == "ConstantOfShape":
        shape = [int(v) for v in np.asarray(a).reshape(-1)]
        if math.prod(shape) > _FOLD_MAX_ELEMENTS:
            return None
        fill = attrs.get("value")
        value = onnx_numpy(fill).reshape(-1)[0] if fill is not None else np.float32(0)
        return np.full(shape, value)
    if op == "Expand":
        shape = [int(v) for v in np.asarray(args[1]).reshape(-1)]
        out_shape = np.broadcast_shapes(np.shape(a), tuple(shape))  # ONNX Expand broadcasts both ways
        if math.prod(out_shape) > _FOLD_MAX_ELEMENTS:
            return None
        return np.broadcast_to(a, out_shape).copy()
    if op == "Tile":
        reps = [int(v) for v in np.asarray(args[1]).reshape(-1)]
        if np.size(a) * math.prod(reps) > _FOLD_MAX_ELEMENTS:
            return None
        return np.tile(a, reps)
    if op in _COMPARE:
        return _COMPARE[op](a, args[1])
    if op == "Not":
        return np.logical_not(a)
    if op in ("Floor", "Ceil", "Sqrt"):
        return {"Floor": np.floor, "Ceil": np.ceil, "Sqrt": np.sqrt}[op](a)
    if op in ("ReduceSum", "ReduceMax", "ReduceMin"):
        axes = axes_arg(1)
        keep = bool(attrs.get("keepdims", 1))
        fn = {"ReduceSum": np.sum, "ReduceMax": np.max, "ReduceMin": np.min}[op]
        return fn(a, axis=None if axes is None else tuple(axes), keepdims=keep)
    if op == "Equal":
        return np.equal(a, args[1])
    if op == "Where":
        return np.where(a, args[1], args[2])
    return None


def _fold_shape_arithmetic(model, inferred):
    """Replace integer shape computations with their values, as initializers.

    Exporters compute split sizes and reshape targets at run time (``x.chunk(2, 1)`` becomes
    ``Shape -> Gather -> Add -> Div -> Mul -> Slice`` in the TorchScript exporter), and ONNX
    shape inference does not propagate values through all of that (``Div``): the ``Slice``
    output, and every tensor after it, then has no static shape, and the convs there would get
    FLOPs of a 1x1x1 input.  This evaluates, in graph order, every :data:`_FOLD_OPS` node whose
    inputs are all known -- integer initializers and ``Constant`` nodes, and ``Shape`` / ``Size``
    of tensors with a static shape in ``inferred`` -- and whose value is a small integer or
    boolean tensor, and returns a copy of ``model`` with those nodes replaced by initializers
    (None when nothing was folded).  Float computations are never folded (they may be
    parameters), so parameter counts do not change -- except a ``Resize``'s scales, which are
    never parameters (``F.interpolate(scale_factor=2)`` exports them as a Concat of constants;
    unfolded, everything after the Resize had no static shape)."""
    import numpy as np
    import onnx
    from onnx import numpy_helper

    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=13)
    g = model.graph
    static: dict[str, list[int]] = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        t = vi.type
        if t.HasField("tensor_type") and t.tensor_type.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None for d in t.tensor_type.shape.dim]
            if all(d is not None for d in dims):
                static[vi.name] = dims

    def small_int(v) -> bool:
        return isinstance(v, np.ndarray) and v.size <= _FOLD_MAX_ELEMENTS and v.dtype.kind in "iub"

    def small(v) -> bool:  # values that may be read (float arithmetic on sizes); only integers are folded
        return isinstance(v, np.ndarray) and v.dtype.kind in "iubf" and (
            v.size <= _FOLD_MAX_ELEMENTS if v.dtype.kind != "f" else v.size <= 16)

    # float values that are scales / sizes of a Resize (TorchScript writes F.interpolate's scales
    # as Concat(Constant [1, 1], Constant [2, 2])): never parameters, so they may be folded too
    resize_args = {n.input[k] for n in g.node if n.op_type in ("Resize", "Upsample")
                   for k in range(1, len(n.input)) if n.input[k]}
    known: dict[str, Any] = {}
    for init in g.initializer:
        if init.data_type in (onnx.TensorProto.INT64, onnx.TensorProto.INT32) and math.prod(init.dims) <= _FOLD_MAX_ELEMENTS:
            known[init.name] = numpy_helper.to_array(init)
        elif init.data_type in _FLOAT_TYPES and math.prod(init.dims) <= 16 and _has_payload(init):
            known[init.name] = numpy_helper.to_array(init)
    folded: dict[int, Any] = {}
    for i, node in enumerate(g.node):
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        value = None
        try:
            if node.op_type == "Constant":
                if "value" in attrs:
                    value = numpy_helper.to_array(attrs["value"])
                elif "value_int" in attrs or "value_ints" in attrs:
                    value = np.asarray(attrs.get("value_int", attrs.get("value_ints")), dtype=np.int64)
                if value is not None and small(value):
                    known[node.output[0]] = value
                continue
            if node.op_type not in _FOLD_OPS or not node.input or len(node.output) != 1:
                continue
            if node.op_type in ("Shape", "Size"):
                dims = static.get(node.input[0])
                if dims is None:
                    continue
                if node.op_type == "Size":
                    value = np.asarray(math.prod(dims), dtype=np.int64)
                else:
                    start, end = attrs.get("start", 0), attrs.get("end", len(dims))
                    value = np.asarray(dims[start:end], dtype=np.int64)
            else:
                if any(n and n not in known for n in node.input):
                    continue
                value = _fold_value(node.op_type, [known[n] if n else None for n in node.input], attrs, opset)
                if node.op_type == "Cast" and value is not None:
                    value = np.asarray(value).astype(onnx.helper.tensor_dtype_to_np_dtype(attrs["to"]))
        except Exception:  # noqa: BLE001 - anything unexpected: leave the node to shape inference
            continue
        if value is not None:
            value = np.asarray(value)
            if small(value):
                known[node.output[0]] = value
            if small_int(value) or (small(value) and node.output[0] in resize_args):
                folded[i] = value
    if not folded:
        return None
    out = onnx.ModelProto()
    out.CopyFrom(model)
    kept = [n for i, n in enumerate(model.graph.node) if i not in folded]
    del out.graph.node[:]
    out.graph.node.extend(kept)
    for i, value in folded.items():
        out.graph.initializer.append(numpy_helper.from_array(value, name=model.graph.node[i].output[0]))
    return out


def _pin_input_dims(model, copy: bool):
    """Set the graph inputs' symbolic or unknown dimensions (a dynamic batch axis) to 1 -- what
    the CG assumes anyway (:meth:`_OnnxBuilder.shape_of`) -- so that shape inference gives static
    shapes everywhere: with a symbolic batch, a TorchScript-exported ``chunk`` and attention
    reshapes kept no static shape and the convs after them got the FLOPs of a 1x1 input.
    ``copy``: leave ``model`` (the caller's) unchanged and return a modified copy."""
    inits = {t.name for t in model.graph.initializer}

    def loose(vi) -> list:
        t = vi.type
        if not (t.HasField("tensor_type") and t.tensor_type.HasField("shape")):
            return []
        return [d for d in t.tensor_type.shape.dim if not (d.HasField("dim_value") and d.dim_value > 0)]

    if not any(loose(vi) for vi in model.graph.input if vi.name not in inits):
        return model
    if copy:
        import onnx

        pinned = onnx.ModelProto()
        pinned.CopyFrom(model)
        model = pinned
    for vi in model.graph.input:
        if vi.name not in inits:
            for d in loose(vi):
                d.dim_value = 1
    return model


def from_onnx(source, name: str = "", *, label: str | None = None) -> CG:
    """The CG of an ONNX model given as a path, raw bytes or an ``onnx.ModelProto``.

    ``label`` names raw bytes in error messages (e.g. the uploaded file's name).  Raises
    :class:`CGError` for unreadable input (names the file and the problem).
    """
    import onnx

    model, label = _load(source, label or "ONNX model")
    model = _pin_input_dims(model, copy=model is source)
    if model.functions:
        try:
            from onnx import inliner

            model = inliner.inline_local_functions(model)
        except Exception as exc:  # noqa: BLE001
            raise CGError(f"{label}: cannot inline the model's local functions ({exc})") from None
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # noqa: BLE001 - shape inference errors are model errors
        warnings.warn(f"from_onnx: shape inference failed ({first_line(exc, type(exc).__name__)}); "
                      "using the shapes stored in the model", stacklevel=2)
        inferred = model
    else:
        # e.g. a chunk / split whose sizes are computed at run time: evaluate the shape arithmetic
        # and infer again, until every shape is static or nothing more folds (each round can
        # resolve the shapes that the next split's arithmetic reads)
        for _ in range(_MAX_FOLD_ROUNDS):
            if not _has_unknown_dims(inferred):
                break
            folded = _fold_shape_arithmetic(model, inferred)
            if folded is None:
                break
            try:
                inferred = onnx.shape_inference.infer_shapes(folded, data_prop=True)
            except Exception:  # noqa: BLE001 - keep the last inference
                break
            model = folded
    b = _OnnxBuilder(inferred, label)
    b.run()
    fuse_activations(b.raw, b.source_op)
    out_name = b.graph.output[0].name
    out_info = b.info.get(out_name, _EMPTY)
    if len(b.graph.output) > 1:
        names = ", ".join(repr(o.name) for o in b.graph.output[:4])
        warnings.warn(several_outputs(f"from_onnx: {label} has {len(b.graph.output)} outputs ({names})",
                                      repr(out_name), "Export the model with"), stacklevel=2)
    merge_reductions(b.raw, out_info.prods)
    if not out_info.prods:
        raise CGError(f"{label}: the model's output {out_name!r} does not depend on its input")
    # nodes on a path to the output (others, e.g. the ReduceL2 of an F.normalize, are dropped)
    used, stack = set(), list(out_info.prods)
    while stack:
        i = stack.pop()
        if i not in used:
            used.add(i)
            stack.extend(b.raw[i].inputs)
    unknown = _unique(b.source_op[i] for i, r in enumerate(b.raw) if r.alive and r.op == "other" and i in used)
    meta: dict[str, Any] = {"source": "onnx", "producer": f"{model.producer_name} {model.producer_version}".strip(),
                            "opset": max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")),
                                         default=0)}
    if unknown:
        meta["unknown_ops"] = unknown
        warnings.warn(f"from_onnx: mapped unsupported op(s) to 'other': {', '.join(unknown)}", stacklevel=2)
    graph_name = name or model.graph.name or (Path(label).stem if label != "ONNX model" else "onnx")
    cg, dropped = assemble(b.raw, out_info.prods, b.hwc_of(out_name, b.raw[out_info.prods[0]].out_shape),
                           graph_name, meta, source="from_onnx")
    if dropped:
        cg.output_node.params += dropped
    return cg


_CONV_OPS = ("conv", "depthwise", "group_conv")


def bn_folding_note(cgs) -> str | None:
    """A notice for imported ONNX CGs whose convs all have a bias and that have no ``batchnorm``
    node -- what an eval-mode export of a BatchNorm network looks like (and a plain network such
    as VGG too: the file cannot tell them apart), or None when no CG looks like that."""
    suspects = 0
    for cg in cgs:
        convs = [n for n in cg.nodes if n.op in _CONV_OPS]
        if convs and all(n.bias for n in convs) and not any(n.op == "batchnorm" for n in cg.nodes):
            suspects += 1
    if not suspects:
        return None
    return (f"{suspects} of {len(cgs)} ONNX model(s) have a bias on every convolution and no BatchNorm: if those "
            "networks use BatchNorm, the export folded it into the convolutions (the default in eval mode). The "
            "predictor's training graphs keep BatchNorm as nodes; to match them, export with "
            "do_constant_folding=False (torch.onnx.export, TorchScript exporter) or optimize=False (dynamo=True).")
