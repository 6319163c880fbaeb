"""The self-contained HTML report (``engine/report``)."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from test_app_engine import TinyPredictor, tiny_workspace

from engine import studio
from engine.report import Report, external_references, render_html, report_html, studio_report
from engine.report.html import format_value


def _fig(n: int = 5) -> go.Figure:
    return go.Figure(go.Scatter(x=np.arange(n), y=np.arange(n) ** 2))


def test_plotly_js_embedded_once_and_offline():
    rep = Report("T")
    rep.section("A").figure(_fig(), "first").figure(_fig(3), "second")
    rep.section("B").figure(_fig(4))
    doc = render_html(rep)
    assert rep.num_figures == 3
    assert doc.count('class="plotly-graph-div"') == 3
    assert doc.count("plotly.js v") == 1  # the library banner: inlined exactly once
    assert len(doc) > 1_000_000  # the library itself is inside the file
    assert external_references(doc) == []
    assert doc.index("plotly.js v") < doc.index("Plotly.newPlot")  # defined before the first use


def test_text_tables_and_facts_are_escaped():
    rep = Report("<Title>", subtitle="sub **bold**")
    sec = rep.section("Data <x>")
    sec.text("Para with **bold** and `code`.\n\n- one\n- two")
    sec.facts({"key <k>": 3, "list": [1, 2], "nan": float("nan")})
    sec.table(pd.DataFrame({"a": ["<script>alert(1)</script>", "ok"], "b": [1.23456789, 2e9]}), "cap", max_rows=1)
    doc = render_html(rep)
    assert "<script>alert(1)</script>" not in doc and "&lt;script&gt;" in doc
    assert "<strong>bold</strong>" in doc and "<code>code</code>" in doc and "<li>one</li>" in doc
    assert "&lt;Title&gt;" in doc and "Data &lt;x&gt;" in doc
    assert "Showing 1 of 2 rows." in doc and "1.235" in doc
    assert re.search(r"<td>nan</td><td>—</td>", doc)


def test_format_value():
    assert format_value(1234567) == "1,234,567"
    assert format_value(0.000012) == "1.2e-05"
    assert [format_value(x) for x in (39260.0, 1210.4, 999.94, 12.3456, 2.5e9)] == ["39,260", "1,210", "999.9", "12.35",
                                                                                   "2.5e+09"]
    assert format_value(float("inf")) == "—"
    assert format_value(True) == "yes"
    assert format_value({"a": 1.5}) == "a: 1.5"


def test_external_references_detects_cdn_tags():
    assert external_references('<script src="https://cdn.x/y.js"></script>')
    assert external_references("<link href='//cdn.x/y.css' rel=stylesheet>")
    assert not external_references('<a href="https://example.org">link</a>')  # a plain link loads nothing


def test_studio_report_sections_and_content():
    ws = tiny_workspace(30, with_upload=True)
    metrics = studio.ranking_metrics(ws)
    up = studio.parse_upload(b"family,spec\nnb201,broken\n", "bad.csv")
    f = ws.frame
    train = f.loc[f["label"].notna(), "id"].tolist()[:5]
    ev = f.loc[f["label"].notna(), "id"].tolist()[5:]
    lab = f.set_index("id")["label"]
    ft = studio.finetune_and_evaluate(TinyPredictor(), [studio.cg_of(ws, a) for a in train], lab[train].to_numpy(),
                                      [studio.cg_of(ws, a) for a in ev], lab[ev].to_numpy(), train_ids=train,
                                      eval_ids=ev, epochs=2)
    figs = {"map": _fig(), "pred_vs_true": _fig(), "composition": _fig(), "finetune": _fig()}
    rep = studio_report(ws, figs, metrics=metrics, finetune=ft, uploads=[up], title="My report", model_name="tiny")
    titles = [s.title for s in rep.sections]
    assert titles == ["What this is", "The model", "Data and label provenance", "Embedding map",
                      "Clusters and the training domain", "Rankings", "Fine-tuning", "Uploads and validation", "Glossary"]
    doc = render_html(rep)
    assert doc.count('class="plotly-graph-div"') == 4 and external_references(doc) == []
    assert "unit-test labels" in doc  # label provenance
    assert "tiny test predictor" in doc  # model card
    assert "bad.csv" in doc and "broken" in doc  # upload validation
    assert "srcc" in doc and "ndcg@10" in doc  # metrics table
    assert "Fine-tuning" in doc and train[0] in doc
    top = f.nlargest(1, "score")["id"].iloc[0]
    assert top in doc  # ranking table
    assert "Scores in this section come from the base model" in doc  # a fine-tune exists: say whose scores rank
    # the Fine-tune page's warning when fine-tuning ranked the held-out architectures worse is in the report too
    worse = dataclasses.replace(ft, metrics_after={**ft.metrics_after, "srcc": ft.metrics_before["srcc"] - 0.2})
    assert "lowered the held-out SRCC" in render_html(studio_report(ws, figs, metrics=metrics, finetune=worse))


def test_report_lists_architectures_outside_the_training_domain():
    ws = tiny_workspace(20)
    nov = np.linspace(0.2, 3.0, len(ws))
    doc = report_html(studio.Workspace(ws.frame.assign(novelty=nov)), {})
    far = ws.frame["id"].iloc[-1]
    assert "outside the training domain (novelty &gt; 1)" in doc or "outside the training domain (novelty > 1)" in doc
    assert "farthest from the training domain" in doc and far in doc
    assert "highest entropy" not in doc  # novelty replaces the entropy list when it is known
    doc = report_html(ws, {"composition": _fig()})
    assert "highest entropy" in doc  # no novelty (a model without a domain reference): the entropy list


def test_report_without_scores_or_labels():
    ws = tiny_workspace(10)
    bare = studio.Workspace(ws.frame.assign(score=np.nan, label=np.nan, entropy=np.nan, cluster=-1))
    doc = report_html(bare, {})
    assert "No scores" in doc and "No architecture in this workspace has a true accuracy label" in doc
    assert external_references(doc) == [] and "plotly.js v" not in doc


def test_report_carries_the_zero_shot_evidence_of_the_model_card():

    ws = tiny_workspace(10)
    card = {"model": "tiny", "zoo_check": {"metrics": {"score": {"srcc": 0.44, "ndcg10": 0.83},
                                                       "FLOPs": {"srcc": 0.55, "ndcg10": 0.88},
                                                       "params": {"srcc": 0.26, "ndcg10": 0.74}}}}
    doc = report_html(dataclasses.replace(ws, model_card=card), {})
    assert "How far to trust the score" in doc and "hand-designed ImageNet networks" in doc and "0.55" in doc
    assert "How far to trust the score" not in report_html(ws, {})  # no evidence in the card: no table


def test_report_explains_how_the_fine_tuned_ensemble_was_formed():
    import dataclasses
    from types import SimpleNamespace

    ws = tiny_workspace(30)
    f = ws.frame
    ids = f.loc[f["label"].notna(), "id"].tolist()
    lab = f.set_index("id")["label"]
    ft = studio.finetune_and_evaluate(TinyPredictor(), [studio.cg_of(ws, a) for a in ids[:5]], lab[ids[:5]].to_numpy(),
                                      [studio.cg_of(ws, a) for a in ids[5:]], lab[ids[5:]].to_numpy(),
                                      train_ids=ids[:5], eval_ids=ids[5:], epochs=2)
    info = {"selection": "cv", "selection_reason": "auto: 48 of 50 samples lie inside the checkpoint's training domain",
            "weights": {"pairwise": 0.6, "flops_baseline": 0.4}, "kept_pretrained": ["pairwise"],
            "kendall_tau_cv_pretrained": {"pairwise": 0.71}, "kendall_tau_cv_finetuned": {"pairwise": 0.52},
            "kendall_tau_cv": {"pairwise": 0.71, "flops_baseline": 0.33}, "kept_base_model": True,
            "kendall_tau_cv_ensemble": {"base": 0.751, "finetuned": 0.702}}
    ft = dataclasses.replace(ft, model=SimpleNamespace(model_card={"finetune": info}))
    doc = report_html(ws, {}, finetune=ft)
    assert "The base model was kept unchanged" in doc and "0.751" in doc and "0.702" in doc
    assert "cross-validated selection" in doc and "48 of 50 samples lie inside" in doc
    assert "pre-trained" in doc and "no weights to tune" in doc  # the member table
    plain = report_html(ws, {}, finetune=dataclasses.replace(ft, model=SimpleNamespace(model_card={})))
    assert "Ensemble after fine-tuning" not in plain and "kept unchanged" not in plain


def test_report_warns_when_the_score_is_read_on_another_tasks_scale():
    ws = tiny_workspace(12)
    card = {**ws.model_card, "label_provenance": [{"dataset": "CIFAR-10"}]}
    same = studio.Workspace(ws.frame, model_card=card)
    assert "not their accuracy on their own task" not in report_html(same, {})
    fam = np.where(np.arange(len(ws)) % 2 == 0, "nb201", "ofa_mbv3")
    mixed = studio.Workspace(ws.frame.assign(family=fam), model_card=card)
    html = report_html(mixed, {})
    assert "ofa_mbv3 are ImageNet networks: their score says where they rank" in html
    # one top table per task, the labels' task first
    n = len(mixed) // 2
    assert html.index(f"Top CIFAR-10 architectures by GENNAPE score ({n} in all)") < html.index(
        f"Top ImageNet architectures by GENNAPE score ({n} in all)")
    assert "Top architectures by GENNAPE score (" not in html
    assert f"Top architectures by GENNAPE score ({len(same):,} in all)." in report_html(same, {})


def test_report_says_how_the_score_is_made_and_flags_extrapolated_top_rows():
    ws = tiny_workspace(12)
    card = {**ws.model_card, "members_in_score": ["graph_stats", "flops_baseline", "params_baseline"],
            "source_families": ["nb201"], "label_range": [80.0, 94.7], "min_acc": 80.0,
            "in_domain_gate": {"adopted": True, "in_domain_members": ["cl_fcm", "cl"], "rule": "x" * 2000}}
    f = ws.frame
    labelled = np.arange(len(f)) < 4  # four labelled rows, scored below every other row
    novelty = np.where(np.arange(len(f)) % 3 == 0, 2.5, 0.4)
    score = np.where(labelled, f["score"], f["score"] + 100.0)
    w = studio.Workspace(f.assign(novelty=novelty, score=score, label=np.where(labelled, f["label"], np.nan)),
                         model_card=card)
    html = report_html(w, {}, metrics=studio.ranking_metrics(w))
    assert ("are scored by equal weights over its learned members cl_fcm, cl" in html
            and "All others are scored by graph_stats, flops_baseline, params_baseline" in html)
    assert "<details><summary>The full model card" in html and "x" * 2000 in html  # nothing dropped
    assert "80.00–94.70 %" in html and "accuracy ≥ 80.0 %" in html
    outside = int((novelty[np.argsort(-score)][:len(f)] > 1).sum())
    assert f"{outside} of these {len(f)} lie outside the training domain" in html
    assert "The top-scored labelled architectures" in html  # the top table had no labelled row
    assert "<th>SRCC</th>" in html and "<th>srcc</th>" not in html
    assert "uploaded architectures are highlighted" not in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", html)


def test_report_says_when_the_metrics_include_training_families():
    ws = tiny_workspace(12)
    for fams, expected in ((["custom"], True), (["nb201"], False)):
        w = studio.Workspace(ws.frame, model_card={**ws.model_card, "source_families": fams})
        html = report_html(w, {}, metrics=studio.ranking_metrics(w))
        assert ("Rows of custom include the architectures the checkpoint was trained on" in html) is expected


def test_score_composition_says_where_the_score_reads_as_an_accuracy():
    card = {"members_in_score": ["graph_stats", "flops_baseline"], "source_families": ["nb201"],
            "in_domain_gate": {"adopted": True, "in_domain_members": ["cl_fcm"]}, "min_acc": 80.0}
    text = studio.score_composition(card)
    assert "inside the checkpoint's training domain" in text and "cl_fcm" in text and "graph_stats" in text
    # the heads learned only from accurate architectures: poorly training ones are neither predicted nor ranked
    assert "accuracy ≥ 80%" in text and "neither predicts nor ranks" in text
    assert "neither predicts" not in studio.score_composition({**card, "min_acc": None})
    assert studio.score_composition({}) == ""
