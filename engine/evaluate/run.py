"""Run a whole evaluation and write its folder.

``run_evaluation(config)`` -> ``runs/<name>/``::

    config.json            the exact config file given (or the dict), as read
    config.resolved.json   every setting after defaults, plus the resolved GennapeConfig
    code_version.txt       git commit hash and dirty flag (+ dirty paths)
    tables/*.csv, *.md     results (long), summary, Table 1, 3, 4, 5, 6, Kendall τ, precision@10,
                           regret@1, k sweep, paper comparison (deterministic given the config)
    plots/*.png, *.html    k sweep, transfer bars, score-vs-accuracy scatter
    performance.csv        CG build / prediction throughput, fine-tune / pretraining time, peak RSS
    report.md              all tables, the paper comparison, data differences, performance

Reproducibility: fixed torch thread count, ``torch.use_deterministic_algorithms`` (warn-only),
every random choice seeded from the config, deterministic sort orders; wall-clock values go to
``performance.csv`` / the report's performance section only.
"""

from __future__ import annotations

import json
import platform
import resource
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from engine.evaluate import plots as P
from engine.evaluate import tables as T
from engine.evaluate.config import EvalConfig
from engine.evaluate.data import DataStore, time_cg_builds
from engine.evaluate.protocols import ExperimentResult, run_experiment
from engine.train.callbacks import Callback, notify

#: sub-paths of a run folder this module owns (cleared before a run writes)
OUTPUTS = ("tables", "plots", "config.json", "config.resolved.json", "code_version.txt", "performance.csv",
           "report.md")


@dataclass
class RunResult:
    folder: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    performance: pd.DataFrame
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    experiments: list[ExperimentResult] = field(default_factory=list)


def code_version(root: Path | None = None) -> dict[str, Any]:
    """``{"commit", "dirty", "dirty_paths"}`` from git (``"unknown"`` without git)."""
    from engine.paths import REPO_ROOT

    root = root or REPO_ROOT
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                                timeout=20, check=True).stdout.strip()
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=normal"], cwd=root,
                                capture_output=True, text=True, timeout=20, check=True).stdout
        paths = [ln[3:] for ln in status.splitlines() if ln.strip()]
        return {"commit": commit, "dirty": bool(paths), "dirty_paths": paths}
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None, "dirty_paths": []}


def _peak_rss_mb() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / 1024.0 if sys.platform != "darwin" else ru / 2 ** 20


def _loadavg() -> str:
    try:
        import os

        return " / ".join(f"{v:.1f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def check_data(cfg: EvalConfig) -> None:
    """Raise ``FileNotFoundError`` naming the datasets that need a missing reference folder."""
    from engine.paths import data_dir

    needs = cfg.needs_shared_data()
    table1 = list(cfg.table1.datasets) if cfg.table1 else []
    root = Path(cfg.data_dir) if cfg.data_dir else data_dir()
    if (needs or table1) and not root.exists():
        what = ", ".join(needs + [f"table1:{d}" for d in table1])
        raise FileNotFoundError(f"reference data folder {root} is absent; needed for {what} "
                                "(set GENNAPE_DATA_DIR or config.data_dir, or use a config without them)")


def run_evaluation(cfg: EvalConfig, out_dir: str | Path | None = None, callback: Callback | None = None,
                   only: list[str] | None = None, config_source: str | None = None,
                   config_file: str | None = None, version: dict[str, Any] | None = None) -> RunResult:
    """Run every experiment of ``cfg`` (or only those named / of the protocols in ``only``) and
    write the run folder (default ``runs/<cfg.name>``).  ``config_source``: the config file text
    to store verbatim in ``config.json``; ``config_file``: its path (recorded for the README)."""
    from engine.paths import REPO_ROOT

    folder = Path(out_dir) if out_dir else REPO_ROOT / "runs" / cfg.name
    experiments = cfg.all_experiments()
    if only:
        unknown = [o for o in only if o not in {e.name for e in experiments} | {e.protocol for e in experiments}
                   | {"table1"}]
        if unknown:
            raise ValueError(f"--only {unknown[0]!r}: expected experiment names "
                             f"{[e.name for e in experiments]}, protocols or 'table1'")
        experiments = [e for e in experiments if e.name in only or e.protocol in only]
    check_data(cfg)
    t_run = time.perf_counter()
    version = code_version()  # the code that runs: taken before the (long) run, not after
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"output folder {folder}: cannot create it ({exc.strerror or exc}); "
                         "give a folder path (--output)") from None

    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        store = DataStore(cfg)
        exp_results: list[ExperimentResult] = []
        for i, exp in enumerate(experiments):
            notify(callback, "experiments", i, len(experiments), {"experiment": exp.name})
            sweep = cfg.k_sweep is not None and cfg.k_sweep.experiment == exp.name
            exp_results.append(run_experiment(cfg, exp, store, callback, sweep=sweep))
        notify(callback, "experiments", len(experiments), len(experiments), {})

        proxies = None
        proxy_sets: dict[str, Any] = {}
        if cfg.table1 is not None and (not only or "table1" in only or experiments):
            from engine.data import load

            for name in cfg.table1.datasets:
                ds = load(name, Path(cfg.data_dir) if cfg.data_dir else None).labelled()
                _ = ds.cgs
                proxy_sets[name] = ds
            proxies = T.proxy_table(proxy_sets)

        perf = _performance(cfg, store, exp_results, t_run)
    finally:
        torch.set_num_threads(old_threads)
        torch.use_deterministic_algorithms(old_det)

    # the previous run's outputs are replaced only now: a run that fails (missing data, Ctrl-C) keeps them
    for name in OUTPUTS:
        p = folder / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    result = _write(cfg, folder, exp_results, proxies, perf, store, config_source, only, config_file, version)
    return result


