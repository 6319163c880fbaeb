"""GENNAPE Studio — the router.  Run from the repository root:

    python -m streamlit run app/streamlit_app.py

Sets the page config, initialises this session's state, registers the pages listed in
``app/ui/registry.py`` with ``st.navigation`` and shows a small status panel in the sidebar.
With ``$GENNAPE_STUDIO_TIMING`` set to a file path, every script run appends one JSON line
``{"page", "run_s"}`` to it (read by ``python -m engine.bench app``).
"""

import json
import os
import sys
import time
from pathlib import Path

_T0 = time.perf_counter()

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `streamlit run` puts only app/ on sys.path
    sys.path.insert(0, str(_ROOT))

import streamlit as st

from app.ui import cached, state
from app.ui.registry import PAGES

st.set_page_config(page_title="GENNAPE Studio", page_icon=":material/hub:", layout="wide")
state.init()
arch_param = st.query_params.get("arch")  # deep link: ?arch=<id> selects that architecture (once)
if arch_param and st.session_state.get("_arch_param") != arch_param:
    st.session_state["_arch_param"] = arch_param
    if arch_param in cached.workspace():
        state.select(arch_param)

pages = [st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=p.default) for p in PAGES]
page = st.navigation(pages, position="sidebar")

with st.sidebar:
    ws = cached.workspace()
    st.caption("**This session**")
    st.caption(f"{len(ws):,} architectures · {ws.num_labelled:,} labelled · {ws.frame['family'].nunique()} families")
    uploads = state.get(state.UPLOADS) or []
    if uploads:
        st.caption(f"{len(uploads)} uploaded file(s)")
    if state.get(state.FINETUNE) is not None:
        st.caption("A fine-tuned model is kept for this session (Fine-tune page).")
    if state.get(state.SELECTED):
        st.caption(f"Selected: `{state.get(state.SELECTED)}`")

state.show_flashes()
try:
    page.run()
finally:
    if os.environ.get("GENNAPE_STUDIO_TIMING"):
        with open(os.environ["GENNAPE_STUDIO_TIMING"], "a") as _log:
            _log.write(json.dumps({"page": page.url_path, "run_s": round(time.perf_counter() - _T0, 4)}) + "\n")
