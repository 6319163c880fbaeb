"""Engine-side orchestration for GENNAPE Studio (the Streamlit app); never imports streamlit.

The app works on one :class:`Workspace` per browser session: a table of architectures (one row
each) with everything the pages show — family, spec, label and its provenance, FLOPs, params,
the GENNAPE score with each ensemble member's score, the Fuzzy C-Means memberships, a 2-D
t-SNE and PCA map of the encoder embeddings — plus the embeddings themselves (nearest
neighbours, placing new points on the map).

A workspace is treated as **immutable**: :func:`extend` returns a new one, so the shared default
(cached once per process) is never changed by a session's uploads.

The default view (the embedded NB-201 labels + samples of every family, scored by the shipped
checkpoint) would take minutes to build cold, so :func:`build_default_workspace` runs offline
(``python -m engine studio-assets``) and :func:`save_workspace` writes it as a compressed
``.npz`` (numbers, strings as fixed-width unicode arrays) plus a JSON sidecar (provenance, model
card, metadata) — never pickle.  CGs are rebuilt lazily (:func:`cg_of`) only for the
architectures a user opens.

Frame columns (see :data:`CORE_COLUMNS`): ``id`` (unique in the workspace), ``name``, ``family``,
``spec`` (normalised spec text, ``Family.spec_text``, "" for CG-only rows), ``source`` (benchmark / sample / upload),
``dataset``, ``provenance`` (one-line label provenance), ``label`` (accuracy %, NaN if unknown),
``flops``, ``params``, ``score``, ``cluster`` (-1 when unscored), ``entropy`` (normalised FCM
membership entropy in [0, 1]; high = the architecture sits between clusters, i.e. unfamiliar),
``novelty`` (embedding distance to the nearest training CG over the training CGs' 99th percentile,
:mod:`engine.model.domain`: > 1 = outside the checkpoint's training domain; NaN if unknown),
``tsne_x``/``tsne_y``/``pca_x``/``pca_y``; then ``membership_<j>`` and ``member_<name>`` columns.
"""

from __future__ import annotations

import copy
import json
import math
import re
import time
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd

from engine.graphs.cg import CG

Callback = Callable[[str, int, int, dict], None]

WORKSPACE_FORMAT = "gennape-studio-workspace"
WORKSPACE_VERSION = 1
DEFAULT_ASSET = "default_workspace.npz"
SOURCES = ("benchmark", "sample", "upload")
STRING_COLUMNS = ("id", "name", "family", "spec", "source", "dataset", "provenance")
NUMERIC_COLUMNS = ("label", "flops", "params", "score", "cluster", "entropy", "novelty", "tsne_x", "tsne_y", "pca_x",
                   "pca_y")
CORE_COLUMNS = STRING_COLUMNS + NUMERIC_COLUMNS
MEMBERSHIP_PREFIX = "membership_"
MEMBER_PREFIX = "member_"
#: workspace ``meta`` key: dataset name -> the family ``to_cg`` options its rows were built with
CG_OPTIONS = "cg_options"
#: predictor output columns that are not ensemble-member scores
_NOT_MEMBERS = {"score", "flops", "params", "cluster", "id", "row", "entropy", "novelty"}


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

class ScoringModel(Protocol):
    """What the studio needs from a model: :class:`engine.model.predictor.GennapePredictor` (the
    tests use a small stand-in with the same signatures).  Optional, checked with ``hasattr``:
    ``reference(cgs)`` (a fixed population for comparable scores), ``novelty_from_embeddings(h)``
    and ``state_dict()`` (a content key for caches)."""

    model_card: Mapping[str, Any]

    def predict(self, cgs: Sequence[CG], callback: Callback | None = None, reference: Any = None
                ) -> pd.DataFrame: ...

    def predict_with_embeddings(self, cgs: Sequence[CG], callback: Callback | None = None, reference: Any = None
                                ) -> tuple[pd.DataFrame, np.ndarray]: ...

    def finetune(self, cgs: Sequence[CG], acc: Any, k: int | None = None, seed: int = 0,
                 callback: Callback | None = None, *, epochs: int | None = None,
                 selection: str | None = None) -> ScoringModel: ...


def _notify(callback: Callback | None, stage: str, step: int, total: int, metrics: dict | None = None) -> None:
    if callback is not None:
        callback(stage, step, total, metrics or {})


def to_numpy(x: Any) -> np.ndarray:
    """A float numpy array from a numpy array, a torch tensor or a list."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x, dtype=np.float32)


def membership_entropy(u: np.ndarray) -> np.ndarray:
    """Normalised Shannon entropy of each membership row: 0 = fully in one cluster, 1 = spread
    evenly over all ``K`` clusters (GENNAPE's signal that an architecture is unlike the training
    families).  Rows of NaN give NaN.

    >>> membership_entropy(np.array([[1.0, 0.0], [0.5, 0.5]])).round(3).tolist()
    [0.0, 1.0]
    """
    u = np.asarray(u, dtype=np.float64)
    if u.ndim != 2 or u.shape[1] < 2:
        return np.zeros(len(u)) if u.ndim == 2 else np.array([])
    p = np.clip(u, 1e-12, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    h = -(p * np.log(p)).sum(axis=1) / math.log(u.shape[1])
    h[~np.isfinite(u).all(axis=1)] = np.nan
    return np.clip(h, 0.0, 1.0)


def novelty_verdict(novelty: float) -> str:
    """One sentence on what an architecture's ``novelty`` means for its score.

    >>> novelty_verdict(0.4).startswith("Inside")
    True
    """
    if not np.isfinite(novelty):
        return "Novelty is unknown: the model has no training-domain reference."
    if novelty <= 1.0:
        return ("Inside the training domain: as close to a training architecture as 99% of the training "
                "architectures are to their nearest neighbour. Where the model has an in-domain ensemble, the score "
                "here comes from the learned members validated on the training families.")
    return (f"Outside the training domain ({novelty:.1f}x the distance within which 99% of the training "
            "architectures have a neighbour): the learned members extrapolate here, so the zero-shot score comes "
            "from the FLOPs, params and graph-statistics members, which do not read the embedding; the Home "
            "page's evidence table says how far to trust them.")


def finetune_advice(metrics: pd.DataFrame, train_novelty: Any = None, selection: str | None = None) -> str:
    """A warning when fine-tuning lowered the held-out SRCC (``metrics``: a ``metric, before,
    after`` table), naming the likely cause when the fine-tuning architectures lie inside the
    base model's training domain (``train_novelty`` <= 1) and what to do about it given the
    ``selection`` the fine-tuning used (``"paper"`` / ``"cv"``); "" otherwise.

    >>> finetune_advice(pd.DataFrame({"metric": ["srcc"], "before": [0.9], "after": [0.95]}))
    ''
    """
    if metrics is None or not len(metrics) or "srcc" not in set(metrics["metric"]):
        return ""
    r = metrics[metrics["metric"] == "srcc"].iloc[0]
    before, after = float(r["before"]), float(r["after"])
    if not (np.isfinite(before) and np.isfinite(after)) or after >= before:
        return ""
    msg = f"Fine-tuning lowered the held-out SRCC from {before:.3f} to {after:.3f}: keep the base model."
    nov = np.asarray(train_novelty if train_novelty is not None else [], dtype=float)
    nov = nov[np.isfinite(nov)]
    if nov.size and np.mean(nov <= 1.0) >= 0.5:
        msg += (f" {np.mean(nov <= 1.0):.0%} of the fine-tuning architectures lie inside the base model's training "
                "domain, where its in-domain members already rank well")
        if selection == "paper":
            msg += ("; with the paper's weights a few samples re-train its heads and the fine-tuned ensemble drops "
                    "the in-domain members. Use the Auto or Cross-validated weights, which keep the base model "
                    "unless fine-tuning ranks held-out samples better (README: `scripts/finetune_in_domain.py`).")
        else:
            msg += ("; the cross-validated check on the fine-tuning samples judged the fine-tuned ensemble better, "
                    "but it does not rank these held-out architectures better: with few samples that check is "
                    "noisy (README: `scripts/finetune_in_domain.py`).")
    return msg


def model_card_dict(predictor: Any) -> dict[str, Any]:
    """The predictor's model card as a plain JSON-able dict (whatever form the engine gives)."""
    if predictor is None:
        return {}
    card = getattr(predictor, "model_card", None)
    if callable(card):
        card = card()
    if card is None:
        return {"model": type(predictor).__name__}
    if isinstance(card, Mapping):
        out = dict(card)
    elif hasattr(card, "to_dict"):
        out = dict(card.to_dict())
    elif hasattr(card, "__dataclass_fields__"):
        from dataclasses import asdict

        out = asdict(card)
    else:
        out = {"description": str(card)}
    return json.loads(json.dumps(out, default=str))


def score_composition(card: Mapping[str, Any] | None) -> str:
    """One plain paragraph on how the model card's ``score`` is made: which members score which
    architectures (the in-domain gate), and what its values mean ("" without a card)."""
    card = card or {}
    members = [str(m) for m in card.get("members_in_score") or []]
    if not members:
        return ""
    gate = card.get("in_domain_gate") if isinstance(card.get("in_domain_gate"), Mapping) else {}
    inside = [str(m) for m in gate.get("in_domain_members") or []] if gate.get("adopted") else []
    fams = ", ".join(str(f) for f in card.get("source_families") or []) or "its training families"
    if inside:
        text = (f"Architectures inside the checkpoint's training domain (novelty ≤ 1: close to the {fams} "
                f"architectures it was trained on) are scored by equal weights over its learned members "
                f"{', '.join(inside)}, validated on cells of those families it never saw. All others are scored by "
                f"{', '.join(members)}, the members that ranked families it had never seen best "
                "(leave-one-family-out).")
    else:
        text = f"Every architecture is scored by {', '.join(members)}."
    text += (" The combined order is then mapped onto the model's own accuracy predictions, so a score "
             "reads like a predicted accuracy on the scale of the checkpoint's labels; it means that only for "
             "architectures inside the training domain and of the labels' task. Elsewhere, read it as a ranking.")
    floor = card.get("min_acc")
    if isinstance(floor, int | float) and not isinstance(floor, bool) and math.isfinite(floor):
        text += (f" The model learned only from architectures with accuracy ≥ {floor:g}%: it neither predicts nor "
                 "ranks architectures that train far worse: they score like its weakest training architectures.")
    return text


