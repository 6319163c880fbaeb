"""The paper's transfer protocol, run for one experiment (source datasets -> target datasets).

For an :class:`engine.evaluate.config.Experiment`:

1. **Source training set.**  Each source dataset is split (spec-grouped hash split,
   ``source_test_fraction`` held out for the in-family Table 3, optional ``max_train`` /
   ``max_test`` caps); the training rows of all sources, plus ``unlabelled`` sampled CGs of each
   source family (NaN labels: contrastive pre-training and FCM only), train one
   :class:`engine.model.predictor.GennapePredictor` (seed ``config.seed``).
2. **In-family** (paper Table 3): every method on each source's held-out rows whose accuracy is
   >= ``train.min_acc`` (the rows the supervised members learn from; the paper prunes NB-101
   below 80% likewise).
3. **Zero-shot** (paper Tables 5/6 plain rows): every method on *all* labelled rows of each
   target (paper: "measure a given metric on all architecture CGs in a family").
4. **k-shot fine-tuning** (paper "w/ FT" rows, Table 4): for each seed, ``split_k(n, k, seed)``
   picks the k rows; one fine-tuned copy of the model provides every learnt method, so all
   methods see the *same* k samples within a seed; metrics on the remaining ``n - k`` rows.
5. **k sweep** (sample-efficiency curve): step 4 for each k of ``k_sweep.ks`` (``split_k`` uses
   one permutation per seed, so the k-sets are nested: the 10 samples are part of the 20...).
   k = 0 is the zero-shot result.

Metrics per (method, set) come from :func:`engine.metrics.all_metrics`; MAE only for methods
whose output is an accuracy (not for FLOPs / params).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from engine.evaluate.config import EvalConfig, Experiment
from engine.evaluate.data import DataStore, source_split, spec_hashes, unlabelled_cgs
from engine.train.callbacks import Callback, notify

#: display name -> (``predict`` column, output is an accuracy)
METHODS: dict[str, tuple[str, bool]] = {
    "k-GNN": ("kgnn", True),
    "CL": ("cl", True),
    "CL+T": ("cl_t", True),
    "CL+FCM": ("cl_fcm", True),
    "CL+FCM+T": ("cl_fcm_t", True),
    "CL+Pairwise": ("pairwise", True),
    "CL+Pairwise+FCM": ("pairwise_fcm", True),
    "FLOPs": ("flops_baseline", False),
    "params": ("params_baseline", False),
    "graph stats": ("graph_stats", False),
    "GENNAPE": ("score", True),
}
METRIC_COLUMNS = ("mae", "srcc", "kendall_tau", "pairwise_kt", "ndcg@10", "precision@10", "regret@1")


@dataclass
class ExperimentResult:
    """Metric rows of one experiment plus its timings (timings never enter the tables)."""

    experiment: Experiment
    rows: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    model_card: dict[str, Any] = field(default_factory=dict)
    scatter: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)


def method_metrics(df, y: np.ndarray) -> dict[str, dict[str, float]]:
    """``{method: metrics}`` for every method whose predictions are finite on all rows."""
    from engine.metrics import all_metrics

    out = {}
    for name, (col, is_acc) in METHODS.items():
        if col not in df.columns:
            continue
        p = df[col].to_numpy(dtype=np.float64)
        if not np.isfinite(p).all():
            continue
        out[name] = all_metrics(y, p, k=10, scale_known=is_acc)
    return out


def embeddings(model, packed) -> torch.Tensor:
    """Encoder embeddings of a packed set (shared by a model and all its fine-tuned copies:
    fine-tuning never touches the encoder)."""
    from engine.model.encoder import embed_packed

    model._eval()
    with torch.no_grad():
        return embed_packed(model.cl.encoder, packed)


@torch.no_grad()
def predict_with_embeddings(model, packed, h: torch.Tensor):
    """``model.predict(packed)`` (``score`` + member columns) reusing precomputed encoder
    embeddings ``h`` of ``packed``: only the heads, pairwise scorers, FCM memberships and the
    k-GNN run.  Mirrors ``GennapePredictor.member_predictions`` (a test checks equality)."""
    import pandas as pd

    from engine.model.config import MEMBERS
    from engine.model.ensemble import EnsembleReference
    from engine.model.predictor import HEAD_MEMBERS, PAIR_MEMBERS

    model._eval()
    n = len(packed)
    u = torch.from_numpy(model.fcm_memberships(h.double().numpy())).to(torch.float32)
    flops = packed.flops.numpy()
    vals: dict[str, np.ndarray] = {}
    for name, (use_fcm, kind) in HEAD_MEMBERS.items():
        y = model.heads[name](h, u if use_fcm else None).double().numpy()
        vals[name] = model.transforms[kind].inverse(y, flops)
    for name, use_fcm in PAIR_MEMBERS.items():
        g = model.pairwise[name](h, u if use_fcm else None).double().numpy()
        a, b = model.pair_calibration.get(name, (1.0, 0.0))
        v = a * g + b
        vals[name] = model.transforms["flops"].inverse(v, flops) if model.config.pairwise.target == "t" else v
    vals["kgnn"] = (model.kgnn.predict_percent(packed).double().numpy() if model.kgnn is not None
                    else np.full(n, np.nan))
    vals["flops_baseline"] = np.log10(flops + 1.0)
    vals["params_baseline"] = np.log10(packed.params.numpy() + 1.0)
    vals["graph_stats"] = model.stats_scores(packed)
    ens = model.config.ensemble
    # rows inside the training domain take the in-domain weights, as predict() gates them
    inside = model._inside(h.double().numpy())
    ref = EnsembleReference.fit(vals, model.weights, vals[ens.anchor], ens.standardize, model.inside_weights, inside)
    cols = {"score": ref.score(vals, model.weights, vals[ens.anchor], model.inside_weights, inside)}
    for m in MEMBERS:
        cols[m] = vals[m]
    return pd.DataFrame(cols)


def _rows(base: dict[str, Any], metrics: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    rows = []
    for method, m in metrics.items():
        row = dict(base)
        row["method"] = method
        for key in METRIC_COLUMNS:
            row[key] = float(m.get(key, float("nan")))
        rows.append(row)
    return rows


def run_experiment(cfg: EvalConfig, exp: Experiment, store: DataStore, callback: Callback | None = None,
                   sweep: bool = False) -> ExperimentResult:
    """Train on ``exp.source``, evaluate in-family, zero-shot and fine-tuned (see module doc)."""
    from engine.data import CGStore
    from engine.model.packing import as_packed
    from engine.model.predictor import GennapePredictor, split_k

    res = ExperimentResult(exp)
    t_exp, c_exp = time.perf_counter(), time.process_time()
    seed = cfg.seed
    seed_everything(seed)
    model_cfg = cfg.model.build(seed, cfg.threads)
    min_acc = model_cfg.train.min_acc

    # 1. source training set ---------------------------------------------------------------
    parts, labels, groups, tests = [], [], [], {}
    n_unlab = 0
    for key in exp.source:
        ld = store[key]
        tr, te = source_split(ld, cfg.source_test_fraction, seed)
        tests[key] = te
        parts.append(ld.dataset.cgs.take(tr))
        labels.append(ld.labels[tr])
        groups.append(np.full(len(tr), key, dtype=object))
        res.notes.append(f"source {key}: {tr.size} training rows, {te.size} held-out rows "
                         f"(of {len(ld)} labelled)")
    for key in exp.source:
        ld = store[key]
        if ld.config.unlabelled:
            t0 = time.perf_counter()
            extra = unlabelled_cgs(ld.family, ld.config.unlabelled, seed + 17, exclude=spec_hashes(ld))
            res.timings.setdefault("unlabelled_build_s", 0.0)
            res.timings["unlabelled_build_s"] += time.perf_counter() - t0
            parts.append(extra)
            labels.append(np.full(len(extra), np.nan))
            groups.append(np.full(len(extra), key, dtype=object))
            n_unlab += len(extra)
            res.notes.append(f"source {key}: + {len(extra)} sampled unlabelled {ld.family} CGs "
                             "(contrastive stage and FCM only)")
    train_cgs = CGStore.concat(parts)
    y_train = np.concatenate(labels)
    notify(callback, f"{exp.name}: fit", 0, 1, {"graphs": len(train_cgs)})
    t0, c0 = time.perf_counter(), time.process_time()
    pred = GennapePredictor(model_cfg).fit(
        train_cgs, y_train, source={"source_families": list(exp.source), "experiment": exp.name},
        groups=np.concatenate(groups))
    res.timings["fit_s"] = time.perf_counter() - t0
    res.timings["fit_cpu_s"] = time.process_time() - c0
    res.timings["fit_graphs"] = len(train_cgs)
    res.timings["fit_labelled"] = int(np.isfinite(y_train).sum())
    res.timings["fit_unlabelled"] = n_unlab
    res.timings["fit_stages"] = dict(pred.model_card.get("timings", {}))
    res.model_card = {k: v for k, v in pred.model_card.items() if k != "timings"}
    notify(callback, f"{exp.name}: fit", 1, 1, {"seconds": round(res.timings["fit_s"], 1)})

    # full predictions (encoder + every member) and fine-tuned evaluations (cached embeddings)
    clock = {"full_s": 0.0, "full_n": 0, "ft_s": 0.0, "ft_n": 0}
    ft_times: list[float] = []

    def predict(model, packed, h=None, kind="full"):
        t = time.perf_counter()
        df = model.predict(packed) if h is None else predict_with_embeddings(model, packed, h)
        clock[f"{kind}_s"] += time.perf_counter() - t
        clock[f"{kind}_n"] += len(packed)
        return df

    # 2. in-family (Table 3) -------------------------------------------------------------------
    for key in exp.source:
        ld = store[key]
        te = tests[key]
        y = ld.labels[te]
        if min_acc is not None:
            keep = y >= min_acc
            te, y = te[keep], y[keep]
        if te.size < 4:
            res.notes.append(f"in-family {key}: only {te.size} held-out rows >= {min_acc}%; skipped")
            continue
        df = predict(pred, as_packed(ld.dataset.cgs.take(te)))
        base = {"experiment": exp.name, "protocol": exp.protocol, "target": key, "family": ld.family,
                "setting": "in-family", "k": 0, "seed": seed, "n_eval": int(te.size)}
        res.rows.extend(_rows(base, method_metrics(df, y)))

    # 3.-5. targets ------------------------------------------------------------------------------
    targets = cfg.targets_of(exp)
    ks_ft = [cfg.finetune.k] if cfg.finetune.k else []
    sweep_cfg = cfg.k_sweep if sweep else None
    sweep_targets = set(sweep_cfg.targets or exp.targets) if sweep_cfg else set()
    for ti, key in enumerate(targets):
        ld = store[key]
        idx = np.arange(len(ld))
        if ld.config.max_eval is not None and idx.size > ld.config.max_eval:
            idx = np.sort(np.random.default_rng(seed + 3).choice(idx.size, ld.config.max_eval, replace=False))
            res.notes.append(f"target {key}: evaluated on a seeded subsample of {idx.size} of {len(ld)} rows")
        packed = as_packed(ld.dataset.cgs.take(idx))
        y = ld.labels[idx]
        base = {"experiment": exp.name, "protocol": exp.protocol, "target": key, "family": ld.family}
        notify(callback, f"{exp.name}: targets", ti, len(targets), {"target": key})
        t = time.perf_counter()
        h_all = embeddings(pred, packed)
        clock["full_s"] += time.perf_counter() - t
        df0 = predict(pred, packed, h_all)
        res.rows.extend(_rows({**base, "setting": "zero-shot", "k": 0, "seed": -1, "n_eval": int(y.size)},
                              method_metrics(df0, y)))
        res.scatter[f"{key}|zero-shot"] = {"y": y, "pred": df0["score"].to_numpy(dtype=np.float64)}

        jobs: list[tuple[int, int, str]] = [(k, s, "fine-tune") for k in ks_ft for s in cfg.finetune.seeds]
        if sweep_cfg and key in sweep_targets:
            for k in sweep_cfg.ks:
                for s in sweep_cfg.seeds:
                    if k > 0 and (k, s, "fine-tune") not in jobs:
                        jobs.append((k, s, "k-sweep"))
        for k, s, setting in jobs:
            if k >= y.size - 4:
                res.notes.append(f"target {key}: k={k} leaves fewer than 5 evaluation rows; skipped")
                continue
            chosen, rest = split_k(y.size, k, s)
            t = time.perf_counter()
            ft = pred.finetune(packed.select(chosen), y[chosen], k=k, seed=s, families=[ld.family] * len(chosen))
            ft_times.append(time.perf_counter() - t)
            df = predict(ft, packed.select(rest), h_all[torch.from_numpy(rest)], kind="ft")
            res.rows.extend(_rows({**base, "setting": setting, "k": k, "seed": s, "n_eval": int(rest.size)},
                                  method_metrics(df, y[rest])))
            if setting == "fine-tune" and s == cfg.finetune.seeds[0]:
                res.scatter[f"{key}|fine-tune"] = {"y": y[rest], "pred": df["score"].to_numpy(dtype=np.float64)}
    notify(callback, f"{exp.name}: targets", len(targets), len(targets), {})

    res.timings["predict_s"] = clock["full_s"]
    res.timings["predict_graphs"] = clock["full_n"]
    res.timings["ft_predict_s"] = clock["ft_s"]
    res.timings["ft_predict_graphs"] = clock["ft_n"]
    res.timings["finetune_s"] = ft_times
    res.timings["total_s"] = time.perf_counter() - t_exp
    res.timings["total_cpu_s"] = time.process_time() - c_exp
    return res


if __name__ == "__main__":  # a module, not a command
    raise SystemExit("engine.evaluate.protocols is a module; run `python -m engine evaluate` (see its --help)")
