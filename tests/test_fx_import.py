"""from_module: the CG conventions contract, exact params, FLOPs vs an independent count, edge cases."""

from __future__ import annotations

import math
import time
import warnings

import pytest
import torch
import torch.nn.functional as F
from nets import (
    AddChain,
    Attention,
    MHAViT,
    MobileNetV2ish,
    ResNet50,
    ShapeBranching,
    SmallConvNet,
    TinyViT,
    Untraceable,
    WithUnknownOp,
    cifar_resnet,
    small_convnet_cg,
)
from torch import nn

from engine.cg import CGError, from_module, load_json
from engine.graphs.cg import CGBuilder

X32 = (1, 3, 32, 32)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def hook_flops(model: nn.Module, shape=X32) -> int:
    """Independent FLOPs count: forward hooks on a real forward pass (2 x MACs of convs,
    linears and attention matmuls)."""
    total = [0]

    def conv(m, inp, out):
        total[0] += 2 * (out.numel() // out.shape[0]) * (m.in_channels // m.groups) * math.prod(m.kernel_size)

    def linear(m, inp, out):
        total[0] += 2 * (out.numel() // out.shape[0] // m.out_features) * m.in_features * m.out_features

    def attention(m, inp, out):  # q @ k^T and attn @ v
        _, n, c = inp[0].shape
        total[0] += 2 * 2 * n * n * c

    def mha(m, inp, out):  # in-proj, two matmuls, out-proj (MHA calls its linears functionally)
        _, n, e = inp[0].shape
        total[0] += 2 * n * e * 3 * e + 2 * 2 * n * n * e + 2 * n * e * e

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv))
        elif isinstance(mod, nn.MultiheadAttention):
            handles.append(mod.register_forward_hook(mha))
        elif isinstance(mod, nn.Linear) and not isinstance(mod, nn.modules.linear.NonDynamicallyQuantizableLinear):
            handles.append(mod.register_forward_hook(linear))
        elif isinstance(mod, Attention):
            handles.append(mod.register_forward_hook(attention))
    with torch.no_grad():
        model.eval()(torch.randn(shape))
    for h in handles:
        h.remove()
    return total[0]


# --- the contract with the family builders -----------------------------------------------------

def test_from_module_equals_hand_built_cgbuilder_cg():
    traced = from_module(SmallConvNet(), X32)
    built = small_convnet_cg()
    assert traced.fingerprint() == built.fingerprint()
    assert traced.flops == built.flops
    assert traced.params == built.params == n_params(SmallConvNet())
    assert [n.op for n in traced.nodes] == [n.op for n in built.nodes]


def test_residual_sum_matches_builder_sum():
    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(4, 4, 3, padding=1, bias=False), nn.Conv2d(4, 4, 1, bias=False)

        def forward(self, x):
            return sum([x, self.a(x), self.b(x)]).mean((2, 3))

    b = CGBuilder(input_hwc=(8, 8, 4))
    x = b.input()
    built = b.output(b.mean(b.sum([x, b.conv(x, 4, 3), b.conv(x, 4, 1)])))
    traced = from_module(Res(), (1, 4, 8, 8))
    assert traced.fingerprint() == built.fingerprint() and traced.flops == built.flops


# --- params and FLOPs -------------------------------------------------------------------------

@pytest.mark.parametrize("factory", [SmallConvNet, cifar_resnet, MobileNetV2ish, TinyViT, MHAViT,
                                     lambda: TinyViT(sdpa=False)],
                         ids=["small", "resnet", "mobilenet", "vit-sdpa", "vit-mha", "vit-manual"])
def test_exact_params_and_flops_within_1pct_of_hooks(factory):
    model = factory()
    cg = from_module(model, X32)
    assert cg.params == n_params(model)
    ref = hook_flops(model)
    assert abs(cg.flops - ref) <= 0.01 * ref, (cg.flops, ref)


