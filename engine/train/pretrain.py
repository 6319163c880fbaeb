"""Contrastive pre-training of the GENNAPE graph encoder (paper Eq. 1).

:func:`graph_spectra` gives the q smallest normalised-Laplacian eigenvalues of every CG (the
soft-positive similarity, computed by :mod:`engine.graphs.spectral`), :func:`pretrain_contrastive`
runs the epochs.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from engine.model.config import ContrastiveConfig
from engine.model.contrastive import ContrastiveEncoder
from engine.model.packing import PackedGraphs, as_packed
from engine.train.callbacks import Callback, notify


def graph_spectra(graphs, q: int = 21, callback: Callback | None = None, cache: bool = True) -> torch.Tensor:
    """``(N, q)`` float32 spectra (:func:`engine.graphs.spectral.laplacian_spectrum_from_edges`)
    of CGs (a sequence of CG, a ``CGStore``) or a ``PackedGraphs``.

    Works on the packed edge lists (no CG objects are materialised), computes each distinct
    topology once (architectures of a family often share their undirected graph) and, with
    ``cache``, stores the whole result as one ``.npy`` under ``cache_dir()/spectra`` keyed by a
    hash of the edge arrays and ``q``.
    """
    from engine.graphs.spectral import laplacian_spectrum_from_edges

    packed = as_packed(graphs)
    n = len(packed)
    ptr, eptr = packed.ptr.numpy(), packed.eptr.numpy()
    ei = packed.edge_index.numpy()
    path = None
    if cache:
        from engine.paths import cache_dir

        h = hashlib.sha256(f"spectra-v1|q={q}".encode())
        h.update(np.ascontiguousarray(ptr).tobytes())
        h.update(np.ascontiguousarray(eptr).tobytes())
        h.update(np.ascontiguousarray(ei).tobytes())
        path = cache_dir() / "spectra" / f"batch-{n}-{h.hexdigest()[:24]}.npy"
        if path.exists():
            try:
                arr = np.load(path, allow_pickle=False)
                if arr.shape == (n, q):
                    notify(callback, "spectra", n, n, {"cached": 1})
                    return torch.from_numpy(arr.astype(np.float32))
            except (OSError, ValueError):
                pass
    out = np.zeros((n, q), dtype=np.float32)
    seen: dict[bytes, np.ndarray] = {}
    for i in range(n):
        e = (ei[:, eptr[i]:eptr[i + 1]] - ptr[i]).T
        nn_ = int(ptr[i + 1] - ptr[i])
        key = nn_.to_bytes(8, "little") + np.ascontiguousarray(e, dtype=np.int64).tobytes()
        ev = seen.get(key)
        if ev is None:
            ev = seen[key] = laplacian_spectrum_from_edges(nn_, e, q)
        out[i] = ev
        if i % 200 == 0 or i == n - 1:
            notify(callback, "spectra", i + 1, n, {"distinct": len(seen)})
    if path is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp.npy")
            np.save(tmp, out)
            tmp.replace(path)
        except OSError:  # a read-only cache must not break training
            pass
    return torch.from_numpy(out)


def pretrain_contrastive(model: ContrastiveEncoder, packed: PackedGraphs, spectra: torch.Tensor,
                         cfg: ContrastiveConfig, seed: int = 0, callback: Callback | None = None,
                         epochs: int | None = None) -> dict[str, list[float]]:
    """Train encoder + projection head on Eq. 1; returns per-epoch ``loss`` and ``pos_top1``.

    Batches of ``cfg.batch_size`` CGs in a seeded random order every epoch; Adam with
    gradient-norm clipping.  The final batch of an epoch is dropped when it has fewer than 2
    graphs (the loss needs negatives)."""
    epochs = cfg.epochs if epochs is None else epochs
    n = len(packed)
    if spectra.shape[0] != n:
        raise ValueError(f"pretrain: {spectra.shape[0]} spectra for {n} graphs")
    g = torch.Generator()
    g.manual_seed(int(seed))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    bs = max(2, min(cfg.batch_size, n))
    steps_per_epoch = max(1, n // bs if n % bs < 2 else n // bs + 1)
    total_steps = epochs * steps_per_epoch
    hist: dict[str, list[float]] = {"loss": [], "pos_top1": []}
    step = 0
    model.train()
    for ep in range(epochs):
        perm = torch.randperm(n, generator=g)
        losses, tops = [], []
        for s in range(0, n, bs):
            idx = perm[s:s + bs]
            if idx.numel() < 2:
                continue
            loss, metrics = model.loss(packed.select(idx), spectra[idx])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()
            losses.append(metrics["loss"])
            tops.append(metrics["pos_top1"])
            step += 1
            notify(callback, "pretrain", step, total_steps, {"epoch": ep + 1, **metrics})
        hist["loss"].append(float(np.mean(losses)) if losses else float("nan"))
        hist["pos_top1"].append(float(np.mean(tops)) if tops else float("nan"))
    model.eval()
    return hist