# ---------------------------------------------------------------------------------------------
# performance
# ---------------------------------------------------------------------------------------------

def _performance(cfg: EvalConfig, store: DataStore, exps: list[ExperimentResult], t_run: float) -> pd.DataFrame:
    recs: list[dict[str, Any]] = []

    def add(metric: str, value: float, unit: str, detail: str = "") -> None:
        recs.append({"metric": metric, "value": float(value), "unit": unit, "detail": detail})

    # CG build throughput: specs -> CG directly (no cache), a fixed sample per family
    n_build = cfg.perf.cg_build_sample
    seen = set()
    for _key, ld in sorted(store.loaded().items()):
        fam = ld.family
        if n_build <= 0 or fam in seen or fam == "custom":
            continue
        seen.add(fam)
        specs = [s for s in ld.dataset.specs[:n_build] if s is not None]
        if not specs:
            continue
        n, sec = time_cg_builds(fam, specs, ld.dataset.cg_options)
        add(f"CG build throughput ({fam})", n / max(sec, 1e-9), "CGs/s", f"{n} CGs from specs, no cache")
    for key, ld in sorted(store.loaded().items()):
        add(f"dataset load ({key})", ld.seconds, "s", f"{len(ld)} labelled rows incl. CGs (cache when warm)")
    for e in exps:
        t = e.timings
        st = t.get("fit_stages", {})
        name = e.experiment.name
        add(f"experiment wall time ({name})", t.get("total_s", float("nan")), "s",
            f"CPU time {t.get('total_cpu_s', float('nan')):.1f} s (all threads)")
        add(f"pretraining: fit total ({name})", t.get("fit_s", float("nan")), "s",
            f"{t.get('fit_graphs', 0)} CGs ({t.get('fit_labelled', 0)} labelled, {t.get('fit_unlabelled', 0)} "
            f"unlabelled); CPU time {t.get('fit_cpu_s', float('nan')):.1f} s")
        for stage in ("pretrain_s", "fcm_s", "heads_s", "pairwise_s", "kgnn_s"):
            if stage in st:
                add(f"pretraining: {stage[:-2]} ({name})", st[stage], "s")
        if t.get("predict_graphs"):
            add(f"prediction throughput ({name})", t["predict_graphs"] / max(t["predict_s"], 1e-9), "CGs/s",
                f"{t['predict_graphs']} CGs: encoder + every member + ensemble")
        if t.get("ft_predict_graphs"):
            add(f"fine-tuned evaluation throughput ({name})",
                t["ft_predict_graphs"] / max(t["ft_predict_s"], 1e-9), "CGs/s",
                f"{t['ft_predict_graphs']} CGs: heads + k-GNN, encoder embeddings reused")
        ft = t.get("finetune_s", [])
        if ft:
            add(f"fine-tune time ({name})", float(np.mean(ft)), "s per fine-tune",
                f"mean of {len(ft)}; max {max(ft):.2f} s")
    add("total wall time", time.perf_counter() - t_run, "s",
        f"CPU time {time.process_time():.1f} s (process, all threads); load average at the end "
        f"{_loadavg()}")
    add("peak RSS", _peak_rss_mb(), "MB", "resource.getrusage(RUSAGE_SELF).ru_maxrss")
    return pd.DataFrame(recs)


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------

