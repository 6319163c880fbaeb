"""The GENNAPE Studio report: a workspace, its figures and results as one offline HTML file.

:func:`studio_report` writes the text, facts and tables from the engine's objects (workspace,
model card, provenance, ranking metrics, fine-tuning outcome, upload validation) and places the
Plotly figures the caller passes (the app builds them with the same functions it shows on
screen), so a stakeholder can read the result without the app.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from engine.report.html import Report, render_html

INTRO = (
    "GENNAPE Studio predicts how well neural-network architectures will perform **without training "
    "them**. Every architecture is turned into a computation graph (CG) of atomic operations; a graph "
    "neural network pretrained with contrastive learning embeds it; Fuzzy C-Means assigns soft cluster "
    "memberships; an ensemble of predictors turns the embedding into a **GENNAPE score**.\n\n"
    "- A higher score means the model expects higher accuracy. Scores are on the accuracy scale of the "
    "checkpoint's labels, but they are made for **ranking** architectures of one task against each other: "
    "read a score as an accuracy only for an architecture inside the training domain (section 2).\n"
    "- Where true accuracy labels exist, the report measures how well the score ranks them "
    "(SRCC, Kendall tau, NDCG@10, precision@10, regret@1; see the glossary).\n"
    "- Every label names its provenance: which dataset, which accuracy, how many epochs and seeds, "
    "and where it comes from."
)

GLOSSARY = {
    "GENNAPE score": "the ensemble's prediction; larger = expected to be more accurate; on the accuracy scale of the "
                     "checkpoint's labels, a predicted accuracy only inside the training domain and for architectures about as "
                     "accurate as the ones it learned from (section 2)",
    "family": "a space of architectures: nb101 / nb201 / nb301 = NAS-Bench-101 / -201 / -301 cells, ofa_pn / ofa_mbv3 "
              "/ ofa_resnet = once-for-all ProxylessNAS / MobileNetV3 / ResNet networks (ImageNet), hiaml, "
              "inception and two_path = the GENNAPE paper's other CIFAR-10 spaces, custom / onnx = uploaded graphs (CG / ONNX files)",
    "novelty ≤ 1 / inside": "inside the training domain: close to architectures the checkpoint was trained on",
    "SRCC": "Spearman rank correlation between score and true accuracy (1 = identical order, 0 = no relation)",
    "Kendall tau": "fraction of concordant minus discordant pairs (1 = every pair ordered correctly)",
    "pairwise KT": "the GENNAPE authors' pairwise ranking accuracy with a small tie filter",
    "NDCG@10": "quality of the top-10 ranking, weighting the truly best architectures most (1 = perfect)",
    "precision@10": "share of the 10 truly best architectures that are in the predicted top 10",
    "regret@1": "accuracy lost by picking the top-scored architecture instead of the true best (percent points)",
    "graph stats": "a ranker learned across benchmark families on four whole-graph numbers (FLOPs, params, "
                   "nodes, weighted layers), each measured relative to its spread in the ranked set; FLOPs and "
                   "params share one weight, because they move together in every training family",
    "member columns": "each ensemble member's own prediction: the learned members (cl, cl_fcm, the Eq. 5 members "
                      "cl_t and cl_fcm_t, pairwise, kgnn) in accuracy points, meaningful only in order outside "
                      "the labelled families' range (the Eq. 5 members multiply by a FLOPs factor and exceed 100 "
                      "for ImageNet-sized networks); flops_baseline, params_baseline and graph_stats are "
                      "rank scores, not accuracies",
    "beats_both": "the score ranks better than both FLOPs and params, on SRCC and on NDCG@10",
    "zoo": "31 hand-designed ImageNet networks (ResNets, VGGs, MobileNets, a ViT, ...) with published top-1 accuracy",
    "FLOPs": "2 x multiply-accumulates of convolutions, linear layers and matrix products for one input",
    "FCM cluster / membership": "Fuzzy C-Means soft assignment of the embedding to clusters of known architectures",
    "membership entropy": "0 = clearly inside one cluster, 1 = spread over all clusters",
    "novelty": "distance of the embedding to the nearest training architecture, in units of the distance within "
               "which 99% of the training architectures have a neighbour; above 1 = outside the training domain, "
               "where the learned members extrapolate",
    "t-SNE / PCA map": "2-D pictures of the embedding; nearby points are architectures the encoder finds similar",
}


def _workspace_facts(ws: Any) -> dict[str, Any]:
    f = ws.frame
    facts = {
        "architectures": len(f),
        "families": ", ".join(sorted(f["family"].unique())) if len(f) else "—",
        "with true accuracy labels": ws.num_labelled,
        "scored by the model": int(np.isfinite(f["score"].to_numpy(dtype=float)).sum()),
        "FCM clusters": ws.num_clusters,
    }
    for src in ("benchmark", "sample", "upload"):
        facts[f"rows from {src}s"] = int((f["source"] == src).sum())
    return facts


def _provenance_table(ws: Any) -> pd.DataFrame:
    f = ws.frame
    lab = f[np.isfinite(f["label"].to_numpy(dtype=float))]
    rows = []
    for (dataset, prov), grp in lab.groupby(["dataset", "provenance"], sort=True):
        p = ws.provenances.get(prov, {})
        rows.append({"dataset": dataset, "rows": len(grp), "families": ", ".join(sorted(grp["family"].unique())),
                     "label": prov, "notes": p.get("notes", "")})
    return pd.DataFrame(rows, columns=["dataset", "rows", "families", "label", "notes"])


def _top_table(ws: Any, n: int = 25, rows: Any = None) -> pd.DataFrame:
    """The ``n`` top-scored rows (of the boolean mask ``rows``, default all), with whether each
    lies inside the training domain (where its score is a predicted accuracy)."""
    f = ws.frame if rows is None else ws.frame[rows]
    top = f[np.isfinite(f["score"].to_numpy(dtype=float))].nlargest(n, "score")
    out = pd.DataFrame({"rank": np.arange(1, len(top) + 1), "id": top["id"], "family": top["family"],
                        "source": top["source"], "GENNAPE score": top["score"], "true label": top["label"],
                        "MFLOPs": top["flops"] / 1e6, "M params": top["params"] / 1e6})
    if "novelty" in top.columns and np.isfinite(top["novelty"].to_numpy(dtype=float)).any():
        nov = top["novelty"].to_numpy(dtype=float)
        out["training domain"] = np.where(np.isfinite(nov), np.where(nov <= 1, "inside", "outside"), "—")
    return out.reset_index(drop=True)


def _top_caption(table: pd.DataFrame, what: str, total: int) -> str:
    text = f"Top {what} by GENNAPE score ({total:,} in all)."
    outside = int((table.get("training domain", pd.Series(dtype=object)) == "outside").sum())
    if outside:
        text += (f" {outside} of these {len(table)} lie outside the training domain: their scores rank them but are "
                 "extrapolations, not predicted accuracies.")
    return text


def _model_facts(card: Mapping[str, Any]) -> dict[str, Any]:
    """The model card's entries a reader needs, in words (the full card follows as JSON)."""
    facts: dict[str, Any] = {}
    if card.get("model"):
        facts["model"] = card["model"]
    if card.get("source_families"):
        facts["trained on families"] = ", ".join(map(str, card["source_families"]))
    provs = [p.get("label") for p in card.get("label_provenance") or [] if isinstance(p, Mapping) and p.get("label")]
    if provs:
        facts["training labels"] = "; ".join(provs)
    if card.get("n_graphs") is not None:
        facts["training architectures"] = (f"{int(card['n_graphs']):,}"
                                           + (f" (at most {int(card['max_per_family']):,} per family)"
                                              if card.get("max_per_family") else ""))
    rng = card.get("label_range")
    if isinstance(rng, list) and len(rng) == 2:
        facts["label range of the supervised training rows"] = f"{float(rng[0]):.2f}–{float(rng[1]):.2f} %"
    if card.get("min_acc") is not None:
        facts["supervised rows kept"] = f"accuracy ≥ {card['min_acc']} % (weaker networks left out of the heads' training)"
    if card.get("n_clusters") is not None:
        facts["FCM clusters"] = card["n_clusters"]
    if card.get("training_command"):
        facts["training command"] = card["training_command"]
    return facts


