"""CG -> ``torch.nn.Module`` interpreter: feasibility by construction.

The paper's search ("Applying GENNAPE to NAS") mutates CGs; the authors' bottleneck was
checking that a mutated CG is still a network one can build.  :func:`interpret` builds the
network a CG describes; a CG that cannot be built raises :class:`InfeasibleCG` with the node
and the reason, and :func:`check_feasible` also runs a forward pass.

Representation of activations inside the built module (matches ``from_module``'s shape rules,
so ``from_module(interpret(cg), shape)`` reproduces ``cg``):

* spatial maps are ``[B, C, H, W]``, and so are token tensors ``(N, 1, D)`` (``[B, D, N, 1]``);
* channel-last ops (linear, layernorm) act on ``C`` at every position of such a map and return a
  map of the node's ``out_shape`` (``permute`` to ``[B, H, W, C]`` and back, which ``from_module``
  reads as channels-last: a ConvNeXt LayerNorm / MLP, a ViT block on tokens, or a GroupNorm /
  InstanceNorm, which the importers also record as ``layernorm`` on ``(H, W, C)``);
* ``(1, 1, C)`` tensors feeding a linear or a layernorm are flattened to ``[B, C]``.

A forward pass that fails names the CG node it failed at (:func:`check_feasible`).

Not buildable (rejected with a reason): ``matmul`` (the CG does not record the attention
head layout) and ``other`` (unknown semantics).  ``identity`` is built as a plain pass-through and
therefore disappears from a re-traced CG (the one exception to the round trip; none of the nine
families has identity nodes, ``tests/test_search_roundtrip.py`` checks all of them).

Pooling kernels are not part of a CG (as in the authors' format); the interpreter uses
``k = 3, padding = 1`` when that reproduces the recorded output size, else ``k = stride``.

Edges that carry a contracted shape op (CG convention: slices, ``F.pad`` and reshapes are
contracted into edges) are rebuilt from the reading node's ``in_shape``:

* ``in_shape`` smaller than the producer's output in every dimension -> a slice (channels
  ``[:C]``, spatial rows / columns from the end, e.g. DARTS' ``FactorizedReduce`` ``x[:, :, 1:, 1:]``;
  the CG does not record the offset, and the fingerprint does not depend on it);
* larger spatially with equal channels (convs / pools only) -> zero padding;
* equal element count, different shape -> a reshape (e.g. ``flatten`` before a linear);
* an ``add`` / ``mul`` input larger than the node's output -> a slice to the output shape
  (NB-101's channel truncation); size-1 dimensions broadcast.

Consequence for mutation operators: a consumer left reading *fewer* channels than its producer
now makes is a legal slice, not an error; reading *more* is rejected.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from engine.graphs.cg import CG, CGError, conv_out_size

_ACTS = {
    "relu": nn.ReLU, "relu6": nn.ReLU6, "hardswish": nn.Hardswish, "hardsigmoid": nn.Hardsigmoid,
    "sigmoid": nn.Sigmoid, "silu": nn.SiLU, "gelu": nn.GELU, "tanh": nn.Tanh,
}


class InfeasibleCG(CGError):
    """The CG does not describe a network that can be built (message names node and reason)."""


def _solve_padding(size_in: int, size_out: int, k: int, s: int, d: int) -> int | None:
    for p in range(0, k * d + 1):
        if conv_out_size(size_in, k, s, p, d) == size_out:
            return p
    return None


class _Mean(nn.Module):
    def forward(self, x):
        return x.mean((2, 3), keepdim=True)


class _Zero(nn.Module):
    def forward(self, x):
        # ``x * 0``, not ``zeros_like(x)``: an ONNX export then keeps the zeros computed from the
        # network's input (a Mul by a zero constant, read back as a ``zero`` node) instead of a
        # constant tensor, which from_onnx would take for a parameter and whose consumers it would drop
        return x * 0.0


class _Adapt(nn.Module):
    """A contracted shape op on an edge: slice, pad or reshape a ``[B, C, H, W]`` tensor to ``hwc``."""

    def __init__(self, kind: str, hwc: tuple[int, int, int]):
        super().__init__()
        self.kind = kind
        self.hwc = tuple(hwc)

    def forward(self, x):
        h, w, c = self.hwc
        if x.dim() != 4:
            x = x.reshape(x.shape[0], -1, 1, 1)
        if self.kind == "reshape":
            return x.reshape(x.shape[0], c, h, w)
        if self.kind == "pad":
            dh, dw = h - x.shape[2], w - x.shape[3]
            return nn.functional.pad(x, (dw // 2, dw - dw // 2, dh // 2, dh - dh // 2))
        return x[:, :c, x.shape[2] - h:, x.shape[3] - w:]


def _adapter(src: tuple, tgt: tuple, may_pad: bool) -> _Adapt | None | str:
    """The edge op turning a producer's ``src`` shape into a reader's ``tgt`` (None: none needed;
    a string: why it is impossible)."""
    src, tgt = tuple(src), tuple(tgt)
    if src == tgt:
        return None
    if all(t <= s for s, t in zip(src, tgt)):
        return _Adapt("slice", tgt)
    if may_pad and src[2] == tgt[2] and all(t >= s for s, t in zip(src[:2], tgt[:2])):
        return _Adapt("pad", tgt)
    if math.prod(src) == math.prod(tgt):
        return _Adapt("reshape", tgt)
    return f"reads shape {tgt} but its input produces {src}"


class _ChannelLast(nn.Module):
    """Wrap a channel-last module (Linear, LayerNorm) for any input rank (see module doc).

    A ``[B, C, H, W]`` input gives a ``[B, C', H, W]`` output (the op applied to the channels at
    every position); with ``flatten`` (a linear reading ``(1, 1, C)``) a ``[B, C']`` one."""

    def __init__(self, inner: nn.Module, flatten: bool = False):
        super().__init__()
        self.inner = inner
        self.flatten = flatten

    def forward(self, x):
        if x.dim() != 4:
            return self.inner(x)
        if self.flatten:
            return self.inner(x.flatten(1))
        return self.inner(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class _ChannelParam(nn.Module):
    """``x * w`` (``mul``) or ``x + w`` (``add``) with a learnt ``w`` of shape ``(C, 1, 1)`` (one value
    per channel: a layer scale) or ``(C, H, W)`` (one per element: a position embedding), on a
    ``[B, C, H, W]`` map, or flattened on a ``[B, C]`` vector."""

    def __init__(self, shape: tuple[int, int, int], op: str):
        super().__init__()
        self.op = op
        self.weight = nn.Parameter(torch.ones(shape) if op == "mul" else torch.zeros(shape))

    def forward(self, x):
        w = self.weight if x.dim() == 4 else self.weight.flatten()
        return x * w if self.op == "mul" else x + w


class _Softmax(nn.Module):
    def forward(self, x):
        return torch.softmax(x, dim=-1 if x.dim() == 3 else 1)


class CGNetwork(nn.Module):
    """The module :func:`interpret` returns: runs the CG's nodes in topological order."""

    def __init__(self, cg: CG, layers: dict[int, nn.Module], order: list[int], preds: list[list[int]],
                 adapters: dict[tuple[int, int], nn.Module] | None = None):
        super().__init__()
        adapters = adapters or {}
        self.adapters = nn.ModuleDict({f"{u}_{v}": m for (u, v), m in adapters.items()})
        self.adapted = frozenset(adapters)
        self.cg_name = cg.name
        self.ops = [nd.op for nd in cg.nodes]
        self.names = [nd.name for nd in cg.nodes]
        self.order = order
        self.preds = preds
        self.layers = nn.ModuleDict({str(k): v for k, v in layers.items()})
        self.output_id = cg.output_node.id

    def forward(self, x):
        values: dict[int, torch.Tensor] = {}
        nid, reading = None, True
        try:
            for nid in self.order:
                op = self.ops[nid]
                reading = True
                ins = [self.adapters[f"{p}_{nid}"](values[p]) if (p, nid) in self.adapted else values[p]
                       for p in self.preds[nid]]
                reading = False
                if op == "input":
                    out = x
                elif op in ("add", "mul") and str(nid) not in self.layers:
                    out = ins[0]
                    for t in ins[1:]:
                        out = out + t if op == "add" else out * t
                elif op == "concat":
                    out = torch.cat(ins, dim=1)
                elif op in ("identity", "output"):
                    out = ins[0]
                else:
                    out = self.layers[str(nid)](ins[0])
                values[nid] = out
        except Exception as exc:
            # which CG node failed (read by check_feasible); the exception itself is unchanged
            if nid is not None and not hasattr(exc, "cg_node"):
                exc.cg_node = self.describe(nid, reading)
            raise
        out = values[self.output_id]
        return out.flatten(1) if out.dim() == 4 and out.shape[2] == 1 and out.shape[3] == 1 else out

    def describe(self, nid: int, reading: bool = False) -> str:
        """``node <id> (<op> '<name>')``, prefixed with "the input of" when it is the op on the
        edge into the node (a contracted slice / pad / reshape) that failed."""
        where = f"node {nid} ({self.ops[nid]} {self.names[nid]!r})"
        return f"the input of {where}" if reading else where


def interpret(cg: CG, device: str | torch.device | None = None) -> CGNetwork:
    """Build the ``nn.Module`` a CG describes; raise :class:`InfeasibleCG` when impossible.

    ``device="meta"`` builds parameters without storage or initialisation (fast feasibility
    checks of large networks)."""
    if device is not None:
        with torch.device(device):
            return interpret(cg)
    try:
        cg.validate()
    except CGError as exc:
        raise InfeasibleCG(f"invalid CG: {exc}") from None
    order = cg.topological_order()
    preds = cg.predecessors()
    layers: dict[int, nn.Module] = {}
    adapters: dict[tuple[int, int], nn.Module] = {}
    for nid in order:
        nd = cg.nodes[nid]
        where = f"node {nid} ({nd.op})"
        if nd.op not in _BUILDABLE:  # said first: a shape check would blame a symptom of the op instead
            raise InfeasibleCG(f"{where}: op {nd.op!r} cannot be built by the interpreter "
                               "(its semantics are not recorded in the CG)")
        if len(preds[nid]) > 1 and nd.op not in ("add", "mul", "concat"):
            raise InfeasibleCG(f"{where}: has {len(preds[nid])} inputs; only add, mul and concat combine tensors")
        ins = [cg.nodes[p].out_shape for p in preds[nid]]
        if len(ins) == 1 and nd.op not in ("add", "mul", "concat", "output"):
            ad = _adapter(ins[0], nd.in_shape, may_pad=nd.op in ("conv", "depthwise", "group_conv", "maxpool",
                                                                   "avgpool"))
            if isinstance(ad, str):
                raise InfeasibleCG(f"{where}: {ad}")
            if ad is not None:
                adapters[(preds[nid][0], nid)] = ad
                ins = [nd.in_shape]
        elif nd.op in ("add", "mul"):
            for k, (p, s) in enumerate(zip(preds[nid], ins)):
                if s != nd.out_shape and all(a >= b for a, b in zip(s, nd.out_shape)) and \
                        not all(a == b or a == 1 for a, b in zip(s, nd.out_shape)):
                    adapters[(p, nid)] = _Adapt("slice", nd.out_shape)
                    ins[k] = nd.out_shape
        (ih, iw, ic) = ins[0] if ins else nd.in_shape
        oh, ow, oc = nd.out_shape
        if nd.op in ("conv", "depthwise", "group_conv"):
            cin, cout, kh, kw = nd.weight
            if cin != ic:
                raise InfeasibleCG(f"{where}: weight expects {cin} input channels but receives {ic}")
            if cout != oc:
                raise InfeasibleCG(f"{where}: weight has {cout} output channels but the node outputs {oc}")
            if nd.groups < 1 or cin % nd.groups or cout % nd.groups:
                raise InfeasibleCG(f"{where}: groups={nd.groups} must divide C_in={cin} and C_out={cout}")
            ph = _solve_padding(ih, oh, kh, nd.stride[0], nd.dilation[0])
            pw = _solve_padding(iw, ow, kw, nd.stride[1], nd.dilation[1])
            if ph is None or pw is None:
                raise InfeasibleCG(f"{where}: no padding maps {ih}x{iw} to {oh}x{ow} with kernel {kh}x{kw}, "
                                   f"stride {nd.stride}")
            layers[nid] = nn.Conv2d(cin, cout, (kh, kw), stride=nd.stride, padding=(ph, pw),
                                    dilation=nd.dilation, groups=nd.groups, bias=nd.bias)
        elif nd.op == "linear":
            cin, cout, _, _ = nd.weight
            if cin != ic:
                raise InfeasibleCG(f"{where}: expects {cin} features but receives {ic}")
            layers[nid] = _ChannelLast(nn.Linear(cin, cout, bias=nd.bias), flatten=(ih == 1 and iw == 1))
        elif nd.op == "batchnorm":
            layers[nid] = nn.BatchNorm2d(ic, affine=nd.params > 0)
        elif nd.op == "layernorm":
            # any map or token tensor: normalised over C at every position, the shape kept; a pooled
            # (1, 1, C) vector flattened to [B, C], as a linear reading it is (a residual head adds the
            # two); C params (a scale without a shift: RMSNorm, LayerNorm(bias=False)) -> no bias
            layers[nid] = _ChannelLast(nn.LayerNorm(ic, elementwise_affine=nd.params > 0, bias=nd.params >= 2 * ic),
                                       flatten=(ih == 1 and iw == 1))
        elif nd.op in _ACTS:
            layers[nid] = _ACTS[nd.op]()
        elif nd.op == "softmax":
            layers[nid] = _Softmax()
        elif nd.op == "zero":
            layers[nid] = _Zero()
        elif nd.op == "mean":
            layers[nid] = _Mean()
        elif nd.op in ("maxpool", "avgpool"):
            s = nd.stride[0]
            k, p = 3, _solve_padding(ih, oh, 3, s, 1)
            if p is None or p > 1:
                k, p = s, _solve_padding(ih, oh, s, s, 1)
            if p is None:
                raise InfeasibleCG(f"{where}: cannot pool {ih}x{iw} to {oh}x{ow} with stride {s}")
            cls = nn.MaxPool2d if nd.op == "maxpool" else nn.AvgPool2d
            kwargs = {} if nd.op == "maxpool" else {"count_include_pad": False}
            layers[nid] = cls(k, stride=s, padding=p, **kwargs)
        elif nd.op == "concat":
            if any(s[:2] != ins[0][:2] for s in ins):
                raise InfeasibleCG(f"{where}: inputs have different spatial sizes {ins}")
            if sum(s[2] for s in ins) != oc:
                split = (" (a channel split, as ShuffleNet's, slices an input on its edge; the CG does not record "
                         "which channels, so it cannot be rebuilt)" if sum(s[2] for s in ins) > oc else "")
                raise InfeasibleCG(f"{where}: input channels {[s[2] for s in ins]} do not sum to {oc}{split}")
        elif nd.op in ("add", "mul"):
            target = max(ins, key=math.prod)
            for s in ins:
                ok = all(a == b or a == 1 for a, b in zip(s, target))
                if not ok:
                    raise InfeasibleCG(f"{where}: input shapes {ins} cannot be combined element-wise")
            if tuple(target) != tuple(nd.out_shape):
                raise InfeasibleCG(f"{where}: inputs combine to {tuple(target)} but the node outputs {nd.out_shape}")
            # one input and learnt values: a per-channel scale / shift (ConvNeXt's layer scale) or one value
            # per element (a ViT's position embedding); other counts are left out, as before
            if len(ins) == 1 and nd.params in (oc, oh * ow * oc) and nd.params:
                layers[nid] = _ChannelParam((oc, 1, 1) if nd.params == oc else (oc, oh, ow), nd.op)
    return CGNetwork(cg, layers, order, preds, adapters)


#: the ops :func:`interpret` builds (matmul and other have no recorded semantics)
_BUILDABLE = frozenset({"conv", "depthwise", "group_conv", "linear", "batchnorm", "layernorm", *_ACTS, "softmax",
                        "zero", "mean", "maxpool", "avgpool", "concat", "add", "mul", "input", "output", "identity"})

#: below this many FLOPs a real CPU forward pass is cheaper than a meta-device one
CPU_CHECK_FLOPS = 2_000_000_000


def check_feasible(cg: CG, device: str = "auto") -> CGNetwork:
    """Build the network and run a forward pass on a zero input of the CG's input shape.

    ``device="auto"`` runs small networks (< :data:`CPU_CHECK_FLOPS`) on the CPU, which is faster
    than PyTorch's meta-tensor decompositions, and large ones on the ``meta`` device (shapes only,
    no memory; the network is then built on ``meta`` too, skipping weight initialisation).
    Raises :class:`InfeasibleCG` with the reason when the forward pass fails or the output does not
    have the output node's shape.
    """
    h, w, c = cg.input_node.out_shape
    if device == "auto":
        device = "cpu" if cg.flops < CPU_CHECK_FLOPS else "meta"
    # eval mode: train-mode BN rejects a batch of one 1 x 1 map, which is not an infeasibility
    net = interpret(cg, device=device).eval()
    threads = torch.get_num_threads()
    try:
        # one thread: batch-1 forwards do not profit from more, and oversubscribed cores make them crawl
        torch.set_num_threads(1)
        with torch.no_grad():
            out = net(torch.zeros(1, c, h, w, device=device))
    except Exception as exc:  # noqa: BLE001 - any failure means infeasible
        at = getattr(exc, "cg_node", None)
        at = f" at {at}" if at else ""
        raise InfeasibleCG(f"forward pass failed{at}: {type(exc).__name__}: {exc}") from None
    finally:
        torch.set_num_threads(threads)
    expected = math.prod(cg.output_node.out_shape)
    if out.numel() != expected:
        raise InfeasibleCG(f"network outputs {tuple(out.shape)} but the CG's output node is "
                           f"{cg.output_node.out_shape}")
    return net
