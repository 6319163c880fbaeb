"""End-to-end evaluation runs on the smoke config: output folder, protocol invariants,
reproducibility (two runs give identical tables), and the paper-protocol path on reference data."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from engine.evaluate import EvalConfig, load_config, run_evaluation
from engine.evaluate.protocols import METHODS, embeddings, predict_with_embeddings

ROOT = Path(__file__).resolve().parents[1]
SMOKE = ROOT / "configs" / "evaluate_smoke.json"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    cfg = load_config(SMOKE)
    a = run_evaluation(cfg, tmp_path_factory.mktemp("run_a"), config_source=SMOKE.read_text())
    b = run_evaluation(cfg, tmp_path_factory.mktemp("run_b"))
    return a, b


def test_run_folder_layout(two_runs):
    res, _ = two_runs
    f = res.folder
    assert json.loads((f / "config.json").read_text()) == json.loads(SMOKE.read_text())  # exact config kept
    resolved = json.loads((f / "config.resolved.json").read_text())
    assert resolved["gennape_config"]["encoder"]["hidden"] == 16
    version = (f / "code_version.txt").read_text()
    assert version.startswith("commit: ") and "\ndirty: " in version
    for stem in ("results", "summary", "table3_in_family", "table4_mae", "table5_srcc", "table6_ndcg10",
                 "table_kendall_tau", "table_precision10", "table_regret1", "k_sweep_srcc", "paper_comparison"):
        assert (f / "tables" / f"{stem}.csv").exists(), stem
    for stem in ("table5_srcc", "table6_ndcg10", "k_sweep_srcc"):
        md = (f / "tables" / f"{stem}.md").read_text()
        assert md.startswith("### ") and "| --- " not in md and "|---|" in md
    for stem in ("k_sweep", "transfer_srcc", "scatter_score"):
        png = (f / "plots" / f"{stem}.png").read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        html = (f / "plots" / f"{stem}.html").read_text()
        assert "Plotly.newPlot" in html and 'src="https://cdn' not in html  # plotly.js inlined: works offline
        assert len(html) > 1_000_000
    perf = pd.read_csv(f / "performance.csv")
    metrics = " ".join(perf["metric"])
    for needle in ("CG build throughput", "prediction throughput", "fine-tune time", "pretraining: fit total",
                   "peak RSS"):
        assert needle in metrics
    assert (perf["value"] > 0).all()
    report = (f / "report.md").read_text()
    for needle in ("## Protocol", "Table 3", "Table 5", "Table 6", "k sweep", "## Performance",
                   "Comparison with the paper"):
        assert needle in report


def test_protocol_invariants(two_runs):
    res, _ = two_runs
    cfg = load_config(SMOKE)
    r = res.results
    assert set(r["method"]) == set(METHODS)  # every method evaluated
    zs = r[r["setting"] == "zero-shot"]
    ft = r[r["setting"] == "fine-tune"]
    sweep = r[r["setting"] == "k-sweep"]
    assert set(zs["target"]) == {"nb201_c100", "nb201_in16"}
    n = 120
    assert (zs["n_eval"] == n).all()  # zero-shot on every labelled row
    assert (ft["n_eval"] == n - cfg.finetune.k).all()  # fine-tune metrics on the remaining rows
    assert sorted(set(ft["seed"])) == list(cfg.finetune.seeds)
    assert set(sweep["k"]) == {10}  # k = 5 comes from the fine-tune rows, k = 0 from zero-shot
    assert (sweep["n_eval"] == n - 10).all()
    # one row per (target, setting, k, seed, method): all methods share the seed's k samples
    key = ["experiment", "target", "setting", "k", "seed", "method"]
    assert not r.duplicated(key).any()
    counts = r[r["setting"] != "in-family"].groupby(["target", "setting", "k", "seed"]).size()
    assert (counts == len(METHODS)).all()
    # FLOPs / params are scores: no MAE; correlations are in [-1, 1]
    assert r.loc[r["method"].isin(["FLOPs", "params"]), "mae"].isna().all()
    assert r["srcc"].dropna().between(-1, 1).all() and r["ndcg@10"].dropna().between(0, 1).all()
    # the in-family table holds the source's held-out rows
    inf = r[r["setting"] == "in-family"]
    assert set(inf["target"]) == {"nb201"} and (inf["n_eval"] == 30).all()
    # summary std is over seeds (ddof 1) and matches the raw rows
    s = res.summary
    row = s[(s["target"] == "nb201_c100") & (s["setting"] == "fine-tune") & (s["method"] == "GENNAPE")].iloc[0]
    raw = ft[(ft["target"] == "nb201_c100") & (ft["method"] == "GENNAPE")]["srcc"]
    assert row["srcc_mean"] == pytest.approx(raw.mean()) and row["srcc_std"] == pytest.approx(raw.std(ddof=1))


def test_two_runs_give_identical_tables(two_runs):
    a, b = two_runs
    files = sorted(p.name for p in (a.folder / "tables").iterdir())
    assert files == sorted(p.name for p in (b.folder / "tables").iterdir())
    assert len(files) >= 20
    for name in files:
        assert (a.folder / "tables" / name).read_bytes() == (b.folder / "tables" / name).read_bytes(), name


def test_a_failed_rerun_keeps_the_previous_results(two_runs, monkeypatch, tmp_path):
    """The previous run's outputs used to be deleted before the run: a failure (missing data,
    Ctrl-C) left an empty folder, and the README's results come from a run folder."""
    import shutil

    import engine.evaluate.run as run_mod

    folder = tmp_path / "run"
    shutil.copytree(two_runs[0].folder, folder)
    before = sorted(p.name for p in folder.iterdir())

    def fail(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_mod, "run_experiment", fail)
    with pytest.raises(KeyboardInterrupt):
        run_evaluation(load_config(SMOKE), folder)
    assert sorted(p.name for p in folder.iterdir()) == before and (folder / "tables" / "results.csv").exists()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="cannot create it"):
        run_evaluation(load_config(SMOKE), tmp_path / "a_file")


