"""Predictor-guided architecture search: regularized evolution under a FLOPs target.

Choice (documented): *regularized (aging) evolution* (Real et al., 2019).  It needs only a
mutation operator and a scorer, keeps a small population, is deterministic given a seed, and
with a FLOPs-penalised fitness it drives FLOPs down while keeping the predicted accuracy.
Every evaluated candidate is recorded, so a FLOPs/score Pareto front comes for free.

The search works on any *candidate type* through two callables:

* ``mutate(candidate, rng) -> (candidate, description)`` (raise an exception when impossible);
* ``evaluate(candidates) -> list[(cg, score)]`` (batch; ``score``: predicted accuracy, higher is
  better, on an absolute scale comparable across batches).

:func:`search` is the generic loop; :mod:`engine.search.runner` wires CG and family-spec
candidates to the predictor.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.train.callbacks import Callback, notify


@dataclass(frozen=True)
class SearchConfig:
    budget: int = 100             # number of candidates evaluated (start excluded)
    population: int = 16          # aging population size
    tournament: int = 4           # sample size for parent selection
    flops_target: float = 0.7     # <= 1: fraction of the start's FLOPs; > 1: absolute FLOPs
    penalty: float = 10.0         # fitness penalty per unit of relative FLOPs excess
    batch: int = 8                # children evaluated per predictor call
    seed: int = 0

    def __post_init__(self):
        if self.budget < 1:
            raise ValueError(f"budget must be >= 1, got {self.budget}")
        if self.population < 2:
            raise ValueError(f"population must be >= 2, got {self.population}")
        if self.tournament < 1:
            raise ValueError(f"tournament must be >= 1, got {self.tournament}")
        if self.flops_target <= 0:
            raise ValueError(f"flops_target must be > 0, got {self.flops_target}")


@dataclass
class Candidate:
    uid: int
    parent: int | None
    item: Any                     # a CG or a family spec
    cg: Any
    score: float
    flops: int
    params: int
    fitness: float
    mutation: str


@dataclass
class SearchResult:
    start: Candidate
    history: list[Candidate]
    config: SearchConfig
    flops_target: float

    def frame(self) -> pd.DataFrame:
        rows = [{"uid": c.uid, "parent": c.parent, "score": c.score, "flops": c.flops, "params": c.params,
                 "fitness": c.fitness, "mutation": c.mutation, "meets_target": c.flops <= self.flops_target}
                for c in [self.start, *self.history]]
        return pd.DataFrame(rows)

    def pareto(self) -> list[Candidate]:
        """Non-dominated candidates (lower FLOPs, higher score), sorted by FLOPs."""
        pts = sorted([self.start, *self.history], key=lambda c: (c.flops, -c.score))
        front, best = [], -np.inf
        for c in pts:
            if c.score > best:
                front.append(c)
                best = c.score
        return front

    def best(self) -> Candidate:
        """Highest predicted score among candidates meeting the FLOPs target (start if none)."""
        ok = [c for c in self.history if c.flops <= self.flops_target]
        return max(ok, key=lambda c: (c.score, -c.flops)) if ok else self.start

    def summary(self) -> dict:
        b = self.best()
        return {"config": asdict(self.config), "flops_target": self.flops_target,
                "start": {"score": self.start.score, "flops": self.start.flops},
                "best": {"uid": b.uid, "score": b.score, "flops": b.flops, "mutation": b.mutation},
                "evaluated": len(self.history), "pareto_size": len(self.pareto())}


def search(start: Any, mutate: Callable[[Any, np.random.Generator], tuple[Any, str]],
           evaluate: Callable[[list[Any]], list[tuple[Any, float]]], config: SearchConfig = SearchConfig(),
           callback: Callback | None = None) -> SearchResult:
    """Regularized evolution from ``start``; deterministic for a given ``config.seed``."""
    rng = np.random.default_rng(config.seed)
    (start_cg, start_score), = evaluate([start])
    target = config.flops_target * start_cg.flops if config.flops_target <= 1 else config.flops_target

    def fitness(score: float, flops: int) -> float:
        excess = max(0.0, flops / target - 1.0)
        return float(score - config.penalty * excess)

    uid = 0
    first = Candidate(uid, None, start, start_cg, float(start_score), start_cg.flops, start_cg.params,
                      fitness(start_score, start_cg.flops), "start")
    population: deque[Candidate] = deque([first], maxlen=config.population)
    history: list[Candidate] = []
    failures = 0
    while len(history) < config.budget:
        n = min(config.batch, config.budget - len(history))
        children, parents, notes = [], [], []
        for _ in range(n):
            pool = list(population)
            picks = rng.choice(len(pool), size=min(config.tournament, len(pool)), replace=False)
            parent = max((pool[int(i)] for i in picks), key=lambda c: c.fitness)
            try:
                child, note = mutate(parent.item, rng)
            except Exception as exc:  # noqa: BLE001 - a failed mutation is skipped and counted
                failures += 1
                if failures > 20 * config.budget:
                    raise RuntimeError(f"mutations keep failing (last: {exc})") from exc
                continue
            children.append(child)
            parents.append(parent.uid)
            notes.append(note)
        if not children:
            continue
        for child, parent_uid, note, (cg, score) in zip(children, parents, notes, evaluate(children)):
            uid += 1
            cand = Candidate(uid, parent_uid, child, cg, float(score), cg.flops, cg.params,
                             fitness(score, cg.flops), note)
            history.append(cand)
            population.append(cand)  # deque(maxlen) drops the oldest: aging
        best = max(history, key=lambda c: c.fitness)
        notify(callback, "search", len(history), config.budget,
               {"best_score": best.score, "best_flops": float(best.flops)})
    return SearchResult(first, history, config, float(target))