def _card_json(card: Mapping[str, Any]) -> str:
    import html
    import json

    text = json.dumps(card, indent=1, default=str)
    return ("<details><summary>The full model card (JSON, as shipped with the checkpoint)</summary>"
            f"<pre style=\"white-space:pre-wrap;font-size:12px\">{html.escape(text)}</pre></details>")


def _labelled_top(sec: Any, ws: Any, rows: np.ndarray, top: pd.DataFrame, what: str) -> None:
    """When few of a task's top-scored rows carry a true label, the top-scored labelled ones too."""
    labelled = rows & np.isfinite(ws.frame["label"].to_numpy(dtype=float))
    if labelled.sum() >= 3 and top["true label"].notna().sum() < min(5, len(top)):
        sub = _top_table(ws, n=10, rows=labelled)
        sec.table(sub, f"The top-scored labelled {what} ({int(labelled.sum()):,} labelled), next to their true labels.")


_METRIC_NAMES = {"srcc": "SRCC", "kendall_tau": "Kendall tau", "pairwise_kt": "pairwise KT"}


def _metric_headers(metrics: pd.DataFrame) -> pd.DataFrame:
    """The metrics table for readers: metric names as in the glossary, provenance left to its section."""
    return metrics.drop(columns=["provenance"], errors="ignore").rename(columns=_METRIC_NAMES)