def test_predict_with_embeddings_matches_predict():
    from engine.data import load_default
    from engine.model.config import GennapeConfig
    from engine.model.packing import as_packed
    from engine.model.predictor import GennapePredictor

    ds = load_default("cifar10", with_cgs=False).subset(np.arange(0, 15625, 400))
    packed = as_packed(ds.cgs)
    y = ds.labels
    model = GennapePredictor(GennapeConfig.tiny()).fit(packed, y)
    ft = model.finetune(packed.select(np.arange(6)), y[:6], k=6, seed=0)
    gated = model.copy()  # in-domain gating, as the shipped checkpoint: predict() gates the rows inside
    gated.config = gated.config.override({"ensemble.in_domain_members": ["cl_fcm"]})
    h = embeddings(model, packed)
    assert gated.inside_weights and gated._inside(h.double().numpy()).any()
    for m in (model, ft, gated):
        ref = m.predict(packed)
        got = predict_with_embeddings(m, packed, h)
        assert list(got.columns) == ["score", *[c for c in ref.columns if c in got.columns and c != "score"]]
        for col in got.columns:
            np.testing.assert_allclose(got[col].to_numpy(), ref[col].to_numpy(), rtol=1e-5, atol=1e-5,
                                       err_msg=col)
    assert torch.equal(embeddings(ft, packed), h)  # fine-tuning never touches the encoder


def test_only_filter_and_missing_data_message(tmp_path):
    cfg = load_config(SMOKE)
    with pytest.raises(ValueError, match="--only 'nope'"):
        run_evaluation(cfg, tmp_path, only=["nope"])
    d = copy.deepcopy(json.loads(SMOKE.read_text()))
    d["data_dir"] = str(tmp_path / "absent")
    d["datasets"]["nb101"] = {"load": "nb101_naslib"}
    d["experiments"][0]["source"] = ["nb101"]
    with pytest.raises(FileNotFoundError, match=r"absent; needed for nb101"):
        run_evaluation(EvalConfig.from_dict(d), tmp_path / "out")


def test_readme_section(two_runs, tmp_path):
    from engine.evaluate.readme import END, START, update_readme

    res, _ = two_runs
    readme = tmp_path / "README.md"
    readme.write_text("# Project\n\nintro\n")
    update_readme(res.folder, readme)
    text = readme.read_text()
    assert text.startswith("# Project") and START in text and END in text
    assert "## Results" in text and "4,096" in text
    # the data sizes are the run's own (they were fixed text: "500 labelled NB-101 ..." for any run)
    data = pd.read_csv(res.folder / "tables" / "data.csv")
    assert all(f"{int(r['labelled rows']):,} labelled {r['dataset']} rows" in text for _, r in data.iterrows())
    update_readme(res.folder, readme)  # idempotent: the block is replaced, not duplicated
    assert readme.read_text().count(START) == 1


@pytest.mark.shared_data
def test_paper_protocol_on_reference_data(shared_data, tmp_path):
    """NB-101 -> NB-301 with the tiny model, plus Table 1 from the data's proxy columns."""
    cfg = EvalConfig.from_dict({
        "name": "paper-tiny", "threads": 1, "data_dir": str(shared_data),
        "model": {"preset": "tiny"},
        "datasets": {"nb101": {"load": "nb101_naslib", "max_rows": 80, "unlabelled": 20},
                     "nb301": {"load": "nb301_naslib", "max_rows": 60}},
        "finetune": {"k": 5, "seeds": [0]},
        "experiments": [{"name": "paper", "protocol": "paper", "source": ["nb101"], "targets": ["nb301"]}],
        "table1": {"datasets": ["nb101_naslib", "nb301_naslib"]},
        "perf": {"cg_build_sample": 5}, "plots": False,
    })
    res = run_evaluation(cfg, tmp_path)
    t1 = res.tables["table1_proxies"]
    assert list(t1["dataset"]) == ["nb101_naslib", "nb301_naslib"]
    assert list(t1.columns[3:7]) == ["synflow", "jacov", "fisher", "snip"]
    assert t1[["synflow", "FLOPs"]].abs().le(1).all().all()
    notes = " ".join(e for exp in res.experiments for e in exp.notes)
    assert "20 sampled unlabelled nb101 CGs" in notes
    comp = res.tables["paper_comparison"]
    assert set(comp["paper table"]) == {"Table 1", "Table 3", "Table 4", "Table 5", "Table 6"}
    nb301 = comp[(comp["paper table"] == "Table 5") & (comp["family"] == "NB-301")]
    assert len(nb301) == 4 and (nb301["ours"] != "—").all()
    assert nb301["data"].str.contains("vs paper 10k").all()
    t1row = comp[(comp["paper table"] == "Table 1") & (comp["family"] == "NB-301") & (comp["method"] == "synflow")]
    assert t1row.iloc[0]["paper"] == "-0.210"
    assert not (tmp_path / "plots").exists()
