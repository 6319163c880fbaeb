"""GENNAPE checkpoints: a folder of plain files, loaded without unpickling anything.

=================== =========================================================================
config.json         :class:`engine.model.config.GennapeConfig` as JSON
weights.safetensors every torch weight (encoder + projection, heads, pairwise, k-GNN), flat
                    keys prefixed ``cl.`` / ``heads.`` / ``pairwise.`` / ``kgnn.``
state.json          FCM centroids (``FuzzyCMeans.to_state``), Eq. 5 / Z-score statistics,
                    pairwise calibrations, ensemble weights, format and feature versions
model_card.json     source families, label provenance, training command, measured metrics
domain.safetensors  (optional) the novelty bank of training embeddings (:mod:`engine.model.domain`);
                    its percentiles are in ``state.json``
=================== =========================================================================
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from engine.graphs.cg import FEATURE_VERSION, feature_names

CHECKPOINT_FORMAT = 1
FILES = ("config.json", "weights.safetensors", "state.json", "model_card.json")
DOMAIN_FILE = "domain.safetensors"  # optional


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    return obj


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False))
    tmp.replace(path)


def save_checkpoint(predictor, directory) -> Path:
    """Write ``predictor`` to ``directory`` (created; existing checkpoint files replaced)."""
    import torch
    from safetensors.torch import save_file

    predictor._require_fitted()
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    _write_json(d / "config.json", predictor.config.to_dict())
    tmp = d / "weights.safetensors.tmp"
    save_file(predictor.state_dict(), str(tmp), metadata={"format": f"gennape-checkpoint/{CHECKPOINT_FORMAT}"})
    tmp.replace(d / "weights.safetensors")
    state = {
        "format": CHECKPOINT_FORMAT,
        "feature_version": FEATURE_VERSION,
        "feature_names": feature_names(),
        "n_clusters": predictor.n_clusters,
        "embed_dim": predictor.embed_dim,
        "kgnn": predictor.kgnn is not None,
        "fcm": predictor.fcm.to_state(),
        "transforms": {k: t.to_state() for k, t in predictor.transforms.items()},
        "pair_calibration": {k: list(v) for k, v in predictor.pair_calibration.items()},
        "weights": predictor.weights,
        "graph_stats": predictor.stats.to_state() if predictor.stats is not None else None,
        "domain": predictor.domain.to_state() if predictor.domain is not None else None,
    }
    if predictor.domain is not None:  # the novelty bank (engine.model.domain): a tensor file, not JSON
        tmp = d / "domain.safetensors.tmp"
        save_file({"bank": torch.from_numpy(predictor.domain.bank_)}, str(tmp),
                  metadata={"format": f"gennape-checkpoint/{CHECKPOINT_FORMAT}"})
        tmp.replace(d / DOMAIN_FILE)
    else:
        (d / DOMAIN_FILE).unlink(missing_ok=True)
    _write_json(d / "state.json", state)
    _write_json(d / "model_card.json", predictor.model_card)
    return d


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing checkpoint file (a checkpoint folder holds {', '.join(FILES)})")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None


class _entry:
    """Context: any malformed-data error inside becomes ``ValueError("<file>: bad '<field>' entry (...)")``."""

    def __init__(self, path: Path, name: str) -> None:
        self.path, self.name = path, name

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is not None and isinstance(exc, (KeyError, TypeError, ValueError, AttributeError, IndexError)):
            what = f"missing field {exc.args[0]!r}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"{self.path}: bad {self.name!r} entry ({what})") from None
        return False


def _object(v: Any) -> dict:
    if not isinstance(v, dict):
        raise TypeError(f"expected an object, got {type(v).__name__}")
    return v


def _finite(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {v!r}")
    return float(v)


def _finite_pair(v: Any) -> tuple[float, float]:
    if not isinstance(v, list) or len(v) != 2:
        raise ValueError(f"expected [scale, offset], got {v!r}")
    return _finite(v[0]), _finite(v[1])


def load_checkpoint(directory, domain: bool = True):
    """Rebuild a :class:`engine.model.predictor.GennapePredictor` from ``directory``.
    ``domain=False`` skips the novelty reference (``calibrate-domain`` rebuilds a missing or
    broken one)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from engine.model.clustering import FuzzyCMeans
    from engine.model.config import GennapeConfig
    from engine.model.domain import KIND as DOMAIN_KIND
    from engine.model.domain import DomainReference
    from engine.model.graph_stats import GraphStatsRanker
    from engine.model.predictor import HEAD_MEMBERS, GennapePredictor
    from engine.model.transform import transform_from_state

    d = Path(directory)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: checkpoint folder not found")
    spath = d / "state.json"
    try:
        config = GennapeConfig.from_dict(_read_json(d / "config.json"))
    except ValueError as exc:
        text = str(exc)
        raise ValueError(text if str(d) in text else f"{d / 'config.json'}: {text}") from None
    state = _read_json(spath)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else f"(a JSON {type(state).__name__})"
        raise ValueError(f"{spath}: checkpoint format {found!r} is not {CHECKPOINT_FORMAT}")
    if state.get("feature_version") != FEATURE_VERSION:
        raise ValueError(f"{d}: checkpoint was trained with node-feature version {state.get('feature_version')}, "
                         f"this engine computes version {FEATURE_VERSION}; retrain the checkpoint")
    card = _read_json(d / "model_card.json")
    wpath = d / "weights.safetensors"
    if not wpath.exists():
        raise FileNotFoundError(f"{wpath}: missing checkpoint file")
    try:
        weights = load_file(str(wpath))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ValueError(f"{wpath}: unreadable safetensors file ({exc})") from None

    n_clusters = state.get("n_clusters")
    if not isinstance(n_clusters, int) or isinstance(n_clusters, bool) or not 1 <= n_clusters <= 1024:
        raise ValueError(f"{spath}: field 'n_clusters' must be an int in 1..1024, got {n_clusters!r}")
    pred = GennapePredictor(config)
    pred._build(n_clusters)
    if not state.get("kgnn", True):
        pred.kgnn = None
    try:
        pred.load_state_dict(weights)
    except (RuntimeError, KeyError, ValueError) as exc:  # names / shapes that config.json does not describe
        first = str(exc).strip().splitlines()
        raise ValueError(f"{wpath}: the weights do not match {d / 'config.json'} and state.json 'n_clusters' / "
                         f"'kgnn' ({' '.join(first[:3])[:600]})") from None
    with _entry(spath, "fcm"):
        pred.fcm = FuzzyCMeans.from_state(state["fcm"])
    if pred.fcm.cluster_centers_.shape != (n_clusters, pred.embed_dim):
        raise ValueError(f"{spath}: field 'fcm' has centroids of shape {pred.fcm.cluster_centers_.shape}; "
                         f"expected ({n_clusters}, {pred.embed_dim}) (n_clusters x embedding size)")
    with _entry(spath, "transforms"):
        pred.transforms = {str(k): transform_from_state(v) for k, v in _object(state["transforms"]).items()}
    missing = sorted({kind for _fcm, kind in HEAD_MEMBERS.values()} - set(pred.transforms))
    if missing:
        raise ValueError(f"{spath}: field 'transforms' lacks {missing}; expected the keys 'flops' and 'identity'")
    with _entry(spath, "pair_calibration"):
        pred.pair_calibration = {str(k): _finite_pair(v)
                                 for k, v in _object(state.get("pair_calibration", {})).items()}
    with _entry(spath, "weights"):
        pred.weights = {str(k): _finite(v) for k, v in _object(state["weights"]).items()}
    if any(v < 0 for v in pred.weights.values()) or sum(pred.weights.values()) <= 0:
        raise ValueError(f"{spath}: field 'weights' must be non-negative ensemble weights with a positive sum, "
                         f"got {pred.weights}")
    if state.get("graph_stats") is not None:  # checkpoints before the graph_stats member have none
        with _entry(spath, "graph_stats"):
            pred.stats = GraphStatsRanker.from_state(state["graph_stats"])
    dom = state.get("domain") if domain else None
    if isinstance(dom, dict) and dom.get("kind") == DOMAIN_KIND:  # older checkpoints: none (novelty = NaN)
        bpath = d / DOMAIN_FILE
        if not bpath.exists():
            raise FileNotFoundError(f"{bpath}: missing (state.json has a domain entry; rebuild it with "
                                    f"`python -m engine calibrate-domain --checkpoint {d}`)")
        try:
            bank = load_file(str(bpath))["bank"].numpy()
            pred.domain = DomainReference.from_state(dom, bank)
        except (SafetensorError, OSError, KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ValueError(f"{spath} / {DOMAIN_FILE}: bad domain entry ({exc}); rebuild it with "
                             f"`python -m engine calibrate-domain --checkpoint {d}`") from None
        if pred.domain.bank_.ndim != 2 or pred.domain.bank_.shape[1] != pred.embed_dim:
            raise ValueError(f"{d / DOMAIN_FILE}: bank of shape {tuple(pred.domain.bank_.shape)}; expected "
                             f"(rows, {pred.embed_dim}) (the embedding size)")
    elif dom is not None and not isinstance(dom, dict):
        raise ValueError(f"{spath}: bad domain entry (expected an object)")
    # zero-shot weights name ``members``; a fine-tuned copy's weights name ``finetune_members``
    unavailable = [m for m in pred.weights if m not in (*pred.members, *pred.finetune_members)]
    if unavailable:
        raise ValueError(f"{spath}: ensemble weights name member(s) {unavailable} the checkpoint lacks")
    pred.model_card = card if isinstance(card, dict) else {}
    pred._eval()
    return pred
