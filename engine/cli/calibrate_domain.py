"""``python -m engine calibrate-domain``: give a checkpoint its ``novelty`` reference.

A checkpoint trained since :mod:`engine.model.domain` existed has one already.  For an older
one, this rebuilds the CGs it was trained on -- by default from its model card
(``source_datasets``, ``max_per_family`` and the training seed, exactly as ``pretrain`` sampled
them; the count must match the card's ``n_graphs``) -- embeds them with the checkpoint's own
encoder and stores them as the novelty bank (``domain.safetensors``) with the percentiles of
their leave-one-out nearest-neighbour distances.  Weights, centroids and every prediction column
stay as they were.

Example::

    python -m engine calibrate-domain --checkpoint assets/checkpoint
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli._args import positive_int

HELP = "store the training-domain reference (novelty) in a checkpoint trained before it existed"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", default=None, help="checkpoint folder (default: the shipped one)")
    parser.add_argument("--families", default=None,
                        help="comma-separated training datasets (default: the model card's source_datasets)")
    parser.add_argument("--max-per-family", type=positive_int, default=None,
                        help="subsample each dataset as pretrain did (default: the model card's max_per_family)")
    parser.add_argument("--data-dir", default=None, help="reference data folder (default: GENNAPE_DATA_DIR "
                                                         "or ../shared/data)")
    parser.add_argument("--output", default=None, help="folder to write (default: the checkpoint folder itself)")


def run(args: argparse.Namespace) -> int:
    from engine.model import default_checkpoint_dir
    from engine.model.predictor import GennapePredictor
    from engine.train.callbacks import TextProgress
    from engine.train.data import training_dataset

    ckpt = Path(args.checkpoint) if args.checkpoint else default_checkpoint_dir()
    pred = GennapePredictor.load(ckpt, domain=False)  # the reference is rebuilt: a missing / broken one is fine
    card = pred.model_card
    if args.families:
        names = [f.strip() for f in args.families.split(",") if f.strip()]
        max_per = args.max_per_family
    else:
        names = [n for n in card.get("source_datasets", []) if "/" not in n and "." not in n]
        if not names or len(names) != len(card.get("source_datasets", [])):
            raise ValueError(f"{ckpt / 'model_card.json'}: source_datasets {card.get('source_datasets')!r} are not "
                             "all dataset names; give --families")
        max_per = args.max_per_family if args.max_per_family is not None else card.get("max_per_family")
    ds = training_dataset(names, args.data_dir, max_per, pred.config.train.seed, TextProgress())
    expected = card.get("n_graphs")
    if not args.families and expected is not None and len(ds) != int(expected):
        raise ValueError(f"rebuilt {len(ds)} CGs from {names} (max {max_per} per dataset), but the model card says "
                         f"the checkpoint was trained on {expected}; give --families / --max-per-family")
    note = f"{len(ds)} CGs of {', '.join(names)}" + (f" (at most {max_per} per dataset)" if max_per else "")
    pred.calibrate_domain(ds.cgs, note=note)
    out = Path(args.output) if args.output else ckpt
    pred.save(out)
    d = pred.domain
    print(f"wrote {out}: novelty reference from {note}; distance to the nearest other training CG: median "
          f"{d.percentiles_[50]:.3f}, 99th percentile {d.threshold:.3f} (= novelty 1)", file=sys.stderr)
    return 0
