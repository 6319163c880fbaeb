"""Choose the shipped ensemble's members by leave-one-family-out measurement.

Reads ``preds_<target>.csv`` written by ``scripts/lofo_select.py`` (zero-shot member predictions
on a family the model never saw) and scores candidate member sets combined exactly as the
predictor does (rank-standardised, equal weights).  Prints a Markdown table; the set with the
best mean SRCC over targets is the recommendation.

    python scripts/select_ensemble.py runs/lofo
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from engine.metrics import ndcg_at_k, srcc
from engine.model.ensemble import EnsembleReference

CANDIDATES = {
    "paper (CL+FCM+T, CL+T, 2 pairwise, k-GNN, FLOPs)": ("cl_fcm_t", "cl_t", "pairwise", "pairwise_fcm", "kgnn",
                                                         "flops_baseline"),
    "all CL members + FLOPs": ("cl_fcm_t", "cl_t", "cl_fcm", "cl", "pairwise", "pairwise_fcm", "flops_baseline"),
    "untransformed CL + pairwise + FLOPs": ("cl_fcm", "cl", "pairwise", "pairwise_fcm", "flops_baseline"),
    "T members + FLOPs": ("cl_fcm_t", "cl_t", "flops_baseline"),
    "CL+FCM + pairwise+FCM + FLOPs": ("cl_fcm", "pairwise_fcm", "flops_baseline"),
    "FLOPs only": ("flops_baseline",),
    "params only": ("params_baseline",),
}


def main(folder: str) -> None:
    rows = []
    for path in sorted(Path(folder).glob("preds_*.csv")):
        target = path.stem.removeprefix("preds_")
        df = pd.read_csv(path)
        y = df["label"].to_numpy(dtype=float)
        members = {c: df[c].to_numpy(dtype=float) for c in df.columns}
        for name, cols in CANDIDATES.items():
            w = {c: 1.0 for c in cols}
            ens = EnsembleReference.fit(members, w, members["cl_fcm_t"], "rank").ensemble(members, w)
            rows.append({"candidate": name, "target": target, "srcc": srcc(y, ens), "ndcg@10": ndcg_at_k(y, ens, 10)})
    t = pd.DataFrame(rows)
    piv = t.pivot_table(index="candidate", columns="target", values=["srcc", "ndcg@10"])
    piv[("srcc", "mean")] = t.groupby("candidate")["srcc"].mean()
    piv[("ndcg@10", "mean")] = t.groupby("candidate")["ndcg@10"].mean()
    piv = piv.sort_values(("srcc", "mean"), ascending=False).round(3)
    print(piv.to_string())
    (Path(folder) / "ensemble_selection.csv").write_text(piv.to_csv())


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/lofo")
