"""CG interpreter: norms and linears on feature maps and on tokens, and forward-failure messages.

The importers record ``nn.GroupNorm`` / ``InstanceNorm2d`` (and a ConvNeXt channels-last
LayerNorm) as a ``layernorm`` node on an ``(H, W, C)`` map, and a transformer LayerNorm as one on
``(N, 1, D)`` tokens; the interpreter must build both, keeping the node's shape.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from engine.graphs.cg import CGBuilder
from engine.graphs.fx_import import from_module
from engine.search import interpret as interp
from engine.search.interpret import InfeasibleCG, check_feasible, interpret

X = (1, 3, 16, 16)


def _norm_net(norm: nn.Module) -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), norm, nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))


class _Tokens(nn.Module):
    """ViT-style without attention: patch embedding, pre-norm MLP block with a residual, final
    norm, then the first token or the mean over tokens."""

    def __init__(self, pool: str):
        super().__init__()
        self.pool = pool
        self.embed = nn.Conv2d(3, 16, 4, stride=4)
        self.norm1, self.norm2 = nn.LayerNorm(16), nn.LayerNorm(16)
        self.fc1, self.fc2, self.head = nn.Linear(16, 32), nn.Linear(32, 16), nn.Linear(16, 10)

    def forward(self, x):
        t = self.norm1(self.embed(x).flatten(2).transpose(1, 2))
        t = self.norm2(t + self.fc2(nn.functional.gelu(self.fc1(t))))
        return self.head(t[:, 0] if self.pool == "cls" else t.mean(1))


class _ScaleOnlyNorm(nn.Module):
    """A channels-last LayerNorm with a scale and no shift (C params, as an RMSNorm): built back with
    2C params before."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.LayerNorm(c, bias=False)

    def forward(self, x):
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def _round_trips(cg) -> bool:
    h, w, c = cg.input_node.out_shape
    back = from_module(interpret(cg), (1, c, h, w))
    return (back.fingerprint(), back.flops, back.params) == (cg.fingerprint(), cg.flops, cg.params)


def _layer_outputs(net, x) -> dict[int, tuple[int, ...]]:
    shapes: dict[int, tuple[int, ...]] = {}
    hooks = [m.register_forward_hook(lambda _m, _i, out, k=int(k): shapes.__setitem__(k, tuple(out.shape)))
             for k, m in net.layers.items()]
    try:
        net(x)
    finally:
        for h in hooks:
            h.remove()
    return shapes


@pytest.mark.parametrize("norm", [lambda: nn.GroupNorm(4, 16), lambda: nn.GroupNorm(1, 16),
                                  lambda: nn.InstanceNorm2d(16, affine=True), lambda: _ScaleOnlyNorm(16)],
                         ids=["groupnorm", "gn1", "instnorm", "scale-only"])
def test_norm_on_feature_map_keeps_the_map(norm):
    # used to fail: "forward pass failed: RuntimeError: Given groups=1, weight of size [32, 16, 3, 3],
    # expected input[1, 1, 256, 16]" -- the norm's output stayed flattened into tokens
    cg = from_module(_norm_net(norm()), X, "gn_net")
    ln = next(n for n in cg.nodes if n.op == "layernorm")
    assert ln.in_shape == ln.out_shape == (16, 16, 16)
    net = check_feasible(cg, device="cpu")
    assert sum(p.numel() for p in net.parameters()) == cg.params
    h, w, c = ln.out_shape
    assert _layer_outputs(net, torch.randn(2, 3, 16, 16))[ln.id] == (2, c, h, w)
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    check_feasible(cg, device="meta")
    assert _round_trips(cg)


def test_groupnorm_start_exports_and_searches(tmp_path):
    from engine.graphs.onnx_import import from_onnx
    from engine.search.runner import make_space, onnx_bytes

    cg = from_module(_norm_net(nn.GroupNorm(4, 16)), X, "gn_net")
    make_space(cg)  # "the start CG cannot be built as a network" before the fix
    back = from_onnx(onnx_bytes(cg))
    assert (back.fingerprint(), back.flops, back.params) == (cg.fingerprint(), cg.flops, cg.params)


def test_a_zero_edge_exports_as_zeros_computed_from_the_input():
    """An NB-201 cell whose node 1 is all zeros (its one edge is 'none'): exported with
    zeros_like, the zeros became a constant that from_onnx counted as 143k parameters, dropping
    the convs it feeds (157 -> 86 MFLOPs).  ``x * 0`` reads back as the CG's zero node."""
    from engine.families import get
    from engine.graphs.onnx_import import from_onnx
    from engine.search.runner import onnx_bytes

    fam = get("nb201")
    cg = fam.to_cg(fam.parse("|none~0|+|avg_pool_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"))
    back = from_onnx(onnx_bytes(cg))
    assert (back.fingerprint(), back.flops, back.params) == (cg.fingerprint(), cg.flops, cg.params)


