"""Predictor-guided search: wire a start architecture, a candidate space and a scorer.

>>> from engine.search.runner import run_search
>>> from engine.search.evolution import SearchConfig
>>> result = run_search(("nb201", arch), predictor, SearchConfig(budget=100, flops_target=0.7))
>>> result.best().cg, result.pareto(), result.frame()

The score (documented choice)
-----------------------------
Evolution compares candidates evaluated in *different* predictor calls, so the score must be
absolute.  ``GennapePredictor.predict`` returns the ensemble ``score`` standardised against the
batch it is given (set-relative unless a fixed ``reference`` is passed), which is not comparable
across batches.  The search therefore uses the ``cl_fcm_t`` member column: the CL+FCM+T
prediction inverse-transformed through Eq. 5 into accuracy %, the member the paper uses for its
NAS experiments (Table 7, "CL+FCM+T predictors").  Any other per-architecture column can be
chosen (``column=``); a plain callable ``list[CG] -> scores`` works too (tests, proxies).

Start architectures (:func:`resolve_start`): a ``CG``; a ``(family, spec)`` pair; a path to a CG
JSON or ONNX file.  A family with a spec mutator (``nb201``, ``nb101``, ``hiaml``) is searched in
its own spec space (every candidate stays a member of the benchmark); other families and raw CGs
are searched with CG mutations (:mod:`engine.search.mutate`), every mutated CG built and run by
:func:`engine.search.interpret.check_feasible` before it is scored.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from engine.graphs.cg import CG, CGError, at_path
from engine.search.evolution import SearchConfig, SearchResult, search
from engine.search.spaces import SPEC_MUTATORS, CGSpace, PoolSpace, SpecSpace
from engine.train.callbacks import Callback

SCORE_COLUMN = "cl_fcm_t"

Scorer = Callable[[Sequence[CG]], np.ndarray]


def make_scorer(predictor: Any, column: str = SCORE_COLUMN) -> Scorer:
    """``list[CG] -> np.ndarray`` of scores (higher = better).

    ``predictor``: an object with ``predict(cgs) -> DataFrame`` (``column`` is read), or already a
    callable scorer (returned wrapped so its output is a float array of the right length)."""
    if predictor is None:
        raise ValueError("no predictor: pass a GennapePredictor (--checkpoint DIR) or a scorer function")
    if hasattr(predictor, "predict"):
        def score(cgs: Sequence[CG]) -> np.ndarray:
            df = predictor.predict(list(cgs))
            if column not in df.columns:
                raise ValueError(f"the predictor's output has no column {column!r}; available: "
                                 f"{', '.join(map(str, df.columns))}")
            return df[column].to_numpy(dtype=np.float64)
        score.column = column  # type: ignore[attr-defined]
        return score
    if callable(predictor):
        def call(cgs: Sequence[CG]) -> np.ndarray:
            out = np.asarray(predictor(list(cgs)), dtype=np.float64).reshape(-1)
            if len(out) != len(cgs):
                raise ValueError(f"scorer returned {len(out)} scores for {len(cgs)} architectures")
            return out
        call.column = getattr(predictor, "column", getattr(predictor, "__name__", "custom"))  # type: ignore[attr-defined]
        return call
    raise ValueError(f"cannot score with a {type(predictor).__name__}: expected a predictor or a callable")


def params_proxy(cgs: Sequence[CG]) -> np.ndarray:
    """A naive, training-free baseline scorer: log10(params).  Not GENNAPE; used to exercise the
    pipeline when no checkpoint exists (clearly labelled wherever it is used)."""
    return np.array([np.log10(c.params + 1.0) for c in cgs])


params_proxy.column = "log10_params_proxy"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------
# start architectures
# ---------------------------------------------------------------------------------------------

def load_cg_file(path: str | Path) -> CG:
    """A CG from a CG JSON or an ONNX file (errors name the file)."""
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: file not found")
    suffix = p.suffix.lower()
    try:
        if suffix == ".onnx":
            from engine.graphs.onnx_import import from_onnx

            return from_onnx(p)
        if suffix == ".json":
            from engine.graphs.cg import load_json

            return load_json(p)
    except CGError as exc:
        raise ValueError(at_path(p, str(exc))) from None
    raise ValueError(f"{p}: expected a CG JSON (.json) or an ONNX (.onnx) file")


def resolve_start(start: Any, family: str | None = None) -> tuple[str | None, Any]:
    """``(family or None, item)``: ``item`` is a normalised spec when ``family`` is set, else a CG.

    ``start``: a CG; a ``(family, spec)`` tuple; a path to a ``.json`` / ``.onnx`` file; or a spec
    (string, dict, list) together with ``family``."""
    if isinstance(start, CG):
        return None, start.validate()
    if isinstance(start, tuple) and len(start) == 2 and isinstance(start[0], str) and family is None:
        family, start = start
    if isinstance(start, str | Path) and Path(str(start)).suffix.lower() in (".json", ".onnx") \
            and Path(str(start)).exists():
        return None, load_cg_file(start)
    if family is None:
        if isinstance(start, str | Path) and Path(str(start)).suffix.lower() in (".json", ".onnx"):
            raise FileNotFoundError(f"{start}: file not found")
        raise ValueError(f"start {str(start)[:80]!r} is not a CG JSON / ONNX file; give a family to read it as a spec")
    from engine.families import get

    fam = get(family)
    return fam.name, fam.parse(start)


def make_space(start: Any, family: str | None = None, mode: str = "auto",
               operators: list[str] | None = None, options: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """``(space, item)`` for a start (see :func:`resolve_start`).

    ``mode``: ``"auto"`` (spec space when the family has a spec mutator, else CG mutations),
    ``"spec"`` or ``"cg"`` (CG mutations of ``to_cg(spec)`` even for spec families).
    ``options``: keyword arguments of the family's ``to_cg`` for a spec start (another head / input
    size, as NB-201's CIFAR-100 and ImageNet16-120 networks)."""
    if mode not in ("auto", "spec", "cg"):
        raise ValueError(f"mode must be auto, spec or cg, got {mode!r}")
    fam, item = resolve_start(start, family)
    if fam is None:
        if mode == "spec":
            raise ValueError("spec search needs a family spec as the start, not a CG")
        from engine.search.interpret import InfeasibleCG, check_feasible

        try:
            check_feasible(item)
        except InfeasibleCG as exc:
            raise ValueError(f"the start CG cannot be built as a network: {exc}") from None
        return CGSpace(operators), item
    if mode == "spec" or (mode == "auto" and fam in SPEC_MUTATORS):
        if operators:
            raise ValueError(f"mutation operators apply to CG mutations only; a {fam} spec is searched with the "
                             "family's own spec edits unless the mode is 'cg'")
        return SpecSpace(fam, options=options), item
    from engine.families import get

    cg = get(fam).to_cg(item, **dict(options or {}))
    cg.meta.setdefault("family", fam)
    return CGSpace(operators), cg


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------