def test_resnet50_at_224_is_fast_and_exact():
    model = ResNet50()
    t0 = time.perf_counter()
    cg = from_module(model, (1, 3, 224, 224))
    assert time.perf_counter() - t0 < 2.0
    assert cg.params == n_params(model) == 25_557_032
    assert cg.op_counts()["conv"] == 53 and cg.op_counts()["add"] == 16
    assert abs(cg.flops / 1e9 - 8.18) < 0.01  # 4.09 GMACs


def test_vit_parameters_via_get_attr_are_attributed_to_consumers():
    model = TinyViT()
    cg = from_module(model, X32)
    concat = next(n for n in cg.nodes if n.op == "concat")
    assert concat.params == model.cls_token.numel()
    pos = next(n for n in cg.nodes if n.op == "add" and n.params)
    assert pos.params == model.pos_embed.numel()
    assert cg.op_counts()["matmul"] == 4 and cg.op_counts()["softmax"] == 2
    # hand-written attention, SDPA and nn.MultiheadAttention trace to the same graph
    assert cg.fingerprint() == from_module(MHAViT(), X32).fingerprint()
    assert cg.fingerprint() == from_module(TinyViT(sdpa=False), X32).fingerprint()


def test_shared_module_counted_once_and_unused_params_on_output():
    class Shared(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3, padding=1)
            self.unused = nn.Linear(3, 3)

        def forward(self, x):
            return self.conv(self.conv(x)).flatten(1)

    model = Shared()
    with pytest.warns(UserWarning, match="not used"):
        cg = from_module(model, (1, 4, 6, 6))
    assert cg.op_counts()["conv"] == 2
    assert cg.params == n_params(model)
    assert cg.output_node.params == 12


def test_functional_conv_with_parameter_weight():
    class FConv(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.randn(6, 3, 3, 3))

        def forward(self, x):
            return F.relu(F.conv2d(x, self.w, None, 2, 1)).mean((2, 3))

    cg = from_module(FConv(), X32)
    conv = next(n for n in cg.nodes if n.op == "conv")
    assert conv.weight == (3, 6, 3, 3) and conv.stride == (2, 2) and conv.params == 162
    assert conv.flops == 2 * 16 * 16 * 6 * 3 * 9


# --- structure rules ---------------------------------------------------------------------------

def test_add_chain_merged_and_constant_ops_contracted():
    cg = from_module(AddChain(), (1, 3, 8, 8))
    assert cg.op_counts() == {"input": 1, "conv": 3, "add": 1, "relu": 1, "output": 1}
    add = next(n for n in cg.nodes if n.op == "add")
    assert len([e for e in cg.edges if e[1] == add.id]) == 3


def test_shape_ops_are_contracted_into_edges():
    cg = from_module(SmallConvNet(), X32)
    ids = {n.op: n.id for n in cg.nodes}
    assert (ids["mean"], ids["linear"]) in cg.edges  # view + dropout contracted
    vit = from_module(TinyViT(), X32)
    conv = next(n for n in vit.nodes if n.op == "conv")
    concat = next(n for n in vit.nodes if n.op == "concat")
    assert (conv.id, concat.id) in vit.edges  # flatten + transpose contracted
    assert concat.in_shape == (16, 1, 32) and concat.out_shape == (17, 1, 32)


def test_duplicate_parent_is_deduplicated():
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            y = self.conv(x)
            return torch.cat([y, y], 1)

    cg = from_module(Twice(), (1, 3, 4, 4))
    assert len(cg.edges) == len(set(cg.edges))
    concat = next(n for n in cg.nodes if n.op == "concat")
    assert len([e for e in cg.edges if e[1] == concat.id]) == 1


def test_pieces_of_one_tensor_put_back_together_are_contracted():
    """``cat`` of pieces of one tensor in another order is shape plumbing, like ``torch.roll``
    (and like the ONNX importer's reading of an exported roll: Slice + Concat)."""
    class Rolled(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 1)

        def forward(self, x):
            y = self.conv(x)
            a, b = y.chunk(2, dim=1)
            return torch.cat([b, a], 1) * y + torch.roll(y, 1, 2)

    cg = from_module(Rolled(), (1, 3, 4, 4))
    assert "concat" not in cg.op_counts() and cg.op_counts()["mul"] == 1


