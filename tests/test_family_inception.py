"""Inception family: spec validation, sampler, network shapes, hand-counted cost, CG == traced module."""

from __future__ import annotations

import collections
import copy
import json

import pytest
import torch
from authors_cg import authors_summary, our_summary

from engine.families import SpecError, get
from engine.families.inception import CONV_OPS, SUPP_OPS, path_widths
from engine.graphs.fx_import import from_module


@pytest.fixture(scope="module")
def fam():
    return get("inception")


def _p(ops, width, c_internal=None):
    return {"ops": ops, "width": width, "c_internal": width if c_internal is None else c_internal}


#: covers every op, the stride-2 forms of inception_p / inception_s / depthwise, the 48 -> 32 projection
#: (3 clamped paths at C = 32), internal widths above and below the path width, pools before convs
SPEC = {"stages": [
    {"n_blocks": 2, "paths": [_p(["depthwise3x3", "maxpool3x3"], 16), _p(["maxpool3x3", "conv3x3"], 16),
                              _p(["inception_s3x3", "conv1x1"], 16, 32)]},
    {"n_blocks": 2, "paths": [_p(["conv3x3", "conv1x1"], 64, 128)]},
    {"n_blocks": 2, "paths": [_p(["inception_p3x3", "avgpool3x3"], 32), _p(["inception_s5x5", "double1x1"], 32, 16),
                              _p(["conv5x5", "depthwise5x5"], 32, 64), _p(["conv3x3", "conv3x3"], 32)]},
    {"n_blocks": 2, "paths": [_p(["conv3x3", "maxpool3x3"], 128), _p(["depthwise3x3", "conv1x1"], 64, 32),
                              _p(["inception_p5x5", "inception_p3x3"], 64)]},
]}

SIMPLE = {"stages": [{"n_blocks": 2, "paths": [_p(["conv3x3"], c)]} for c in (32, 64, 128, 256)]}


def test_registered(fam):
    assert fam.name == "inception" and fam.title == "Inception"
    assert fam.input_shape(None) == (1, 3, 32, 32)
    assert fam.space_size() > 10 ** 40
    assert path_widths(32, 3) == [16, 16, 16] and path_widths(64, 3) == [32, 16, 16]
    assert path_widths(256, 4) == [64] * 4 and path_widths(32, 2) == [16, 16]


def test_validate_normalises(fam):
    alt = copy.deepcopy(SPEC)
    alt["stages"][1] = {"n_blocks": 2, "block": {"paths": [{"ops": ["CONV3x3", "conv_1x1"], "width": 64,
                                                            "c_internal": 128}]}}
    alt["stages"][0]["paths"][0].pop("c_internal")  # defaults to the width
    assert fam.validate(alt) == SPEC
    assert fam.validate(alt["stages"]) == SPEC  # a bare list of 4 stages
    assert json.loads(json.dumps(SPEC)) == fam.validate(SPEC)


def _bad(stage: int, **changes):
    spec = copy.deepcopy(SPEC)
    spec["stages"][stage].update(changes)
    return spec


@pytest.mark.parametrize("spec, message", [
    ("x", r"expected an object \{\"stages\": \[4 stages\]\}"),
    ({"stages": SPEC["stages"][:3]}, "expected a list of 4 stages"),
    (_bad(1, n_blocks=7), r"stages\[1\].n_blocks: expected an int in 2..6, got 7"),
    (_bad(1, n_blocks=True), "n_blocks: expected an int in 2..6, got True"),
    (_bad(1, paths=[]), r"stages\[1\].paths: expected a list of 1-4 paths"),
    (_bad(1, paths=[_p(["conv9x9"], 64)]), r"paths\[0\].ops\[0\]: unknown op 'conv9x9'; allowed: conv ops"),
    (_bad(1, paths=[_p(["conv3x3"], 32)]), r"path widths \[32\] do not match stage channels 64 with 1 paths; "
                                           r"expected \[64\]"),
    (_bad(1, paths=[_p(["conv3x3", "conv3x3", "conv3x3", "conv3x3"], 64)]), "at most 3 ops in total, got 4"),
    (_bad(0, paths=[_p(["conv3x3"], 16)] * 3), r"with 3 paths needs >= 2 ops per path, got 1"),
    (_bad(1, paths=[_p(["maxpool3x3", "conv1x1"], 64)]), "a path needs at least one conv op"),
    (_bad(1, paths=[_p(["conv1x1", "conv3x3", "maxpool3x3"], 64)]), "at most one supp op, got 2"),
    (_bad(1, paths=[_p(["conv3x3", "conv1x1"], 64, 48)]), r"c_internal: got 48; allowed for width 64: \[32, 64, 128\]"),
    (_bad(1, paths=[_p(["conv3x3", "maxpool3x3"], 64, 128)]), "fewer than 2 channel-changing ops"),
    (_bad(1, paths=[{"ops": ["conv3x3"], "width": 64, "kernel": 3}]), r"unknown field\(s\) \['kernel'\]"),
])
def test_validate_errors_name_field_value_and_choices(fam, spec, message):
    with pytest.raises(SpecError, match=message):
        fam.validate(spec)


