"""Search: mutate a start architecture towards fewer FLOPs at an equal or better predicted accuracy.

Start (a family spec, a random sample, an architecture of this session, or an uploaded CG JSON /
ONNX file) -> regularized evolution scored by the predictor (engine.search.runner) with live
progress -> Pareto plot, table of found architectures, CG diff against the start, downloads.
"""

from __future__ import annotations

import functools
import html
import json

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from app.ui import cached, graph_view, state
from app.ui.progress import StreamlitProgress
from engine import families, studio
from engine.graphs.cg import CG
from engine.search.diff import STATUS_COLOURS, CGDiff, diff_cgs, union_view
from engine.search.evolution import SearchConfig
from engine.search.mutate import OPERATORS
from engine.search.runner import SCORE_COLUMN, make_space, onnx_bytes, params_proxy, run_search
from engine.search.spaces import SPEC_MUTATORS

RESULT = "search_page.result"      # (SearchResult, settings dict) of this session's last run
MAX_BUDGET = 2000

st.title("Search")
st.caption("Mutate a start architecture to cut FLOPs while keeping or improving the predicted accuracy "
           "(the paper's “Applying GENNAPE to NAS”). Families with a spec encoding (NB-201, NB-101, HiAML) are "
           "searched in their own space; any other network is searched by mutating its computation graph — every "
           "mutated graph is built as a PyTorch network and run before it is scored, so infeasible ones are "
           "rejected.")


# ---------------------------------------------------------------------------------------------
# start architecture
# ---------------------------------------------------------------------------------------------

@functools.cache
def _example(fam_name: str) -> str:
    """The spec box's example: the largest (FLOPs) of a few seeded samples, so a FLOPs-cutting
    search has room to work (NB-101's first sample is a bare input -> output cell)."""
    fam = families.get(fam_name)
    spec = max(fam.sample(4, seed=0), key=lambda s: fam.to_cg(s).flops)
    return spec if isinstance(spec, str) else json.dumps(spec)


def _load_upload(upload) -> CG:
    raw = upload.getvalue()
    if upload.name.lower().endswith(".onnx"):
        from engine.graphs.onnx_import import from_onnx

        return from_onnx(raw)
    from engine.graphs.cg import load_json

    return load_json(raw)


def pick_start() -> tuple[object | None, str | None, str, dict]:
    """``(start, family, label, to_cg options)``; start is a spec (with family) or a CG, None when not
    chosen; the options are those of a session row's dataset (NB-201's other heads / input size)."""
    source = st.segmented_control("Start from", ["Family spec", "Random sample", "Session architecture",
                                                 "Upload CG / ONNX"], default="Family spec", key="search_source",
                                  required=True)
    names = families.names()
    if source in ("Family spec", "Random sample"):
        c = st.columns([1, 3])
        fam = c[0].selectbox("Family", names, index=names.index("nb201") if "nb201" in names else 0,
                             key="search_family", format_func=lambda n: f"{n} — {families.get(n).title}")
        if source == "Family spec":
            text = c[1].text_area("Spec", value=_example(fam), key=f"search_spec_{fam}", height=80,
                                  help=families.get(fam).spec_help)
            return text.strip(), fam, f"{fam} spec", {}
        seed = c[1].number_input("Sample seed", 0, 10_000, 0, key="search_sample_seed")
        spec = families.get(fam).sample(1, seed=int(seed))[0]
        c[1].code(spec if isinstance(spec, str) else json.dumps(spec), language=None)
        return spec, fam, f"{fam} sample (seed {seed})", {}
    if source == "Session architecture":
        ws = cached.workspace()
        if len(ws) == 0:
            st.info("No architectures are loaded in this session; use another start.")
            return None, None, "", {}
        ids = list(ws.cgs) + [i for i in ws.frame["id"].tolist() if i not in ws.cgs]
        current = state.get(state.SELECTED)
        arch = st.selectbox("Architecture id (uploads first)", ids, index=ids.index(current) if current in ids else 0,
                            key="search_ws_arch")
        row = ws.row(arch)
        if arch not in ws.cgs and row["family"] in SPEC_MUTATORS and row["spec"]:
            return row["spec"], row["family"], f"{arch}", studio.cg_options(ws, arch)
        try:
            return cached.cg_of(ws, arch), None, f"{arch}", {}
        except Exception as exc:  # noqa: BLE001 - a broken row must not take the page down
            st.warning(f"The computation graph of {arch} could not be built: {exc}")
            return None, None, "", {}
    upload = st.file_uploader("CG JSON or ONNX file", type=["json", "onnx"], key="search_upload")
    if upload is None:
        st.info("Upload a CG JSON (as exported by the Architecture page or `python -m engine`) or an ONNX model.")
        return None, None, "", {}
    try:
        return _load_upload(upload), None, upload.name, {}
    except Exception as exc:  # noqa: BLE001 - any import failure is shown, not raised
        st.warning(f"{upload.name} could not be read: {exc}")
        return None, None, "", {}


