"""``python -m engine studio-assets``: build the app's default workspace file.

Scores the embedded NB-201 labels plus samples of every family with the shipped checkpoint,
projects the embeddings (PCA + t-SNE with a fixed seed) and writes ``assets/default_workspace.npz``
plus its JSON sidecar, which ``make run`` loads instantly.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from engine.cli._args import non_negative_int, positive_float, positive_int

HELP = "build assets/default_workspace.npz (+ .json) for the app's default view"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from engine.studio import default_asset_path

    parser.add_argument("--output", type=Path, default=default_asset_path(), help="output .npz path")
    parser.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (default: shipped)")
    parser.add_argument("--dataset", default="cifar10", help="embedded NB-201 label set (cifar10, cifar100, imagenet16-120; imagenet is accepted for the last)")
    parser.add_argument("--samples-per-family", type=non_negative_int, default=24, help="unlabelled samples of each family")
    parser.add_argument("--limit", type=positive_int, default=None, help="keep only this many labelled NB-201 rows")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed for samples and t-SNE")
    parser.add_argument("--perplexity", type=positive_float, default=30.0, help="t-SNE perplexity")
    parser.add_argument("--no-tsne", action="store_true", help="skip t-SNE (PCA only)")
    parser.add_argument("--threads", type=positive_int, default=2, help="torch CPU threads")


def load_predictor(checkpoint: Path | None):
    """The shipped predictor, or the one saved in ``checkpoint``."""
    import engine.model as model

    if checkpoint is None:
        return model.load_default()
    if not checkpoint.exists():
        raise FileNotFoundError(f"checkpoint {checkpoint} does not exist")
    loader = getattr(model, "load", None)
    if loader is None:
        loader = model.GennapePredictor.load
    return loader(checkpoint)


def run(args: argparse.Namespace) -> int:
    import torch

    from engine.data import load_default
    from engine.studio import build_default_workspace, save_workspace
    from engine.train.callbacks import TextProgress

    torch.set_num_threads(max(1, args.threads))
    if args.output.suffix != ".npz":
        raise ValueError(f"--output must end in .npz, got {args.output}")
    t0 = time.perf_counter()
    progress = TextProgress()
    predictor = load_predictor(args.checkpoint)
    dataset = load_default(args.dataset, callback=progress)
    ws = build_default_workspace(predictor, dataset=dataset, samples_per_family=args.samples_per_family,
                                 seed=args.seed, limit=args.limit, perplexity=args.perplexity,
                                 tsne=not args.no_tsne, callback=progress)
    npz, side = save_workspace(ws, args.output)
    size = (npz.stat().st_size + side.stat().st_size) / 1e6
    print(f"wrote {npz} and {side.name}: {len(ws):,} architectures, {ws.num_labelled:,} labelled, "
          f"{size:.2f} MB, {time.perf_counter() - t0:.0f} s")
    return 0
