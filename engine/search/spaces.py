"""Search candidates: raw CGs, family specs or members of a finite pool, with their mutations.

Every space has ``mutate(item, rng) -> (item, description)``, ``to_cg(item) -> CG`` and
``key(item) -> str`` (equal keys = the same architecture; the search skips repeats).

* :class:`CGSpace`: candidates are CGs, mutated by :mod:`engine.search.mutate` (any network the
  user brings: ONNX, PyTorch, CG JSON, or a family spec's ``to_cg``).  Key: ``CG.fingerprint()``.
* :class:`SpecSpace`: candidates are family specs mutated in the family's own encoding, so every
  candidate stays a member of the benchmark space (what makes verification on real NB-201 labels
  possible).  Spec mutators exist for ``nb201`` (change one edge op), ``nb101`` (change one op,
  toggle one edge, add a vertex; invalid cells rejected by the family's ``validate``) and ``hiaml``
  (change one stage's block); other families use CG search on ``to_cg(spec)``.  Key: the
  family's ``canonical`` form (isomorphism-invariant for NB-101).
* :class:`PoolSpace`: candidates are rows of a finite pool (e.g. the 500 labelled NB-101 cells);
  a mutation moves to one of the ``k`` nearest pool members under a feature distance (for NB-101
  the path encoding, :func:`nb101_path_features`).  Used to search *inside* a labelled subset.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from engine.graphs.cg import CG

NB201_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: tries of a spec mutator before it gives up (invalid or unchanged results are redrawn)
MAX_SPEC_TRIES = 50


def nb201_ops(arch: str) -> list[str]:
    """The 6 edge ops of an arch string ``|a~0|+|b~0|c~1|+|d~0|e~1|f~2|`` in string order."""
    ops = [tok.split("~")[0] for tok in arch.replace("+", "|").split("|") if tok]
    if len(ops) != 6 or any(o not in NB201_OPS for o in ops):
        raise ValueError(f"not an NB-201 arch string: {arch!r}")
    return ops


def nb201_arch(ops: list[str]) -> str:
    o = ops
    return f"|{o[0]}~0|+|{o[1]}~0|{o[2]}~1|+|{o[3]}~0|{o[4]}~1|{o[5]}~2|"


def mutate_nb201(arch: str, rng: np.random.Generator) -> tuple[str, str]:
    """Change one edge op to another of the 5 NB-201 ops."""
    ops = nb201_ops(arch)
    edge = int(rng.integers(6))
    new = [o for o in NB201_OPS if o != ops[edge]][int(rng.integers(4))]
    old = ops[edge]
    ops[edge] = new
    return nb201_arch(ops), f"edge {edge}: {old} -> {new}"


def mutate_nb101(spec: Any, rng: np.random.Generator) -> tuple[dict, str]:
    """One NB-101 cell edit on the pruned cell: change an interior op (40 %), toggle an edge
    (40 %) or add a vertex before the output (20 %, fed by a random earlier vertex).  Results that
    ``NB101.validate`` rejects (disconnected, > 9 edges) or that are isomorphic to the input are
    redrawn (up to :data:`MAX_SPEC_TRIES` times)."""
    from engine.families import SpecError, get
    from engine.families.nb101 import INTERIOR_OPS, MAX_VERTICES

    fam = get("nb101")
    d = fam.validate(spec)
    before = fam.canonical(d)
    for _ in range(MAX_SPEC_TRIES):
        mat = [list(r) for r in d["matrix"]]
        ops = list(d["ops"])
        n = len(ops)
        r = rng.random()
        if r < 0.4 and n > 2:
            v = int(rng.integers(1, n - 1))
            new = [o for o in INTERIOR_OPS if o != ops[v]][int(rng.integers(len(INTERIOR_OPS) - 1))]
            note = f"vertex {v}: {ops[v]} -> {new}"
            ops[v] = new
        elif r < 0.8 or n >= MAX_VERTICES:
            pairs = [(a, b) for a in range(n) for b in range(a + 1, n)]
            a, b = pairs[int(rng.integers(len(pairs)))]
            mat[a][b] = 1 - mat[a][b]
            note = f"edge {a}->{b} {'added' if mat[a][b] else 'removed'}"
        else:  # insert vertex n-1 (the output moves to n)
            op = INTERIOR_OPS[int(rng.integers(len(INTERIOR_OPS)))]
            src = int(rng.integers(n - 1))
            mat = [row[:-1] + [0, row[-1]] for row in mat[:-1]] + [[0] * (n + 1), [0] * (n + 1)]
            mat[src][n - 1] = 1
            mat[n - 1][n] = 1
            ops = ops[:-1] + [op, ops[-1]]
            note = f"new vertex {n - 1} ({op}) fed by {src}"
        try:
            out = fam.validate({"matrix": mat, "ops": ops})
        except SpecError:
            continue
        if fam.canonical(out) != before:
            return out, note
    raise ValueError(f"no valid NB-101 mutation found in {MAX_SPEC_TRIES} tries")


@functools.lru_cache(maxsize=1)
def _hiaml_blocks() -> tuple[str, ...]:
    from engine.families.hiaml import BLOCKS

    return tuple(BLOCKS)


def mutate_hiaml(spec: Any, rng: np.random.Generator) -> tuple[list[str], str]:
    """Change one stage's block type."""
    from engine.families import get

    spec = list(get("hiaml").validate(spec))
    blocks = _hiaml_blocks()
    stage = int(rng.integers(len(spec)))
    choices = [b for b in blocks if b != spec[stage]]
    new = choices[int(rng.integers(len(choices)))]
    old, spec[stage] = spec[stage], new
    return spec, f"stage {stage}: {old} -> {new}"


