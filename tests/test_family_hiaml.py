"""HiAML family: spec validation, sampler, network shapes, hand-counted cost, CG == traced module."""

from __future__ import annotations

import collections
import json

import pytest
import torch
from authors_cg import authors_summary, our_summary

from engine.families import SpecError, get
from engine.families.hiaml import BLOCKS
from engine.graphs.fx_import import from_module


@pytest.fixture(scope="module")
def fam():
    return get("hiaml")


def test_registered(fam):
    assert fam.name == "hiaml" and fam.title == "HiAML"
    assert fam.input_shape(None) == (1, 3, 32, 32)
    assert fam.space_size() == 38_416 == 14 ** 4
    assert fam.describe()["space_size"] == 38_416


def test_enumerate_lists_the_whole_space(fam):
    specs = list(fam.enumerate())
    assert len(specs) == 38_416
    assert len({tuple(s) for s in specs}) == 38_416
    assert specs[0] == ["hiaml_z"] * 4 and specs[-1] == ["hiaml_src8"] * 4


@pytest.mark.parametrize("spec", [
    ["hiaml_a22", "hiaml_b23", "hiaml_src1", "hiaml_z"],
    ["A22", " b23", "hiaml_SRC1", "z"],
    "a22, b23, src1, z",
    ("hiaml_a22", "hiaml_b23", "hiaml_src1", "hiaml_z"),
])
def test_validate_normalises(fam, spec):
    assert fam.validate(spec) == ["hiaml_a22", "hiaml_b23", "hiaml_src1", "hiaml_z"]


@pytest.mark.parametrize("spec, message", [
    (None, "expected a list of 4 block names, got NoneType"),
    (["z", "z", "z"], "expected 4 block names .* got 3"),
    (["z", "z", "hiaml_q99", "z"], r"spec\[2\]: unknown block 'hiaml_q99'; allowed: hiaml_z, hiaml_a22"),
    (["z", 5, "z", "z"], r"spec\[1\]: expected a block name \(str\), got 5"),
])
def test_validate_errors_name_field_value_and_choices(fam, spec, message):
    with pytest.raises(SpecError, match=message):
        fam.validate(spec)


def test_sampler_is_deterministic_distinct_and_valid(fam):
    a, b, c = fam.sample(50, seed=3), fam.sample(50, seed=3), fam.sample(50, seed=4)
    assert a == b and a != c
    assert len({tuple(s) for s in a}) == 50
    for spec in a:
        assert json.loads(json.dumps(spec)) == spec
        assert fam.validate(spec) == spec
        assert json.loads(fam.canonical(spec)) == spec
        assert fam.canonical([b.upper() for b in spec]) == fam.canonical(spec)
        assert len(fam.spec_hash(spec)) == 16
    with pytest.raises(ValueError):
        fam.sample(38_417)


def test_sampler_is_uniform_over_blocks(fam):
    counts = collections.Counter(b for spec in fam.sample(300, seed=0) for b in spec)
    assert set(counts) == set(BLOCKS)
    expected = 300 * 4 / 14  # ~86 per block
    assert all(0.5 * expected < c < 1.6 * expected for c in counts.values()), counts


def test_forward_and_stage_shapes(fam):
    spec = ["hiaml_r30", "hiaml_src1", "hiaml_t31", "hiaml_g30"]
    m = fam.build_module(spec)
    seen = {}
    for name in ("stem", "s0b1", "s1b0", "s1b1", "s2b1", "s3b0", "s3b1"):
        m.subs[name].register_forward_hook(lambda mod, i, o, name=name: seen.__setitem__(name, tuple(o.shape)))
    with torch.no_grad():
        y = m(torch.randn(1, 3, 32, 32))
    assert tuple(y.shape) == (1, 10) and torch.isfinite(y).all()
    assert seen == {"stem": (1, 64, 16, 16), "s0b1": (1, 64, 16, 16), "s1b0": (1, 128, 8, 8),
                    "s1b1": (1, 128, 8, 8), "s2b1": (1, 128, 8, 8), "s3b0": (1, 256, 4, 4),
                    "s3b1": (1, 256, 4, 4)}


