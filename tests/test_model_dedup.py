"""The fast inference paths equal the reference ones: the quotient (deduplicated) message
passing of :mod:`engine.model.dedup` vs the per-node pass, and the vocabulary-based CG
conversion vs the plain one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.graphs.cg import CG
from engine.model import dedup
from engine.model import encoder as encoder_module
from engine.model.config import EncoderConfig, KGNNConfig
from engine.model.encoder import GraphEncoder, segment_mean
from engine.model.kgnn import KGNNRegressor
from engine.model.packing import _cg_arrays, _cg_arrays_slow, pack
from engine.model.synthetic import synthetic_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cgs():
    base = synthetic_dataset(10, seed=5)[0]
    # repeated CGs (a copy and the same object twice) give classes shared across graphs
    twice = CG(nodes=base[0].nodes, edges=list(base[0].edges), name="copy")
    return [*base, twice, base[3]]


def _plain(fn):
    old = dedup.ENABLED
    dedup.ENABLED = False
    try:
        return fn()
    finally:
        dedup.ENABLED = old


@pytest.fixture(params=[8192, 5], ids=["one-block", "blocks-of-5"])
def block(request, monkeypatch):
    """Quotient layers in one row block (these tiny batches) or in blocks of 5 classes."""
    monkeypatch.setattr(encoder_module, "QUOTIENT_BLOCK", request.param)
    return request.param


@pytest.mark.parametrize("cfg", [
    EncoderConfig(hidden=16, layers=3, bidirectional=True),
    EncoderConfig(hidden=16, layers=2, bidirectional=False, activation="relu", readout="meanmax"),
    EncoderConfig(hidden=8, layers=3, aggr="mean", bidirectional=True),
])
def test_quotient_encoder_equals_per_node_pass(cgs, cfg, block):
    torch.manual_seed(0)
    enc = GraphEncoder(cfg).eval()
    packed = pack(cgs)
    with torch.no_grad():
        fast = enc(packed)
        slow = _plain(lambda: enc(pack(cgs)))
        torch.testing.assert_close(fast, slow, atol=2e-6, rtol=1e-6)
        h, q = enc.quotient_states(packed)
        states = enc.node_states(packed)
        torch.testing.assert_close(h[torch.from_numpy(q.levels[-1].cls)], states, atol=2e-6, rtol=1e-6)
        torch.testing.assert_close(q.mean(h), segment_mean(states, packed), atol=2e-6, rtol=1e-6)
    assert q.levels[-1].size < packed.num_nodes  # something was shared
    # duplicated CGs get bit-identical embeddings
    assert torch.equal(fast[0], fast[-2]) and torch.equal(fast[3], fast[-1])
    # training mode / autograd never use the quotient
    assert not dedup.active(enc.train())


def test_quotient_kgnn_equals_per_node_pass(cgs, block):
    torch.manual_seed(0)
    kg = KGNNRegressor(KGNNConfig(hidden=16, layers=4)).eval()
    with torch.no_grad():
        fast = kg(pack(cgs))
        slow = _plain(lambda: kg(pack(cgs)))
    torch.testing.assert_close(fast, slow, atol=2e-6, rtol=1e-6)


def test_classes_are_exact_and_collisions_fall_back(cgs):
    packed = pack(cgs)
    q = dedup.refine(packed, 3, True)
    x = packed.x
    lv0 = q.levels[0]
    assert torch.equal(x[torch.from_numpy(lv0.reps)][torch.from_numpy(lv0.cls)], x)
    for prev, lv in zip(q.levels, q.levels[1:]):  # refinement: a class never splits a coarser one back
        assert np.array_equal(prev.cls[lv.reps][lv.cls], prev.cls)
    # a forced collision of the first hash is detected by the second
    h1 = np.array([5, 5, 7, 5], dtype=np.uint64)
    h2 = np.array([1, 2, 3, 1], dtype=np.uint64)
    cls, reps = dedup._factorize_pair(h1, h2)
    assert cls.tolist() == [0, 1, 2, 0] and reps.tolist() == [0, 1, 2]


def test_fast_cg_conversion_equals_plain(cgs):
    for cg in cgs:
        a, b = _cg_arrays_slow(cg), _cg_arrays(cg)
        assert np.array_equal(a.table, b.table) and a.table.dtype == b.table.dtype
        assert np.array_equal(a.flops, b.flops) and np.array_equal(a.edges, b.edges)
        assert (a.base_h, a.total_flops, a.total_params) == (b.base_h, b.total_flops, b.total_params)


def test_node_vocabulary_is_thread_safe(cgs):
    """Session threads of the app convert CGs concurrently: every conversion still equals the
    plain one."""
    from concurrent.futures import ThreadPoolExecutor

    from engine.model import packing

    packing.clear_feature_cache()
    many = synthetic_dataset(40, seed=11)[0]
    with ThreadPoolExecutor(max_workers=8) as pool:
        fast = list(pool.map(_cg_arrays, many * 4))
    for cg, a in zip(many * 4, fast, strict=True):
        b = _cg_arrays_slow(cg)
        np.testing.assert_array_equal(a.table, b.table)
        np.testing.assert_array_equal(a.flops, b.flops)


def _exact_classes(packed, layers: int, bidirectional: bool) -> list[np.ndarray]:
    """Colour refinement with explicit signatures (tuples), classes numbered by first appearance."""
    def number(keys):
        ids: dict = {}
        return np.array([ids.setdefault(k, len(ids)) for k in keys], dtype=np.int64)

    x = packed.x.numpy()
    src, dst = packed.edge_index.numpy()
    n = packed.num_nodes
    ins = [[] for _ in range(n)]
    outs = [[] for _ in range(n)]
    for s, t in zip(src.tolist(), dst.tolist()):
        ins[t].append(s)
        outs[s].append(t)
    cls = number(row.tobytes() for row in x)
    levels = [cls]
    for _ in range(layers):
        c = cls.tolist()
        keys = []
        for v in range(n):
            key = (c[v], tuple(sorted(c[u] for u in ins[v])))
            if bidirectional:
                key += (tuple(sorted(c[u] for u in outs[v])),)
            keys.append(key)
        cls = number(keys)
        levels.append(cls)
    return levels


@pytest.mark.parametrize("bidirectional", [True, False])
def test_refine_equals_explicit_signatures(cgs, bidirectional):
    packed = pack(cgs)
    q = dedup.refine(packed, 4, bidirectional)
    for lv, ref in zip(q.levels, _exact_classes(packed, 4, bidirectional), strict=True):
        assert np.array_equal(lv.cls, ref)
        assert np.array_equal(lv.reps, np.unique(ref, return_index=True)[1])


def test_batched_conversion_equals_plain(cgs):
    """``pack`` converts the uncached CGs of a call together (``_cg_arrays_many``) and gathers
    features per vocabulary row: the same arrays as converting each CG the plain way."""
    from engine.graphs.cg import Node
    from engine.model import packing

    empty = CG(nodes=[], edges=[], name="empty")
    lone = CG(nodes=[Node(0, "input", (3, 8, 8), (3, 8, 8))], edges=[], name="lone")
    odd_node = Node(0, "input", (3, 8, 8), (3, 8, 8), stride=[1, 1])  # unhashable field: plain path
    odd = CG(nodes=[odd_node], edges=[], name="odd")
    batch = [*cgs, empty, lone, cgs[2]]
    packing.clear_feature_cache()
    for group in (batch, [*batch, odd]):
        for cg, a in zip(group, packing._cg_arrays_many(group), strict=True):
            b = _cg_arrays_slow(cg)
            assert np.array_equal(a.table, b.table) and a.table.dtype == b.table.dtype
            assert np.array_equal(a.flops, b.flops) and np.array_equal(a.edges, b.edges)
            assert (a.base_h, a.total_flops, a.total_params) == (b.base_h, b.total_flops, b.total_params)

    def plain_pack(group):  # features from the per-node table (the path for mixed vocabularies)
        cache = packing.FeatureCache()
        for cg in group:
            cache._put(cg, _cg_arrays_slow(cg))
        return pack(group, cache=cache)

    packing.clear_feature_cache()
    partly = pack(batch[:4])  # some CGs cached, then a vocabulary reset: two vocabularies
    packing._VOCAB = packing._RowVocab()
    for got in (pack(batch), partly, pack(batch, cache=None), pack([*batch, odd])):
        group = batch[:4] if got is partly else [*batch, odd] if len(got) == len(batch) + 1 else batch
        ref = plain_pack(group)
        for k in ("op", "dense", "edge_index", "ptr", "eptr", "flops", "params"):
            assert torch.equal(getattr(got, k), getattr(ref, k)), k


@pytest.mark.parametrize("layers", [2, 3, 5])
def test_forward_levels_derived_from_bidirectional_equal_direct(cgs, layers):
    """With a bidirectional quotient cached (the encoder's), the forward-only one (the k-GNN's)
    is derived from it: the same classes, representatives and aggregation matrices."""
    derived_from = pack(cgs)
    dedup.refine(derived_from, 3, True)
    a = dedup.refine(derived_from, layers, False)
    b = dedup.refine(pack(cgs), layers, False)
    assert len(a.levels) == len(b.levels) == layers + 1
    for x, y in zip(a.levels, b.levels, strict=True):
        assert np.array_equal(x.cls, y.cls) and np.array_equal(x.reps, y.reps)
        if x.fwd is not None:
            assert torch.equal(x.root, y.root) and x.rev is None
            for attr in ("indptr", "indices", "data"):
                assert np.array_equal(getattr(x.fwd, attr), getattr(y.fwd, attr))
    assert np.array_equal(a.readout.indices, b.readout.indices)
