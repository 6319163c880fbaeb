"""Check: do the OFA families' CGs equal what the official Once-for-All code builds?

The ImageNet MBConv-style spaces the predictor will be judged on are usually produced with the
``ofa`` package (``OFAMobileNetV3`` / ``OFAProxylessNASNets`` / ``OFAResNets`` ->
``set_active_subnet`` -> ``get_active_subnet``).  :mod:`engine.families.ofa` re-implements those
networks from the reference doc.  For ``--n`` sampled specs per family this builds the official
sub-network, traces it with ``from_module`` at the spec's resolution and compares it with the
family's ``to_cg``: isomorphism-invariant fingerprint (ops, shapes, weights, strides, groups and
edges), FLOPs, params (also against ``sum(p.numel())`` of the official module) and op counts. It
then scores both sets with the shipped checkpoint and reports the Spearman correlation of
``score`` and of every member between the two routes.  No labels are read.

``--onnx K`` also exports the first K official sub-networks of each family (dynamo exporter,
``optimize=False``, which keeps BatchNorm) and compares the imported CGs in the same way.

The ``ofa`` package is not a dependency of the project (it needs torchvision for its data
loaders); install both outside the project:

    pip install --no-deps --target DIR ofa
    pip install --no-deps --target DIR2 torchvision==<the release for the pinned torch>
    PYTHONPATH=. python scripts/ofa_consistency.py --ofa-path DIR --torchvision-path DIR2 \\
        [--n 20] [--onnx 3] [--output F.json]

Exit status 1 when a sub-network fails to build or trace, or when a CG differs.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

FAMILIES = ("ofa_mbv3", "ofa_pn", "ofa_resnet")


def _official_net(family: str):
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3, OFAProxylessNASNets, OFAResNets

    if family == "ofa_mbv3":
        return OFAMobileNetV3(dropout_rate=0, width_mult=1.2, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6],
                              depth_list=[2, 3, 4])
    if family == "ofa_pn":
        return OFAProxylessNASNets(dropout_rate=0, width_mult=1.3, ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6],
                                   depth_list=[2, 3, 4])
    return OFAResNets(dropout_rate=0, depth_list=[0, 1, 2], expand_ratio_list=[0.2, 0.25, 0.35],
                      width_mult_list=[0.65, 0.8, 1.0])


def _subnet(net, family: str, spec: dict):
    """The official static sub-network of ``spec`` (unused slots, 0 in our canonical specs, get
    an allowed value: the network ignores them)."""
    if family == "ofa_resnet":
        e = [v or 0.25 for v in spec["e"]]
        net.set_active_subnet(d=list(spec["d"]), e=e, w=list(spec["w"]))
    else:
        ks = [v or 3 for v in spec["ks"]]
        e = [v or 3 for v in spec["e"]]
        d = list(spec["d"]) + ([1] if family == "ofa_pn" else [])
        net.set_active_subnet(ks=ks, e=e, d=d)
    return net.get_active_subnet(preserve_weight=False).eval()


def _compare(ours, theirs) -> dict:
    same = ours.fingerprint() == theirs.fingerprint()
    row = {"same_graph": same, "nodes": [ours.num_nodes, theirs.num_nodes], "flops": [ours.flops, theirs.flops],
           "params": [ours.params, theirs.params]}
    if not same:
        a, b = ours.op_counts(), theirs.op_counts()
        row["op_count_diff"] = {k: [a.get(k, 0), b.get(k, 0)] for k in sorted(set(a) | set(b))
                                if a.get(k, 0) != b.get(k, 0)}
    return row


def _export_onnx(module, shape, path: Path) -> None:
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (torch.randn(shape),), str(path), dynamo=True, verbose=False, optimize=False)


def consistency(n: int, n_onnx: int, seed: int) -> dict:
    import torch

    from engine.cg import from_module
    from engine.families import get
    from engine.graphs.onnx_import import from_onnx
    from engine.model import default_checkpoint_dir
    from engine.model.config import MEMBERS
    from engine.model.predictor import GennapePredictor

    pred = GennapePredictor.load(default_checkpoint_dir())
    out: dict = {"n": n, "seed": seed, "families": {}}
    for family in FAMILIES:
        fam = get(family)
        torch.manual_seed(0)
        net = _official_net(family)
        specs = fam.sample(n, seed=seed)
        rows, ours, theirs = [], [], []
        t = time.perf_counter()
        for i, spec in enumerate(specs):
            cg = fam.to_cg(spec)
            try:
                sub = _subnet(net, family, spec)
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    official = from_module(sub, fam.input_shape(spec), name=f"{family}-{i}")
            except Exception as exc:  # noqa: BLE001 - a failure is a result here
                rows.append({"spec": spec, "error": f"{type(exc).__name__}: {exc}"[:300]})
                continue
            row = _compare(cg, official)
            row["module_params"] = sum(p.numel() for p in sub.parameters())
            row["warnings"] = sorted({str(w.message)[:200] for w in caught})
            if i < n_onnx:
                with tempfile.TemporaryDirectory() as tmp:
                    path = Path(tmp) / "net.onnx"
                    _export_onnx(sub, fam.input_shape(spec), path)
                    row["onnx"] = _compare(cg, from_onnx(path, name=f"{family}-{i}-onnx"))
            rows.append(row)
            ours.append(cg)
            theirs.append(official)
        ok = [r for r in rows if "error" not in r]
        fam_out = {
            "specs": len(specs), "built": len(ok), "seconds": round(time.perf_counter() - t, 1),
            "same_graph": sum(r["same_graph"] for r in ok),
            "flops_equal": sum(r["flops"][0] == r["flops"][1] for r in ok),
            "params_equal": sum(r["params"][0] == r["params"][1] == r["module_params"] for r in ok),
            "onnx_same_graph": [r["onnx"]["same_graph"] for r in ok if "onnx" in r],
            "rows": rows,
        }
        if len(ours) >= 3:
            a, b = pred.predict(ours), pred.predict(theirs)
            fam_out["spearman_between_routes"] = {
                c: float(spearmanr(a[c], b[c]).statistic) for c in ("score", *MEMBERS)
                if np.isfinite(a[c]).all() and a[c].nunique() > 1}
            fam_out["max_abs_score_diff"] = float(np.abs(a["score"].to_numpy() - b["score"].to_numpy()).max())
        print(f"{family:11s} built {fam_out['built']}/{len(specs)}  same graph {fam_out['same_graph']}  "
              f"FLOPs equal {fam_out['flops_equal']}  params equal {fam_out['params_equal']}  "
              f"ONNX same graph {sum(fam_out['onnx_same_graph'])}/{len(fam_out['onnx_same_graph'])}  "
              f"score Spearman {fam_out.get('spearman_between_routes', {}).get('score', float('nan')):.4f}  "
              f"({fam_out['seconds']} s)")
        for r in rows:
            if "error" in r or not r["same_graph"]:
                print(f"  differs: {r.get('error') or r.get('op_count_diff')}")
        out["families"][family] = fam_out
    out["problems"] = [f for f, v in out["families"].items()
                       if v["built"] < v["specs"] or v["same_graph"] < v["built"] or not all(v["onnx_same_graph"])]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ofa-path", required=True, help="folder holding the ofa package (pip install --target)")
    ap.add_argument("--torchvision-path", help="folder holding torchvision (pip install --no-deps --target)")
    ap.add_argument("--n", type=int, default=20, help="sampled specs per family (default 20)")
    ap.add_argument("--onnx", type=int, default=0, help="also compare the ONNX route for the first K specs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--output", help="write the result as JSON")
    args = ap.parse_args(argv)
    from torchvision_import import _import_torchvision

    _import_torchvision(args.torchvision_path)
    sys.path.insert(0, args.ofa_path)
    try:
        import ofa.imagenet_classification.elastic_nn.networks  # noqa: F401
    except ImportError as exc:
        print(f"error: cannot import the ofa package from --ofa-path {args.ofa_path} ({exc}); install it with "
              "pip install --no-deps --target DIR ofa (it also needs torchvision: --torchvision-path)", file=sys.stderr)
        return 2
    result = consistency(args.n, args.onnx, args.seed)
    from engine.evaluate._io import write_output

    if write_output(args.output, result):
        return 2
    if result["problems"]:
        print(f"differences in: {', '.join(result['problems'])}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
