"""Set a checkpoint's zero-shot ensemble members from the LOFO selection and record the evidence.

    python scripts/set_ensemble.py assets/checkpoint runs/lofo graph_stats,flops_baseline,params_baseline \
        --anchor cl_fcm --rule "..." --note "..."

Reads ``lofo_*.csv``, ``ensemble_selection.csv`` and ``ensemble_selection_nested.csv`` written by
``scripts/lofo_select.py`` and ``scripts/select_ensemble.py`` in ``lofo_dir``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from engine.model.ensemble import equal_weights
from engine.model.predictor import GennapePredictor


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("lofo_dir")
    ap.add_argument("members")
    ap.add_argument("--anchor", default=None)
    ap.add_argument("--rule", required=True, help="how the members were chosen (recorded in the model card)")
    ap.add_argument("--note", default="", help="what the evidence shows, in words")
    args = ap.parse_args()
    pred = GennapePredictor.load(args.checkpoint)
    members = tuple(m.strip() for m in args.members.split(","))
    updates = {"ensemble.members": list(members)}
    if args.anchor:
        updates["ensemble.anchor"] = args.anchor
    pred.config = pred.config.override(updates)
    pred.weights = equal_weights(members)
    folder = Path(args.lofo_dir)
    lofo = pd.concat([pd.read_csv(p) for p in sorted(folder.glob("lofo_*.csv"))], ignore_index=True)
    sel = pd.read_csv(folder / "ensemble_selection.csv", header=[0, 1], index_col=0)
    nested = pd.read_csv(folder / "ensemble_selection_nested.csv")
    pred.model_card["members_in_score"] = list(members)
    pred.model_card["weights"] = dict(pred.weights)
    pred.model_card["ensemble_selection"] = {
        "rule": args.rule,
        "chosen": list(members),
        "lofo_member_metrics": lofo.round(4).to_dict(orient="records"),
        "candidate_sets": {name: {f"{metric} {target}": round(float(v), 4) for (metric, target), v in row.items()}
                           for name, row in sel.iterrows()},
        "nested_selection": nested.round(4).to_dict(orient="records"),
        "lofo_select_args": json.loads((folder / "config.json").read_text())["args"],
        "honest_note": args.note,
    }
    pred.save(args.checkpoint)
    print("members:", members, "anchor:", pred.config.ensemble.anchor)


if __name__ == "__main__":
    main()
