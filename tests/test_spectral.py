"""Tests for engine.graphs.spectral: known spectra, invariances, padding, weights and cache."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

import engine.graphs.spectral as spectral
from engine.graphs.cg import CG, CGBuilder, Node
from engine.graphs.spectral import (
    PAD_VALUE,
    clear_spectrum_cache,
    laplacian_spectrum,
    laplacian_spectrum_from_edges,
    normalized_laplacian,
    pairwise_spectral_distances,
    soft_positive_weights,
    spectra,
    spectral_distance,
    spectrum_cache_info,
    spectrum_cached,
)


def path_edges(n):
    return [(i, i + 1) for i in range(n - 1)]


def branches_edges(n_branches, length):
    """input -> n identical parallel chains -> output (highly repeated eigenvalues)."""
    edges, n = [], 2
    for _ in range(n_branches):
        prev = 0
        for _ in range(length):
            edges.append((prev, n))
            prev, n = n, n + 1
        edges.append((prev, 1))
    return n, edges


def small_net(name="net", width=16, depth=3, input_hwc=(32, 32, 3)):
    b = CGBuilder(name, input_hwc=input_hwc)
    x = b.act(b.bn(b.conv(b.input(), width, 3)))
    for _ in range(depth):
        h = b.act(b.bn(b.conv(x, width, 3)))
        h = b.bn(b.conv(h, width, 3))
        x = b.act(b.sum([x, h]))
    return b.output(b.linear(b.mean(x), 10))


def relabel(cg: CG, perm: np.ndarray) -> CG:
    """The same graph with node i renamed perm[i] (ids re-sorted to equal positions)."""
    inv = np.argsort(perm)
    nodes = []
    for new_id in range(cg.num_nodes):
        old = cg.nodes[int(inv[new_id])]
        nodes.append(Node(id=new_id, op=old.op, in_shape=old.in_shape, out_shape=old.out_shape, weight=old.weight,
                          flops=old.flops, params=old.params))
    edges = [(int(perm[u]), int(perm[v])) for u, v in cg.edges]
    return CG(nodes=nodes, edges=edges, name=cg.name)


@pytest.fixture(autouse=True)
def _fresh_cache():
    clear_spectrum_cache(maxsize=8192)
    yield
    clear_spectrum_cache(maxsize=8192)


# --- known spectra ------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 5, 21, 40])
def test_path_graph(n):
    want = np.sort(1 - np.cos(np.pi * np.arange(n) / (n - 1)))
    got, count = laplacian_spectrum_from_edges(n, path_edges(n), q=21, return_count=True)
    k = min(n, 21)
    assert count == k
    np.testing.assert_allclose(got[:k], want[:k], atol=1e-12)


@pytest.mark.parametrize("n", [3, 7, 30])
def test_complete_graph(n):
    edges = [(i, j) for i in range(n) for j in range(i + 1, n)]
    got = laplacian_spectrum_from_edges(n, edges, q=min(n, 21))
    assert got[0] == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(got[1:], n / (n - 1), atol=1e-12)


def test_cycle_and_star():
    n = 12
    cyc = laplacian_spectrum_from_edges(n, path_edges(n) + [(n - 1, 0)], q=n)
    np.testing.assert_allclose(cyc, np.sort(1 - np.cos(2 * np.pi * np.arange(n) / n)), atol=1e-12)
    star = laplacian_spectrum_from_edges(n, [(0, i) for i in range(1, n)], q=n)
    np.testing.assert_allclose(star, [0.0] + [1.0] * (n - 2) + [2.0], atol=1e-12)


def test_laplacian_matrix_definition():
    lap = normalized_laplacian(3, [(0, 1), (1, 2), (0, 1), (2, 2)])  # duplicate edge and self loop ignored
    d = np.array([1.0, 2.0, 1.0])
    a = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
    np.testing.assert_allclose(lap, np.eye(3) - a / np.sqrt(np.outer(d, d)))
    np.testing.assert_allclose(normalized_laplacian(3, [(0, 1), (1, 2)], sparse=True).toarray(), lap)


def test_direction_ignored_and_isolated_nodes():
    edges = [(0, 1), (1, 2), (0, 3), (3, 2)]
    rev = [(v, u) for u, v in edges]
    np.testing.assert_allclose(laplacian_spectrum_from_edges(4, edges, q=4), laplacian_spectrum_from_edges(4, rev, q=4))
    # two isolated nodes: two components, Chung's convention gives eigenvalue 0 twice
    got, count = laplacian_spectrum_from_edges(2, [], q=4, return_count=True)
    np.testing.assert_allclose(got, [0.0, 0.0, PAD_VALUE, PAD_VALUE])
    assert count == 2


# --- CGs: invariance, padding -------------------------------------------------------------------

def test_cg_spectrum_invariant_to_relabelling():
    cg = small_net()
    base = laplacian_spectrum(cg)
    assert base.shape == (21,) and np.all(np.diff(base) >= -1e-12)
    assert base[0] == pytest.approx(0.0, abs=1e-12) and np.all((base >= 0) & (base <= 2))
    rng = np.random.default_rng(0)
    for _ in range(3):
        other = relabel(cg, rng.permutation(cg.num_nodes))
        assert other.content_hash() != cg.content_hash()
        np.testing.assert_allclose(laplacian_spectrum(other), base, atol=1e-12)


def test_padding_for_small_graphs():
    b = CGBuilder("tiny")
    cg = b.output(b.linear(b.mean(b.input()), 10))  # 4 nodes in a chain
    spec, count = laplacian_spectrum(cg, q=21, return_count=True)
    assert count == 4
    np.testing.assert_allclose(spec[:4], np.sort(1 - np.cos(np.pi * np.arange(4) / 3)), atol=1e-12)
    np.testing.assert_array_equal(spec[4:], PAD_VALUE)
    assert laplacian_spectrum(cg, q=3).shape == (3,)


def test_sparse_solver_matches_dense(monkeypatch):
    cases = [(300, path_edges(300)), branches_edges(30, 15), branches_edges(120, 4)]
    rng = np.random.default_rng(1)
    n = 500
    rand_edges = [(int(u), v) for v in range(1, n) for u in rng.integers(max(0, v - 6), v, size=2)]
    cases.append((n, rand_edges))
    monkeypatch.setattr(spectral, "DENSE_MAX_NODES", 10**9)
    dense = [laplacian_spectrum_from_edges(n_, e) for n_, e in cases]
    monkeypatch.setattr(spectral, "DENSE_MAX_NODES", 50)
    for (n_, e), want in zip(cases, dense, strict=True):
        np.testing.assert_allclose(laplacian_spectrum_from_edges(n_, e), want, atol=1e-9)


def test_throughput_smoke():
    cg = small_net(depth=40)  # ~290 nodes
    assert 250 <= cg.num_nodes <= 350
    laplacian_spectrum(cg)
    t0 = time.perf_counter()
    for _ in range(20):
        laplacian_spectrum(cg)
    per_graph = (time.perf_counter() - t0) / 20
    assert per_graph < 0.05  # 200 graphs/s measured on an idle core; loose bound for a busy CI box


def test_bad_inputs():
    with pytest.raises(ValueError, match="positive integer"):
        laplacian_spectrum(small_net(), q=0)
    with pytest.raises(ValueError, match="outside 0..2"):
        laplacian_spectrum_from_edges(3, [(0, 5)])
    with pytest.raises(ValueError, match="at least one node"):
        laplacian_spectrum_from_edges(0, [])
    with pytest.raises(ValueError, match="expects a CG"):
        laplacian_spectrum("not a graph")
    with pytest.raises(ValueError, match="pairs"):
        laplacian_spectrum_from_edges(3, [(0, 1, 2)])


# --- distances and weights ----------------------------------------------------------------------

def test_distance():
    assert spectral_distance([0, 0, 0], [1, 2, 2]) == pytest.approx(3.0)
    with pytest.raises(ValueError, match="equal length"):
        spectral_distance([0, 1], [0, 1, 2])
    s = np.random.default_rng(0).uniform(0, 2, (6, 21))
    d = pairwise_spectral_distances(s)
    assert d[1, 4] == pytest.approx(spectral_distance(s[1], s[4]))
    np.testing.assert_allclose(d, d.T)
    np.testing.assert_array_equal(np.diag(d), 0)


def test_soft_positive_weights_rows_and_order():
    s = np.array([[0.0, 0.0], [0.1, 0.0], [1.0, 0.0], [0.0, 0.05]])
    w = soft_positive_weights(s, tau_s=0.1)
    np.testing.assert_allclose(w.sum(1), 1.0)
    np.testing.assert_array_equal(np.diag(w), 0.0)
    assert np.all(w[~np.eye(4, dtype=bool)] > 0)
    # from item 0: item 3 (0.05 away) > item 1 (0.1) > item 2 (1.0)
    assert w[0, 3] > w[0, 1] > w[0, 2]
    ratio = w[0, 3] / w[0, 1]
    assert ratio == pytest.approx(np.exp(-(0.05 - 0.1) / 0.1))
    # equal distances -> equal weights; larger tau -> flatter
    assert np.allclose(soft_positive_weights(np.zeros((3, 4)))[0, 1:], 0.5)
    assert soft_positive_weights(s, tau_s=10.0)[0].max() < w[0].max()


def test_soft_positive_weights_for_cl_batch_of_two_views():
    cgs = [small_net(depth=d) for d in (1, 2, 6)]
    spec = spectra(cgs)
    w = soft_positive_weights(np.concatenate([spec, spec]))  # two dropout views of each CG
    for i in range(3):
        assert w[i].argmax() == i + 3 and w[i + 3].argmax() == i


def test_soft_positive_weights_torch_matches_numpy():
    s = np.random.default_rng(0).uniform(0, 2, (5, 21))
    wt = soft_positive_weights(torch.tensor(s, dtype=torch.float32), tau_s=0.3)
    assert isinstance(wt, torch.Tensor) and wt.dtype == torch.float32
    np.testing.assert_allclose(wt.numpy(), soft_positive_weights(s, tau_s=0.3), atol=1e-6)


def test_soft_positive_weights_errors():
    with pytest.raises(ValueError, match="N >= 2"):
        soft_positive_weights(np.zeros((1, 21)))
    with pytest.raises(ValueError, match="tau_s"):
        soft_positive_weights(np.zeros((3, 21)), tau_s=0)
    with pytest.raises(ValueError, match="NaN"):
        soft_positive_weights(np.array([[0.0, np.nan], [0.0, 1.0]]))


# --- cache --------------------------------------------------------------------------------------

def test_memory_cache_hits_and_copies():
    cg = small_net()
    a = spectrum_cached(cg)
    b = spectrum_cached(cg)
    np.testing.assert_array_equal(a, laplacian_spectrum(cg))
    np.testing.assert_array_equal(a, b)
    info = spectrum_cache_info()
    assert info["hits"] == 1 and info["misses"] == 1 and info["size"] == 1
    a[:] = -1.0  # mutating a returned array must not poison the cache
    assert spectrum_cached(cg)[0] == pytest.approx(0.0, abs=1e-12)
    spec, count = spectrum_cached(cg, q=25, return_count=True)  # separate key per q
    assert spec.shape == (25,) and count == 25 and spectrum_cache_info()["size"] == 2


def test_lru_is_bounded():
    clear_spectrum_cache(maxsize=2)
    cgs = [small_net(f"n{i}", depth=i + 1) for i in range(3)]
    for cg in cgs:
        spectrum_cached(cg)
    assert spectrum_cache_info()["size"] == 2
    spectrum_cached(cgs[0])  # evicted -> recomputed
    assert spectrum_cache_info()["misses"] == 4


def test_disk_cache(tmp_path):
    cg = small_net()
    want = spectrum_cached(cg, disk=True, directory=tmp_path)
    files = list(tmp_path.glob("*.npz"))
    assert len(files) == 1 and cg.content_hash() in files[0].name
    clear_spectrum_cache()
    np.testing.assert_array_equal(spectrum_cached(cg, disk=True, directory=tmp_path), want)
    assert spectrum_cache_info()["disk_hits"] == 1
    # a corrupted file is recomputed and rewritten, not fatal
    files[0].write_bytes(b"garbage")
    clear_spectrum_cache()
    np.testing.assert_array_equal(spectrum_cached(cg, disk=True, directory=tmp_path), want)
    clear_spectrum_cache()
    spectrum_cached(cg, disk=True, directory=tmp_path)
    assert spectrum_cache_info()["disk_hits"] == 1


def test_spectra_batch():
    cgs = [small_net(depth=d) for d in (1, 2)]
    s = spectra(cgs)
    assert s.shape == (2, 21)
    np.testing.assert_array_equal(s[1], laplacian_spectrum(cgs[1]))
    np.testing.assert_array_equal(spectra(cgs, cached=False), s)
    assert spectra([]).shape == (0, 21)


def test_sparse_failure_falls_back_to_dense(monkeypatch):
    import scipy.sparse.linalg

    n, edges = branches_edges(20, 10)
    want = laplacian_spectrum_from_edges(n, edges)

    def broken(*args, **kwargs):
        raise scipy.sparse.linalg.ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((0, 0)))

    monkeypatch.setattr(spectral, "DENSE_MAX_NODES", 50)
    monkeypatch.setattr(scipy.sparse.linalg, "eigsh", broken)
    np.testing.assert_allclose(laplacian_spectrum_from_edges(n, edges), want, atol=1e-12)
