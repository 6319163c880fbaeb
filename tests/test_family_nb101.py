"""NAS-Bench-101 family: encodings, validation errors, pruning, isomorphism hash, networks, NASLib numbers."""

from __future__ import annotations

import ast
import json
import math
import random

import numpy as np
import pytest
import torch

from engine.families import SpecError, get
from engine.families.nb101 import CONV1, CONV3, MAXPOOL, canonical_spec, compute_vertex_channels
from engine.graphs.fx_import import from_module

# the NB-101 paper's example-like cell: 7 vertices, 9 edges
SPEC = {
    "matrix": [[0, 1, 1, 1, 0, 1, 0],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 1, 0, 0],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0, 0, 1],
               [0, 0, 0, 0, 0, 0, 0]],
    "ops": ["input", CONV3, CONV1, CONV3, CONV3, MAXPOOL, "output"],
}
SMALL = {"matrix": [[0, 1, 1], [0, 0, 1], [0, 0, 0]], "ops": ["input", CONV1, "output"]}
IN_OUT = {"matrix": [[0, 1], [0, 0]], "ops": ["input", "output"]}


@pytest.fixture(scope="module")
def fam():
    return get("nb101")


def _naslib_tuple(spec) -> tuple[int, ...]:
    ids = {"input": 0, "output": 1, MAXPOOL: 2, CONV1: 3, CONV3: 4}
    return tuple(v for row in spec["matrix"] for v in row) + tuple(ids[o] for o in spec["ops"])


def _relabel(spec, rng: random.Random):
    """A random isomorphic relabelling of the interior vertices that stays upper-triangular."""
    m, ops = spec["matrix"], spec["ops"]
    n = len(ops)
    while True:
        perm = list(range(1, n - 1))
        rng.shuffle(perm)
        pos = [0, *perm, n - 1]
        if all(pos[a] < pos[b] for a in range(n) for b in range(n) if m[a][b]):
            break
    new = [[0] * n for _ in range(n)]
    nops = [""] * n
    for a in range(n):
        nops[pos[a]] = ops[a]
        for b in range(n):
            new[pos[a]][pos[b]] = m[a][b]
    return {"matrix": new, "ops": nops}


# --- encodings --------------------------------------------------------------------------------

def test_encodings_agree(fam):
    norm = fam.validate(SPEC)
    assert norm == SPEC
    t = _naslib_tuple(SPEC)
    assert len(t) == 56
    assert fam.validate(t) == fam.validate(list(t)) == fam.validate(str(t)) == norm
    assert fam.validate(np.array(t)) == norm
    assert fam.validate({"module_adjacency": np.array(SPEC["matrix"]), "module_operations": SPEC["ops"]}) == norm
    assert fam.validate(json.dumps(SPEC)) == norm