def test_zero_ops():
    class Zero(nn.Module):
        def forward(self, x):
            return x.mul(0.0)

    class Cell(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.zero = Zero()

        def forward(self, x):
            return self.conv(x) + self.zero(x) + torch.zeros_like(x)

    cg = from_module(Cell(), (1, 3, 4, 4))
    assert cg.op_counts()["zero"] == 2 and cg.op_counts()["add"] == 1


def test_unknown_op_warns_and_maps_to_other():
    with pytest.warns(UserWarning, match=r"'other'.*Softplus.*torch\.exp"):
        cg = from_module(WithUnknownOp(), (1, 3, 8, 8))
    assert cg.op_counts()["other"] == 2
    assert cg.meta["unknown_ops"] == ["nn.Softplus", "torch.exp"]


def test_known_nets_do_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for model in (SmallConvNet(), MobileNetV2ish(), TinyViT(), MHAViT()):
            cg = from_module(model, X32)  # a warning would raise here
            assert "other" not in cg.op_counts() and not cg.meta.get("unknown_ops"), type(model).__name__


def test_untraceable_model_gives_clear_error_without_the_onnx_fallback():
    with pytest.raises(CGError, match="data-dependent.*ONNX"):
        from_module(Untraceable(), (1, 3, 8, 8), onnx_fallback=False)


def test_untraceable_model_is_imported_through_onnx_and_left_untouched():
    """Data-dependent control flow: torch.fx cannot trace it, so from_module exports an eval-mode
    copy to ONNX and imports that (warning, reason in meta); the caller's module -- here in
    training mode, whose BatchNorm would update its running statistics on a forward pass -- is
    neither run nor changed."""
    class Head(Untraceable):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 3)

    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), Head()).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.warns(UserWarning, match="imported through torch.onnx.export"):
        cg = from_module(model, (1, 3, 16, 16))
    assert "data-dependent" in cg.meta["fallback"] and cg.meta["input_shape"] == [1, 3, 16, 16]
    assert cg.params == sum(p.numel() for p in model.parameters())
    assert cg.op_counts()["conv"] == 2 and cg.op_counts()["batchnorm"] == 1
    assert model.training and all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_onnx_fallback_counts_the_parameters_of_the_branch_not_taken():
    """As torch.fx does for unused parameters: cg.params stays sum(p.numel()), the extra on the
    output node, and the note says so."""
    class Gate(nn.Module):
        def __init__(self):
            super().__init__()
            self.small, self.big, self.fc = nn.Conv2d(3, 8, 3), nn.Conv2d(3, 8, 5, padding=1), nn.Linear(8, 10)

        def forward(self, x):
            y = self.small(x) if x.sum() > 0 else self.big(x)
            return self.fc(y.mean((2, 3)))

    model = Gate()
    with pytest.warns(UserWarning, match="parameters not on the traced path"):
        cg = from_module(model, (1, 3, 16, 16))
    assert cg.params == sum(p.numel() for p in model.parameters())
    assert cg.output_node.params in (8 * 3 * 9 + 8, 8 * 3 * 25 + 8)  # the conv the input did not reach


def test_a_forward_returning_several_tensors_warns_that_the_cg_ends_at_the_first():
    class FeatLogits(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = nn.Conv2d(3, 16, 3), nn.Linear(16, 10)

        def forward(self, x):
            f = self.conv(x).mean((2, 3))
            return f, self.fc(f)

    with pytest.warns(UserWarning, match=r"returns 2 tensors \(\(1, 16\), \(1, 10\)\); the CG ends at the first"):
        cg = from_module(FeatLogits(), (1, 3, 8, 8))
    assert cg.output_node.in_shape == (1, 1, 16)


def test_a_model_over_the_node_limit_is_named_plainly(monkeypatch):
    import engine.graphs.fx_import as fx_import

    monkeypatch.setattr(fx_import, "MAX_NODES", 5)
    with pytest.raises(CGError, match=r"^Sequential: the model has 7 nodes as a CG; the limit is 5$"):
        from_module(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Conv2d(4, 4, 3), nn.ReLU(), nn.Flatten(),
                                  nn.Linear(4 * 4 * 4, 2)), (1, 3, 8, 8))


