"""Architecture: the interactive computation graph, costs by op type, side-by-side comparison."""

import numpy as np
import pandas as pd
import streamlit as st

from app.ui import cached, charts, graph_view, state, widgets
from engine import studio
from engine.report.html import format_value

st.title("Architecture")
ws = widgets.workspace_or_stop()

arch = widgets.id_input(ws, "Architecture id", "arch_id",
                        placeholder="select on the Embedding map / a table, or type an id")
if not arch:
    # with tasks mixed, the top of the labels' task (scores of other tasks are on its scale, see Rankings)
    tasks = studio.row_tasks(ws)
    first = studio.default_task(tasks.unique(), ws.model_card) if ws.has_scores else None
    pool = ws.frame[(tasks == first).to_numpy()] if first else ws.frame
    # inside the training domain when novelty is known: there the score is a predicted accuracy, elsewhere
    # an extrapolation (the top of a mixed pool is often an unlabelled sample far from the training data)
    nov = pool["novelty"].to_numpy(dtype=float) if "novelty" in pool.columns else np.full(len(pool), np.nan)
    inside = bool((nov <= 1).any())
    if inside:
        pool = pool[nov <= 1]
    top = pool.nlargest(1, "score") if ws.has_scores else pool.head(1)
    st.info("Pick an architecture: click one on the **Embedding map**, a row in a table, or type its id.")
    what = f"top-scored {first + ' ' if first else ''}architecture" + (" inside the training domain" if inside else "")
    if len(top) and st.button(f"Show the {what} ({top['id'].iloc[0]})", key="arch_show_top"):
        state.select(top["id"].iloc[0])
        st.rerun()
    st.stop()

widgets.arch_facts(ws, arch)


def load_cg(arch_id: str):
    try:
        return cached.cg_of(ws, arch_id)
    except Exception as exc:  # noqa: BLE001 - a broken spec must not take the page down
        st.error(f"The computation graph of {arch_id} could not be built: {exc}")
        return None


cg = load_cg(arch)
if cg is None:
    st.stop()
c = st.columns(4)
c[0].metric("nodes", f"{cg.num_nodes:,}")
c[1].metric("edges", f"{cg.num_edges:,}")
c[2].metric("MFLOPs (CG)", f"{cg.flops / 1e6:,.2f}")
c[3].metric("params (CG)", f"{cg.params:,}")

view = st.segmented_control("View", ["Graph", "Costs by op type", "Compare"], default="Graph", key="arch_view",
                            required=True)


def show_graph(g, height: int, key: str) -> None:
    if g.num_nodes > graph_view.MAX_NODES and not st.checkbox(
            f"Draw all {g.num_nodes:,} nodes (slow in the browser)", key=f"{key}_big"):
        st.info(f"This graph has {g.num_nodes:,} nodes; tick the box to draw it anyway.")
        return
    st.iframe(graph_view.cg_html(g, height=height), height=height + 20)
    ops = sorted(g.op_counts(), key=lambda o: -g.op_counts()[o])
    st.html(graph_view.legend_html(ops))


if view == "Graph":
    st.caption("Nodes are coloured by op type; hover a node for its shapes, weights and FLOPs. Scroll to zoom, "
               "drag to pan.")
    show_graph(cg, 640, "arch_graph")
elif view == "Costs by op type":
    st.plotly_chart(charts.op_costs(cg), key="arch_costs")
    rows = {}
    for nd in cg.nodes:
        r = rows.setdefault(nd.op, {"op": nd.op, "nodes": 0, "FLOPs": 0, "params": 0})
        r["nodes"] += 1
        r["FLOPs"] += nd.flops
        r["params"] += nd.params
    t = pd.DataFrame(rows.values()).sort_values("FLOPs", ascending=False)
    t["share of FLOPs"] = t["FLOPs"] / max(cg.flops, 1)
    st.dataframe(t, hide_index=True, key="arch_costs_table",
                 column_config={"share of FLOPs": st.column_config.ProgressColumn(min_value=0.0, max_value=1.0,
                                                                                   format="percent")})
else:
    other = widgets.id_input(ws, "Compare with", "arch_compare_id", state_key=state.COMPARE,
                             placeholder="id of a second architecture")
    if not other:
        nb = ws.frame[ws.frame["id"] != arch].head(1)
        st.info("Type the id of a second architecture to compare side by side.")
        if len(nb) and st.button(f"Compare with {nb['id'].iloc[0]}", key="arch_compare_default"):
            state.put(state.COMPARE, nb["id"].iloc[0])
            st.rerun()
    else:
        cg2 = load_cg(other)
        if cg2 is not None:
            a, b = ws.row(arch), ws.row(other)
            stats = pd.DataFrame({  # text cells: "—" for no label, 4 significant digits, thousands separators
                "": ["family", "GENNAPE score", "true label", "nodes", "edges", "MFLOPs", "params"],
                arch: [format_value(v) for v in (a["family"], float(a["score"]), float(a["label"]), cg.num_nodes,
                                                 cg.num_edges, cg.flops / 1e6, cg.params)],
                other: [format_value(v) for v in (b["family"], float(b["score"]), float(b["label"]), cg2.num_nodes,
                                                  cg2.num_edges, cg2.flops / 1e6, cg2.params)],
            })
            st.dataframe(stats, hide_index=True, key="arch_compare_stats")
            st.plotly_chart(charts.op_count_compare(cg, cg2, arch, other), key="arch_compare_ops")
            left, right = st.columns(2)
            with left:
                st.caption(arch)
                show_graph(cg, 520, "arch_left")
            with right:
                st.caption(other)
                show_graph(cg2, 520, "arch_right")

st.download_button("Download this CG (JSON)", cg.to_json(indent=1).encode(), f"{arch.replace(':', '_')}.json",
                   "application/json", key="arch_download")
