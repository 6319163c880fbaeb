"""Evaluation harness: the paper's transfer protocol on the labelled data available here.

>>> from engine.evaluate import load_config, run_evaluation
>>> result = run_evaluation(load_config("configs/evaluate_smoke.json"))
>>> result.folder                                     # runs/smoke: tables, plots, report.md

* :mod:`engine.evaluate.config`    -- JSON config -> frozen dataclasses (path-precise errors)
* :mod:`engine.evaluate.data`      -- datasets, source splits, unlabelled CGs
* :mod:`engine.evaluate.protocols` -- one experiment: fit, in-family, zero-shot, k-shot, k sweep
* :mod:`engine.evaluate.tables`    -- Tables 1 / 3 / 4 / 5 / 6 (+ tau, P@10, regret), paper comparison
* :mod:`engine.evaluate.plots`     -- PNG + self-contained HTML plots
* :mod:`engine.evaluate.run`       -- the whole run and its output folder
* :mod:`engine.evaluate.readme`    -- the README "Results" section from a run folder

CLI: ``python -m engine evaluate --config configs/evaluate_default.json`` (``make evaluate``).
"""

from engine.evaluate.config import ConfigError, EvalConfig, Experiment, load_config
from engine.evaluate.run import RunResult, code_version, run_evaluation

__all__ = ["ConfigError", "EvalConfig", "Experiment", "RunResult", "code_version", "load_config", "run_evaluation"]
