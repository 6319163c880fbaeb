"""Novelty (engine.model.domain): distances, the reference's maths and state, the predictor's
fit / save / load / calibrate paths, the CLI commands and the check."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.__main__ import main
from engine.model.config import GennapeConfig
from engine.model.domain import LEVEL, DomainReference, nearest_centroid_distance
from engine.model.predictor import GennapePredictor
from engine.model.synthetic import synthetic_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def test_nearest_centroid_distance_matches_brute_force():
    rng = np.random.default_rng(0)
    h, c = rng.normal(size=(50, 7)), rng.normal(size=(4, 7))
    brute = np.sqrt(((h[:, None, :] - c[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_centroid_distance(h, c), brute, rtol=1e-9, atol=1e-12)
    assert nearest_centroid_distance(c, c) == pytest.approx(np.zeros(4), abs=1e-6)
    assert nearest_centroid_distance(np.zeros((0, 7)), c).shape == (0,)
    with pytest.raises(ValueError, match="same width"):
        nearest_centroid_distance(h, c[:, :3])


def test_reference_novelty_percentile_and_state():
    d = np.arange(1, 1001, dtype=float)  # 1..1000
    ref = DomainReference().fit(np.r_[d, np.nan])
    assert ref.n_ == 1000
    assert ref.threshold == pytest.approx(np.percentile(d, LEVEL))
    nov = ref.novelty(d)
    assert np.mean(nov > 1) == pytest.approx(0.01, abs=0.002)  # by construction: 1 % of the training CGs
    assert np.all(np.diff(nov) > 0)  # monotone in the distance
    assert ref.percentile([0.0, np.percentile(d, 50), 5000.0]).tolist() == pytest.approx([0.0, 50.0, 100.0])
    back = DomainReference.from_state(json.loads(json.dumps(ref.to_state())))
    np.testing.assert_array_equal(back.percentiles_, ref.percentiles_)
    assert back.n_ == 1000 and "p99" in repr(back)


@pytest.mark.parametrize("state, match", [
    ({"percentiles": [1.0] * 100}, "101"),
    ({"percentiles": list(range(101))[::-1]}, "non-decreasing"),
    ({"percentiles": [float("nan")] * 101}, "finite"),
    ({"percentiles": list(range(101)), "level": 95}, "level"),
    ([1, 2], "expected an object"),
])
def test_reference_rejects_bad_state(state, match):
    with pytest.raises(ValueError, match=match):
        DomainReference.from_state(state)


def test_reference_errors():
    with pytest.raises(ValueError, match="at least 2"):
        DomainReference().fit([1.0])
    with pytest.raises(ValueError, match="not fitted"):
        DomainReference().novelty([1.0])
    assert "fitted=False" in repr(DomainReference())


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    cgs, acc = synthetic_dataset(24, seed=0)
    return GennapePredictor(GennapeConfig.tiny()).fit(cgs, acc), cgs


def test_fit_stores_reference_and_training_cgs_are_inside(fitted):
    pred, cgs = fitted
    assert pred.domain is not None and pred.domain.n_ == len(cgs)
    nov = pred.novelty(cgs)
    assert nov.shape == (len(cgs),) and np.isfinite(nov).all() and (nov >= 0).all()
    assert np.mean(nov > 1) <= 0.05  # at most the 1 % tail (one CG of 24)
    card = pred.model_card["domain"]
    assert card["n"] == len(cgs) and card["distance_p99"] == pytest.approx(pred.domain.threshold)
    np.testing.assert_allclose(pred.novelty_from_embeddings(pred.embed(cgs)), nov)


def test_novelty_survives_save_load_and_finetune(fitted, tmp_path):
    pred, cgs = fitted
    pred.save(tmp_path / "ck")
    back = GennapePredictor.load(tmp_path / "ck")
    np.testing.assert_allclose(back.novelty(cgs), pred.novelty(cgs), rtol=1e-6)
    tuned = pred.finetune(cgs[:12], np.linspace(80, 90, 12), k=12)
    np.testing.assert_allclose(tuned.novelty(cgs), pred.novelty(cgs), rtol=1e-6)  # encoder and centroids kept


def test_old_checkpoint_without_reference_then_calibrated(fitted, tmp_path):
    pred, cgs = fitted
    d = tmp_path / "old"
    pred.save(d)
    state = json.loads((d / "state.json").read_text())
    state.pop("domain")
    (d / "state.json").write_text(json.dumps(state))
    old = GennapePredictor.load(d)
    assert old.domain is None and np.isnan(old.novelty(cgs)).all()
    old.calibrate_domain(cgs, note="the same CGs")
    np.testing.assert_allclose(old.novelty(cgs), pred.novelty(cgs), rtol=1e-6)
    assert old.model_card["domain"]["calibrated_on"] == "the same CGs"


def test_bad_domain_entry_names_the_file(fitted, tmp_path):
    pred, _ = fitted
    d = tmp_path / "bad"
    pred.save(d)
    state = json.loads((d / "state.json").read_text())
    state["domain"] = {"percentiles": [0.0, 1.0]}
    (d / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match=r"state\.json: bad domain entry"):
        GennapePredictor.load(d)


def test_cli_calibrate_domain_and_predict_novelty(fitted, tmp_path, capsys):
    pred, _ = fitted
    d = tmp_path / "ck"
    pred.save(d)
    state = json.loads((d / "state.json").read_text())
    state.pop("domain")
    (d / "state.json").write_text(json.dumps(state))
    weights = (d / "weights.safetensors").read_bytes()
    # the model card names synthetic data, not datasets: the command says so
    assert main(["calibrate-domain", "--checkpoint", str(d)]) == 2
    assert "give --families" in capsys.readouterr().err
    assert main(["calibrate-domain", "--checkpoint", str(d), "--families", "nb201", "--max-per-family", "20"]) == 0
    assert "99th percentile" in capsys.readouterr().err
    back = GennapePredictor.load(d)
    assert back.domain is not None and back.domain.n_ == 20
    assert (d / "weights.safetensors").read_bytes() == weights  # nothing but the reference changed
    spec = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    inp = tmp_path / "in.jsonl"
    inp.write_text(json.dumps({"id": "a", "family": "nb201", "spec": spec}) + "\n")
    out = tmp_path / "out.csv"
    assert main(["predict", "--input", str(inp), "--output", str(out), "--checkpoint", str(d), "--quiet",
                 "--novelty"]) == 0
    header = out.read_text().splitlines()[0].split(",")
    assert header[-1] == "novelty" and header[0] == "id"
    assert "training domain" in capsys.readouterr().err


def test_ensemble_gate_uses_inside_weights_row_by_row():
    from engine.model.ensemble import EnsembleReference, combine

    rng = np.random.default_rng(1)
    vals = {m: rng.normal(size=40) for m in ("a", "b", "c")}
    w, w_in = {"a": 0.5, "b": 0.5}, {"c": 1.0}
    inside = np.arange(40) < 15
    ref = EnsembleReference.fit(vals, w, vals["a"], "rank", w_in, inside)
    e = ref.ensemble(vals, w, None, w_in, inside)
    np.testing.assert_allclose(e[inside], combine(vals, w_in, ref.standardizers)[inside])
    np.testing.assert_allclose(e[~inside], combine(vals, w, ref.standardizers)[~inside])
    # no row inside (or no inside weights): exactly the ungated ensemble
    plain = EnsembleReference.fit(vals, w, vals["a"], "rank")
    none_in = EnsembleReference.fit(vals, w, vals["a"], "rank", w_in, np.zeros(40, bool))
    np.testing.assert_allclose(none_in.score(vals, w, vals["a"], w_in, np.zeros(40, bool)),
                               plain.score(vals, w, vals["a"]))


def _with_threshold(pred, value):
    p = pred.copy()
    p.domain.percentiles_ = np.full(101, value)
    return p


def test_predictor_in_domain_gate(fitted):
    from scipy.stats import spearmanr

    pred, cgs = fitted
    base = pred.predict(cgs)
    assert base.attrs["in_domain_rows"] is None  # the option is off by default
    gated = pred.copy()
    gated.config = gated.config.override({"ensemble.in_domain_members": ["cl_fcm"]})
    assert gated.inside_weights == {"cl_fcm": 1.0}
    every = _with_threshold(gated, 1e9).predict(cgs)  # every CG inside: the score orders like cl_fcm
    assert every.attrs["in_domain_rows"] == len(cgs)
    assert spearmanr(every["score"], every["cl_fcm"])[0] == pytest.approx(1.0)
    nobody = _with_threshold(gated, 1e-12).predict(cgs)  # no CG inside: the zero-shot score, unchanged
    assert nobody.attrs["in_domain_rows"] == 0
    np.testing.assert_allclose(nobody["score"], base["score"])
    ref = _with_threshold(gated, 1e9).reference(cgs)  # a fixed reference is gated the same way
    again = _with_threshold(gated, 1e9).predict(cgs, reference=ref)
    np.testing.assert_allclose(again["score"], every["score"])
    tuned = gated.finetune(cgs[:12], np.linspace(80, 90, 12), k=12)
    assert tuned.config.ensemble.in_domain_members == () and tuned.inside_weights == {}
    assert gated.config.ensemble.in_domain_members == ("cl_fcm",)  # the original keeps its gate
    no_ref = gated.copy()
    no_ref.domain = None
    assert no_ref.inside_weights == {}  # no domain reference: no gate


def test_unknown_in_domain_member_is_rejected(fitted):
    pred, cgs = fitted
    cfg = pred.config.override({"ensemble.in_domain_members": ["nope"]})
    with pytest.raises(ValueError, match="unknown member"):
        GennapePredictor(cfg).fit(cgs, np.linspace(80, 95, len(cgs)))
