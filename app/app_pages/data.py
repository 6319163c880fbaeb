"""Data: benchmark datasets, generated samples, uploads (with per-row validation), the table."""

import hashlib

import pandas as pd
import streamlit as st

from app.ui import cached, state, widgets
from app.ui.progress import StreamlitProgress
from engine import studio
from engine.data import uploads as uploads_mod

UPLOADER_GEN = "data_uploader_gen"  # bumped by a reset (a fresh, empty uploader)

st.title("Data")
st.caption("Everything you add here stays in this browser session only; other users never see it.")

ws = cached.workspace()
pred, why = cached.base_predictor()
if pred is None:
    st.warning(f"No GENNAPE model is loaded ({why}); new architectures are added unscored.")
stale = cached.stale_scores_note(ws, pred)
if stale:
    st.warning(stale)


def _add(part: studio.Workspace, label: str) -> None:
    """Extend the session's workspace with ``part`` (a new object; the shared default is untouched)."""
    new = studio.extend(cached.workspace(), part)
    added = len(new) - len(cached.workspace())
    cached.set_workspace(new)
    state.put(state.ADDED, [*state.get(state.ADDED), label])
    if added:
        state.flash("success", f"Added {added:,} architecture(s) from {label}.")
    else:
        state.flash("info", f"{label}: every architecture was already in the workspace.")


def _score_kwargs() -> dict:
    return {"predictor": pred, "reference": cached.score_reference(cached.workspace(), pred)}


# --- benchmark datasets --------------------------------------------------------------------------
bench, samples, uploads = st.tabs(["Benchmark datasets", "Generate samples", "Upload"])
with bench:
    st.markdown("Labelled benchmark datasets: the embedded NAS-Bench-201 labels, 31 hand-designed ImageNet "
                "networks with their published top-1 (`zoo_imagenet`: see how the score ranks real-world "
                "networks it never saw) and any reference folders configured on this machine "
                "(`GENNAPE_DATA_DIR`).")
    try:
        from engine.data import available

        infos = available()
    except Exception as exc:  # noqa: BLE001 - show, keep the page
        infos = []
        st.error(f"Could not list datasets: {exc}")
    if infos:
        table = pd.DataFrame([i.to_dict() for i in infos])
        loaded = set(ws.frame["dataset"])
        table.insert(0, "in workspace", table["name"].isin(loaded))
        table["task"] = [studio.dataset_task(d, f) or d for d, f in zip(table["label_dataset"], table["family"])]
        st.dataframe(table[["in workspace", "name", "family", "task", "count", "present", "problem", "provenance",
                            "location"]],
                     hide_index=True, key="data_bench_table",
                     column_config={"count": st.column_config.NumberColumn(format="localized")})
        choices = [i.name for i in infos if i.present and i.name not in loaded]
        pick = st.multiselect("Add datasets to the workspace", choices, key="data_bench_pick")
        if st.button("Add datasets", key="data_bench_add", disabled=not pick):
            for name in pick:
                with st.status(f"Loading {name}…", expanded=True) as status:
                    bar = st.progress(0.0)
                    try:
                        from engine.data import load

                        ds = load(name, with_cgs=False)
                        part = studio.part_from_dataset(ds, source="benchmark", prefix=name,
                                                        callback=StreamlitProgress(bar), **_score_kwargs())
                        _add(part, name)
                        status.update(label=f"{name}: {len(ds):,} architectures", state="complete")
                    except Exception as exc:  # noqa: BLE001 - shown after the rerun below (st.error would vanish)
                        status.update(label=f"{name} could not be loaded", state="error")
                        state.flash("error", f"{name} could not be loaded: {exc}")
            st.rerun()

# --- samples -------------------------------------------------------------------------------------
with samples:
    try:
        titles = studio.family_titles()
    except Exception as exc:  # noqa: BLE001
        titles = {}
        st.error(f"Could not list the families: {exc}")
    if titles:
        c = st.columns([2, 2, 1])
        fam = c[0].selectbox("Family", list(titles), format_func=lambda n: f"{titles[n]} ({n})", key="data_family")
        n = c[1].slider("Samples", 1, 200, 20, key="data_sample_n")
        seed = c[2].number_input("Seed", 0, 10_000, 0, key="data_sample_seed")
        if st.button("Generate and score", key="data_sample_go"):
            with st.status(f"Sampling {n} {titles[fam]} architectures…", expanded=True) as status:
                bar = st.progress(0.0)
                try:
                    ds = studio.sample_dataset(fam, int(n), int(seed))
                    part = studio.part_from_dataset(ds, source="sample", prefix=f"sample:{fam}",
                                                    callback=StreamlitProgress(bar), **_score_kwargs())
                    _add(part, f"{n} {fam} samples (seed {seed})")
                    status.update(label="Done", state="complete")
                except Exception as exc:  # noqa: BLE001 - shown after the rerun below (st.error would vanish)
                    status.update(label="Sampling failed", state="error")
                    state.flash("error", f"Sampling {fam} failed: {exc}")
            st.rerun()

