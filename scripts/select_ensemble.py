"""Choose the shipped ensemble's members by leave-one-family-out measurement.

Reads ``preds_<target>.csv`` written by ``scripts/lofo_select.py`` (zero-shot member predictions
on a family the model never saw) and scores candidate member sets combined exactly as the
predictor does (rank-standardised, equal weights).  Prints a Markdown table; the set with the
best mean SRCC over targets is the recommendation.

Choosing the set on the same targets it is then scored on flatters it, so the script also
prints a *nested* estimate: for each target T the set is chosen by mean SRCC over the other
targets only, and scored on T.  That number is the honest zero-shot estimate of the rule
"pick the best set by leave-one-family-out".

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
    "untransformed CL + pairwise + FLOPs + params": ("cl_fcm", "cl", "pairwise", "pairwise_fcm", "flops_baseline",
                                                     "params_baseline"),
    "T members + FLOPs": ("cl_fcm_t", "cl_t", "flops_baseline"),
    "CL+FCM + pairwise+FCM + FLOPs": ("cl_fcm", "pairwise_fcm", "flops_baseline"),
    "CL+FCM + pairwise+FCM + FLOPs + params": ("cl_fcm", "pairwise_fcm", "flops_baseline", "params_baseline"),
    "CL + pairwise + FLOPs + params": ("cl", "pairwise", "flops_baseline", "params_baseline"),
    "pairwise + FLOPs + params": ("pairwise", "flops_baseline", "params_baseline"),
    "pairwise + pairwise+FCM + FLOPs + params": ("pairwise", "pairwise_fcm", "flops_baseline", "params_baseline"),
    "CL + FLOPs + params": ("cl", "flops_baseline", "params_baseline"),
    "pairwise + FLOPs": ("pairwise", "flops_baseline"),
    "FLOPs + params": ("flops_baseline", "params_baseline"),
    "graph stats only": ("graph_stats",),
    "graph stats + FLOPs + params": ("graph_stats", "flops_baseline", "params_baseline"),
    "graph stats + pairwise": ("graph_stats", "pairwise"),
    "graph stats + CL": ("graph_stats", "cl"),
    "graph stats + CL + pairwise": ("graph_stats", "cl", "pairwise"),
    "graph stats + CL+FCM + pairwise+FCM": ("graph_stats", "cl_fcm", "pairwise_fcm"),
    "graph stats + pairwise + FLOPs + params": ("graph_stats", "pairwise", "flops_baseline", "params_baseline"),
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
            if any(c not in members for c in cols):
                continue
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
    nested = nested_selection(t)
    print("\nnested selection (set chosen on the other targets, scored on the held-out one):")
    print(nested.round(3).to_string(index=False))
    print(f"nested mean SRCC {nested['srcc'].mean():.3f}, NDCG@10 {nested['ndcg@10'].mean():.3f}")
    (Path(folder) / "ensemble_selection_nested.csv").write_text(nested.to_csv(index=False))


def nested_selection(t: pd.DataFrame) -> pd.DataFrame:
    """For each target: the candidate with the best mean SRCC over the *other* targets, and its
    scores on this target."""
    out = []
    targets = sorted(t["target"].unique())
    for target in targets:
        others = t[t["target"] != target].groupby("candidate")["srcc"].mean()
        chosen = others.idxmax()
        row = t[(t["target"] == target) & (t["candidate"] == chosen)].iloc[0]
        out.append({"target": target, "chosen": chosen, "srcc_on_others": others[chosen],
                    "srcc": row["srcc"], "ndcg@10": row["ndcg@10"]})
    return pd.DataFrame(out)

if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/lofo")