def test_sampler_is_deterministic_and_valid(fam):
    a, b, c = fam.sample(25, seed=2), fam.sample(25, seed=2), fam.sample(25, seed=3)
    assert a == b and a != c
    assert len({fam.spec_hash(s) for s in a}) == 25
    for spec in a:
        assert fam.validate(spec) == spec
        assert json.loads(fam.canonical(spec)) == spec


def test_sampler_distribution(fam):
    specs = fam.sample(300, seed=0)
    stages = [st for s in specs for st in s["stages"]]
    n_blocks = collections.Counter(st["n_blocks"] for st in stages)
    n_paths = collections.Counter(len(st["paths"]) for st in stages)
    assert all(abs(n_blocks[k] / 1200 - 1 / 5) < 0.05 for k in range(2, 7)), n_blocks
    assert all(abs(n_paths[k] / 1200 - 1 / 4) < 0.05 for k in range(1, 5)), n_paths
    paths = [p for st in stages for p in st["paths"]]
    firsts = collections.Counter(op for p in paths for op in p["ops"])
    assert set(firsts) == set(CONV_OPS) | set(SUPP_OPS)
    # c_internal of paths with all three choices distinct: reduce2 0.3, no_change 0.6, expand2 0.1
    free = [p for p in paths if p["width"] >= 32 and sum(op not in ("maxpool3x3", "avgpool3x3") for op in p["ops"]) >= 2]
    ratio = collections.Counter(p["c_internal"] / p["width"] for p in free)
    assert len(free) > 300
    for r, prob in ((0.5, 0.3), (1.0, 0.6), (2.0, 0.1)):
        assert abs(ratio[r] / len(free) - prob) < 0.07, ratio


def test_forward_and_stage_shapes(fam):
    m = fam.build_module(SPEC)
    seen = {}
    for name in ("stem", "s0b1", "s1b0", "s1b1", "s2b1", "s3b1"):
        m.subs[name].register_forward_hook(lambda mod, i, o, name=name: seen.__setitem__(name, tuple(o.shape)))
    with torch.no_grad():
        y = m(torch.randn(1, 3, 32, 32))
    assert tuple(y.shape) == (1, 10) and torch.isfinite(y).all()
    assert seen == {"stem": (1, 32, 32, 32), "s0b1": (1, 32, 32, 32), "s1b0": (1, 64, 16, 16),
                    "s1b1": (1, 64, 16, 16), "s2b1": (1, 128, 8, 8), "s3b1": (1, 256, 4, 4)}
    for spec in fam.sample(2, seed=9):
        with torch.no_grad():
            assert tuple(fam.build_module(spec)(torch.randn(1, 3, 32, 32)).shape) == (1, 10)


def test_hand_counted_params():
    def cv(ci, co, kh, kw, bias=True):
        return ci * co * kh * kw + (co if bias else 0)

    def bn(c):
        return 2 * c

    def cbr(ci, co, kh, kw):  # conv (bias) + BN (+ ReLU6)
        return cv(ci, co, kh, kw) + bn(co)

    def dw(ci, co, k):  # [1x1 projection, no bias / BN] + depthwise (bias) + BN
        return (ci * co if ci != co else 0) + co * k * k + co + bn(co)

    def incp(ci, co, k, s):  # two branches of co // 2 and co - co // 2 channels
        h1, h2 = co // 2, co - co // 2
        if s == 1:
            return cv(ci, h1, 1, k) + bn(h1) + cv(ci, h2, k, 1) + bn(h2)
        return (cv(ci, h1, 1, k) + bn(h1) + cv(h1, h1, k, 1) + bn(h1)
                + cv(ci, h2, k, 1) + bn(h2) + cv(h2, h2, 1, k) + bn(h2))

    def incs(ci, co, k):
        return cbr(ci, co, 1, k) + cbr(co, co, k, 1)

    def s0(ci):
        return (dw(ci, 16, 3) + bn(16)                    # depthwise3x3 -> maxpool + BN
                + bn(ci) + cbr(ci, 16, 3, 3)              # maxpool + BN on 32 ch -> conv3x3
                + incs(ci, 32, 3) + cbr(32, 16, 1, 1)     # inception_s3x3 to c_internal 32 -> conv1x1
                + cv(48, 32, 1, 1) + bn(32))              # projection of the 48-wide concat

    def s1(ci):
        return cbr(ci, 128, 3, 3) + cbr(128, 64, 1, 1)

    def s2(ci, s):
        return (incp(ci, 32, 3, s) + bn(32)
                + incs(ci, 16, 5) + cbr(16, 32, 1, 1) + cbr(32, 32, 1, 1)   # double1x1 16 -> 32
                + cbr(ci, 64, 5, 5) + dw(64, 32, 5)
                + cbr(ci, 32, 3, 3) + cbr(32, 32, 3, 3))

    def s3(ci, s):
        return (cbr(ci, 128, 3, 3) + bn(128)
                + dw(ci, 32, 3) + cbr(32, 64, 1, 1)
                + incp(ci, 64, 5, s) + incp(64, 64, 3, 1))

    params = (cbr(3, 32, 3, 3) + s0(32) + s0(32) + s1(32) + s1(64) + s2(64, 2) + s2(128, 1)
              + s3(128, 2) + s3(256, 1) + cbr(256, 512, 3, 3) + 512 * 10 + 10)
    assert params == 2_392_746
    fam = get("inception")
    assert sum(p.numel() for p in fam.build_module(SPEC).parameters()) == params
    cg = fam.to_cg(SPEC)
    assert cg.params == params
    ops = cg.op_counts()
    # 2 s0 residuals + s1b1 + s2b1 + s3b1; concat per multi-path block and per inception_p
    assert ops["add"] == 5
    assert ops["concat"] == 2 * 3 + 2 * 1 + 2 * 2
    assert ops["depthwise"] == 2 * 3 and ops["avgpool"] == 2 and ops["maxpool"] == 2 * 2 + 2


