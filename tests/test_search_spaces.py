"""Spec mutators stay inside their family's space; pool moves stay inside the pool."""

from __future__ import annotations

import numpy as np
import pytest

from engine import families
from engine.search.spaces import (
    SPEC_MUTATORS,
    CGSpace,
    PoolSpace,
    SpecSpace,
    nb101_path_features,
    nb101_paths,
    nb201_features,
)


@pytest.mark.parametrize("name", sorted(SPEC_MUTATORS))
def test_spec_mutators_stay_valid(name):
    fam = families.get(name)
    rng = np.random.default_rng(0)
    spec = fam.sample(1, seed=3)[0]
    changed = 0
    for _ in range(40):
        new, note = SPEC_MUTATORS[name](spec, rng)
        assert fam.validate(new) == new, note  # normalised and valid
        assert isinstance(note, str) and note
        changed += fam.canonical(new) != fam.canonical(spec)
        spec = new
    assert changed == 40, "every mutation must change the architecture"


def test_nb101_mutator_explores_sizes():
    fam = families.get("nb101")
    rng = np.random.default_rng(1)
    spec = {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv3x3-bn-relu", "output"]}
    sizes = set()
    for _ in range(60):
        spec, _ = SPEC_MUTATORS["nb101"](spec, rng)
        sizes.add(len(spec["ops"]))
        assert sum(map(sum, spec["matrix"])) <= 9
    assert max(sizes) > 3, "vertex insertion should grow the cell"
    assert fam.validate(spec) == spec


def test_spec_space_key_and_cache():
    space = SpecSpace("nb201")
    arch = families.get("nb201").sample(1, seed=0)[0]
    assert space.key(arch) == arch
    assert space.to_cg(arch) is space.to_cg(arch)
    with pytest.raises(ValueError, match="no spec mutator"):
        SpecSpace("ofa_mbv3")


def test_cg_space_rejects_unknown_operator():
    with pytest.raises(ValueError, match="unknown mutation operator"):
        CGSpace(["nope"])


def test_pool_space_moves_to_near_members():
    specs = families.get("nb201").sample(60, seed=0)
    feats = nb201_features(specs)
    space = PoolSpace(feats, cgs=lambda i: None, k=3)
    rng = np.random.default_rng(0)
    for i in range(10):
        j, note = space.mutate(i, rng)
        assert j != i and 0 <= j < 60
        d = np.abs(feats - feats[i]).sum(1)
        d[i] = np.inf
        assert d[j] <= np.sort(d)[2], note  # among the 3 nearest


def test_nb101_path_encoding_is_isomorphism_invariant():
    a = {"matrix": [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]],
         "ops": ["input", "conv3x3-bn-relu", "maxpool3x3", "output"]}
    b = {"matrix": a["matrix"], "ops": ["input", "maxpool3x3", "conv3x3-bn-relu", "output"]}
    assert nb101_paths(a) == nb101_paths(b) == {("conv3x3-bn-relu",), ("maxpool3x3",)}
    f = nb101_path_features([a, b])
    assert f.shape == (2, 2) and (f[0] == f[1]).all()