def zero_shot_evidence(card: Mapping[str, Any] | None) -> pd.DataFrame:
    """What the model card measured about ranking *unseen* families, one row per target:
    ``check, target`` then SRCC and NDCG@10 of the shipped ``score``, FLOPs and params, and
    ``beats_both`` (score above both baselines on both metrics).  Reads the card's
    leave-one-family-out entries (those of an adopted ``in_domain_gate``, else
    ``ensemble_selection.lofo_member_metrics``), the gate's held-out NB-201 cells, and the
    hand-designed check (``zoo_check``); empty when the card has none."""
    cols = ["check", "target", "score SRCC", "FLOPs SRCC", "params SRCC", "score NDCG@10", "FLOPs NDCG@10",
            "params NDCG@10", "beats_both"]
    rows: list[dict[str, Any]] = []
    card = card or {}
    sel = card.get("ensemble_selection") if isinstance(card.get("ensemble_selection"), Mapping) else {}
    lofo = sel.get("lofo_member_metrics") if isinstance(sel.get("lofo_member_metrics"), list) else []
    by_target: dict[str, dict[str, Mapping[str, Any]]] = {}
    for r in lofo:
        if isinstance(r, Mapping) and {"target", "method"} <= set(r):
            by_target.setdefault(str(r["target"]), {})[str(r["method"])] = r
    names = {"score": "score", "FLOPs": "flops_baseline", "params": "params_baseline"}
    gate = card.get("in_domain_gate") if isinstance(card.get("in_domain_gate"), Mapping) else {}
    gated = gate.get("adopted") is True and isinstance(gate.get("lofo"), list)
    if gated:  # the shipped score is the gated one: its own leave-one-family-out numbers
        for r in gate["lofo"]:
            if isinstance(r, Mapping) and "target" in r:
                row = {"check": "leave one family out", "target": str(r["target"])}
                for label, key in (("score", "gated"), ("FLOPs", "FLOPs"), ("params", "params")):
                    row[f"{label} SRCC"] = _num(r.get(f"SRCC {key}"))
                    row[f"{label} NDCG@10"] = _num(r.get(f"NDCG@10 {key}"))
                rows.append(row)
    for target, methods in ({} if gated else by_target).items():
        if not all(m in methods for m in names.values()):
            continue
        row: dict[str, Any] = {"check": "leave one family out", "target": target}
        for label, m in names.items():
            row[f"{label} SRCC"] = _num(methods[m].get("srcc"))
            row[f"{label} NDCG@10"] = _num(methods[m].get("ndcg@10"))
        rows.append(row)
    fam = gate.get("in_family_heldout_nb201") if gated and isinstance(gate.get("in_family_heldout_nb201"),
                                                                       Mapping) else {}
    if "SRCC FLOPs" in fam:
        row = {"check": "training family, unseen cells", "target": "nb201"}
        for label, key in (("score", "gated"), ("FLOPs", "FLOPs"), ("params", "params")):
            row[f"{label} SRCC"] = _num(fam.get(f"SRCC {key}"))
            row[f"{label} NDCG@10"] = _num(fam.get(f"NDCG@10 {key}"))
        rows.append(row)
    zoo = card.get("zoo_check") if isinstance(card.get("zoo_check"), Mapping) else {}
    met = zoo.get("metrics") if isinstance(zoo.get("metrics"), Mapping) else {}
    if all(isinstance(met.get(m), Mapping) for m in names):
        row = {"check": "hand-designed ImageNet networks", "target": "zoo"}
        for label in names:
            row[f"{label} SRCC"] = _num(met[label].get("srcc"))
            row[f"{label} NDCG@10"] = _num(met[label].get("ndcg10"))
        rows.append(row)
    for row in rows:
        # a missing value (NaN) never counts as beaten
        row["beats_both"] = bool(all(row[f"score {k}"] > row[f"{b} {k}"] for k in ("SRCC", "NDCG@10")
                                     for b in ("FLOPs", "params")))
    return pd.DataFrame(rows, columns=cols)


