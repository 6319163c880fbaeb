"""from_onnx: agreement with from_module for both torch exporters, fused BN, decomposed
activations, hand-built graphs and bad input."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import pytest
import torch
from nets import (
    ActivationsAndGRN,
    HandWrittenActivations,
    MobileNetV2ish,
    SmallConvNet,
    TinyConvNeXt,
    TinyRegNet,
    TinySwin,
    TinyViT,
    TorchvisionPatterns,
    cifar_resnet,
)
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from engine.cg import CGError, from_module, from_onnx, load_json

X32 = (1, 3, 32, 32)


def randomise(model: nn.Module) -> nn.Module:
    """Non-trivial values everywhere: the exporters drop zero biases and share equal initializers."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    return model


def export(model: nn.Module, shape=X32, dynamo: bool = False, **kw) -> bytes:
    x = torch.randn(shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            prog = torch.onnx.export(model, (x,), dynamo=True, verbose=False, **kw)
            return prog.model_proto.SerializeToString()
        buf = io.BytesIO()
        torch.onnx.export(model, (x,), buf, dynamo=False, **kw)
        return buf.getvalue()


def counts_without_bn(cg) -> dict:
    return {k: v for k, v in cg.op_counts().items() if k != "batchnorm"}


def fused_bn_params(model: nn.Module) -> int:
    """Expected ONNX params when every BN is folded into the conv before it."""
    total = sum(p.numel() for p in model.parameters())
    mods = list(model.modules())
    for i, m in enumerate(mods):
        if isinstance(m, nn.BatchNorm2d):
            total -= 2 * m.num_features
            conv = mods[i - 1]
            assert isinstance(conv, nn.Conv2d)
            if conv.bias is None:
                total += m.num_features
    return total


@pytest.mark.parametrize("factory", [SmallConvNet, MobileNetV2ish, lambda: cifar_resnet(blocks=1)],
                         ids=["small", "mobilenet", "resnet"])
def test_torchscript_export_agrees_with_fx(factory):
    model = randomise(factory()).eval()
    fx = from_module(model, X32)
    cg = from_onnx(export(model))
    assert cg.validate() is cg
    assert counts_without_bn(cg) == counts_without_bn(fx)
    assert "batchnorm" not in cg.op_counts()  # folded by the exporter in eval mode
    assert cg.flops == fx.flops
    assert cg.params == fused_bn_params(model)


def test_vit_both_exporters_agree_with_fx():
    model = randomise(TinyViT()).eval()
    fx = from_module(model, X32)
    # optimize=False: Linear on 3-D input exported as Transpose(W) -> MatMul -> Add (still linear);
    # a dynamic batch axis: attention reshapes read the batch size at run time
    for dynamo, kw in ((False, {}), (True, {}), (True, {"optimize": False}), (False, _DYNAMIC_BATCH)):
        cg = from_onnx(export(model, dynamo=dynamo, **kw))
        assert cg.op_counts() == fx.op_counts(), (dynamo, kw)
        assert cg.flops == fx.flops
        assert cg.params == fx.params  # no BN; cls token, pos-embedding and LN weights counted


def test_dynamo_export_mobilenet():
    model = randomise(MobileNetV2ish()).eval()
    fx = from_module(model, X32)
    cg = from_onnx(export(model, dynamo=True))
    assert counts_without_bn(cg) == counts_without_bn(fx) and cg.flops == fx.flops
    assert cg.params == fused_bn_params(model)


class _ShuffleUnit(nn.Module):
    """ShuffleNetV2 unit: ``chunk`` (split sizes computed at run time by the TorchScript
    exporter: Shape -> Gather -> Add -> Div -> Mul -> Slice), a conv branch, channel shuffle."""

    def __init__(self, c: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, c, 3, padding=1)
        h = c // 2
        self.branches = nn.ModuleList(
            nn.Sequential(nn.Conv2d(h, h, 1), nn.ReLU(), nn.Conv2d(h, h, 3, padding=1, groups=h), nn.Conv2d(h, h, 1))
            for _ in range(2))
        self.head = nn.Linear(c, 10)

    def forward(self, x):
        x = self.stem(x)
        for branch in self.branches:
            a, b = x.chunk(2, dim=1)
            x = torch.cat([a, branch(b)], 1)
            n, c, h, w = x.shape
            x = x.view(n, 2, c // 2, h, w).transpose(1, 2).reshape(n, c, h, w)
        return self.head(x.mean((2, 3)))


_DYNAMIC_BATCH = {"input_names": ["x"], "dynamic_axes": {"x": {0: "batch"}}}


@pytest.mark.parametrize("dynamo, kw", [
    (False, {}), (True, {}), (True, {"optimize": False}), (False, _DYNAMIC_BATCH),
    (True, {"dynamic_shapes": ({0: torch.export.Dim("batch")},)})],
    ids=["torchscript", "dynamo", "dynamo-unoptimised", "torchscript-dynamic-batch", "dynamo-dynamic-batch"])
def test_runtime_split_sizes_keep_shapes_and_flops(dynamo, kw):
    """Split sizes computed at run time are folded (``_fold_shape_arithmetic``), so the convs
    after a ``chunk`` get their real input shapes: FLOPs equal torch.fx's (measured before the
    fold on a torchvision-style ShuffleNetV2 x1.0: 148 MFLOPs instead of 290).  The unoptimised
    dynamo export writes the chunk as SplitToSequence -> SequenceAt (shape plumbing)."""
    model = randomise(_ShuffleUnit()).eval()
    fx = from_module(model, X32)
    cg = from_onnx(export(model, dynamo=dynamo, **kw))
    assert cg.op_counts() == fx.op_counts()
    assert cg.flops == fx.flops and cg.params == fx.params
    assert [n.in_shape for n in cg.nodes if n.op == "conv"] == [n.in_shape for n in fx.nodes if n.op == "conv"]


def test_dynamic_batch_is_pinned_without_touching_the_callers_model():
    model = onnx.load_from_string(export(randomise(_ShuffleUnit()).eval(), **_DYNAMIC_BATCH))
    dim = model.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim.dim_param == "batch" and not dim.dim_value
    assert from_onnx(model).flops == from_module(_ShuffleUnit(), X32).flops
    assert dim.dim_param == "batch" and not dim.dim_value


def test_hand_built_padding_concat_is_plumbing():
    """Concat of one activation with parameter-free constants (zeros): padding, contracted."""
    rng = np.random.default_rng(3)
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["h"]),
        helper.make_node("ConstantOfShape", ["s_pad"], ["zeros"],
                         value=numpy_helper.from_array(np.zeros(1, np.float32))),
        helper.make_node("Concat", ["h", "zeros"], ["padded"], axis=3),
        helper.make_node("Conv", ["padded", "W2"], ["y"]),
    ]
    data = _model(nodes, {"W": rng.normal(size=(4, 2, 1, 1)), "s_pad": [1, 4, 5, 3],
                          "W2": rng.normal(size=(6, 4, 1, 1))}, x_shape=(1, 2, 5, 5), y_shape=(1, 6, 5, 8))
    cg = from_onnx(data)
    assert cg.op_counts() == {"input": 1, "conv": 2, "output": 1}
    assert cg.params == 4 * 2 + 6 * 4  # the zeros are not parameters


