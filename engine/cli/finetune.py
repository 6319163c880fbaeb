"""``python -m engine finetune``: fine-tune a checkpoint on a few labelled CGs of a target family
and write the fine-tuned copy (the input checkpoint is not modified).

Example::

    python -m engine finetune --checkpoint assets/checkpoint --labels hiaml50.csv --output /tmp/ft
"""

from __future__ import annotations

import argparse
import json
import sys

from engine.cli._args import check_output, non_negative_int, positive_int

HELP = "fine-tune a GENNAPE checkpoint on k labelled CGs (CSV/JSONL: family+spec or cg, label)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    parser.add_argument("--labels", required=True,
                        help="CSV / JSONL with family + spec (or cg) and a label column; or ONNX networks with "
                             "their labels: a folder or .zip of .onnx files and a labels CSV (file or id, label), "
                             "or that CSV itself beside its .onnx files")
    parser.add_argument("--k", type=positive_int, default=None, help="samples to use (default: config finetune.k = 50)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed for choosing the k samples and training")
    parser.add_argument("--output", required=True, help="folder for the fine-tuned checkpoint")
    parser.add_argument("--selection", choices=["auto", "paper", "cv"], default=None,
                        help="ensemble weights: 'paper' = softmax(Kendall tau) on the k samples; 'cv' = each "
                             "member keeps its fine-tuned or pre-trained version by out-of-fold tau, and the "
                             "base model is kept unless that ranks held-out folds better; 'auto' = cv when "
                             "most samples lie inside the checkpoint's training domain, else paper "
                             "(default: the checkpoint's finetune.selection)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.cli.predict import load_predictor
    from engine.studio import kept_base_message
    from engine.train.callbacks import TextProgress
    from engine.train.data import load_labels_file

    check_output(args.output, folder=True)
    pred = load_predictor(args.checkpoint)
    ds = load_labels_file(args.labels, labelled_only=True, warn=lambda m: print(f"warning: {m}", file=sys.stderr))
    if len(ds) < 2:
        raise ValueError(f"{args.labels}: needs at least 2 labelled rows, found {len(ds)}")
    # one family and one label set, as the app fine-tunes: accuracies of different benchmarks or
    # datasets are not on one scale, so their ranks would be mixed into one Kendall tau
    named: dict[str, list[str]] = {}  # column -> its distinct values
    for column, what in (("family", "families"), ("dataset", "datasets")):
        values = named[column] = sorted({str(v) for v in ds.frame[column].dropna() if str(v)}) \
            if column in ds.frame else []
        if len(values) > 1:
            raise ValueError(f"{args.labels}: labels of {len(values)} {what} ({', '.join(values[:4])}); fine-tune "
                             f"on one {column} at a time")
    if len(set(ds.labels.tolist())) < 2:
        print(f"warning: {args.labels}: all {len(ds)} labels are equal ({ds.labels[0]:g}): they carry no ranking "
              "information, so the members' weights will not tell them apart", file=sys.stderr)
    progress = None if args.quiet else TextProgress()
    ft = pred.finetune(ds.cgs, np.asarray(ds.labels, dtype=float), k=args.k, seed=args.seed, callback=progress,
                       selection=args.selection)
    card = dict(ft.model_card)
    card.setdefault("finetune", {})["labels_file"] = str(args.labels)
    card["finetune"]["families"] = ds.families
    if named["dataset"]:  # the label set, when the file names it
        card["finetune"]["label_datasets"] = named["dataset"]
    ft.model_card = card
    ft.save(args.output)
    info = card["finetune"]
    print(f"fine-tuned on {info['k']} CGs in {info['seconds']:.1f}s ({info['selection']} selection); "
          f"weights {json.dumps(info['weights'])}", file=sys.stderr)
    if info.get("kept_base_model"):
        print(kept_base_message(info), file=sys.stderr)
    elif info.get("kept_pretrained") is not None:
        print(f"kept pre-trained (fine-tuning did not rank held-out folds better): {info['kept_pretrained']}",
              file=sys.stderr)
    notes = ("selection_reason",) if info.get("kept_base_model") else ("selection_reason", "selection_note")
    for key in notes:  # (the kept-base message above already says what a selection note would)
        if info.get(key):
            print(info[key], file=sys.stderr)
    print(f"wrote {args.output}")
    return 0
