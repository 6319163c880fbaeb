"""Check: every torchvision classification model through ``from_module`` (no labels, no weights).

torchvision is not a dependency of the project; this script is for development. For each model
of ``torchvision.models.list_models(module=torchvision.models)`` (built on the meta device when
its constructor allows, else on CPU with random weights) it builds the CG at 224 px (299 for
Inception v3) and reports nodes, FLOPs, params, ``other`` nodes and whether params equal
``sum(p.numel() for p in model.parameters())`` (auxiliary heads, not on the input -> output path,
are reported by ``from_module`` with a warning and excluded). Exit status 1 when a model fails,
has ``other`` nodes or unexplained params.

    PYTHONPATH=. python scripts/torchvision_import.py [--torchvision-path DIR] [--output F.json] [--only NAME ...]

``--torchvision-path``: a folder holding a torchvision installed with ``pip install --no-deps
--target DIR torchvision==<the release for the pinned torch>`` (so that the CPU torch stays).
If that torchvision's compiled operators do not match the installed torch, its import fails on
registering them; model definitions do not need them, so the script then skips that
registration (``torchvision._meta_registrations``) and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
import warnings
from pathlib import Path


def _import_torchvision(path: str | None):
    if path:
        sys.path.insert(0, path)
    try:
        import torchvision  # noqa: F401
    except RuntimeError as exc:  # compiled ops built for another torch
        for name in [m for m in sys.modules if m.startswith("torchvision")]:
            del sys.modules[name]
        sys.modules["torchvision._meta_registrations"] = types.ModuleType("torchvision._meta_registrations")
        print(f"note: torchvision's compiled operators did not load ({str(exc).splitlines()[0]}); "
              "importing it without them", file=sys.stderr)
    import torchvision

    return torchvision


def check(only: list[str] | None, tv) -> dict:
    import torch

    from engine.cg import from_module

    models = tv.models
    names = only or models.list_models(module=models)
    rows, problems = {}, []
    for n in names:
        t = time.perf_counter()
        try:
            try:
                with torch.device("meta"):
                    m = models.get_model(n).eval()
            except Exception:  # noqa: BLE001 - some constructors compute on tensors
                m = models.get_model(n).eval()
            size = 299 if n == "inception_v3" else 224
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cg = from_module(m, (1, 3, size, size), name=n)
        except Exception as exc:  # noqa: BLE001 - a failure is a result here
            rows[n] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"}
            problems.append(n)
            print(f"{n:24s} FAILED {rows[n]['error']}")
            continue
        module_params = sum(p.numel() for p in m.parameters())
        unused = [str(w.message) for w in caught if "not used on the input" in str(w.message)]
        other = cg.op_counts().get("other", 0)
        row = {"input": size, "nodes": cg.num_nodes, "flops": cg.flops, "params": cg.params,
               "module_params": module_params, "other": other, "unused_params_warning": bool(unused)}
        rows[n] = row
        ok = other == 0 and (cg.params == module_params or unused)
        if not ok:
            problems.append(n)
        print(f"{n:24s} {size:3d} px  nodes {cg.num_nodes:5d}  GFLOPs {cg.flops / 1e9:8.3f}  params {cg.params:>12,}"
              f"{'' if cg.params == module_params else f' (module {module_params:,}: aux heads)' if unused else ' MISMATCH'}"
              f"{f'  other {other}' if other else ''}  {time.perf_counter() - t:.2f} s")
    return {"torchvision": tv.__version__, "models": rows, "problems": problems}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torchvision-path", default=None, help="folder to import torchvision from")
    ap.add_argument("--only", nargs="+", default=None, help="model names (default: all classification models)")
    ap.add_argument("--output", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    try:
        tv = _import_torchvision(args.torchvision_path)
    except ImportError:
        print("error: torchvision is not installed (see the docstring: pip install --no-deps --target DIR "
              "torchvision==<release for the pinned torch>, then --torchvision-path DIR)", file=sys.stderr)
        return 2
    warnings.filterwarnings("ignore", module="torchvision")
    result = check(args.only, tv)
    n = len(result["models"])
    print(f"{n} models; {n - len(result['problems'])} imported with no 'other' node and exact params; "
          f"problems: {', '.join(result['problems']) or 'none'}")
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(json.dumps(result, indent=1))
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
