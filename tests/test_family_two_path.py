"""Two-Path family: spec validation, sampler, network shapes, hand-counted cost, CG == traced module."""

from __future__ import annotations

import collections
import copy
import json

import pytest
import torch
from authors_cg import authors_summary, our_summary

from engine.families import SpecError, get
from engine.families.two_path import CONV_OPS, SUPP_OPS
from engine.graphs.fx_import import from_module


@pytest.fixture(scope="module")
def fam():
    return get("two_path")


SPEC = {"path1": [["conv3x3"], ["conv3x3"]], "path1_reduce": [0, 1],
        "path2": [["maxpool3x3", "bottleneck-r4-k3"], ["inception_s3x3"], ["conv5x5"]], "path2_reduce": [2, 1]}


def test_registered(fam):
    assert fam.name == "two_path" and fam.title == "Two-Path"
    assert get("Two-Path") is fam
    # per block: 8 + (64 + 2*8*5) + (512 + 3*5*64) = 1624 op lists; paths of 2/3/4 blocks with C(L, 2) reductions
    paths = 1624 ** 2 + 3 * 1624 ** 3 + 6 * 1624 ** 4
    assert fam.space_size() == paths * (paths + 1) // 2
    with pytest.raises(NotImplementedError):
        fam.enumerate()


def test_validate_normalises(fam):
    alt = {"path1": [{"ops": ["Conv3x3"]}, {"op_names": ["CONV3X3"]}], "path1_reduce_inds": [1, 0],
           "path2": [["maxpool_3x3", "bottleneck_r4_k3"], ["inception-s3x3"], ["conv5x5"]], "path2_reduce": (2, 1)}
    norm = fam.validate(alt)
    assert norm == {**SPEC, "path2_reduce": [1, 2]}
    assert list(norm) == ["path1", "path2", "path1_reduce", "path2_reduce"]
    assert json.loads(json.dumps(norm)) == norm


def _bad(**changes):
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    return spec


@pytest.mark.parametrize("spec, message", [
    ([1, 2], "expected an object with path1, path2"),
    (_bad(path1=[["conv3x3"]]), r"spec.path1: expected a list of 2-4 blocks, got 1 blocks"),
    (_bad(path1=[["conv3x3"]] * 5, path1_reduce=[0, 1]), "2-4 blocks, got 5"),
    (_bad(path1=[["conv3x3"], []]), r"path1\[1\]: a block has 1-3 ops, got 0"),
    (_bad(path1=[["conv3x3"], ["conv3x3"] * 4]), "1-3 ops, got 4"),
    (_bad(path1=[["conv3x3"], ["conv7x7"]]), r"path1\[1\]\[0\]: unknown op 'conv7x7'; allowed: conv ops conv3x3"),
    (_bad(path1=[["conv3x3"], ["maxpool3x3"]]), r"path1\[1\]: a block needs at least one conv op"),
    (_bad(path1=[["conv3x3"], ["conv1x1", "conv3x3", "avgpool3x3"]]), "at most one supp op, got 2"),
    (_bad(path1_reduce=[0]), r"spec.path1_reduce: expected 2 distinct block indices, got \[0\]"),
    (_bad(path1_reduce=[1, 1]), "2 distinct block indices"),
    (_bad(path2_reduce=[1, 3]), "block index 3 out of range; the path has 3 blocks"),
    ({k: v for k, v in SPEC.items() if k != "path2_reduce"}, "expected field path2_reduce"),
    (_bad(path3=[]), r"unknown field\(s\) \['path3'\]"),
])
def test_validate_errors_name_field_value_and_choices(fam, spec, message):
    with pytest.raises(SpecError, match=message):
        fam.validate(spec)


def test_canonical_ignores_path_order(fam):
    swapped = {"path1": SPEC["path2"], "path2": SPEC["path1"], "path1_reduce": SPEC["path2_reduce"],
               "path2_reduce": SPEC["path1_reduce"]}
    assert fam.canonical(swapped) == fam.canonical(SPEC)
    assert fam.spec_hash(swapped) == fam.spec_hash(SPEC)
    assert fam.to_cg(swapped).fingerprint() == fam.to_cg(SPEC).fingerprint()
    other = _bad(path2_reduce=[0, 1])
    assert fam.canonical(other) != fam.canonical(SPEC)