def _data_notes(store: DataStore) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """Per paper family a note on how our data differs, and a data table."""
    paper_sizes = {"nb101": "50k (49k >= 80%)", "nb201": "4,096 (no 'none' op)", "nb301": "10k"}
    notes, rows = {}, []
    for key, ld in sorted(store.loaded().items()):
        ds = ld.dataset
        rows.append({"dataset": key, "loader": ld.config.load, "family": ld.family, "labelled rows": len(ld),
                     "label": ds.provenance.label(),
                     "paper": paper_sizes.get(ld.family, "—") if not ld.config.shift_of else "— (shift target)"})
        if ld.config.shift_of:
            continue
        n = len(ld)
        if ld.family == "nb101":
            notes["nb101"] = f"ours: {n} labelled NB-101 (NASLib sample) vs paper 50k"
        elif ld.family == "nb201":
            which = f"all {n:,}" if n == 15625 else f"{n:,} sampled"
            notes["nb201"] = (f"ours: {which} NB-201 cells incl. 'none' ({ld.config.load}) vs paper 4,096 "
                              "none-free cells")
        elif ld.family == "nb301":
            notes["nb301"] = f"ours: {n} NB-301 surrogate-labelled archs (NASLib) vs paper 10k"
    return notes, rows


def _write(cfg: EvalConfig, folder: Path, exps: list[ExperimentResult], proxies: pd.DataFrame | None,
           perf: pd.DataFrame, store: DataStore, config_source: str | None, only: list[str] | None,
           config_file: str | None = None, version: dict[str, Any] | None = None) -> RunResult:
    tdir, pdir = folder / "tables", folder / "plots"
    tdir.mkdir(parents=True, exist_ok=True)
    rows = [r for e in exps for r in e.rows]
    results = T.results_frame(rows)
    summary = T.summary_frame(results)
    tables: dict[str, pd.DataFrame] = {"results": results, "summary": summary}
    md: list[str] = []

    results.to_csv(tdir / "results.csv", index=False, float_format="%.6f")
    summary.to_csv(tdir / "summary.csv", index=False, float_format="%.6f")

    if proxies is not None:
        tables["table1_proxies"] = proxies
        md.append(T.write_table(proxies, tdir, "table1_proxies",
                                "Table 1 — zero-cost proxies, FLOPs and params: SRCC with accuracy",
                                "Proxy scores are the NASLib columns shipped with the data; FLOPs / params are "
                                "computed from our CGs. Compare: paper Table 1."))
    t3 = T.table3(summary)
    tables["table3_in_family"] = t3
    md.append(T.write_table(t3, tdir, "table3_in_family", "Table 3 — in-family accuracy on the source's held-out rows",
                            f"Held-out fraction {cfg.source_test_fraction:g} of each source (rows >= train.min_acc); "
                            "one trained model (the paper: mean of 5). Compare: paper Table 3 (NB-101)."))
    for metric, (stem, title, dec) in T.METRIC_TABLES.items():
        df = T.metric_table(summary, metric, decimals=dec)
        tables[stem] = df
        note = ("Zero-shot: all labelled target rows. Fine-tune: mean ± std over seeds "
                f"{list(cfg.finetune.seeds)}, k={cfg.finetune.k}, metrics on the remaining rows.")
        if metric == "mae":
            note += " FLOPs / params are scores, not accuracies: no MAE."
        md.append(T.write_table(df, tdir, stem, title, note))
    sweep_exp = cfg.k_sweep.experiment if cfg.k_sweep else None
    sweep_long = pd.DataFrame()
    if sweep_exp and not results.empty and (results["experiment"] == sweep_exp).any():
        exp = next(e.experiment for e in exps if e.experiment.name == sweep_exp)
        sweep_long = T.k_sweep_long(results, sweep_exp, cfg.k_sweep.targets or exp.targets)
        sweep_long.to_csv(tdir / "k_sweep_long.csv", index=False, float_format="%.6f")
        for metric in ("srcc", "ndcg@10"):
            ks = T.k_sweep_table(sweep_long, metric)
            stem = f"k_sweep_{metric.replace('@', '')}"
            tables[stem] = ks
            md.append(T.write_table(ks, tdir, stem, f"k sweep ({sweep_exp}) — {metric.upper()} vs k",
                                    f"k = 0 is zero-shot on all rows; k > 0: seeds {list(cfg.k_sweep.seeds)} "
                                    f"(plus the main fine-tune seeds at k = {cfg.finetune.k}); nested k-sets."))
    notes, data_rows = _data_notes(store)
    paper_exp = next((e.experiment.name for e in exps if e.experiment.protocol == "paper"), None)
    target_family = {}
    if paper_exp:
        exp = next(e.experiment for e in exps if e.experiment.name == paper_exp)
        for key in (*exp.source, *exp.targets):
            target_family[key] = store[key].family
    comp = T.paper_comparison(summary, proxies, paper_exp, target_family, notes)
    tables["paper_comparison"] = comp
    comp_note = ("Ours: experiment " + (f"`{paper_exp}` (NB-101 source, the paper's protocol)" if paper_exp else
                                        "— none in this run follows the paper's protocol (only Table 1 rows)")
                 + ". Paper values cite the paper's table (AAAI-23, Experimental Results). PN, OFA-MBv3, OFA-RN, "
                 "HiAML, Inception and Two-Path have no labelled data here, so their paper rows are omitted.")
    comp_md = T.write_table(comp, tdir, "paper_comparison", "Ours vs the paper's published numbers", comp_note)
    data_df = pd.DataFrame(data_rows)
    tables["data"] = data_df
    data_md = T.write_table(data_df, tdir, "data", "Labelled data used")

    plot_files: list[Path] = []
    if cfg.plots and not results.empty:
        pdir.mkdir(parents=True, exist_ok=True)
        if not sweep_long.empty:
            plot_files += P.k_sweep(sweep_long, pdir, "k_sweep",
                                    f"Sample efficiency ({sweep_exp}): metric vs k")
        plot_files += P.transfer_bars(summary, pdir)
        pts = {f"{e.experiment.name}: {k}": v for e in exps for k, v in e.scatter.items()
               if e.experiment.protocol == "paper"} or {f"{e.experiment.name}: {k}": v for e in exps[:1]
                                                         for k, v in e.scatter.items()}
        plot_files += P.scatter(pts, pdir, "scatter_score", "GENNAPE score vs true accuracy")

    perf.to_csv(folder / "performance.csv", index=False, float_format="%.4f")
    cv = version if version is not None else code_version()
    (folder / "code_version.txt").write_text(
        f"commit: {cv['commit']}\ndirty: {str(cv['dirty']).lower()}\n"
        + "".join(f"dirty path: {p}\n" for p in cv["dirty_paths"]))
    (folder / "config.json").write_text(config_source if config_source is not None
                                        else json.dumps(cfg.to_dict(), indent=2) + "\n")
    resolved = cfg.to_dict()
    resolved["gennape_config"] = cfg.model.build(cfg.seed, cfg.threads).to_dict()
    resolved["only"] = only
    resolved["config_file"] = config_file
    (folder / "config.resolved.json").write_text(json.dumps(resolved, indent=2, default=str) + "\n")

    report = _report(cfg, exps, md, comp_md, data_md, perf, cv, plot_files, folder, only)
    (folder / "report.md").write_text(report)
    return RunResult(folder, results, summary, perf, tables, exps)


