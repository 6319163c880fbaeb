"""The fixed op vocabulary of a Computation Graph (CG).

Every CG node carries exactly one of these op names.  The order is part of the
feature format (one-hot index), so only ever *append* new ops and bump
``engine.graphs.cg.FEATURE_VERSION``.

Reference: GENNAPE (AAAI-23), "Methodology": nodes are atomic operators
(convolution, linear, pooling, non-linearities, tensor ops such as mean, add,
concat); edges are directed, featureless data flow.
"""

from __future__ import annotations

# name -> one-line meaning (documentation and UI tooltips)
OP_DOCS: dict[str, str] = {
    "input": "graph input (exactly one per CG)",
    "output": "graph output (exactly one per CG; identity on the logits)",
    "conv": "dense 2-D convolution (groups == 1)",
    "depthwise": "depthwise 2-D convolution (groups == C_in == C_out / multiplier)",
    "group_conv": "grouped 2-D convolution (1 < groups < C_in)",
    "linear": "fully connected layer (weights), also 1-D token-wise linear in ViTs",
    "matmul": "activation x activation matrix product (attention), no weights",
    "batchnorm": "batch normalisation (affine params counted)",
    "layernorm": "layer / group / instance normalisation",
    "relu": "ReLU",
    "relu6": "ReLU6 (clamped ReLU)",
    "hardswish": "h-swish  x * relu6(x + 3) / 6",
    "hardsigmoid": "h-sigmoid relu6(x + 3) / 6",
    "sigmoid": "logistic sigmoid",
    "silu": "SiLU / swish  x * sigmoid(x)",
    "gelu": "GELU",
    "tanh": "tanh",
    "softmax": "softmax (attention weights)",
    "add": "element-wise sum of >= 2 tensors (residuals, cell nodes)",
    "mul": "element-wise product of >= 2 tensors (SE gates)",
    "concat": "channel concatenation",
    "mean": "global average pool / reduce-mean over spatial or token dims",
    "maxpool": "max pooling (k x k window)",
    "avgpool": "average pooling (k x k window)",
    "identity": "explicit identity (kept when it marks structure, e.g. DARTS skip)",
    "zero": "zero op (output * 0)",
    "other": "anything not in this vocabulary (a warning names the source op)",
}

OPS: tuple[str, ...] = tuple(OP_DOCS)
OP_INDEX: dict[str, int] = {name: i for i, name in enumerate(OPS)}

#: ops that own a weight tensor (C_in, C_out, kH, kW)
WEIGHTED_OPS: frozenset[str] = frozenset({"conv", "depthwise", "group_conv", "linear"})

#: ops whose FLOPs are counted (2 x multiply-accumulates)
COMPUTE_OPS: frozenset[str] = frozenset({"conv", "depthwise", "group_conv", "linear", "matmul"})

#: display colours for the UI (CG views); one per op family
OP_COLOURS: dict[str, str] = {
    "input": "#2b2d42", "output": "#2b2d42",
    "conv": "#d62828", "depthwise": "#f77f00", "group_conv": "#e76f51", "linear": "#9d0208",
    "matmul": "#6a040f",
    "batchnorm": "#457b9d", "layernorm": "#1d3557",
    "relu": "#2a9d8f", "relu6": "#2a9d8f", "hardswish": "#52b788", "hardsigmoid": "#52b788",
    "sigmoid": "#74c69d", "silu": "#40916c", "gelu": "#1b4332", "tanh": "#95d5b2",
    "softmax": "#b7e4c7",
    "add": "#7209b7", "mul": "#b5179e", "concat": "#560bad",
    "mean": "#ffb703", "maxpool": "#fb8500", "avgpool": "#ffd166",
    "identity": "#adb5bd", "zero": "#dee2e6", "other": "#6c757d",
}


def op_index(name: str) -> int:
    """Index of ``name`` in :data:`OPS`; raises ``KeyError`` listing the choices."""
    try:
        return OP_INDEX[name]
    except KeyError:
        raise KeyError(f"unknown op {name!r}; expected one of {', '.join(OPS)}") from None


def conv_kind(groups: int, cin: int, cout: int) -> str:
    """The CG op of a convolution: ``conv`` (one group), ``depthwise`` (a group per input channel,
    any channel multiplier) or ``group_conv`` (the rest)."""
    if groups == 1:
        return "conv"
    if groups == cin and cout % cin == 0:
        return "depthwise"
    return "group_conv"
