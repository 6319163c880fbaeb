"""CG diff on hand-made pairs: added / removed / changed nodes and edges."""

from __future__ import annotations

import numpy as np

from engine.graphs.cg import CGBuilder
from engine.search.diff import diff_cgs, union_view
from engine.search.mutate import mutate


def _net(k2: int = 3, extra_pool: bool = False, with_bn: bool = True):
    b = CGBuilder("h", (16, 16, 3))
    x = b.input()
    x = b.conv(x, 8, 3, name="c1")
    if with_bn:
        x = b.bn(x, name="bn1")
    x = b.act(x, "relu", name="r1")
    if extra_pool:
        x = b.pool(x, "maxpool", 3, 1, 1, name="p1")
    x = b.conv(x, 8, k2, name="c2")
    return b.output(b.linear(b.mean(x, name="gap"), 10, name="fc"))


def test_identical():
    d = diff_cgs(_net(), _net())
    assert d.identical
    assert d.counts()["same"] == _net().num_nodes


def test_changed_kernel():
    a, b = _net(3), _net(5)
    d = diff_cgs(a, b)
    c2 = next(n.id for n in b.nodes if n.name == "c2")
    assert d.changed == [c2]
    assert d.changes[c2] == ["weight"]
    assert not d.added and not d.removed and not d.edges_added
    assert d.counts()["flops_delta"] == b.flops - a.flops > 0


def test_added_and_removed_nodes():
    a, b = _net(), _net(extra_pool=True, with_bn=False)
    d = diff_cgs(a, b)
    assert [b.nodes[v].name for v in d.added] == ["p1"]
    assert [a.nodes[u].name for u in d.removed] == ["bn1"]
    # r1 lost its BN input; c2 now reads the pool: both changed by their inputs only
    names = {b.nodes[v].name: w for v, w in d.changes.items()}
    assert names == {"r1": ["inputs"], "c2": ["inputs"]}
    nodes, edges = union_view(d)
    assert len(nodes) == b.num_nodes + 1
    status = {e["status"] for e in edges}
    assert status == {"same", "added", "removed"}
    frame = d.frame()
    assert set(frame["status"]) == {"added", "removed", "changed"}


def test_unnamed_nodes_align_by_topology():
    def net(k):
        b = CGBuilder("u", (8, 8, 3))
        x = b.act(b.conv(b.input(), 4, 3), "relu")
        x = b.conv(x, 4, k)
        return b.output(b.linear(b.mean(x), 2))

    d = diff_cgs(net(3), net(1))
    assert len(d.changed) == 1 and not d.added and not d.removed


def test_diff_of_a_separable_mutation():
    a = _net()
    b, rec = mutate(a, np.random.default_rng(0), ["separable"])
    d = diff_cgs(a, b)
    assert len(d.added) == 1 and b.nodes[d.added[0]].op == "conv"  # the pointwise conv
    assert any(b.nodes[v].op == "depthwise" for v in d.changed), rec
    assert not d.removed