start, family, start_label, start_options = pick_start()

c = st.columns(4)
budget = c[0].number_input("Budget (candidates)", 8, MAX_BUDGET, 100, step=8, key="search_budget")
target = c[1].slider("FLOPs target (x start)", 0.2, 1.0, 0.7, 0.05, key="search_target")
seed = c[2].number_input("Seed", 0, 1_000_000, 0, key="search_seed")
mode = c[3].selectbox("Mutations", ["auto", "spec", "cg"], key="search_mode",
                      help="auto: the family's own spec edits when it has them (NB-201, NB-101, HiAML), else CG "
                           "mutations; cg: always mutate the computation graph")
finetuned = state.get(state.FINETUNE)
if finetuned is not None:  # the session fine-tuned a copy on the Fine-tune page: the search may score with it
    info = finetuned.settings
    use_ft = st.toggle(f"Score with the fine-tuned model (fine-tuned on {len(finetuned.train_ids)} "
                       f"{info.get('family', '')} architectures)", value=bool(state.get(state.USE_FINETUNED)),
                       key="search_use_finetuned", help="Off: the shared base model. The fine-tuned copy ranks "
                       "its own family better when the Fine-tune page measured a gain on held-out labels.")
    state.put(state.USE_FINETUNED, use_ft)
with st.expander("Advanced"):
    a = st.columns(3)
    population = a[0].number_input("Population", 4, 128, 16, key="search_population")
    penalty = a[1].number_input("FLOPs penalty", 0.0, 1000.0, 10.0, key="search_penalty",
                                help="fitness = predicted accuracy - penalty x relative FLOPs excess over the target")
    ops = a[2].multiselect("CG operators", sorted(OPERATORS), default=sorted(OPERATORS), key="search_ops",
                           help="The mutations of a CG search (Mutations: cg, or a start without spec edits); "
                                "a spec search of NB-201, NB-101 or HiAML uses the family's own edits instead.")


# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------

def choose_scorer(cg: CG):
    """``(scorer-or-predictor, column, note)``: the predictor's absolute cl_fcm_t column when it has
    one; a predictor without it uses ``score``; no model -> the params proxy (said so)."""
    pred, why = cached.active_predictor()
    if pred is None:
        return params_proxy, "log10_params_proxy", (f"No GENNAPE model is loaded ({why}); scoring with a naive "
                                                     "log10(params) proxy instead — not a GENNAPE prediction.")
    try:
        cols = pred.predict([cg]).columns
    except Exception as exc:  # noqa: BLE001
        return None, "", f"The model could not score the start architecture: {exc}"
    if SCORE_COLUMN in cols:
        return pred, SCORE_COLUMN, ""
    return pred, "score", ("This model has no CL+FCM+T column; using its ensemble score, which is relative to "
                           "each scored batch (less reliable across the search).")


def run(start_obj, fam, options: dict) -> None:
    cg_search = mode == "cg" or (mode == "auto" and fam not in SPEC_MUTATORS)
    if cg_search and not ops:
        st.warning("Choose at least one CG operator under Advanced: this start is searched by mutating its "
                   "computation graph.")
        return
    try:
        chosen = ops if cg_search and ops != sorted(OPERATORS) else None  # a spec search has its own edits
        space, item = make_space(start_obj, fam, mode, chosen, options)
        start_cg = space.to_cg(item)
    except Exception as exc:  # noqa: BLE001 - bad start input is reported on the page
        st.warning(f"The start architecture is not usable: {exc}")
        return
    scorer, column, note = choose_scorer(start_cg)
    if scorer is None:
        st.warning(note)
        return
    # an ImageNet start (an OFA sample, an uploaded 224x224 network) is scored on the labels' (CIFAR-10) scale;
    # a start built with to_cg options (NB-201's other heads) is judged by its graph's inputs and outputs
    known = fam is not None and not options and studio.family_task(fam) is not None
    scale = studio.score_scale_note([fam] if known else [], getattr(scorer, "model_card", None),
                                    [] if known else [start_cg], advice="A search only compares the start with "
                                    "its own mutations: read the scores as a ranking.")
    if scale:
        note = f"{note} {scale}".strip()
    if note:
        st.info(note)
    cfg = SearchConfig(budget=int(budget), population=int(population), flops_target=float(target),
                       penalty=float(penalty), seed=int(seed))
    bar = st.progress(0.0, text="searching…")
    try:
        result = run_search(item, scorer, cfg, StreamlitProgress(bar), space=space, column=column)
    except Exception as exc:  # noqa: BLE001
        bar.empty()
        st.warning(f"The search failed: {exc}")
        return
    bar.empty()
    model = "the fine-tuned model" if finetuned is not None and scorer is getattr(finetuned, "model", None) else \
        "the base model"
    st.session_state[RESULT] = (result, {"start": start_label, "column": column, "note": note, "model": model})


