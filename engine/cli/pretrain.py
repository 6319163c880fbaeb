"""``python -m engine pretrain``: train a GENNAPE checkpoint (contrastive encoder, FCM, heads,
pairwise scorers, k-GNN) on labelled families and write it to a folder.

Example::

    python -m engine pretrain --families nb201,nb101 --epochs 30 --output assets/checkpoint
    python -m engine pretrain --labels my_labels.csv --preset tiny --output /tmp/ckpt
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from engine.cli._args import check_output, non_negative_int, positive_int

HELP = "train a GENNAPE predictor checkpoint on labelled families (progress on stderr)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--families", default=None,
                        help="comma-separated training datasets: nb201, nb201_test, nb101, nb301 or any "
                             "reference dataset name (see `python -m engine datasets`)")
    parser.add_argument("--labels", default=None, help="a labelled CSV / JSONL file (family+spec or cg, label) "
                                                       "to train on instead of / besides --families")
    parser.add_argument("--data-dir", default=None, help="reference data folder (default: GENNAPE_DATA_DIR "
                                                         "or ../shared/data)")
    parser.add_argument("--max-per-family", type=positive_int, default=None, help="subsample each dataset to N rows")
    parser.add_argument("--epochs", type=positive_int, default=None, help="contrastive pre-training epochs (default: the preset's contrastive.epochs)")
    parser.add_argument("--kgnn-epochs", type=non_negative_int, default=None, help="k-GNN baseline epochs (authors: 40; default: the preset's kgnn.epochs)")
    parser.add_argument("--preset", choices=("default", "small", "tiny"), default="default",
                        help="config preset (small: minutes-scale sweeps, tiny: smoke tests)")
    parser.add_argument("--config", default=None, help="JSON file with a (partial) GennapeConfig")
    parser.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE",
                        help="config override, VALUE parsed as JSON (repeatable), e.g. --set encoder.hidden=32")
    parser.add_argument("--seed", type=non_negative_int, default=None, help="training seed (default: the preset's train.seed)")
    parser.add_argument("--threads", type=positive_int, default=None, help="torch threads (default: the preset's train.threads; none set: torch's own)")
    parser.add_argument("--output", required=True, help="checkpoint folder to write")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def build_config(args: argparse.Namespace):
    from engine.model.config import GennapeConfig

    cfg = GennapeConfig.preset(args.preset)
    if args.config:
        path = Path(args.config)
        if not path.exists():
            raise FileNotFoundError(f"{path}: config file not found")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not valid JSON ({exc})") from None
        base = cfg.to_dict()
        for section, values in data.items():
            if section not in base or not isinstance(values, dict):
                raise ValueError(f"{path}: unknown or malformed config section {section!r}")
            base[section].update(values)
        cfg = GennapeConfig.from_dict(base)
    updates = {}
    for item in args.set:
        key, sep, raw = item.partition("=")
        if not sep:
            raise ValueError(f"--set {item!r}: expected SECTION.FIELD=VALUE")
        try:
            updates[key.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            updates[key.strip()] = raw
    if args.epochs is not None:
        updates["contrastive.epochs"] = args.epochs
    if args.kgnn_epochs is not None:
        updates["kgnn.epochs"] = args.kgnn_epochs
    if args.seed is not None:
        updates["train.seed"] = args.seed
    if args.threads is not None:
        updates["train.threads"] = args.threads
    return cfg.override(updates) if updates else cfg


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.data import ArchDataset
    from engine.model.predictor import GennapePredictor
    from engine.train.callbacks import TextProgress
    from engine.train.data import load_labels_file, training_dataset

    if not args.families and not args.labels:
        raise ValueError("give --families and/or --labels")
    check_output(args.output, folder=True)
    cfg = build_config(args)
    progress = None if args.quiet else TextProgress()
    parts = []
    names = [f.strip() for f in (args.families or "").split(",") if f.strip()]
    if names:
        parts.append(training_dataset(names, args.data_dir, args.max_per_family, cfg.train.seed, progress))
    if args.labels:
        parts.append(load_labels_file(args.labels, progress, labelled_only=True,
                                      warn=lambda m: print(f"warning: {m}", file=sys.stderr)))
    ds = parts[0] if len(parts) == 1 else ArchDataset.concat(parts)
    if len(ds) == 0:
        raise ValueError("no labelled architectures to train on")
    print(f"training on {len(ds):,} labelled CGs from {', '.join(ds.families)}", file=sys.stderr)
    source = {
        "source_families": ds.families,
        "source_datasets": names + ([args.labels] if args.labels else []),
        "label_provenance": [p.to_dict() for p in ds.provenances.values()],
        "training_command": "python -m engine pretrain " + " ".join(shlex.quote(a) for a in sys.argv[2:])
        if len(sys.argv) > 2 else "python -m engine pretrain",
        "max_per_family": args.max_per_family,
    }
    groups = ds.frame["family"].astype(str).to_numpy()  # pairwise.within_groups: pairs within one family
    pred = GennapePredictor(cfg).fit(ds.cgs, np.asarray(ds.labels, dtype=float), callback=progress, source=source,
                                     groups=groups)
    pred.save(args.output)
    vm = pred.model_card.get("validation_metrics", {})
    summary = {k: round(v.get("srcc", float("nan")), 4) for k, v in vm.items()}
    print(f"wrote {args.output}; validation SRCC: {json.dumps(summary)}")
    return 0