@pytest.mark.parametrize("pool, size, hw", [(nn.AdaptiveAvgPool2d, 4, 32), (nn.AdaptiveMaxPool2d, 4, 32),
                                            (nn.AdaptiveAvgPool2d, 7, 224), (nn.AdaptiveAvgPool2d, 7, 7)])
def test_adaptive_pooling_gets_the_stride_onnx_writes_for_it(pool, size, hw):
    """torch.onnx.export writes an adaptive pooling of an evenly divided map as a fixed pooling
    with stride input / output: both importers give the same CG."""
    import io

    from engine.cg import from_onnx

    model = nn.Sequential(nn.Conv2d(3, 8, 1), pool(size), nn.Flatten(), nn.Linear(8 * size * size, 10)).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, hw, hw),), buf, dynamo=False, do_constant_folding=False)
    fx, ox = from_module(model, (1, 3, hw, hw)), from_onnx(buf.getvalue())
    pooled = next(n for n in fx.nodes if n.op.endswith("pool"))
    assert pooled.stride == (hw // size, hw // size)
    assert fx.fingerprint() == ox.fingerprint()


def test_a_zero_initialised_trainable_scale_stays_a_parameter_through_onnx():
    """ReZero's ``x + alpha * f(x)`` with ``alpha`` zero at init: a Mul by a zero *initializer* is a
    learnt scale (mul, 8 params), not the search's ``x * 0`` zero node."""
    import io

    from engine.cg import from_onnx

    class ReZero(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem, self.conv = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
            self.alpha, self.fc = nn.Parameter(torch.zeros(1, 8, 1, 1)), nn.Linear(8, 10)

        def forward(self, x):
            x = torch.relu(self.stem(x))
            return self.fc((x + self.alpha * self.conv(x)).mean((2, 3)))

    model = ReZero().eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 16, 16),), buf, dynamo=False, do_constant_folding=False)
    ox, fx = from_onnx(buf.getvalue()), from_module(model, (1, 3, 16, 16))
    assert ox.fingerprint() == fx.fingerprint() and ox.params == fx.params == 906
    assert "zero" not in ox.op_counts() and ox.op_counts()["mul"] == 1


def test_onnx_fallback_needs_real_weights():
    with torch.device("meta"):
        model = Untraceable()
    with pytest.raises(CGError, match="data-dependent.*meta device"):
        from_module(model, (1, 3, 8, 8))


def test_shape_dependent_control_flow_is_specialised():
    cg = from_module(ShapeBranching(), X32)
    assert cg.op_counts()["maxpool"] == 1 and cg.op_counts()["relu"] == 1
    small = from_module(ShapeBranching(), (1, 3, 8, 8))
    assert "maxpool" not in small.op_counts()


def test_module_is_left_untouched():
    model = MobileNetV2ish().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    attrs = set(model.__dict__)
    from_module(model, X32)
    assert model.training and set(model.__dict__) == attrs
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) and after[k].device.type == "cpu" for k in before)


def test_bad_arguments():
    with pytest.raises(CGError, match="nn.Module"):
        from_module("not a module", X32)
    with pytest.raises(CGError, match="input_shape"):
        from_module(SmallConvNet(), (1, 3, -1, 32))
    with pytest.raises(CGError, match="cannot trace|shape propagation"):
        from_module(SmallConvNet(), (1, 5, 32, 32))  # wrong channel count


def test_json_round_trip():
    cg = from_module(MobileNetV2ish(), X32, name="mbv2")
    again = load_json(cg.to_json())
    assert again.to_dict() == cg.to_dict() and again.fingerprint() == cg.fingerprint()


