"""Cached engine calls (bounded) and the session's active workspace / model.

* :func:`default_predictor` — the shipped checkpoint, loaded once per process
  (``st.cache_resource``); **read-only**: never fine-tune or modify it (fine-tuning deep-copies).
* :func:`default_predictor` reads ``$GENNAPE_STUDIO_CHECKPOINT`` (a checkpoint folder) when set.
* :func:`default_workspace` — ``assets/default_workspace.npz`` (or ``$GENNAPE_STUDIO_WORKSPACE``),
  loaded once per process; when the file is missing a small live workspace is built instead.
* :func:`workspace` / :func:`active_predictor` — what *this* session sees.
* :func:`cg_for` — CGs rebuilt from (family, spec) for the architectures a user opens.
* :func:`ranking_metrics`, :func:`csv_bytes` — derived values cached by content hash, so a
  rerun on unchanged data (any widget change) does not recompute them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import streamlit as st

from app.ui import state
from engine import studio
from engine.graphs.cg import CG

#: rows of the embedded NB-201 set used when no workspace file is shipped (keeps startup short)
FALLBACK_LIMIT = 1500
FALLBACK_SAMPLES = 8


def workspace_path() -> Path:
    env = os.environ.get("GENNAPE_STUDIO_WORKSPACE")
    return Path(env) if env else studio.default_asset_path()


@st.cache_resource(max_entries=1, show_spinner="Loading the GENNAPE checkpoint…")
def default_predictor() -> tuple[Any, str]:
    """``(predictor, "")`` or ``(None, reason)``; the predictor is shared by every session."""
    import engine.model as model

    env = os.environ.get("GENNAPE_STUDIO_CHECKPOINT")  # a checkpoint folder instead of the shipped one
    try:
        pred = model.GennapePredictor.load(env) if env else model.load_default()
    except Exception as exc:  # noqa: BLE001 - a bad checkpoint becomes a message on the page
        return None, f"the {'checkpoint ' + env if env else 'shipped checkpoint'} could not be loaded: {exc}"
    return pred, ""


@st.cache_resource(max_entries=2, show_spinner="Loading the default workspace…")
def default_workspace(path: str) -> tuple[studio.Workspace, str]:
    """``(workspace, note)``: the shipped workspace file, else a small live build (note says so)."""
    p = Path(path)
    if p.exists():
        try:
            return studio.load_workspace(p), ""
        except (OSError, ValueError) as exc:
            note = f"The workspace file {p.name} could not be read ({exc}); built a small one instead."
    else:
        note = (f"No prebuilt workspace file ({p.name}); showing a small live sample instead. "
                "Build the full default with `python -m engine studio-assets`.")
    predictor, why = default_predictor()
    try:
        from engine.data import load_default

        ds = load_default(with_cgs=False)
        ws = studio.build_default_workspace(predictor, dataset=ds, limit=FALLBACK_LIMIT,
                                            samples_per_family=FALLBACK_SAMPLES, tsne=False) \
            if predictor is not None else _unscored_default(ds)
    except Exception as exc:  # noqa: BLE001 - the app must still open
        return studio.empty_workspace(), f"{note} That failed too: {exc}"
    if predictor is None:
        note += f" No model is loaded ({why}), so architectures are not scored."
    return ws, note


def _unscored_default(ds: Any) -> studio.Workspace:
    import numpy as np

    from engine import families

    rng = np.random.default_rng(0)
    if len(ds) > FALLBACK_LIMIT:
        ds = ds.subset(np.sort(rng.choice(len(ds), FALLBACK_LIMIT, replace=False)))
    parts = [studio.part_from_dataset(ds, source="benchmark", prefix=ds.name)]
    for name in families.names():
        try:
            parts.append(studio.part_from_dataset(studio.sample_dataset(name, FALLBACK_SAMPLES, 0), source="sample",
                                                  prefix=f"sample:{name}"))
        except Exception:  # noqa: BLE001, S112 - a family still in progress must not block the app
            continue
    return studio.concat_parts(parts)


def workspace() -> studio.Workspace:
    """This session's workspace (the shared default until the session adds data)."""
    ws = state.get(state.WORKSPACE)
    if ws is None:
        ws = default_workspace(str(workspace_path()))[0]
    return ws


def workspace_note() -> str:
    """Why the shared default workspace is not the full shipped one ("" when it is, or when this
    session works on its own workspace)."""
    if state.get(state.WORKSPACE) is not None:
        return ""
    return default_workspace(str(workspace_path()))[1]


