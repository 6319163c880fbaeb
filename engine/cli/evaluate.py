"""``python -m engine evaluate``: run the paper's evaluation protocol from a JSON config and write
``runs/<name>/`` (tables, plots, report, performance, exact config and code version).

Examples::

    python -m engine evaluate --config configs/evaluate_default.json
    python -m engine evaluate --config configs/evaluate_default.json --only paper
    python -m engine evaluate --config configs/evaluate_smoke.json --output /tmp/smoke
    python -m engine evaluate --readme-from runs/default      # refresh the README "Results" section
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

HELP = "run the paper's evaluation protocol (zero-shot, k-shot, LOFO, k sweep) from a JSON config"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default=None, help="evaluation config JSON (e.g. configs/evaluate_default.json)")
    parser.add_argument("--output", default=None, help="run folder (default runs/<config name>)")
    parser.add_argument("--only", default=None,
                        help="comma-separated experiment names or protocols to run (e.g. 'paper' or 'lofo'); "
                             "tables are written for those only")
    parser.add_argument("--data-dir", default=None, help="reference data folder (overrides config.data_dir)")
    parser.add_argument("--readme-from", default=None, metavar="RUN_DIR",
                        help="instead of running: write the Results section of README.md from a finished run")
    parser.add_argument("--readme", default=None, help="README file to update with --readme-from (default README.md)")
    parser.add_argument("--quiet", action="store_true", help="no progress output")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from engine.evaluate import load_config, run_evaluation

    if args.readme_from:
        from engine.evaluate.readme import update_readme
        from engine.paths import REPO_ROOT

        path = update_readme(Path(args.readme_from), Path(args.readme) if args.readme else REPO_ROOT / "README.md")
        print(f"updated the Results section of {path}")
        return 0
    if not args.config:
        raise ValueError("give --config FILE (or --readme-from RUN_DIR)")
    cfg = load_config(args.config)
    if args.data_dir:
        cfg = dataclasses.replace(cfg, data_dir=args.data_dir)
    only = [s.strip() for s in args.only.split(",") if s.strip()] if args.only else None
    progress = None if args.quiet else _Progress()
    t0 = time.perf_counter()
    result = run_evaluation(cfg, args.output, callback=progress, only=only,
                            config_source=Path(args.config).read_text(), config_file=args.config)
    print(f"wrote {result.folder} ({len(result.results)} metric rows, {time.perf_counter() - t0:.0f} s); "
          f"see {result.folder / 'report.md'}")
    return 0


class _Progress:
    """Stage lines on stderr for the long stages (fit, targets, experiments)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()

    def __call__(self, stage: str, step: int, total: int, metrics: dict | None = None) -> None:
        if stage in ("cgs", "spectra"):
            return
        extra = " ".join(f"{k}={v}" for k, v in (metrics or {}).items())
        print(f"[{time.perf_counter() - self.t0:7.1f}s] {stage} {step}/{total} {extra}", file=sys.stderr, flush=True)
