"""Clusters: FCM memberships, cluster composition, and membership entropy (unfamiliarity)."""

import numpy as np
import streamlit as st

from app.ui import charts, state, widgets
from engine import studio

st.title("Clusters")
ws = widgets.workspace_or_stop(need_scores=True)
cols = ws.membership_columns
if len(cols) < 2:
    st.info("The model gives no Fuzzy C-Means memberships for these architectures.")
    st.stop()
f = ws.frame[np.isfinite(ws.frame["entropy"].to_numpy(dtype=float))]
st.markdown(
    f"The encoder's embeddings are softly assigned to **{len(cols)} Fuzzy C-Means clusters** learned on the training "
    "families; each cluster has its own predictor head. **Membership entropy** (0–1) says how clearly an "
    "architecture belongs to one cluster: high entropy means it looks unlike the training data, so treat its "
    "score with more caution.")
c = st.columns(4)
c[0].metric("clusters", len(cols))
c[1].metric("mean entropy", f"{f['entropy'].mean():.2f}")
c[2].metric("unfamiliar (entropy > 0.8)", f"{(f['entropy'] > 0.8).mean():.1%}")
ups = f[f["source"] == "upload"]
c[3].metric("your uploads, mean entropy", f"{ups['entropy'].mean():.2f}" if len(ups) else "—")

st.subheader("Memberships")
left, right = st.columns([3, 2], gap="large")
with left:
    rows_from = st.segmented_control("Rows", ["Sample of all", "Map selection", "Uploads"], default="Sample of all",
                                     key="clusters_rows", required=True)
    if rows_from == "Map selection":
        sub = f[f["id"].isin(set(state.get(state.MAP_SELECTION)))]
    elif rows_from == "Uploads":
        sub = ups
    else:
        sub = f
    if len(sub) == 0:
        st.caption("No architectures in this set (select points on the Embedding map, or upload some).")
    else:
        max_rows = st.slider("Rows shown", 20, 600, 200, step=20, key="clusters_max_rows")
        st.plotly_chart(charts.membership_heatmap(sub, cols, max_rows=max_rows), key="clusters_heatmap")
with right:
    arch = widgets.id_input(ws, "Architecture id", "clusters_arch_id")
    if arch:
        row = ws.row(arch)
        st.plotly_chart(charts.membership_bars(row[cols].to_numpy(dtype=float), title=arch), key="clusters_bars")
        e = row["entropy"]
        if np.isfinite(e):
            verdict = "familiar" if e < 0.5 else "in between clusters" if e < 0.8 else "unfamiliar"
            st.metric("membership entropy", f"{e:.2f}", help="0 = inside one cluster, 1 = spread evenly")
            st.caption(f"This architecture looks **{verdict}** to the model.")
    else:
        st.caption("Pick an architecture (on the map, a table, or by id) to see its memberships.")

st.subheader("Cluster composition by family")
norm = st.toggle("Show shares instead of counts", key="clusters_normalise")
st.plotly_chart(charts.cluster_composition(f, normalise=norm), key="clusters_composition")

st.subheader("Unfamiliar architectures")
st.plotly_chart(charts.entropy_by_family(f), key="clusters_entropy")
top = studio.architecture_table(studio.Workspace(f.nlargest(25, "entropy")), members=False)
ev = widgets.table(top[["id", "family", "source", "entropy", "cluster", "score", "label"]], "clusters_unfamiliar",
                   select="single-row")
picked = widgets.selected_row_ids(ev, top)
if picked and picked[0] != state.get(state.SELECTED):
    state.select(picked[0])
    st.rerun()
