"""Tests for engine.metrics: known values, edge cases and hypothesis properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.stats import rankdata

import engine.metrics.ranking as ranking
from engine.metrics import (
    METRIC_KEYS,
    all_metrics,
    kendall_tau,
    mae,
    ndcg_at_k,
    pairwise_kt,
    precision_at_k,
    regret_at_1,
    srcc,
    top_k_overlap,
)


def literal_pairwise_kt(truth, pred, filt=1e-4, scale=0.01):
    """Straight transcription of the reference §3.1 description (loops, no numpy tricks)."""
    t = [round(v * scale * 1e6) for v in truth]
    p = [round(v * scale * 1e6) for v in pred]
    thr = round(filt * 1e6)
    items = sorted(zip(t, p, strict=True), key=lambda x: x[0], reverse=True)
    scores = []
    for i in range(len(items)):
        for j in range(i + 1, len(items)):
            if thr and items[i][0] - items[j][0] < thr:
                continue
            scores.append(1 if items[i][1] >= items[j][1] else -1)
    return round(sum(scores) / len(scores), 4) if scores else math.nan


# --- known values -------------------------------------------------------------------------------

def test_mae_known():
    assert mae([90.0, 91.0, 92.0], [91.0, 91.0, 90.0]) == pytest.approx(1.0)


def test_pairwise_kt_matches_literal_transcription_and_blocks(monkeypatch):
    rng = np.random.default_rng(3)
    truth = np.round(rng.uniform(85, 95, 300), 2)  # many ties and near-ties
    pred = np.round(truth + rng.normal(0, 1.5, 300), 1)
    want = literal_pairwise_kt(truth, pred)
    assert pairwise_kt(truth, pred) == want
    monkeypatch.setattr(ranking, "_PAIR_BLOCK_ELEMS", 1000)  # force many small blocks
    assert pairwise_kt(truth, pred) == want
    assert pairwise_kt(truth, pred, filter=0) == literal_pairwise_kt(truth, pred, filt=0)
    frac = truth / 100
    assert pairwise_kt(frac, pred / 100, scale=1.0) == want


def test_pairwise_kt_filter_is_in_fraction_units():
    # 0.005 accuracy points apart (< 0.01): filtered out; 0.02 apart: kept.
    assert math.isnan(pairwise_kt([90.005, 90.0], [1.0, 2.0]))
    assert pairwise_kt([90.02, 90.0], [1.0, 2.0]) == -1.0
    assert pairwise_kt([90.02, 90.0], [2.0, 2.0]) == 1.0  # prediction ties count as concordant


def test_ndcg_known_value():
    # relevance = (0, 10, 20); ranked by pred: 0, 10, 20 -> DCG@2 = 0 + 10/log2(3)
    got = ndcg_at_k([1.0, 2.0, 3.0], [3.0, 2.0, 1.0], k=2)
    assert got == pytest.approx((10 / np.log2(3)) / (20 + 10 / np.log2(3)))
    assert ndcg_at_k([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], k=None) == pytest.approx(1.0)


def test_top_k_overlap_known_and_ties():
    t = [5, 4, 3, 2, 1]
    assert top_k_overlap(t, [5, 4, 3, 2, 1], k=2) == 1.0
    assert top_k_overlap(t, [1, 2, 3, 4, 5], k=2) == 0.0
    assert top_k_overlap(t, [9, 0, 8, 0, 0], k=2) == 0.5
    # prediction ties at the 2nd place: item 1 certain, items 2 and 3 each 1/2 -> (1 + 0.5) / 2
    assert top_k_overlap(t, [9, 5, 5, 0, 0], k=2) == pytest.approx(0.75)
    # truth ties at the 2nd place: either tied item is a correct pick
    assert top_k_overlap([5, 4, 4, 1, 0], [9, 0, 8, 0, 0], k=2) == 1.0
    assert top_k_overlap([5, 4, 4, 1, 0], [5, 4, 4, 1, 0], k=2) == 1.0
    assert precision_at_k is top_k_overlap
    assert top_k_overlap(t, [0, 1, 2, 3, 4], k=50) == 1.0  # k clamped to n


def test_regret_known_and_ties():
    assert regret_at_1([90, 95, 93], [1, 2, 3]) == pytest.approx(2.0)
    assert regret_at_1([90, 95, 93], [1, 3, 2]) == 0.0
    assert regret_at_1([90, 95, 93], [3, 3, 1]) == pytest.approx(2.5)  # average of tied picks


def test_all_metrics_keys_and_scale_flag():
    rng = np.random.default_rng(0)
    t = rng.uniform(80, 95, 40)
    p = t + rng.normal(0, 1, 40)
    out = all_metrics(t, p)
    assert tuple(out) == METRIC_KEYS
    assert out["mae"] == pytest.approx(mae(t, p))
    z = (p - p.mean()) / p.std()
    out_z = all_metrics(t, z, scale_known=False)
    assert math.isnan(out_z["mae"])
    assert out_z["srcc"] == pytest.approx(out["srcc"])
    assert set(all_metrics(t, p, k=5)) >= {"ndcg@5", "precision@5"}


# --- edge cases ---------------------------------------------------------------------------------

def test_invalid_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match=r"y_pred\[1\]=nan"):
        srcc([1, 2, 3], [1, float("nan"), 3])
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        mae([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="empty"):
        all_metrics([], [])
    with pytest.raises(ValueError, match="1-D"):
        kendall_tau(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="positive integer"):
        ndcg_at_k([1, 2], [1, 2], k=0)
    with pytest.raises(ValueError, match="filter"):
        pairwise_kt([1, 2], [1, 2], filter=-1)
    with pytest.raises(ValueError, match="numbers"):
        mae(["a", "b"], [1, 2])


def test_undefined_cases_are_nan_not_crashes():
    one = all_metrics([90.0], [89.0], k=10)
    assert one["mae"] == pytest.approx(1.0)
    assert all(math.isnan(one[key]) for key in ("srcc", "kendall_tau", "pairwise_kt", "ndcg@10"))
    assert one["precision@10"] == 1.0 and one["regret@1"] == 0.0
    const_pred = all_metrics([90.0, 91.0, 92.0], [5.0, 5.0, 5.0])
    assert math.isnan(const_pred["srcc"]) and math.isnan(const_pred["kendall_tau"])
    assert const_pred["pairwise_kt"] == 1.0  # the authors' tie rule, documented
    assert const_pred["regret@1"] == pytest.approx(1.0)
    const_true = all_metrics([90.0, 90.0, 90.0], [1.0, 2.0, 3.0])
    assert math.isnan(const_true["ndcg@10"]) and math.isnan(const_true["pairwise_kt"])
    assert const_true["regret@1"] == 0.0


def test_column_vectors_accepted():
    t = np.array([[1.0], [2.0], [3.0]])
    assert srcc(t, t * 2) == pytest.approx(1.0)


# --- properties ---------------------------------------------------------------------------------

# Accuracies on a 0.05 grid (so ties happen) and predictions on a 0.1 grid in [-100, 100].
truth_st = st.integers(2, 40).flatmap(
    lambda n: st.tuples(
        arrays(np.float64, n, elements=st.integers(1600, 2000).map(lambda v: v / 20)),
        arrays(np.float64, n, elements=st.integers(-1000, 1000).map(lambda v: v / 10)),
    )
)

MONOTONE = [
    lambda x: 3.0 * x + 7.0,
    lambda x: np.exp(x / 50.0),
    lambda x: x ** 3 + x,
    lambda x: 100.0 * np.tanh(x / 200.0),
]

RANK_METRICS = {
    "srcc": srcc,
    "kendall_tau": kendall_tau,
    "pairwise_kt": pairwise_kt,
    "ndcg": ndcg_at_k,
    "precision": lambda t, p: top_k_overlap(t, p, k=5),
    "regret": regret_at_1,
}


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, abs=1e-12)


@given(truth_st, st.sampled_from(range(len(MONOTONE))))
def test_rank_metrics_invariant_to_increasing_transforms(data, which):
    t, p = data
    q = MONOTONE[which](p)
    assume(np.array_equal(rankdata(q), rankdata(p)))  # strictly increasing in floating point too
    assume(np.array_equal(rankdata(np.rint(q * 1e4)), rankdata(np.rint(p * 1e4))))  # KT resolution
    for name, fn in RANK_METRICS.items():
        assert _same(fn(t, p), fn(t, q)), name


@given(truth_st, st.randoms(use_true_random=False))
def test_joint_permutation_invariance(data, rnd):
    t, p = data
    perm = np.array(rnd.sample(range(t.size), t.size))
    a, b = all_metrics(t, p, k=5), all_metrics(t[perm], p[perm], k=5)
    for key in a:
        assert _same(a[key], b[key]), key


@given(truth_st)
def test_bounds(data):
    t, p = data
    m = all_metrics(t, p, k=5)
    for key in ("srcc", "kendall_tau", "pairwise_kt"):
        assert math.isnan(m[key]) or -1.0 - 1e-12 <= m[key] <= 1.0 + 1e-12
    assert math.isnan(m["ndcg@5"]) or 0.0 <= m["ndcg@5"] <= 1.0 + 1e-12
    assert 0.0 <= m["precision@5"] <= 1.0 + 1e-12
    assert 0.0 <= m["regret@1"] <= t.max() - t.min() + 1e-12
    assert m["mae"] >= 0.0


@given(truth_st)
def test_perfect_and_reversed_order(data):
    t, _ = data
    assume(not np.all(t == t[0]))
    assert srcc(t, t) == pytest.approx(1.0) and srcc(t, -t) == pytest.approx(-1.0)
    assert kendall_tau(t, t) == pytest.approx(1.0) and kendall_tau(t, -t) == pytest.approx(-1.0)
    assert pairwise_kt(t, t) == 1.0 and pairwise_kt(t, -t) == -1.0
    assert ndcg_at_k(t, t) == pytest.approx(1.0)
    assert top_k_overlap(t, t, k=5) == pytest.approx(1.0)
    assert regret_at_1(t, t) == 0.0


def test_all_metrics_pairwise_kt_of_scores_depends_only_on_their_order():
    """Scores (scale_known=False) of a small range must not tie under the accuracy rounding."""
    rng = np.random.default_rng(0)
    t = np.round(rng.uniform(85, 95, 400), 2)
    p = t + rng.normal(0, 1, 400)
    base = all_metrics(t, p, scale_known=False)["pairwise_kt"]
    for q in ((p - p.min()) * 1e-6, np.exp(p / 10), 3 * p + 7):
        assert all_metrics(t, q, scale_known=False)["pairwise_kt"] == base
    assert all_metrics(t, p)["pairwise_kt"] == base  # accuracies far apart: the same as the authors' rounding
    assert math.isnan(all_metrics(t, np.full(400, 50.0), scale_known=False)["pairwise_kt"])  # no order at all
    with pytest.warns(UserWarning, match="pass scale=1.0 for fraction labels"):
        pairwise_kt(t / 100, p / 100)