def evaluator(space: Any, scorer: Scorer) -> Callable[[list[Any]], list[tuple[CG, float]]]:
    """Batch evaluation with a score cache by the space's key (repeats cost nothing)."""
    cache: dict[str, float] = {}

    def evaluate(items: list[Any]) -> list[tuple[CG, float]]:
        cgs = [space.to_cg(i) for i in items]
        keys = [space.key(i) for i in items]
        todo = [j for j, k in enumerate(keys) if k not in cache]
        if todo:
            scores = scorer([cgs[j] for j in todo])
            for j, s in zip(todo, scores):
                cache[keys[j]] = float(s) if np.isfinite(s) else float("-inf")
        return [(cg, cache[k]) for cg, k in zip(cgs, keys)]

    return evaluate


def run_search(start: Any, predictor: Any, config: SearchConfig = SearchConfig(), callback: Callback | None = None,
               *, family: str | None = None, mode: str = "auto", operators: list[str] | None = None,
               column: str = SCORE_COLUMN, space: Any = None) -> SearchResult:
    """Search from ``start`` with ``predictor`` (or a scorer callable); see the module docstring.

    ``space`` overrides the space chosen from the start (e.g. a :class:`PoolSpace`; ``start`` is
    then an item of that space)."""
    scorer = make_scorer(predictor, column)
    if space is None:
        space, item = make_space(start, family, mode, operators)
    else:
        item = start
    result = search(item, space.mutate, evaluator(space, scorer), config, callback, key=space.key)
    result.space = space
    result.meta.update({"space": space.kind, "score_column": getattr(scorer, "column", column)})
    if isinstance(space, SpecSpace):
        result.meta["family"] = space.family.name
    elif isinstance(space, CGSpace):
        result.meta["family"] = (item.meta or {}).get("family", "custom")
        result.meta["operators"] = list(space.operators or [])
        result.meta["rejected_infeasible"] = len(space.rejected)
        result.meta["rejection_examples"] = space.rejected[:5]
    elif isinstance(space, PoolSpace):
        result.meta["pool_size"] = len(space)
    return result


# ---------------------------------------------------------------------------------------------
# export
# ---------------------------------------------------------------------------------------------

def onnx_bytes(cg: CG) -> bytes:
    """ONNX of the network the CG describes (``torch.onnx.export`` of :func:`interpret`, eval mode,
    BatchNorm kept as nodes so that ``from_onnx`` gives the CG back).  Raises ``RuntimeError``
    with the reason when the CG cannot be built or exported."""
    import torch

    from engine.search.interpret import InfeasibleCG, interpret

    try:
        net = interpret(cg).eval()
    except InfeasibleCG as exc:
        raise RuntimeError(f"the CG cannot be built: {exc}") from None
    h, w, c = cg.input_node.out_shape
    buf = io.BytesIO()
    try:
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (torch.zeros(1, c, h, w),), buf, dynamo=False, do_constant_folding=False,
                              training=torch.onnx.TrainingMode.PRESERVE, input_names=["input"],
                              output_names=["logits"])
    except Exception as exc:  # noqa: BLE001 - report why, never crash the caller
        raise RuntimeError(f"torch.onnx.export failed: {type(exc).__name__}: {exc}") from None
    return buf.getvalue()


def export_candidate(cg: CG, directory: str | Path, stem: str) -> dict[str, str]:
    """Write ``<stem>.json`` and ``<stem>.onnx``; returns ``{"json": path, "onnx": path}`` or, when
    the ONNX export fails, ``{"json": path, "onnx_error": reason}``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    out = {"json": str(d / f"{stem}.json")}
    cg.to_json(d / f"{stem}.json", indent=1)
    try:
        (d / f"{stem}.onnx").write_bytes(onnx_bytes(cg))
        out["onnx"] = str(d / f"{stem}.onnx")
    except RuntimeError as exc:
        out["onnx_error"] = str(exc)
    return out
