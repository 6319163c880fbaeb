"""``python -m engine search``: predictor-guided architecture search from a start architecture.

Examples::

    python -m engine search --family nb201 --start '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|' --budget 100 --output runs/s1
    python -m engine search --start my_net.onnx --budget 200 --flops-target 0.6 --output runs/s2

``--start`` is a CG JSON file, an ONNX file, or a spec of ``--family``.  Families with a spec
mutator (nb201, nb101, hiaml) are searched in their spec space unless ``--mode cg``; everything
else is searched with CG mutations (each mutated CG is built and run before it is scored).

Output folder: ``history.csv`` (every candidate), ``pareto.csv`` (FLOPs / score front),
``best.json`` + ``best.onnx`` (the best candidate meeting the FLOPs target, not written when none
does; ``summary.json`` says why when the ONNX export fails), ``start.json``, ``summary.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from engine.cli._args import check_output, non_negative_float, non_negative_int, positive_float, positive_int

HELP = "search for an architecture with fewer FLOPs and a better predicted accuracy"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", required=True, help="CG JSON / ONNX file, or a spec of --family")
    parser.add_argument("--family", default=None, help="family of a spec --start (e.g. nb201, nb101, ofa_mbv3)")
    parser.add_argument("--budget", type=positive_int, default=100, help="candidates to evaluate (default 100)")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument("--flops-target", type=positive_float, default=0.7,
                        help="<= 1: fraction of the start's FLOPs; > 1: absolute FLOPs (default 0.7)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="search seed (runs are deterministic by seed)")
    parser.add_argument("--population", type=positive_int, default=16, help="aging population size")
    parser.add_argument("--penalty", type=non_negative_float, default=10.0, help="fitness penalty per relative FLOPs excess")
    parser.add_argument("--mode", choices=("auto", "spec", "cg"), default="auto",
                        help="spec mutations (families nb201/nb101/hiaml) or CG mutations")
    parser.add_argument("--operators", default=None,
                        help="comma-separated CG mutation operators (default: all; see engine.search.mutate)")
    parser.add_argument("--checkpoint", default=None, help="checkpoint folder (default: assets/checkpoint)")
    parser.add_argument("--score-column", default="cl_fcm_t",
                        help="predictor column used as the score (default cl_fcm_t: CL+FCM+T accuracy %%)")
    parser.add_argument("--scorer", choices=("gennape", "params-proxy"), default="gennape",
                        help="params-proxy: log10(params) baseline instead of the predictor (no checkpoint needed)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def load_scorer(args: argparse.Namespace):
    from engine.search.runner import params_proxy

    if args.scorer == "params-proxy":
        return params_proxy
    from engine.cli.predict import load_predictor

    return load_predictor(args.checkpoint)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from engine.search.diff import diff_cgs
    from engine.search.evolution import SearchConfig
    from engine.search.runner import export_candidate, make_space, run_search
    from engine.train.callbacks import TextProgress

    torch.set_num_threads(max(1, min(2, torch.get_num_threads())))
    if args.budget < 1:
        raise ValueError(f"--budget must be >= 1, got {args.budget}")
    ops = [o.strip() for o in args.operators.split(",") if o.strip()] if args.operators else None
    try:
        config = SearchConfig(budget=args.budget, population=args.population, flops_target=args.flops_target,
                              penalty=args.penalty, seed=args.seed)
    except ValueError as exc:  # name the option, not the config field
        field = str(exc).split(" ", 1)[0]
        raise ValueError(f"--{field.replace('_', '-')}{str(exc)[len(field):]}") from None
    check_output(args.output, folder=True)
    out = Path(args.output)
    space, item = make_space(args.start, args.family, args.mode, ops)  # input errors before loading a model
    predictor = load_scorer(args)
    result = run_search(item, predictor, config, None if args.quiet else TextProgress(), space=space,
                        column=args.score_column)
    out.mkdir(parents=True, exist_ok=True)
    result.frame().to_csv(out / "history.csv", index=False)
    front = {c.uid for c in result.pareto()}
    hist = result.frame()
    hist[hist["uid"].isin(front)].to_csv(out / "pareto.csv", index=False)
    best = result.best()
    result.start.cg.to_json(out / "start.json", indent=1)
    # best.json / best.onnx only for a candidate that meets the target (not a copy of the start)
    files = export_candidate(best.cg, out, "best") if best is not result.start else {}
    summary = result.summary()
    summary["files"] = files
    summary["start"]["arch"] = space.describe(result.start.item)
    summary["best"]["arch"] = space.describe(best.item)
    summary["best"]["met_target"] = bool(best is not result.start)
    summary["best"]["lineage"] = [c.mutation for c in result.lineage(best.uid)][1:]
    summary["diff_start_to_best"] = diff_cgs(result.start.cg, best.cg).counts()
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=lambda o: o.item()
                                                 if isinstance(o, np.generic) else str(o)))
    drop = 1 - best.flops / result.start.flops if result.start.flops else 0.0
    msg = (f"best: score {best.score:.4g} (start {result.start.score:.4g}), {best.flops / 1e6:.1f} MFLOPs "
           f"({drop:.1%} fewer than the start); wrote {out}")
    if best is result.start:
        msg = f"no candidate met the FLOPs target {result.flops_target / 1e6:.1f} MFLOPs; wrote {out}"
    if "onnx_error" in files:
        msg += f"; ONNX export failed: {files['onnx_error']}"
    if result.stopped:
        msg += f"; {result.stopped}"
    print(msg, file=sys.stderr)
    return 0
