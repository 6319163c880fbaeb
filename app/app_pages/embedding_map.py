"""Embedding map: t-SNE / PCA of the encoder embeddings, selection, nearest neighbours."""

import numpy as np
import pandas as pd
import streamlit as st

from app.ui import charts, state, widgets
from engine import studio

st.title("Embedding map")
ws = widgets.workspace_or_stop(need_map=True)
frame = ws.frame
tsne_meta = dict(ws.meta.get("tsne") or {})
has_tsne = bool(np.isfinite(frame["tsne_x"].to_numpy(dtype=float)).any())

c = st.columns([1.2, 1.4, 2.2, 1])
proj = c[0].segmented_control("Projection", ["t-SNE", "PCA"], default="t-SNE" if has_tsne else "PCA",
                              key="map_projection", required=True)
colour = c[1].selectbox("Colour by", list(charts.COLOUR_OPTIONS), key="map_colour")
fam_filter = c[2].multiselect("Families shown (all when empty)", sorted(frame["family"].unique()),
                              key="map_families")
with c[3].popover("t-SNE settings", icon=":material/settings:"):
    perplexity = st.slider("Perplexity", 5, 100, int(tsne_meta.get("perplexity", 30)), key="map_perplexity")
    seed = st.number_input("Seed", 0, 10_000, int(tsne_meta.get("seed", 0)), key="map_seed")
    max_points = st.select_slider("Points used", [1000, 2000, 4000, 8000, 16000, 32000], value=4000,
                                  key="map_tsne_points",
                                  help="t-SNE takes about a minute per 10,000 points. Uploads are always included; "
                                       "families smaller than their share keep every point, the larger ones share "
                                       "the rest.")
    if st.button("Recompute t-SNE", key="map_tsne_go"):
        ok = np.isfinite(np.asarray(ws.embedding, dtype=float)).all(axis=1) if ws.has_embedding else None
        if ok is None or not ok.any():
            st.error("No embeddings to project.")
        else:
            idx = np.flatnonzero(ok)
            if len(idx) > max_points:  # every upload; small families whole, the large ones share the rest
                sub = frame.iloc[idx]
                idx = idx[studio.map_sample(sub["family"].to_numpy(), max_points, int(seed),
                                            keep=(sub["source"] == "upload").to_numpy())]
            with st.spinner(f"t-SNE of {len(idx):,} architectures…"):
                xy = studio.tsne_2d(ws.embedding[idx], float(perplexity), int(seed), threads=None)
            state.put(state.TSNE_OVERRIDE, {"perplexity": perplexity, "seed": int(seed),
                                            "ids": frame["id"].to_numpy()[idx].tolist(), "xy": xy})
            st.rerun()

view = frame
override = state.get(state.TSNE_OVERRIDE)
if proj == "t-SNE" and override is not None:
    pos = {a: i for i, a in enumerate(override["ids"])}
    rows = [pos.get(a, -1) for a in frame["id"]]
    xy = np.asarray(override["xy"], dtype=float)
    view = frame.copy()
    view["tsne_x"] = [xy[r, 0] if r >= 0 else np.nan for r in rows]
    view["tsne_y"] = [xy[r, 1] if r >= 0 else np.nan for r in rows]
    st.caption(f"t-SNE recomputed on {len(override['ids']):,} architectures (perplexity {override['perplexity']}, "
               f"seed {override['seed']}).")
elif proj == "t-SNE":
    st.caption(f"Precomputed t-SNE (perplexity {tsne_meta.get('perplexity', '?')}, seed {tsne_meta.get('seed', '?')});"
               " architectures added later are placed next to their nearest neighbours in embedding space.")
else:
    st.caption("PCA: the two directions of largest variance of the embeddings (exact for every architecture).")
if fam_filter:
    view = view[view["family"].isin(fam_filter)]
# colours that are not frame columns: each row's task, and its label's percentile within its label set
if charts.COLOUR_OPTIONS[colour][0] == "task":
    view = view.assign(task=studio.row_tasks(ws).loc[view.index])
elif charts.COLOUR_OPTIONS[colour][0] == "label_pct":
    view = view.assign(label_pct=pd.Series(studio.label_percentile(frame), index=frame.index).loc[view.index])
x, y = ("tsne_x", "tsne_y") if proj == "t-SNE" else ("pca_x", "pca_y")

fig = charts.embedding_map(view, x, y, colour, selected=state.get(state.SELECTED))
event = st.plotly_chart(fig, key="map_chart", on_select="rerun", selection_mode=("points", "box", "lasso"),
                        config={"scrollZoom": True, "displaylogo": False})
picked = charts.selected_ids(event)
if picked and picked != state.get(state.MAP_SELECTION):
    state.put(state.MAP_SELECTION, picked)
    if len(picked) == 1:
        state.select(picked[0])
st.caption("Drag with the lasso (or the box tool in the chart's toolbar) to select architectures; "
           "click a point to pick one. Diamonds are your uploads; the red ring is the selected architecture.")

left, right = st.columns(2, gap="large")
with left:
    sel = [a for a in state.get(state.MAP_SELECTION) if a in ws]
    st.subheader(f"Selection ({len(sel):,})")
    if sel:
        table = studio.architecture_table(ws, members=False)
        table = table[table["id"].isin(set(sel))]
        ev = widgets.table(table, "map_selection_table", select="single-row", height=320)
        rows = widgets.selected_row_ids(ev, table)
        if rows and rows[0] != state.get(state.SELECTED):
            state.select(rows[0])
            st.rerun()
        if st.button("Clear selection", key="map_clear"):
            state.put(state.MAP_SELECTION, [])
            st.rerun()
    else:
        st.caption("Nothing selected on the map yet.")

with right:
    st.subheader("Nearest neighbours")
    arch = widgets.id_input(ws, "Architecture id", "map_arch_id")
    if arch and arch in ws:
        widgets.arch_facts(ws, arch)
        k = st.slider("Neighbours", 3, 50, 10, key="map_k")
        nn = studio.nearest_neighbours(ws, arch, k)
        if nn.empty:
            st.caption("This architecture has no embedding (it was added without a model).")
        else:
            t = studio.architecture_table(studio.Workspace(nn.drop(columns="distance")), members=False)
            t.insert(1, "distance", nn["distance"].to_numpy())
            widgets.table(t[["id", "distance", "family", "score", "label", "MFLOPs", "source"]], "map_nn_table")
        if st.button("Open its computation graph", key="map_open_cg", icon=":material/account_tree:"):
            st.switch_page("app_pages/architecture.py")
