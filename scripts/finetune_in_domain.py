"""Does fine-tuning help on a family *inside* the checkpoint's training domain?

Fine-tunes the shipped checkpoint on k NB-201 cells it did not train on and scores 1,000 other
unseen cells before and after, for each label set (CIFAR-10, the checkpoint's training labels;
CIFAR-100 and ImageNet16-120, which it never trained on) and a few draws of the k cells; for
each ``finetune.selection`` ("paper": softmax(Kendall tau) on the k samples; "cv": each member
keeps its fine-tuned or pre-trained version by out-of-fold tau).  Prints one line per run and a
mean per label set and selection; ``--output`` writes them as JSON.

    python scripts/finetune_in_domain.py [--k 50] [--seeds 3] [--labels cifar10,cifar100,imagenet]
                                         [--selections paper,cv] [--output FILE.json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from engine.evaluate.domain import heldout_nb201, nb201_labels
from engine.families import get
from engine.metrics import ndcg_at_k, srcc
from engine.model import default_checkpoint_dir
from engine.model.predictor import GennapePredictor

LEARNED = ["cl_fcm", "cl", "pairwise", "pairwise_fcm", "cl_fcm_t"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=3, help="draws of the k fine-tuning cells")
    ap.add_argument("--n-test", type=int, default=1000)
    ap.add_argument("--labels", default="cifar10,cifar100,imagenet")
    ap.add_argument("--selections", default="paper,cv")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--output", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pred = GennapePredictor.load(default_checkpoint_dir())
    specs, note = heldout_nb201(pred, args.n_test + args.k * args.seeds, seed=5)
    cgs = [get("nb201").to_cg(s) for s in specs]
    test_idx = np.arange(args.n_test)
    test = [cgs[i] for i in test_idx]
    before = pred.predict(test)
    inside = float(np.mean(pred.novelty(cgs) <= 1.0))
    print(f"{note}: {inside:.1%} inside the domain; fine-tune on {args.k}, evaluate on {args.n_test}")
    rows = []
    for dataset in args.labels.split(","):
        lab = nb201_labels(specs, dataset)
        y_test = lab[test_idx]
        base = {"srcc": srcc(y_test, before["score"]), "ndcg@10": ndcg_at_k(y_test, before["score"], 10)}
        print(f"[{dataset}] before: SRCC {base['srcc']:.3f}, NDCG@10 {base['ndcg@10']:.3f}; members "
              + ", ".join(f"{m} {srcc(y_test, before[m]):.3f}" for m in LEARNED))
        for seed in range(args.seeds):
            tr = np.arange(args.n_test + seed * args.k, args.n_test + (seed + 1) * args.k)
            for sel in args.selections.split(","):
                p = pred.copy()
                p.config = p.config.override({"finetune.selection": sel})
                t0 = time.perf_counter()
                tuned = p.finetune([cgs[i] for i in tr], lab[tr], k=args.k, seed=seed)
                sec = time.perf_counter() - t0
                after = tuned.predict(test)
                info = tuned.model_card["finetune"]
                row = {"labels": dataset, "draw": seed, "selection": sel, "seconds": sec,
                       "srcc_before": base["srcc"], "ndcg10_before": base["ndcg@10"],
                       "srcc_after": srcc(y_test, after["score"]), "ndcg10_after": ndcg_at_k(y_test, after["score"], 10),
                       "kept_pretrained": info.get("kept_pretrained"), "weights": info["weights"],
                       "members_after": {m: srcc(y_test, after[m]) for m in LEARNED}}
                rows.append(row)
                print(f"[{dataset}] draw {seed} {sel:5s}: SRCC {row['srcc_before']:.3f} -> {row['srcc_after']:.3f}, "
                      f"NDCG@10 {row['ndcg10_before']:.3f} -> {row['ndcg10_after']:.3f} ({sec:.1f} s)"
                      + (f"; kept pre-trained {row['kept_pretrained']}" if row["kept_pretrained"] is not None else ""))
    print("\nmean over draws (SRCC before -> after, NDCG@10 before -> after):")
    for dataset in args.labels.split(","):
        for sel in args.selections.split(","):
            rs = [r for r in rows if r["labels"] == dataset and r["selection"] == sel]
            print(f"  {dataset:9s} {sel:5s} {np.mean([r['srcc_before'] for r in rs]):.3f} -> "
                  f"{np.mean([r['srcc_after'] for r in rs]):.3f} ± {np.std([r['srcc_after'] for r in rs]):.3f}, "
                  f"{np.mean([r['ndcg10_before'] for r in rs]):.3f} -> {np.mean([r['ndcg10_after'] for r in rs]):.3f}")
    if args.output:
        with open(args.output, "w") as fh:
            json.dump({"note": note, "inside_share": inside, "k": args.k, "rows": rows}, fh, indent=1)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