# --- uploads -------------------------------------------------------------------------------------
with uploads:
    st.markdown(
        "- **CSV / TSV / JSONL / JSON array**: one architecture per row with `family` + `spec` (or a `cg` "
        "column of CG JSON) and an optional label column (`label`, `accuracy`, `val_acc`, …; percent or "
        "fractions).\n"
        "- **ONNX** (`.onnx`), or a **zip** of ONNX files with an optional `labels.csv` (`file`, `label`; a "
        "`file` is the base name or the path within the zip). Selecting ONNX files together with such a "
        "`labels.csv` reads them as one labelled upload. "
        "Only the graph and the weight *shapes* are read, so for a large model upload just the `.onnx` of a "
        "copy saved with its weights outside (`onnx.save_model(m, 'net.onnx', save_as_external_data=True)`).\n"
        "- **CG JSON** (as written by GENNAPE Studio) or the GENNAPE authors' files (`.json`, `.pkl`).\n"
        "- A **PyTorch or TensorFlow model**: export it to ONNX first "
        "(`torch.onnx.export(model, torch.randn(1, 3, 224, 224), 'model.onnx')`; `tf2onnx` for TensorFlow / "
        "Keras). Checkpoints (`.pt`, `.pth`, `.h5`) hold weights, not the network, and are never unpickled.")
    # a reset gives the uploader a new key: the files it still held would otherwise be read again
    gen = int(st.session_state.get(UPLOADER_GEN, 0))
    files = st.file_uploader("Upload architectures", type=list(studio.UPLOAD_TYPES), accept_multiple_files=True,
                             key=f"data_uploader{gen or ''}")
    incoming = [(f.name, f.getvalue()) for f in files or []]
    examples = studio.demo_files()
    if examples:
        c = st.columns([3, 1], vertical_alignment="bottom")
        example = c[0].selectbox("…or try an example file", list(examples), index=None,
                                 format_func=lambda n: f"{n} — {studio.DEMO_FILES[n]}",
                                 placeholder="choose an example file", key="data_example_pick")
        if c[1].button("Load example", key="data_example_go", disabled=example is None):
            incoming.append((example, examples[example].read_bytes()))
    log = list(state.get(state.UPLOADS))
    seen = set()
    for u in log:
        sig = getattr(u, "signature", None)
        seen.add(sig)
        if isinstance(sig, tuple) and sig[0] == "together" and isinstance(sig[1], tuple):  # its files count as read
            seen.update(sig[1])
    # ONNX files selected together with a labels CSV (file + label columns) are read as one upload,
    # as a zip of those files would be; every other file is read on its own
    together = uploads_mod.onnx_batch(incoming)
    units = []  # (name shown, name read as, bytes, signature, id prefix)
    superseded: dict[tuple, list] = {}  # a group's signature -> earlier uploads of some of its files
    for i, (fname, raw) in enumerate(incoming):
        sig = (fname, len(raw), hashlib.sha1(raw).hexdigest())
        if i not in together:
            if sig not in seen:
                units.append((fname, fname, raw, sig, f"upload:{fname}"))
        elif i == together[0]:
            members = [incoming[j] for j in together]
            sigs = tuple(sorted((n, len(r), hashlib.sha1(r).hexdigest()) for n, r in members))
            if ("together", sigs) not in seen:
                # files of this group read before (alone, or in a smaller group): the group replaces them
                superseded[("together", sigs)] = [
                    u for u in log if u.signature in set(sigs)
                    or (isinstance(u.signature, tuple) and u.signature[0] == "together" and set(u.signature[1]) & set(sigs))]
                tables = [n for n, _ in members if not n.lower().endswith(".onnx")]
                tables.sort(key=lambda n: n.lower() != "labels.csv")  # the one read as the labels first
                shown = f"{', '.join(tables)} + {len(members) - len(tables)} ONNX file(s)"
                stem = tables[0].rsplit(".", 1)[0]
                units.append((shown, f"{stem}.zip", uploads_mod.zip_files(members), ("together", sigs),
                              f"upload:{tables[0]}"))
    fresh = False
    for shown, read_as, raw, sig, prefix in units:
        with st.status(f"Reading {shown}…", expanded=True) as status:
            bar = st.progress(0.0)
            outcome = studio.parse_upload(raw, read_as, callback=StreamlitProgress(bar))
            if read_as != shown:  # files read together: name them, not the zip they were read as
                outcome.filename = shown
                if len(outcome.errors):
                    outcome.errors["reason"] = outcome.errors["reason"].str.replace(
                        f"could not read {read_as}: ", "", regex=False)
            try:
                earlier = superseded.get(sig, [])
                if earlier:  # their rows go; this read of all the files (with their labels) replaces them
                    cached.set_workspace(studio.without_prefixes(cached.workspace(), [u.id_prefix for u in earlier]))
                    log = [u for u in log if all(u is not e for e in earlier)]
                    state.put(state.UPLOADS, log)  # with the workspace (see below)
                    outcome.warnings.insert(0, "Replaces what was read before from "
                                            + ", ".join(e.filename for e in earlier) + ": the files are read again "
                                            "together with their labels.")
                if cached.workspace().frame["id"].str.startswith(prefix + ":").any():  # same name, new content
                    digest = sig[2] if sig[0] != "together" else hashlib.sha1(repr(sig).encode()).hexdigest()
                    prefix = f"{prefix}#{digest[:6]}"
                part = studio.part_from_upload(outcome, callback=StreamlitProgress(bar), prefix=prefix,
                                               **_score_kwargs())
                outcome.id_prefix = prefix
                if len(part):
                    _add(part, shown)
            except Exception as exc:  # noqa: BLE001 - the session keeps its other data
                outcome.errors = pd.concat([outcome.errors, pd.DataFrame(
                    [{"row": None, "field": "file", "reason": f"could not score the architectures: {exc}",
                      "file": ""}])], ignore_index=True)
                outcome.dataset = None
            outcome.signature = sig
            # the log is stored right after the workspace changes, with no Streamlit call between:
            # a rerun (a click, a page change) stops this loop at its next st.* call, and a file
            # whose rows were added but not logged would be read and added again
            log.append(outcome)
            state.put(state.UPLOADS, log)
            seen.add(sig)
            status.update(label=outcome.summary(), state="complete" if outcome.ok_rows else "error")
            fresh = True
    if fresh:  # once more, so the page (its counts, the "Added" message) shows the new workspace
        st.rerun()
    for i, u in enumerate(reversed(log)):
        ok = u.ok_rows > 0
        with st.expander(("✅ " if ok and u.errors.empty else "⚠️ " if ok else "❌ ") + u.summary(),
                         expanded=not ok or not u.errors.empty):
            if not ok:
                st.error(f"Nothing could be loaded from {u.filename}; see the reasons below. "
                         "Your other data is unaffected.")
            for w in u.warnings:
                st.warning(w)
            if len(u.errors):
                st.caption("Rows are numbered as lines of the file (a CSV header is row 1).")
                st.dataframe(u.errors, hide_index=True, key=f"data_upload_errors_{i}")
            elif ok:
                st.success("Every row was read.")

