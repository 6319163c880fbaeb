"""Check (not for selection): zero-shot ranking of every torchvision ImageNet-1K classifier.

A larger companion of :mod:`engine.evaluate.zoo` (31 networks). torchvision (not a dependency;
``pip install --no-deps --target DIR torchvision==<release for the pinned torch>``) publishes each
model's ImageNet-1K top-1 in its weights' metadata (``weights.meta["_metrics"]``), offline. This
takes every classification model with ``IMAGENET1K_V1`` weights: one training recipe per model,
ImageNet-1K only. ``IMAGENET1K_V2`` recipes (+2-5 points for the same network) and SWAG weights
(pre-trained on 3.6 billion images) are left out. Each network is traced at its weights'
evaluation crop size (224 for most, 299 for Inception v3, up to 600 for EfficientNet-B7). No
weights are loaded.

The networks are scored together by the shipped checkpoint (or ``--checkpoint``). The script
reports SRCC, Kendall tau and NDCG@10 for ``score``, FLOPs, params and every member, on all networks
and on the MBConv-style subset (EfficientNet V1 / V2, MnasNet, MobileNet V2 / V3). This is a
check set only: it is never used to train or choose anything. The 31 zoo networks are a subset.

    PYTHONPATH=.:scripts python scripts/torchvision_check.py --torchvision-path DIR [--checkpoint DIR]
        [--output F.json]

About 1 minute.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

#: name prefixes of the MBConv-style (inverted-residual) torchvision classifiers, reported as a subset
MBCONV_PREFIXES = ("efficientnet", "mnasnet", "mobilenet")


def networks(tv) -> list[dict]:
    """``[{"name", "top1", "size", "params"}]`` for the models with ``IMAGENET1K_V1`` weights."""
    from torchvision.models import get_model_weights

    out = []
    for name in tv.models.list_models(module=tv.models):
        weights = get_model_weights(name)
        if "IMAGENET1K_V1" not in [w.name for w in weights]:
            continue
        w = weights["IMAGENET1K_V1"]
        out.append({"name": name, "top1": float(w.meta["_metrics"]["ImageNet-1K"]["acc@1"]),
                    "size": int(w.transforms().crop_size[0]), "params": int(w.meta["num_params"])})
    return out


def evaluate(tv, checkpoint: str | None) -> dict:
    import numpy as np
    from torchvision_import import build_torchvision

    from engine.cg import from_module
    from engine.evaluate.zoo import ranking_table
    from engine.model import default_checkpoint_dir
    from engine.model.predictor import GennapePredictor

    nets, graphs = [], []
    for net in networks(tv):
        kw = {"aux_logits": False, "init_weights": False} if net["name"] in ("inception_v3", "googlenet") else {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = build_torchvision(tv, net["name"], **kw)
            cg = from_module(model, (1, 3, net["size"], net["size"]), name=net["name"])
        if cg.params != net["params"]:
            net["params_note"] = f"CG {cg.params:,} vs published {net['params']:,}"
        nets.append(net)
        graphs.append(cg)
    pred = GennapePredictor.load(Path(checkpoint) if checkpoint else default_checkpoint_dir())
    frame = pred.predict(graphs)
    _, rows = ranking_table(frame, np.array([n["top1"] for n in nets]))
    for r in rows:
        print(f"{r['method']:16s} SRCC {r['srcc']:6.3f}  Kendall {r['kendall']:6.3f}  NDCG@10 {r['ndcg10']:.4f}")
    per_net = [{**n, "gflops": g.flops / 1e9, "nodes": g.num_nodes, "score": float(s)}
               for n, g, s in zip(nets, graphs, frame["score"])]
    print(f"{len(nets)} networks; in-domain rows: {frame.attrs.get('in_domain_rows')}")
    # the MBConv-style networks alone (inverted residuals: EfficientNet V1 / V2, MnasNet, MobileNet
    # V2 / V3), ranked inside the whole set's scoring: the kind of space the predictor is judged on
    sub = np.flatnonzero([n["name"].startswith(MBCONV_PREFIXES) for n in nets])
    _, sub_rows = ranking_table(frame.iloc[sub], np.array([nets[i]["top1"] for i in sub]))
    print(f"MBConv-style subset ({len(sub)} networks):")
    for r in sub_rows[:3]:
        print(f"  {r['method']:14s} SRCC {r['srcc']:6.3f}  Kendall {r['kendall']:6.3f}  NDCG@10 {r['ndcg10']:.4f}")
    return {"source": "torchvision IMAGENET1K_V1 weights metadata (acc@1)", "torchvision": tv.__version__,
            "n": len(nets), "metrics": rows, "in_domain_rows": frame.attrs.get("in_domain_rows"),
            "mbconv_subset": {"networks": [nets[i]["name"] for i in sub], "metrics": sub_rows},
            "networks": per_net}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--torchvision-path", default=None, metavar="DIR", help="folder holding torchvision")
    ap.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    ap.add_argument("--output", default=None, help="write the result as JSON here")
    args = ap.parse_args(argv)
    from torchvision_import import _import_torchvision

    from engine.evaluate._io import write_output

    result = evaluate(_import_torchvision(args.torchvision_path), args.checkpoint)
    return 2 if write_output(args.output, result) else 0


if __name__ == "__main__":
    sys.exit(main())
