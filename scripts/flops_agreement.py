"""Label-free check: how each member's ranking relates to FLOPs on families without labels.

For every family, ``--n`` sampled architectures are scored by a checkpoint; the table gives the
Spearman correlation of each member (and of ``score``) with FLOPs, and of params with FLOPs.
No accuracy is read.  Published context (paper Table 1): FLOPs ranks OFA-PN 0.689, OFA-MBv3 0.614,
OFA-ResNet 0.785 SRCC with accuracy, so a member that ranks inversely to FLOPs there is betting
against a known positive predictor.

    PYTHONPATH=. python scripts/flops_agreement.py [--checkpoint DIR] [--n 300] [--output F.json]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from scipy.stats import spearmanr

from engine.families import get
from engine.model import default_checkpoint_dir
from engine.model.predictor import GennapePredictor

FAMILIES = ("ofa_pn", "ofa_mbv3", "ofa_resnet", "hiaml", "inception", "two_path", "nb101", "nb201", "nb301")
COLUMNS = ("score", "graph_stats", "params_baseline", "cl_fcm_t", "cl_t", "cl_fcm", "cl", "pairwise", "kgnn")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=default_checkpoint_dir())
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--output", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(2)
    pred = GennapePredictor.load(args.checkpoint)
    rows = {}
    print(f"{'family':11s} " + " ".join(f"{c:>15s}" for c in COLUMNS))
    for name in FAMILIES:
        fam = get(name)
        df = pred.predict([fam.to_cg(s) for s in fam.sample(args.n, seed=args.seed)])
        flops = df["flops_baseline"].to_numpy(float)
        rows[name] = {c: float(spearmanr(df[c].to_numpy(float), flops)[0]) for c in COLUMNS}
        print(f"{name:11s} " + " ".join(f"{rows[name][c]:>+15.3f}" for c in COLUMNS))
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({"checkpoint": str(args.checkpoint), "n": args.n, "seed": args.seed,
                                           "spearman_with_flops": rows}, indent=2))


if __name__ == "__main__":
    main()
