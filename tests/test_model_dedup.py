"""The fast inference paths equal the reference ones: the quotient (deduplicated) message
passing of :mod:`engine.model.dedup` vs the per-node pass, and the vocabulary-based CG
conversion vs the plain one."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.graphs.cg import CG
from engine.model import dedup
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


@pytest.mark.parametrize("cfg", [
    EncoderConfig(hidden=16, layers=3, bidirectional=True),
    EncoderConfig(hidden=16, layers=2, bidirectional=False, activation="relu", readout="meanmax"),
    EncoderConfig(hidden=8, layers=3, aggr="mean", bidirectional=True),
])
def test_quotient_encoder_equals_per_node_pass(cgs, cfg):
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


def test_quotient_kgnn_equals_per_node_pass(cgs):
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
