"""OFA families (ofa_pn, ofa_mbv3, ofa_resnet): spec formats, errors, networks, CGs, reference counts.

Reference values used here and why
----------------------------------
* Channel widths are the literal numbers of ``docs/gennape-reference.md`` section 4.4 (not
  recomputed with ``make_divisible``), so a rounding slip in the family shows up.
* OFA-ResNet: the sub-network with stage depths (3, 4, 6, 3) (d = [0, 1, 2, 2, 1]), e = 0.25 and
  full width has exactly ResNet-50's bottlenecks (v1.5: stride on the 3x3 conv; an avgpool +
  1x1 conv shortcut has the same parameters and MACs as ResNet-50's strided 1x1 conv shortcut).
  It differs only in the stem: OFA's conv3x3(3->32, s2)-BN + conv3x3(32->64)-BN replaces
  ResNet-50's conv7x7(3->64, s2)-BN.  torchvision's ResNet-50 has 25,557,032 parameters and
  4,089,184,256 MACs at 224 px (its model card: 25.6 M params, 4.09 GFLOPS), so this sub-network
  must have 25,557,032 - (9408 + 128) + (864 + 64 + 18432 + 128) = 25,566,984 parameters and
  4,089,184,256 + 112^2 * (32*27 + 64*288 - 64*147) = 4,213,219,328 MACs.
* OFA-MobileNetV3: the once-for-all MobileNetV3 super-network is usually quoted at 7.7 M
  parameters; that figure is the **w1.0** network's largest sub-network (ks 7, e 6, d 4), which we
  check with an unregistered width-1.0 variant of the family.  The registered family is w1.2
  (as GENNAPE uses), whose largest sub-network has 10,701,632 parameters by the hand count below.
* Full hand counts (parameter formula per block, literal widths) for the largest MBv3 and PN
  sub-networks.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from engine.families import SpecError, get
from engine.families.ofa import SAMPLE_RESOLUTIONS, OFAMobileNetV3, make_divisible
from engine.graphs.fx_import import from_module

PN, MBV3, RESNET = get("ofa_pn"), get("ofa_mbv3"), get("ofa_resnet")


def _module_params(fam, spec) -> int:
    return sum(p.numel() for p in fam.build_module(spec).parameters())


# --- widths --------------------------------------------------------------------------------------

def test_widths_match_the_reference_tables():
    assert [w for w, *_ in PN.stages] == [32, 56, 104, 128, 248, 416]
    assert [s for _, s, *_ in PN.stages] == [2, 2, 2, 1, 2, 1]
    assert [w for w, *_ in MBV3.stages] == [32, 48, 96, 136, 192]
    assert [(a, se) for _, _, a, se in MBV3.stages] == [
        ("relu", False), ("relu", True), ("hswish", False), ("hswish", True), ("hswish", True)]
    assert RESNET.STAGE_WIDTHS == ((168, 208, 256), (336, 408, 512), (664, 816, 1024), (1328, 1640, 2048))
    assert RESNET.STEM_OUT == (40, 48, 64) and RESNET.STEM_MID == (24, 24, 32)
    assert [make_divisible(v) for v in (41.6, 20.8, 124.8, 249.6, 1664, 19.2, 134.4, 1152)] == [
        40, 24, 128, 248, 1664, 24, 136, 1152]
    assert make_divisible(3) == 8 and make_divisible(12) == 16


# --- spec formats and errors ---------------------------------------------------------------------

def test_mobile_specs_normalise_unused_slots_and_aliases():
    base = {"ks": [7] * 20, "e": [6] * 20, "d": [2, 3, 4, 2, 2], "image_size": 160}
    spec = MBV3.validate(base)
    assert spec["ks"][:4] == [7, 7, 0, 0] and spec["ks"][4:8] == [7, 7, 7, 0] and spec["e"][8:12] == [6] * 4
    other = dict(base, ks=[7, 7, 3, 5] + [7] * 16, r=[160])
    del other["image_size"]
    assert MBV3.validate(other) == spec and MBV3.spec_hash(other) == MBV3.spec_hash(base)
    assert MBV3.validate(json.dumps(spec)) == spec
    assert MBV3.input_shape(spec) == (1, 3, 160, 160)
    # PN: OFA's 6-entry d (last stage clamped to 1) -> 5 entries; 21 ks/e slots
    pn = PN.validate({"ks": [5] * 21, "e": [4] * 21, "d": [4, 4, 4, 4, 4, 3], "image_size": 224})
    assert pn["d"] == [4] * 5 and pn["ks"][20] == 5
    assert PN.validate(dict(pn, d=[4] * 5)) == pn


def test_net_config_record_format():
    stages = [["mbconv3_e4_k5"] * 2, ["mbconv3_e6_k3"] * 3, ["mbconv3_e3_k7"] * 4, ["mbconv3_e4_k5"] * 2,
              ["mbconv3_e6_k7"] * 2]
    spec = MBV3.validate([192, stages])
    assert spec["d"] == [2, 3, 4, 2, 2] and spec["image_size"] == 192
    assert spec["ks"][:3] == [5, 5, 0] and spec["e"][4:8] == [6, 6, 6, 0]
    assert MBV3.validate({"net_config": [["mbconv3_e1_k3"]] + stages, "image_size": 192}) == spec
    pn_stages = [["mbconv2_e3_k3"] * 2] * 5 + [["mbconv2_e6_k7"]]
    pn = PN.validate({"net_config": pn_stages, "r": 128})
    assert pn["ks"][20] == 7 and pn["e"][20] == 6 and pn["d"] == [2] * 5
    with pytest.raises(SpecError, match=r"net_config\[1\]\[0\] is 'mbconv2_e6_k3'"):
        MBV3.validate([192, [stages[0], ["mbconv2_e6_k3"] * 2] + stages[2:]])


@pytest.mark.parametrize("fam, patch, fragments", [
    (MBV3, {"ks": [9] + [3] * 19}, ["ofa_mbv3 spec", "ks[0] is 9", "allowed 3, 5, 7"]),
    (MBV3, {"e": [3] * 19}, ["field 'e'", "20 entries", "got 19"]),
    (MBV3, {"d": [2, 5, 2, 2, 2]}, ["d[1] is 5", "allowed 2, 3, 4"]),
    (MBV3, {"ks": [3, 3, 9, 3] + [3] * 16}, ["ks[2] is 9", "unused slot"]),
    (MBV3, {"image_size": 8}, ["'image_size' is 8", "32..512"]),
    (MBV3, {"width": 1.2}, ["unknown field", "width"]),
    (PN, {"ks": [3] * 20, "e": [3] * 21}, ["field 'ks'", "21 entries"]),
    (PN, {"d": [2, 2, 2, 2, 2, 9]}, ["d[5] is 9", "single block"]),
])
def test_mobile_errors(fam, patch, fragments):
    n = fam.n_slots
    spec = {"ks": [3] * n, "e": [3] * n, "d": [2] * 5, "image_size": 128} | patch
    with pytest.raises(SpecError) as info:
        fam.validate(spec)
    for frag in fragments:
        assert frag in str(info.value), (frag, str(info.value))


def test_missing_resolution_and_bad_json():
    with pytest.raises(SpecError, match="exactly one of 'image_size'"):
        MBV3.validate({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5})
    with pytest.raises(SpecError, match="not valid JSON"):
        PN.validate("{ks: [3]")


def test_resnet_spec():
    spec = RESNET.validate({"d": [1, 0, 1, 2, 0], "e": [0.35] * 18, "w": [0, 1, 2, 2, 1, 0], "r": 176})
    assert spec["d"][0] == 0                                    # stem setting 1 behaves as 0 in OFA
    assert spec["e"][:4] == [0.35, 0.35, 0, 0] and spec["e"][4:8] == [0.35, 0.35, 0.35, 0]
    assert spec["e"][8:14] == [0.35] * 6 and spec["e"][14:] == [0.35, 0.35, 0, 0]
    assert RESNET.input_shape(spec) == (1, 3, 176, 176)
    for patch, frag in [({"d": [3, 0, 0, 0, 0]}, "d[0] (stem) is 3"), ({"d": [0, 0, 0, 3, 0]}, "d[3] is 3"),
                        ({"w": [0, 0, 0, 0, 0, 3]}, "w[5] is 3"), ({"e": [0.3] + [0.2] * 17}, "e[0] is 0.3"),
                        ({"e": [0.2] * 17}, "18 entries")]:
        bad = {"d": [0] * 5, "e": [0.2] * 18, "w": [0] * 6, "image_size": 128} | patch
        with pytest.raises(SpecError, match=frag.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
            RESNET.validate(bad)


# --- sampling ------------------------------------------------------------------------------------

@pytest.mark.parametrize("fam", [PN, MBV3, RESNET], ids=lambda f: f.name)
def test_sample_deterministic_and_valid(fam):
    a = fam.sample(60, seed=3)
    assert a == fam.sample(60, seed=3) and a != fam.sample(60, seed=4)
    assert all(fam.validate(s) == s for s in a)
    assert {s["image_size"] for s in a} <= set(SAMPLE_RESOLUTIONS)
    assert len({fam.spec_hash(s) for s in a}) == 60
    depths = Counter(d for s in a for d in (s["d"][1:] if fam is RESNET else s["d"]))
    assert len(depths) == 3 and min(depths.values()) > 40        # per-decision uniform (OFA's sampler)


def test_space_sizes():
    per_stage = 9 ** 2 + 9 ** 3 + 9 ** 4                           # (3 ks x 3 e) per block, depth 2..4
    assert MBV3.space_size() == per_stage ** 5 * 25
    assert PN.space_size() == per_stage ** 5 * 9 * 25
    stage = [3 * sum(3 ** (b + x) for x in (0, 1, 2)) for b in (2, 2, 4, 2)]
    assert RESNET.space_size() == 2 * 3 * 3 * stage[0] * stage[1] * stage[2] * stage[3] * 25


# --- networks and CGs ----------------------------------------------------------------------------

@pytest.mark.parametrize("fam", [PN, MBV3, RESNET], ids=lambda f: f.name)
def test_forward_on_a_real_tensor(fam):
    torch.manual_seed(0)
    for spec in fam.sample(2, seed=5):
        spec = dict(spec, image_size=128)
        model = fam.build_module(spec)
        with torch.no_grad():
            y = model(torch.randn(fam.input_shape(spec)))
        assert y.shape == (1, 1000) and torch.isfinite(y).all()
        cg = fam.to_cg(spec)
        assert cg.params == sum(p.numel() for p in model.parameters())
        assert cg.input_node.out_shape == (128, 128, 3) and cg.output_node.out_shape == (1, 1, 1000)


def test_direct_builders_equal_from_module():
    cases = [(fam, dict(s, image_size=128)) for fam in (PN, MBV3, RESNET) for s in fam.sample(2, seed=9)]
    # odd intermediate sizes (ceil-mode shortcut pools) and the stem residual of OFA-ResNet
    cases.append((RESNET, {"d": [2, 0, 1, 0, 2], "e": [0.2, 0.25, 0.35] * 6, "w": [2, 0, 1, 2, 0, 1], "image_size": 132}))
    cases.append((PN, dict(PN.sample(1, seed=1)[0], image_size=130)))
    cases.append((MBV3, {"ks": [7, 5, 3, 7] * 5, "e": [6, 4, 3, 6] * 5, "d": [4, 3, 2, 4, 3], "image_size": 140}))
    for fam, spec in cases:
        direct = fam.to_cg(spec)
        traced = from_module(fam.build_module(spec), fam.input_shape(spec))
        assert direct.fingerprint() == traced.fingerprint(), (fam.name, spec)
        assert (direct.flops, direct.params) == (traced.flops, traced.params), (fam.name, spec)


def test_resnet_structure_and_torchvision_resnet50_reference():
    spec = {"d": [0, 1, 2, 2, 1], "e": [0.25] * 18, "w": [2] * 6, "image_size": 224}
    cg = RESNET.to_cg(spec)
    assert cg.params == 25_557_032 - (9408 + 128) + (864 + 64 + 18432 + 128) == 25_566_984
    assert cg.flops == 2 * (4_089_184_256 + 112 ** 2 * (32 * 27 + 64 * 288 - 64 * 147))
    assert _module_params(RESNET, spec) == cg.params
    pools = [n for n in cg.nodes if n.op == "avgpool"]
    # one shortcut pool per stage: stride 1 (width change only) in stage 1, stride 2 after
    assert [n.stride for n in pools] == [(1, 1), (2, 2), (2, 2), (2, 2)]
    assert [n.out_shape[0] for n in pools] == [56, 28, 14, 7]
    assert cg.op_counts()["add"] == 16                            # 3 + 4 + 6 + 3 bottlenecks
    # stem residual block only with d[0] == 2
    assert RESNET.to_cg(dict(spec, d=[2, 1, 2, 2, 1])).op_counts()["add"] == 17


def _mb_params(c_in, c_out, k, e, se=False):
    mid = c_in * e
    p = (c_in * mid + 2 * mid if e != 1 else 0) + mid * k * k + 2 * mid + mid * c_out + 2 * c_out
    if se:
        s = make_divisible(mid // 4)
        p += mid * s + s + s * mid + mid
    return p


def _hand_count(stem, first, widths, depths, se, k, e, head, mix=0, classes=1000):
    p = 3 * stem * 9 + 2 * stem + _mb_params(stem, first, 3, 1)
    c = first
    for w, d, s in zip(widths, depths, se):
        for _ in range(d):
            p += _mb_params(c, w, k, e, s)
            c = w
    p += c * head + 2 * head
    if mix:
        p += head * mix
    return p + (mix or head) * classes + classes


def test_largest_mobile_subnets_hand_count():
    mbv3 = {"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "image_size": 224}
    want = _hand_count(24, 24, [32, 48, 96, 136, 192], [4] * 5, [False, True, False, True, True], 7, 6, 1152, 1536)
    assert want == 10_701_632
    big = MBV3.to_cg(mbv3)
    assert big.params == want == _module_params(MBV3, mbv3)
    pn = {"ks": [7] * 21, "e": [6] * 21, "d": [4] * 5, "image_size": 224}
    want = _hand_count(40, 24, [32, 56, 104, 128, 248, 416], [4] * 5 + [1], [False] * 6, 7, 6, 1664)
    assert PN.to_cg(pn).params == want == _module_params(PN, pn)
    # the smallest MBv3: params and MACs fall, depthwise layers shrink to 3x3
    small = MBV3.to_cg({"ks": [3] * 20, "e": [3] * 20, "d": [2] * 5, "image_size": 224})
    assert small.params < 0.5 * big.params and small.flops < 0.5 * big.flops
    assert {n.weight[2] for n in small.nodes if n.op == "depthwise"} == {3}


def test_mbv3_w10_largest_subnet_is_7_7M():
    class W10(OFAMobileNetV3):       # not registered: the same family at width 1.0
        WIDTH = 1.0

    cg = W10().to_cg({"ks": [7] * 20, "e": [6] * 20, "d": [4] * 5, "image_size": 224})
    assert abs(cg.params - 7.7e6) / 7.7e6 < 0.01, cg.params      # 7,664,760
    se = [n for n in cg.nodes if n.name.endswith("se.mul")]
    assert len(se) == 12 and cg.op_counts()["hardsigmoid"] == 12   # SE in stages 2, 4, 5 (4 blocks each)