SPEC_MUTATORS: dict[str, Callable[[Any, np.random.Generator], tuple[Any, str]]] = {
    "nb201": mutate_nb201,
    "nb101": mutate_nb101,
    "hiaml": mutate_hiaml,
}


class CGSpace:
    """Candidates are CGs (mutated by :func:`engine.search.mutate.mutate`, feasibility checked)."""

    kind = "cg"

    def __init__(self, operators: list[str] | None = None):
        from engine.search.mutate import OPERATORS

        if operators is not None and len(operators) == 0:
            raise ValueError("no mutation operator chosen: give at least one, or None for all of "
                             f"{sorted(OPERATORS)}")
        unknown = [o for o in operators or [] if o not in OPERATORS]
        if unknown:
            raise ValueError(f"unknown mutation operator(s) {unknown}; choose from {sorted(OPERATORS)}")
        self.operators = operators
        #: one line per mutated CG rejected as infeasible (operator: reason)
        self.rejected: list[str] = []
        self._keys: dict[int, tuple[CG, str]] = {}  # id(cg) -> (cg, fingerprint); holds cg so ids stay unique

    def mutate(self, cg: CG, rng: np.random.Generator) -> tuple[CG, str]:
        from engine.search.mutate import mutate

        new, record = mutate(cg, rng, self.operators, rejected=self.rejected)
        return new, str(record)

    def to_cg(self, cg: CG) -> CG:
        return cg

    def key(self, cg: CG) -> str:
        got = self._keys.get(id(cg))
        if got is None or got[0] is not cg:
            got = self._keys[id(cg)] = (cg, cg.fingerprint())
        return got[1]

    def describe(self, cg: CG) -> str:
        """``<start name> · <fingerprint prefix>`` (mutants keep the start's name)."""
        return f"{cg.name or 'cg'} · {self.key(cg)[:10]}"