def test_throughput_small_resnet():
    model = cifar_resnet(blocks=4, width=16)
    from_module(model, X32)
    t0 = time.perf_counter()
    for _ in range(5):
        cg = from_module(model, X32)
    per = (time.perf_counter() - t0) / 5
    assert cg.num_nodes > 90
    assert per < 0.25  # target 20 CGs/s on one core; generous bound for a loaded test machine


def test_hwc_shape_convention():
    from engine.graphs.fx_import import hwc

    assert hwc((1, 16, 8, 4)) == (8, 4, 16)
    assert hwc((1, 17, 32)) == (17, 1, 32)
    assert hwc((1, 10)) == (1, 1, 10) and hwc((7,)) == (1, 1, 7) and hwc(()) == (1, 1, 1)
    assert hwc((1, 2, 3, 4, 5)) == (4, 5, 6) and hwc((1, 0, 3)) == (1, 1, 3)


def test_interpreted_cg_traces_back_to_itself():
    from engine.search.interpret import interpret

    cg = small_convnet_cg()
    again = from_module(interpret(cg), X32)
    assert again.fingerprint() == cg.fingerprint() and again.flops == cg.flops and again.params == cg.params


def test_functions_hidden_with_fx_wrap_are_traced_into():
    """torchvision hides Swin's attention from symbolic tracing (``torch.fx.wrap``); our proxies
    carry concrete shapes, so the CG has its linear / matmul / softmax nodes, as if called
    directly -- not one ``other`` node without FLOPs.  A hidden function that cannot be traced
    into stays one ``other`` node, with a warning."""
    from nets import HiddenAttention, HiddenUntraceable, PlainAttention

    torch.manual_seed(0)
    plain, hidden = PlainAttention(), HiddenAttention()
    hidden.load_state_dict(plain.state_dict())
    a, b = from_module(plain, X32), from_module(hidden, X32)
    assert b.op_counts() == a.op_counts() and "other" not in b.op_counts()
    assert b.op_counts()["matmul"] == 2 and b.flops == a.flops and b.params == a.params
    with pytest.warns(UserWarning, match="hidden_gate"):
        cg = from_module(HiddenUntraceable(), X32)
    assert cg.op_counts()["other"] == 1 and cg.op_counts()["conv"] == 1
    # the wrap table is restored: torch.fx's own tracer still treats the functions as calls
    assert "hidden_window_attention" in str(torch.fx.symbolic_trace(hidden).graph)


def test_patterns_of_torchvision_models():
    """What torchvision's ShuffleNetV2 and Swin V1/V2 do, which used to fail or lose nodes:
    ``view`` after ``transpose(...).contiguous()`` (channel shuffle); an attention mask built
    with ``new_zeros`` and item assignment; a norm straight after window attention, whose
    tensors carry the windows in the batch dimension; ``F.normalize`` (cosine attention)."""
    from nets import TorchvisionPatterns

    cg = from_module(TorchvisionPatterns(), X32)
    counts = cg.op_counts()
    assert "other" not in counts and "zero" not in counts
    assert counts["layernorm"] == 3 and counts["matmul"] == 2 and counts["linear"] == 3
    norm = next(n for n in cg.nodes if n.name == "norm")
    assert math.prod(norm.in_shape) == 8 * 8 * 16  # the whole feature map, not one window
    assert cg.params == sum(p.numel() for p in TorchvisionPatterns().parameters())


def test_activations_without_an_op_of_their_own_and_grn():
    """LeakyReLU / PReLU / ELU map to relu and Mish to silu (the closest ops of the vocabulary,
    not ``other``); ConvNeXt V2's GRN is a reduction and a multiply with parameters."""
    from nets import ActivationsAndGRN

    model = ActivationsAndGRN()
    cg = from_module(model, X32)
    counts = cg.op_counts()
    assert "other" not in counts and counts["relu"] == 3 and counts["silu"] == 1
    assert counts["mean"] >= 2 and counts["mul"] >= 1
    assert cg.params == sum(p.numel() for p in model.parameters())  # PReLU slopes, GRN gamma / beta


