"""Verification of predictor-guided search on real labels (NB-201, NB-101).

For each start architecture (the best and the median of the labelled pool, by label) and each
seed, with the FLOPs target ``flops_target x start FLOPs``:

* ``search``: regularized evolution (:mod:`engine.search.evolution`) in the family's spec space
  (:class:`~engine.search.spaces.SpecSpace`), scored by the predictor; the found architecture is
  ``SearchResult.best()`` (highest predicted score meeting the target) and its *true* label is
  looked up.  In NB-201 every architecture is labelled; in NB-101 only the 500 NASLib cells are,
  so the number of labelled finds is reported (``labelled``).
* ``search_pool`` (NB-101 only): the same search restricted to the labelled pool
  (:class:`~engine.search.spaces.PoolSpace`, moves to one of the 8 nearest cells by path
  encoding), so every find is labelled.
* ``random``: ``budget`` distinct architectures drawn uniformly from the pool members meeting
  the target; the one with the best predicted score (same scorer) is the find.
* ``oracle``: the best true label among pool members meeting the target (context: the ceiling).

Outputs: ``runs`` (one row per start x method x seed) and ``table`` (mean +- std over seeds),
written by :meth:`VerifyResult.save` as ``runs.csv``, ``table.csv`` and ``table.md``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.graphs.cg import CG
from engine.search.evolution import SearchConfig
from engine.search.runner import Scorer, make_scorer, run_search
from engine.search.spaces import PoolSpace, SpecSpace, nb101_path_features
from engine.train.callbacks import Callback, notify

DEFAULT_DATASETS = {"nb201": "nb201_cifar10", "nb101": "nb101_naslib"}
METHODS = ("search", "search_pool", "random", "oracle")


@dataclass(frozen=True)
class VerifyConfig:
    space: str = "nb201"              # nb201 | nb101
    seeds: int = 5
    budget: int = 100
    flops_target: float = 0.7         # fraction of the start's FLOPs
    starts: tuple[str, ...] = ("best", "median")
    population: int = 16
    tournament: int = 4
    penalty: float = 10.0
    pool_k: int = 8                   # neighbours of a PoolSpace move
    dataset: str | None = None        # label source (engine.data.load name); default per space
    limit: int | None = None          # use a random subset of the pool (quick checks / tests)

    def __post_init__(self):
        if self.space not in DEFAULT_DATASETS:
            raise ValueError(f"space must be one of {sorted(DEFAULT_DATASETS)}, got {self.space!r}")
        if self.seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {self.seeds}")
        if self.budget < 1:
            raise ValueError(f"budget must be >= 1, got {self.budget}")
        if not 0 < self.flops_target <= 1:
            raise ValueError(f"flops_target must be in (0, 1] (a fraction of the start's FLOPs), got {self.flops_target}")
        bad = [s for s in self.starts if s not in ("best", "median")]
        if bad or not self.starts:
            raise ValueError(f"starts must be a non-empty subset of ('best', 'median'), got {self.starts}")
        if self.limit is not None and self.limit < 3:
            raise ValueError(f"limit must be >= 3, got {self.limit}")


class LabelledPool:
    """Architectures with true labels.

    ``labels``: canonical key -> label for every labelled architecture of the source (used to
    look up finds); ``frame``: the pool (``key, spec, label, flops, params``, one row per distinct
    architecture, isomorphic duplicates averaged) whose CGs are available through :meth:`cg`.
    """

    def __init__(self, family: str, frame: pd.DataFrame, cgs: Sequence[CG], labels: dict[str, float], source: str):
        from engine.families import get

        self.family = get(family)
        self.frame = frame.reset_index(drop=True)
        self._cgs = list(cgs)
        self.labels = labels
        self.source = source
        self._row = {k: i for i, k in enumerate(self.frame["key"])}

    def __len__(self) -> int:
        return len(self.frame)

    def cg(self, i: int) -> CG:
        return self._cgs[int(i)]

    def cg_by_key(self, key: str) -> CG | None:
        i = self._row.get(key)
        return None if i is None else self._cgs[i]

    def label(self, key: str) -> float:
        return float(self.labels.get(key, np.nan))

    def start_row(self, which: str) -> int:
        """Row of the best / median architecture by label."""
        order = np.argsort(-self.frame["label"].to_numpy(), kind="stable")
        return int(order[0] if which == "best" else order[len(order) // 2])


def load_pool(space: str, dataset: str | None = None, data_dir: str | Path | None = None,
              limit: int | None = None, seed: int = 0, callback: Callback | None = None) -> LabelledPool:
    """The labelled pool of ``space`` (see :class:`LabelledPool`); ``limit`` keeps a seeded random
    subset of that many architectures (plus the best and the median) whose CGs are built
    without touching the on-disk cache."""
    from engine.data import load

    name = dataset or DEFAULT_DATASETS[space]
    ds = load(name, data_dir, with_cgs=False, callback=callback)
    if ds.family != space:
        raise ValueError(f"dataset {name!r} holds family {ds.family!r}, not {space!r}")
    ds = ds.subset(np.flatnonzero(np.isfinite(ds.frame["label"].to_numpy())))
    # keyed by the canonical form, as the search looks its candidates up (``space.key``)
    keys = np.asarray(ds.canonical_specs(), dtype=object)
    labels_all = pd.Series(ds.labels).groupby(keys, sort=False).mean().to_dict()
    if limit is not None and limit < len(ds):
        lab = ds.frame["label"].to_numpy()
        order = np.argsort(-lab, kind="stable")
        keep = set(np.random.default_rng(seed).choice(len(ds), size=limit, replace=False).tolist())
        keep |= {int(order[0]), int(order[len(order) // 2])}
        ds = ds.subset(sorted(keep))
        keys = keys[sorted(keep)]
        ds.build_cgs(callback=callback, cache=False)
    else:
        ds.build_cgs(callback=callback)
    f = ds.frame
    rows = np.flatnonzero(~pd.Series(keys).duplicated().to_numpy())
    frame = pd.DataFrame({"key": keys[rows], "label": [labels_all[k] for k in keys[rows]],
                          "flops": f["flops"].to_numpy()[rows], "params": f["params"].to_numpy()[rows]})
    frame["spec"] = [ds.specs[i] for i in rows]
    return LabelledPool(space, frame, [ds.cg(int(i)) for i in rows], labels_all, ds.provenance.label())


@dataclass
class VerifyResult:
    config: VerifyConfig
    runs: pd.DataFrame
    table: pd.DataFrame
    score_column: str
    label_source: str

    def markdown(self) -> str:
        c = self.config
        lines = [f"Search verification on {c.space.upper()} ({self.label_source}); scorer `{self.score_column}`; "
                 f"budget {c.budget}, {c.seeds} seeds, FLOPs target {c.flops_target:g} x start.", "",
                 "| start | method | true acc. (%) | MFLOPs | labelled | meets target | runs |",
                 "|---|---|---|---|---|---|---|"]
        for r in self.table.itertuples(index=False):
            acc = "—" if not np.isfinite(r.acc_mean) else (
                f"{r.acc_mean:.2f}" if r.runs == 1 or not np.isfinite(r.acc_std) else f"{r.acc_mean:.2f} ± {r.acc_std:.2f}")
            lines.append(f"| {r.start} | {r.method} | {acc} | {r.mflops_mean:.1f} | {r.labelled}/{r.runs} | "
                         f"{r.meets_target}/{r.runs} | {r.runs} |")
        return "\n".join(lines) + "\n"

    def save(self, directory: str | Path) -> dict[str, str]:
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.runs.to_csv(d / "runs.csv", index=False)
        self.table.to_csv(d / "table.csv", index=False)
        (d / "table.md").write_text(self.markdown())
        (d / "config.json").write_text(json.dumps({**asdict(self.config), "score_column": self.score_column,
                                                   "label_source": self.label_source}, indent=1))
        return {k: str(d / f) for k, f in (("runs", "runs.csv"), ("table", "table.csv"), ("markdown", "table.md"))}


def _summarise(runs: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (start, method), g in runs.groupby(["start", "method"], sort=False):
        acc = g["acc"].to_numpy(dtype=float)
        lab = acc[np.isfinite(acc)]
        rows.append({"start": start, "method": method, "runs": len(g), "labelled": int(len(lab)),
                     "acc_mean": float(lab.mean()) if len(lab) else np.nan,
                     "acc_std": float(lab.std(ddof=1)) if len(lab) > 1 else (0.0 if len(lab) == 1 else np.nan),
                     "acc_min": float(lab.min()) if len(lab) else np.nan,
                     "acc_max": float(lab.max()) if len(lab) else np.nan,
                     "mflops_mean": float(g["flops"].mean() / 1e6), "mflops_std": float(g["flops"].std(ddof=0) / 1e6),
                     "pred_mean": float(g["pred"].mean()), "meets_target": int(g["meets_target"].sum()),
                     "start_acc": float(g["start_acc"].iloc[0]), "start_mflops": float(g["start_flops"].iloc[0] / 1e6)})
    return pd.DataFrame(rows)


def random_search(pool: LabelledPool, scorer: Scorer, candidates: np.ndarray, budget: int, seed: int) -> tuple[int, float]:
    """``(row, predicted score)`` of the best-scored of ``budget`` rows drawn from ``candidates``."""
    rng = np.random.default_rng(seed)
    pick = rng.choice(candidates, size=min(budget, len(candidates)), replace=False)
    scores = np.asarray(scorer([pool.cg(int(i)) for i in pick]), dtype=float)
    scores = np.where(np.isfinite(scores), scores, -np.inf)
    j = int(np.argmax(scores))
    return int(pick[j]), float(scores[j])


def verify_search(predictor: Any, config: VerifyConfig = VerifyConfig(), pool: LabelledPool | None = None,
                  callback: Callback | None = None, data_dir: str | Path | None = None,
                  column: str = "cl_fcm_t") -> VerifyResult:
    """Run the verification (see the module docstring); ``predictor`` as in :func:`run_search`."""
    scorer = make_scorer(predictor, column)
    if pool is None:
        pool = load_pool(config.space, config.dataset, data_dir, config.limit, callback=callback)
    methods = ["search", *(["search_pool"] if config.space == "nb101" else []), "random"]
    total = len(config.starts) * config.seeds * len(methods)
    step = 0
    flops = pool.frame["flops"].to_numpy(dtype=float)
    labels = pool.frame["label"].to_numpy(dtype=float)
    pool_space = None
    if "search_pool" in methods:
        pool_space = PoolSpace(nb101_path_features(list(pool.frame["spec"])), pool.cg, k=config.pool_k,
                               names=list(pool.frame["key"]))
    rows: list[dict[str, Any]] = []
    for which in config.starts:
        s = pool.start_row(which)
        start_key, start_spec = pool.frame["key"].iloc[s], pool.frame["spec"].iloc[s]
        target = config.flops_target * flops[s]
        ok = np.flatnonzero((flops <= target) & (np.arange(len(pool)) != s))
        base = {"space": config.space, "start": which, "start_arch": start_key, "start_acc": labels[s],
                "start_flops": flops[s], "target_flops": target}
        rows.append({**base, "method": "start", "seed": -1, "arch": start_key, "pred": np.nan, "acc": labels[s],
                     "flops": flops[s], "meets_target": False, "evaluated": 0})
        if len(ok):
            o = int(ok[np.argmax(labels[ok])])
            rows.append({**base, "method": "oracle", "seed": -1, "arch": pool.frame["key"].iloc[o], "pred": np.nan,
                         "acc": labels[o], "flops": flops[o], "meets_target": True, "evaluated": len(ok)})
        for seed in range(config.seeds):
            cfg = SearchConfig(budget=config.budget, population=config.population, tournament=config.tournament,
                               flops_target=config.flops_target, penalty=config.penalty, seed=seed)
            for method in methods:
                if method == "random":
                    if not len(ok):
                        continue
                    r, pred = random_search(pool, scorer, ok, config.budget, seed)
                    found = {"arch": pool.frame["key"].iloc[r], "pred": pred, "acc": labels[r], "flops": flops[r],
                             "meets_target": True, "evaluated": min(config.budget, len(ok))}
                else:
                    if method == "search":
                        space = SpecSpace(config.space, cg_lookup=pool.cg_by_key)
                        item = start_spec
                    else:
                        space, item = pool_space, s
                    res = run_search(item, scorer, cfg, space=space)
                    b = res.best()
                    key = space.key(b.item) if method == "search" else pool.frame["key"].iloc[int(b.item)]
                    found = {"arch": key, "pred": b.score, "acc": pool.label(key), "flops": b.flops,
                             "meets_target": b.flops <= target and b is not res.start, "evaluated": len(res.history)}
                rows.append({**base, "method": method, "seed": seed, **found})
                step += 1
                notify(callback, "verify", step, total, {"start": 0.0 if which == "best" else 1.0})
    runs = pd.DataFrame(rows)
    order = {m: i for i, m in enumerate(("start", *METHODS))}
    table = _summarise(runs)
    table = table.sort_values(["start", "method"], key=lambda c: c.map(order) if c.name == "method" else
                              c.map({w: i for i, w in enumerate(config.starts)}), kind="stable").reset_index(drop=True)
    return VerifyResult(config, runs, table, getattr(scorer, "column", column), pool.source)


def synthetic_scorer(pool: LabelledPool, noise: float = 0.5, seed: int = 0) -> Callable[[Sequence[CG]], np.ndarray]:
    """A *test* scorer: the true label (looked up by CG fingerprint among the pool) plus Gaussian
    noise, or a params proxy for CGs outside the pool.  Not a predictor; used to exercise the
    verification without a checkpoint."""
    by_fp = {pool.cg(i).fingerprint(): float(pool.frame["label"].iloc[i]) for i in range(len(pool))}
    rng = np.random.default_rng(seed)

    def score(cgs: Sequence[CG]) -> np.ndarray:
        out = []
        for cg in cgs:
            v = by_fp.get(cg.fingerprint())
            out.append((v if v is not None else 80.0 + np.log10(cg.params + 1.0)) + rng.normal(0, noise))
        return np.array(out)

    score.column = "synthetic(label+noise)"  # type: ignore[attr-defined]
    return score
