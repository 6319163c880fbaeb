"""Report: one self-contained HTML file (figures, tables, model card, provenance) to share."""

import numpy as np
import streamlit as st

from app.ui import cached, charts, state
from engine import studio
from engine.report import external_references, report_html

st.title("Report")
ws = cached.workspace()
st.markdown(
    "One click builds a **single HTML file** with everything a stakeholder needs, readable without the app and "
    "without a network connection: what GENNAPE is, the model card, where every label comes from, the embedding "
    "map, clusters, the ranking with its quality metrics, your fine-tuning results and upload checks, and a "
    "glossary. Figures stay interactive (plotly.js is embedded once).")
if len(ws) == 0:
    st.info("The workspace is empty: add data on the Data page first.")
    st.stop()

c = st.columns([3, 1])
title = c[0].text_input("Title", "GENNAPE Studio report", key="report_title")
proj = c[1].segmented_control("Map", ["t-SNE", "PCA"], default="t-SNE", key="report_projection", required=True)


def build_figures() -> dict:
    f = ws.frame
    figs = {}
    if ws.has_map:
        x, y = ("tsne_x", "tsne_y") if proj == "t-SNE" and np.isfinite(f["tsne_x"].to_numpy(float)).any() \
            else ("pca_x", "pca_y")
        figs["map"] = charts.embedding_map(f, x, y, "Family", title=f"{'t-SNE' if x == 'tsne_x' else 'PCA'} map")
    if ws.has_scores:
        figs["scores"] = charts.score_distribution(f)
        if ws.num_labelled:
            figs["pred_vs_true"] = charts.pred_vs_true(f)
    if ws.num_clusters >= 2:
        figs["composition"] = charts.cluster_composition(f)
        figs["family_clusters"] = charts.family_clusters(f)
        figs["entropy"] = charts.entropy_by_family(f)
        if np.isfinite(f["novelty"].to_numpy(dtype=float)).any():
            figs["novelty"] = charts.novelty_by_family(f)
    ft = state.get(state.FINETUNE)
    if ft is not None and len(ft.eval_ids):
        figs["finetune"] = charts.finetune_scatter(ft.predictions())
    return figs


def built_from() -> tuple:
    """What the report shows: the workspace's content, the fine-tuned copy, the uploads and the options."""
    ft = state.get(state.FINETUNE)
    return (studio.frame_fingerprint(ws.frame), None if ft is None else studio.model_key(ft.model),
            len(state.get(state.UPLOADS)), title, proj)


if st.button("Build the report", type="primary", key="report_build", icon=":material/description:"):
    with st.spinner("Building the report…"):
        try:
            metrics = studio.ranking_metrics(ws) if ws.num_labelled and ws.has_scores else None
            pred, _ = cached.base_predictor()
            name = (ws.model_card or {}).get("model", "") if pred is None else \
                getattr(pred, "model_card", {}).get("model", "")
            doc = report_html(ws, build_figures(), metrics=metrics, finetune=state.get(state.FINETUNE),
                              uploads=state.get(state.UPLOADS), title=title, model_name=name)
            bad = external_references(doc)
            if bad:
                st.warning(f"The report references {len(bad)} external resource(s); it may not render offline.")
            state.put(state.REPORT, (doc.encode("utf-8"), built_from()))
        except Exception as exc:  # noqa: BLE001
            st.error(f"The report could not be built: {exc}")

built = state.get(state.REPORT)
if built:
    data, source = built
    if source == built_from():
        st.success(f"Report ready ({len(data) / 1e6:.1f} MB, self-contained).")
        label = "Download the report (HTML)"
    else:
        st.warning("The data, the fine-tuned model or the options changed since this report was built: build it "
                   "again to include the changes. The earlier report is still offered below.")
        label = "Download the earlier report (HTML)"
    st.download_button(label, data, "gennape_report.html", "text/html", key="report_download",
                       icon=":material/download:", type="primary")