def test_hand_built_split_arithmetic_is_folded():
    """``Shape -> Gather -> Add -> Div -> Mul -> Slice`` with the end at INT64_MAX: ONNX shape
    inference alone leaves the Slice output without a shape."""
    rng = np.random.default_rng(2)
    big = np.iinfo(np.int64).max
    nodes = [
        helper.make_node("Shape", ["x"], ["shp"]),
        helper.make_node("Gather", ["shp", "s_one"], ["ch"], axis=0),
        helper.make_node("Add", ["ch", "s_one"], ["ch1"]),
        helper.make_node("Div", ["ch1", "s_two"], ["half"]),        # (8 + 1) // 2 = 4: truncation
        helper.make_node("Mul", ["half", "s_one"], ["stop"]),
        helper.make_node("Slice", ["x", "stop", "s_big", "s_one"], ["tail"]),  # channels 4..end
        helper.make_node("Conv", ["tail", "W"], ["y"]),
    ]
    data = _model(nodes, {"W": rng.normal(size=(6, 4, 1, 1)), "s_one": [1], "s_two": [2], "s_big": [big]},
                  x_shape=(1, 8, 5, 5), y_shape=(1, 6, 5, 5))
    cg = from_onnx(data, name="split")
    conv = next(n for n in cg.nodes if n.op == "conv")
    assert conv.in_shape == (5, 5, 4) and conv.out_shape == (5, 5, 6)
    assert conv.flops == 2 * 4 * 6 * 25 and cg.params == 6 * 4


