"""Packing (CG -> tensors) and the k-GNN graph encoder."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.graphs.cg import CG, Node, feature_names
from engine.model.config import EncoderConfig
from engine.model.encoder import GraphEncoder, NodeEmbedding, embed_packed
from engine.model.packing import FeatureCache, PackedGraphs, pack, pack_store
from engine.model.synthetic import synthetic_dataset

pytestmark = pytest.mark.usefixtures("one_thread")



@pytest.fixture(scope="module")
def cgs():
    return synthetic_dataset(12, seed=3)[0]


def permuted(cg: CG, seed: int) -> CG:
    """The same graph with node ids shuffled."""
    perm = np.random.default_rng(seed).permutation(cg.num_nodes)  # perm[old] = new
    nodes = [None] * cg.num_nodes
    for old, nd in enumerate(cg.nodes):
        new = int(perm[old])
        nodes[new] = Node(**{**nd.__dict__, "id": new})
    edges = [(int(perm[u]), int(perm[v])) for u, v in cg.edges]
    return CG(nodes=nodes, edges=edges, name=cg.name).validate()


def test_pack_features_equal_node_features(cgs):
    packed = pack(cgs, cache=None)
    ref = torch.cat([cg.node_features() for cg in cgs])
    assert packed.x.shape == (sum(c.num_nodes for c in cgs), len(feature_names()))
    torch.testing.assert_close(packed.x, ref, atol=1e-6, rtol=0)
    assert packed.ptr.tolist()[-1] == packed.num_nodes
    assert packed.flops.tolist() == [float(c.flops) for c in cgs]
    assert packed.params.tolist() == [float(c.params) for c in cgs]
    ref_edges = torch.cat([torch.tensor(c.edges).t() + int(packed.ptr[i]) for i, c in enumerate(cgs)], 1)
    assert torch.equal(packed.edge_index, ref_edges)


def test_pack_store_equals_pack(cgs):
    from engine.data.cgstore import CGStore

    a, b = pack_store(CGStore.from_cgs(cgs)), pack(cgs, cache=None)
    for k in ("op", "dense", "edge_index", "ptr", "eptr", "flops", "params"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k


def test_select_and_concat(cgs):
    packed = pack(cgs)
    sub = packed.select([4, 0, 7])
    ref = pack([cgs[4], cgs[0], cgs[7]])
    assert torch.equal(sub.dense, ref.dense) and torch.equal(sub.edge_index, ref.edge_index)
    both = PackedGraphs.concat([packed.select([0, 1]), packed.select([2])])
    assert torch.equal(both.edge_index, packed.select([0, 1, 2]).edge_index)
    chunks = list(packed.chunks(max_nodes=150))
    assert sum(stop - start for start, stop, _ in chunks) == len(packed)


@pytest.mark.parametrize("field, value", [("in_shape", (2**40, 8, 8)), ("params", 10**30), ("flops", float("nan"))])
def test_out_of_range_node_is_a_clear_error_and_leaves_the_vocabulary_usable(cgs, field, value):
    """A CG built in code without validation, with a value the int32 feature table cannot hold,
    is refused naming its node -- alone or in a batch -- and never enters the shared vocabulary of
    node rows (before, one such CG broke every later ``pack`` of the process with OverflowError)."""
    import dataclasses

    from engine.graphs.cg import CGError

    before = pack(cgs, cache=None)
    bad = CG(nodes=list(cgs[0].nodes), edges=list(cgs[0].edges), name="bad")
    bad.nodes[1] = dataclasses.replace(bad.nodes[1], **{field: value})
    for batch in ([bad], [cgs[1], bad]):
        with pytest.raises(CGError, match="CG 'bad', node 1 .*shapes, weight, stride and dilation must be ints"):
            pack(batch, cache=None)
    after = pack(cgs, cache=None)
    for k in ("op", "dense", "edge_index", "flops", "params"):
        assert torch.equal(getattr(after, k), getattr(before, k)), k


@pytest.mark.parametrize("graphs, message", [
    (["abc"], "item 0 is a str, expected a CG"),
    ("abc", "got a str"),
    ({"a": 1}, "got a dict"),
    (5, "got a int"),
])
def test_as_packed_names_what_is_not_a_cg(cgs, graphs, message):
    from engine.model.packing import as_packed

    with pytest.raises(TypeError, match=message):
        as_packed(graphs)
    with pytest.raises(TypeError, match="item 2 is a NoneType"):
        as_packed([cgs[0], cgs[1], None])


def test_feature_cache_reuses_and_invalidates(cgs):
    cache = FeatureCache()
    pack(cgs[:3], cache=cache)
    assert len(cache) == 3
    first = cache.get(cgs[0])
    assert cache.get(cgs[0]) is first
    changed = CG(nodes=list(cgs[0].nodes), edges=list(cgs[0].edges), name="copy")
    assert cache.get(changed) is not first  # a different object is converted afresh


def test_node_embedding_is_linear_on_features(cgs):
    torch.manual_seed(0)
    emb = NodeEmbedding(8, drop_features=("in_h",))
    packed = pack(cgs[:2])
    x = packed.x.clone()
    x[:, feature_names().index("in_h")] = 0.0
    torch.testing.assert_close(emb(packed.op, packed.dense), emb.lin(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="unknown feature"):
        NodeEmbedding(8, drop_features=("nope",))


@pytest.mark.parametrize("cfg", [
    EncoderConfig(hidden=16, layers=2),
    EncoderConfig(hidden=16, layers=2, bidirectional=False, activation="relu", readout="meanmax"),
    EncoderConfig(hidden=8, layers=3, aggr="mean"),
])
def test_encoder_shapes_permutation_and_batch_invariance(cgs, cfg):
    torch.manual_seed(0)
    enc = GraphEncoder(cfg).eval()
    packed = pack(cgs)
    with torch.no_grad():
        h = enc(packed)
        assert h.shape == (len(cgs), enc.embed_dim)
        assert torch.isfinite(h).all()
        # batch vs single
        singles = torch.cat([enc(pack([c])) for c in cgs])
        torch.testing.assert_close(h, singles, atol=1e-5, rtol=1e-5)
        # node relabelling
        hp = enc(pack([permuted(c, i) for i, c in enumerate(cgs)]))
        torch.testing.assert_close(h, hp, atol=1e-5, rtol=1e-5)
    assert torch.allclose(embed_packed(enc, packed), h, atol=1e-6)


def test_dropout_makes_two_views(cgs):
    torch.manual_seed(0)
    enc = GraphEncoder(EncoderConfig(hidden=16, layers=2, dropout=0.2)).train()
    packed = pack(cgs)
    assert not torch.allclose(enc(packed), enc(packed))
    enc.eval()
    assert torch.allclose(enc(packed), enc(packed))


def test_bidirectional_sees_successors():
    """A node's state depends on what consumes it only with bidirectional message passing."""
    from engine.graphs.cg import CGBuilder

    def net(c_out: int) -> CG:
        b = CGBuilder("t", (8, 8, 3))
        x = b.conv(b.input(), 4, 3)
        return b.output(b.linear(b.mean(b.conv(x, c_out, 1)), 10))

    a, b = pack([net(4)]), pack([net(16)])
    for bidir, differs in ((False, False), (True, True)):
        torch.manual_seed(0)
        enc = GraphEncoder(EncoderConfig(hidden=8, layers=2, bidirectional=bidir, dropout=0.0)).eval()
        with torch.no_grad():
            ha, hb = enc.node_states(a), enc.node_states(b)
        # the input node (0) has identical features in both graphs and no predecessors: only
        # messages from its successors can tell the graphs apart
        assert (not torch.allclose(ha[0], hb[0])) == differs


