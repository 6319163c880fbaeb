"""Small page building blocks shared by several pages (guards, pickers, tables)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from app.ui import cached, state
from engine import studio

TABLE_CONFIG = {
    "id": st.column_config.TextColumn("id", pinned=True),
    "score": st.column_config.NumberColumn("GENNAPE score", format="%.4f"),
    "label": st.column_config.NumberColumn("true label (%)", format="%.2f"),
    "MFLOPs": st.column_config.NumberColumn("MFLOPs", format="%.2f"),
    "M params": st.column_config.NumberColumn("M params", format="%.3f"),
    "entropy": st.column_config.ProgressColumn("entropy", min_value=0.0, max_value=1.0, format="%.2f"),
    "novelty": st.column_config.NumberColumn(
        "novelty", format="%.2f",
        help="Distance of the architecture's embedding to the nearest training architecture, in units of the "
             "distance within which 99% of the training architectures have a neighbour: above 1 it lies outside "
             "the training domain, where "
             "the learned members extrapolate (the score's FLOPs, params and graph-statistics members do not)."),
    "distance": st.column_config.NumberColumn("distance", format="%.4f"),
}


def workspace_or_stop(need_scores: bool = False, need_map: bool = False) -> studio.Workspace:
    """The session's workspace, or an explanation and ``st.stop()`` when a page cannot work."""
    ws = cached.workspace()
    if len(ws) == 0:
        st.info("No architectures are loaded yet. Add data on the **Data** page.")
        note = cached.workspace_note()
        if note:
            st.caption(note)
        st.page_link("app_pages/data.py", label="Go to Data", icon=":material/database:")
        st.stop()
    if need_scores and not ws.has_scores:
        _, why = cached.active_predictor()
        st.info("The architectures are not scored because no GENNAPE model is loaded"
                + (f": {why}." if why else ".") + " Scores, clusters and maps appear once the checkpoint is available.")
        st.stop()
    if need_map and not ws.has_map:
        st.info("This workspace has no embedding map (it was built without a model). "
                "Maps appear once the GENNAPE checkpoint is available.")
        st.stop()
    return ws


def id_input(ws: studio.Workspace, label: str, key: str, state_key: str = state.SELECTED,
             placeholder: str = "click a point or a table row, or type an id") -> str | None:
    """A text input bound to an app-owned id key (``selected_arch_id`` by default): it shows the
    current selection made anywhere in the app, and typing a valid id selects it."""
    synced = f"_{key}_synced"
    current = state.get(state_key)
    if st.session_state.get(synced, "__none__") != current:
        st.session_state[key] = current or ""
        st.session_state[synced] = current
    typed = st.text_input(label, key=key, placeholder=placeholder).strip()
    if typed and typed != current:
        if typed in ws:
            state.put(state_key, typed)
            st.session_state[synced] = typed
            return typed
        st.error(f"No architecture with id {typed!r} in this workspace.")
    return current if current in ws else None


def arch_facts(ws: studio.Workspace, arch_id: str) -> None:
    """Metric tiles for one architecture."""
    row = ws.row(arch_id)
    c = st.columns(5)
    c[0].metric("family", row["family"])
    c[1].metric("GENNAPE score", "—" if not np.isfinite(row["score"]) else f"{row['score']:.4f}")
    c[2].metric("true label", "—" if not np.isfinite(row["label"]) else f"{row['label']:.2f} %")
    c[3].metric("MFLOPs", "—" if not np.isfinite(row["flops"]) else f"{row['flops'] / 1e6:,.2f}")
    c[4].metric("M params", "—" if not np.isfinite(row["params"]) else f"{row['params'] / 1e6:,.3f}")
    if row["provenance"]:
        st.caption(f"Label: {row['provenance']}")
    nv = float(row["novelty"]) if "novelty" in row.index else float("nan")
    if np.isfinite(nv) and nv > 1.0:
        st.caption(f":material/explore: {studio.novelty_verdict(nv)}")


def table(frame: pd.DataFrame, key: str, *, select: str | None = None, height: int | str = "auto"):
    """``st.dataframe`` with the app's column formats; ``select`` = a selection mode."""
    kwargs = {"on_select": "rerun", "selection_mode": select} if select else {}
    return st.dataframe(frame, key=key, hide_index=True, column_config=TABLE_CONFIG, height=height, **kwargs)


def selected_row_ids(event, frame: pd.DataFrame) -> list[str]:
    """Ids of the rows selected in a ``st.dataframe`` event."""
    try:
        rows = event.selection.rows
    except AttributeError:
        return []
    return [frame["id"].iloc[r] for r in rows if 0 <= r < len(frame)]
