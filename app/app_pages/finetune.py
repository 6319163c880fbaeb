"""Fine-tune: adapt a copy of the model to one family with k labelled samples; before / after."""

import hashlib

import numpy as np
import pandas as pd
import streamlit as st

from app.ui import cached, charts, state, widgets
from app.ui.progress import StreamlitProgress
from engine import studio
from engine.data import UploadError, parse_id_labels

TYPED = "ft_typed_labels"  # id -> label typed / uploaded on this page (session only)

st.title("Fine-tune")
ws = widgets.workspace_or_stop(need_scores=True)
pred, why = cached.base_predictor()
if pred is None or not hasattr(pred, "finetune"):
    st.info(f"Fine-tuning needs the GENNAPE model ({why or 'this model cannot be fine-tuned'}).")
    st.stop()
st.markdown(
    "Zero-shot, the score of a family the model never saw is only about as good as FLOPs (see *How far to trust "
    "the score* on Home); a few labelled samples of the target family let the learned members adapt to it "
    "(the paper fine-tunes on 50). Pick a family and **k** labelled architectures; a **copy** of the model is "
    "fine-tuned (the shared model is never changed) and compared with the original on labelled architectures "
    "it did not see. The fine-tuned model stays in this browser session and can be downloaded.")
typed: dict = st.session_state.setdefault(TYPED, {})

frame = ws.frame.copy()
if typed:
    ids = frame["id"].map(typed)
    frame["label"] = np.where(ids.notna(), ids.astype(float), frame["label"])
counts = frame.assign(lab=np.isfinite(frame["label"].to_numpy(dtype=float))).groupby("family")["lab"].agg(["sum", "size"])
families = counts.sort_values("sum", ascending=False).index.tolist()
c = st.columns([2, 2])
target = c[0].selectbox("Target family", families, key="ft_family",
                        format_func=lambda f: f"{f} — {int(counts.loc[f, 'sum']):,} labelled of {int(counts.loc[f, 'size']):,}")
mode = c[1].segmented_control("Labels", ["Known labels", "Type or upload labels"], default="Known labels",
                              key="ft_label_mode", required=True)
pool = frame[frame["family"] == target]

if mode == "Type or upload labels":
    st.caption("Type accuracies (%) into the label column, or upload a CSV with an `id` column and a label "
               "column (`label`, `accuracy`, `val_acc`, … as on the Data page; all values in 0–1 are read as "
               "fractions). An `id` is a workspace id, or an uploaded network's file name (with or without "
               "`.onnx`, as `engine predict` writes it) when no other architecture has it. Typed labels are used "
               "only here, in this session.")
    up = st.file_uploader("Labels CSV", type=["csv"], key="ft_labels_csv")
    if up is not None:
        try:
            got = parse_id_labels(up.getvalue(), up.name, studio.id_aliases(ws.frame))
        except (UploadError, ValueError) as exc:
            st.error(f"Could not read the labels file: {exc}")
        else:
            for w in got.warnings:
                st.warning(w)
            if got.errors:
                st.caption("Rows ignored (rows are numbered as lines of the file; the header is row 1):")
                st.dataframe(pd.DataFrame([e.to_dict() for e in got.errors]), hide_index=True, key="ft_label_errors")
            if got.labels:
                st.success(f"{up.name}: {got.summary()}.")
            else:
                st.warning(f"{up.name}: no usable label ({got.summary()}).")
            # applied once per file content: a label typed or cleared afterwards in the table below wins
            sig = (up.name, hashlib.sha1(up.getvalue()).hexdigest())
            if st.session_state.get("ft_labels_csv_applied") != sig:
                st.session_state["ft_labels_csv_applied"] = sig
                typed.update(got.labels)
                st.rerun()  # the counts and the pool above are computed from the typed labels
    sel = set(state.get(state.MAP_SELECTION))
    show = pool[pool["id"].isin(sel) | (pool["source"] == "upload") | pool["id"].isin(typed)]
    if len(show) < 20:
        rest = pool[~pool["id"].isin(set(show["id"]))]
        show = pd.concat([show, rest.sample(min(len(rest), 40 - len(show)), random_state=0)])
    edit = show[["id", "source", "score", "label"]].reset_index(drop=True)
    edited = st.data_editor(edit, key="ft_editor", disabled=["id", "source", "score"], hide_index=True,
                            column_config={"label": st.column_config.NumberColumn("label (%)", min_value=0.0,
                                                                                  max_value=100.0, format="%.2f")})
    if studio.apply_label_edits(typed, edit, edited):
        st.rerun()

