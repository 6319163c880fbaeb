"""``GennapePredictor``: the whole GENNAPE pipeline behind one object.

    fit:      CGs --contrastive pre-training (Eq. 1)--> encoder
              embeddings --Fuzzy C-Means--> centroids, memberships U
              frozen embeddings + labels --> members (below)
    predict:  CGs -> one encoder pass -> embedding h, memberships U -> every member -> score

Members (columns of :meth:`GennapePredictor.predict`; paper Tables 3-5):

============== ============================================================================
cl_fcm_t       CL+FCM+T: FCM MLP ensemble on Eq. 5 labels, inverse-transformed to accuracy %
cl_t           CL+T: one MLP on Eq. 5 labels -> accuracy %
cl_fcm         CL+FCM: FCM MLP ensemble on Z-scored accuracy -> accuracy %
cl             CL: one MLP on Z-scored accuracy -> accuracy %
pairwise       CL+Pairwise: scalar scorer g(h) trained on pairs, linearly calibrated to accuracy %
               (``pairwise.target="t"``, default: pairs ordered by Eq. 5 labels, g calibrated to
               the Eq. 5 label and inverse-transformed; ``"acc"``: raw accuracy order, g -> %)
pairwise_fcm   CL+Pairwise+FCM: FCM mixture of scorers, calibrated likewise
kgnn           k-GNN regressor baseline (authors' configuration), accuracy %
flops_baseline log10(FLOPs) (a score, not an accuracy)
params_baseline log10(params) (a score, not an accuracy)
============== ============================================================================

``score`` (higher = more accurate) combines ``config.ensemble.members`` -- by default the
paper's GENNAPE ensemble: cl_fcm_t, cl_t, pairwise, pairwise_fcm, kgnn, flops_baseline --
with equal weights zero-shot or ``softmax(KT)`` weights after :meth:`finetune`; see
:mod:`engine.model.ensemble` for the standardisation and the quantile mapping that reports
``score`` in accuracy units (anchored on cl_fcm_t).  With ``ensemble.in_domain_members`` set,
zero-shot rows inside the training domain (:meth:`novelty` <= 1, :mod:`engine.model.domain`)
combine those members instead (the shipped checkpoint: cl_fcm, cl, pairwise inside;
graph_stats, FLOPs and params outside); ``predict(...).attrs["in_domain_rows"]`` counts them.

Heads are trained on *frozen* contrastive embeddings (the encoder is never updated by labels);
fine-tuning updates heads, pairwise scorers and the k-GNN of a deep copy.

Zero-shot note (why Eq. 5 matters for unseen, larger networks): a head that predicts a
constant y gives accuracy = (y std + mean)(log10(GFLOPs + 1) + 1), i.e. the FLOPs ranking; the
heads learn the correction on top.  Accuracies of families far from the training data (e.g.
224 px ImageNet networks for a CIFAR-trained model) are therefore *ranked* sensibly but their
absolute values are off until fine-tuned.
"""

from __future__ import annotations

import copy
import time
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from engine.model import dedup
from engine.model.clustering import FuzzyCMeans
from engine.model.config import MEMBERS, GennapeConfig
from engine.model.contrastive import ContrastiveEncoder
from engine.model.domain import DomainReference
from engine.model.encoder import embed_packed
from engine.model.ensemble import DegenerateReference, EnsembleReference, equal_weights
from engine.model.graph_stats import GraphStatsRanker, graph_stats
from engine.model.heads import MLPEnsemble, PairwiseScorer
from engine.model.kgnn import KGNNRegressor
from engine.model.packing import as_packed
from engine.model.transform import FlopsTransform, IdentityTransform, LabelTransform
from engine.train.callbacks import Callback, notify

#: head members: name -> (uses FCM memberships, label transform kind)
HEAD_MEMBERS = {"cl_fcm_t": (True, "flops"), "cl_t": (False, "flops"),
                "cl_fcm": (True, "identity"), "cl": (False, "identity")}
#: pairwise members: name -> uses FCM memberships
PAIR_MEMBERS = {"pairwise": False, "pairwise_fcm": True}
BASELINES = ("flops_baseline", "params_baseline")
#: members whose values are scores, not accuracies (no MAE)
SCORE_MEMBERS = (*BASELINES, "graph_stats")