def test_hand_written_activations_are_one_node():
    """``x * sigmoid(x)`` is silu and ``x * relu6(x + 3) / 6`` hardswish, as ``nn.SiLU`` /
    ``nn.Hardswish`` are (the ONNX importer fuses the same patterns)."""
    from nets import HandWrittenActivations

    counts = from_module(HandWrittenActivations(), X32).op_counts()
    assert counts["silu"] == 1 and counts["hardswish"] == 1
    assert not {"sigmoid", "relu6", "mul"} & set(counts)


def test_written_out_hard_sigmoid_and_global_pool_are_one_node():
    """``F.relu6(x + 3) / 6`` is a hardsigmoid and ``x.mean(3, keepdim=True).mean(2, keepdim=True)``
    one mean (how the OFA code base writes them): the CG equals the one of the same network written
    with ``nn.Hardsigmoid`` / ``AdaptiveAvgPool2d(1)``; a plain relu6 stays relu6."""
    from nets import SqueezeExciteNet

    written, modules = from_module(SqueezeExciteNet(True), X32), from_module(SqueezeExciteNet(False), X32)
    assert written.op_counts() == modules.op_counts()
    assert written.op_counts()["hardsigmoid"] == 1 and written.op_counts()["mean"] == 2
    assert written.fingerprint() == modules.fingerprint()
    assert written.flops == modules.flops and written.params == modules.params
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU6(), nn.Flatten())
    assert from_module(plain, X32).op_counts()["relu6"] == 1


def test_conv_subclass_with_padding_child_and_padding_modules():
    """A conv subclass whose forward calls a child module (EfficientNet-PyTorch's static same
    padding) is one conv reading the padded map; before, the child's call was recorded on meta
    constants and cut the graph ("output does not depend on its input").  Padding modules are
    plumbing, as ``F.pad`` is."""
    from nets import PaddedStem

    model = PaddedStem()
    cg = from_module(model, X32)
    assert cg.op_counts() == {"input": 1, "conv": 1, "batchnorm": 1, "relu": 1, "maxpool": 1, "linear": 1,
                              "output": 1}
    conv = next(n for n in cg.nodes if n.op == "conv")
    assert conv.out_shape == (16, 16, 8)
    assert conv.in_shape == (33, 33, 3)  # the padded map it reads (padding is plumbing, as F.pad)
    assert cg.params == sum(p.numel() for p in model.parameters())


def test_norm_with_activation_child_operand_order_and_fixed_global_pool():
    """A BatchNorm2d subclass that applies its activation child (timm's BatchNormAct2d) keeps the
    activation (as a leaf it vanished); ``gate * x`` and ``x * gate`` give the same CG (an
    element-wise node's input shape is its largest operand's); ``AvgPool2d`` over the whole map
    is global pooling, one ``mean`` like ``AdaptiveAvgPool2d(1)``."""
    from nets import GateOrder

    cgs = [from_module(GateOrder(gate_first, fixed), X32) for gate_first in (True, False) for fixed in (True, False)]
    assert len({cg.fingerprint() for cg in cgs}) == 1
    counts = cgs[0].op_counts()
    assert counts["relu"] == 1 and counts["batchnorm"] == 1 and counts["mean"] == 2 and "avgpool" not in counts
    mul = next(n for n in cgs[0].nodes if n.op == "mul")
    assert mul.in_shape == mul.out_shape == (32, 32, 8)
    assert cgs[0].params == sum(p.numel() for p in GateOrder(True, True).parameters())