labelled = pool[np.isfinite(pool["label"].to_numpy(dtype=float))]
# labels of different datasets measure different things (NB-201's CIFAR-10 and ImageNet16-120 accuracies):
# fine-tune and evaluate on one label set; labels typed here belong to whichever set is chosen
label_sets = labelled.loc[~labelled["id"].isin(typed), "dataset"].value_counts()
label_set = None
if len(label_sets) > 1:
    label_set = st.selectbox("Label set", label_sets.index.tolist(), key="ft_label_set",
                             format_func=lambda d: f"{d} — {int(label_sets[d]):,} labelled",
                             help=f"{target} has labels from {len(label_sets)} datasets; they measure different "
                                  "things (e.g. CIFAR-10 and ImageNet16-120 accuracy), so fine-tuning and its "
                                  "evaluation use one of them.")
    labelled = labelled[(labelled["dataset"] == label_set) | labelled["id"].isin(typed)]
st.subheader("Fine-tuning samples")
if len(labelled) < 2:
    st.info(f"{target} has {len(labelled)} labelled architecture(s); at least 2 are needed. Type labels above, "
            "upload a labelled CSV on the Data page, or pick another family.")
    st.stop()
if labelled["label"].nunique() < 2:
    st.warning(f"All {len(labelled)} labels are equal ({labelled['label'].iloc[0]:g} %): they carry no ranking "
               "information, so neither fine-tuning nor its evaluation can tell architectures apart.")
c = st.columns(4)
strategy = c[0].radio("Choose samples", studio.FINETUNE_STRATEGIES, key="ft_strategy")
ft_cfg = getattr(getattr(pred, "config", None), "finetune", None)
k_max = int(min(100, len(labelled)))
k_help = "labelled architectures to fine-tune on (the paper and the model's default: 50)"
if k_max > 2:
    k = c[1].slider("k", 2, k_max, studio.default_finetune_k(len(labelled), int(getattr(ft_cfg, "k", 50))),
                    key="ft_k", help=k_help)
else:
    k = 2
    c[1].metric("k", k, help=k_help + "; only 2 labels, so both are used")
if k >= len(labelled):
    st.caption(f"All {len(labelled)} labels are used for fine-tuning, so none is left to measure the result; "
               "use a smaller k (3 held-out labels are needed for the ranking metrics).")
seed = c[2].number_input("Seed", 0, 10_000, 0, key="ft_seed")
epochs = c[3].slider("Epochs", 1, 100, max(1, min(int(getattr(ft_cfg, "head_epochs", 100)), 100)), key="ft_epochs",
                     help="training epochs of the heads (the paper and the model's default: 100; fewer is faster)")
manual = []
if strategy == "manual":
    manual = st.multiselect("Architectures", labelled["id"].tolist(), key="ft_manual", max_selections=100)
c = st.columns(2)
n_eval = c[0].slider("Held-out architectures to evaluate on", 10, 2000, 300, step=10, key="ft_n_eval")
default_sel = getattr(getattr(getattr(pred, "config", None), "finetune", None), "selection", "auto")
selection = c[1].radio(
    "Ensemble weights", list(studio.FINETUNE_SELECTIONS), key="ft_selection",
    index=list(studio.FINETUNE_SELECTIONS).index(default_sel) if default_sel in studio.FINETUNE_SELECTIONS else 0,
    format_func=studio.FINETUNE_SELECTIONS.get,
    help="Paper: softmax of each member's Kendall τ on the fine-tuning samples themselves. Cross-validated: "
         "each member keeps its fine-tuned or its pre-trained version, whichever ranks held-out folds of the "
         "samples better, and is weighted by that out-of-fold τ; the base model stays unchanged unless the "
         "result ranks the folds better (about 6× the time). Auto: cross-validated when most samples lie "
         "inside the model's training domain (where the paper's weights measurably lose to the base model), "
         "else the paper's.")

