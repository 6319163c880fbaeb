"""Clusters: FCM memberships, cluster composition, membership entropy and novelty (distance from the
training domain)."""

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
has_novelty = bool(np.isfinite(f["novelty"].to_numpy(dtype=float)).any())
st.markdown(
    f"The encoder's embeddings are softly assigned to **{len(cols)} Fuzzy C-Means clusters** learned on the training "
    "families; each cluster has its own predictor head. **Membership entropy** (0–1) says how clearly an "
    "architecture belongs to one cluster. **Novelty** says how far it lies from the training architectures: its "
    "distance to the nearest one, in units of the distance within which 99% of the training architectures "
    "have a neighbour. Above 1 the architecture is outside the training domain: the learned members extrapolate there, "
    "so lean on the FLOPs, params and graph-statistics members and on the evidence table on Home.")
ups = f[f["source"] == "upload"]
c = st.columns(4)
c[0].metric("clusters", len(cols))
c[1].metric("mean entropy", f"{f['entropy'].mean():.2f}")
if has_novelty:
    nov = f["novelty"].to_numpy(dtype=float)
    c[2].metric("outside the training domain", f"{np.mean(nov > 1):.1%}", help="share with novelty > 1")
    un = ups["novelty"].to_numpy(dtype=float)
    c[3].metric("your uploads outside", f"{np.mean(un > 1):.0%}" if len(ups) else "—")
else:
    c[2].metric("spread out (entropy > 0.8)", f"{(f['entropy'] > 0.8).mean():.1%}")
    c[3].metric("your uploads, mean entropy", f"{ups['entropy'].mean():.2f}" if len(ups) else "—")
    st.caption("This model has no training-domain reference, so novelty is unknown "
               "(`python -m engine calibrate-domain --checkpoint DIR` adds one).")

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
        e, nv = row["entropy"], row["novelty"]
        m = st.columns(2)
        if np.isfinite(e):
            m[0].metric("membership entropy", f"{e:.2f}", help="0 = inside one cluster, 1 = spread evenly")
        if np.isfinite(nv):
            m[1].metric("novelty", f"{nv:.2f}", help="> 1 = outside the training domain")
            st.caption(studio.novelty_verdict(nv))
    else:
        st.caption("Pick an architecture (on the map, a table, or by id) to see its memberships.")

st.subheader("Cluster composition by family")
norm = st.toggle("Show shares instead of counts", key="clusters_normalise")
st.plotly_chart(charts.cluster_composition(f, normalise=norm), key="clusters_composition")
st.caption("Where each family's architectures fall (share of the family in each cluster):")
st.plotly_chart(charts.family_clusters(f), key="clusters_by_family")

st.subheader("Unfamiliar architectures")
key = "novelty" if has_novelty else "entropy"
if has_novelty:
    st.plotly_chart(charts.novelty_by_family(f), key="clusters_novelty")
    with st.expander("Membership entropy by family"):
        st.plotly_chart(charts.entropy_by_family(f), key="clusters_entropy")
else:
    st.plotly_chart(charts.entropy_by_family(f), key="clusters_entropy")
top = studio.architecture_table(studio.Workspace(f.nlargest(25, key)), members=False)
ev = widgets.table(top[["id", "family", "source", "novelty", "entropy", "cluster", "score", "label"]],
                   "clusters_unfamiliar", select="single-row")
picked = widgets.selected_row_ids(ev, top)
if picked and picked[0] != state.get(state.SELECTED):
    state.select(picked[0])
    st.rerun()