def test_hand_counted_params_and_flops_simple():
    def cbr(ci, co):  # conv3x3 (bias) + BN
        return ci * co * 9 + co + 2 * co

    params = (cbr(3, 32) + 2 * cbr(32, 32) + cbr(32, 64) + cbr(64, 64) + cbr(64, 128) + cbr(128, 128)
              + cbr(128, 256) + cbr(256, 256) + cbr(256, 512) + 512 * 10 + 10)
    macs = (32 * 32 * 9 * (3 * 32 + 2 * 32 * 32) + 16 * 16 * 9 * (32 * 64 + 64 * 64)
            + 8 * 8 * 9 * (64 * 128 + 128 * 128) + 4 * 4 * 9 * (128 * 256 + 256 * 256 + 256 * 512) + 512 * 10)
    fam = get("inception")
    cg = fam.to_cg(SIMPLE)
    assert (cg.params, cg.flops) == (params, 2 * macs)
    assert sum(p.numel() for p in fam.build_module(SIMPLE).parameters()) == params
    assert cg.op_counts()["add"] == 5 and "concat" not in cg.op_counts()


def test_to_cg_equals_traced_module(fam):
    for spec in fam.sample(3, seed=31) + [SPEC]:
        direct = fam.to_cg(spec)
        traced = from_module(fam.build_module(spec), fam.input_shape(spec))
        assert direct.fingerprint() == traced.fingerprint()
        assert (direct.flops, direct.params) == (traced.flops, traced.params)
        assert (direct.num_nodes, direct.num_edges) == (traced.num_nodes, traced.num_edges)


# --- cross-check against the GENNAPE authors' CG of one network (reference data, optional) -----

def test_matches_authors_cg(shared_data):
    """The authors' InceptionNet226 (an AutoGO search result: its stage-3 path of 11 ops lies outside
    the sampler's budget, so it is built from the network program directly) has the same convs
    (kernels, strides via H/W, bias flags, depthwise input projections), BNs, ReLU6s, concats and
    adds; their TF graph keeps an ``identity`` node for Dropout(0), contracted away here."""
    from engine.families import _program, inception

    path = shared_data / "gennape_format" / "inception_best_cg.pkl"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    long_path = ["conv5x5", "inception_p5x5", "conv1x1", "conv3x3", "inception_s3x3", "conv5x5", "inception_s3x3",
                 "depthwise5x5", "inception_p3x3", "inception_s5x5", "depthwise5x5"]
    stages = [
        {"n_blocks": 6, "paths": [_p(["depthwise5x5"], 16), _p(["inception_s3x3"], 16),
                                  _p(["depthwise5x5", "conv5x5"], 16)]},
        {"n_blocks": 2, "paths": [_p(["conv5x5", "double1x1"], 64, 128)]},
        {"n_blocks": 5, "paths": [_p(["conv3x3"], 128)]},
        {"n_blocks": 3, "paths": [_p(["inception_s5x5"], 64), _p(long_path, 64, 32),
                                  _p(["inception_p3x3", "inception_s3x3"], 64, 32), _p(["inception_s3x3"], 64)]},
    ]
    cg = _program.build_cg(inception._network, "authors", (32, 32, 3), stages=stages)
    theirs, their_ops = authors_summary(path)
    ours, our_ops, binary_adds = our_summary(cg)
    assert ours == theirs and sum(ours.values()) == 138
    assert (our_ops["batchnorm"], our_ops["relu6"], our_ops["concat"], binary_adds) == (
        their_ops["fusedbatchnorm"], their_ops["relu6"], their_ops["concat"], their_ops["add"])
    assert cg.num_nodes == sum(their_ops.values()) - 1  # minus the dropout identity
