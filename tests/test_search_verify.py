"""Verification on real labels, on a small subset with a synthetic scorer (structure, finiteness)."""

from __future__ import annotations

import numpy as np
import pytest

from engine.search.verify import VerifyConfig, load_pool, synthetic_scorer, verify_search


@pytest.fixture(scope="module")
def nb201_pool():
    return load_pool("nb201", limit=150, seed=0)


def test_pool_has_best_and_median(nb201_pool):
    pool = nb201_pool
    assert len(pool) >= 150
    lab = pool.frame["label"].to_numpy()
    assert lab[pool.start_row("best")] == lab.max()
    assert len(pool.labels) == 15625  # every NB-201 arch is labelled
    assert np.isfinite(pool.frame["flops"]).all()


def test_verify_nb201_structure(nb201_pool, tmp_path):
    cfg = VerifyConfig(space="nb201", seeds=2, budget=12, limit=150, population=6)
    res = verify_search(synthetic_scorer(nb201_pool), cfg, pool=nb201_pool)
    t = res.table
    assert list(t["start"].unique()) == ["best", "median"]
    for start in ("best", "median"):
        methods = t[t["start"] == start]["method"].tolist()
        assert methods == ["start", "search", "random", "oracle"]
    runs = res.runs
    assert len(runs[runs["method"] == "search"]) == 4
    assert np.isfinite(runs["acc"]).all()  # NB-201: every find is labelled
    assert np.isfinite(t[["acc_mean", "mflops_mean"]].to_numpy()).all()
    found = runs[runs["method"].isin(["search", "random", "oracle"])]
    met = found[found["meets_target"].astype(bool)]
    assert len(met) >= 8 and (met["flops"] <= met["target_flops"] + 1e-6).all()
    oracle = t[t["method"] == "oracle"].set_index("start")["acc_mean"]
    for start in ("best", "median"):
        rnd = t[(t["start"] == start) & (t["method"] == "random")]["acc_max"].iloc[0]
        assert rnd <= oracle[start] + 1e-9  # oracle = best label meeting the target in the pool
    files = res.save(tmp_path)
    md = (tmp_path / "table.md").read_text()
    assert md.count("\n| best |") == 4 and "synthetic" in md
    assert set(files) == {"runs", "table", "markdown"}


def test_verify_nb101_labelled_pool(shared_data):
    pool = load_pool("nb101", data_dir=shared_data)
    cfg = VerifyConfig(space="nb101", seeds=1, budget=10, population=6, starts=("best",))
    res = verify_search(synthetic_scorer(pool), cfg, pool=pool)
    t = res.table
    assert t["method"].tolist() == ["start", "search", "search_pool", "random", "oracle"]
    sp = res.runs[res.runs["method"] == "search_pool"]
    assert np.isfinite(sp["acc"]).all()  # pool search finds are labelled by construction
    row = t[t["method"] == "search"].iloc[0]
    assert 0 <= row["labelled"] <= row["runs"]


def test_config_validation():
    with pytest.raises(ValueError, match="space"):
        VerifyConfig(space="nb301")
    with pytest.raises(ValueError, match="flops_target"):
        VerifyConfig(flops_target=1.5)
    with pytest.raises(ValueError, match="starts"):
        VerifyConfig(starts=("worst",))