def test_bn_folding_note_names_the_export_options():
    from engine.graphs.onnx_import import bn_folding_note

    model = randomise(SmallConvNet()).eval()
    folded = from_onnx(export(model))                            # eval mode: BN folded, convs get a bias
    kept = from_onnx(export(model, do_constant_folding=False))   # BN kept as nodes
    assert "batchnorm" in kept.op_counts() and "batchnorm" not in folded.op_counts()
    note = bn_folding_note([folded, kept, from_module(model, X32)])
    assert note.startswith("1 of 3 ONNX model(s)") and "optimize=False" in note
    assert bn_folding_note([kept]) is None and bn_folding_note([]) is None


def test_weights_are_not_needed():
    """Files are imported without their large weights in memory (``_drop_payloads``): the same
    CG as from a ModelProto with every value, which is not modified."""
    data = export(randomise(SmallConvNet()).eval(), do_constant_folding=False)
    model = onnx.load_from_string(data)
    big = [t for t in model.graph.initializer if np.prod(t.dims) > 1024]
    assert big and all(t.raw_data for t in big)
    assert from_onnx(data).to_dict() == from_onnx(model).to_dict()
    assert all(t.raw_data for t in big)  # the caller's model keeps its values


def test_model_without_its_external_weights(tmp_path):
    """A model saved with external data imports from the ``.onnx`` alone (what the app suggests
    for large uploads): the same CG."""
    data = export(randomise(SmallConvNet()).eval(), do_constant_folding=False)
    onnx.save_model(onnx.load_from_string(data), str(tmp_path / "net.onnx"), save_as_external_data=True,
                    location="net.weights", size_threshold=0)
    light = (tmp_path / "net.onnx").read_bytes()
    assert len(light) < len(data) / 2
    assert from_onnx(light, label="net.onnx").to_dict() == from_onnx(data).to_dict()


@pytest.mark.parametrize("factory", [TinyConvNeXt, TinyRegNet, TinySwin, TorchvisionPatterns, ActivationsAndGRN,
                                     HandWrittenActivations],
                         ids=["convnext", "regnet", "swin", "torchvision-patterns", "activations-grn", "hand-written"])
def test_modern_designs_agree_with_fx(factory):
    """ConvNeXt, RegNet and Swin patterns through the export settings that keep BatchNorm: the
    same ops, FLOPs and params as torch.fx (Swin's ``torch.roll`` is exported as Slice + Concat,
    and with ``optimize=False`` its shift arithmetic uses ``Mod``; both are shape plumbing;
    ``F.normalize`` is exported as ReduceL2 -> Clip -> Expand -> Div, an L2 norm; tensors with
    the windows folded into the batch keep all their elements per sample)."""
    model = randomise(factory()).eval()
    fx = from_module(model, X32)
    settings = [(True, {"optimize": False})]
    if factory is not TorchvisionPatterns:  # its computed float mask is an initializer there: a "parameter"
        settings.append((False, {"do_constant_folding": False}))
    for dynamo, kw in settings:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no op mapped to 'other'
            cg = from_onnx(export(model, dynamo=dynamo, **kw))
        assert cg.op_counts() == fx.op_counts(), (dynamo, kw)
        assert cg.flops == fx.flops and cg.params == fx.params, (dynamo, kw)
    cg = from_onnx(export(model, dynamo=True))  # defaults: BN folded (and the mask folded, as above)
    assert cg.flops == fx.flops
    if factory is not TorchvisionPatterns:
        assert counts_without_bn(cg) == counts_without_bn(fx)