def test_hand_counted_params_and_flops():
    fam = get("hiaml")
    spec = ["l20"] * 4  # Conv3(x, s) -> Conv1 -> ReLU, no skip

    def l20(c_in, c):  # conv3x3 + BN + conv1x1 + BN, no bias
        return c_in * c * 9 + 2 * c + c * c + 2 * c

    params = (3 * 64 * 9 + 2 * 64                      # stem
              + 2 * l20(64, 64)                        # stage 0 @16px
              + l20(64, 128) + l20(128, 128)           # stage 1 @8px
              + 2 * l20(128, 128)                      # stage 2 @8px
              + l20(128, 256) + l20(256, 256)          # stage 3 @4px
              + 256 * 10 + 10)                         # classifier
    assert params == 1_688_394
    macs = (16 * 16 * 64 * 3 * 9
            + 2 * 16 * 16 * (64 * 64 * 9 + 64 * 64)
            + 8 * 8 * (64 * 128 * 9 + 128 * 128) + 8 * 8 * (128 * 128 * 9 + 128 * 128)
            + 2 * 8 * 8 * (128 * 128 * 9 + 128 * 128)
            + 4 * 4 * (128 * 256 * 9 + 256 * 256) + 4 * 4 * (256 * 256 * 9 + 256 * 256)
            + 256 * 10)
    m = fam.build_module(spec)
    assert sum(p.numel() for p in m.parameters()) == params
    cg = fam.to_cg(spec)
    assert cg.params == params
    assert cg.flops == 2 * macs
    ops = cg.op_counts()
    # stem conv + 8 blocks x 2 convs; 1 + 8 x 2 BNs; stem ReLU + 8 x (conv3 ReLU + final ReLU)
    assert (ops["conv"], ops["batchnorm"], ops["relu"]) == (17, 17, 17)
    assert "add" not in ops and ops["linear"] == 1 and ops["mean"] == 1


def test_three_term_sum_is_one_add_and_projections_are_separate(fam):
    # r30 in stage 1 (stride 2): Proj_a and Proj_b are two 1x1 convs; the final sum is one add
    cg = fam.to_cg(["r30", "r30", "r30", "r30"])
    preds = cg.predecessors()
    adds = [n for n in cg.nodes if n.op == "add"]
    assert len(adds) == 16 and sorted(len(preds[n.id]) for n in adds) == [2] * 8 + [3] * 8
    proj = [n for n in cg.nodes if n.op == "conv" and n.weight[2:] == (1, 1) and n.stride == (2, 2)]
    assert len(proj) == 4  # 2 per reducing stage
    # no projection in stride-1, same-width blocks; IncS uses ReLU6, everything else ReLU
    assert cg.op_counts()["relu6"] == 8 * 2 * 2


def test_to_cg_equals_traced_module(fam):
    specs = [[b] * 4 for b in BLOCKS] + [["r30", "t31", "g30", "src3"]]  # every block, stride 1 and 2
    for spec in specs:
        direct = fam.to_cg(spec)
        traced = from_module(fam.build_module(spec), fam.input_shape(spec))
        assert direct.fingerprint() == traced.fingerprint(), spec
        assert (direct.flops, direct.params) == (traced.flops, traced.params), spec
        assert (direct.num_nodes, direct.num_edges) == (traced.num_nodes, traced.num_edges), spec


# --- cross-check against the GENNAPE authors' CG of one network (reference data, optional) -----

def test_matches_authors_cg(shared_data, fam):
    """The authors' HiAMLNet4153 is src1 / src1 / r30 / src3: same convs (shapes, kernels, strides via
    H/W, no bias), BNs and activations; their TF graph sums three terms with two binary adds."""
    path = shared_data / "gennape_format" / "hiaml_best_cg.pkl"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    theirs, their_ops = authors_summary(path)
    ours, our_ops, binary_adds = our_summary(fam.to_cg(["src1", "src1", "r30", "src3"]))
    assert ours == theirs and sum(ours.values()) == 31
    assert (our_ops["batchnorm"], our_ops["relu"], our_ops["relu6"]) == (
        their_ops["fusedbatchnorm"], their_ops["relu"], their_ops["relu6"])
    assert binary_adds == their_ops["add"] == 12 and our_ops["add"] == 10
    assert our_ops["mean"] == their_ops["mean"] and our_ops["linear"] == their_ops["matmul"] == 1
