"""Runner: start resolution, predictor scoring column, determinism by seed, export."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from engine import families
from engine.graphs.cg import CGBuilder
from engine.search.evolution import SearchConfig
from engine.search.runner import (
    export_candidate,
    make_scorer,
    make_space,
    onnx_bytes,
    params_proxy,
    resolve_start,
    run_search,
)
from engine.search.spaces import CGSpace, SpecSpace
from engine.train.callbacks import History

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def _small():
    b = CGBuilder("small", (16, 16, 3))
    x = b.act(b.bn(b.conv(b.input(), 16, 3, name="c1"), name="b1"), "relu", name="r1")
    y = b.act(b.bn(b.conv(x, 16, 3, name="c2"), name="b2"), "relu", name="r2")
    y = b.bn(b.conv(y, 16, 3, name="c3"), name="b3")
    s = b.act(b.sum([x, y], name="add"), "relu", name="r3")
    return b.output(b.linear(b.mean(s, name="gap"), 10, name="fc"))


class FakePredictor:
    """``predict`` with a batch-relative ``score`` (deliberately anti-correlated) and an absolute
    ``cl_fcm_t`` column: the search must use the latter."""

    def predict(self, cgs):
        acc = np.array([80 + 2 * np.log10(c.params + 1) - 1e-9 * c.flops for c in cgs])
        return pd.DataFrame({"score": -(acc - acc.mean()), "cl_fcm_t": acc})


def test_resolve_start_forms(tmp_path):
    cg = _small()
    assert resolve_start(cg) == (None, cg)
    fam, spec = resolve_start(("nb201", "303333"))
    assert fam == "nb201" and spec.startswith("|")
    p = tmp_path / "s.json"
    cg.to_json(p)
    assert resolve_start(str(p))[1].fingerprint() == cg.fingerprint()
    with pytest.raises(FileNotFoundError):
        resolve_start(str(tmp_path / "missing.onnx"))
    with pytest.raises(ValueError, match="give a family"):
        resolve_start("|none~0|")
    with pytest.raises(ValueError):
        resolve_start("bogus", "nb201")


@pytest.mark.parametrize("name", ["hiaml", "inception", "two_path", "nb101", "ofa_mbv3"])
def test_a_spec_given_as_json_text_starts_a_search(name):
    """The Search page's spec box holds JSON text; every family reads it (HiAML, Inception and
    Two-Path once refused their own example)."""
    fam = families.get(name)
    spec = fam.sample(1, seed=0)[0]
    got_fam, got = resolve_start(json.dumps(spec), name)
    assert got_fam == name and fam.canonical(got) == fam.canonical(spec)
    space, item = make_space(json.dumps(spec), name)
    assert space.to_cg(item).fingerprint() == fam.to_cg(spec).fingerprint()


def test_make_space_modes():
    assert isinstance(make_space(("nb201", ARCH))[0], SpecSpace)
    space, item = make_space(("nb201", ARCH), mode="cg")
    assert isinstance(space, CGSpace) and item.meta["family"] == "nb201"
    assert isinstance(make_space(("two_path", families.get("two_path").sample(1)[0]))[0], CGSpace)
    with pytest.raises(ValueError, match="spec search"):
        make_space(_small(), mode="spec")


def test_a_spec_search_keeps_the_starts_to_cg_options():
    """A search from NB-201's ImageNet16-120 network (16x16 input, 120-class head) mutates specs that
    are built as that network too, in the spec and in the CG space."""
    opts = {"num_classes": 120, "input_hw": 16}
    space, item = make_space(("nb201", ARCH), options=opts)
    assert isinstance(space, SpecSpace)
    start = space.to_cg(item)
    assert start.flops == families.get("nb201").to_cg(ARCH, **opts).flops
    assert start.flops < families.get("nb201").to_cg(ARCH).flops  # a 16x16 input: fewer FLOPs than 32x32
    child, _ = space.mutate(item, np.random.default_rng(0))
    out = space.to_cg(child).output_node.in_shape
    assert out == (1, 1, 120) and space.to_cg(child).nodes[0].out_shape[:2] == (16, 16)
    cg_space, cg = make_space(("nb201", ARCH), mode="cg", options=opts)
    assert isinstance(cg_space, CGSpace) and cg.flops == start.flops


def test_scorer_reads_the_absolute_column():
    cgs = [_small()]
    s = make_scorer(FakePredictor())
    assert s(cgs)[0] == pytest.approx(FakePredictor().predict(cgs)["cl_fcm_t"][0])
    with pytest.raises(ValueError, match="no column 'nope'"):
        make_scorer(FakePredictor(), "nope")(cgs)
    with pytest.raises(ValueError, match="returned 2 scores"):
        make_scorer(lambda cgs: [1.0, 2.0])(cgs)


def test_spec_search_deterministic_by_seed():
    cfg = SearchConfig(budget=24, population=8, seed=3)
    r1 = run_search(("nb201", ARCH), FakePredictor(), cfg)
    r2 = run_search(("nb201", ARCH), FakePredictor(), cfg)
    r3 = run_search(("nb201", ARCH), FakePredictor(), SearchConfig(budget=24, population=8, seed=4))
    assert r1.frame().equals(r2.frame())
    assert not r1.frame()["arch"].equals(r3.frame()["arch"])
    f = r1.frame()
    assert len(f) == 25 and f["key"].is_unique  # distinct candidates
    assert r1.meta == {"space": "spec", "score_column": "cl_fcm_t", "family": "nb201"}
    best = r1.best()
    assert best.flops <= r1.flops_target
    # every candidate stays in the benchmark space
    fam = families.get("nb201")
    assert all(fam.validate(a) == a for a in f["arch"])


def test_cg_search_with_a_fitted_predictor_and_progress():
    from engine.model.config import GennapeConfig
    from engine.model.predictor import GennapePredictor
    from engine.model.synthetic import synthetic_dataset

    torch.manual_seed(0)
    cgs, y = synthetic_dataset(16)
    pred = GennapePredictor(GennapeConfig.tiny().override({"contrastive.epochs": 1, "heads.epochs": 5,
                                                           "kgnn.epochs": 1})).fit(cgs, y)
    hist = History()
    cfg = SearchConfig(budget=8, population=6, batch=4, seed=0)
    r1 = run_search(_small(), pred, cfg, hist)
    r2 = run_search(_small(), pred, cfg)
    assert r1.frame().drop(columns="arch").equals(r2.frame().drop(columns="arch"))
    steps = [s for st, s, _, _ in hist.events if st == "search"]
    assert steps[0] == 0 and steps[-1] == 8 and steps == sorted(steps)
    assert r1.meta["space"] == "cg" and r1.meta["rejected_infeasible"] >= 0
    assert np.isfinite(r1.frame()["score"]).all()
    for c in r1.history:  # every candidate was built
        c.cg.validate()


def test_lineage_and_pareto():
    r = run_search(_small(), params_proxy, SearchConfig(budget=16, population=6, seed=1))
    for c in r.history:
        chain = r.lineage(c.uid)
        assert chain[0] is r.start and chain[-1] is c
    front = r.pareto()
    assert [c.flops for c in front] == sorted(c.flops for c in front)
    assert r.frame()["on_pareto"].sum() == len(front)


def test_small_space_stops_early():
    # a mutator that only repeats the start: the loop must stop and say why instead of spinning
    cfg = SearchConfig(budget=40, population=4, seed=0, max_failures=1)

    def mut(spec, rng):
        return spec, "no-op"

    from engine.search.evolution import search
    from engine.search.runner import evaluator

    space = SpecSpace("nb201")
    res = search(ARCH, mut, evaluator(space, params_proxy), cfg, key=space.key)
    assert res.stopped.startswith("stopped after 0 of 40 candidates: 41 mutation(s) gave an architecture already "
                                  "evaluated; the space around this start may be smaller")
    assert "_Repeat" not in res.stopped
    assert len(res.history) == 0

    def broken(spec, rng):
        raise ValueError("no site")

    res = search(ARCH, broken, evaluator(space, params_proxy), cfg, key=space.key)
    assert res.stopped == "stopped after 0 of 40 candidates: 41 mutation(s) failed (last: ValueError: no site)"


def test_export_round_trip(tmp_path):
    from engine.graphs.onnx_import import from_onnx

    cg = _small()
    files = export_candidate(cg, tmp_path, "best")
    assert set(files) == {"json", "onnx"}
    back = from_onnx(onnx_bytes(cg))
    assert (back.fingerprint(), back.flops, back.params) == (cg.fingerprint(), cg.flops, cg.params)


def test_export_reports_unbuildable(tmp_path):
    b = CGBuilder("o", (8, 8, 3))
    cg = b.output(b.add("other", [b.input()], (8, 8, 3)))
    files = export_candidate(cg, tmp_path, "x")
    assert "onnx" not in files and "cannot be built" in files["onnx_error"]