if st.button("Fine-tune", type="primary", key="ft_run"):
    try:
        train_ids = studio.choose_finetune_ids(labelled, k, strategy, int(seed), manual)
        rest = labelled[~labelled["id"].isin(set(train_ids))]
        if len(rest) > n_eval:
            rest = rest.sample(n_eval, random_state=int(seed))
        eval_ids = rest["id"].tolist()
        lab = labelled.set_index("id")["label"]
        with st.status(f"Fine-tuning on {len(train_ids)} architectures…", expanded=True) as status:
            bar = st.progress(0.0, text="building graphs")
            train_cgs = [cached.cg_of(ws, a) for a in train_ids]
            eval_cgs = [cached.cg_of(ws, a) for a in eval_ids]
            outcome = studio.finetune_and_evaluate(
                pred, train_cgs, lab.loc[train_ids].to_numpy(), eval_cgs, lab.loc[eval_ids].to_numpy(),
                train_ids=train_ids, eval_ids=eval_ids, epochs=int(epochs), seed=int(seed),
                callback=StreamlitProgress(bar), selection=selection,
                # the scores' scale as on the other pages: the workspace's reference population
                reference=lambda model: cached.score_reference(ws, model))
            outcome.settings.update({"family": target, "strategy": strategy})
            if label_set is not None:  # the family had labels from several datasets
                outcome.settings["label_set"] = label_set
            state.put(state.FINETUNE, outcome)
            status.update(label=f"Fine-tuned in {outcome.seconds:.1f} s", state="complete", expanded=False)
    except Exception as exc:  # noqa: BLE001 - explain, keep the session
        st.error(f"Fine-tuning failed: {exc}")

outcome = state.get(state.FINETUNE)
if outcome is None:
    st.stop()
ft_info = studio.model_card_dict(outcome.model).get("finetune") or {}
st.subheader("Before and after")
labels_of = f", labels of {outcome.settings['label_set']}" if outcome.settings.get("label_set") else ""
st.caption(f"Fine-tuned on {len(outcome.train_ids)} {outcome.settings.get('family', '')} architectures "
           f"({outcome.settings.get('strategy', '')}, seed {outcome.settings.get('seed')}{labels_of}); evaluated on "
           f"{len(outcome.eval_ids)} held-out ones.")
if outcome.metrics_before:
    mt = outcome.metrics_table()
    keys = [m for m in ("srcc", "kendall_tau", "ndcg@10", "precision@10") if m in set(mt["metric"])]
    cols = st.columns(max(1, len(keys)))
    for col, m in zip(cols, keys):
        r = mt[mt["metric"] == m].iloc[0]
        col.metric(m, f"{r['after']:.3f}", f"{r['after'] - r['before']:+.3f}")
    st.dataframe(mt, hide_index=True, key="ft_metrics",
                 column_config={"before": st.column_config.NumberColumn(format="%.4f"),
                                "after": st.column_config.NumberColumn(format="%.4f")})
    advice = studio.finetune_advice(mt, ws.frame.set_index("id")["novelty"].reindex(outcome.train_ids),
                                    ft_info.get("selection"))
    if advice:
        st.warning(advice + " (*Discard the fine-tuned model* below.)")
elif len(outcome.eval_ids) < 3:
    st.info("Too few held-out labelled architectures to measure the ranking (need 3).")
if len(outcome.eval_ids):
    st.plotly_chart(charts.finetune_scatter(outcome.predictions()), key="ft_scatter")
members = studio.finetune_member_table(outcome.model)
info = ft_info
if studio.kept_base_message(info):
    st.info(studio.kept_base_message(info))
if len(members):
    with st.expander("Ensemble after fine-tuning"):
        if info.get("selection_reason"):
            st.caption(info["selection_reason"].replace("auto: ", "Auto: ", 1) + ".")
        if info.get("selection_note"):
            st.caption(info["selection_note"])
        elif info.get("folds"):
            st.caption(f"{info['folds']} folds of the {info['k']} samples: each out-of-fold τ comes from "
                       f"{info['cv_pairs']} held-out pairs{' — few, so the choice is noisy' if info['cv_pairs'] < 50 else ''}. "
                       "A member keeps its fine-tuned version only where it ranked the held-out folds better "
                       "than the pre-trained one.")
        st.dataframe(members, hide_index=True, key="ft_members",
                     column_config={c: st.column_config.NumberColumn(format="%.3f")
                                    for c in members.columns if c not in ("member", "version")})
curve = charts.loss_curve(outcome.history)
if curve is not None:
    with st.expander("Training progress"):
        st.plotly_chart(curve, key="ft_curve")
c = st.columns(2)
try:
    packed = st.session_state.get("ft_zip")
    if packed is None or packed[0] != id(outcome):  # pack once per fine-tuned model
        packed = (id(outcome), outcome.checkpoint_zip())
        st.session_state["ft_zip"] = packed
    data = packed[1]
    c[0].download_button("Download the fine-tuned checkpoint (zip)", data, "gennape_finetuned.zip",
                         "application/zip", key="ft_download", icon=":material/download:")
except Exception as exc:  # noqa: BLE001
    c[0].error(f"The checkpoint could not be packed: {exc}")
if c[1].button("Discard the fine-tuned model", key="ft_discard"):
    state.put(state.FINETUNE, None)
    st.rerun()