if st.button("Run search", type="primary", key="search_run", disabled=start is None or start == ""):
    run(start, family, start_options)

if RESULT not in st.session_state:
    st.stop()
result, settings = st.session_state[RESULT]


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------

st.subheader(f"Results — start: {settings['start']}")
if settings["note"]:
    st.caption(settings["note"])
best = result.best()
m = st.columns(5)
m[0].metric("start score", f"{result.start.score:.3f}")
m[1].metric("start MFLOPs", f"{result.start.flops / 1e6:,.1f}")
m[2].metric("best score (meets target)", f"{best.score:.3f}" if best is not result.start else "—",
            delta=f"{best.score - result.start.score:+.3f}" if best is not result.start else None)
m[3].metric("best MFLOPs", f"{best.flops / 1e6:,.1f}",
            delta=f"{best.flops / result.start.flops - 1:+.1%}" if result.start.flops else None, delta_color="inverse")
m[4].metric("evaluated", f"{len(result.history):,}")
st.caption(f"Scored by {settings.get('model', 'the base model')}, column `{settings['column']}` · FLOPs target {result.flops_target / 1e6:,.1f} MFLOPs · "
           f"space: {result.meta.get('space')}"
           + (f" · {result.meta['rejected_infeasible']} mutated CGs rejected as infeasible"
              if "rejected_infeasible" in result.meta else ""))
if result.stopped:
    st.warning(result.stopped)
if best is result.start:
    st.info("No candidate met the FLOPs target; raise the budget or the target.")

frame = result.frame()
frame["MFLOPs"] = frame["flops"] / 1e6


def pareto_figure(df: pd.DataFrame, target_flops: float, best_uid: int) -> go.Figure:
    fig = go.Figure()
    for ok, colour, name in ((False, "#adb5bd", "over target"), (True, "#457b9d", "meets target")):
        sub = df[(df["meets_target"] == ok) & (df["uid"] != 0)]
        fig.add_trace(go.Scatter(x=sub["MFLOPs"], y=sub["score"], mode="markers", name=name,
                                 marker=dict(color=colour, size=7, opacity=0.7), customdata=sub[["uid", "mutation"]],
                                 hovertemplate="uid %{customdata[0]}<br>%{x:.2f} MFLOPs<br>score %{y:.4f}"
                                               "<br>%{customdata[1]}<extra></extra>"))
    front = df[df["on_pareto"]].sort_values("MFLOPs")
    fig.add_trace(go.Scatter(x=front["MFLOPs"], y=front["score"], mode="lines+markers", name="Pareto front",
                             line=dict(color="#f77f00", shape="hv"), marker=dict(size=8)))
    s = df[df["uid"] == 0]
    fig.add_trace(go.Scatter(x=s["MFLOPs"], y=s["score"], mode="markers", name="start",
                             marker=dict(symbol="star", size=18, color="#d62828", line=dict(color="#111", width=1))))
    if best_uid != 0:
        b = df[df["uid"] == best_uid]
        fig.add_trace(go.Scatter(x=b["MFLOPs"], y=b["score"], mode="markers", name="best",
                                 marker=dict(symbol="diamond", size=15, color="#2a9d8f",
                                             line=dict(color="#111", width=1))))
    fig.add_vline(x=target_flops / 1e6, line=dict(dash="dash", color="#6c757d"), annotation_text="target")
    fig.update_layout(height=460, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="MFLOPs",
                      yaxis_title="predicted score", legend=dict(orientation="h", y=-0.15))
    return fig


st.plotly_chart(pareto_figure(frame, result.flops_target, best.uid), key="search_pareto")

st.markdown("**Found architectures** — the Pareto front and the best 10 meeting the target")
shown = frame[frame["on_pareto"] | frame["uid"].isin(
    frame[frame["meets_target"] & (frame["uid"] != 0)].nlargest(10, "score")["uid"])]
cols = [c for c in ("uid", "score", "MFLOPs", "params", "meets_target", "on_pareto", "mutation", "arch") if c in shown]
st.dataframe(shown.sort_values("score", ascending=False)[cols], hide_index=True, key="search_table",
             column_config={"score": st.column_config.NumberColumn(format="%.4f"),
                            "MFLOPs": st.column_config.NumberColumn(format="%.2f")})
st.download_button("Download the search history (CSV)", frame.to_csv(index=False).encode(), "search_history.csv",
                   "text/csv", key="search_dl_history")


