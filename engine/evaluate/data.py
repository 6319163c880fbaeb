"""Labelled data of an evaluation run: load each configured dataset once, split sources,
sample unlabelled CGs, and pack everything for the models.

Every choice is seeded and index-sorted, so two runs with the same config see the same rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.evaluate.config import DatasetConfig, EvalConfig
from engine.train.callbacks import Callback


@dataclass
class LoadedDataset:
    """One configured dataset, labelled rows only, CGs built."""

    key: str
    config: DatasetConfig
    dataset: Any                                  # engine.data.ArchDataset
    seconds: float = 0.0

    @property
    def family(self) -> str:
        return self.dataset.family

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.dataset.labels, dtype=np.float64)

    @property
    def title(self) -> str:
        return self.config.title or self.key

    def __len__(self) -> int:
        return len(self.dataset)


@dataclass
class DataStore:
    """Lazily loaded datasets of a run (``store[key]``), plus load timings."""

    config: EvalConfig
    callback: Callback | None = None
    _loaded: dict[str, LoadedDataset] = field(default_factory=dict)

    def data_dir(self) -> Path | None:
        return Path(self.config.data_dir) if self.config.data_dir else None

    def __getitem__(self, key: str) -> LoadedDataset:
        if key not in self._loaded:
            from engine.data import load

            dcfg = self.config.datasets[key]
            t0 = time.perf_counter()
            try:
                ds = load(dcfg.load, self.data_dir(), with_cgs=False, callback=self.callback)
            except FileNotFoundError as exc:
                raise FileNotFoundError(f"dataset {key!r} ({dcfg.load}): {exc}") from None
            ds = ds.labelled()
            if dcfg.max_rows is not None and len(ds) > dcfg.max_rows:
                ds = ds.subset(capped(np.arange(len(ds)), dcfg.max_rows, self.config.seed + 11))
            if len(ds) < 4:
                raise ValueError(f"dataset {key!r} ({dcfg.load}) has only {len(ds)} labelled rows; need >= 4")
            _ = ds.cgs  # build (or read the cache) now so timings are attributed to loading
            self._loaded[key] = LoadedDataset(key, dcfg, ds, time.perf_counter() - t0)
        return self._loaded[key]

    def loaded(self) -> dict[str, LoadedDataset]:
        return dict(self._loaded)


def capped(idx: np.ndarray, cap: int | None, seed: int) -> np.ndarray:
    """``idx`` itself, or a seeded sorted subset of ``cap`` of its entries."""
    idx = np.asarray(idx, dtype=np.int64)
    if cap is None or idx.size <= cap:
        return np.sort(idx)
    return np.sort(np.random.default_rng(seed).choice(idx, size=cap, replace=False))


def source_split(ld: LoadedDataset, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices ``(train, test)`` of a source dataset: a spec-grouped hash split
    (``ArchDataset.split``; duplicates of an architecture never straddle) then the
    ``max_train`` / ``max_test`` caps."""
    ds = ld.dataset
    n = len(ds)
    # split() returns (train, val, test) subsets; recover positions through the id column
    train, _, test = ds.split(seed=seed, fractions=(1.0 - test_fraction, 0.0, test_fraction))
    pos = {rid: i for i, rid in enumerate(ds.frame["id"].astype(str))}
    if len(pos) != n:  # ids not unique: fall back to a seeded permutation
        perm = np.random.default_rng(seed).permutation(n)
        n_test = int(round(test_fraction * n))
        te, tr = perm[:n_test], perm[n_test:]
    else:
        tr = np.array([pos[r] for r in train.frame["id"].astype(str)], dtype=np.int64)
        te = np.array([pos[r] for r in test.frame["id"].astype(str)], dtype=np.int64)
    return capped(tr, ld.config.max_train, seed + 1), capped(te, ld.config.max_test, seed + 2)


def unlabelled_cgs(family: str, n: int, seed: int, exclude: set[str] | None = None):
    """``n`` sampled CGs of ``family`` (a ``CGStore``) whose spec hash is not in ``exclude``."""
    from engine.data import CGStore
    from engine.families import get

    fam = get(family)
    specs = []
    seen = set(exclude or ())
    draw = 0
    while len(specs) < n and draw < 5:
        for s in fam.sample(2 * (n - len(specs)) + 8, seed=seed + 7919 * draw):
            h = fam.spec_hash(s)
            if h not in seen:
                seen.add(h)
                specs.append(s)
                if len(specs) == n:
                    break
        draw += 1
    from engine.families.cache import cached_cgs

    return CGStore.from_cgs(list(cached_cgs(family, specs)))


def spec_hashes(ld: LoadedDataset, idx: np.ndarray | None = None) -> set[str]:
    """Spec hashes of rows ``idx`` (all rows when None) of a family dataset."""
    from engine.families import get

    fam = get(ld.family)
    specs = ld.dataset.specs
    rows = range(len(specs)) if idx is None else idx.tolist()
    out = set()
    for i in rows:
        if specs[i] is not None:
            out.add(fam.spec_hash(specs[i]))
    return out


def time_cg_builds(family: str, specs: list[Any], options: dict[str, Any] | None = None) -> tuple[int, float]:
    """Build CGs from specs directly (no cache) and return ``(count, seconds)``."""
    from engine.families import get

    fam = get(family)
    t0 = time.perf_counter()
    for s in specs:
        fam.to_cg(s, **(options or {}))
    return len(specs), time.perf_counter() - t0