def _kendall(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import kendalltau

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    return float(kendalltau(a, b).statistic)


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0 or not (np.isfinite(a).all() and np.isfinite(b).all()):
        return float("nan")
    return float(spearmanr(a, b).statistic)


def _labels(acc: Any, n: int, where: str) -> np.ndarray:
    """One accuracy in percent (0..100) per CG; NaN marks an unlabelled CG.  Raises a
    :class:`ValueError` naming the first bad row."""
    if acc is None:
        raise ValueError(f"{where}: no labels given (expected {n}, one accuracy in percent per CG)")
    try:
        a = np.asarray(acc, dtype=np.float64)
    except (TypeError, ValueError):
        rows = list(acc) if isinstance(acc, (list, tuple, np.ndarray, pd.Series)) else [acc]
        for i, v in enumerate(rows):
            try:
                float(v)
            except (TypeError, ValueError):
                raise ValueError(f"{where}: label {v!r} at row {i} is not a number "
                                 "(expected an accuracy in percent, NaN for unlabelled)") from None
        raise ValueError(f"{where}: labels must be a flat list of numbers, one per CG") from None
    if a.ndim == 0 or (a.ndim == 2 and 1 in a.shape):  # one scalar, or a row / column vector
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{where}: labels have shape {a.shape}; expected a flat list of {n}, one per CG")
    if a.size != n:
        raise ValueError(f"{where}: {a.size} labels for {n} CGs")
    inf = np.flatnonzero(np.isinf(a))
    if inf.size:
        raise ValueError(f"{where}: label {a[inf[0]]} at row {inf[0]} is not finite (NaN marks an unlabelled CG)")
    bad = np.flatnonzero(np.isfinite(a) & ((a < 0) | (a > 100)))
    if bad.size:
        raise ValueError(f"{where}: label {a[bad[0]]} at row {bad[0]} is not an accuracy in percent (0..100)")
    finite = a[np.isfinite(a)]
    if finite.size >= 2 and finite.max() <= 1.0:
        warnings.warn(f"{where}: every label lies in 0..1; they are read as percent. If they are fractions, "
                      "multiply them by 100 (uploads do this automatically, see engine.data.uploads)", stacklevel=3)
    return a


class GennapePredictor:
    """Generalised neural architecture performance estimator (see module docstring)."""

    def __init__(self, config: GennapeConfig | None = None) -> None:
        self.config = config or GennapeConfig()
        self.cl: ContrastiveEncoder | None = None
        self.fcm: FuzzyCMeans | None = None
        self.transforms: dict[str, LabelTransform] = {}
        self.heads = nn.ModuleDict()
        self.pairwise = nn.ModuleDict()
        self.pair_calibration: dict[str, tuple[float, float]] = {}
        self.kgnn: KGNNRegressor | None = None
        self.stats: GraphStatsRanker | None = None
        self.domain: DomainReference | None = None
        self.weights: dict[str, float] = {}
        self.model_card: dict[str, Any] = {}
        self.history: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------------
    # properties
    # ------------------------------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self.cl is not None and self.fcm is not None

    @property
    def n_clusters(self) -> int:
        self._require_fitted()
        return int(self.fcm.cluster_centers_.shape[0])

    @property
    def embed_dim(self) -> int:
        self._require_fitted()
        return self.cl.embed_dim

    @property
    def members(self) -> tuple[str, ...]:
        """Members feeding ``score`` (config order, available ones only)."""
        return self._available(self.config.ensemble.members)

    @property
    def finetune_members(self) -> tuple[str, ...]:
        """Members weighted by ``softmax(KT)`` after :meth:`finetune` (``ensemble.finetune_members``,
        else the zero-shot members; available ones only)."""
        return self._available(self.config.ensemble.finetune_members or self.config.ensemble.members)

    @property
    def inside_weights(self) -> dict[str, float]:
        """Zero-shot weights for architectures inside the training domain (novelty <= 1):
        equal over ``ensemble.in_domain_members`` (available ones); {} = no gating (also when the
        checkpoint has no domain reference)."""
        names = self._available(self.config.ensemble.in_domain_members)
        return equal_weights(names) if names and self.domain is not None else {}

    def _available(self, names) -> tuple[str, ...]:
        missing = {m for m, mod in (("kgnn", self.kgnn), ("graph_stats", self.stats)) if mod is None}
        return tuple(m for m in names if m not in missing)

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("GennapePredictor is not fitted: call fit(...) or GennapePredictor.load(dir)")

    def __repr__(self) -> str:
        if not self.fitted:
            return "GennapePredictor(unfitted)"
        return (f"GennapePredictor(embed_dim={self.embed_dim}, clusters={self.n_clusters}, "
                f"members={list(self.members)}, trained_on={self.model_card.get('source_families', '?')})")

    # ------------------------------------------------------------------------------------------
    # construction of the modules (shared by fit and load)
    # ------------------------------------------------------------------------------------------
    def _build(self, n_clusters: int) -> None:
        cfg = self.config
        unknown = [m for m in (*cfg.ensemble.members, *cfg.ensemble.finetune_members, *cfg.ensemble.in_domain_members)
                   if m not in MEMBERS]
        if unknown:
            raise ValueError(f"ensemble.members: unknown member(s) {unknown}; expected names from {MEMBERS}")
        if cfg.ensemble.anchor not in MEMBERS[:7]:
            raise ValueError(f"ensemble.anchor must be an accuracy member {MEMBERS[:7]}, got {cfg.ensemble.anchor!r}")
        self.cl = ContrastiveEncoder(cfg.encoder, cfg.contrastive)
        e = self.cl.embed_dim
        hc, pc = cfg.heads, cfg.pairwise
        self.heads = nn.ModuleDict({
            name: MLPEnsemble(e, n_clusters if fcm else 1, hc.hidden, hc.layers, hc.dropout, hc.ensemble_loss)
            for name, (fcm, _) in HEAD_MEMBERS.items()})
        self.pairwise = nn.ModuleDict({
            name: PairwiseScorer(e, n_clusters if fcm else 1, pc.hidden, pc.layers)
            for name, fcm in PAIR_MEMBERS.items()})
        self.kgnn = KGNNRegressor(cfg.kgnn) if cfg.kgnn.enabled else None

    def modules(self) -> dict[str, nn.Module]:
        """Every torch module by checkpoint prefix."""
        mods: dict[str, nn.Module] = {}
        if self.cl is not None:
            mods["cl"] = self.cl
        mods["heads"] = self.heads
        mods["pairwise"] = self.pairwise
        if self.kgnn is not None:
            mods["kgnn"] = self.kgnn
        return mods

    def state_dict(self) -> dict[str, torch.Tensor]:
        """All torch weights, flat, prefixed by module (what ``weights.safetensors`` holds)."""
        out = {}
        for prefix, mod in self.modules().items():
            for k, v in mod.state_dict().items():
                out[f"{prefix}.{k}"] = v.detach().clone().contiguous()
        return out

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for prefix, mod in self.modules().items():
            sub = {k[len(prefix) + 1:]: v for k, v in state.items() if k.startswith(prefix + ".")}
            mod.load_state_dict(sub, strict=True)
        known = tuple(p + "." for p in self.modules())
        extra = [k for k in state if not k.startswith(known)]
        if extra:
            raise ValueError(f"checkpoint weights have unexpected entries, e.g. {extra[:3]}")

    def _eval(self) -> None:
        for mod in self.modules().values():
            mod.eval()

    # ------------------------------------------------------------------------------------------
    # training
    # ------------------------------------------------------------------------------------------
    def fit(self, cgs, acc: Any, config: GennapeConfig | None = None, callback: Callback | None = None,
            source: dict[str, Any] | None = None, groups: Any = None) -> GennapePredictor:
        """Train every stage on CGs (a sequence of CG, a ``CGStore`` or a ``PackedGraphs``)
        with accuracies ``acc`` in percent (NaN = unlabelled: used for contrastive pre-training
        and clustering only).  ``source`` (families, provenance, command...) goes into the model
        card.  ``groups`` (one label per CG, e.g. its family or dataset) restricts the pairwise
        scorers' training pairs to one group when ``pairwise.within_groups`` is set.
        Returns ``self``."""
        from engine.train.fit import linear_calibration, train_ensemble, train_kgnn, train_pairwise
        from engine.train.pretrain import graph_spectra, pretrain_contrastive

        if config is not None:
            self.config = config
        cfg = self.config
        t_all = time.perf_counter()
        old_threads = torch.get_num_threads()
        if cfg.train.threads:
            torch.set_num_threads(int(cfg.train.threads))
        try:
            seed = cfg.train.seed
            timings: dict[str, float] = {}
            t0 = time.perf_counter()
            packed = as_packed(cgs)
            n = len(packed)
            a = _labels(acc, n, "fit")
            keep = np.isfinite(a)
            if cfg.train.min_acc is not None:
                keep &= a >= cfg.train.min_acc
            sel = np.flatnonzero(keep)
            if sel.size < 4:
                raise ValueError(f"fit: need at least 4 labelled CGs (accuracy >= {cfg.train.min_acc}), got {sel.size}")
            spectra = graph_spectra(packed, cfg.contrastive.q, callback)
            timings["prepare_s"] = time.perf_counter() - t0

            # 1. contrastive pre-training ---------------------------------------------------
            t0 = time.perf_counter()
            torch.manual_seed(seed)
            n_clusters = max(1, min(cfg.fcm.n_clusters, n))
            self._build(n_clusters)
            hist_cl = pretrain_contrastive(self.cl, packed, spectra, cfg.contrastive, seed=seed, callback=callback)
            timings["pretrain_s"] = time.perf_counter() - t0
            timings["pretrain_s_per_epoch"] = timings["pretrain_s"] / max(cfg.contrastive.epochs, 1)

            # 2. embeddings and FCM ------------------------------------------------------------
            t0 = time.perf_counter()
            h_all = embed_packed(self.cl.encoder, packed)
            notify(callback, "embed", n, n)
            self.fcm = FuzzyCMeans(n_clusters, m=cfg.fcm.m, max_iter=cfg.fcm.max_iter, tol=cfg.fcm.tol,
                                   random_state=seed).fit(h_all.double().numpy())
            u_all = torch.from_numpy(self.fcm.membership_).to(torch.float32)
            notify(callback, "fcm", 1, 1, {"iterations": int(self.fcm.n_iter_)})
            self.domain = DomainReference(random_state=seed).fit(h_all.numpy())
            timings["fcm_s"] = time.perf_counter() - t0

            # 3. supervised split ----------------------------------------------------------------
            rng = np.random.default_rng(seed)
            perm = rng.permutation(sel)
            n_val = int(round(cfg.train.val_fraction * sel.size))
            n_val = n_val if n_val >= 2 and sel.size - n_val >= 4 else 0
            val_idx, tr_idx = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            flops = packed.flops.numpy()
            self.transforms = {
                "flops": FlopsTransform().fit(a[tr_idx], flops[tr_idx]),
                "identity": IdentityTransform().fit(a[tr_idx]),
            }

            codes = None
            if groups is not None:
                glab = np.asarray(groups, dtype=object)
                if glab.shape != (n,):
                    raise ValueError(f"fit: groups has shape {glab.shape}, expected ({n},) (one label per CG)")
                _, codes = np.unique(glab.astype(str), return_inverse=True)
            # train.group_labels: each group's head labels re-standardised with that group's
            # training mean/std, so heads learn within-family differences, not family offsets
            group_stats: dict[tuple[str, int], tuple[float, float]] = {}
            if cfg.train.group_labels and codes is not None:
                for kind, tf in self.transforms.items():
                    y_tr = tf.transform(a[tr_idx], flops[tr_idx])
                    for c in np.unique(codes[tr_idx]):
                        v = y_tr[codes[tr_idx] == c]
                        sd = float(v.std())
                        group_stats[(kind, int(c))] = (float(v.mean()), sd if sd > 1e-12 else 1.0)

            def labels_for(kind: str, idx: np.ndarray) -> torch.Tensor:
                y = self.transforms[kind].transform(a[idx], flops[idx])
                if group_stats:
                    for c in np.unique(codes[idx]):
                        mu, sd = group_stats.get((kind, int(c)), (0.0, 1.0))
                        m = codes[idx] == c
                        y[m] = (y[m] - mu) / sd
                return torch.from_numpy(y).to(torch.float32)

            h_tr, u_tr = h_all[tr_idx], u_all[tr_idx]
            h_va, u_va = h_all[val_idx], u_all[val_idx]

            # 4. heads ------------------------------------------------------------------------------
            t0 = time.perf_counter()
            hist_heads = {}
            for k, (name, (use_fcm, kind)) in enumerate(HEAD_MEMBERS.items()):
                torch.manual_seed(seed + 101 + k)
                self.heads[name] = MLPEnsemble(self.cl.embed_dim, n_clusters if use_fcm else 1, cfg.heads.hidden,
                                               cfg.heads.layers, cfg.heads.dropout, cfg.heads.ensemble_loss)
                val = (h_va, labels_for(kind, val_idx), u_va if use_fcm else None) if n_val else None
                hist_heads[name] = train_ensemble(
                    self.heads[name], h_tr, labels_for(kind, tr_idx), u_tr if use_fcm else None, cfg.heads,
                    seed=seed + k, callback=callback, stage=f"head {name}", val=val)
            timings["heads_s"] = time.perf_counter() - t0

            # 5. pairwise scorers --------------------------------------------------------------------
            t0 = time.perf_counter()
            pc = cfg.pairwise
            if pc.target not in ("acc", "t"):
                raise ValueError(f"pairwise.target must be 'acc' or 't', got {pc.target!r}")
            y_pair = (torch.from_numpy(a[tr_idx]).to(torch.float32) if pc.target == "acc"
                      else labels_for("flops", tr_idx))
            gap = pc.min_gap if pc.target == "acc" else pc.min_gap / self.transforms["flops"].std_
            g_pair = None
            if pc.within_groups and codes is not None:
                g_pair = torch.from_numpy(codes[tr_idx].astype(np.int64))
            hist_pair = {}
            for k, (name, use_fcm) in enumerate(PAIR_MEMBERS.items()):
                torch.manual_seed(seed + 201 + k)
                self.pairwise[name] = PairwiseScorer(self.cl.embed_dim, n_clusters if use_fcm else 1,
                                                     pc.hidden, pc.layers)
                hist_pair[name] = train_pairwise(self.pairwise[name], h_tr, y_pair, u_tr if use_fcm else None, pc,
                                                 seed=seed + 10 + k, callback=callback, stage=f"pairwise {name}",
                                                 min_gap=gap, groups=g_pair)
                with torch.no_grad():
                    g = self.pairwise[name](h_tr, u_tr if use_fcm else None).numpy()
                self.pair_calibration[name] = linear_calibration(
                    g, y_pair.numpy(), None if g_pair is None else g_pair.numpy())
            timings["pairwise_s"] = time.perf_counter() - t0

            # 6. k-GNN baseline ----------------------------------------------------------------------
            t0 = time.perf_counter()
            hist_kgnn = {}
            if cfg.kgnn.enabled:
                torch.manual_seed(seed + 301)
                self.kgnn = KGNNRegressor(cfg.kgnn)
                y_frac = torch.from_numpy(a / 100.0).to(torch.float32)
                hist_kgnn = train_kgnn(
                    self.kgnn, packed.select(tr_idx), y_frac[tr_idx], cfg.kgnn, seed=seed + 20, callback=callback,
                    dev=packed.select(val_idx) if n_val else None, dev_y=y_frac[val_idx] if n_val else None)
            else:
                self.kgnn = None
            timings["kgnn_s"] = time.perf_counter() - t0
            timings["kgnn_s_per_epoch"] = timings["kgnn_s"] / max(cfg.kgnn.epochs, 1) if cfg.kgnn.enabled else 0.0

            # 7. whole-graph statistics ranker ---------------------------------------------------
            t0 = time.perf_counter()
            gs = cfg.graph_stats
            self.stats = None
            if gs.enabled:
                self.stats = GraphStatsRanker(C=gs.C, pairs_per_group=gs.pairs_per_group, min_gap=pc.min_gap,
                                              min_variance=gs.min_variance, merge_collinear=gs.merge_collinear,
                                              random_state=seed).fit(
                    graph_stats(packed)[tr_idx], a[tr_idx], None if codes is None else codes[tr_idx])
            timings["graph_stats_s"] = time.perf_counter() - t0

            self.weights = equal_weights(self.members)
            self._eval()
            self.history = {"contrastive": hist_cl, "heads": hist_heads, "pairwise": hist_pair, "kgnn": hist_kgnn}
            timings["total_s"] = time.perf_counter() - t_all

            # 7. model card -------------------------------------------------------------------------
            metrics = {}
            if n_val:
                metrics = self.evaluate(packed.select(val_idx), a[val_idx])
            self.model_card = {
                "model": "GENNAPE (Mills et al., AAAI-23) re-implementation",
                "n_graphs": int(n), "n_labelled": int(np.isfinite(a).sum()), "n_supervised": int(sel.size),
                "n_train": int(tr_idx.size), "n_val": int(n_val), "min_acc": cfg.train.min_acc,
                "label_range": [float(np.nanmin(a[sel])), float(np.nanmax(a[sel]))],
                "n_clusters": int(n_clusters), "embed_dim": int(self.cl.embed_dim),
                "members_in_score": list(self.members), "weights": dict(self.weights),
                "kgnn_epochs": int(cfg.kgnn.epochs) if cfg.kgnn.enabled else 0,
                "contrastive_epochs": int(cfg.contrastive.epochs),
                "final_contrastive_loss": hist_cl["loss"][-1] if hist_cl["loss"] else None,
                "domain": self._domain_card("the training CGs (all of them, labelled or not)"),
                "validation_metrics": metrics, "timings": timings,
                **(source or {}),
            }
        finally:
            torch.set_num_threads(old_threads)
        return self

    # ------------------------------------------------------------------------------------------
    # inference
    # ------------------------------------------------------------------------------------------
    def embed(self, cgs) -> np.ndarray:
        """Contrastive embeddings ``(N, embed_dim)``."""
        self._require_fitted()
        return embed_packed(self.cl.encoder, as_packed(cgs)).numpy()

    def memberships(self, cgs) -> np.ndarray:
        """FCM memberships ``(N, C)`` from the fixed training centroids (rows sum to 1)."""
        return self.fcm_memberships(self.embed(cgs))

    def novelty(self, cgs) -> np.ndarray:
        """Distance of each CG's embedding to the nearest training embedding over the training CGs'
        own 99th percentile (:mod:`engine.model.domain`): > 1 = outside the training domain.  NaN
        when the checkpoint has no domain reference (``python -m engine calibrate-domain``)."""
        return self.novelty_from_embeddings(self.embed(cgs))

    def novelty_from_embeddings(self, h: np.ndarray) -> np.ndarray:
        """:meth:`novelty` for embeddings already computed (:meth:`embed`)."""
        self._require_fitted()
        h = np.asarray(h, dtype=np.float64)
        if self.domain is None:
            return np.full(h.shape[0], np.nan)
        return self.domain.novelty(h)

    def calibrate_domain(self, cgs, note: str = "") -> GennapePredictor:
        """Fit the domain reference on ``cgs`` -- the CGs the checkpoint was trained on (for a
        checkpoint saved before :mod:`engine.model.domain` existed; :meth:`fit` does it itself).
        Changes nothing else; records ``domain`` in the model card.  Returns ``self``."""
        h = self.embed(cgs)
        self.domain = DomainReference(random_state=self.config.train.seed).fit(h)
        self.model_card["domain"] = self._domain_card(note)
        return self

    def _domain_card(self, calibrated_on: str) -> dict[str, Any]:
        d = self.domain
        return {"kind": "nearest training CG", "n": d.n_, "bank_rows": int(d.bank_.shape[0]),
                "distance_p99": d.threshold, "distance_p50": float(d.percentiles_[50]), "calibrated_on": calibrated_on}

    def fcm_memberships(self, h: np.ndarray) -> np.ndarray:
        self._require_fitted()
        return self.fcm.predict_proba(np.asarray(h, dtype=np.float64))

    def member_predictions(self, cgs, callback: Callback | None = None, stats_scale: np.ndarray | None = None
                           ) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """Every member's values and the memberships ``U`` for CGs (one encoder pass shared);
        ``stats_scale``: a reference population's spread for ``graph_stats`` (default: the CGs')."""
        out, u, _ = self._member_pass(cgs, callback, stats_scale)
        return out, u

    def _inside(self, h: np.ndarray) -> np.ndarray | None:
        """Rows inside the training domain (novelty <= 1), or None when no gating applies."""
        if not self.inside_weights:
            return None
        return self.novelty_from_embeddings(h) <= 1.0

    @torch.no_grad()
    def _member_pass(self, cgs, callback: Callback | None = None, stats_scale: np.ndarray | None = None
                     ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """:meth:`member_predictions` plus the embeddings ``(N, d)`` (float64)."""
        self._require_fitted()
        self._eval()
        packed = as_packed(cgs)
        n = len(packed)
        notify(callback, "predict", 0, n)
        hs, ks = [], []
        done = 0
        # the quotient pass (engine.model.dedup) needs far less memory per node: larger chunks
        for _start, stop, chunk in packed.chunks(max_nodes=2_000_000 if dedup.ENABLED else 300_000):
            hs.append(self.cl.encoder(chunk))
            if self.kgnn is not None:
                ks.append(self.kgnn(chunk) * 100.0)
            done = stop
            notify(callback, "predict", done, n)
        h = torch.cat(hs)
        h_np = h.double().numpy()
        u_np = self.fcm_memberships(h_np)
        u = torch.from_numpy(u_np).to(torch.float32)
        flops = packed.flops.numpy()
        out: dict[str, np.ndarray] = {}
        for name, (use_fcm, kind) in HEAD_MEMBERS.items():
            y = self.heads[name](h, u if use_fcm else None).double().numpy()
            out[name] = self.transforms[kind].inverse(y, flops)
        for name, use_fcm in PAIR_MEMBERS.items():
            g = self.pairwise[name](h, u if use_fcm else None).double().numpy()
            a, b = self.pair_calibration.get(name, (1.0, 0.0))
            v = a * g + b
            out[name] = self.transforms["flops"].inverse(v, flops) if self.config.pairwise.target == "t" else v
        out["kgnn"] = torch.cat(ks).double().numpy() if ks else np.full(n, np.nan)
        out["flops_baseline"] = np.log10(flops + 1.0)
        out["params_baseline"] = np.log10(packed.params.numpy() + 1.0)
        out["graph_stats"] = self.stats_scores(packed, stats_scale)
        return out, u_np, h_np

    def stats_scores(self, cgs, scale: np.ndarray | None = None) -> np.ndarray:
        """The ``graph_stats`` member (NaN when the checkpoint has none)."""
        packed = as_packed(cgs)
        if self.stats is None:
            return np.full(len(packed), np.nan)
        return self.stats.decision_function(graph_stats(packed), scale)

    def reference(self, cgs) -> EnsembleReference:
        """A fixed reference population: ``predict(..., reference=ref)`` then standardises
        members and maps ``score`` against it, so scores are comparable across calls."""
        packed = as_packed(cgs)
        scale = self.stats.population_scale(graph_stats(packed)) if self.stats is not None else None
        vals, _, h = self._member_pass(packed, stats_scale=scale)
        ref = EnsembleReference.fit(vals, self.weights, vals[self.config.ensemble.anchor],
                                    self.config.ensemble.standardize, self.inside_weights, self._inside(h))
        if ref.qmap.xs.size < 2:
            raise DegenerateReference(
                f"a reference population needs at least two architectures that the model tells apart; got "
                f"{len(packed)} CG(s) with one ensemble value (a single network, or copies of it)")
        ref.stats_scale = scale
        return ref

    def predict(self, cgs, callback: Callback | None = None, reference: EnsembleReference | None = None
                ) -> pd.DataFrame:
        """One row per CG: ``score, flops, params, cluster, membership_0..C-1`` then every member
        (:data:`engine.model.config.MEMBERS` order).  ``score``: higher = more accurate, in
        accuracy units (see :mod:`engine.model.ensemble`; set-relative unless ``reference``)."""
        return self.predict_with_embeddings(cgs, callback, reference)[0]

    def predict_with_embeddings(self, cgs, callback: Callback | None = None,
                                reference: EnsembleReference | None = None) -> tuple[pd.DataFrame, np.ndarray]:
        """:meth:`predict` and the embeddings ``(N, embed_dim)`` (float32) of the same encoder
        pass -- what :meth:`embed` would return, without a second pass."""
        packed = as_packed(cgs)
        vals, u, h = self._member_pass(packed, callback, getattr(reference, "stats_scale", None))
        inside = self._inside(h)
        anchor = vals[self.config.ensemble.anchor]
        ref = reference or EnsembleReference.fit(vals, self.weights, anchor, self.config.ensemble.standardize,
                                                 self.inside_weights, inside)
        score = ref.score(vals, self.weights, anchor, self.inside_weights, inside)
        cols: dict[str, Any] = {
            "score": score, "flops": packed.flops.numpy().astype(np.int64), "params": packed.params.numpy().astype(np.int64),
            "cluster": u.argmax(1).astype(np.int64)}
        for j in range(u.shape[1]):
            cols[f"membership_{j}"] = u[:, j]
        for m in MEMBERS:
            cols[m] = vals[m]
        df = pd.DataFrame(cols)
        # how many rows took the in-domain weights (None: one ensemble for every row)
        df.attrs["in_domain_rows"] = None if inside is None else int(np.sum(inside))
        return df, h.astype(np.float32)

    def evaluate(self, cgs, acc: Any) -> dict[str, dict[str, float]]:
        """SRCC / Kendall tau / MAE (accuracy members) of every member and of ``score``."""
        packed = as_packed(cgs)
        a = _labels(acc, len(packed), "evaluate")
        df = self.predict(packed)
        out = {}
        for col in ("score", *MEMBERS):
            v = df[col].to_numpy(dtype=np.float64)
            row = {"srcc": _spearman(a, v), "kendall_tau": _kendall(a, v)}
            if col not in SCORE_MEMBERS:
                row["mae"] = float(np.mean(np.abs(a - v)))
            out[col] = row
        return out

    # ------------------------------------------------------------------------------------------
    # fine-tuning
    # ------------------------------------------------------------------------------------------
    def finetune(self, cgs, acc: Any, k: int | None = None, seed: int = 0, callback: Callback | None = None, *,
                 epochs: int | None = None, selection: str | None = None,
                 families: Sequence[str] | None = None) -> GennapePredictor:
        """A fine-tuned *deep copy* (``self`` is never modified).

        Uses ``k`` labelled CGs (default ``config.finetune.k``; a seeded random subset when more
        are given).  Heads, pairwise scorers and the k-GNN are fine-tuned; the encoder, the FCM
        centroids and the Eq. 5 statistics stay those of the source training set (paper).  The
        ensemble weights become ``softmax(KT / T)`` of each member on the fine-tuning samples.

        ``epochs`` (head epochs; the k-GNN gets at most as many) and ``selection``
        (``finetune.selection``) override the config for this call; the copy's config records them.
        ``families``: each CG's family, for the ``auto`` selection (default: the CGs' ``meta``;
        give it for a ``PackedGraphs``, which carries none)."""
        from engine.train.finetune import finetune_predictor

        self._require_fitted()
        base = self
        updates: dict[str, Any] = {}
        if epochs is not None:
            if isinstance(epochs, bool) or not isinstance(epochs, int | np.integer) or epochs < 1:
                raise ValueError(f"finetune: epochs must be an int >= 1, got {epochs!r}")
            updates["finetune.head_epochs"] = int(epochs)
            updates["finetune.kgnn_epochs"] = min(int(self.config.finetune.kgnn_epochs), int(epochs))
        if selection is not None:
            updates["finetune.selection"] = str(selection)
        if updates:
            base = copy.copy(self)  # shares the modules (finetune_predictor copies what it tunes)
            base.config = self.config.override(updates)
        return finetune_predictor(base, cgs, acc, k=k, seed=seed, callback=callback, families=families)

    # ------------------------------------------------------------------------------------------
    # persistence
    # ------------------------------------------------------------------------------------------
    def save(self, directory) -> None:
        from engine.model.checkpoint import save_checkpoint

        save_checkpoint(self, directory)

    @classmethod
    def load(cls, directory, domain: bool = True) -> GennapePredictor:
        """The predictor saved in ``directory`` (``domain=False``: without its novelty reference)."""
        from engine.model.checkpoint import load_checkpoint

        return load_checkpoint(directory, domain=domain)

    def copy(self) -> GennapePredictor:
        return copy.deepcopy(self)


def split_k(n: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded choice of ``k`` of ``n`` rows: ``(chosen, rest)`` (sorted)."""
    if k >= n:
        return np.arange(n), np.zeros(0, dtype=np.int64)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[:k]), np.sort(perm[k:])
