"""Does fine-tuning help on a family *inside* the checkpoint's training domain?

Fine-tunes the shipped checkpoint on k NB-201 cells it did not train on (CIFAR-10 labels) and
scores 1,000 other unseen cells before and after, for a few seeds; also the fine-tuned copy with
the in-domain ensemble kept, and the learned members on their own.

    python scripts/finetune_in_domain.py [--k 50] [--seeds 3]
"""

from __future__ import annotations

import argparse

import torch

from engine.evaluate.domain import heldout_nb201, nb201_labels
from engine.families import get
from engine.metrics import srcc
from engine.model import default_checkpoint_dir
from engine.model.predictor import GennapePredictor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    pred = GennapePredictor.load(default_checkpoint_dir())
    specs, note = heldout_nb201(pred, 1000 + args.k, seed=5)
    lab = nb201_labels(specs)
    cgs = [get("nb201").to_cg(s) for s in specs]
    train, test = cgs[:args.k], cgs[args.k:]
    y_train, y_test = lab[:args.k], lab[args.k:]
    before = pred.predict(test)
    print(f"{note}; fine-tune on {args.k}, evaluate on {len(test)}")
    print(f"before: score SRCC {srcc(y_test, before['score']):.3f}")
    members = ["cl_fcm", "cl", "pairwise", "pairwise_fcm", "cl_fcm_t"]
    for seed in range(args.seeds):
        tuned = pred.finetune(train, y_train, k=args.k, seed=seed)
        after = tuned.predict(test)
        kept = tuned.copy()
        kept.config = kept.config.override({"ensemble.in_domain_members": list(pred.config.ensemble.in_domain_members)})
        print(f"seed {seed}: after SRCC {srcc(y_test, after['score']):.3f}; with the in-domain ensemble kept "
              f"{srcc(y_test, kept.predict(test)['score']):.3f}; members after: "
              + ", ".join(f"{m} {srcc(y_test, after[m]):.3f}" for m in members)
              + "; before: " + ", ".join(f"{m} {srcc(y_test, before[m]):.3f}" for m in members))


if __name__ == "__main__":
    main()