def test_sampler_is_deterministic_and_valid(fam):
    a, b, c = fam.sample(30, seed=5), fam.sample(30, seed=5), fam.sample(30, seed=6)
    assert a == b and a != c
    assert len({fam.canonical(s) for s in a}) == 30
    for spec in a:
        assert fam.validate(spec) == spec
        assert json.loads(json.dumps(spec)) == spec
        assert fam.validate(json.loads(fam.canonical(spec))) == json.loads(fam.canonical(spec))


def test_sampler_distribution(fam):
    specs = fam.sample(300, seed=0)
    lengths = collections.Counter(len(s[p]) for s in specs for p in ("path1", "path2"))
    assert set(lengths) == {2, 3, 4} and all(150 < lengths[k] < 250 for k in (2, 3, 4)), lengths
    blocks = [blk for s in specs for p in ("path1", "path2") for blk in s[p]]
    n_ops = collections.Counter(len(blk) for blk in blocks)
    assert all(abs(n_ops[k] / len(blocks) - 1 / 3) < 0.06 for k in (1, 2, 3)), n_ops
    # every further op: supp with p = 5/13 unless the block already has one
    second = [blk for blk in blocks if len(blk) == 2]
    frac_supp = sum(any(op in SUPP_OPS for op in blk) for blk in second) / len(second)
    assert abs(frac_supp - 5 / 13) < 0.08, frac_supp
    firsts = collections.Counter(blk[0] for blk in blocks if len(blk) == 1)
    assert set(firsts) <= set(CONV_OPS) and len(firsts) == len(CONV_OPS)
    reduce = collections.Counter(tuple(s["path1_reduce"]) for s in specs if len(s["path1"]) == 3)
    assert set(reduce) == {(0, 1), (0, 2), (1, 2)}


def test_forward_and_path_shapes(fam):
    m = fam.build_module(SPEC)
    seen = {}
    for name in ("stem", "p1b0", "p1b1", "p2b0", "p2b1", "p2b2"):
        m.subs[name].register_forward_hook(lambda mod, i, o, name=name: seen.__setitem__(name, tuple(o.shape)))
    with torch.no_grad():
        y = m(torch.randn(1, 3, 32, 32))
    assert tuple(y.shape) == (1, 10) and torch.isfinite(y).all()
    assert seen == {"stem": (1, 32, 16, 16), "p1b0": (1, 64, 8, 8), "p1b1": (1, 128, 4, 4),
                    "p2b0": (1, 32, 16, 16), "p2b1": (1, 64, 8, 8), "p2b2": (1, 128, 4, 4)}
    for spec in fam.sample(3, seed=1):
        with torch.no_grad():
            assert tuple(fam.build_module(spec)(torch.randn(2, 3, 32, 32)).shape) == (2, 10)
        last = fam.to_cg(spec).nodes
        concat = next(n for n in last if n.op == "concat")
        assert concat.in_shape == (4, 4, 128) and concat.out_shape == (4, 4, 256)