def test_channels_last_tensors_keep_their_channels():
    """After ``permute(0, 2, 3, 1)`` a 4-D tensor is ``(B, H, W, C)``: the LayerNorm / Linear /
    GELU nodes of a ConvNeXt-style block have the block's 16 x 16 map and 8 (32) channels, not
    16 channels of 16 x 8."""
    from nets import ChannelsLastBlock

    cg = from_module(ChannelsLastBlock(), X32)
    shapes = {n.op: (n.in_shape, n.out_shape) for n in cg.nodes if n.op in ("layernorm", "gelu")}
    assert shapes["layernorm"] == ((16, 16, 8), (16, 16, 8))
    assert shapes["gelu"] == ((16, 16, 32), (16, 16, 32))
    fc1 = next(n for n in cg.nodes if n.op == "linear" and n.weight[1] == 32)
    assert fc1.in_shape == (16, 16, 8) and fc1.out_shape == (16, 16, 32)
    assert fc1.flops == 2 * 16 * 16 * 8 * 32  # rows x in x out, as before


def test_norm_subclass_with_functional_activation_keeps_it():
    """A BatchNorm2d subclass whose own forward applies ``F.relu`` (no child module) is traced
    through too: as a leaf its activation vanished."""

    class BNReLU(nn.BatchNorm2d):
        def forward(self, x):
            return F.relu(super().forward(x))

    model = nn.Sequential(nn.Conv2d(3, 8, 3), BNReLU(8), nn.Flatten(), nn.Linear(8 * 30 * 30, 10))
    cg = from_module(model, X32)
    assert cg.op_counts() == {"input": 1, "conv": 1, "batchnorm": 1, "relu": 1, "linear": 1, "output": 1}
    assert cg.params == sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("after_pad", [nn.ReLU, nn.Hardswish, lambda: nn.BatchNorm2d(3), lambda: nn.GroupNorm(1, 3)])
def test_padding_before_a_shape_preserving_op_moves_on_to_its_consumer(after_pad):
    """ZeroPad2d -> activation / norm -> conv: the padding is contracted into the conv's edge, as
    when it comes right before the conv (found by importing random layer stacks: before, 22 of
    290 valid stacks failed with 'from_module produced an invalid CG')."""
    model = nn.Sequential(nn.ZeroPad2d(1), after_pad(), nn.ReLU(), nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(8, 10))
    cg = from_module(model, (1, 3, 9, 9))
    ops = [n.op for n in cg.nodes]
    conv = cg.nodes[ops.index("conv")]
    assert conv.in_shape == (11, 11, 3) and conv.out_shape == (9, 9, 8)
    assert all(n.in_shape == n.out_shape == (9, 9, 3) for n in cg.nodes[1:ops.index("conv")])
    assert cg.params == sum(p.numel() for p in model.parameters())
    direct = from_module(nn.Sequential(nn.ZeroPad2d(1), nn.Conv2d(3, 8, 3)), (1, 3, 9, 9))
    assert direct.nodes[1].in_shape == conv.in_shape and direct.flops == conv.flops


def test_padding_before_an_activation_through_onnx():
    """The same through the ONNX importer (Pad -> Relu -> Conv shares the back end)."""
    import io

    from engine.cg import from_onnx

    model = nn.Sequential(nn.ZeroPad2d(1), nn.ReLU(), nn.Conv2d(3, 8, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                          nn.Linear(8, 10)).eval()
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(1, 3, 9, 9),), buf, dynamo=False, do_constant_folding=False)
    cg = from_onnx(buf.getvalue())
    assert [(n.op, n.in_shape) for n in cg.nodes[1:3]] == [("relu", (9, 9, 3)), ("conv", (11, 11, 3))]
    fx = from_module(model, (1, 3, 9, 9))
    assert [(n.op, n.in_shape, n.out_shape) for n in cg.nodes] == [(n.op, n.in_shape, n.out_shape) for n in fx.nodes]


def test_input_shape_may_be_an_example_tensor_and_a_missing_batch_is_named():
    m = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                      nn.Linear(8, 10))
    assert from_module(m, torch.randn(1, 3, 32, 32)).to_json() == from_module(m, (1, 3, 32, 32)).to_json()
    with pytest.raises(CGError, match=r"input_shape \(3, 32, 32\) has 3 numbers: .* e\.g\. \(1, 3, 32, 32\)"):
        from_module(m, (3, 32, 32))
