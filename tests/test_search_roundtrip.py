"""Round trip for every family: ``from_module(interpret(to_cg(spec)))`` reproduces the CG.

Documented exceptions (none of the nine families needs one): ``identity`` nodes are built as a
pass-through and vanish from a re-traced CG; ``matmul`` / ``other`` nodes cannot be built.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import families
from engine.graphs.fx_import import from_module
from engine.search.interpret import check_feasible, interpret

FAMILIES = ["nb101", "nb201", "nb301", "ofa_pn", "ofa_mbv3", "ofa_resnet", "hiaml", "inception", "two_path"]


def _spec(name: str):
    fam = families.get(name)
    spec = fam.sample(1, seed=11)[0]
    if name.startswith("ofa_"):  # keep the test fast: a small input resolution
        spec = dict(fam.validate(spec))
        for k in ("r", "resolution"):
            spec.pop(k, None)
        spec["image_size"] = 64
    return fam, fam.validate(spec)


def test_all_families_registered():
    assert set(FAMILIES) <= set(families.names())


@pytest.mark.parametrize("name", FAMILIES)
def test_round_trip(name):
    fam, spec = _spec(name)
    cg = fam.to_cg(spec)
    net = interpret(cg)
    assert sum(p.numel() for p in net.parameters()) == cg.params
    back = from_module(net, fam.input_shape(spec))
    assert back.fingerprint() == cg.fingerprint()
    assert back.flops == cg.flops
    assert back.params == cg.params
    check_feasible(cg)  # forward pass (CPU for small nets, meta device for large ones)


def test_round_trip_after_mutation():
    from engine.search.mutate import OPERATORS, NoMutation, mutate

    fam, spec = _spec("two_path")
    cg = fam.to_cg(spec)
    rng = np.random.default_rng(0)
    done = 0
    for op in sorted(OPERATORS):
        try:
            new, _ = mutate(cg, rng, [op], max_tries=5)
        except NoMutation:
            continue
        back = from_module(interpret(new), fam.input_shape(spec))
        assert (back.fingerprint(), back.flops, back.params) == (new.fingerprint(), new.flops, new.params), op
        done += 1
    assert done >= 5, "most operators should apply to a Two-Path network"