def test_unfused_batchnorm_gives_exact_params():
    model = randomise(MobileNetV2ish())
    data = export(model.train(), training=torch.onnx.TrainingMode.TRAINING)
    fx = from_module(model, X32)
    cg = from_onnx(data)
    assert cg.op_counts() == fx.op_counts()
    assert cg.params == fx.params and cg.flops == fx.flops
    assert cg.fingerprint() == fx.fingerprint()


@pytest.mark.parametrize("act,expected", [(nn.GELU(), "gelu"), (nn.GELU(approximate="tanh"), "gelu"),
                                          (nn.SiLU(), "silu"), (nn.Hardswish(), "hardswish"),
                                          (nn.ReLU6(), "relu6")])
def test_decomposed_activations_are_recognised(act, expected):
    model = nn.Sequential(nn.Conv2d(3, 4, 3), act, nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cg = from_onnx(export(model, (1, 3, 8, 8), opset_version=13))
    assert cg.op_counts() == {"input": 1, "conv": 1, expected: 1, "linear": 1, "output": 1}


def test_unknown_op_warns():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Softplus(), nn.Flatten())
    with pytest.warns(UserWarning, match="Softplus"):
        cg = from_onnx(export(model, (1, 3, 8, 8)))
    assert cg.op_counts()["other"] == 1


def _model(nodes, inits, x_shape=(1, 4), y_shape=(1, 3), opset=17):
    graph = helper.make_graph(
        nodes, "hand", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape))],
        initializer=[numpy_helper.from_array(np.asarray(v, dtype=np.float32 if k[0] != "s" else np.int64), k)
                     for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def test_hand_built_matmul_add_and_shape_chain():
    rng = np.random.default_rng(0)
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["h"]),
        helper.make_node("Add", ["bias", "h"], ["hb"]),           # bias folded into the linear
        helper.make_node("Relu", ["hb"], ["r"]),
        helper.make_node("Shape", ["r"], ["shp"]),                 # Shape -> Gather -> Concat -> Reshape
        helper.make_node("Gather", ["shp", "s_idx"], ["b"], axis=0),
        helper.make_node("Concat", ["b", "s_minus1"], ["newshape"], axis=0),
        helper.make_node("Reshape", ["r", "newshape"], ["flat"]),
        helper.make_node("Constant", [], ["half"], value=numpy_helper.from_array(np.array(0.5, np.float32))),
        helper.make_node("Mul", ["flat", "half"], ["scaled"]),    # x * constant: contracted
        helper.make_node("Gemm", ["scaled", "W2", "b2"], ["y"], transB=1),
    ]
    data = _model(nodes, {"W": rng.normal(size=(4, 8)), "bias": rng.normal(size=8), "s_idx": [0],
                          "s_minus1": [-1], "W2": rng.normal(size=(3, 8)), "b2": rng.normal(size=3)})
    cg = from_onnx(data, name="hand")
    assert cg.op_counts() == {"input": 1, "linear": 2, "relu": 1, "output": 1}
    lin = [n for n in cg.nodes if n.op == "linear"]
    assert [n.weight for n in lin] == [(4, 8, 1, 1), (8, 3, 1, 1)]
    assert all(n.bias for n in lin) and cg.params == 4 * 8 + 8 + 8 * 3 + 3
    assert cg.flops == 2 * (4 * 8 + 8 * 3)
    assert load_json(cg.to_json()).to_dict() == cg.to_dict()


