"""Give a checkpoint its in-domain ensemble and record the evidence in its model card.

Rule, fixed before the evidence below was computed: inside the training domain (novelty <= 1,
engine/model/domain.py) the zero-shot score uses equal weights over the ``--top`` learned
members with the highest in-family validation SRCC in the checkpoint's own model card; outside,
the zero-shot members chosen by leave-one-family-out stay.  The rule is adopted only if the
gated score still beats FLOPs and params (SRCC and NDCG@10) on every leave-one-family-out
target of ``lofo_dir`` (``scripts/lofo_select.py`` writes ``preds_<target>.csv`` with a
``novelty`` column).  Either way the evidence goes into the model card (``in_domain_gate``,
``adopted`` true or false); a rejected gate leaves the configuration as it was.

With ``--shift FILE`` (``python -m engine.evaluate.shift --output FILE``), only learned members
whose ranking of the same NB-201 cells agrees to at least 0.99 SRCC across the 16 / 32 / 224 px
renderings qualify, so the in-domain score keeps the shipped score's invariance to input size.

    python scripts/set_in_domain.py assets/checkpoint runs/lofoH --top 3 --shift runs/shift/shift.json
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from engine.metrics import ndcg_at_k, srcc
from engine.model.ensemble import EnsembleReference, equal_weights
from engine.model.predictor import GennapePredictor

LEARNED = ("cl_fcm_t", "cl_t", "cl_fcm", "cl", "pairwise", "pairwise_fcm", "kgnn")


def _ndcg(y, v) -> float:
    return ndcg_at_k(np.asarray(y, dtype=float), np.asarray(v, dtype=float), 10)


def gated_score(frame: pd.DataFrame, zero_shot: dict, inside_w: dict, anchor: str) -> np.ndarray:
    vals = {m: frame[m].to_numpy(dtype=float) for m in {**zero_shot, **inside_w}}
    inside = frame["novelty"].to_numpy(dtype=float) <= 1.0
    a = frame[anchor].to_numpy(dtype=float)
    ref = EnsembleReference.fit(vals, zero_shot, a, "rank", inside_w, inside)
    return ref.score(vals, zero_shot, a, inside_w, inside)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("checkpoint")
    ap.add_argument("lofo_dir")
    ap.add_argument("--top", type=int, default=3)
    ap.add_argument("--heldout", type=int, default=3000, help="held-out NB-201 cells for the in-family check")
    ap.add_argument("--shift", default=None, help="shift-check JSON: keep members with agreement >= 0.99")
    ap.add_argument("--dry-run", action="store_true")
    args = ap.parse_args()
    pred = GennapePredictor.load(args.checkpoint)
    if pred.domain is None:
        raise SystemExit("the checkpoint has no domain reference: run python -m engine calibrate-domain first")
    val = pred.model_card.get("validation_metrics", {})
    candidates = [m for m in LEARNED if m in val and m in pred._available(LEARNED)]
    invariant = None
    if args.shift:
        import json

        rows = {r["method"]: r for r in json.loads(Path(args.shift).read_text())["rows"]}
        invariant = {m: min(v for k, v in rows[m].items() if k.startswith("agree")) for m in candidates if m in rows}
        print("shift agreement (min over renderings):", {m: round(v, 3) for m, v in invariant.items()})
        candidates = [m for m in candidates if invariant.get(m, 0.0) >= 0.99]
    ranked = sorted(candidates, key=lambda m: -val[m]["srcc"])
    chosen = ranked[:args.top]
    print("in-family validation SRCC:", {m: round(val[m]["srcc"], 3) for m in ranked}, "-> chosen", chosen)
    zero_shot, inside_w, anchor = dict(pred.weights), equal_weights(chosen), pred.config.ensemble.anchor

    rows = []
    for path in sorted(Path(args.lofo_dir).glob("preds_*.csv")):
        target = path.stem.removeprefix("preds_")
        f = pd.read_csv(path)
        lab = f["label"].to_numpy(dtype=float)
        g = gated_score(f, zero_shot, inside_w, anchor)
        row = {"target": target, "share inside": float(np.mean(f["novelty"].to_numpy(dtype=float) <= 1))}
        for name, v in (("gated", g), ("zero-shot", f["score"].to_numpy(dtype=float)),
                        ("FLOPs", f["flops_baseline"].to_numpy(dtype=float)),
                        ("params", f["params_baseline"].to_numpy(dtype=float))):
            row[f"SRCC {name}"] = float(srcc(lab, v))
            row[f"NDCG@10 {name}"] = float(ndcg_at_k(lab, v, 10))
        rows.append(row)
    lofo = pd.DataFrame(rows)
    print(lofo.round(3).to_string(index=False))
    ok = bool(len(lofo)) and all(
        (lofo[f"{k} gated"] > lofo[f"{k} {b}"]).all() for k in ("SRCC", "NDCG@10") for b in ("FLOPs", "params"))

    # in family: NB-201 cells the checkpoint did not train on, scored with and without the gate
    from engine.evaluate.domain import heldout_nb201, nb201_labels
    from engine.families import get

    specs, note = heldout_nb201(pred, args.heldout, seed=2)
    lab = nb201_labels(specs)
    cgs = [get("nb201").to_cg(s) for s in specs]
    plain = pred.copy()
    plain.config = plain.config.override({"ensemble.in_domain_members": []})
    before = plain.predict(cgs)
    gated = pred.copy()
    gated.config = gated.config.override({"ensemble.in_domain_members": chosen})
    after = gated.predict(cgs)
    infam = {"cells": note, "n": len(specs), "rows inside": after.attrs.get("in_domain_rows"),
             "SRCC gated": float(srcc(lab, after["score"])), "SRCC zero-shot": float(srcc(lab, before["score"])),
             "NDCG@10 gated": float(ndcg_at_k(lab, after["score"].to_numpy(), 10)),
             "NDCG@10 zero-shot": float(ndcg_at_k(lab, before["score"].to_numpy(), 10)),
             "SRCC FLOPs": float(srcc(lab, before["flops_baseline"])),
             "SRCC params": float(srcc(lab, before["params_baseline"])),
             "NDCG@10 FLOPs": float(ndcg_at_k(lab, before["flops_baseline"].to_numpy(), 10)),
             "NDCG@10 params": float(ndcg_at_k(lab, before["params_baseline"].to_numpy(), 10))}
    # the same cells' CIFAR-100 and ImageNet16-120 labels (the checkpoint trained on CIFAR-10 ones)
    for dataset in ("cifar100", "imagenet"):
        other = nb201_labels(specs, dataset)
        infam[f"labels {dataset}"] = {
            f"{metric} {name}": float(fn(other, v)) for metric, fn in (("SRCC", srcc), ("NDCG@10", _ndcg))
            for name, v in (("gated", after["score"]), ("zero-shot", before["score"]),
                            ("FLOPs", before["flops_baseline"]), ("params", before["params_baseline"]))}
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in infam.items()})
    print("criterion (gated beats FLOPs and params on SRCC and NDCG@10 on every LOFO target):", ok)
    evidence = {
        "rule": f"inside the training domain (novelty <= 1): equal weights over the {args.top} learned members "
                "with the highest in-family validation SRCC"
                + (" among those whose ranking is invariant to input size (shift-check agreement >= 0.99)"
                   if invariant is not None else "")
                + "; outside: the leave-one-family-out members. Adopted only if the gated score still beats "
                "FLOPs and params on every LOFO target.",
        "adopted": ok, "in_domain_members": chosen, "validation_srcc": {m: round(val[m]["srcc"], 4) for m in ranked},
        "shift_agreement": None if invariant is None else {m: round(v, 4) for m, v in invariant.items()},
        "lofo": lofo.round(4).to_dict(orient="records"), "lofo_dir": str(args.lofo_dir),
        "in_family_heldout_nb201": {k: round(v, 4) if isinstance(v, float) else
                                    ({a: round(b, 4) for a, b in v.items()} if isinstance(v, dict) else v)
                                    for k, v in infam.items()},
    }
    if args.dry_run:
        print("dry run: nothing written")
        return
    out = gated if ok else plain  # a rejected gate is recorded, not applied
    out.model_card["in_domain_gate"] = evidence
    out.save(args.checkpoint)
    print("wrote", args.checkpoint, "with in_domain_members", chosen if ok else "unchanged (rejected)")


if __name__ == "__main__":
    main()