# --- the combined table --------------------------------------------------------------------------
st.subheader("All architectures in this session")
ws = cached.workspace()
if len(ws) == 0:
    st.info("The workspace is empty.")
    st.stop()
table = studio.architecture_table(ws)
c = st.columns([2, 2, 2])
fams = c[0].multiselect("Family", sorted(table["family"].unique()), key="data_filter_family")
srcs = c[1].multiselect("Source", sorted(table["source"].unique()), key="data_filter_source")
query = c[2].text_input("Id contains", key="data_filter_query")
view = table
if fams:
    view = view[view["family"].isin(fams)]
if srcs:
    view = view[view["source"].isin(srcs)]
if query:
    view = view[view["id"].str.contains(query, case=False, regex=False)]
st.caption(f"{len(view):,} of {len(table):,} architectures. Click a row to select it.")
event = widgets.table(view, "data_table", select="single-row", height=420)
picked = widgets.selected_row_ids(event, view)
if picked:
    state.select(picked[0])
    if st.button(f"Open {picked[0]} on the Architecture page", key="data_open"):
        st.switch_page("app_pages/architecture.py")
st.download_button("Download this table (CSV)", cached.csv_bytes(view), "architectures.csv",
                   "text/csv", key="data_download")

if state.get(state.WORKSPACE) is not None and st.button("Reset to the default data", key="data_reset"):
    for key in (state.WORKSPACE, state.TSNE_OVERRIDE, state.SELECTED, state.COMPARE):
        state.put(key, None)
    state.put(state.UPLOADS, [])
    state.put(state.ADDED, [])
    state.put(state.MAP_SELECTION, [])
    st.session_state[UPLOADER_GEN] = int(st.session_state.get(UPLOADER_GEN, 0)) + 1
    state.flash("info", "The workspace is back to the default data.")
    st.rerun()
