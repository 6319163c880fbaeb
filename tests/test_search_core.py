"""Search core: interpreter feasibility, mutation operators, evolution determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.graphs.cg import CGBuilder
from engine.search.evolution import SearchConfig, search
from engine.search.interpret import InfeasibleCG, check_feasible, interpret
from engine.search.mutate import OPERATORS, NoMutation, mutate


def _resnetish():
    b = CGBuilder("t", (32, 32, 3))
    x = b.input()
    y = b.act(b.bn(b.conv(x, 16, 3)), "relu")
    z = b.act(b.bn(b.conv(y, 32, 3)), "relu")
    z = b.bn(b.conv(z, 16, 3))
    s = b.act(b.sum([y, z]), "relu")
    p = b.pool(s, "maxpool", 3, 2, 1)
    d = b.act(b.bn(b.conv(p, 16, 3, groups=16)), "relu6")
    return b.output(b.linear(b.mean(d), 10))


def test_interpret_builds_exact_network():
    cg = _resnetish()
    net = interpret(cg)
    assert sum(p.numel() for p in net.parameters()) == cg.params
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_interpret_rejects_bad_channels():
    cg = _resnetish()
    conv = next(n for n in cg.nodes if n.op == "conv" and n.weight[0] == 16)
    cg.nodes[conv.id] = type(conv)(**{**conv.__dict__, "weight": (7, *conv.weight[1:])})
    with pytest.raises(InfeasibleCG, match=f"node {conv.id} \\(conv\\)"):
        interpret(cg)


def test_interpret_rejects_unbuildable_op():
    b = CGBuilder("o", (8, 8, 3))
    x = b.input()
    y = b.add("other", [x], (8, 8, 3))
    with pytest.raises(InfeasibleCG, match="cannot be built"):
        interpret(b.output(y))


@pytest.mark.parametrize("name", sorted(OPERATORS))
def test_each_operator_gives_feasible_cg(name):
    cg = _resnetish()
    before = cg.to_json()
    new, record = mutate(cg, np.random.default_rng(3), [name])
    assert cg.to_json() == before, "the input CG must not be modified"
    assert record.kind == name
    net = check_feasible(new, device="cpu")
    assert sum(p.numel() for p in net.parameters()) == new.params
    assert new.fingerprint() != cg.fingerprint()


def test_separable_cuts_flops():
    cg = _resnetish()
    new, _ = mutate(cg, np.random.default_rng(0), ["separable"])
    assert new.flops < cg.flops
    assert new.op_counts()["depthwise"] == cg.op_counts()["depthwise"] + 1


def test_no_site_raises():
    b = CGBuilder("lin", (1, 1, 8))
    x = b.input()
    cg = b.output(b.linear(x, 4))
    with pytest.raises(NoMutation):
        mutate(cg, np.random.default_rng(0), ["separable"], max_tries=3)


def _run(seed):
    def evaluate(cands):
        return [(c, 90.0 + 0.5 * np.log10(c.params) - 1e-9 * c.flops) for c in cands]

    def mut(c, rng):
        new, rec = mutate(c, rng)
        return new, str(rec)

    return search(_resnetish(), mut, evaluate, SearchConfig(budget=24, population=8, seed=seed))


def test_search_is_deterministic_and_meets_target():
    r1, r2 = _run(5), _run(5)
    assert r1.frame().equals(r2.frame())
    assert len(r1.history) == 24
    best = r1.best()
    assert best.flops <= r1.flops_target or best is r1.start
    front = r1.pareto()
    flops = [c.flops for c in front]
    scores = [c.score for c in front]
    assert flops == sorted(flops) and scores == sorted(scores)


@pytest.mark.parametrize("kw, message", [
    ({"budget": 0}, "budget must be an int >= 1, got 0"),
    ({"budget": 2.5}, "budget must be an int >= 1, got 2.5"),
    ({"population": 3.7}, "population must be an int >= 2"),
    ({"seed": -1}, "seed must be an int >= 0"),
    ({"flops_target": float("nan")}, "flops_target must be a finite number"),
    ({"penalty": float("inf")}, "penalty must be a finite number"),
    ({"flops_target": 1.5}, "1.5 FLOPs is no network's size; to cut FLOPs pass a fraction"),
    ({"flops_target": 100}, "100 FLOPs is no network's size"),
])
def test_search_config_validation(kw, message):
    with pytest.raises(ValueError, match=message):
        SearchConfig(**kw)
    assert SearchConfig(flops_target=5e6).flops_target == 5e6  # an absolute target


def _round_trip(cg):
    from engine.graphs.fx_import import from_module

    h, w, c = cg.input_node.out_shape
    back = from_module(interpret(cg), (1, c, h, w))
    return (back.fingerprint(), back.flops, back.params) == (cg.fingerprint(), cg.flops, cg.params)


def test_interpret_contracted_reshape_slice_and_pad():
    # flatten before a linear (reshape contracted into the edge)
    b = CGBuilder("flat", (8, 8, 3))
    x = b.act(b.conv(b.input(), 4, 3), "relu")
    y = b.add("linear", [x], (1, 1, 10), in_shape=(1, 1, 256), weight=(256, 10, 1, 1), bias=True)
    flat = b.output(y)
    assert check_feasible(flat, device="cpu")(torch.zeros(2, 3, 8, 8)).shape == (2, 10)
    assert _round_trip(flat)
    # a conv reading a slice (DARTS FactorizedReduce x[:, :, 1:, 1:]) and one reading a padded map
    b = CGBuilder("slice", (8, 8, 4))
    x = b.input()
    s = b.add("conv", [x], (4, 4, 4), in_shape=(7, 7, 4), weight=(4, 4, 1, 1), stride=(2, 2))
    p = b.add("conv", [x], (4, 4, 4), in_shape=(9, 9, 4), weight=(4, 4, 3, 3), stride=(2, 2))
    cg = b.output(b.linear(b.mean(b.concat([s, p])), 3))
    check_feasible(cg, device="cpu")
    assert _round_trip(cg)


def test_interpret_rejects_inconsistent_add():
    b = CGBuilder("bad", (8, 8, 3))
    x = b.input()
    y = b.conv(x, 4, 3)
    z = b.conv(x, 4, 3)
    a = b.add("add", [y, z], (8, 8, 8))  # two 4-channel maps cannot give 8 channels
    with pytest.raises(InfeasibleCG, match=f"node {a} \\(add\\)"):
        interpret(b.output(b.linear(b.mean(a), 2)))


def test_infeasible_results_are_rejected_with_a_reason(monkeypatch):
    from dataclasses import replace

    from engine.search import mutate as mutate_mod
    from engine.search.mutate import Mutation

    def broken(cg, rng):  # halves a conv's width but leaves its consumer reading the old channels
        conv = next(n for n in cg.nodes if n.op == "conv")
        nodes = list(cg.nodes)
        nodes[conv.id] = replace(conv, weight=(conv.weight[0], conv.weight[1] // 2, *conv.weight[2:]),
                                 out_shape=(*conv.out_shape[:2], conv.out_shape[2] // 2))
        return mutate_mod._finish(cg, nodes, list(cg.edges)), Mutation("broken", conv.id, "half width")

    monkeypatch.setitem(OPERATORS, "broken", broken)
    rejected: list[str] = []
    with pytest.raises(NoMutation, match="broken"):
        mutate(_resnetish(), np.random.default_rng(0), ["broken"], max_tries=3, rejected=rejected)
    assert len(rejected) == 3 and all(r.startswith("broken: ") for r in rejected)
    assert "node" in rejected[0]