# ---------------------------------------------------------------------------------------------
# diff and export
# ---------------------------------------------------------------------------------------------

st.subheader("Compare with the start")
options = shown.sort_values("score", ascending=False)["uid"].tolist()
default = options.index(best.uid) if best.uid in options else 0
# keyed by the result: a kept choice of the previous run would override the new run's best
uid = st.selectbox("Architecture", options, index=default, key=f"search_pick_{id(result)}",
                   format_func=lambda u: f"uid {u} — score {frame.set_index('uid').loc[u, 'score']:.4f}, "
                                         f"{frame.set_index('uid').loc[u, 'MFLOPs']:.2f} MFLOPs")
cand = result.get(int(uid))


def diff_html(d: CGDiff, height: int = 620) -> str:
    """pyvis view of ``b`` plus removed nodes of ``a``, coloured by status (offline HTML)."""
    from pyvis.network import Network

    nodes, edges = union_view(d)
    net = Network(height=f"{height}px", width="100%", directed=True, cdn_resources="in_line")
    level: dict[str, int] = {}
    preds: dict[str, list[str]] = {}
    for e in edges:
        preds.setdefault(e["target"], []).append(e["source"])

    def depth(nid: str, seen=()) -> int:
        if nid not in level:
            ps = [p for p in preds.get(nid, []) if p not in seen]
            level[nid] = 1 + max((depth(p, (*seen, nid)) for p in ps), default=-1)
        return level[nid]

    for n in nodes:
        nd = n["node"]
        title = graph_view.node_title(nd) + (f"\nstatus: {n['status']}" + (f" ({', '.join(n['what'])})"
                                                                           if n["what"] else ""))
        net.add_node(n["id"], label=graph_view.node_label(nd), title=title, level=depth(n["id"]),
                     color=STATUS_COLOURS[n["status"]], shape="box" if nd.weight is not None else "ellipse",
                     borderWidth=1 if n["status"] == "same" else 3)
    for e in edges:
        net.add_edge(e["source"], e["target"], color=STATUS_COLOURS[e["status"]],
                     dashes=e["status"] == "removed", width=1 if e["status"] == "same" else 2.5)
    net.set_options(json.dumps({
        "layout": {"hierarchical": {"enabled": True, "direction": "UD", "sortMethod": "directed",
                                    "levelSeparation": 70, "nodeSpacing": 110}},
        "physics": {"enabled": False}, "edges": {"arrows": {"to": {"enabled": True, "scaleFactor": 0.5}}},
        "interaction": {"hover": True, "tooltipDelay": 80}}))
    return graph_view.strip_external(net.generate_html())


d = diff_cgs(result.start.cg, cand.cg)
counts = d.counts()
k = st.columns(5)
for col, key in zip(k, ("added", "removed", "changed", "same")):
    col.metric(f"nodes {key}", counts[key])
k[4].metric("FLOPs change", f"{counts['flops_delta'] / 1e6:+,.2f} M")
lineage = [c.mutation for c in result.lineage(cand.uid)][1:]
if lineage:
    st.caption("Mutations from the start: " + " → ".join(lineage))
legend = "".join(f'<span style="display:inline-block;margin-right:12px"><span style="display:inline-block;width:12px;'
                 f'height:12px;border-radius:3px;background:{c};vertical-align:middle"></span> {html.escape(s)}</span>'
                 for s, c in STATUS_COLOURS.items())
st.html(f'<div style="font-size:13px">{legend}</div>')
n_draw = cand.cg.num_nodes + len(d.removed)
if n_draw <= graph_view.MAX_NODES or st.checkbox(f"Draw all {n_draw:,} nodes (slow)", key="search_diff_big"):
    st.iframe(diff_html(d), height=640)
table = d.frame()
if len(table):
    st.dataframe(table, hide_index=True, key="search_diff_table")
else:
    st.caption("The two computation graphs are identical.")

st.markdown("**Export**")
e = st.columns(2)
e[0].download_button("CG JSON", cand.cg.to_json(indent=1).encode(), f"search_uid{cand.uid}.json", "application/json",
                     key="search_dl_json")
onnx_key = f"search_page.onnx.{id(result)}.{cand.uid}"
if e[1].button("Prepare ONNX", key="search_onnx"):
    try:
        st.session_state[onnx_key] = onnx_bytes(cand.cg)
    except RuntimeError as exc:
        st.session_state[onnx_key] = str(exc)
got = st.session_state.get(onnx_key)
if isinstance(got, bytes):
    e[1].download_button("ONNX", got, f"search_uid{cand.uid}.onnx", "application/octet-stream", key="search_dl_onnx")
elif isinstance(got, str):
    e[1].warning(f"ONNX export failed: {got}")