def test_pruning_drops_dangling_vertices(fam):
    # vertex 2 has no path to the output, vertex 3 no path from the input
    spec = {"matrix": [[0, 1, 1, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
            "ops": ["input", CONV3, MAXPOOL, CONV1, "output"]}
    assert fam.validate(spec) == {"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", CONV3, "output"]}
    # the NASLib keys hold unpruned matrices with up to 16 edges before pruning
    bulky = [[0, 1, 1, 1, 1, 0, 1], [0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 1], [0, 0, 0, 0, 1, 1, 0],
             [0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0]]
    norm = fam.validate({"matrix": bulky, "ops": ["input", MAXPOOL, MAXPOOL, CONV3, CONV3, CONV3, "output"]})
    assert len(norm["ops"]) == 6 and sum(map(sum, norm["matrix"])) == 9


@pytest.mark.parametrize("spec, fragment", [
    ({"ops": ["input", "output"]}, "missing field 'matrix'"),
    ({"matrix": [[0, 1], [0, 0]]}, "missing field 'ops'"),
    ({"matrix": [[0, 1], [1, 0]], "ops": ["input", "output"]}, "matrix[1][0] = 1"),
    ({"matrix": [[0, 2], [0, 0]], "ops": ["input", "output"]}, "matrix[0][1] is 2"),
    ({"matrix": [[0, 1], [0, 0]], "ops": [CONV3, "output"]}, "ops[0] is 'conv3x3-bn-relu'; expected 'input'"),
    ({"matrix": [[0, 1, 1], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv5x5", "output"]}, "ops[1] is 'conv5x5'"),
    ({"matrix": [[0, 1, 0], [0, 0, 0], [0, 0, 0]], "ops": ["input", CONV3, "output"]}, "not connected"),
    ({"matrix": [[0, 1], [0, 0]], "ops": ["input", CONV3, "output"]}, "must be 3x3"),
    ({"matrix": [[0] * 8 for _ in range(8)], "ops": ["input"] + [CONV3] * 6 + ["output"]}, "expected 2 to 7"),
    ({"matrix": [[1 if c > r else 0 for c in range(6)] for r in range(6)], "ops": ["input"] + [CONV3] * 4 + ["output"]},
     "15 edges after pruning"),
    ((0, 1, 2), "expected 56 ints"),
    (tuple([0] * 49 + [0, 4, 4, 4, 4, 4, 9]), "op id 6 (element 55) is 9"),
    ("{not json", "cannot be parsed"),
    (3.5, "type float"),
])
def test_bad_specs_name_the_problem(fam, spec, fragment):
    with pytest.raises(SpecError, match="nb101") as err:
        fam.validate(spec)
    assert fragment in str(err.value)


# --- canonical hash ---------------------------------------------------------------------------

def test_isomorphic_cells_share_one_hash(fam):
    rng = random.Random(0)
    specs = [SPEC] + fam.sample(25, seed=3)
    for spec in specs:
        h = fam.spec_hash(spec)
        for _ in range(4):
            other = _relabel(spec, rng)
            assert fam.spec_hash(other) == h
            assert fam.canonical(other) == fam.canonical(spec)
    hashes = {fam.spec_hash(s) for s in specs}
    assert len(hashes) == len(specs)  # sample() returns non-isomorphic cells
    twin = {**SPEC, "ops": ["input", CONV1, CONV3, CONV3, CONV3, MAXPOOL, "output"]}
    assert fam.spec_hash(twin) == fam.spec_hash(SPEC)  # vertices 1 and 2 are interchangeable
    swapped = {**SPEC, "ops": ["input", CONV3, CONV1, MAXPOOL, CONV3, CONV3, "output"]}  # 3 and 5 are not
    assert fam.spec_hash(swapped) != fam.spec_hash(SPEC)


def test_hash_agrees_with_networkx_isomorphism(fam):
    import networkx as nx
    from networkx.algorithms.isomorphism import categorical_node_match

    def graph(spec):
        g = nx.DiGraph()
        for i, op in enumerate(spec["ops"]):
            g.add_node(i, op=op)
        m = spec["matrix"]
        g.add_edges_from((a, b) for a in range(len(m)) for b in range(len(m)) if m[a][b])
        return g

    rng = random.Random(1)
    small = [s for s in fam.sample(120, seed=9) if len(s["ops"]) <= 5]  # small cells collide often
    specs = small + [_relabel(s, rng) for s in small[:20]]
    match = categorical_node_match("op", None)
    hashes = [fam.spec_hash(s) for s in specs]
    checked = 0
    for i in range(len(specs)):
        for j in range(i + 1, len(specs)):
            a, b = specs[i], specs[j]
            if hashes[i] != hashes[j] and (sorted(a["ops"]) != sorted(b["ops"])
                                           or sum(map(sum, a["matrix"])) != sum(map(sum, b["matrix"]))):
                continue  # trivially non-isomorphic
            checked += 1
            assert (hashes[i] == hashes[j]) == nx.is_isomorphic(graph(a), graph(b), node_match=match), (a, b)
    assert checked > 20


def test_canonical_spec_is_a_valid_spec(fam):
    for spec in fam.sample(10, seed=4):
        canon = canonical_spec(spec["matrix"], spec["ops"])
        assert fam.validate(canon) == canon


def test_sample_is_deterministic_and_valid(fam):
    a, b = fam.sample(15, seed=11), fam.sample(15, seed=11)
    assert a == b and a != fam.sample(15, seed=12)
    for s in a:
        assert fam.validate(s) == s and len(s["ops"]) <= 7 and sum(map(sum, s["matrix"])) <= 9
    with pytest.raises(NotImplementedError):
        next(iter(fam.enumerate()))
    assert fam.space_size() == 423_624


# --- networks ---------------------------------------------------------------------------------

def test_vertex_channels():
    ch = compute_vertex_channels(128, 128, SPEC["matrix"])
    # vertices 1, 2, 4, 5 feed the output: 128 = 32 * 4; vertex 3 takes its successor's 32
    assert ch == [128, 32, 32, 32, 32, 32, 128]
    three = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]]
    assert compute_vertex_channels(64, 128, three) == [64, 43, 43, 42, 128]


@pytest.mark.parametrize("spec", [SMALL, IN_OUT, SPEC])
def test_build_module_forward(fam, spec):
    torch.manual_seed(0)
    net = fam.build_module(spec).eval()
    with torch.no_grad():
        y = net(torch.randn(fam.input_shape(spec)))
    assert y.shape == (1, 10) and torch.isfinite(y).all()
    assert sum(p.numel() for p in net.parameters()) == fam.to_cg(spec).params


def test_input_projection_is_added_not_concatenated(fam):
    cg = fam.to_cg(SMALL)  # input->output edge and one interior vertex
    ops = cg.op_counts()
    assert "concat" not in ops and ops["add"] == 9  # one add per cell
    assert fam.to_cg(IN_OUT).op_counts().get("add", 0) == 0  # output = projection only


def test_to_cg_equals_from_module(fam):
    for spec in [SPEC, SMALL, IN_OUT] + fam.sample(3, seed=5):
        direct = fam.to_cg(spec)
        traced = from_module(fam.build_module(spec), fam.input_shape(spec))
        assert direct.fingerprint() == traced.fingerprint(), spec
        assert (direct.flops, direct.params, direct.num_nodes, direct.num_edges) == (
            traced.flops, traced.params, traced.num_nodes, traced.num_edges), spec


# --- published numbers ------------------------------------------------------------------------------

def test_params_and_flops_match_naslib(fam, shared_data):
    """NASLib's ``params`` (M) equal ours exactly.  Its ``flops`` (M) come from a torchstat-style
    counter: MACs of conv / linear + 1 per ReLU element + 2 per BN element + k*k per max-pool
    output element (3x3 vertices and the 2x2 stack pools); our ``flops`` is 2 x MACs."""
    data = json.loads((shared_data / "nb101" / "naslib_zc_nasbench101.json").read_text())["nasbench101"]["cifar10"]
    assert len(data) == 500
    for key, rec in data.items():
        cg = fam.to_cg(key)
        assert abs(cg.params / 1e6 - rec["params"]) < 1e-6, key
        extra = 0
        for nd in cg.nodes:
            e = math.prod(nd.out_shape)
            if nd.op == "relu":
                extra += e
            elif nd.op == "batchnorm":
                extra += 2 * e
            elif nd.op == "maxpool":
                extra += (9 if nd.stride == (1, 1) else 4) * e
        ours = (cg.flops / 2 + extra) / 1e6
        assert abs(ours - rec["flops"]) < 1e-4, (key, ours, rec["flops"])
        assert cg.flops / 2e6 <= rec["flops"]
    assert ast.literal_eval(next(iter(data)))[49] == 0  # op ids start with input
