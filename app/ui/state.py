"""Session-state keys (the single source of their names) and typed accessors.

Everything a user does lives in ``st.session_state`` (one per browser session), never in module
globals: uploads, the session's workspace, the fine-tuned model, selections.  Shared, cached
objects (the shipped model, the default workspace) are read-only; a session that changes its
data gets a *new* workspace object (:func:`engine.studio.extend`), and fine-tuning works on a
deep copy of the model.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

# --- keys ------------------------------------------------------------------------------------
WORKSPACE = "workspace"              # engine.studio.Workspace of this session (None = the shared default)
PREDICTOR = "predictor"              # a session-specific base predictor (None = the shared shipped one)
FINETUNE = "finetune_outcome"        # engine.studio.FinetuneOutcome of this session
USE_FINETUNED = "use_finetuned"      # score new data with the fine-tuned model
SELECTED = "selected_arch_id"        # architecture opened on Map / Architecture / Clusters
COMPARE = "compare_arch_id"          # second architecture for the side-by-side view
MAP_SELECTION = "map_selection_ids"  # ids chosen with box / lasso on the map
UPLOADS = "upload_log"               # list of engine.studio.UploadOutcome
ADDED = "added_sources"              # labels of the datasets / samples this session added
TSNE_OVERRIDE = "tsne_override"      # {"perplexity", "seed", "ids", "xy"} of a recomputed t-SNE
REPORT = "report_html"               # last exported report: (HTML bytes, what it was built from)
MESSAGES = "flash_messages"          # [(kind, text)] shown once on the next run

DEFAULTS: dict[str, Any] = {
    WORKSPACE: None, PREDICTOR: None, FINETUNE: None, USE_FINETUNED: False, SELECTED: None, COMPARE: None,
    MAP_SELECTION: [], UPLOADS: [], ADDED: [], TSNE_OVERRIDE: None, REPORT: None, MESSAGES: [],
}


def init() -> None:
    """Create every key with its default (called by the router on each run)."""
    for key, value in DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = list(value) if isinstance(value, list) else value


def get(key: str) -> Any:
    return st.session_state.get(key, DEFAULTS.get(key))


def put(key: str, value: Any) -> None:
    st.session_state[key] = value


def select(arch_id: str | None) -> None:
    st.session_state[SELECTED] = None if arch_id is None else str(arch_id)


def flash(kind: str, text: str) -> None:
    """Queue a message (``success`` / ``info`` / ``warning`` / ``error``) for the next run."""
    st.session_state.setdefault(MESSAGES, []).append((kind, text))


def show_flashes() -> None:
    msgs = st.session_state.get(MESSAGES) or []
    for kind, text in msgs:
        getattr(st, kind, st.info)(text)
    st.session_state[MESSAGES] = []
