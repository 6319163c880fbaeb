"""Rankings: architectures by GENNAPE score, ranking metrics where labels exist, CSV download."""

import numpy as np
import streamlit as st

from app.ui import cached, charts, state, widgets
from engine import studio

st.title("Rankings")
ws = widgets.workspace_or_stop(need_scores=True)

table = studio.architecture_table(ws)
ft = state.get(state.FINETUNE)
if ft is not None:
    after = dict(zip(ft.eval_ids, ft.after))
    table.insert(table.columns.get_loc("score") + 1, "fine-tuned score", table["id"].map(after))
card = getattr(cached.base_predictor()[0], "model_card", None) or ws.model_card or {}
c = st.columns([3, 3, 3, 3, 2])
tasks = sorted(table["task"].unique())
first = studio.default_task(tasks, card)
task = c[0].selectbox("Task", ["all tasks", *tasks], index=1 + tasks.index(first) if first else 0, key="rank_task",
                      help="What the networks are built for: the dataset of their labels, else their family's task, "
                           "else, for uploaded graphs, the one their input size and class count fit. The score is on "
                           "the scale of the model's labels "
                           f"({' / '.join(studio.label_tasks(card)) or 'unknown'}): rank one task at a time.")
fams = c[1].multiselect("Family", sorted(table["family"].unique()), key="rank_family")
srcs = c[2].multiselect("Source", sorted(table["source"].unique()), key="rank_source")
rank_cols = ["score"] + (["fine-tuned score"] if "fine-tuned score" in table else []) + [
    m for m in ws.member_columns if np.isfinite(table[m].to_numpy(dtype=float)).any()]
rank_by = c[3].selectbox("Rank by", rank_cols, key="rank_by",
                         help="The GENNAPE score, or one ensemble member's own score (member_*).")
only_labelled = c[4].toggle("Only labelled", key="rank_labelled")
view = table
if task != "all tasks":
    view = view[view["task"] == task]
if fams:
    view = view[view["family"].isin(fams)]
if srcs:
    view = view[view["source"].isin(srcs)]
if only_labelled:
    view = view[np.isfinite(view["label"].to_numpy(dtype=float))]
view = view.sort_values(rank_by, ascending=False, na_position="last")
if "rank" in view:  # the position in this view, by the chosen column
    view = view.assign(rank=view[rank_by].rank(ascending=False, method="min").astype("Int64"))
seen = sorted(set(card.get("source_families") or []) & set(view["family"].unique()))
gate = card.get("in_domain_gate") if isinstance(card.get("in_domain_gate"), dict) else {}
if seen and rank_by == "score" and gate.get("adopted"):
    st.info(f"The checkpoint was trained on {', '.join(seen)}. Architectures inside its training domain "
            f"(novelty ≤ 1) are scored with its learned members ({', '.join(gate.get('in_domain_members', []))}); "
            "the rest with the members chosen for families it has never seen.")
elif seen and rank_by == "score":
    st.info(f"The checkpoint was trained on {', '.join(seen)}. Its score is chosen for families it has never "
            "seen; on its own training families the learned members (e.g. `member_pairwise_fcm`, "
            "`member_cl_fcm`) rank better — pick one under *Rank by*, or fine-tune.")
note = studio.workspace_scale_note(ws, card, view.index) if rank_by != "fine-tuned score" else None
if note:
    st.warning(note + " The *Task* filter above shows one task.", icon=":material/straighten:")
hidden = f" ({len(table) - len(view):,} of other tasks or filtered out)" if len(view) < len(table) else ""
st.caption(f"{len(view):,} architectures{hidden}, best first by `{rank_by}` (`rank`: the position in this view). "
           "Each member's own score is in the `member_*` columns; the label's provenance is in the last columns. "
           "Click a row to select the architecture.")
if ft is not None:
    st.caption(f"`fine-tuned score`: your fine-tuned model's score of the {len(ft.eval_ids):,} held-out architectures "
               "it was evaluated on (on the same scale as `score`); the other rows have none, so ranking by it "
               "ranks those. `score` and the members are the base model's. To score everything with the "
               "fine-tuned model, download it on the Fine-tune page and run `python -m engine predict --checkpoint`.")
ev = widgets.table(view, "rank_table", select="single-row", height=460)
range_note = studio.member_range_note({c: view[c] for c in ws.member_columns if c in view})
if range_note:
    st.caption(range_note)
picked = widgets.selected_row_ids(ev, view)
if picked and picked[0] != state.get(state.SELECTED):
    state.select(picked[0])
c = st.columns([2, 3])
c[0].download_button("Download the ranking (CSV)", cached.csv_bytes(view), "gennape_ranking.csv",
                     "text/csv", key="rank_download")
n_ref = sum(i in ws for i in ws.meta.get("reference_ids", []))
if n_ref:
    with c[1].popover("Reproduce these scores outside the app", icon=":material/terminal:"):
        st.markdown(
            f"A score depends on the population it is standardised on. Every score here, including those of the "
            f"architectures you add, is standardised on the same fixed **reference population** of {n_ref:,} "
            "workspace architectures, so all rows share one scale. `python -m engine predict` instead standardises "
            "a file on its own rows unless it is given this population:\n\n"
            "`python -m engine predict --input FILE --reference gennape_reference.jsonl --output preds.csv`")
        st.download_button("Download the reference population (JSONL)", cached.reference_jsonl(ws),
                           "gennape_reference.jsonl", "application/jsonl", key="rank_reference_download")

st.subheader("How well does the score rank the true labels?")
has_label = np.isfinite(ws.frame["label"].to_numpy(dtype=float))
if has_label.sum() < 3:
    st.info("No true labels in this workspace: add a labelled benchmark dataset or upload labels on the Data page.")
    st.stop()
# the rows of the view (the table shares the workspace frame's index); the whole workspace when the view
# holds every labelled row (the metrics and the scatter only use those)
in_view = ws.frame.index.isin(view.index)
sub = ws if in_view[has_label].all() else studio.Workspace(ws.frame[in_view], cgs=ws.cgs, provenances=ws.provenances,
                                                             model_card=ws.model_card, meta=ws.meta)
metric_col = rank_by if rank_by in sub.frame.columns else "score"  # the fine-tuned score lives in the table only
if metric_col != rank_by:
    st.caption("Metrics below are for the base score; the fine-tuned score's metrics are on the Fine-tune page.")
metrics = cached.ranking_metrics(sub, metric_col)
if metrics.empty:
    st.info("The filtered rows have fewer than 3 labelled architectures per dataset.")
else:
    st.caption("One row per labelled dataset and task (labels of different datasets or tasks measure different "
               "things; precision@10 needs more than 10 labelled rows). "
               "SRCC / Kendall τ: rank correlation (1 = same order); NDCG@10: quality of the top 10; "
               "precision@10: share of the true top 10 found in the predicted top 10; regret@1: accuracy lost by "
               "picking the top-scored architecture.")
    # the metrics first; the (long) provenance last, where it does not push them out of view
    st.dataframe(metrics[[c for c in metrics.columns if c != "provenance"] + ["provenance"]], hide_index=True,
                 key="rank_metrics",
                 column_config={k: st.column_config.NumberColumn(format="%.3f")
                                for k in ("srcc", "kendall_tau", "pairwise_kt", "ndcg@10", "precision@10",
                                          "regret@1")})
st.plotly_chart(charts.pred_vs_true(sub.frame), key="rank_scatter", on_select="ignore")
