"""Novelty (engine.model.domain): distances, the reference's maths and state, the predictor's
fit / save / load / calibrate paths, the CLI commands and the check."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from engine.__main__ import main
from engine.model.config import GennapeConfig
from engine.model.domain import LEVEL, DomainReference, nearest_distance
from engine.model.predictor import GennapePredictor
from engine.model.synthetic import synthetic_dataset

pytestmark = pytest.mark.usefixtures("one_thread")


def test_nearest_distance_matches_brute_force_and_leave_one_out():
    rng = np.random.default_rng(0)
    h, b = rng.normal(size=(50, 7)), rng.normal(size=(30, 7))
    brute = np.sqrt(((h[:, None, :] - b[None]) ** 2).sum(-1)).min(1)
    np.testing.assert_allclose(nearest_distance(h, b), brute, rtol=1e-4, atol=1e-5)
    assert nearest_distance(b, b) == pytest.approx(np.zeros(30), abs=1e-2)
    loo = np.sqrt(((b[:, None, :] - b[None]) ** 2).sum(-1)) + np.diag(np.full(30, np.inf))
    np.testing.assert_allclose(nearest_distance(b, b, exclude_self=True), loo.min(1), rtol=1e-4, atol=1e-5)
    assert nearest_distance(np.zeros((0, 7)), b).shape == (0,)
    with pytest.raises(ValueError, match="same width"):
        nearest_distance(h, b[:, :3])


def test_reference_novelty_percentile_and_state():
    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, 5))
    ref = DomainReference().fit(np.r_[train, np.full((1, 5), np.nan)])
    assert ref.n_ == 400 and ref.bank_.shape == (400, 5)
    assert ref.threshold == pytest.approx(ref.percentiles_[LEVEL])
    nov_new = ref.novelty(rng.normal(size=(400, 5)))  # new draws of the same distribution: mostly inside
    assert np.mean(nov_new > 1) < 0.1
    far = ref.novelty(rng.normal(size=(20, 5)) + 10.0)  # a distant cloud: all outside
    assert (far > 1).all()
    assert ref.novelty(train[:3]) == pytest.approx(np.zeros(3), abs=0.02)  # a bank row is at distance 0
    assert ref.percentile(np.full((1, 5), 50.0))[0] == 100.0
    back = DomainReference.from_state(json.loads(json.dumps(ref.to_state())), ref.bank_)
    np.testing.assert_array_equal(back.percentiles_, ref.percentiles_)
    np.testing.assert_allclose(back.novelty(far[:0].reshape(0, 5)), [])
    assert back.n_ == 400 and "p99" in repr(back)


def test_reference_bank_is_capped_by_a_seeded_subsample():
    h = np.random.default_rng(0).normal(size=(300, 4))
    a = DomainReference(max_bank=100, random_state=3).fit(h)
    b = DomainReference(max_bank=100, random_state=3).fit(h)
    assert a.n_ == 300 and a.bank_.shape == (100, 4)
    np.testing.assert_array_equal(a.bank_, b.bank_)


def _state():
    ref = DomainReference().fit(np.random.default_rng(0).normal(size=(20, 3)))
    return ref.to_state(), ref.bank_


@pytest.mark.parametrize("change, match", [
    ({"percentiles": [1.0] * 100}, "101"),
    ({"percentiles": list(range(101))[::-1]}, "non-decreasing"),
    ({"percentiles": [float("nan")] * 101}, "finite"),
    ({"level": 95}, "level"),
    ({"kind": "centroid"}, "kind"),
    ({"bank_rows": 7}, "expected 7 finite rows"),
])
def test_reference_rejects_bad_state(change, match):
    state, bank = _state()
    with pytest.raises(ValueError, match=match):
        DomainReference.from_state({**state, **change}, bank)


def test_reference_errors():
    with pytest.raises(ValueError, match="at least 3"):
        DomainReference().fit(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="not fitted"):
        DomainReference().novelty(np.zeros((1, 4)))
    with pytest.raises(ValueError, match="expected an object"):
        DomainReference.from_state([1, 2], np.zeros((2, 2)))
    assert "fitted=False" in repr(DomainReference())


def _saved_without_domain(pred, d):
    """``pred`` saved as a checkpoint written before engine.model.domain existed."""
    pred.save(d)
    state = json.loads((d / "state.json").read_text())
    state.pop("domain")
    (d / "state.json").write_text(json.dumps(state))
    return d


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
    card = pred.model_card["domain"]
    assert card["n"] == len(cgs) and card["distance_p99"] == pytest.approx(pred.domain.threshold)
    assert np.allclose(nov, 0.0, atol=1e-3)  # each training CG is in the bank
    np.testing.assert_allclose(pred.novelty_from_embeddings(pred.embed(cgs)), nov)


def test_novelty_survives_save_load_and_finetune(fitted, tmp_path):
    pred, cgs = fitted
    pred.save(tmp_path / "ck")
    back = GennapePredictor.load(tmp_path / "ck")
    other = synthetic_dataset(12, seed=7)[0]
    assert (pred.novelty(other) > 0.01).all()
    np.testing.assert_allclose(back.novelty(other), pred.novelty(other), rtol=1e-5)
    tuned = pred.finetune(cgs[:12], np.linspace(80, 90, 12), k=12)
    np.testing.assert_allclose(tuned.novelty(other), pred.novelty(other), rtol=1e-5)  # encoder and bank kept


def test_old_checkpoint_without_reference_then_calibrated(fitted, tmp_path):
    pred, cgs = fitted
    d = _saved_without_domain(pred, tmp_path / "old")
    old = GennapePredictor.load(d)
    assert old.domain is None and np.isnan(old.novelty(cgs)).all()
    old.calibrate_domain(cgs, note="the same CGs")
    other = synthetic_dataset(12, seed=7)[0]
    np.testing.assert_allclose(old.novelty(other), pred.novelty(other), rtol=1e-5)
    assert old.model_card["domain"]["calibrated_on"] == "the same CGs"


def test_bad_or_missing_domain_files_name_the_file(fitted, tmp_path):
    pred, _ = fitted
    d = tmp_path / "bad"
    pred.save(d)
    assert (d / "domain.safetensors").exists()
    state = json.loads((d / "state.json").read_text())
    state["domain"]["percentiles"] = [0.0, 1.0]
    (d / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match=r"state\.json / domain\.safetensors: bad domain entry"):
        GennapePredictor.load(d)
    pred.save(d)
    (d / "domain.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="domain.safetensors: missing"):
        GennapePredictor.load(d)
    pred.save(d)
    state = json.loads((d / "state.json").read_text())
    state["domain"] = {"n": 3, "percentiles": [0.0] * 101}  # the first, centroid-based format: ignored
    (d / "state.json").write_text(json.dumps(state))
    assert GennapePredictor.load(d).domain is None


def test_cli_calibrate_domain_and_predict_novelty(fitted, tmp_path, capsys):
    pred, _ = fitted
    d = _saved_without_domain(pred, tmp_path / "ck")
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
    # a checkpoint whose bank file went missing is repaired by the command its error names
    (d / "domain.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=f"calibrate-domain --checkpoint {d}"):
        GennapePredictor.load(d)
    assert main(["calibrate-domain", "--checkpoint", str(d), "--families", "nb201", "--max-per-family", "20"]) == 0
    assert GennapePredictor.load(d).domain.n_ == 20


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

    pred, train = fitted
    cgs = synthetic_dataset(16, seed=11)[0]  # not in the bank: their distances are > 0
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
    paper = gated.copy()
    paper.config = paper.config.override({"finetune.selection": "paper"})
    tuned = paper.finetune(train[:12], np.linspace(80, 90, 12), k=12)
    assert tuned.config.ensemble.in_domain_members == () and tuned.inside_weights == {}
    # cross-validated: the gate goes with the base model's weights unless the base model is kept
    cv = gated.copy()
    cv.config = cv.config.override({"finetune.selection": "cv"})
    tuned = cv.finetune(train[:12], np.linspace(80, 90, 12), k=12)
    kept = tuned.model_card["finetune"]["kept_base_model"]
    assert tuned.config.ensemble.in_domain_members == (("cl_fcm",) if kept else ())
    assert gated.config.ensemble.in_domain_members == ("cl_fcm",)  # the original keeps its gate
    no_ref = gated.copy()
    no_ref.domain = None
    assert no_ref.inside_weights == {}  # no domain reference: no gate


def test_unknown_in_domain_member_is_rejected(fitted):
    pred, cgs = fitted
    cfg = pred.config.override({"ensemble.in_domain_members": ["nope"]})
    with pytest.raises(ValueError, match="unknown member"):
        GennapePredictor(cfg).fit(cgs, np.linspace(80, 95, len(cgs)))


def test_cli_predict_reports_the_in_domain_rows(fitted, tmp_path, capsys):
    pred, _ = fitted
    gated = pred.copy()
    gated.config = gated.config.override({"ensemble.in_domain_members": ["cl_fcm"]})
    d = tmp_path / "gated"
    gated.save(d)
    spec = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    other = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|"
    inp = tmp_path / "in.jsonl"
    inp.write_text("".join(json.dumps({"id": i, "family": "nb201", "spec": s}) + "\n"
                           for i, s in (("a", spec), ("b", other))))
    assert main(["predict", "--input", str(inp), "--output", str(tmp_path / "o.csv"), "--checkpoint", str(d),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "of 2 architectures lie inside the training domain and are scored with cl_fcm" in err
    # one architecture alone: its score is the anchor's prediction, and only that is said
    inp.write_text(json.dumps({"id": "a", "family": "nb201", "spec": spec}) + "\n")
    assert main(["predict", "--input", str(inp), "--output", str(tmp_path / "o1.csv"), "--checkpoint", str(d),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "single architecture" in err and "lie inside the training domain" not in err