def reductions(cfg: EvalConfig) -> list[str]:
    """Every place this config does less than (or differs from) the paper's protocol."""
    out = []
    for key, d in cfg.datasets.items():
        caps = []
        if d.max_rows is not None:
            caps.append(f"only a seeded sample of {d.max_rows} labelled rows is used at all")
        if d.max_train is not None:
            caps.append(f"as a source, training capped at {d.max_train:,} rows")
        if d.max_test is not None:
            caps.append(f"as a source, the in-family test set capped at {d.max_test:,} rows")
        if d.max_eval is not None:
            caps.append(f"as a target, evaluated on a seeded sample of {d.max_eval:,} rows")
        if d.unlabelled:
            caps.append(f"as a source, {d.unlabelled:,} sampled unlabelled CGs join the contrastive stage and FCM")
        if caps:
            out.append(f"`{key}` ({d.load}): " + "; ".join(caps) + ".")
    gc = cfg.model.build(cfg.seed, cfg.threads)
    base = type(cfg.model)(cfg.model.preset).build(cfg.seed, cfg.threads).to_dict()
    changed = {k: v for k, v in sorted(cfg.model.overrides.items())
               if base.get(k.partition(".")[0], {}).get(k.partition(".")[2]) != v}
    if changed:
        out.append(f"Model settings changed from the GennapeConfig `{cfg.model.preset}` preset: "
                   + ", ".join(f"`{k}` = {v}" for k, v in changed.items()) + ".")
    if cfg.model.preset != "default":
        out.append(f"Model preset `{cfg.model.preset}` (not the full-size default).")
    out.append("One model-training seed per experiment (the paper averages Table 3 over 5 trained models); "
               "fine-tuning results are over the fine-tune seeds.")
    out.append(f"Fine-tuning (GennapeConfig.finetune): heads {gc.finetune.head_epochs} epochs; k-GNN "
               f"{gc.finetune.kgnn_epochs} epochs at batch {gc.finetune.kgnn_batch_size} (authors: 100 epochs at "
               "batch 1).")
    if cfg.k_sweep and tuple(cfg.k_sweep.seeds) != tuple(cfg.finetune.seeds):
        out.append(f"k sweep uses seeds {list(cfg.k_sweep.seeds)} (main fine-tune: {list(cfg.finetune.seeds)}).")
    out.append(f"Source in-family test split: {cfg.source_test_fraction:g} of each source (paper: 10% of NB-101); "
               + (f"rows below train.min_acc = {gc.train.min_acc} are dropped from training and in-family testing."
                  if gc.train.min_acc is not None else "every labelled row is kept (train.min_acc unset)."))
    return out