def _num(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def model_key(predictor: Any) -> str:
    """A short string that identifies a predictor's weights (cache keys, staleness checks):
    an id from the model card, else a hash of its ``state_dict()`` and its ensemble weights (a
    fine-tuned copy that kept the base networks still combines them differently)."""
    if predictor is None:
        return "none"
    card = model_card_dict(predictor)
    for key in ("checkpoint_hash", "hash", "fingerprint", "id"):
        if card.get(key):
            return str(card[key])
    if hasattr(predictor, "state_dict"):
        import hashlib

        h = hashlib.sha256()
        try:
            for name, t in sorted(predictor.state_dict().items()):
                h.update(name.encode())
                h.update(t.detach().cpu().numpy().tobytes() if hasattr(t, "detach") else np.asarray(t).tobytes())
            weights = getattr(predictor, "weights", None)
            if isinstance(weights, Mapping) and weights:
                h.update(json.dumps({str(k): float(v) for k, v in weights.items()}, sort_keys=True).encode())
            return "sha-" + h.hexdigest()[:16]
        except Exception:  # noqa: BLE001 - an unfitted model has no weights yet
            pass
    return f"{type(predictor).__name__}-{id(predictor)}"


def make_reference(predictor: ScoringModel | None, cgs: Sequence[CG]) -> Any:
    """The predictor's fixed reference population for comparable scores across calls
    (``predictor.reference(cgs)``), or None for predictors whose scores are absolute and for a
    population that ranks nothing (fewer than two architectures the model tells apart: the scores
    are then relative to the scored set, as without a reference)."""
    if predictor is None or not hasattr(predictor, "reference") or len(cgs) == 0:
        return None
    from engine.model.ensemble import DegenerateReference

    try:
        return predictor.reference(cgs)
    except DegenerateReference:
        return None


# ---------------------------------------------------------------------------------------------
# the workspace
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Workspace:
    """Architectures the app shows (see the module docstring).  Read-only by convention:
    build a new one with :func:`extend` / :func:`concat_parts`.

    * ``frame``: one row per architecture (:data:`CORE_COLUMNS` + membership / member columns).
    * ``embedding``: ``(n, d)`` float32 encoder embeddings in frame order, or None (no model).
    * ``cgs``: CGs that cannot be rebuilt from ``(family, spec)`` (uploaded ONNX / CG files).
    * ``provenances``: one-line provenance label -> :meth:`Provenance.to_dict`.
    * ``model_card``: the scoring model's card; ``meta``: projection settings, build info.
    * ``pca``: ``(mean (d,), components (2, d))`` so new points are projected exactly.
    """

    frame: pd.DataFrame
    embedding: np.ndarray | None = None
    cgs: Mapping[str, CG] = field(default_factory=dict)
    provenances: Mapping[str, dict] = field(default_factory=dict)
    model_card: Mapping[str, Any] = field(default_factory=dict)
    meta: Mapping[str, Any] = field(default_factory=dict)
    pca: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def __repr__(self) -> str:
        fams = self.frame["family"].nunique() if len(self.frame) else 0
        return (f"Workspace({len(self)} architectures, {fams} families, {self.num_labelled} labelled, "
                f"scored={self.has_scores}, embedding={None if self.embedding is None else self.embedding.shape})")

    @cached_property
    def _index(self) -> dict[str, int]:
        return {a: i for i, a in enumerate(self.frame["id"].tolist())}

    def index_of(self, arch_id: str) -> int:
        """Row position of ``arch_id``; ``KeyError`` naming it when absent."""
        try:
            return self._index[str(arch_id)]
        except KeyError:
            raise KeyError(f"architecture {arch_id!r} is not in this workspace") from None

    def __contains__(self, arch_id: object) -> bool:
        return str(arch_id) in self._index

    def row(self, arch_id: str) -> pd.Series:
        return self.frame.iloc[self.index_of(arch_id)]

    @property
    def num_labelled(self) -> int:
        return int(np.isfinite(self.frame["label"].to_numpy(dtype=float)).sum()) if len(self) else 0

    @property
    def has_scores(self) -> bool:
        return len(self) > 0 and bool(np.isfinite(self.frame["score"].to_numpy(dtype=float)).any())

    @property
    def has_embedding(self) -> bool:
        return self.embedding is not None and len(self.embedding) == len(self) and len(self) > 0

    @property
    def has_map(self) -> bool:
        return len(self) > 0 and bool(np.isfinite(self.frame["pca_x"].to_numpy(dtype=float)).any())

    @property
    def membership_columns(self) -> list[str]:
        cols = [c for c in self.frame.columns if c.startswith(MEMBERSHIP_PREFIX)]
        return sorted(cols, key=lambda c: int(c[len(MEMBERSHIP_PREFIX):]) if c[len(MEMBERSHIP_PREFIX):].isdigit() else 0)

    @property
    def member_columns(self) -> list[str]:
        return [c for c in self.frame.columns if c.startswith(MEMBER_PREFIX)]

    @property
    def num_clusters(self) -> int:
        return len(self.membership_columns)

    def memberships(self) -> np.ndarray:
        cols = self.membership_columns
        return self.frame[cols].to_numpy(dtype=float) if cols else np.zeros((len(self), 0))


def empty_frame() -> pd.DataFrame:
    """A workspace frame with the core columns and no rows."""
    data: dict[str, Any] = {c: pd.Series([], dtype=object) for c in STRING_COLUMNS}
    data.update({c: pd.Series([], dtype=float) for c in NUMERIC_COLUMNS})
    return pd.DataFrame(data)


def empty_workspace(model_card: Mapping[str, Any] | None = None) -> Workspace:
    return Workspace(empty_frame(), None, {}, {}, dict(model_card or {}), {})


def _normalise_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Core columns present with the right dtypes, in a stable order."""
    frame = frame.reset_index(drop=True).copy()
    for c in STRING_COLUMNS:
        if c not in frame.columns:
            frame[c] = ""
        frame[c] = frame[c].map(lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    for c in NUMERIC_COLUMNS:
        if c not in frame.columns:
            frame[c] = -1.0 if c == "cluster" else np.nan
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    frame["cluster"] = frame["cluster"].fillna(-1).astype(int)
    extra = [c for c in frame.columns if c not in CORE_COLUMNS]
    memb = sorted((c for c in extra if c.startswith(MEMBERSHIP_PREFIX)),
                  key=lambda c: int(c[len(MEMBERSHIP_PREFIX):]) if c[len(MEMBERSHIP_PREFIX):].isdigit() else 0)
    members = [c for c in extra if c.startswith(MEMBER_PREFIX)]
    for c in memb + members:
        frame[c] = pd.to_numeric(frame[c], errors="coerce").astype(float)
    return frame[list(CORE_COLUMNS) + memb + members]


# ---------------------------------------------------------------------------------------------
# scoring
# ---------------------------------------------------------------------------------------------

def score_cgs(predictor: ScoringModel, cgs: Sequence[CG], callback: Callback | None = None,
              chunk: int | None = None, reference: Any = None) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Run ``predictor`` over ``cgs``: a frame with ``score``, ``cluster``, ``entropy``,
    ``novelty`` (when the predictor has ``novelty_from_embeddings``), ``membership_<j>`` and
    ``member_<name>`` columns, and the ``(n, d)`` embeddings (None for no CGs), from one
    ``predictor.predict_with_embeddings`` pass per chunk.  ``chunk`` bounds how many CGs go to the
    model at once; the chunks are comparable only with a fixed ``reference`` (:func:`make_reference`)."""
    n = len(cgs)
    if n == 0:
        return pd.DataFrame({"score": np.zeros(0), "cluster": np.zeros(0, int), "entropy": np.zeros(0)}), None
    step = chunk or n
    frames, embs = [], []
    for start in range(0, n, step):
        part = cgs[start:start + step] if hasattr(cgs, "__getitem__") else list(cgs)[start:start + step]
        if not isinstance(part, Sequence) or isinstance(part, str):
            part = list(part)
        sub_cb = None
        if callback is not None:
            def sub_cb(stage, s, t, m=None, _o=start):  # progress over the whole set
                callback(stage, _o + int(s * min(step, n - _o) / max(t, 1)), n, m or {})
        out, h = predictor.predict_with_embeddings(part, callback=sub_cb, reference=reference)  # one encoder pass
        embs.append(to_numpy(h))
        frames.append(_prediction_frame(out, len(part)))
        _notify(callback, "score", min(start + step, n), n)
    scores = pd.concat(frames, ignore_index=True)
    memb_cols = [c for c in scores.columns if c.startswith(MEMBERSHIP_PREFIX)]
    u = scores[memb_cols].to_numpy(dtype=float) if memb_cols else np.zeros((n, 0))
    if "cluster" not in scores.columns:
        scores["cluster"] = u.argmax(axis=1) if u.shape[1] else -1
    scores["entropy"] = membership_entropy(u) if u.shape[1] >= 2 else 0.0
    emb = np.concatenate(embs).astype(np.float32) if embs else None
    if emb is not None and len(emb) != n:
        raise ValueError(f"predictor.embed returned {len(emb)} rows for {n} CGs")
    if emb is not None and hasattr(predictor, "novelty_from_embeddings"):
        scores["novelty"] = np.asarray(predictor.novelty_from_embeddings(emb), dtype=float).reshape(-1)
    return scores, emb


def _prediction_frame(out: Any, n: int) -> pd.DataFrame:
    """Normalise a predictor's output to score / cluster / membership_* / member_* columns."""
    if isinstance(out, pd.DataFrame):
        df = out.reset_index(drop=True)
    elif isinstance(out, Mapping):
        df = pd.DataFrame({k: to_numpy(v).ravel() for k, v in out.items()})
    else:
        df = pd.DataFrame({"score": to_numpy(out).ravel()})
    if len(df) != n:
        raise ValueError(f"predictor returned {len(df)} rows for {n} CGs")
    if "score" not in df.columns:
        raise ValueError(f"predictor output has no 'score' column (columns: {list(df.columns)})")
    res = pd.DataFrame({"score": pd.to_numeric(df["score"], errors="coerce").astype(float)})
    if "cluster" in df.columns:
        res["cluster"] = pd.to_numeric(df["cluster"], errors="coerce").fillna(-1).astype(int)
    for c in df.columns:
        if c in _NOT_MEMBERS or not pd.api.types.is_numeric_dtype(df[c]):
            continue
        if c.startswith(MEMBERSHIP_PREFIX):
            res[c] = df[c].astype(float)
        else:
            name = c if c.startswith(MEMBER_PREFIX) else f"{MEMBER_PREFIX}{c}"
            res[name] = df[c].astype(float)
    return res


# ---------------------------------------------------------------------------------------------
# parts: rows from datasets, samples and uploads
# ---------------------------------------------------------------------------------------------

def _spec_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return v if isinstance(v, str) else json.dumps(v, sort_keys=True, separators=(",", ":"))


def part_from_dataset(dataset: Any, *, source: str, prefix: str, predictor: ScoringModel | None = None,
                      callback: Callback | None = None, chunk: int | None = 2048, reference: Any = None) -> Workspace:
    """Rows of an :class:`engine.data.ArchDataset` as a (not yet projected) workspace part.

    ``id`` becomes ``f"{prefix}:{id}"``; CG-only rows keep their CG in ``part.cgs``.  Builds the
    CGs (FLOPs / params) and, with a ``predictor``, scores and embeds them.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    store = dataset.build_cgs(callback=callback)
    src = dataset.frame.reset_index(drop=True)
    ids = [f"{prefix}:{i}" for i in src["id"].astype(str)]
    frame = pd.DataFrame({
        "id": ids,
        "name": src["name"].astype(str) if "name" in src.columns else src["id"].astype(str),
        "family": src["family"].astype(str),
        "spec": [_spec_text(s) for s in src["spec"]],
        "source": source,
        "dataset": getattr(dataset, "name", prefix),
        "provenance": src["provenance"].astype(str) if "provenance" in src.columns else "",
        "label": pd.to_numeric(src["label"], errors="coerce").astype(float),
        "flops": pd.to_numeric(src["flops"], errors="coerce").astype(float),
        "params": pd.to_numeric(src["params"], errors="coerce").astype(float),
    })
    cgs = {ids[i]: store[i] for i in range(len(ids)) if not frame.at[i, "spec"]}
    provs = {k: v.to_dict() for k, v in getattr(dataset, "provenances", {}).items()}
    if not np.isfinite(frame["label"].to_numpy()).any():
        frame["provenance"] = ""
        provs = {}
    emb = None
    if predictor is not None and len(frame):
        scores, emb = score_cgs(predictor, store, callback=callback, chunk=chunk, reference=reference)
        for c in scores.columns:
            frame[c] = scores[c].to_numpy()
    opts = dict(getattr(dataset, "cg_options", None) or {})
    meta = {CG_OPTIONS: {str(frame["dataset"].iloc[0]): opts}} if opts and len(frame) else {}
    return Workspace(_normalise_frame(frame), emb, cgs, provs, model_card_dict(predictor), meta)


def sample_dataset(family: str, n: int, seed: int = 0) -> Any:
    """``n`` unlabelled samples of ``family`` as an ArchDataset (ids ``s<seed>-<i>``)."""
    from engine.data.dataset import ArchDataset
    from engine.data.provenance import UNLABELLED
    from engine.families import get

    if n < 1:
        raise ValueError(f"sample size must be >= 1, got {n}")
    fam = get(family)
    specs = fam.sample(int(n), seed=int(seed))
    return ArchDataset.from_specs(f"{fam.name} samples (seed {seed})", fam.name, specs, None, UNLABELLED,
                                  ids=[f"s{seed}-{i}" for i in range(len(specs))])


def concat_parts(parts: Sequence[Workspace], model_card: Mapping[str, Any] | None = None) -> Workspace:
    """Rows of several parts (no projection; duplicate ids keep the first)."""
    parts = [p for p in parts if p is not None and len(p)]
    if not parts:
        return empty_workspace(model_card)
    frame = pd.concat([p.frame for p in parts], ignore_index=True, sort=False)
    keep = ~frame["id"].duplicated().to_numpy()
    dims = {p.embedding.shape[1] for p in parts if p.embedding is not None}
    emb = None
    if len(dims) == 1:  # parts without embeddings (unscored) get NaN rows
        d = dims.pop()
        embs = [p.embedding if p.embedding is not None else np.full((len(p), d), np.nan, np.float32) for p in parts]
        emb = np.concatenate(embs).astype(np.float32)[keep]
    cgs: dict[str, CG] = {}
    provs: dict[str, dict] = {}
    for p in parts:
        cgs.update(p.cgs)
        provs.update(p.provenances)
    card = dict(model_card or next((p.model_card for p in parts if p.model_card), {}))
    return Workspace(_normalise_frame(frame[keep]), emb, cgs, provs, card, _merged_meta(parts[0].meta, parts[1:]),
                     parts[0].pca)


def _merged_meta(meta: Mapping[str, Any], parts: Sequence[Workspace]) -> dict[str, Any]:
    """``meta`` with the :data:`CG_OPTIONS` of ``parts`` added (the rest of ``meta`` is kept)."""
    out = dict(meta)
    opts = dict(meta.get(CG_OPTIONS) or {})
    for p in parts:
        opts.update(p.meta.get(CG_OPTIONS) or {})
    if opts:
        out[CG_OPTIONS] = opts
    return out


# ---------------------------------------------------------------------------------------------
# projections
# ---------------------------------------------------------------------------------------------

def fit_pca(embedding: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """2-D PCA: ``(coords (n, 2), mean (d,), components (2, d))`` (deterministic sign)."""
    x = np.asarray(embedding, dtype=np.float64)
    mean = x.mean(axis=0)
    xc = x - mean
    if len(x) < 2:
        comps = np.eye(2, x.shape[1])
    else:
        _, _, vt = np.linalg.svd(xc, full_matrices=False)
        comps = vt[:2]
        if comps.shape[0] < 2:
            comps = np.vstack([comps, np.zeros((2 - comps.shape[0], x.shape[1]))])
        signs = np.sign(comps[np.arange(2), np.abs(comps).argmax(axis=1)])
        comps = comps * np.where(signs == 0, 1, signs)[:, None]
    return (xc @ comps.T).astype(np.float32), mean.astype(np.float32), comps.astype(np.float32)


def map_sample(groups: Sequence[Any], max_points: int, seed: int = 0, keep: np.ndarray | None = None) -> np.ndarray:
    """Sorted row positions of at most ``max_points`` rows for a map (t-SNE of a subset): every
    ``keep`` row (uploads), then the budget shared out between the ``groups`` (families) so that
    small groups keep all their rows and the large ones share the rest equally (max-min fair), each
    group's rows drawn at random (``seed``).  ``keep`` rows are kept even beyond the budget."""
    g = np.asarray(groups, dtype=object)
    kept = np.zeros(len(g), dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    if len(kept) != len(g):
        raise ValueError(f"map_sample: keep has {len(kept)} entries for {len(g)} rows")
    chosen = [np.flatnonzero(kept)]
    left = max(0, int(max_points) - int(kept.sum()))
    rng = np.random.default_rng(seed)
    members = [np.flatnonzero(~kept & (g == name)) for name in pd.unique(g[~kept])]
    members.sort(key=len)
    for i, rows in enumerate(members):
        take = min(len(rows), left // (len(members) - i))
        chosen.append(rows if take == len(rows) else rng.choice(rows, take, replace=False))
        left -= take
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def tsne_2d(embedding: np.ndarray, perplexity: float = 30.0, seed: int = 0, threads: int | None = None) -> np.ndarray:
    """t-SNE coordinates ``(n, 2)`` with a fixed seed (PCA init; perplexity clamped below n)."""
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    x = np.asarray(embedding, dtype=np.float32)
    n = len(x)
    if n < 4:
        return fit_pca(x)[0]
    perp = float(min(max(perplexity, 2.0), max(2.0, (n - 1) / 3.0)))
    tsne = TSNE(n_components=2, perplexity=perp, random_state=int(seed), init="pca", learning_rate="auto")
    # OpenMP spin-waiting makes small t-SNE runs 10x slower on a busy machine: one thread below 5k points
    limit = threads if threads is not None else (1 if n < 5000 else None)
    with threadpool_limits(limits=limit):
        return tsne.fit_transform(x).astype(np.float32)


def place_by_neighbours(ref_emb: np.ndarray, ref_xy: np.ndarray, new_emb: np.ndarray, k: int = 5) -> np.ndarray:
    """Map positions for new points: inverse-distance average of the ``k`` nearest reference
    points' coordinates in embedding space (t-SNE has no out-of-sample transform)."""
    ref = np.asarray(ref_emb, dtype=np.float32)
    new = np.asarray(new_emb, dtype=np.float32)
    xy = np.asarray(ref_xy, dtype=np.float64)
    ok = np.isfinite(xy).all(axis=1) & np.isfinite(ref).all(axis=1)
    ref, xy = ref[ok], xy[ok]
    if len(ref) == 0:
        return np.full((len(new), 2), np.nan, dtype=np.float32)
    k = max(1, min(k, len(ref)))
    out = np.empty((len(new), 2), dtype=np.float64)
    rn = (ref ** 2).sum(1)
    for s in range(0, len(new), 512):
        blk = new[s:s + 512]
        d2 = np.maximum((blk ** 2).sum(1)[:, None] + rn[None, :] - 2.0 * blk @ ref.T, 0.0)
        nn = np.argpartition(d2, k - 1, axis=1)[:, :k]
        w = 1.0 / (np.sqrt(np.take_along_axis(d2, nn, axis=1)) + 1e-6)
        out[s:s + 512] = (w[:, :, None] * xy[nn]).sum(1) / w.sum(1, keepdims=True)
    return out.astype(np.float32)


def _finite_rows(emb: np.ndarray | None) -> np.ndarray:
    if emb is None:
        return np.zeros(0, dtype=bool)
    return np.isfinite(emb).all(axis=1)


def project_workspace(ws: Workspace, *, perplexity: float = 30.0, seed: int = 0, tsne: bool = True,
                      callback: Callback | None = None) -> Workspace:
    """A copy of ``ws`` with fresh PCA (and t-SNE) coordinates for every embedded row (rows
    without an embedding — unscored uploads — get NaN coordinates)."""
    ok = _finite_rows(ws.embedding)
    if ws.embedding is None or not ok.any():
        return ws
    emb = ws.embedding[ok]
    frame = ws.frame.copy()
    _notify(callback, "pca", 0, 1)
    xy, mean, comps = fit_pca(emb)
    for j, c in enumerate(("pca_x", "pca_y")):
        frame[c] = np.nan
        frame.loc[ok, c] = xy[:, j]
    _notify(callback, "pca", 1, 1)
    meta = dict(ws.meta)
    if tsne:
        _notify(callback, "tsne", 0, 1)
        t0 = time.perf_counter()
        txy = tsne_2d(emb, perplexity, seed)
        for j, c in enumerate(("tsne_x", "tsne_y")):
            frame[c] = np.nan
            frame.loc[ok, c] = txy[:, j]
        meta["tsne"] = {"perplexity": float(perplexity), "seed": int(seed), "n": int(ok.sum()),
                        "seconds": round(time.perf_counter() - t0, 1)}
        _notify(callback, "tsne", 1, 1)
    return Workspace(frame, ws.embedding, ws.cgs, ws.provenances, ws.model_card, meta, (mean, comps))


def without_prefixes(ws: Workspace, prefixes: Iterable[str]) -> Workspace:
    """``ws`` without the rows whose id starts with ``<prefix>:`` for one of ``prefixes`` (an
    upload read again with more files replaces its earlier rows).  ``ws`` itself is not modified."""
    heads = tuple(f"{p}:" for p in prefixes if p)
    if not heads:
        return ws
    drop = ws.frame["id"].astype(str).str.startswith(heads).to_numpy()
    if not drop.any():
        return ws
    keep = np.flatnonzero(~drop)
    frame = ws.frame.iloc[keep].reset_index(drop=True)
    kept = set(frame["id"])
    emb = ws.embedding[keep] if ws.embedding is not None else None
    return replace(ws, frame=frame, embedding=emb, cgs={k: v for k, v in ws.cgs.items() if k in kept})


def extend(ws: Workspace, part: Workspace, *, neighbours: int = 5, tsne_limit: int = 3000) -> Workspace:
    """``ws`` plus the rows of ``part`` (ids already present are skipped).  New rows get exact
    PCA coordinates (the stored components) and t-SNE positions placed by their nearest
    neighbours.  Rows without an embedding (no model) are kept with NaN embedding rows so the
    rest of the map survives.  ``ws`` itself is not modified."""
    if part is None or len(part) == 0:
        return ws
    new = ~part.frame["id"].isin(set(ws.frame["id"])).to_numpy()
    if not new.any():
        return ws
    pframe = part.frame[new].reset_index(drop=True).copy()
    pemb = part.embedding[new] if part.embedding is not None else None
    dim = ws.embedding.shape[1] if ws.embedding is not None else (pemb.shape[1] if pemb is not None else None)
    emb = None
    if dim is not None:
        old = ws.embedding if ws.embedding is not None else np.full((len(ws), dim), np.nan, np.float32)
        if pemb is None or pemb.shape[1] != dim:
            pemb = np.full((len(pframe), dim), np.nan, np.float32)
        emb = np.concatenate([old, pemb]).astype(np.float32)
    frame = _normalise_frame(pd.concat([ws.frame, pframe], ignore_index=True, sort=False))
    cgs = {**ws.cgs, **{k: v for k, v in part.cgs.items() if k in set(pframe["id"])}}
    provs = {**ws.provenances, **part.provenances}
    out = Workspace(frame, emb, cgs, provs, ws.model_card or part.model_card, _merged_meta(ws.meta, [part]), ws.pca)
    if emb is None:
        return out
    okp = _finite_rows(pemb)
    if ws.pca is None or not _finite_rows(ws.embedding).any():  # nothing to place against: project afresh
        return project_workspace(out, tsne=int(_finite_rows(emb).sum()) <= tsne_limit)
    if okp.any():
        rows = np.flatnonzero(okp) + len(ws)
        mean, comps = ws.pca
        pxy = (pemb[okp] - mean) @ comps.T
        frame.loc[rows, "pca_x"], frame.loc[rows, "pca_y"] = pxy[:, 0], pxy[:, 1]
        ref_xy = ws.frame[["tsne_x", "tsne_y"]].to_numpy(dtype=float)
        if np.isfinite(ref_xy).any():
            txy = place_by_neighbours(ws.embedding, ref_xy, pemb[okp], k=neighbours)
            frame.loc[rows, "tsne_x"], frame.loc[rows, "tsne_y"] = txy[:, 0], txy[:, 1]
    return out


# ---------------------------------------------------------------------------------------------
# the default workspace and its asset file
# ---------------------------------------------------------------------------------------------

def build_default_workspace(predictor: ScoringModel, *, dataset: Any = None, samples_per_family: int = 24, seed: int = 0,
                            limit: int | None = None, families: Sequence[str] | None = None,
                            perplexity: float = 30.0, tsne: bool = True, chunk: int = 2048,
                            reference_size: int = 1000, callback: Callback | None = None) -> Workspace:
    """The app's default view: the embedded labelled NB-201 set (``engine.data.load_default``,
    or ``dataset``) + ``samples_per_family`` samples of every family, scored by ``predictor``,
    embedded, clustered and projected (PCA + t-SNE with ``perplexity`` / ``seed``).

    Scores are made comparable with a fixed reference population: ``reference_size`` rows of
    the labelled set (their ids go to ``meta["reference_ids"]`` so the app rebuilds the same
    reference to score uploads).  ``limit`` keeps a deterministic random subset of the labelled
    set (quick builds, tests).
    """
    from engine import families as fam_registry

    if dataset is None:
        from engine.data import load_default

        dataset = load_default()
    rng = np.random.default_rng(seed)
    if limit is not None and len(dataset) > limit:
        dataset = dataset.subset(np.sort(rng.choice(len(dataset), size=int(limit), replace=False)))
    prefix = str(getattr(dataset, "name", "default")).split()[0]
    _notify(callback, "workspace", 0, 2, {"part": prefix})
    store = dataset.build_cgs(callback=callback)
    ref_idx = np.sort(rng.choice(len(dataset), size=min(reference_size, len(dataset)), replace=False))
    reference = make_reference(predictor, store.take(ref_idx) if hasattr(store, "take") else [store[i] for i in ref_idx])
    ref_ids = [f"{prefix}:{dataset.frame['id'].iloc[i]}" for i in ref_idx] if reference is not None else []
    parts = [part_from_dataset(dataset, source="benchmark", prefix=prefix, predictor=predictor,
                               callback=callback, chunk=chunk, reference=reference)]
    names = list(families) if families is not None else fam_registry.names()
    for i, name in enumerate(names):
        if samples_per_family <= 0:
            break
        _notify(callback, "samples", i, len(names), {"family": name})
        ds = sample_dataset(name, samples_per_family, seed)
        parts.append(part_from_dataset(ds, source="sample", prefix=f"sample:{name}", predictor=predictor,
                                       chunk=chunk, reference=reference))
    _notify(callback, "samples", len(names), len(names))
    ws = concat_parts(parts, model_card_dict(predictor))
    ws = project_workspace(ws, perplexity=perplexity, seed=seed, tsne=tsne, callback=callback)
    meta = dict(ws.meta)
    meta.update({"built": time.strftime("%Y-%m-%d %H:%M:%S"), "seed": int(seed), "model_key": model_key(predictor),
                 "samples_per_family": int(samples_per_family), "families": names, "default_dataset": prefix,
                 "reference_ids": ref_ids})
    return Workspace(ws.frame, ws.embedding, ws.cgs, ws.provenances, ws.model_card, meta, ws.pca)


def workspace_reference(ws: Workspace, predictor: ScoringModel, cg_lookup: Callable[[str], CG] | None = None) -> Any:
    """Rebuild the workspace's score reference (``meta["reference_ids"]``) for ``predictor`` so
    new rows are scored on the same scale (None when the workspace has none)."""
    ids = [i for i in ws.meta.get("reference_ids", []) if i in ws]
    if not ids or predictor is None:
        return None
    lookup = cg_lookup or (lambda a: cg_of(ws, a))
    return make_reference(predictor, [lookup(i) for i in ids])


def reference_jsonl(ws: Workspace, cg_lookup: Callable[[str], CG] | None = None) -> bytes:
    """The workspace's score reference population (``meta["reference_ids"]``) as JSONL for
    ``python -m engine predict --reference``: with it the command scores architectures exactly as
    the app does.  One ``{"id", "family", "spec"}`` line per row that its spec rebuilds, else
    ``{"id", "cg"}``.  Empty when the workspace has no reference."""
    lookup = cg_lookup or (lambda a: cg_of(ws, a))
    lines = []
    for arch in (i for i in ws.meta.get("reference_ids", []) if i in ws):
        family, spec, opts = rebuild_key(ws, arch) if arch not in ws.cgs else ("", "", ())
        rec = ({"id": arch, "family": family, "spec": spec} if spec and not opts
               else {"id": arch, "cg": lookup(arch).to_dict()})
        lines.append(json.dumps(rec, separators=(",", ":")))
    return ("\n".join(lines) + "\n").encode() if lines else b""


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".json")


def save_workspace(ws: Workspace, path: str | Path) -> tuple[Path, Path]:
    """Write ``ws`` to ``path`` (compressed npz: numbers, unicode string arrays, float16
    embedding) and ``<stem>.json`` (provenance, model card, metadata, CG-only rows' CGs)."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"workspace file must end in .npz, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = _normalise_frame(ws.frame)
    arrays: dict[str, np.ndarray] = {}
    columns = []
    for c in frame.columns:
        if c in STRING_COLUMNS:
            arrays[f"s__{c}"] = np.asarray(frame[c].tolist(), dtype=str) if len(frame) else np.zeros(0, dtype="<U1")
            columns.append([c, "str"])
        else:
            dtype = np.float64 if c in ("label", "flops", "params") else np.float32
            arrays[f"n__{c}"] = frame[c].to_numpy(dtype=dtype)
            columns.append([c, "num"])
    if ws.embedding is not None:
        arrays["embedding"] = np.asarray(ws.embedding, dtype=np.float16)
    if ws.pca is not None:
        arrays["pca_mean"] = np.asarray(ws.pca[0], dtype=np.float32)
        arrays["pca_components"] = np.asarray(ws.pca[1], dtype=np.float32)
    np.savez_compressed(path, **arrays)
    side = {
        "format": WORKSPACE_FORMAT, "version": WORKSPACE_VERSION, "rows": len(frame), "columns": columns,
        "provenances": dict(ws.provenances), "model_card": dict(ws.model_card), "meta": dict(ws.meta),
        "cgs": {k: json.loads(v.to_json()) for k, v in ws.cgs.items()},
    }
    sp = sidecar_path(path)
    sp.write_text(json.dumps(side, indent=1, default=str))
    return path, sp


def load_workspace(path: str | Path) -> Workspace:
    """Read a workspace written by :func:`save_workspace` (``allow_pickle=False``).  Raises
    ``FileNotFoundError`` / ``ValueError`` with the file and the problem."""
    path = Path(path)
    sp = sidecar_path(path)
    for p in (path, sp):
        if not p.exists():
            raise FileNotFoundError(f"workspace file {p} does not exist (build it with `python -m engine studio-assets`)")
    try:
        side = json.loads(sp.read_text())
    except ValueError as exc:
        raise ValueError(f"{sp}: not valid JSON ({exc})") from None
    if not isinstance(side, dict) or side.get("format") != WORKSPACE_FORMAT:
        raise ValueError(f"{sp}: not a GENNAPE Studio workspace sidecar (format != {WORKSPACE_FORMAT!r})")
    if int(side.get("version", 0)) > WORKSPACE_VERSION:
        raise ValueError(f"{sp}: workspace version {side.get('version')} is newer than this code "
                         f"({WORKSPACE_VERSION})")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot read workspace arrays ({exc})") from None
    cols: dict[str, Any] = {}
    for name, kind in side["columns"]:
        key = f"s__{name}" if kind == "str" else f"n__{name}"
        if key not in data:
            raise ValueError(f"{path}: column {name!r} missing from the arrays")
        cols[name] = data[key].astype(str).tolist() if kind == "str" else data[key].astype(float)
    frame = pd.DataFrame(cols)
    if len(frame) != int(side.get("rows", len(frame))):
        raise ValueError(f"{path}: {len(frame)} rows but the sidecar says {side.get('rows')}")
    frame = _normalise_frame(frame)
    emb = data["embedding"].astype(np.float32) if "embedding" in data else None
    if emb is not None and len(emb) != len(frame):
        raise ValueError(f"{path}: embedding has {len(emb)} rows for {len(frame)} architectures")
    pca = (data["pca_mean"], data["pca_components"]) if "pca_mean" in data else None
    cgs = {k: CG.from_dict(v) for k, v in (side.get("cgs") or {}).items()}
    if emb is not None:
        emb.flags.writeable = False
    meta = side.get("meta") or {}
    opts = meta.get(CG_OPTIONS, {}) if isinstance(meta, dict) else None
    if not isinstance(opts, dict) or not all(isinstance(v, dict) for v in opts.values()):
        raise ValueError(f"{sp}: field 'meta.{CG_OPTIONS}' must map dataset names to objects of to_cg options, "
                         f"got {json.dumps(opts)[:120]}")
    return Workspace(frame, emb, cgs, side.get("provenances", {}), side.get("model_card", {}), meta, pca)


def default_asset_path() -> Path:
    from engine.paths import assets_dir

    return assets_dir() / DEFAULT_ASSET


#: what each shipped example file is (``assets/demo``, written by ``python -m engine demo-files``)
DEMO_FILES = {
    "mixed_specs.jsonl": "24 unlabelled specs from six families",
    "nb201_cifar10_60.csv": "60 NB-201 cells with CIFAR-10 labels (enough to fine-tune with k = 50)",
    "hand_designed_cgs.jsonl": "CGs of 6 hand-designed ImageNet networks with published top-1",
    "small_cnn.onnx": "a small CIFAR CNN as an ONNX file",
}


def demo_files() -> dict[str, Path]:
    """The example input files present in ``assets/demo`` (name -> path), in :data:`DEMO_FILES` order."""
    from engine.paths import assets_dir

    folder = assets_dir() / "demo"
    return {name: folder / name for name in DEMO_FILES if (folder / name).is_file()}


# ---------------------------------------------------------------------------------------------
# queries used by the pages
# ---------------------------------------------------------------------------------------------

def rebuild_key(ws: Workspace, arch_id: str) -> tuple[str, str, tuple[tuple[str, Any], ...]]:
    """``(family, spec, options)`` that rebuild an architecture's CG (:func:`build_cg`); ``options``:
    the sorted ``to_cg`` options its dataset was built with (NB-201's CIFAR-100 rows:
    ``(("num_classes", 100),)``; :data:`CG_OPTIONS`), empty for the family's default network.
    Hashable, so the app caches rebuilt CGs by it."""
    row = ws.row(arch_id)
    opts = (ws.meta.get(CG_OPTIONS) or {}).get(str(row["dataset"])) or {}
    return str(row["family"]), row["spec"], tuple(sorted(opts.items()))


def cg_options(ws: Workspace, arch_id: str) -> dict[str, Any]:
    """The ``to_cg`` options of :func:`rebuild_key` as a dict."""
    return dict(rebuild_key(ws, arch_id)[2])


def cg_of(ws: Workspace, arch_id: str) -> CG:
    """The CG of one architecture: the stored one (uploads) or rebuilt from family + spec, with its
    dataset's options (:func:`rebuild_key`) -- the network its row was scored as."""
    if arch_id in ws.cgs:
        return ws.cgs[arch_id]
    family, spec, opts = rebuild_key(ws, arch_id)
    return build_cg(family, spec, dict(opts))


def build_cg(family: str, spec: str, options: Mapping[str, Any] | None = None) -> CG:
    """CG of a spec text of ``family`` (``Family.spec_text``) (raises with the family and reason);
    ``options``: keyword arguments of the family's ``to_cg`` (another head / input size)."""
    from engine.data.dataset import decode_spec
    from engine.families import get

    if not spec:
        raise ValueError(f"no spec stored for this {family} architecture and no CG was uploaded")
    return get(family).to_cg(decode_spec(family, spec), **dict(options or {}))


def nearest_neighbours(ws: Workspace, arch_id: str, k: int = 10) -> pd.DataFrame:
    """The ``k`` architectures closest to ``arch_id`` in embedding space (cosine distance), with
    a ``distance`` column; empty when the workspace has no embeddings."""
    if not ws.has_embedding:
        return ws.frame.iloc[:0].assign(distance=pd.Series(dtype=float))
    i = ws.index_of(arch_id)
    x = np.asarray(ws.embedding, dtype=np.float32)
    if not np.isfinite(x[i]).all():
        return ws.frame.iloc[:0].assign(distance=pd.Series(dtype=float))
    ok = np.isfinite(x).all(axis=1)
    x = np.where(ok[:, None], x, 0.0)
    norms = np.linalg.norm(x, axis=1) + 1e-12
    sim = (x @ x[i]) / (norms * norms[i])
    sim[i] = -np.inf
    sim[~ok] = -np.inf
    k = max(0, min(int(k), int(ok.sum()) - 1))
    idx = np.argpartition(-sim, k - 1)[:k] if k else np.zeros(0, dtype=int)
    idx = idx[np.argsort(-sim[idx])]
    out = ws.frame.iloc[idx].copy()
    out.insert(0, "distance", (1.0 - sim[idx]).astype(float))
    return out.reset_index(drop=True)


def architecture_table(ws: Workspace, members: bool = True) -> pd.DataFrame:
    """The combined table (display order): id, name, family, task (:func:`row_tasks`), source, score,
    rank (within the row's task: scores of different tasks are not one ranking), label, FLOPs (M),
    params (M), cluster, entropy, novelty, provenance, member scores."""
    f = ws.frame
    tasks = row_tasks(ws)
    out = pd.DataFrame({
        "id": f["id"], "name": f["name"], "family": f["family"], "task": tasks, "source": f["source"],
        "score": f["score"], "label": f["label"],
        "MFLOPs": f["flops"] / 1e6, "M params": f["params"] / 1e6,
        "cluster": f["cluster"], "entropy": f["entropy"], "novelty": f["novelty"], "dataset": f["dataset"], "provenance": f["provenance"],
    })
    if ws.has_scores:
        rank = f["score"].groupby(tasks.to_numpy()).rank(ascending=False, method="min").astype("Int64")
        out.insert(out.columns.get_loc("score") + 1, "rank", rank)
    if members:
        for c in ws.member_columns:
            out[c] = f[c]
    return out


#: spellings of tasks in family and provenance records (lower case, letters and digits only) -> one name
_TASK_NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "imagenet16120": "ImageNet16-120",
               "imagenet": "ImageNet", "imagenet1k": "ImageNet", "ilsvrc2012": "ImageNet"}
#: input size (None: any) and class count of the label tasks a CG's inputs and outputs are checked against
TASK_IO: dict[str, tuple[tuple[int, int] | None, int]] = {
    "CIFAR-10": ((32, 32), 10), "CIFAR-100": ((32, 32), 100), "ImageNet16-120": ((16, 16), 120), "ImageNet": (None, 1000)}


def task_name(raw: Any) -> str | None:
    """One name for a task however a record spells it (``"cifar10"``, ``"CIFAR-10"`` -> ``"CIFAR-10"``;
    ``"ImageNet-1K"`` -> ``"ImageNet"``), or None when it is not one of :data:`TASK_IO`'s."""
    return _TASK_NAMES.get(re.sub(r"[^a-z0-9]", "", str(raw).lower())) if raw else None


def family_task(family: str) -> str | None:
    """The task a family's networks are built for (``"CIFAR-10"``, ``"ImageNet"``), or None when
    unknown (uploaded CGs / ONNX files have no family).  The hand-designed check set
    (:mod:`engine.evaluate.zoo`) counts as a family here."""
    from engine import families as registry
    from engine.evaluate import zoo

    if family in set(registry.names()):
        return task_name(registry.get(family).dataset)
    return task_name(zoo.TASK) if family == zoo.FAMILY else None


def dataset_task(label_dataset: str, family: str) -> str | None:
    """The task of a set of ``family`` networks labelled on ``label_dataset`` (``""``: unlabelled):
    the labels' dataset when it names a task, else the family's -- the rule :func:`row_tasks`
    applies per row."""
    return task_name(label_dataset) or family_task(family)


def cg_io(cg: CG) -> tuple[tuple[int, int], tuple[int, ...]] | None:
    """``((H, W), output shape)`` of a CG: its first input node's size and the shape its (last)
    output node receives (``(1, 1, K)`` for a K-class classifier); None without an input or output node."""
    first = next((n for n in cg.nodes if n.op == "input"), None)
    out = next((n for n in reversed(cg.nodes) if n.op == "output"), None)  # usually the last node
    if first is None or out is None:
        return None
    return (int(first.out_shape[0]), int(first.out_shape[1])), tuple(int(v) for v in out.in_shape)


def _io_text(hw: tuple[int, int] | None, out: tuple[int, ...] | int) -> str:
    size = "any-size" if hw is None else f"{hw[0]}×{hw[1]}"
    if isinstance(out, int):
        return f"{size} inputs and {out:,} classes"
    width = f"{out[-1]:,} outputs" if all(v == 1 for v in out[:-1]) else f"{'×'.join(map(str, out))} outputs"
    return f"{size} inputs and {width}"


def _fits(io: tuple[tuple[int, int], tuple[int, ...]], task: str) -> bool:
    size, classes = TASK_IO[task]
    hw, out = io
    return (size is None or hw == size) and out == (1,) * (len(out) - 1) + (classes,)


def cg_task(cg: CG) -> str | None:
    """The task of :data:`TASK_IO` whose input size and class count a CG has (a 32×32, 10-class
    network: ``"CIFAR-10"``; any 1000-class one: ``"ImageNet"``), else None."""
    io = cg_io(cg)
    return None if io is None else next((t for t in TASK_IO if _fits(io, t)), None)


#: row_tasks results per workspace object: (the frame they were computed for, the tasks)
_ROW_TASKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def row_tasks(ws: Workspace) -> pd.Series:
    """Per row of ``ws.frame``: the task its network is built for -- the dataset its label's
    provenance names (NB-201's CIFAR-100 rows are CIFAR-100 networks), else its family's
    (:func:`family_task`), else, for a graph row, the one its inputs and outputs fit
    (:func:`cg_task`), else ``"unknown"``.  Memoised per workspace object (workspaces are read-only)."""
    hit = _ROW_TASKS.get(ws)
    if hit is not None and hit[0] is ws.frame:
        return hit[1].copy()
    f = ws.frame
    fams = f["family"].astype(object)
    by_family = {fam: family_task(str(fam)) for fam in fams.unique()}
    by_label = {label: task_name(p.get("dataset")) for label, p in ws.provenances.items() if isinstance(p, Mapping)}
    out = f["provenance"].astype(object).map(by_label).to_numpy(dtype=object, copy=True)
    fill = pd.isna(out)
    out[fill] = fams[fill].map(by_family).to_numpy(dtype=object)
    ids = f["id"].to_numpy(dtype=object)
    for i in np.flatnonzero(pd.isna(out)):  # graph rows of no known family
        cg = ws.cgs.get(ids[i])
        out[i] = (cg_task(cg) if cg is not None else None) or "unknown"
    tasks = pd.Series(out, index=f.index, dtype=object)
    _ROW_TASKS[ws] = (f, tasks)
    return tasks.copy()


def default_task(tasks: Iterable[str], card: Mapping[str, Any] | None) -> str | None:
    """The task a ranking should show first: when rows of several tasks are present, the first
    label task of the model card among them (its score is on that task's scale); else None (all)."""
    present = set(tasks)
    if len(present) < 2:
        return None
    return next((t for t in label_tasks(card) if t in present), None)


def label_tasks(card: Mapping[str, Any] | None) -> list[str]:
    """The label datasets a model card names (``label_provenance``; :func:`task_name` where known), sorted."""
    return sorted({task_name(p.get("dataset")) or str(p.get("dataset"))
                   for p in (card or {}).get("label_provenance") or [] if isinstance(p, Mapping) and p.get("dataset")})


#: the closing advice of :func:`score_scale_note`
SCALE_ADVICE = "Compare architectures of one task at a time."


def score_scale_note(families: Iterable[str], card: Mapping[str, Any] | None, cgs: Iterable[CG] = (),
                     advice: str = SCALE_ADVICE) -> str | None:
    """A note when ``score`` is read on another task's scale: the score is in the units of the
    checkpoint's labels (e.g. CIFAR-10 validation accuracy), so for networks built for another task
    (the OFA families are ImageNet networks) it ranks them but is not their accuracy.

    ``families``: family names (their task: :func:`family_task`); ``cgs``: networks whose family
    names no task (uploaded CGs, ONNX files), judged by their input size and output width
    (:func:`cg_io`) against the labels' task (:data:`TASK_IO`); ``advice``: the closing sentence.
    None when everything matches the labels' task, or the card names no label dataset."""
    labels = label_tasks(card)
    other: dict[str, list[str]] = {}
    for fam in sorted(set(families)):
        name = family_task(fam)
        if name is not None and name not in labels:
            other.setdefault(name, []).append(fam)
    return _scale_note(labels, other, cgs, advice)


def _scale_note(labels: list[str], other: Mapping[str, list[str]], cgs: Iterable[CG],
                advice: str = SCALE_ADVICE) -> str | None:
    """:func:`score_scale_note`'s text: ``other`` = task -> names of the sets built for it."""
    if not labels:
        return None
    parts = [f"{', '.join(names)} are {task} networks" for task, names in sorted(other.items())]
    expected = [t for t in labels if t in TASK_IO]
    shapes: dict[tuple, int] = {}
    for cg in cgs if expected else ():
        io = cg_io(cg)
        if io is not None and not any(_fits(io, t) for t in expected):
            shapes[io] = shapes.get(io, 0) + 1
    for (hw, out), count in sorted(shapes.items(), key=lambda kv: -kv[1]):
        which = "network given as a graph takes" if count == 1 else "networks given as graphs take"
        parts.append(f"{count:,} {which} {_io_text(hw, out)}")
    if not parts:
        return None
    task_io = "; ".join(f"{t}: {_io_text(*TASK_IO[t])}" for t in labels if t in TASK_IO)
    return (f"`score` is on the scale of the checkpoint's labels ({' / '.join(labels)} accuracy, %"
            f"{'; ' + task_io if task_io and shapes else ''}). {'; '.join(parts)}: their score says where they "
            f"rank, not their accuracy on their own task. {advice}")


def workspace_scale_note(ws: Workspace, card: Mapping[str, Any] | None, rows: pd.Index | None = None) -> str | None:
    """:func:`score_scale_note` for rows of a workspace (``rows``: labels of ``ws.frame``'s index,
    default all), by :func:`row_tasks`: a set of rows built for another task than the labels' is
    named by its family, or by its dataset where the family's task is not the rows' (NB-201's
    CIFAR-100 rows, uploaded ImageNet graphs); graphs of no known task are described by their
    inputs and outputs."""
    labels = label_tasks(card)
    if not labels:
        return None
    frame = ws.frame if rows is None else ws.frame.loc[rows]
    tasks = row_tasks(ws).loc[frame.index].to_numpy()
    other: dict[str, set[str]] = {}
    for task in sorted(set(tasks) - set(labels) - {"unknown"}):
        sel = frame[tasks == task]
        pairs = set(zip(sel["family"].astype(str), sel["dataset"].astype(str)))  # a few, not one per row
        other[task] = {fam if family_task(fam) == task else ds for fam, ds in pairs}
    ids = frame.loc[tasks == "unknown", "id"]
    return _scale_note(labels, {t: sorted(n) for t, n in other.items()}, [ws.cgs[i] for i in ids if i in ws.cgs])


def label_percentile(frame: pd.DataFrame) -> np.ndarray:
    """Each row's label as a percentile (0-100, ties averaged) within its ``dataset`` -- its label set --
    so label sets of different tasks (NB-201's ~90 % CIFAR-10 and ~40 % ImageNet16-120 accuracies)
    share one colour scale; NaN without a label."""
    labels = pd.to_numeric(frame["label"], errors="coerce").astype(float)
    return (labels.groupby(frame["dataset"].astype(object)).rank(pct=True) * 100.0).to_numpy(dtype=float)


def member_range_note(values: Mapping[str, Any]) -> str | None:
    """A note when accuracy members (every member but the score-type baselines and ``graph_stats``)
    leave 0..100: they extrapolate outside the labelled families' range -- the Eq. 5 members
    multiply by ``log10(GFLOPs + 1) + 1``, which grows with FLOPs -- so only their order is
    meaningful there.  ``values``: member name (optionally ``member_``-prefixed) -> values."""
    from engine.model.config import MEMBERS
    from engine.model.predictor import SCORE_MEMBERS

    parts, members = [], set()
    for name, vals in values.items():
        member = name.removeprefix(MEMBER_PREFIX)
        if member not in MEMBERS or member in SCORE_MEMBERS:
            continue
        v = np.asarray(vals, dtype=np.float64)
        v = v[np.isfinite(v)]
        out = int(np.sum((v > 100.0) | (v < 0.0)))
        if out:
            ends = ([f"up to {v.max():.1f}"] if v.max() > 100.0 else []) + (
                [f"down to {v.min():.1f}"] if v.min() < 0.0 else [])
            parts.append(f"{name}: {out:,} of {v.size:,}, {' and '.join(ends)}")
            members.add(member)
    if not parts:
        return None
    eq5 = sorted(members & {"cl_t", "cl_fcm_t"})
    why = (f" ({' and '.join(eq5)} use Eq. 5, whose inverse multiplies by log10(GFLOPs + 1) + 1, which grows "
           "with FLOPs)" if eq5 else "")
    return (f"Member predictions outside 0–100 ({'; '.join(parts)}): the members extrapolate beyond the labelled "
            f"families' range{why}, so there only their order is meaningful. `score` stays within 0–100.")


def family_titles() -> dict[str, str]:
    """Registered family name -> UI title."""
    from engine import families

    out = {}
    for name in families.names():
        fam = families.get(name)
        out[name] = fam.title or name
    return out


# ---------------------------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------------------------

def frame_fingerprint(frame: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A content hash of (some columns of) a frame: the key under which the app caches values
    derived from it (metrics, CSV exports), so equal content hits the cache across reruns."""
    import hashlib

    cols = [c for c in (columns if columns is not None else frame.columns) if c in frame.columns]
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((len(frame), cols)).encode())
    if cols and len(frame):
        h.update(pd.util.hash_pandas_object(frame[cols], index=False).to_numpy().tobytes())
    return h.hexdigest()


def compute_metrics(y_true: Sequence[float], y_pred: Sequence[float], k: int = 10) -> dict[str, float]:
    """``engine.metrics.all_metrics`` on finite pairs.  Predictions are scores, not accuracies, so
    MAE-type metrics are only asked for when the engine says the scale is known.  ``precision@k``
    is left out when there are no more than ``k`` pairs (every top-k would be all of them: 1.0
    whatever the ranking)."""
    from engine.metrics import all_metrics

    yt = np.asarray(y_true, dtype=float)
    yp = np.asarray(y_pred, dtype=float)
    ok = np.isfinite(yt) & np.isfinite(yp)
    out = all_metrics(yt[ok], yp[ok], k=k, scale_known=False)
    res = {str(key): float(v) for key, v in dict(out).items() if isinstance(v, int | float | np.floating | np.integer)}
    if ok.sum() <= k:
        res.pop(f"precision@{k}", None)
    if not np.isfinite(res.get("mae", 0.0)):
        res.pop("mae")  # scores are not accuracies here (see above)
    res["n"] = int(ok.sum())
    return res


def ranking_metrics(ws: Workspace, by: str = "dataset", min_rows: int = 3, column: str = "score") -> pd.DataFrame:
    """Ranking metrics of the GENNAPE score (or another numeric ``column``, e.g. a member's
    ``member_<name>``) against the true labels, one row per ``by`` group and task
    (:func:`row_tasks`): labels of different datasets, or of networks built for different tasks
    (an upload that labels CIFAR-10 cells and an ImageNet ResNet), are different quantities, so
    they are never mixed.  Groups of fewer than ``min_rows`` labelled rows are left out."""
    f = ws.frame
    if column not in f.columns:
        raise ValueError(f"ranking_metrics: no column {column!r}; expected 'score' or one of "
                         f"{[c for c in f.columns if c.startswith(MEMBER_PREFIX)]}")
    mask = np.isfinite(f["label"].to_numpy(dtype=float)) & np.isfinite(f[column].to_numpy(dtype=float))
    labelled = f[mask].assign(_task=row_tasks(ws)[mask])
    rows = []
    for (key, task), grp in labelled.groupby([by, "_task"], sort=True):
        if len(grp) < min_rows:
            continue
        m = compute_metrics(grp["label"], grp[column])
        rows.append({by: key, "task": task, "family": ", ".join(sorted(grp["family"].unique())),
                     "provenance": grp["provenance"].iloc[0], **m})
    out = pd.DataFrame(rows)
    if rows:  # columns in the order of the fullest row (small groups have no precision@10)
        full = list(max(rows, key=len))
        out = out[full + [c for c in out.columns if c not in full]]
    return out


# ---------------------------------------------------------------------------------------------
# uploads
# ---------------------------------------------------------------------------------------------

@dataclass
class UploadOutcome:
    """What one uploaded file gave: a dataset (or None) and per-row errors."""

    filename: str
    dataset: Any = None
    errors: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["row", "field", "reason"]))
    warnings: list[str] = field(default_factory=list)
    signature: tuple | None = None  # (name, size, sha1) set by the app to skip files already read
    id_prefix: str = ""  # the app: the prefix of the workspace ids its rows were added under

    @property
    def ok_rows(self) -> int:
        return 0 if self.dataset is None else len(self.dataset)

    def summary(self) -> str:
        return f"{self.filename}: {self.ok_rows} architecture(s) read, {len(self.errors)} problem(s)"


UPLOAD_TYPES = ("csv", "tsv", "jsonl", "json", "onnx", "pkl", "pickle", "zip")


def _error_frame(errors: Sequence[Any]) -> pd.DataFrame:
    """The app's table of upload problems: ``row``, ``field``, ``reason`` and the ``file`` they concern
    (a file inside a zip, or the labels CSV; empty when the problem is the uploaded file itself)."""
    rows = []
    for e in errors:
        if isinstance(e, Mapping):
            rows.append({"row": e.get("row"), "field": e.get("field", ""), "reason": str(e.get("reason", e)),
                         "file": str(e.get("file") or "")})
        else:
            rows.append({"row": getattr(e, "row", None), "field": getattr(e, "field", ""),
                         "reason": str(getattr(e, "reason", e)), "file": str(getattr(e, "file", "") or "")})
    return pd.DataFrame(rows, columns=["row", "field", "reason", "file"])


def _file_error(reason: str) -> pd.DataFrame:
    return _error_frame([{"row": None, "field": "file", "reason": reason}])


def _cg_dataset(name: str, cgs: Sequence[CG], ids: Sequence[str], family: str = "custom") -> Any:
    from engine.data.dataset import ArchDataset
    from engine.data.provenance import UNLABELLED

    return ArchDataset.from_cgs(name, list(cgs), None, UNLABELLED, family=family, ids=list(ids))


def parse_upload(raw: bytes, filename: str, callback: Callback | None = None) -> UploadOutcome:
    """Turn one uploaded file into an ArchDataset plus a per-row error table; never raises.

    * ``.csv`` / ``.tsv`` / ``.jsonl`` (and ``.json`` arrays of rows): specs or CGs with optional
      labels, via :func:`engine.data.parse_table`;
    * ``.onnx``: one network; ``.zip``: ONNX files (in any folders) plus an optional labels CSV
      (``labels.csv`` in any folder, else the zip's only CSV) with a ``file`` (or ``id``) and a label
      column (:func:`engine.data.parse_onnx_folder`); macOS metadata (``__MACOSX/``, ``._*``) and
      other dot-files are skipped;
    * ``.json`` objects: a CG JSON (``CG.to_json``) or a GENNAPE-format file; ``.pkl``: a
      GENNAPE-format pickle (:func:`engine.data.load_gennape`, restricted unpickler — never
      arbitrary classes).

    ``callback`` reports progress over the ONNX files of a ``.zip``.
    """
    name = Path(filename).name or "upload"
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    out = UploadOutcome(name)
    if not raw:
        out.errors = _file_error("the file is empty")
        return out
    if ext not in UPLOAD_TYPES:
        from engine.data.uploads import conversion_hint

        hint = conversion_hint(ext)
        out.errors = _file_error(f"unsupported file type '.{ext}'; expected one of "
                                 + ", ".join(f".{t}" for t in UPLOAD_TYPES) + (f". {hint}" if hint else ""))
        return out
    try:
        if ext in ("csv", "tsv", "jsonl"):
            from engine.data import parse_table

            return _take_result(out, parse_table(raw, name))
        if ext == "onnx":
            from engine.data import parse_onnx_folder

            return _take_result(out, parse_onnx_folder({name: raw}, name=name))
        if ext == "zip":
            return _parse_zip(raw, name, out, callback)
        if ext == "json":
            return _parse_json(raw, name, out)
        return _parse_gennape(raw, name, out)
    except ModuleNotFoundError as exc:
        out.dataset = None
        out.errors = _file_error(f"reading .{ext} files needs the Python package {exc.name!r}, which is not "
                                 "installed (pip install -r requirements.txt)")
    except Exception as exc:  # noqa: BLE001 - any bad upload must become a message, not a crash
        out.dataset = None
        out.errors = _file_error(f"could not read {name}: {exc}")
    return out


def _take_result(out: UploadOutcome, res: Any) -> UploadOutcome:
    out.dataset = getattr(res, "dataset", None)
    out.errors = _error_frame(getattr(res, "errors", []) or [])
    out.warnings = [str(w) for w in getattr(res, "warnings", []) or []]
    if out.dataset is not None and len(out.dataset) == 0:
        out.dataset = None
    return out


def _parse_gennape(raw: bytes, name: str, out: UploadOutcome) -> UploadOutcome:
    import tempfile

    from engine.data import load_gennape

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(raw)
        try:
            ds = load_gennape(path)
        except Exception as exc:  # noqa: BLE001 - say it without the temporary folder's path
            raise ValueError(str(exc).replace(f"{path}: ", "").replace(str(path), name)) from None
    out.dataset = ds if len(ds) else None
    if out.dataset is None:
        out.errors = _file_error("the GENNAPE-format file holds no computation graphs")
    return out


def _parse_json(raw: bytes, name: str, out: UploadOutcome) -> UploadOutcome:
    from engine.graphs.cg import load_json

    try:
        doc = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        out.errors = _file_error(f"not valid JSON: {exc}")
        return out
    if isinstance(doc, list):  # rows of specs / CGs
        from engine.data import parse_table

        return _take_result(out, parse_table(raw, name))
    if not isinstance(doc, dict):
        out.errors = _file_error(f"expected a JSON object (a CG, as the Architecture page downloads it, or a GENNAPE "
                                 f"graph) or an array of rows, got a JSON {type(doc).__name__}")
        return out
    if {"nodes", "edges", "format_version"} & set(doc):  # meant as a CG JSON: its own errors, not GENNAPE's
        cg = load_json(doc)
        stem = name.rsplit(".", 1)[0]
        cg.name = cg.name or stem
        out.dataset = _cg_dataset(name, [cg], [stem], family="custom")
        return out
    return _parse_gennape(raw, name, out)


def _zip_skipped(path: str) -> bool:
    """Entries that are no user file: macOS Finder metadata (``__MACOSX/``, ``._*``) and other dot-files."""
    parts = path.split("/")
    return "__MACOSX" in parts or parts[-1].startswith(".")


def _labels_entry(csvs: Sequence[str]) -> str | None:
    """The labels CSV among a zip's CSV paths: the one named ``labels.csv`` (in any folder), else the only
    CSV; ``ValueError`` (listing them) when that is ambiguous."""
    named = [p for p in csvs if Path(p).name.lower() == "labels.csv"]
    if len(named) > 1:
        raise ValueError(f"{len(named)} files are named labels.csv ({', '.join(named)}); keep one labels file")
    if named:
        return named[0]
    if len(csvs) > 1:
        raise ValueError(f"{len(csvs)} CSV files ({', '.join(csvs)}) and none is named labels.csv: name the one "
                         "with the file and label columns labels.csv")
    return csvs[0] if csvs else None


def _parse_zip(raw: bytes, name: str, out: UploadOutcome, callback: Callback | None = None) -> UploadOutcome:
    """ONNX files of a zip (ids: base names, or paths where base names repeat) plus its labels CSV
    (:func:`_labels_entry`), skipping macOS metadata and dot-files."""
    import io
    import zipfile

    from engine.data import parse_onnx_folder
    from engine.data.uploads import RowError, _norm_path

    try:
        zf = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile as exc:
        out.errors = _file_error(f"not a zip archive: {exc}")
        return out
    files: dict[str, bytes] = {}
    csvs: dict[str, zipfile.ZipInfo] = {}
    repeated: list[RowError] = []
    for m in zf.infolist():
        path = _norm_path(m.filename)
        if m.is_dir() or not path or _zip_skipped(path):
            continue
        low = path.lower()
        if low.endswith(".onnx"):
            data = zf.read(m)
            if path in files:  # the same path twice in one archive: keep the first
                if data != files[path]:
                    repeated.append(RowError(None, "file", "a different file with the same path was read first and "
                                                           "is kept; rename one of them", path))
                continue
            files[path] = data
        elif low.endswith(".csv"):
            csvs.setdefault(path, m)
    if not files:
        out.errors = _file_error("the zip archive contains no .onnx files")
        return out
    try:
        labels_path = _labels_entry(list(csvs))
    except ValueError as exc:
        out.errors = _file_error(f"could not tell which CSV holds the labels: {exc}")
        return out
    labels = zf.read(csvs[labels_path]) if labels_path else None
    res = parse_onnx_folder(files, labels, labels_filename=labels_path or "labels.csv", name=name, callback=callback)
    res.errors = [*repeated, *res.errors]
    return _take_result(out, res)


def part_from_upload(outcome: UploadOutcome, predictor: ScoringModel | None = None, callback: Callback | None = None,
                     reference: Any = None, prefix: str | None = None) -> Workspace:
    """Score an upload's rows (ids ``f"{prefix}:{row id}"``, default prefix ``upload:<file name>``);
    rows whose CG cannot be built are dropped and added to ``outcome.errors`` (the rest load)."""
    ds = outcome.dataset
    if ds is None:
        return empty_workspace()
    try:
        ds.build_cgs(callback=callback, cache=False)
    except Exception:  # noqa: BLE001 - find the bad rows one by one
        good, errs = [], []
        for i in range(len(ds)):
            try:
                sub = ds.subset([i])
                sub.build_cgs(cache=False)
                good.append(i)
            except Exception as exc:  # noqa: BLE001
                errs.append({"row": i, "field": "spec", "reason": f"cannot build the CG: {exc}"})
        outcome.errors = pd.concat([outcome.errors, _error_frame(errs)], ignore_index=True)
        if not good:
            outcome.dataset = None
            return empty_workspace()
        ds = ds.subset(good)
        outcome.dataset = ds
    name = (prefix or "").removeprefix("upload:")
    if prefix and name != ds.name:  # a second file of the same name (the app gives it "name#hash"): its own label set
        ds = ds.subset(np.arange(len(ds)), name=name)
    return part_from_dataset(ds, source="upload", prefix=prefix or f"upload:{outcome.filename}", predictor=predictor,
                             callback=callback, reference=reference)


# ---------------------------------------------------------------------------------------------
# fine-tuning
# ---------------------------------------------------------------------------------------------

FINETUNE_STRATEGIES = ("random", "spread over clusters", "manual")


def apply_label_edits(typed: dict[str, float], shown: pd.DataFrame, edited: pd.DataFrame) -> bool:
    """Apply a label table's edits (``id`` / ``label`` columns, ``shown`` before and ``edited``
    after) to ``typed`` (id -> label typed in this session): a new or changed label is set, a
    typed label that was cleared is removed.  Whether anything changed."""
    before = dict(typed)
    old = shown.set_index("id")["label"]
    for arch, label in zip(edited["id"], edited["label"]):
        if pd.notna(label):
            if not (pd.notna(old.get(arch)) and float(old.get(arch)) == float(label)):
                typed[arch] = float(label)
        elif arch in typed:
            del typed[arch]
    return typed != before


def default_finetune_k(n_labelled: int, k: int = 50, max_k: int = 100) -> int:
    """The k a fine-tuning form proposes for ``n_labelled`` labels: the model's ``k`` (the
    paper's 50), but never so many that fewer than a third of the labels (at least 3, the minimum
    for the ranking metrics) are left to evaluate on; at least 2."""
    held_out = max(3, -(-n_labelled // 3))  # a third, rounded up
    return int(max(2, min(k, max_k, n_labelled - held_out)))


def id_aliases(frame: pd.DataFrame) -> dict[str, str]:
    """Names a labels file may use for the rows of ``frame`` -> their ids: every ``id``, and a
    row's ``name`` (an uploaded network's file name, as ``engine predict`` writes it in ``id``)
    and that name without its ``.onnx`` suffix, wherever no other row has the same one."""
    ids = frame["id"].astype(str).tolist()
    out = {i: i for i in ids}
    names = frame["name"].astype(str).tolist() if "name" in frame.columns else []
    counts: dict[str, int] = {}
    pairs = []
    for arch, name in zip(ids, names):
        forms = {name, name[:-5]} if name.lower().endswith(".onnx") else {name}
        for form in forms:
            if form and form not in out:
                counts[form] = counts.get(form, 0) + 1
                pairs.append((form, arch))
    out.update({form: arch for form, arch in pairs if counts[form] == 1})
    return out


def choose_finetune_ids(frame: pd.DataFrame, k: int, strategy: str = "random", seed: int = 0,
                        manual_ids: Sequence[str] = ()) -> list[str]:
    """``k`` labelled architecture ids of ``frame`` to fine-tune on.

    * ``random``: uniform without replacement (``seed``);
    * ``spread over clusters``: round-robin over FCM clusters (largest first), random within each;
    * ``manual``: exactly ``manual_ids`` (each must be a labelled row of ``frame``).
    """
    lab = frame[np.isfinite(frame["label"].to_numpy(dtype=float))]
    if strategy == "manual":
        ids = [str(i) for i in manual_ids]
        missing = [i for i in ids if i not in set(lab["id"])]
        if missing:
            raise ValueError(f"{len(missing)} chosen architecture(s) have no label: {', '.join(missing[:5])}")
        if not ids:
            raise ValueError("choose at least one architecture")
        return ids
    if strategy not in FINETUNE_STRATEGIES:
        raise ValueError(f"strategy must be one of {FINETUNE_STRATEGIES}, got {strategy!r}")
    k = int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if len(lab) < k:
        raise ValueError(f"only {len(lab)} labelled architectures available, asked for k = {k}")
    rng = np.random.default_rng(seed)
    if strategy == "random":
        return lab["id"].iloc[np.sort(rng.choice(len(lab), size=k, replace=False))].tolist()
    groups = [g["id"].tolist() for _, g in lab.groupby("cluster")]
    groups = [list(rng.permutation(g)) for g in sorted(groups, key=len, reverse=True)]
    out: list[str] = []
    while len(out) < k:
        for g in groups:
            if g and len(out) < k:
                out.append(str(g.pop()))
    return out


@dataclass
class FinetuneOutcome:
    """A fine-tuned copy of the model with before / after predictions on held-out rows."""

    model: Any
    train_ids: list[str]
    eval_ids: list[str]
    y_eval: np.ndarray
    before: np.ndarray
    after: np.ndarray
    metrics_before: dict[str, float]
    metrics_after: dict[str, float]
    history: list[tuple[str, int, int, dict]]
    settings: dict[str, Any]
    seconds: float

    def metrics_table(self) -> pd.DataFrame:
        """Before / after per metric (metrics undefined on both sides, e.g. MAE of scores, dropped)."""
        keys = [k for k in self.metrics_before if k != "n"
                and (np.isfinite(self.metrics_before[k]) or np.isfinite(self.metrics_after.get(k, np.nan)))]
        return pd.DataFrame({"metric": keys, "before": [self.metrics_before[k] for k in keys],
                             "after": [self.metrics_after.get(k, np.nan) for k in keys]})

    def predictions(self) -> pd.DataFrame:
        return pd.DataFrame({"id": self.eval_ids, "label": self.y_eval, "before": self.before, "after": self.after})

    def checkpoint_zip(self) -> bytes:
        """The fine-tuned model as a checkpoint zip (:func:`save_model_zip`) whose model card also
        records what the app did: the settings (family, label set, sampling, seed, ...), the
        training ids and the before / after metrics on the held-out rows (numpy values are made
        JSON by the checkpoint writer)."""
        card = dict(self.model.model_card)
        info = dict(card.get("finetune", {}))
        info["app"] = {"settings": dict(self.settings), "train_ids": list(self.train_ids),
                       "held_out": {"n": len(self.eval_ids), "before": dict(self.metrics_before),
                                    "after": dict(self.metrics_after)}}
        card["finetune"] = info
        model = copy.copy(self.model)  # a shallow copy with its own card: the session's model is left as it is
        model.model_card = card
        return save_model_zip(model)


def _scores_only(predictor: ScoringModel, cgs: Sequence[CG], reference: Any = None) -> np.ndarray:
    out = predictor.predict(cgs) if reference is None else predictor.predict(cgs, reference=reference)
    return _prediction_frame(out, len(cgs))["score"].to_numpy(dtype=float)


def finetune_and_evaluate(predictor: ScoringModel, train_cgs: Sequence[CG], train_y: Sequence[float],
                          eval_cgs: Sequence[CG], eval_y: Sequence[float], *, train_ids: Sequence[str] = (),
                          eval_ids: Sequence[str] = (), epochs: int = 20, seed: int = 0,
                          callback: Callback | None = None, selection: str | None = None,
                          reference: Callable[[Any], Any] | None = None) -> FinetuneOutcome:
    """Fine-tune a **deep copy** of ``predictor`` on ``(train_cgs, train_y)`` and compare its
    ranking of ``eval_cgs`` with the original's.  The original (often a cached model shared by
    every session) is never modified.  ``selection``: ``finetune.selection`` of the copy
    (``"paper"`` or ``"cv"``; None: the model's own).  ``reference(model)``: the fixed reference
    population that puts ``model``'s scores on the workspace's scale (the app:
    :func:`workspace_reference`), so "before" equals the score the other pages show; None: the
    scores are relative to ``eval_cgs``."""
    from engine.train.callbacks import History

    if len(train_cgs) != len(train_y):
        raise ValueError(f"{len(train_cgs)} training CGs but {len(train_y)} labels")
    y = np.asarray(train_y, dtype=float)
    if not np.isfinite(y).all():
        raise ValueError("every fine-tuning architecture needs a numeric label")
    t0 = time.perf_counter()
    hist = History()

    def cb(stage, step, total, metrics=None):
        hist(stage, step, total, metrics)
        _notify(callback, stage, step, total, metrics)

    # finetune returns a tuned copy; the predictor (often the cached model shared by every session) is untouched
    tuned = predictor.finetune(list(train_cgs), y, k=len(train_cgs), seed=int(seed), callback=cb, epochs=int(epochs),
                               selection=selection)
    ye = np.asarray(eval_y, dtype=float)
    ref = reference or (lambda _model: None)
    before = _scores_only(predictor, eval_cgs, ref(predictor)) if len(eval_cgs) else np.zeros(0)
    after = _scores_only(tuned, eval_cgs, ref(tuned)) if len(eval_cgs) else np.zeros(0)
    mb = compute_metrics(ye, before) if len(ye) >= 3 else {}
    ma = compute_metrics(ye, after) if len(ye) >= 3 else {}
    return FinetuneOutcome(tuned, list(train_ids), list(eval_ids), ye, before, after, mb, ma, hist.events,
                           {"k": len(train_cgs), "epochs": int(epochs), "seed": int(seed),
                            **({"selection": selection} if selection is not None else {})},
                           time.perf_counter() - t0)


def kept_base_message(info: Mapping[str, Any]) -> str:
    """For a fine-tuning record (``model_card["finetune"]``) that kept the base model: why, in
    one sentence; "" otherwise."""
    if not info.get("kept_base_model"):
        return ""
    tau = info.get("kendall_tau_cv_ensemble")
    if not tau:
        why = (f"{info.get('k', 'so few')} samples are too few to cross-validate (at least 4 are needed), so no gain "
               "from fine-tuning could be measured (choose the paper's weights to fine-tune on them anyway)")
    else:
        b, f = float(tau.get("base", math.nan)), float(tau.get("finetuned", math.nan))
        if not (math.isfinite(b) and math.isfinite(f)):
            why = ("no ranking could be measured on held-out folds of the fine-tuning samples (Kendall τ undefined, "
                   "e.g. equal labels)")
        elif math.isclose(b, f, rel_tol=0.0, abs_tol=1e-12):
            why = (f"on held-out folds of the fine-tuning samples the fine-tuned ensemble ranked them only as well as "
                   f"its own score (Kendall τ {b:.3f} both; a tie keeps the base model)")
        else:
            why = (f"on held-out folds of the fine-tuning samples its own score ranked them better (Kendall τ {b:.3f}) "
                   f"than the fine-tuned ensemble did ({f:.3f})")
    return (f"The base model was kept unchanged: {why}. Its zero-shot weights stay, with its in-domain members for "
            "architectures inside its training domain.")


#: ``finetune.selection`` values and their labels in the app
FINETUNE_SELECTIONS = {"auto": "Auto (cross-validated inside the training domain)",
                       "paper": "Paper (τ on the samples)", "cv": "Cross-validated"}


def finetune_member_table(predictor: Any) -> pd.DataFrame:
    """How a fine-tuned model combines its members: ``member, weight, version`` and, after
    cross-validated selection (``finetune.selection = "cv"``), the mean out-of-fold Kendall tau
    of the pre-trained and the fine-tuned version; else the tau on the fine-tuning samples.
    Empty for a model that was not fine-tuned."""
    info = model_card_dict(predictor).get("finetune") or {}
    weights = info.get("weights") or {}
    if not weights:
        return pd.DataFrame(columns=["member", "weight", "version"])
    pre = info.get("kendall_tau_cv_pretrained") or {}
    post = info.get("kendall_tau_cv_finetuned") or {}
    kept = set(info.get("kept_pretrained") or ())
    rows = []
    for m, w in sorted(weights.items(), key=lambda kv: -kv[1]):
        row = {"member": m, "weight": float(w),
               "version": ("no weights to tune" if m in ("flops_baseline", "params_baseline", "graph_stats")
                           else "pre-trained" if m in kept else "fine-tuned")}
        if pre:
            row["out-of-fold τ, pre-trained"] = pre.get(m, (info.get("kendall_tau_cv") or {}).get(m, np.nan))
            row["out-of-fold τ, fine-tuned"] = post.get(m, (info.get("kendall_tau_cv") or {}).get(m, np.nan))
        else:
            row["τ on the fine-tuning samples"] = (info.get("kendall_tau_on_finetune_set") or {}).get(m, np.nan)
        rows.append(row)
    return pd.DataFrame(rows)


def save_model_zip(predictor: Any) -> bytes:
    """The predictor's checkpoint folder (``predictor.save(dir)``) as zip bytes."""
    import io
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / "checkpoint"
        predictor.save(target)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            root = target if target.exists() else Path(tmp)
            for p in sorted(root.rglob("*")):
                if p.is_file():
                    zf.write(p, arcname=str(Path("checkpoint") / p.relative_to(root)))
        return buf.getvalue()