def test_hand_counted_params_and_flops(fam):
    def conv(ci, co, kh, kw=None):
        return ci * co * kh * (kh if kw is None else kw)

    bn = 2  # affine weight + bias per channel
    params = (conv(3, 32, 3) + bn * 32 + conv(32, 32, 3) + bn * 32                   # stem
              + conv(32, 64, 3) + bn * 64 + conv(64, 128, 3) + bn * 128              # path 1
              + bn * 32 + conv(32, 8, 3) + bn * 8 + conv(8, 32, 3) + bn * 32         # maxpool+BN, bottleneck r4
              + conv(32, 64, 1, 3) + bn * 64 + conv(64, 64, 3, 1) + bn * 64          # inception_s3x3 (s2)
              + conv(64, 128, 5) + bn * 128                                          # conv5x5 (s2)
              + conv(256, 512, 3) + bn * 512 + 512 * 10 + 10)                        # post conv, classifier
    macs = (32 * 32 * conv(3, 32, 3) + 16 * 16 * conv(32, 32, 3)
            + 8 * 8 * conv(32, 64, 3) + 4 * 4 * conv(64, 128, 3)
            + 16 * 16 * (conv(32, 8, 3) + conv(8, 32, 3))
            + 8 * 8 * (conv(32, 64, 1, 3) + conv(64, 64, 3, 1))
            + 4 * 4 * conv(64, 128, 5)
            + 4 * 4 * conv(256, 512, 3) + 512 * 10)
    assert params == 1_517_050
    assert sum(p.numel() for p in fam.build_module(SPEC).parameters()) == params
    cg = fam.to_cg(SPEC)
    assert (cg.params, cg.flops) == (params, 2 * macs)
    ops = cg.op_counts()
    # residual only in the non-reducing block p2b0; bottlenecks and pools have no activation
    assert ops["add"] == 1 and ops["maxpool"] == 1 and ops["relu6"] == 2 + 2 + 2 + 1 + 1
    assert ops["concat"] == 1 and "identity" not in ops


def test_to_cg_equals_traced_module(fam):
    for spec in fam.sample(5, seed=21) + [SPEC]:
        direct = fam.to_cg(spec)
        traced = from_module(fam.build_module(spec), fam.input_shape(spec))
        assert direct.fingerprint() == traced.fingerprint(), spec
        assert (direct.flops, direct.params) == (traced.flops, traced.params), spec
        assert (direct.num_nodes, direct.num_edges) == (traced.num_nodes, traced.num_edges), spec


# --- cross-check against the GENNAPE authors' CG of one network (reference data, optional) -----

def test_matches_authors_cg(shared_data, fam):
    """The authors' TwoPathNet4860 (spec read off its node names): same convs and activations; their
    TF graph keeps an ``identity`` node for Dropout(0), contracted away here."""
    path = shared_data / "gennape_format" / "two_path_best_cg.pkl"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    spec = {"path1": [["conv5x5"], ["conv5x5"]], "path1_reduce": [0, 1],
            "path2": [["double3x3", "bottleneck-e2-k3"], ["conv1x1", "bottleneck-r2-k3"],
                      ["bottleneck-e2-k3", "bottleneck-r2-k3", "bottleneck-e2-k1"], ["bottleneck-r2-k3"]],
            "path2_reduce": [1, 3]}
    theirs, their_ops = authors_summary(path)
    cg = fam.to_cg(spec)
    ours, our_ops, binary_adds = our_summary(cg)
    assert ours == theirs and sum(ours.values()) == 20
    assert (our_ops["batchnorm"], our_ops["relu6"], our_ops["concat"], binary_adds) == (
        their_ops["fusedbatchnorm"], their_ops["relu6"], their_ops["concat"], their_ops["add"])
    assert their_ops["identity"] == 1 and "identity" not in our_ops
    assert cg.num_nodes == sum(their_ops.values()) - 1


def test_every_op_traces_like_the_direct_builder(fam):
    spec = {"path1": [["conv3x3", "conv1x1", "conv5x5"], ["double3x3", "bottleneck-r2-k1", "bottleneck-r2-k3"],
                      ["bottleneck-r4-k3", "bottleneck-e2-k1", "bottleneck-e2-k3"],
                      ["inception_s3x3", "avgpool3x3", "inception_s5x5"]], "path1_reduce": [0, 2],
            "path2": [["maxpool3x3", "inception_s5x5"], ["bottleneck-e2-k3"], ["double3x3"]], "path2_reduce": [0, 1]}
    direct = fam.to_cg(spec)
    traced = from_module(fam.build_module(spec), fam.input_shape(spec))
    assert direct.fingerprint() == traced.fingerprint()
    assert (direct.flops, direct.params, direct.num_edges) == (traced.flops, traced.params, traced.num_edges)