def test_channels_last_layernorm_and_linear_on_map():
    """ConvNeXt block: LayerNorm / Linear / GELU / Linear on ``(16, 16, C)`` maps."""
    from nets import ChannelsLastBlock

    cg = from_module(ChannelsLastBlock(), (1, 3, 32, 32))
    net = check_feasible(cg, device="cpu")
    outs = _layer_outputs(net, torch.zeros(1, 3, 32, 32))
    for nd in cg.nodes:
        if nd.op in ("layernorm", "linear") and nd.out_shape[:2] != (1, 1):
            h, w, c = nd.out_shape
            assert outs[nd.id] == (1, c, h, w), nd
    assert _round_trips(cg)


@pytest.mark.parametrize("pool", ["cls", "mean"])
def test_layernorm_on_tokens(pool):
    cg = from_module(_Tokens(pool), X, "tokens")
    norms = [n for n in cg.nodes if n.op == "layernorm"]
    assert len(norms) == 2 and all(n.in_shape == n.out_shape == (16, 1, 16) for n in norms)
    net = check_feasible(cg, device="cpu")
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)
    assert sum(p.numel() for p in net.parameters()) == cg.params
    assert _round_trips(cg)


def test_layernorm_on_pooled_vector():
    b = CGBuilder("v", (8, 8, 3))
    y = b.layernorm(b.mean(b.conv(b.input(), 8, 3)))
    cg = b.output(b.linear(b.act(y, "relu"), 4))
    assert check_feasible(cg, device="cpu")(torch.zeros(2, 3, 8, 8)).shape == (2, 4)
    assert _round_trips(cg)


def test_forward_failure_names_the_node(monkeypatch):
    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")

    b = CGBuilder("f", (8, 8, 3))
    x = b.conv(b.input(), 4, 3, name="c1")
    r = b.act(x, "relu", name="act1")
    cg = b.output(b.linear(b.mean(r), 2))
    monkeypatch.setitem(interp._ACTS, "relu", Boom)
    with pytest.raises(InfeasibleCG, match=rf"forward pass failed at node {r} \(relu 'act1'\): RuntimeError: boom"):
        check_feasible(cg, device="cpu")


def test_forward_failure_in_edge_op_names_the_reading_node(monkeypatch):
    b = CGBuilder("e", (8, 8, 3))
    x = b.conv(b.input(), 4, 3, name="c1")
    y = b.add("linear", [x], (1, 1, 2), in_shape=(1, 1, 256), weight=(256, 2, 1, 1), bias=True, name="fc")
    cg = b.output(y)

    def boom(self, t):
        raise RuntimeError("bad reshape")

    monkeypatch.setattr(interp._Adapt, "forward", boom)
    with pytest.raises(InfeasibleCG, match=rf"failed at the input of node {y} \(linear 'fc'\): RuntimeError: bad"):
        check_feasible(cg, device="cpu")


class _NormedHead(nn.Module):
    """A LayerNorm on the pooled vector feeding a residual MLP head: the norm's output must be
    ``[B, C]`` like the head Linear's, or their sum broadcasts to ``[B, C, B, C]``."""

    def __init__(self, c: int = 16):
        super().__init__()
        self.conv, self.pool = nn.Conv2d(3, c, 3, padding=1), nn.AdaptiveAvgPool2d(1)
        self.ln, self.fc1, self.head = nn.LayerNorm(c), nn.Linear(c, c), nn.Linear(c, 10)

    def forward(self, x):
        x = self.ln(self.pool(torch.relu(self.conv(x))).flatten(1))
        return self.head(x + self.fc1(x))


def test_layernorm_on_pooled_vector_feeds_a_residual_head():
    cg = from_module(_NormedHead().eval(), X, "ln_head")
    net = check_feasible(cg, device="cpu")
    assert net(torch.zeros(2, 3, 16, 16)).shape == (2, 10)
    assert _round_trips(cg)


def test_layer_scale_parameters_are_built():
    """ConvNeXt's layer scale (a ``mul`` node with one learnt value per channel) was built as a
    plain pass-through: the network lost those parameters and did not re-trace to the CG."""
    from nets import TinyConvNeXt

    cg = from_module(TinyConvNeXt().eval(), (1, 3, 32, 32), "convnext")
    assert any(n.op == "mul" and n.params for n in cg.nodes)
    net = check_feasible(cg, device="cpu")
    assert sum(p.numel() for p in net.parameters()) == cg.params
    assert _round_trips(cg)


@pytest.mark.parametrize("name, message", [
    ("vit_b_16", r"node \d+ \(matmul\): op 'matmul' cannot be built by the interpreter"),
    ("shufflenet_v2_x1_0", r"do not sum to \d+ \(a channel split, as ShuffleNet's"),
])
def test_unbuildable_zoo_networks_name_the_construct(name, message):
    """ViT-B/16 was refused for a shape (its attention's matmul reads a reshaped tensor) and
    ShuffleNetV2 for channel counts: each now names what the CG does not record."""
    from engine.evaluate import zoo

    with pytest.raises(InfeasibleCG, match=message):
        interpret(zoo.to_cg(name))