class SpecSpace:
    """Candidates are specs of one family (``family`` must have a spec mutator); ``options``: keyword
    arguments of the family's ``to_cg`` for every candidate (NB-201's CIFAR-100 head, ImageNet16-120
    input), so a search from such a network stays that network."""

    kind = "spec"

    def __init__(self, family: str, cg_lookup: Callable[[str], CG | None] | None = None,
                 options: dict[str, Any] | None = None):
        from engine.families import get

        self.family = get(family)
        if self.family.name not in SPEC_MUTATORS:
            raise ValueError(f"no spec mutator for family {family!r}; spec search supports "
                             f"{sorted(SPEC_MUTATORS)} (use CG search for other families)")
        self._mut = SPEC_MUTATORS[self.family.name]
        self._lookup = cg_lookup
        self.options = dict(options or {})
        self._cache: dict[str, CG] = {}

    def mutate(self, spec: Any, rng: np.random.Generator) -> tuple[Any, str]:
        return self._mut(self.family.validate(spec), rng)

    def key(self, spec: Any) -> str:
        return self.family.canonical(spec)

    def to_cg(self, spec: Any) -> CG:
        key = self.key(spec)
        if key not in self._cache:
            cg = self._lookup(key) if self._lookup is not None else None
            self._cache[key] = cg if cg is not None else self.family.to_cg(self.family.validate(spec), **self.options)
        return self._cache[key]

    def describe(self, spec: Any) -> str:
        return self.key(spec)


class PoolSpace:
    """Candidates are indices into a finite pool; a mutation moves to a near pool member.

    ``features`` is an ``(N, F)`` array (L1 distance); ``cgs(i)`` gives the CG of member ``i``;
    ``names`` (optional) describe members.  A mutation picks uniformly among the ``k`` nearest
    other members (ties broken at random), so the search is a local search on the pool's
    neighbourhood graph.
    """

    kind = "pool"

    def __init__(self, features: np.ndarray, cgs: Callable[[int], CG], k: int = 8,
                 names: Sequence[str] | None = None):
        self.features = np.asarray(features, dtype=np.float64)
        if self.features.ndim != 2 or len(self.features) < 2:
            raise ValueError(f"pool features must be an (N >= 2, F) array, got shape {self.features.shape}")
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = min(int(k), len(self.features) - 1)
        self._cgs = cgs
        self.names = list(names) if names is not None else None

    def __len__(self) -> int:
        return len(self.features)

    def mutate(self, idx: int, rng: np.random.Generator) -> tuple[int, str]:
        d = np.abs(self.features - self.features[int(idx)]).sum(axis=1)
        d[int(idx)] = np.inf
        order = np.lexsort((rng.random(len(d)), d))[: self.k]
        new = int(order[int(rng.integers(len(order)))])
        return new, f"pool neighbour {idx} -> {new} (distance {d[new]:g})"

    def to_cg(self, idx: int) -> CG:
        return self._cgs(int(idx))

    def key(self, idx: int) -> str:
        return str(int(idx))

    def describe(self, idx: int) -> str:
        return self.names[int(idx)] if self.names is not None else str(int(idx))


# ---------------------------------------------------------------------------------------------
# features for pools
# ---------------------------------------------------------------------------------------------

def nb101_paths(spec: Any) -> set[tuple[str, ...]]:
    """Input->output paths of an NB-101 cell as op sequences (isomorphism-invariant)."""
    from engine.families import get

    d = get("nb101").validate(spec)
    mat, ops = d["matrix"], d["ops"]
    n = len(ops)
    paths: list[list[tuple[str, ...]]] = [[] for _ in range(n)]
    paths[0] = [()]
    for v in range(1, n):
        for u in range(v):
            if mat[u][v]:
                paths[v].extend(p + ((ops[v],) if v < n - 1 else ()) for p in paths[u])
    return set(paths[n - 1])


def nb101_path_features(specs: Sequence[Any]) -> np.ndarray:
    """Binary path encoding (one column per path seen in ``specs``; BANANAS-style)."""
    sets = [nb101_paths(s) for s in specs]
    vocab = sorted(set().union(*sets)) if sets else []
    index = {p: i for i, p in enumerate(vocab)}
    out = np.zeros((len(sets), max(1, len(vocab))), dtype=np.float64)
    for r, s in enumerate(sets):
        for p in s:
            out[r, index[p]] = 1.0
    return out


def nb201_features(specs: Sequence[str]) -> np.ndarray:
    """One-hot of the 6 edge ops (30 columns)."""
    out = np.zeros((len(specs), 30))
    for r, s in enumerate(specs):
        for e, o in enumerate(nb201_ops(s)):
            out[r, 5 * e + NB201_OPS.index(o)] = 1.0
    return out