def test_hand_built_separate_batchnorm_and_pools():
    rng = np.random.default_rng(1)
    nodes = [
        helper.make_node("Conv", ["x", "W"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "g", "b", "m", "v"], ["bn"]),
        helper.make_node("Clip", ["bn", "lo", "hi"], ["r6"]),
        helper.make_node("MaxPool", ["r6"], ["mp"], kernel_shape=[2, 2], strides=[2, 2]),
        helper.make_node("GlobalAveragePool", ["mp"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["y"]),
    ]
    inits = {"W": rng.normal(size=(6, 3, 3, 3)), "g": np.ones(6), "b": np.zeros(6), "m": np.zeros(6),
             "v": np.ones(6), "lo": np.array(0.0), "hi": np.array(6.0)}
    cg = from_onnx(_model(nodes, inits, x_shape=(1, 3, 16, 16), y_shape=(1, 6)))
    assert [n.op for n in cg.nodes] == ["input", "conv", "batchnorm", "relu6", "maxpool", "mean", "output"]
    conv = cg.nodes[1]
    assert conv.stride == (2, 2) and conv.out_shape == (8, 8, 6) and not conv.bias
    assert cg.params == 6 * 27 + 12 and cg.nodes[4].stride == (2, 2)


@pytest.mark.parametrize("data,match", [(b"", "empty"), (b"\x00\x01garbage-bytes\xff" * 3, "not a valid ONNX"),
                                        (b"not onnx at all", "not a valid ONNX")])
def test_bad_bytes(data, match):
    with pytest.raises(CGError, match=match):
        from_onnx(data)


def test_missing_file_and_label(tmp_path):
    with pytest.raises(CGError, match="file not found"):
        from_onnx(tmp_path / "nope.onnx")
    with pytest.raises(CGError, match="upload.onnx"):
        from_onnx(b"\x12\x34junk", label="upload.onnx")


def test_model_without_input_dependency_is_rejected():
    nodes = [helper.make_node("Identity", ["c"], ["y"])]
    data = _model(nodes, {"c": np.ones(3)})
    with pytest.raises(CGError, match="does not depend on its input"):
        from_onnx(data)


def test_onnx_model_proto_and_path(tmp_path):
    data = export(SmallConvNet().eval())
    path = tmp_path / "small.onnx"
    path.write_bytes(data)
    a, b = from_onnx(path), from_onnx(onnx.load_model_from_string(data))
    assert a.fingerprint() == b.fingerprint()
    assert from_onnx(path, name="mine").name == "mine"


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_written_out_hard_sigmoid_and_global_pool_match_from_module(dynamo):
    """``Clip(x + 3, 0, 6) / 6`` is a hardsigmoid and two chained ReduceMeans one mean, as
    ``from_module`` maps the same code (OFA's SE blocks and global pooling)."""
    from nets import SqueezeExciteNet

    model = SqueezeExciteNet(True).eval()
    kw = {"optimize": False} if dynamo else {"opset_version": 17}
    cg = from_onnx(export(model, dynamo=dynamo, **kw))
    fx = from_module(SqueezeExciteNet(False), X32)
    assert cg.op_counts() == fx.op_counts()
    assert cg.fingerprint() == fx.fingerprint()


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_operand_order_fixed_global_pool_and_padding_match_from_module(dynamo):
    """The same canonical forms from ONNX: operand order of an element-wise gate, a fixed
    AveragePool over the whole map, and an explicit Pad before a conv, as from_module maps them."""
    from nets import GateOrder, PaddedStem

    kw = {"optimize": False} if dynamo else {"opset_version": 17, "do_constant_folding": False}
    for model, twin in ((GateOrder(True, True), GateOrder(False, False)), (PaddedStem(), PaddedStem())):
        cg = from_onnx(export(model.eval(), dynamo=dynamo, **kw))
        assert cg.fingerprint() == from_module(twin, X32).fingerprint()


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_run_time_same_padding_and_group_norm_match_from_module(dynamo):
    """The TorchScript export computes the "same" padding with float Div, Ceil and Clip: folded
    (Clip was not folded and Div truncated floats, so a timm EfficientNetV2 lost 99.6% of its
    FLOPs); GroupNorm's affine Mul / Add belong to the norm node, as in from_module."""
    from nets import SamePadGroupNorm

    model = SamePadGroupNorm().eval()
    kw = {"optimize": False} if dynamo else {"opset_version": 17, "do_constant_folding": False}
    shape = (1, 3, 75, 75)
    cg = from_onnx(export(model, shape, dynamo=dynamo, **kw))
    fx = from_module(model, shape)
    assert cg.flops == fx.flops and cg.op_counts() == fx.op_counts()
    assert next(n for n in cg.nodes if n.op == "conv").out_shape == (38, 38, 8)
    norm = next(n for n in cg.nodes if n.op == "layernorm")
    assert norm.params >= 16 and norm.out_shape == (38, 38, 8)


@pytest.mark.parametrize("dynamo", [False, True], ids=["torchscript", "dynamo"])
def test_channels_last_block_matches_from_module(dynamo):
    """``Transpose(perm=[0, 2, 3, 1])`` makes a tensor channels-last in the ONNX importer too."""
    from nets import ChannelsLastBlock

    model = ChannelsLastBlock().eval()
    kw = {"optimize": False} if dynamo else {"opset_version": 17, "do_constant_folding": False}
    cg = from_onnx(export(model, dynamo=dynamo, **kw))
    assert cg.fingerprint() == from_module(model, X32).fingerprint()
    assert next(n for n in cg.nodes if n.op == "layernorm").out_shape == (16, 16, 8)


def test_attention_bias_is_an_add_in_both_importers():
    """``scaled_dot_product_attention(..., attn_mask=learned bias)``: from_module writes the bias
    as an add with its parameters before the softmax, as the decomposed export has it (before,
    the add existed only in the ONNX CG: BEiT, CoAtNet, MaxViT, TinyViT disagreed)."""
    from nets import BiasedAttention

    model = BiasedAttention().eval()
    fx = from_module(model, X32)
    add = next(n for n in fx.nodes if n.op == "add")
    assert add.params == 16 * 16 and fx.params == sum(p.numel() for p in model.parameters())
    cg = from_onnx(export(model, dynamo=True, optimize=False))
    assert cg.op_counts() == fx.op_counts() and cg.flops == fx.flops


def test_mha_attention_heads_are_not_channels_last():
    """nn.MultiheadAttention exported by dynamo splits heads as (B * h, N, d) -> (B, h, N, d): not
    tokens reshaped to a channels-last map, so the attention nodes keep from_module's shapes."""
    from nets import MHAViT

    model = randomise(MHAViT()).eval()
    cg = from_onnx(export(model, dynamo=True, optimize=False))
    assert cg.fingerprint() == from_module(model, X32).fingerprint()


def test_clip_after_an_add_of_a_channel_vector():
    """``GroupNorm -> clamp(0, 6)`` exports as ``... Add(x, bias[C]) -> Clip``; checking whether
    the Add is ``x + 3`` compared the C-element bias with None (list.count) and crashed with
    'The truth value of an array ... is ambiguous' (found by exporting random layer stacks)."""

    class Clamp(nn.Module):
        def forward(self, x):
            return x.clamp(0, 6)

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.GroupNorm(2, 4), Clamp(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 10)).eval()
    cg = from_onnx(export(model, (1, 3, 8, 8), do_constant_folding=False))
    assert [n.op for n in cg.nodes] == ["input", "conv", "layernorm", "relu6", "mean", "linear", "output"]