def set_workspace(ws: studio.Workspace) -> None:
    state.put(state.WORKSPACE, ws)
    state.put(state.TSNE_OVERRIDE, None)


def base_predictor() -> tuple[Any, str]:
    """The session's base model: one injected for the session, else the shared shipped one."""
    pred = state.get(state.PREDICTOR)
    if pred is not None:
        return pred, ""
    return default_predictor()


def active_predictor() -> tuple[Any, str]:
    """The model that scores new data: the session's fine-tuned copy when chosen, else the base."""
    ft = state.get(state.FINETUNE)
    if ft is not None and state.get(state.USE_FINETUNED):
        return ft.model, ""
    return base_predictor()


@st.cache_resource(max_entries=256, show_spinner=False)
def cg_for(family: str, spec: str, options: tuple = ()) -> CG:
    """CG of :func:`engine.studio.rebuild_key`'s ``(family, spec text, to_cg options)``; shared
    between sessions — treat as read-only."""
    return studio.build_cg(family, spec, dict(options))


def cg_of(ws: studio.Workspace, arch_id: str) -> CG:
    """:func:`engine.studio.cg_of`, cached."""
    if arch_id in ws.cgs:
        return ws.cgs[arch_id]
    return cg_for(*studio.rebuild_key(ws, arch_id))


@st.cache_resource(max_entries=4, show_spinner="Preparing the score reference…")
def _reference(model: str, ids: tuple[str, ...], _ws: studio.Workspace, _predictor: Any) -> Any:
    return studio.workspace_reference(_ws, _predictor, cg_lookup=lambda a: cg_of(_ws, a))


def score_reference(ws: studio.Workspace, predictor: Any) -> Any:
    """The fixed reference population that puts new scores on the workspace's scale (the
    rows listed in ``ws.meta["reference_ids"]``); None when there is none."""
    ids = tuple(i for i in ws.meta.get("reference_ids", []) if i in ws)
    if predictor is None or not ids or not hasattr(predictor, "reference"):
        return None
    return _reference(studio.model_key(predictor), ids, ws, predictor)


def stale_scores_note(ws: studio.Workspace, predictor: Any) -> str:
    """A warning when the workspace was scored by another checkpoint than the loaded one (new
    uploads would then be scored on a different scale); "" when they match or it is unknown."""
    built_with = ws.meta.get("model_key")
    if not built_with or predictor is None:
        return ""
    current = studio.model_key(predictor)
    if current == built_with or current.startswith(type(predictor).__name__ + "-"):
        return ""
    return ("The default workspace was scored by a different checkpoint than the one loaded now, so scores of "
            "architectures you add are not directly comparable with it. Rebuild it with "
            "`python -m engine studio-assets`.")


@st.cache_data(max_entries=16, show_spinner=False)
def _ranking_metrics(key: str, _ws: studio.Workspace, column: str = "score"):
    return studio.ranking_metrics(_ws, column=column)


def ranking_metrics(ws: studio.Workspace, column: str = "score"):
    """``studio.ranking_metrics`` cached by the content of the columns it reads."""
    cols = ["id", "dataset", "family", "provenance", column, "label"]
    return _ranking_metrics(studio.frame_fingerprint(ws.frame, cols) + column, ws, column)


@st.cache_data(max_entries=8, show_spinner=False)
def _csv_bytes(key: str, _frame) -> bytes:
    return _frame.to_csv(index=False).encode()


def csv_bytes(frame) -> bytes:
    """``frame.to_csv`` bytes for a download button, cached by content."""
    return _csv_bytes(studio.frame_fingerprint(frame), frame)


@st.cache_data(max_entries=4, show_spinner=False)
def _reference_jsonl(key: tuple, _ws: studio.Workspace) -> bytes:
    return studio.reference_jsonl(_ws, cg_lookup=lambda a: cg_of(_ws, a))


def reference_jsonl(ws: studio.Workspace) -> bytes:
    """:func:`engine.studio.reference_jsonl` (``python -m engine predict --reference``), cached by
    the reference ids and their specs."""
    ids = tuple(i for i in ws.meta.get("reference_ids", []) if i in ws)
    specs = studio.frame_fingerprint(ws.frame[ws.frame["id"].isin(set(ids))], ["id", "family", "spec", "dataset"])
    return _reference_jsonl((ids, specs), ws)
