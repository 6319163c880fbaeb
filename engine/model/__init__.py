"""The GENNAPE predictor: graph encoder, contrastive pre-training, FCM ensemble, members.

>>> from engine.model import load_default
>>> predictor = load_default()                 # the shipped checkpoint in assets/checkpoint/
>>> df = predictor.predict(cgs)                # score, flops, params, cluster, memberships, members

Modules: :mod:`~engine.model.packing` (CG -> tensors), :mod:`~engine.model.encoder` (k-GNN),
:mod:`~engine.model.contrastive` (Eq. 1), :mod:`~engine.model.clustering` (FCM),
:mod:`~engine.model.heads` (MLP, MLP-E, pairwise), :mod:`~engine.model.kgnn` (baseline),
:mod:`~engine.model.transform` (Eq. 5), :mod:`~engine.model.ensemble` (score),
:mod:`~engine.model.predictor` (facade), :mod:`~engine.model.checkpoint` (files).
"""

from __future__ import annotations

from pathlib import Path

from engine.model.config import MEMBERS, PAPER_ENSEMBLE, GennapeConfig


def default_checkpoint_dir() -> Path:
    from engine.paths import assets_dir

    return assets_dir() / "checkpoint"


def load_default():
    """The shipped checkpoint (``assets/checkpoint/``) as a ``GennapePredictor``."""
    from engine.model.predictor import GennapePredictor

    path = default_checkpoint_dir()
    if not (path / "weights.safetensors").exists():
        raise FileNotFoundError(
            f"no shipped GENNAPE checkpoint at {path}; train one with "
            "'python -m engine pretrain --families nb201 --output assets/checkpoint' or pass --checkpoint DIR")
    return GennapePredictor.load(path)


def __getattr__(name: str):  # lazy heavy imports (torch / torch_geometric)
    if name == "GennapePredictor":
        from engine.model.predictor import GennapePredictor

        return GennapePredictor
    raise AttributeError(name)


__all__ = ["MEMBERS", "PAPER_ENSEMBLE", "GennapeConfig", "GennapePredictor", "default_checkpoint_dir", "load_default"]