def _report(cfg: EvalConfig, exps: list[ExperimentResult], md: list[str], comp_md: str, data_md: str,
            perf: pd.DataFrame, cv: dict[str, Any], plot_files: list[Path], folder: Path,
            only: list[str] | None) -> str:
    lines = [f"# GENNAPE evaluation — `{cfg.name}`", ""]
    if cfg.description:
        lines += [cfg.description, ""]
    lines += [f"Code: commit `{cv['commit']}`{' (dirty working tree)' if cv['dirty'] else ''}. "
              f"Config: `config.json` (resolved: `config.resolved.json`). Seed {cfg.seed}, "
              f"{cfg.threads} torch thread(s), Python {platform.python_version()}, torch {torch.__version__}.", ""]
    if only:
        lines += [f"**Partial run**: only {only}.", ""]
    lines += ["## Protocol", "",
              "- Source datasets are split (spec-grouped hash split); "
              f"{cfg.source_test_fraction:g} of each source is held out for the in-family table (Table 3).",
              "- Zero-shot: the source-trained model on **all** labelled rows of each target (paper).",
              f"- Fine-tune: k = {cfg.finetune.k} rows chosen by `split_k(n, k, seed)` for seeds "
              f"{list(cfg.finetune.seeds)}; one fine-tuned copy provides every learnt method, so all methods use "
              "the same k rows within a seed; metrics on the remaining rows; mean ± std (ddof 1) over seeds.",
              "- GENNAPE = the ensemble `score` (equal weights zero-shot, softmax(Kendall τ on the k rows) after "
              "fine-tuning); FLOPs / params = log10 of the CG's FLOPs / params (scores, no MAE).", ""]
    if cfg.k_sweep:
        lines += [f"- k sweep on `{cfg.k_sweep.experiment}`: k ∈ {list(cfg.k_sweep.ks)}, seeds "
                  f"{list(cfg.k_sweep.seeds)} (k-sets nested within a seed).", ""]
    lines += ["### Reductions (compute budget) and deviations from the paper", ""]
    lines += [f"- {r}" for r in reductions(cfg)] + [""]
    lines += ["### Experiments", ""]
    for e in exps:
        lines.append(f"- **{e.experiment.name}** ({e.experiment.protocol}): source {list(e.experiment.source)} → "
                     f"targets {cfg.targets_of(e.experiment)}")
        for n in e.notes:
            lines.append(f"  - {n}")
    lines += ["", "### Data", "", data_md, "## Results", ""] + md
    lines += ["## Comparison with the paper", "",
              "The paper trains on 50k NB-101 architectures and evaluates on 4,096 none-free NB-201 cells and 10k "
              "NB-301 archs; this run uses the labelled data available here (see the data table and the `data` "
              "column). Differences in numbers are expected from that alone.", "", comp_md]
    lines += ["## Performance (measured by this run; not part of the reproducible tables)", "",
              T.to_markdown(perf.assign(value=perf["value"].map(lambda v: f"{v:,.2f}")))]
    if plot_files:
        lines += ["## Plots", ""] + [f"- [{p.name}](plots/{p.name})" for p in plot_files] + [""]
    return "\n".join(lines)


if __name__ == "__main__":  # a module, not a command
    raise SystemExit("engine.evaluate.run is a module; run `python -m engine evaluate` (see its --help)")