@pytest.mark.parametrize("make", [lambda: nn.GroupNorm(1, 4), lambda: nn.GroupNorm(2, 4), lambda: nn.GroupNorm(4, 4),
                                  lambda: nn.GroupNorm(2, 4, affine=False), lambda: nn.InstanceNorm2d(4, affine=True)])
def test_group_norm_and_resize_params_are_exact(make):
    """TorchScript exports nn.GroupNorm as Reshape -> InstanceNormalization(ones(G), zeros(G)) ->
    Reshape -> Mul -> Add, and F.interpolate as Resize(scales): the exporter's G-element constants
    and the scales were counted as parameters (+2G and +4 before)."""

    class Up(nn.Module):
        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), make(), nn.ReLU(), Up(), nn.Conv2d(4, 4, 1)).eval()
    cg = from_onnx(export(model, (1, 3, 8, 8), do_constant_folding=False))
    assert cg.params == sum(p.numel() for p in model.parameters())
    assert cg.op_counts()["layernorm"] == 1


def test_shapes_after_an_upsample_are_known():
    """F.interpolate(scale_factor=2) exports (TorchScript) as Resize with scales = Concat of two
    float Constants; they were not folded, so every tensor after the Resize had no static shape
    and a conv there got the FLOPs of a 1x1x1 input."""

    class Up(nn.Module):
        def forward(self, x):
            return torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")

    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), Up(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10)).eval()
    cg = from_onnx(export(model, (1, 3, 8, 8), do_constant_folding=False))
    fx = from_module(model, (1, 3, 8, 8))
    assert [(n.op, n.in_shape, n.out_shape, n.flops) for n in cg.nodes] == \
        [(n.op, n.in_shape, n.out_shape, n.flops) for n in fx.nodes]
    assert cg.params == fx.params == sum(p.numel() for p in model.parameters())


