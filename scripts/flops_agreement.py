"""Label-free check: how each member's ranking relates to FLOPs on families without labels.

For every family, ``--n`` sampled architectures are scored by a checkpoint; the table gives the
Spearman correlation of each member (and of ``score``) with FLOPs, and of params with FLOPs.
No accuracy is read.  Published context (paper Table 1): FLOPs ranks OFA-PN 0.689, OFA-MBv3 0.614,
OFA-ResNet 0.785 SRCC with accuracy, so a member that ranks inversely to FLOPs there is betting
against a known positive predictor.

    PYTHONPATH=. python scripts/flops_agreement.py [--checkpoint DIR] [--n 300] [--output F.json]
"""

from __future__ import annotations

import sys

import torch
from scipy.stats import spearmanr

from engine.evaluate._io import check_parser, run_check, write_output
from engine.families import get
from engine.model import default_checkpoint_dir
from engine.model.predictor import GennapePredictor

FAMILIES = ("ofa_pn", "ofa_mbv3", "ofa_resnet", "hiaml", "inception", "two_path", "nb101", "nb201", "nb301")
COLUMNS = ("score", "graph_stats", "params_baseline", "cl_fcm_t", "cl_t", "cl_fcm", "cl", "pairwise", "kgnn")


def agreement(checkpoint: str | None, n: int, seed: int) -> dict:
    """Spearman correlation of each of :data:`COLUMNS` with FLOPs, per family."""
    pred = GennapePredictor.load(checkpoint or default_checkpoint_dir())
    rows = {}
    for name in FAMILIES:
        fam = get(name)
        df = pred.predict([fam.to_cg(s) for s in fam.sample(n, seed=seed)])
        flops = df["flops_baseline"].to_numpy(float)
        rows[name] = {c: float(spearmanr(df[c].to_numpy(float), flops)[0]) for c in COLUMNS}
    return {"checkpoint": str(checkpoint or default_checkpoint_dir()), "n": n, "seed": seed,
            "spearman_with_flops": rows}


def main(argv=None) -> int:
    args = check_parser("flops_agreement.py", __doc__, 300, "architectures per family").parse_args(argv)
    torch.set_num_threads(2)
    res = run_check(agreement, args.checkpoint, args.n, args.seed)
    if res is None:
        return 2
    print(f"{'family':11s} " + " ".join(f"{c:>15s}" for c in COLUMNS))
    for name, row in res["spearman_with_flops"].items():
        print(f"{name:11s} " + " ".join(f"{row[c]:>+15.3f}" for c in COLUMNS))
    return write_output(args.output, res)


if __name__ == "__main__":
    sys.exit(main())
