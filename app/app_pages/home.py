"""Home: what GENNAPE Studio does, the loaded model and data, and a quick start."""

import numpy as np
import pandas as pd
import streamlit as st

from app.ui import cached
from engine import studio
from engine.report import GLOSSARY

st.title("GENNAPE Studio")
st.markdown(
    "Predict how accurate a neural network will be **without training it** — for architectures from any "
    "family, including families the predictor has never seen. Every network becomes a **computation graph** "
    "(CG) of atomic operations; a graph neural network pretrained with **contrastive learning** embeds it; "
    "**Fuzzy C-Means** assigns soft cluster memberships; an **ensemble** of predictors gives the **GENNAPE "
    "score** (higher = expected to be more accurate; how the loaded model makes it is under *The model* "
    "below). After fine-tuning, the learned heads join everywhere, weighted by how well each ranks your "
    "labelled samples. Based on *GENNAPE: Towards Generalized Neural Architecture Performance Estimators* "
    "(AAAI-23)."
)

ws = cached.workspace()
note = cached.workspace_note()
if note:
    st.info(note)
stale = cached.stale_scores_note(ws, cached.base_predictor()[0])
if stale:
    st.warning(stale)

left, right = st.columns(2, gap="large")
with left:
    st.subheader("The model")
    pred, why = cached.base_predictor()
    card = dict(getattr(pred, "model_card", None) or ws.model_card or {})
    if pred is None:
        st.warning(f"No GENNAPE model is loaded: {why}. Architectures can still be loaded, inspected and "
                   "compared; scores, clusters and fine-tuning need the checkpoint.")
    how = studio.score_composition(card)
    if how:
        st.markdown("**How the score is made.** " + how)
    if card:
        scalars = {k: v for k, v in card.items() if isinstance(v, str | int | float | bool) and v is not None}
        for key in ("members_in_score", "source_families", "label_range"):
            if isinstance(card.get(key), list):
                scalars[key] = ", ".join(str(v) for v in card[key])
        st.dataframe(pd.DataFrame({"field": list(scalars), "value": [str(v) for v in scalars.values()]}),
                     hide_index=True, key="home_model_card",
                     column_config={"value": st.column_config.TextColumn(width="large")})
        evidence = studio.zero_shot_evidence(card)
        if len(evidence):
            st.markdown("**How far to trust the score**, on families it never saw and on unseen architectures of a "
                        "training family (measured by the checkpoint's "
                        "own commands; `beats_both` = above FLOPs and params on SRCC and NDCG@10)")
            # the verdict next to the target (it scrolled out of view at the end of nine columns)
            order = ["check", "target", "beats_both", *[c for c in evidence.columns
                                                        if c not in ("check", "target", "beats_both")]]
            st.dataframe(evidence[order], hide_index=True, key="home_zero_shot",
                         column_config={c: st.column_config.NumberColumn(format="%.4f")
                                        for c in evidence.columns if "SRCC" in c or "NDCG" in c})
            if not evidence["beats_both"].all():
                st.caption("Where `beats_both` is false, rank by FLOPs as well, or fine-tune on a few labelled "
                           "architectures of your family (Fine-tune page).")
        with st.expander("Full model card"):
            st.json(card, expanded=False)
    elif pred is not None:
        st.caption("The checkpoint has no model card.")

with right:
    st.subheader("The data")
    f = ws.frame
    c = st.columns(3)
    c[0].metric("architectures", f"{len(f):,}")
    c[1].metric("with true labels", f"{ws.num_labelled:,}")
    c[2].metric("families", f"{f['family'].nunique() if len(f) else 0}")
    if len(f):
        # task first: scores of networks built for another task than the labels' are ranks on the labels' scale
        counts = f.assign(task=studio.row_tasks(ws)).groupby(["task", "family", "source"]).size().unstack(fill_value=0)
        st.dataframe(counts, key="home_counts",
                     column_config={c: st.column_config.NumberColumn(format="localized") for c in counts.columns})
        labelled = f[np.isfinite(f["label"].to_numpy(dtype=float))]
        for prov in labelled["provenance"].unique():
            st.caption(f"Labels: {prov}")
        nov = f["novelty"].to_numpy(dtype=float)
        if np.isfinite(nov).any():
            outside = f.loc[nov > 1, "family"].value_counts()
            st.caption(f"**{int((nov > 1).sum()):,} of {int(np.isfinite(nov).sum()):,}** architectures lie outside "
                       "the model's training domain (novelty > 1"
                       + (": " + ", ".join(f"{k} {v}" for k, v in outside.items()) if len(outside) else "")
                       + "). The learned members extrapolate there; see the Clusters page. By construction about 1% "
                       "of the training families' own architectures are above 1 as well.")

st.subheader("Quick start")
steps = [
    ("app_pages/data.py", "Data", ":material/database:",
     "add benchmark datasets, generate samples of the nine families, upload your own networks (ONNX, CG JSON, "
     "CSV/JSONL of specs with optional labels, GENNAPE files)."),
    ("app_pages/embedding_map.py", "Embedding map", ":material/scatter_plot:",
     "see every architecture on a t-SNE / PCA map; box- or lasso-select points; find nearest neighbours."),
    ("app_pages/clusters.py", "Clusters", ":material/bubble_chart:",
     "FCM memberships, and which architectures lie outside the model's training domain (novelty)."),
    ("app_pages/architecture.py", "Architecture", ":material/account_tree:",
     "the interactive computation graph, FLOPs / params by op type, side-by-side comparison."),
    ("app_pages/rankings.py", "Rankings", ":material/leaderboard:",
     "architectures ranked by the GENNAPE score, ranking metrics against true labels, CSV download."),
    ("app_pages/finetune.py", "Fine-tune", ":material/tune:",
     "adapt the model to a family with k labelled samples; before / after metrics; download the checkpoint."),
    ("app_pages/report.py", "Report", ":material/description:", "one self-contained HTML report to share."),
    ("app_pages/search.py", "Search", ":material/travel_explore:",
     "cut FLOPs from a start architecture with a predictor-guided search; Pareto plot, CG diff, ONNX export."),
]
for path, label, icon, text in steps:
    a, b = st.columns([1, 4])
    with a:
        st.page_link(path, label=label, icon=icon)
    b.markdown(text)

with st.expander("Glossary"):
    st.dataframe(pd.DataFrame({"term": list(GLOSSARY), "meaning": list(GLOSSARY.values())}), hide_index=True,
                 key="home_glossary")
