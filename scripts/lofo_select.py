"""Leave-one-family-out model selection for the shipped checkpoint.

For every labelled family T in {nb101, nb201, nb301}: train GENNAPE on the other families, then
predict T zero-shot and compare the ensemble score and its members against the FLOPs and params
baselines (SRCC, NDCG@10).  The result table decides which source families the shipped
checkpoint uses (see assets/checkpoint/model_card.json).

    python scripts/lofo_select.py --output runs/lofo [--nb201-max 3000] [--epochs 10] [--set SECTION.FIELD=VALUE]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from engine.data import load_default, load_shared
from engine.metrics import ndcg_at_k, srcc
from engine.model.config import GennapeConfig
from engine.model.packing import as_packed
from engine.model.predictor import GennapePredictor
from engine.train.callbacks import TextProgress


def load_family(name: str, nb201_max: int, seed: int):
    if name == "nb201":
        ds = load_default("cifar10")
        idx = np.random.default_rng(seed).permutation(len(ds))[:nb201_max]
        ds = ds.subset(np.sort(idx))
    elif name == "nb101":
        ds = load_shared("nb101_naslib")
    elif name == "nb301":
        ds = load_shared("nb301_naslib")
    else:
        raise ValueError(name)
    labels = ds.frame["label"].to_numpy(dtype=float)
    return as_packed(ds.cgs), labels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--output", default="runs/lofo")
    ap.add_argument("--nb201-max", type=int, default=3000)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--kgnn-epochs", type=int, default=5)
    ap.add_argument("--targets", default="nb101,nb201,nb301")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                    help="config override, VALUE parsed as JSON when it can be (repeatable)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    fams = ["nb101", "nb201", "nb301"]
    data = {f: load_family(f, args.nb201_max, args.seed) for f in fams}
    updates = {"contrastive.epochs": args.epochs, "kgnn.epochs": args.kgnn_epochs, "train.seed": args.seed}
    for item in args.set:
        key, _, raw = item.partition("=")
        try:
            updates[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            updates[key.strip()] = raw
    cfg = GennapeConfig().override(updates)
    rows = []
    for target in args.targets.split(","):
        sources = [f for f in fams if f != target]
        from engine.model.packing import PackedGraphs
        packed = PackedGraphs.concat([data[f][0] for f in sources])
        acc = np.concatenate([data[f][1] for f in sources])
        groups = np.concatenate([[f] * len(data[f][1]) for f in sources])
        t0 = time.perf_counter()
        model = GennapePredictor(cfg).fit(packed, acc, callback=TextProgress(), groups=groups)
        fit_s = time.perf_counter() - t0
        tp, ta = data[target]
        df = model.predict(tp)
        df.insert(0, "label", ta)
        df["novelty"] = model.novelty(tp)  # > 1: outside the sources' training domain
        df.to_csv(out / f"preds_{target}.csv", index=False)
        for col in ["score", "cl_fcm_t", "cl_t", "cl_fcm", "cl", "pairwise", "pairwise_fcm", "kgnn",
                    "flops_baseline", "params_baseline", "graph_stats"]:
            v = df[col].to_numpy(dtype=float)
            rows.append({"target": target, "sources": "+".join(sources), "method": col,
                         "srcc": srcc(ta, v), "ndcg@10": ndcg_at_k(ta, v, 10), "fit_s": round(fit_s, 1)})
        pd.DataFrame(rows).to_csv(out / f"lofo_{'_'.join(args.targets.split(','))}.csv", index=False)
        frame = pd.DataFrame(rows)
        print(frame[frame["target"] == target].to_string(index=False), flush=True)
    table = pd.DataFrame(rows)
    (out / "lofo.txt").write_text(table.to_string(index=False))
    (out / "config.json").write_text(json.dumps({"args": vars(args), "model": cfg.to_dict()}, indent=2, default=str))


if __name__ == "__main__":
    main()
