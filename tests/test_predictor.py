"""GennapePredictor: fit / predict / fine-tune / save-load on a tiny synthetic family."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from edits import DELETE, set_in

from engine.model.config import MEMBERS, GennapeConfig
from engine.model.predictor import HEAD_MEMBERS, GennapePredictor
from engine.model.synthetic import synthetic_dataset
from engine.train.callbacks import History

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    return synthetic_dataset(24, seed=0)


@pytest.fixture(scope="module")
def target():
    return synthetic_dataset(12, seed=7)


@pytest.fixture(scope="module")
def fitted(data):
    torch.set_num_threads(1)
    cgs, acc = data
    hist = History()
    pred = GennapePredictor(GennapeConfig.tiny()).fit(cgs, acc, callback=hist, source={"source_families": ["syn"]})
    pred._test_history = hist
    return pred


def _params(pred: GennapePredictor) -> dict[str, torch.Tensor]:
    return pred.state_dict()


def test_fit_reports_progress_and_model_card(fitted):
    stages = {e[0] for e in fitted._test_history.events}
    assert {"spectra", "pretrain", "embed", "fcm", "head cl_fcm_t", "pairwise pairwise", "kgnn"} <= stages
    card = fitted.model_card
    assert card["source_families"] == ["syn"] and card["n_graphs"] == 24
    assert set(card["validation_metrics"]) == {"score", *MEMBERS}
    assert fitted.members == ("cl_fcm_t", "cl_t", "pairwise", "pairwise_fcm", "kgnn", "flops_baseline")
    np.testing.assert_allclose(sum(fitted.weights.values()), 1.0)


def test_predict_columns_shapes_and_memberships(fitted, data):
    cgs, _ = data
    df = fitted.predict(cgs)
    c = fitted.n_clusters
    assert list(df.columns) == (["score", "flops", "params", "cluster"] + [f"membership_{j}" for j in range(c)]
                                + list(MEMBERS))
    assert len(df) == len(cgs)
    u = df[[f"membership_{j}" for j in range(c)]].to_numpy()
    np.testing.assert_allclose(u.sum(1), 1.0, atol=1e-9)
    assert np.array_equal(df["cluster"].to_numpy(), u.argmax(1))
    assert df["flops"].tolist() == [cg.flops for cg in cgs]
    assert np.isfinite(df[list(MEMBERS)].to_numpy()).all()
    np.testing.assert_allclose(df["flops_baseline"], np.log10(df["flops"] + 1.0))
    h = fitted.embed(cgs)
    assert h.shape == (len(cgs), fitted.embed_dim)
    np.testing.assert_allclose(fitted.memberships(cgs), u, atol=1e-6)


def test_score_is_quantile_mapped_ensemble(fitted, data):
    cgs, _ = data
    df = fitted.predict(cgs)
    # the score takes the anchor's values (averaged over ensemble ties), in the ensemble's order
    np.testing.assert_allclose(df["score"].sum(), df["cl_fcm_t"].sum(), rtol=1e-9)
    assert df["score"].max() == pytest.approx(df["cl_fcm_t"].max())
    assert df["score"].min() == pytest.approx(df["cl_fcm_t"].min())
    single = fitted.predict(cgs[:1])
    np.testing.assert_allclose(single["score"], single["cl_fcm_t"])
    ref = fitted.reference(cgs)
    a = fitted.predict(cgs[:5], reference=ref)["score"].to_numpy()
    b = fitted.predict(cgs, reference=ref)["score"].to_numpy()[:5]
    np.testing.assert_allclose(a, b, atol=1e-9)


def test_eq5_inverse_is_applied(fitted, data):
    cgs, _ = data
    df = fitted.predict(cgs)
    from engine.model.packing import pack

    packed = pack(cgs)
    with torch.no_grad():
        h = fitted.cl.encoder(packed)
        u = torch.from_numpy(fitted.fcm_memberships(h.double().numpy())).float()
        for name, (use_fcm, kind) in HEAD_MEMBERS.items():
            y = fitted.heads[name](h, u if use_fcm else None).double().numpy()
            t = fitted.transforms[kind]
            expect = (y * t.std_ + t.mean_) * ((np.log10(packed.flops.numpy() / 1e9 + 1) + 1) if kind == "flops" else 1)
            np.testing.assert_allclose(df[name], expect, rtol=1e-5)
        assert fitted.config.pairwise.target == "t"
        a, b = fitted.pair_calibration["pairwise"]
        g = fitted.pairwise["pairwise"](h).double().numpy()
        np.testing.assert_allclose(df["pairwise"], fitted.transforms["flops"].inverse(a * g + b, packed.flops.numpy()),
                                   rtol=1e-5)


def test_batch_prediction_equals_single(fitted, data):
    cgs, _ = data
    df = fitted.predict(cgs)
    one = [fitted.member_predictions([cg])[0]["cl_fcm_t"][0] for cg in cgs[:4]]
    np.testing.assert_allclose(df["cl_fcm_t"].to_numpy()[:4], one, rtol=1e-5)


def test_finetune_returns_copy_and_leaves_original(fitted, target):
    tc, ta = target
    fitted = fitted.copy()  # the paper's weights (the default "auto" may keep the base model)
    fitted.config = fitted.config.override({"finetune.selection": "paper"})
    before = {k: v.clone() for k, v in _params(fitted).items()}
    weights_before = dict(fitted.weights)
    hist = History()
    ft = fitted.finetune(tc, ta, k=8, seed=0, callback=hist)
    assert ft is not fitted and ft.heads is not fitted.heads
    after = _params(fitted)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert fitted.weights == weights_before
    changed = [k for k, v in _params(ft).items() if not torch.equal(v, before[k])]
    assert any(k.startswith("heads.") for k in changed) and any(k.startswith("kgnn.") for k in changed)
    assert not any(k.startswith("cl.") for k in changed)  # the encoder stays frozen
    info = ft.model_card["finetune"]
    assert info["k"] == 8 and set(info["weights"]) == set(ft.members)
    np.testing.assert_allclose(sum(ft.weights.values()), 1.0)
    assert any(e[0] == "finetune" for e in hist.events)
    assert "finetune" not in fitted.model_card


def test_finetune_epochs_and_selection_apply_to_the_copy_only(fitted, target):
    tc, ta = target
    cfg_before = fitted.config
    params_before = {k: v.clone() for k, v in _params(fitted).items()}
    ft = fitted.finetune(tc, ta, k=8, seed=0, epochs=2, selection="paper")
    assert ft.config.finetune.head_epochs == 2 and ft.config.finetune.selection == "paper"
    assert ft.config.finetune.kgnn_epochs == min(2, cfg_before.finetune.kgnn_epochs)
    assert ft.model_card["finetune"]["selection"] == "paper"
    assert fitted.config is cfg_before  # the original keeps its config and weights
    assert all(torch.equal(v, params_before[k]) for k, v in _params(fitted).items())
    for bad in (0, -1, 2.5, True, "3"):
        with pytest.raises(ValueError, match="epochs must be an int >= 1"):
            fitted.finetune(tc, ta, k=8, epochs=bad)
    with pytest.raises(ValueError, match="finetune.selection must be one of"):
        fitted.finetune(tc, ta, k=8, selection="nope")


def _cv_base(fitted):
    base = fitted.copy()
    base.config = base.config.override({"finetune.selection": "cv", "finetune.cv_folds": 3,
                                        "ensemble.in_domain_members": ["cl_fcm"]})
    return base


def test_finetune_cv_selection_keeps_members_that_do_not_improve_out_of_fold(fitted, target, monkeypatch):
    from engine.train import finetune as ftmod
    from engine.train.finetune import cv_folds, learned_members

    tc, ta = target
    base = _cv_base(fitted)
    # the base model's own score ranks no fold (constant): the fine-tuned ensemble is kept
    monkeypatch.setattr(ftmod, "_fold_base_scores", lambda b, p, folds: np.zeros(len(p)))
    hist = History()
    ft = base.finetune(tc, ta, k=12, seed=0, callback=hist)
    info = ft.model_card["finetune"]
    assert info["selection"] == "cv" and info["folds"] == 3 and info["kept_base_model"] is False
    assert np.isnan(info["kendall_tau_cv_ensemble"]["base"])
    assert sum(1 for e in hist.events if e[0] == "finetune cv" and e[1] > 0) == 3
    pre, post = info["kendall_tau_cv_pretrained"], info["kendall_tau_cv_finetuned"]
    assert set(pre) == set(post) == set(learned_members(ft))
    for m in learned_members(ft):  # the rule: fine-tuned only where it beat pre-trained out of fold
        assert (m in info["kept_pretrained"]) == (not post[m] > pre[m])
    state0, state1 = base.state_dict(), ft.state_dict()
    for m in learned_members(ft):
        prefix = ("heads." if m in HEAD_MEMBERS else "kgnn." if m == "kgnn" else "pairwise.") + (
            "" if m == "kgnn" else m + ".")
        keys = [k for k in state0 if k.startswith(prefix)]
        same = all(torch.equal(state0[k], state1[k]) for k in keys)
        assert keys and same == (m in info["kept_pretrained"])
    # weights: softmax of out-of-fold tau over the fine-tune members plus the in-domain member
    assert set(ft.weights) == {*ft.finetune_members, "cl_fcm"}
    assert set(info["kendall_tau_cv"]) == set(ft.weights)
    np.testing.assert_allclose(sum(ft.weights.values()), 1.0)
    assert ft.config.ensemble.in_domain_members == ()
    # the folds: seeded, disjoint, covering, at least 2 rows each; too few samples -> none
    folds = cv_folds(12, 5, seed=3)
    assert len(folds) == 5 and all(f.size >= 2 for f in folds)
    np.testing.assert_array_equal(np.sort(np.concatenate(folds)), np.arange(12))
    assert [f.tolist() for f in folds] == [f.tolist() for f in cv_folds(12, 5, seed=3)]
    assert cv_folds(3, 5, seed=0) == []


def test_finetune_cv_keeps_the_base_model_when_it_ranks_the_folds_better(fitted, target, monkeypatch):
    from engine.train import finetune as ftmod
    from engine.train.finetune import learned_members

    tc, ta = target
    base = _cv_base(fitted)
    labels = np.asarray(ta, dtype=float)
    seen = {}

    def perfect(b, packed, folds):  # a base score that orders every fold exactly like its labels
        seen["n"] = len(packed)
        return np.asarray(seen.setdefault("y", labels[:len(packed)]), dtype=float)

    monkeypatch.setattr(ftmod, "_fold_base_scores", perfect)
    ft = base.finetune(tc, ta, k=12, seed=0)
    info = ft.model_card["finetune"]
    assert seen["n"] == 12 and info["kept_base_model"] is True
    assert info["kendall_tau_cv_ensemble"]["base"] == pytest.approx(1.0)
    assert info["kept_pretrained"] == list(learned_members(ft))
    state0, state1 = base.state_dict(), ft.state_dict()
    assert all(torch.equal(state0[k], state1[k]) for k in state0)
    assert ft.weights == base.weights and ft.config.ensemble.in_domain_members == ("cl_fcm",)
    assert info["weights"] == base.weights
    np.testing.assert_allclose(ft.predict(tc)["score"], base.predict(tc)["score"])


def test_finetune_auto_selection_follows_the_training_domain(fitted, data, monkeypatch):

    cgs, acc = data
    assert fitted.config.finetune.selection == "auto"
    inside = fitted.novelty(cgs) <= 1.0
    assert inside.mean() > 0.5  # the training CGs themselves
    ft = fitted.finetune(cgs, acc, k=12, seed=0)
    info = ft.model_card["finetune"]
    assert info["selection"] == "cv" and info["selection_reason"].startswith("auto: ")
    assert f"{int(inside[np.sort(np.random.default_rng(0).permutation(24)[:12])].sum())} of 12" in info["selection_reason"]
    # every sample outside the domain -> the paper's weights, no cross-validation
    monkeypatch.setattr(type(fitted), "novelty_from_embeddings", lambda self, h: np.full(len(h), 5.0))
    info = fitted.finetune(cgs, acc, k=12, seed=0).model_card["finetune"]
    assert info["selection"] == "paper" and "0 of 12" in info["selection_reason"] and "folds" not in info
    no_domain = fitted.copy()
    no_domain.domain = None
    info = no_domain.finetune(cgs, acc, k=6, seed=0).model_card["finetune"]
    assert info["selection"] == "paper" and "no domain reference" in info["selection_reason"]
    # samples of a family the checkpoint was not trained on are outside, whatever the novelty says
    monkeypatch.setattr(type(fitted), "novelty_from_embeddings", lambda self, h: np.zeros(len(h)))
    tagged = [dataclasses.replace(c, meta={"family": "nb301"}) for c in cgs]
    info = fitted.finetune(tagged, acc, k=12, seed=0).model_card["finetune"]
    assert info["selection"] == "paper" and info["selection_reason"] == (
        "auto: the samples' family (nb301) is not one the checkpoint was trained on (syn), so the paper's weights")
    own = [dataclasses.replace(c, meta={"family": "syn"}) for c in cgs]
    assert fitted.finetune(own, acc, k=12, seed=0).model_card["finetune"]["selection"] == "cv"
    # a CGStore (a dataset's CGs, as the CLI passes them) is read the same way
    from engine.data.cgstore import CGStore

    info = fitted.finetune(CGStore.from_cgs(tagged), acc, k=12, seed=0).model_card["finetune"]
    assert info["selection"] == "paper" and "(nb301)" in info["selection_reason"]
    # a PackedGraphs carries no meta: the families are given (as the evaluation harness does)
    from engine.model.packing import pack

    info = fitted.finetune(pack(cgs), acc, k=12, seed=0, families=["nb301"] * len(cgs)).model_card["finetune"]
    assert info["selection"] == "paper" and "(nb301) is not one the checkpoint was trained on" in info["selection_reason"]
    with pytest.raises(ValueError, match="finetune: 3 families for 24 CGs"):
        fitted.finetune(cgs, acc, k=12, families=["syn"] * 3)


def test_finetune_cv_keeps_the_base_model_when_nothing_can_be_measured(fitted, target):
    """Too few samples to cross-validate, or labels that rank nothing: the base model, unchanged.
    (With 2-3 NB-201 samples the paper's weights, the old fallback, took the shipped model's
    SRCC from 0.94 to 0.70-0.87.)"""
    from engine import studio

    tc, ta = target
    base = fitted.copy()
    base.config = base.config.override({"finetune.selection": "cv"})
    for labels, k in ((ta, 3), (np.full(len(ta), 85.0), 12)):
        ft = base.finetune(tc, labels, k=k, seed=0)
        info = ft.model_card["finetune"]
        assert info["selection"] == "cv" and info["kept_base_model"] is True
        assert ft.weights == base.weights and ft.config.ensemble.in_domain_members == base.config.ensemble.in_domain_members
        state0, state1 = base.state_dict(), ft.state_dict()
        assert all(torch.equal(state0[k], state1[k]) for k in state0)
        message = studio.kept_base_message(info)
        assert message.startswith("The base model was kept unchanged: " + (
            "3 samples are too few to cross-validate (at least 4 are needed), so no gain from fine-tuning could be "
            "measured (choose the paper's weights to fine-tune on them anyway)." if k == 3 else
            "no ranking could be measured on held-out folds of the fine-tuning samples (Kendall τ undefined, e.g. "
            "equal labels)."))
    assert "at least 4 samples" in base.finetune(tc, ta, k=3, seed=0).model_card["finetune"]["selection_note"]
    base.config = base.config.override({"finetune.selection": "bogus"})
    with pytest.raises(ValueError, match="finetune.selection"):
        base.finetune(tc, ta, k=4)


def test_save_load_round_trip(fitted, data, tmp_path):
    cgs, _ = data
    fitted.save(tmp_path / "ckpt")
    files = sorted(p.name for p in (tmp_path / "ckpt").iterdir())
    assert files == ["config.json", "domain.safetensors", "model_card.json", "state.json", "weights.safetensors"]
    loaded = GennapePredictor.load(tmp_path / "ckpt")
    a, b = fitted.predict(cgs), loaded.predict(cgs)
    assert list(a.columns) == list(b.columns)
    np.testing.assert_allclose(a.to_numpy(dtype=float), b.to_numpy(dtype=float), rtol=1e-6, atol=1e-6)
    assert loaded.config == fitted.config
    assert loaded.model_card["source_families"] == ["syn"]


def test_finetuned_copy_saves_and_loads_when_its_members_differ_from_the_zero_shot_ones(fitted, target, data,
                                                                                        tmp_path):
    """As in the shipped checkpoint: zero-shot ``members`` are a subset, fine-tuning weights the
    ``finetune_members`` (a copy fine-tuned with the paper's weights failed to load again)."""
    tc, ta = target
    cgs, _ = data
    base = fitted.copy()
    base.config = base.config.override({"ensemble.members": ["flops_baseline"], "ensemble.finetune_members": list(MEMBERS)})
    ft = base.finetune(tc, ta, k=6, seed=0, selection="paper")
    assert set(ft.weights) - set(ft.members)  # weights name members beyond the zero-shot ones
    ft.save(tmp_path / "ft")
    loaded = GennapePredictor.load(tmp_path / "ft")
    assert loaded.weights == pytest.approx(ft.weights)
    np.testing.assert_allclose(loaded.predict(cgs)["score"], ft.predict(cgs)["score"], rtol=1e-6, atol=1e-6)


def test_load_errors(tmp_path, fitted):
    with pytest.raises(FileNotFoundError):
        GennapePredictor.load(tmp_path / "missing")
    fitted.save(tmp_path / "c")
    (tmp_path / "c" / "weights.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ValueError, match="safetensors"):
        GennapePredictor.load(tmp_path / "c")
    fitted.save(tmp_path / "d")
    state = json.loads((tmp_path / "d" / "state.json").read_text())
    state["feature_version"] = 999
    (tmp_path / "d" / "state.json").write_text(json.dumps(state))
    with pytest.raises(ValueError, match="feature version"):
        GennapePredictor.load(tmp_path / "d")


def _set(path, value):
    return lambda obj: set_in(obj, path, value)


_DELETE = DELETE


@pytest.mark.parametrize("file, edit, message", [
    ("state.json", _set(["n_clusters"], [3]), "state.json: field 'n_clusters' must be an int"),
    ("state.json", _set(["n_clusters"], 7), "weights.safetensors: the weights do not match"),
    ("state.json", _set(["transforms"], None), "state.json: bad 'transforms' entry \\(expected an object"),
    ("state.json", _set(["transforms", "identity"], _DELETE), "field 'transforms' lacks \\['identity'\\]"),
    ("state.json", _set(["pair_calibration"], 1.5), "bad 'pair_calibration' entry"),
    ("state.json", _set(["pair_calibration", "pairwise"], [None, 0.0]), "bad 'pair_calibration' entry"),
    ("state.json", _set(["weights"], {"graph_stats": 0.0}), "field 'weights' must be non-negative"),
    ("state.json", _set(["weights", "graph_stats"], "x"), "bad 'weights' entry \\(expected a finite number"),
    ("state.json", _set(["fcm"], _DELETE), "bad 'fcm' entry \\(missing field 'fcm'\\)"),
    ("state.json", _set(["fcm", "cluster_centers"], [[0.0, 1.0]]), "bad 'fcm' entry|field 'fcm' has centroids"),
    ("config.json", lambda c: c["encoder"].__setitem__("hidden", c["encoder"]["hidden"] + 8),
     "weights.safetensors: the weights do not match"),
])
def test_load_names_the_file_and_field_of_a_corrupted_checkpoint(tmp_path, fitted, file, edit, message):
    """A hand-edited or corrupted checkpoint folder (``--checkpoint DIR``) gives a ValueError naming
    the file and the entry, never a bare TypeError / KeyError / RuntimeError from deep inside."""
    fitted.save(tmp_path / "c")
    path = tmp_path / "c" / file
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=message):
        GennapePredictor.load(tmp_path / "c")


def test_determinism_by_seed(data):
    cgs, acc = data
    cfg = GennapeConfig.tiny().override({"kgnn.epochs": 1, "heads.epochs": 5, "pairwise.epochs": 2})
    p1 = GennapePredictor(cfg).fit(cgs, acc)
    p2 = GennapePredictor(cfg).fit(cgs, acc)
    s1, s2 = _params(p1), _params(p2)
    assert s1.keys() == s2.keys()
    assert all(torch.equal(s1[k], s2[k]) for k in s1)
    np.testing.assert_array_equal(p1.fcm.cluster_centers_, p2.fcm.cluster_centers_)
    p3 = GennapePredictor(cfg.override({"train.seed": 1})).fit(cgs, acc)
    assert not torch.equal(p3.state_dict()["cl.encoder.embed.lin.weight"], s1["cl.encoder.embed.lin.weight"])


def test_fit_input_errors(data):
    cgs, acc = data
    with pytest.raises(ValueError, match="labels for"):
        GennapePredictor(GennapeConfig.tiny()).fit(cgs, acc[:-1])
    bad = acc.copy()
    bad[3] = 250.0
    with pytest.raises(ValueError, match="row 3"):
        GennapePredictor(GennapeConfig.tiny()).fit(cgs, bad)
    with pytest.raises(RuntimeError, match="not fitted"):
        GennapePredictor().predict(cgs)


@pytest.mark.parametrize("labels, message", [
    (None, "no labels given \\(expected 5"),
    ([80.0, 81.0, "x", 83.0, 84.0], "label 'x' at row 2 is not a number"),
    ([80.0, 81.0, 82.0, float("inf"), 84.0], "label inf at row 3 is not finite"),
    ([[80.0, 81.0]] * 5, "labels have shape \\(5, 2\\)"),
    ([80.0, 81.0, 82.0, 83.0, object()], "at row 4 is not a number"),
])
def test_label_errors_name_the_row(fitted, data, labels, message):
    """Labels given through the API (fine-tuning, fitting, evaluation) are checked like uploads:
    the error names the row and what was expected."""
    cgs, _ = data
    with pytest.raises(ValueError, match=message):
        fitted.evaluate(cgs[:5], labels)


def test_fraction_labels_warn_and_column_vectors_are_accepted(fitted, data):
    cgs, acc = data
    with pytest.warns(UserWarning, match="every label lies in 0..1"):
        fitted.evaluate(cgs[:5], [0.81, 0.82, 0.8, 0.9, 0.85])
    col = np.asarray(acc[:5], dtype=float).reshape(-1, 1)
    assert fitted.evaluate(cgs[:5], col)["score"] == fitted.evaluate(cgs[:5], col.ravel())["score"]


def test_config_round_trip_and_override_errors():
    cfg = GennapeConfig().override({"encoder.hidden": 32, "ensemble.members": ["cl_t", "kgnn"]})
    assert GennapeConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert cfg.ensemble.members == ("cl_t", "kgnn")
    with pytest.raises(ValueError, match="unknown field"):
        cfg.override({"encoder.width": 3})
    with pytest.raises(ValueError, match="expected an integer"):
        cfg.override({"encoder.hidden": "big"})
    with pytest.raises(ValueError, match="unknown section"):
        GennapeConfig.from_dict({"nope": {}})
    # values out of range fail when the config is read, before any data is loaded
    for update, needle in [({"fcm.n_clusters": 0}, r"config\.fcm\.n_clusters: expected a number >= 1, got 0"),
                           ({"encoder.hidden": -5}, "encoder.hidden"), ({"fcm.m": 1}, r"> 1, got 1"),
                           ({"train.val_fraction": 1.0}, r">= 0 and < 1"), ({"contrastive.tau": 0.0}, "> 0"),
                           ({"finetune.k": 1}, ">= 2")]:
        with pytest.raises(ValueError, match=needle):
            cfg.override(update)
    for preset in ("default", "small", "tiny"):
        assert GennapeConfig.from_dict(GennapeConfig.preset(preset).to_dict()) == GennapeConfig.preset(preset)


def test_load_default_missing_checkpoint_message(monkeypatch, tmp_path):
    import engine.paths
    from engine.model import load_default

    monkeypatch.setattr(engine.paths, "assets_dir", lambda: tmp_path)
    with pytest.raises(FileNotFoundError, match="no shipped GENNAPE checkpoint"):
        load_default()


def test_load_default_loads_shipped_folder(monkeypatch, tmp_path, fitted, data):
    import engine.paths
    from engine.model import load_default

    fitted.save(tmp_path / "checkpoint")
    monkeypatch.setattr(engine.paths, "assets_dir", lambda: tmp_path)
    cgs, _ = data
    np.testing.assert_allclose(load_default().predict(cgs[:3])["score"], fitted.predict(cgs[:3])["score"])


def test_raw_accuracy_pairwise_and_no_kgnn(data):
    cgs, acc = data
    cfg = GennapeConfig.tiny().override({"pairwise.target": "acc", "kgnn.enabled": False,
                                         "ensemble.members": ["cl_t", "pairwise", "flops_baseline"],
                                         "ensemble.standardize": "zscore"})
    pred = GennapePredictor(cfg).fit(cgs, acc)
    assert pred.kgnn is None and pred.members == ("cl_t", "pairwise", "flops_baseline")
    df = pred.predict(cgs)
    assert df["kgnn"].isna().all() and np.isfinite(df["score"]).all()
    a, b = pred.pair_calibration["pairwise"]
    from engine.model.packing import pack

    with torch.no_grad():
        g = pred.pairwise["pairwise"](pred.cl.encoder(pack(cgs))).double().numpy()
    np.testing.assert_allclose(df["pairwise"], a * g + b, rtol=1e-5)
    ft = pred.finetune(cgs[:6], acc[:6], k=6)
    assert set(ft.weights) == {"cl_t", "pairwise", "flops_baseline"}


def test_presets():
    assert GennapeConfig.preset("default") == GennapeConfig()
    assert GennapeConfig.preset("small").contrastive.epochs == 10
    assert GennapeConfig.preset("tiny").encoder.hidden == 16
    with pytest.raises(ValueError, match="preset"):
        GennapeConfig.preset("huge")


def test_fit_with_groups_pairs_within_groups(data):
    cgs, acc = data
    cfg = GennapeConfig.tiny().override({"kgnn.enabled": False, "pairwise.within_groups": True})
    groups = np.array(["a", "b"] * (len(cgs) // 2) + ["a"] * (len(cgs) % 2), dtype=object)
    pred = GennapePredictor(cfg).fit(cgs, acc, groups=groups)
    assert np.isfinite(pred.predict(cgs)["pairwise"].to_numpy()).all()
    with pytest.raises(ValueError, match="groups has shape"):
        GennapePredictor(cfg).fit(cgs, acc, groups=groups[:-1])


def test_group_labels_standardise_head_targets_per_group(data):
    cgs, acc = data
    acc = np.asarray(acc, dtype=float).copy()
    groups = np.array(["a", "b"] * (len(cgs) // 2), dtype=object)
    acc[groups == "b"] -= 5.0  # group b is 5 points worse: with group labels the heads never see that offset
    cfg = GennapeConfig.tiny().override({"kgnn.enabled": False, "train.group_labels": True,
                                         "train.val_fraction": 0.0, "heads.epochs": 300, "heads.lr": 1e-2})
    pred = GennapePredictor(cfg).fit(cgs, acc, groups=groups)
    df = pred.predict(cgs)
    assert np.isfinite(df["cl"].to_numpy()).all()
    # head outputs (Z units) are centred per group, so mean predictions of the groups are close
    gap = df["cl"][groups == "a"].mean() - df["cl"][groups == "b"].mean()
    plain = GennapePredictor(cfg.override({"train.group_labels": False})).fit(cgs, acc, groups=groups).predict(cgs)
    gap_plain = plain["cl"][groups == "a"].mean() - plain["cl"][groups == "b"].mean()
    assert abs(gap) < abs(gap_plain)


def test_studio_finetune_with_cv_selection_reports_member_versions(fitted, target):
    from engine import studio

    tc, ta = target
    out = studio.finetune_and_evaluate(fitted, tc[:8], ta[:8], tc[8:], ta[8:], epochs=3, seed=1, selection="cv")
    assert fitted.config.finetune.selection == "auto"  # the shared model keeps its own setting
    assert out.model.model_card["finetune"]["selection"] == "cv" and out.settings["selection"] == "cv"
    table = studio.finetune_member_table(out.model)
    assert set(table["member"]) == set(out.model.weights)
    np.testing.assert_allclose(table["weight"].sum(), 1.0)
    assert list(table["weight"]) == sorted(table["weight"], reverse=True)
    kept = set(out.model.model_card["finetune"]["kept_pretrained"])
    for _, r in table.iterrows():
        if r["member"] in ("flops_baseline", "params_baseline", "graph_stats"):
            assert r["version"] == "no weights to tune"
        else:
            assert r["version"] == ("pre-trained" if r["member"] in kept else "fine-tuned")
            if r["version"] == "fine-tuned":  # only where it beat the pre-trained member out of fold
                assert r["out-of-fold τ, fine-tuned"] > r["out-of-fold τ, pre-trained"]
    paper = studio.finetune_and_evaluate(fitted, tc[:8], ta[:8], tc[8:], ta[8:], epochs=3, seed=1, selection="paper")
    t2 = studio.finetune_member_table(paper.model)
    assert "τ on the fine-tuning samples" in t2.columns and "out-of-fold τ, pre-trained" not in t2.columns
    assert studio.finetune_member_table(fitted).empty


def test_studio_finetune_scores_before_and_after_on_a_reference_population(fitted, target, data):
    """With a reference (the app passes the workspace's), "before" is the score the other pages
    show for those architectures, and "after" is the copy's score on the same reference."""
    from engine import studio

    tc, ta = target
    ref_cgs = data[0]
    out = studio.finetune_and_evaluate(fitted, tc[:8], ta[:8], tc[8:], ta[8:], epochs=3, seed=1, selection="paper",
                                       reference=lambda model: model.reference(ref_cgs))
    np.testing.assert_allclose(out.before, fitted.predict(tc[8:], reference=fitted.reference(ref_cgs))["score"])
    np.testing.assert_allclose(out.after, out.model.predict(tc[8:], reference=out.model.reference(ref_cgs))["score"])
    alone = studio.finetune_and_evaluate(fitted, tc[:8], ta[:8], tc[8:], ta[8:], epochs=3, seed=1, selection="paper")
    np.testing.assert_allclose(alone.before, fitted.predict(tc[8:])["score"])
    assert not np.allclose(out.before, alone.before)  # the population changes the scale


def test_predict_with_embeddings_matches_predict_and_embed(fitted, data):
    cgs, _ = data
    df, h = fitted.predict_with_embeddings(cgs)
    assert h.dtype == np.float32 and h.shape == (len(cgs), fitted.embed_dim)
    np.testing.assert_allclose(h, fitted.embed(cgs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(df.to_numpy(dtype=float), fitted.predict(cgs).to_numpy(dtype=float), rtol=1e-6)


def test_model_key_tells_apart_copies_that_combine_the_same_networks_differently(fitted):
    """The app caches each model's score reference by this key: a fine-tuned copy that kept the
    base networks but weights the members differently must not reuse the base model's reference."""
    from engine import studio

    same = fitted.copy()
    assert studio.model_key(same) == studio.model_key(fitted)
    reweighted = fitted.copy()
    first = next(iter(reweighted.weights))
    reweighted.weights = {m: (1.0 if m == first else 0.0) for m in reweighted.weights}
    assert studio.model_key(reweighted) != studio.model_key(fitted)


def test_a_reference_of_one_network_is_refused_and_the_app_scores_without_it(fitted, data):
    from engine import studio
    from engine.model.ensemble import DegenerateReference

    cgs, _ = data
    for ref in ([cgs[0]], [cgs[3], cgs[3]]):
        with pytest.raises(DegenerateReference, match="at least two architectures that the model tells apart"):
            fitted.reference(ref)
        assert studio.make_reference(fitted, ref) is None
    assert studio.make_reference(fitted, cgs[:2]) is not None