def studio_report(ws: Any, figures: Mapping[str, Any] | None = None, *, metrics: pd.DataFrame | None = None,
                  finetune: Any = None, uploads: Sequence[Any] = (), title: str = "GENNAPE Studio report",
                  model_name: str = "") -> Report:
    """Build the :class:`Report` (render it with :func:`render_html` / :func:`report_html`).

    ``figures`` keys used (all optional): ``map``, ``scores``, ``composition``, ``family_clusters``, ``entropy``,
    ``novelty``, ``pred_vs_true``, ``finetune``.  ``metrics`` is :func:`engine.studio.ranking_metrics`;
    ``finetune`` an :class:`engine.studio.FinetuneOutcome`; ``uploads`` a list of
    :class:`engine.studio.UploadOutcome`.
    """
    figs = dict(figures or {})
    rep = Report(title, subtitle=f"{len(ws):,} architectures scored by {model_name or 'the GENNAPE model'}")
    rep.section("What this is").text(INTRO).facts(_workspace_facts(ws), "What the report covers.")

    from engine.studio import label_tasks, row_tasks, score_composition, workspace_scale_note, zero_shot_evidence

    card = dict(ws.model_card)
    sec = rep.section("The model")
    how = score_composition(card)
    if how:
        sec.text("**How the score is made.** " + how)
    sec.facts(_model_facts(card) or {"model": "no model card available"},
              "The checkpoint that produced the scores (its full model card follows).")
    if card:
        sec.raw_html(_card_json(card))

    evidence = zero_shot_evidence(ws.model_card)
    if len(evidence):
        sec.table(evidence.round(4), "How far to trust the score, as measured by the checkpoint's own commands: "
                  "leave-one-family-out on the labelled CIFAR families, unseen cells of a training family (where "
                  "the score uses the learned members) and a check on hand-designed ImageNet networks. "
                  "beats_both = score above FLOPs and params on SRCC and NDCG@10.")

    sec = rep.section("Data and label provenance")
    prov = _provenance_table(ws)
    if len(prov):
        sec.text("Each labelled dataset with exactly what its label measures.")
        sec.table(prov)
    else:
        sec.text("No architecture in this workspace has a true accuracy label.")
    counts = ws.frame.groupby(["family", "source"]).size().rename("architectures").reset_index()
    sec.table(counts, "Architectures per family and source.")

    if "map" in figs or "scores" in figs:
        sec = rep.section("Embedding map")
        uploaded = int((ws.frame["source"] == "upload").sum())
        sec.text("Each point is one architecture placed by the encoder's embedding; similar architectures "
                 "sit close together." + (f" The {uploaded:,} uploaded architectures are highlighted." if uploaded
                                          else ""))
        sec.figure(figs.get("map"), "2-D map of the embeddings.")
        sec.figure(figs.get("scores"), "Distribution of GENNAPE scores per family. Families of another task than "
                   "the checkpoint's labels (the OFA families are ImageNet networks) are on the same axis, but "
                   "their scores only rank them among themselves.")

    f = ws.frame
    nov = f["novelty"].to_numpy(dtype=float) if "novelty" in f.columns else np.full(len(f), np.nan)
    if "composition" in figs or "entropy" in figs or "novelty" in figs or np.isfinite(nov).any():
        sec = rep.section("Clusters and the training domain")
        sec.text("Fuzzy C-Means clusters of the embedding. Membership entropy says how clearly an architecture "
                 "belongs to one cluster; novelty says how far it lies from the training architectures (above 1 = "
                 "outside the training domain, where the learned members extrapolate and the score rests on its "
                 "FLOPs, params and graph-statistics members).")
        sec.figure(figs.get("composition"), "Cluster composition by family (architectures per cluster).")
        sec.figure(figs.get("family_clusters"), "Where each family's architectures fall: the share of the family in "
                   "each cluster, so small families read as clearly as large ones.")
        sec.figure(figs.get("novelty"), "Novelty per family; the dashed line is the edge of the training domain.")
        sec.figure(figs.get("entropy"), "Membership entropy per family.")
        if np.isfinite(nov).any():
            share = (f.assign(outside=nov > 1).groupby("family")["outside"].agg(["sum", "size"]).reset_index())
            share = pd.DataFrame({"family": share["family"], "outside": share["sum"].astype(int),
                                  "architectures": share["size"].astype(int),
                                  "share outside": [f"{a / b:.0%}" if b else "—"
                                                    for a, b in zip(share["sum"], share["size"])]})
            sec.table(share, "Architectures of each family outside the training domain (novelty > 1).")
            unf = f.nlargest(10, "novelty")[["id", "family", "source", "novelty", "entropy", "score"]]
            sec.table(unf.reset_index(drop=True), "The ten architectures farthest from the training domain.")
        elif len(f) and np.isfinite(f["entropy"].to_numpy(dtype=float)).any():
            unf = f.nlargest(10, "entropy")[["id", "family", "source", "entropy", "score"]]
            sec.table(unf.reset_index(drop=True), "The ten architectures spread most across clusters (highest "
                                                  "entropy).")

    sec = rep.section("Rankings")
    if ws.has_scores and finetune is not None:
        sec.text("Scores in this section come from the base model. The fine-tuned model's results on its held-out "
                 "architectures are in the Fine-tuning section.")
    if ws.has_scores:
        tasks = row_tasks(ws)
        if tasks.nunique() > 1:  # one table per task, the labels' task first (scores are on its scale)
            first = label_tasks(ws.model_card)
            for task in sorted(tasks.unique(), key=lambda t: (t not in first, t == "unknown", t)):
                what = "architectures of unknown task" if task == "unknown" else f"{task} architectures"
                rows = (tasks == task).to_numpy()
                top = _top_table(ws, rows=rows)
                sec.table(top, _top_caption(top, what, int(rows.sum())))
                _labelled_top(sec, ws, rows, top, what)
        else:
            top = _top_table(ws)
            sec.table(top, _top_caption(top, "architectures", len(ws)))
            _labelled_top(sec, ws, np.ones(len(ws), dtype=bool), top, "architectures")
        note = workspace_scale_note(ws, ws.model_card)
        if note:
            sec.text(note)
    else:
        sec.text("No scores: the workspace was not scored by a model.")
    if metrics is not None and len(metrics):
        sec.text("How well the score ranks the true labels, per labelled dataset and task (labels of different "
                 "datasets measure different things, so they are never mixed).")
        measured = ws.frame["dataset"].isin(set(metrics["dataset"])) if "dataset" in metrics else []
        trained = set(map(str, ws.model_card.get("source_families") or [])) & set(ws.frame.loc[measured, "family"])
        caption = ""
        if trained:
            caption = (f"Rows of {', '.join(sorted(trained))} include the architectures the checkpoint was trained "
                       "on, so their figures are optimistic; the held-out figures are in the evidence table of "
                       "section 2.")
        sec.table(_metric_headers(metrics), caption)
    sec.figure(figs.get("pred_vs_true"), "GENNAPE score against the true label.")

    if finetune is not None:
        sec = rep.section("Fine-tuning")
        sec.text(f"The model was fine-tuned on **{len(finetune.train_ids)}** labelled architectures and "
                 f"evaluated on **{len(finetune.eval_ids)}** others it did not see.")
        sec.facts(finetune.settings, "Settings.")
        if finetune.metrics_before:
            sec.table(finetune.metrics_table(), "Ranking metrics on the held-out architectures, before and after.")
            from engine.studio import finetune_advice, model_card_dict

            nov = (ws.frame.set_index("id")["novelty"].reindex(finetune.train_ids) if "novelty" in ws.frame.columns
                   else None)
            advice = finetune_advice(finetune.metrics_table(), nov,
                                     (model_card_dict(finetune.model).get("finetune") or {}).get("selection"))
            if advice:
                sec.text(advice)
        sec.figure(figs.get("finetune"), "Scores before and after fine-tuning against the true label.")
        from engine.studio import finetune_member_table, kept_base_message, model_card_dict

        info = model_card_dict(finetune.model).get("finetune") or {}
        if kept_base_message(info):
            sec.text(kept_base_message(info))
        members = finetune_member_table(finetune.model)
        if len(members):
            how = {"cv": "cross-validated selection: each member keeps the version with the better out-of-fold "
                         "Kendall τ, weights are the softmax of those τ",
                   "paper": "the paper's rule: weights are the softmax of each member's Kendall τ on the "
                            "fine-tuning samples"}.get(info.get("selection"), "")
            reason = f" ({info['selection_reason'].removeprefix('auto: ')})" if info.get("selection_reason") else ""
            sec.table(members, f"Ensemble after fine-tuning{': ' + how if how else ''}{reason}.")
        sec.table(pd.DataFrame({"fine-tuning architectures": finetune.train_ids}), max_rows=100)

    if uploads:
        sec = rep.section("Uploads and validation")
        rows = [{"file": u.filename, "architectures read": u.ok_rows, "problems": len(u.errors)} for u in uploads]
        sec.table(pd.DataFrame(rows))
        for u in uploads:
            if len(u.errors):
                sec.table(u.errors, f"Problems in {u.filename}.", max_rows=30)

    rep.section("Glossary").facts(GLOSSARY)
    return rep


def report_html(ws: Any, figures: Mapping[str, Any] | None = None, **kwargs: Any) -> str:
    """:func:`studio_report` rendered to one self-contained HTML string."""
    return render_html(studio_report(ws, figures, **kwargs))