class _Clamp(nn.Module):
    def forward(self, x):
        return x.clamp(0, 6)


class _HardSwishWritten(nn.Module):
    def forward(self, x):
        return x * (x + 3).clamp(0, 6) / 6


@pytest.mark.parametrize("act, op", [(_Clamp, "relu6"), (_HardSwishWritten, "hardswish")])
def test_clamp_written_as_max_min_by_the_dynamo_exporter(act, op):
    """dynamo without optimisation (the BN-keeping export) writes ``x.clamp(0, 6)`` as
    ``Min(Max(x, 0), 6)``: two ``other`` nodes before; now a relu6, as torch.fx and Clip give."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), act(), nn.Conv2d(4, 4, 1)).eval()
    cg = from_onnx(export(model, (1, 3, 8, 8), dynamo=True, optimize=False))
    assert [n.op for n in cg.nodes] == ["input", "conv", op, "conv", "output"]
    assert [n.op for n in cg.nodes] == [n.op for n in from_module(model, (1, 3, 8, 8)).nodes]


class _ClampTo(nn.Module):
    def __init__(self, lo, hi):
        super().__init__()
        self.lo, self.hi = lo, hi

    def forward(self, x):
        return x.clamp(self.lo, self.hi)


@pytest.mark.filterwarnings("ignore:from_(module|onnx). mapped unsupported op")
@pytest.mark.parametrize("lo, hi, op", [(0.0, 6.0, "relu6"), (0.0, None, "relu"), (0.0, float("inf"), "relu"),
                                        (-1.0, 1.0, "other"), (0.0, 1.0, "other")])
def test_torch_fx_and_onnx_read_a_clamp_alike(lo, hi, op):
    """One clamp map for both importers: ``clamp(0, inf)`` is a relu in both (torch.fx used to give
    an ``other`` node there, ONNX a relu)."""
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), _ClampTo(lo, hi), nn.Conv2d(4, 4, 1)).eval()
    fx = from_module(model, (1, 3, 8, 8))
    onnx_cg = from_onnx(export(model, (1, 3, 8, 8)))
    assert fx.nodes[2].op == onnx_cg.nodes[2].op == op
    assert [n.op for n in fx.nodes] == [n.op for n in onnx_cg.nodes]
