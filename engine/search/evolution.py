"""Predictor-guided architecture search: regularized evolution under a FLOPs target.

Choice (documented): *regularized (aging) evolution* (Real et al., 2019).  It needs only a
mutation operator and a scorer, keeps a small population, is deterministic given a seed, and
with a FLOPs-penalised fitness it drives FLOPs down while keeping the predicted accuracy.
Every evaluated candidate is recorded, so a FLOPs/score Pareto front comes for free.

The search works on any *candidate type* through two callables:

* ``mutate(candidate, rng) -> (candidate, description)`` (raise an exception when impossible);
* ``evaluate(candidates) -> list[(cg, score)]`` (batch; ``score``: predicted accuracy, higher is
  better, on an absolute scale comparable across batches);
* optionally ``key(candidate) -> str``: candidates whose key was already evaluated are skipped
  (redrawn), so ``budget`` counts *distinct* architectures (as random search does).

Fitness = ``score - penalty * max(0, flops / target - 1)``: candidates at or under the FLOPs
target compete on predicted accuracy alone, heavier ones pay per unit of relative excess.
The loop stops early (``SearchResult.stopped``) when mutations keep failing or only produce
repeats (a small space exhausted).

:func:`search` is the generic loop; :mod:`engine.search.runner` wires CG and family-spec
candidates to the predictor.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from engine.train.callbacks import Callback, notify

#: absolute FLOPs targets below this are refused (no network is that small: a mistyped fraction)
MIN_ABSOLUTE_FLOPS = 1000


@dataclass(frozen=True)
class SearchConfig:
    budget: int = 100             # number of candidates evaluated (start excluded)
    population: int = 16          # aging population size
    tournament: int = 4           # sample size for parent selection
    flops_target: float = 0.7     # <= 1: fraction of the start's FLOPs; > 1: absolute FLOPs
    penalty: float = 10.0         # fitness penalty per unit of relative FLOPs excess
    batch: int = 8                # children evaluated per predictor call
    seed: int = 0
    dedupe: bool = True           # skip candidates already evaluated (needs a key function)
    max_failures: int = 20        # per budget unit: failed / repeated mutations before stopping

    def __post_init__(self):
        for name, low in (("budget", 1), ("population", 2), ("tournament", 1), ("batch", 1), ("seed", 0),
                          ("max_failures", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
                raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
        for name in ("flops_target", "penalty"):
            value = getattr(self, name)
            if not isinstance(value, (int, float, np.number)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.flops_target <= 0:
            raise ValueError(f"flops_target must be > 0, got {self.flops_target}")
        if 1 < self.flops_target < MIN_ABSOLUTE_FLOPS:
            raise ValueError(f"flops_target {self.flops_target:g}: a value up to 1 is a fraction of the start's FLOPs, "
                             f"a value above 1 an absolute FLOPs count, and {self.flops_target:g} FLOPs is no network's "
                             f"size; to cut FLOPs pass a fraction, e.g. 0.7")
        if self.penalty < 0:
            raise ValueError(f"penalty must be >= 0, got {self.penalty}")


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
    key: str = ""


@dataclass
class SearchResult:
    start: Candidate
    history: list[Candidate]
    config: SearchConfig
    flops_target: float
    stopped: str = ""                              # why the loop ended before the budget ("" = budget used)
    meta: dict = field(default_factory=dict)       # filled by the runner (space, family, score column...)
    space: Any = field(default=None, repr=False)   # the candidate space (gives ``describe(item)``)

    @property
    def candidates(self) -> list[Candidate]:
        return [self.start, *self.history]

    def frame(self) -> pd.DataFrame:
        """One row per candidate (start first): uid, parent, score, flops, params, fitness,
        mutation, meets_target, key, on_pareto (and ``arch``, the space's description of the
        candidate, when the runner set ``space``)."""
        front = {c.uid for c in self.pareto()}
        rows = [{"uid": c.uid, "parent": c.parent, "score": c.score, "flops": c.flops, "params": c.params,
                 "fitness": c.fitness, "mutation": c.mutation, "meets_target": c.flops <= self.flops_target,
                 "key": c.key, "on_pareto": c.uid in front}
                for c in self.candidates]
        df = pd.DataFrame(rows)
        if self.space is not None and hasattr(self.space, "describe"):
            df["arch"] = [self.space.describe(c.item) for c in self.candidates]
        return df

    def get(self, uid: int) -> Candidate:
        for c in self.candidates:
            if c.uid == uid:
                return c
        raise KeyError(f"no candidate with uid {uid} (0..{len(self.history)})")

    def lineage(self, uid: int) -> list[Candidate]:
        """The chain of candidates from the start to ``uid`` (its mutation history)."""
        chain = [self.get(uid)]
        while chain[-1].parent is not None:
            chain.append(self.get(chain[-1].parent))
        return chain[::-1]

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
                "evaluated": len(self.history), "pareto_size": len(self.pareto()), "stopped": self.stopped,
                **({"meta": self.meta} if self.meta else {})}


def search(start: Any, mutate: Callable[[Any, np.random.Generator], tuple[Any, str]],
           evaluate: Callable[[list[Any]], list[tuple[Any, float]]], config: SearchConfig = SearchConfig(),
           callback: Callback | None = None, key: Callable[[Any], str] | None = None) -> SearchResult:
    """Regularized evolution from ``start``; deterministic for a given ``config.seed``.

    ``callback("search", evaluated, budget, {"best_score", "best_flops"})`` after every batch.
    """
    rng = np.random.default_rng(config.seed)
    (start_cg, start_score), = evaluate([start])
    target = config.flops_target * start_cg.flops if config.flops_target <= 1 else config.flops_target

    def fitness(score: float, flops: int) -> float:
        excess = max(0.0, flops / target - 1.0)
        return float(score - config.penalty * excess)

    uid = 0
    first = Candidate(uid, None, start, start_cg, float(start_score), start_cg.flops, start_cg.params,
                      fitness(start_score, start_cg.flops), "start", key(start) if key else "")
    seen = {first.key} if key and config.dedupe else set()
    population: deque[Candidate] = deque([first], maxlen=config.population)
    history: list[Candidate] = []
    failures, repeats, last_error, stopped = 0, 0, "", ""
    notify(callback, "search", 0, config.budget, {"best_score": first.score, "best_flops": float(first.flops)})
    while len(history) < config.budget and not stopped:
        n = min(config.batch, config.budget - len(history))
        children, parents, notes, keys = [], [], [], []
        attempts = 0
        while len(children) < n and attempts < 4 * n:
            attempts += 1
            pool = list(population)
            picks = rng.choice(len(pool), size=min(config.tournament, len(pool)), replace=False)
            parent = max((pool[int(i)] for i in picks), key=lambda c: c.fitness)
            try:
                child, note = mutate(parent.item, rng)
                k = key(child) if key else ""
                if k and config.dedupe and (k in seen or k in keys):
                    raise _Repeat(f"repeat of an evaluated candidate ({note})")
            except Exception as exc:  # noqa: BLE001 - a failed mutation is skipped and counted
                failures += 1
                if isinstance(exc, _Repeat):
                    repeats += 1
                else:
                    last_error = f"{type(exc).__name__}: {exc}"
                if failures > config.max_failures * config.budget:
                    stopped = _stop_reason(len(history), config.budget, failures - repeats, repeats, last_error)
                    break
                continue
            children.append(child)
            parents.append(parent.uid)
            notes.append(note)
            keys.append(k)
        if not children:
            continue
        for child, parent_uid, note, k, (cg, score) in zip(children, parents, notes, keys, evaluate(children)):
            uid += 1
            cand = Candidate(uid, parent_uid, child, cg, float(score), cg.flops, cg.params,
                             fitness(score, cg.flops), note, k)
            history.append(cand)
            population.append(cand)  # deque(maxlen) drops the oldest: aging
            if k:
                seen.add(k)
        best = max(history, key=lambda c: c.fitness)
        notify(callback, "search", len(history), config.budget,
               {"best_score": best.score, "best_flops": float(best.flops)})
    if stopped:
        notify(callback, "search", config.budget, config.budget, {"stopped": 1.0})
    return SearchResult(first, history, config, float(target), stopped)


def _stop_reason(done: int, budget: int, failed: int, repeated: int, last_error: str) -> str:
    """Why a search stopped early, in words (failed mutations and repeats counted apart)."""
    parts = []
    if repeated:
        parts.append(f"{repeated} mutation(s) gave an architecture already evaluated")
    if failed:
        parts.append(f"{failed} mutation(s) failed (last: {last_error})")
    text = f"stopped after {done} of {budget} candidates: " + " and ".join(parts)
    if repeated >= failed:
        text += "; the space around this start may be smaller than the budget: start from a larger architecture"
    return text


class _Repeat(Exception):
    """A mutation produced an architecture that was already evaluated."""