def test_encoder_rejects_bad_config():
    with pytest.raises(ValueError, match="activation"):
        GraphEncoder(EncoderConfig(activation="swish"))
    with pytest.raises(ValueError, match="readout"):
        GraphEncoder(EncoderConfig(readout="sum"))


@pytest.mark.parametrize("aggr", ["add", "mean"])
@pytest.mark.parametrize("grad", [False, True])
def test_fused_graph_conv_equals_pyg(cgs, aggr, grad):
    from torch_geometric.nn import GraphConv

    from engine.model.encoder import fast_tanh, graph_conv

    torch.manual_seed(0)
    packed = pack(cgs[:4])
    conv = GraphConv(6, 5, aggr=aggr)
    rconv = GraphConv(6, 5, aggr=aggr, bias=False)
    h = torch.randn(packed.num_nodes, 6, requires_grad=grad)
    mean = aggr == "mean"
    with torch.set_grad_enabled(grad):
        ref = conv(h, packed.edge_index) + rconv((h, None), packed.edge_index.flip(0))
        got = graph_conv(conv, h, packed.adj(mean=mean))
        got = graph_conv(rconv, h, packed.adj(reverse=True, mean=mean), root=False, out=got)
        torch.testing.assert_close(got, ref, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(fast_tanh(ref.clone()), torch.tanh(ref), atol=1e-6, rtol=1e-6)
    if grad:
        got.sum().backward()
        assert h.grad is not None and torch.isfinite(h.grad).all()
