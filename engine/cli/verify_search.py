"""``python -m engine verify-search``: predictor-guided search vs random search on real labels.

Examples::

    python -m engine verify-search --space nb201 --seeds 5 --budget 100 --output runs/verify_nb201
    python -m engine verify-search --space nb101 --seeds 5 --budget 100 --output runs/verify_nb101

Starts from the best and the median labelled architecture; see :mod:`engine.search.verify`.
Writes ``runs.csv``, ``table.csv``, ``table.md`` and ``config.json``; prints the table.
"""

from __future__ import annotations

import argparse
import sys

from engine.cli._args import positive_float, positive_int

HELP = "verify the search on real NB-201 / NB-101 labels against random search (CSV + Markdown table)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--space", choices=("nb201", "nb101"), default="nb201", help="benchmark space")
    parser.add_argument("--seeds", type=positive_int, default=5, help="seeds per start (default 5)")
    parser.add_argument("--budget", type=positive_int, default=100, help="candidates per search / random search")
    parser.add_argument("--flops-target", type=positive_float, default=0.7, help="fraction of the start's FLOPs")
    parser.add_argument("--starts", default="best,median", help="comma-separated: best, median")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--dataset", default=None,
                        help="label source (default nb201_cifar10 embedded / nb101_naslib); e.g. nb201_test_cifar10")
    parser.add_argument("--data-dir", default=None, help="reference data folder (NB-101, NB-201 test labels)")
    parser.add_argument("--limit", type=positive_int, default=None, help="use a random subset of N pool architectures")
    parser.add_argument("--checkpoint", default=None, help="checkpoint folder (default: assets/checkpoint)")
    parser.add_argument("--score-column", default="cl_fcm_t", help="predictor column used as the score")
    parser.add_argument("--scorer", choices=("gennape", "params-proxy"), default="gennape",
                        help="params-proxy: log10(params) baseline instead of the predictor (no checkpoint needed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    import torch

    from engine.cli._args import check_output
    from engine.cli.search import load_scorer
    from engine.search.verify import VerifyConfig, verify_search
    from engine.train.callbacks import TextProgress

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    check_output(args.output, folder=True)
    starts = tuple(s.strip() for s in args.starts.split(",") if s.strip())
    config = VerifyConfig(space=args.space, seeds=args.seeds, budget=args.budget, flops_target=args.flops_target,
                          starts=starts, dataset=args.dataset, limit=args.limit)
    predictor = load_scorer(args)
    result = verify_search(predictor, config, callback=None if args.quiet else TextProgress(),
                           data_dir=args.data_dir, column=args.score_column)
    files = result.save(args.output)
    print(result.markdown())
    print(f"wrote {', '.join(files.values())}", file=sys.stderr)
    return 0
