"""Result tables of an evaluation run (pandas DataFrames -> CSV + Markdown).

Layout mirrors the paper: Table 1 (zero-cost proxies / FLOPs SRCC per dataset), Table 3
(in-family MAE / SRCC on the source's held-out rows), Table 4 (MAE), Table 5 (SRCC), Table 6
(NDCG@10) -- one row per (experiment, target, setting), one column per method, cells
``mean ± std`` over fine-tuning seeds -- plus the same layout for Kendall tau, precision@10 and
regret@1, the k sweep, and the side-by-side comparison with the paper's published numbers.

Everything here is a pure function of the metric rows, so the tables are identical whenever
the rows are (timings live in ``performance.csv`` only).
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.evaluate.protocols import METHODS, METRIC_COLUMNS

#: the paper's four zero-cost proxies first, then the other NASLib proxy columns
PROXY_ORDER = ("synflow", "jacov", "fisher", "snip", "grasp", "grad_norm", "l2_norm", "plain", "nwot", "epe_nas")
SETTING_ORDER = {"in-family": 0, "zero-shot": 1, "fine-tune": 2, "k-sweep": 3}
#: metric -> (table file stem, title, decimals)
METRIC_TABLES = {
    "mae": ("table4_mae", "Table 4 — MAE [% accuracy] (lower is better)", 3),
    "srcc": ("table5_srcc", "Table 5 — Spearman rank correlation (SRCC)", 4),
    "ndcg@10": ("table6_ndcg10", "Table 6 — NDCG@10", 4),
    "kendall_tau": ("table_kendall_tau", "Kendall τ (scipy tau-b)", 4),
    "precision@10": ("table_precision10", "Precision@10 (top-10 overlap)", 3),
    "regret@1": ("table_regret1", "Regret@1 [% accuracy] (true best − true accuracy of the predicted best)", 3),
}
#: paper family key -> our family name
PAPER_FAMILIES = {"nb101": "NB-101", "nb201": "NB-201", "nb301": "NB-301", "pn": "PN", "ofa_mbv3": "OFA-MBv3",
                  "ofa_resnet": "OFA-RN", "hiaml": "HiAML", "inception": "Inception", "two_path": "Two-Path"}


def paper_numbers() -> dict[str, Any]:
    """The published numbers (``paper_numbers.json``)."""
    text = resources.files("engine.evaluate").joinpath("paper_numbers.json").read_text()
    return json.loads(text)


# ---------------------------------------------------------------------------------------------
# formatting
# ---------------------------------------------------------------------------------------------

def fmt(mean: float, std: float | None = None, n: int = 1, decimals: int = 4) -> str:
    """``"0.8146"`` or ``"0.8146 ± 0.0114"`` (std shown when there are >= 2 values); ``"—"`` for nan."""
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "—"
    s = f"{mean:.{decimals}f}"
    if n >= 2 and std is not None and not math.isnan(std):
        s += f" ± {std:.{decimals}f}"
    return s


def to_markdown(df: pd.DataFrame, title: str | None = None, note: str | None = None) -> str:
    """A GitHub-flavoured Markdown table (no tabulate dependency)."""
    cols = [str(c) for c in df.columns]
    lines = []
    if title:
        lines += [f"### {title}", ""]
    if note:
        lines += [note, ""]
    if df.empty:
        return "\n".join(lines + ["(no rows)", ""])

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "—" if math.isnan(v) else f"{v:.4f}"
        return str(v).replace("|", "\\|").replace("\n", " ")

    lines.append("| " + " | ".join(cols) + " |")
    lines.append("|" + "|".join("---" for _ in cols) + "|")
    for row in df.itertuples(index=False):
        lines.append("| " + " | ".join(cell(v) for v in row) + " |")
    lines.append("")
    return "\n".join(lines)


def write_table(df: pd.DataFrame, folder: Path, stem: str, title: str, note: str | None = None) -> str:
    """``folder/stem.csv`` + ``folder/stem.md``; returns the Markdown."""
    folder.mkdir(parents=True, exist_ok=True)
    df.to_csv(folder / f"{stem}.csv", index=False, float_format="%.6f")
    md = to_markdown(df, title, note)
    (folder / f"{stem}.md").write_text(md)
    return md


# ---------------------------------------------------------------------------------------------
# aggregation
# ---------------------------------------------------------------------------------------------

def results_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """All metric rows, sorted deterministically."""
    cols = ["experiment", "protocol", "target", "family", "setting", "k", "seed", "n_eval", "method",
            *METRIC_COLUMNS]
    df = pd.DataFrame(rows, columns=cols)
    if df.empty:
        return df
    df["_s"] = df["setting"].map(SETTING_ORDER).fillna(9)
    df["_m"] = df["method"].map({m: i for i, m in enumerate(METHODS)}).fillna(99)
    df = df.sort_values(["experiment", "target", "_s", "k", "seed", "_m"], kind="mergesort")
    return df.drop(columns=["_s", "_m"]).reset_index(drop=True)


def summary_frame(results: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof 1, like the paper's ± over seeds; nan for one seed) and the number of
    seeds with a defined value of every metric per (experiment, target, setting, k, method)."""
    if results.empty:
        return results
    keys = ["experiment", "protocol", "target", "family", "setting", "k", "method"]
    g = results.groupby(keys, sort=False, dropna=False)
    metrics = list(METRIC_COLUMNS)
    mean = g[metrics].mean().add_suffix("_mean")
    std = g[metrics].std(ddof=1).add_suffix("_std")
    count = g[metrics].count().add_suffix("_n")
    out = pd.concat([mean, std, count], axis=1)
    out["n_seeds"] = g.size()
    out["n_eval"] = g["n_eval"].mean()
    return out.reset_index()


def _cell(r: pd.Series, metric: str, decimals: int) -> str:
    """``mean ± std`` of a summary row, flagging seeds where the metric was undefined."""
    n, defined = int(r["n_seeds"]), int(r.get(f"{metric}_n", r["n_seeds"]))
    s = fmt(r[f"{metric}_mean"], r[f"{metric}_std"], defined, decimals)
    if 0 < defined < n:
        s += f" ({defined}/{n} seeds defined)"
    return s


def metric_table(summary: pd.DataFrame, metric: str, settings: tuple[str, ...] = ("zero-shot", "fine-tune"),
                 methods: tuple[str, ...] | None = None, decimals: int = 4) -> pd.DataFrame:
    """Rows (experiment, target, setting), columns methods, cells ``mean ± std``."""
    if summary.empty:
        return pd.DataFrame()
    sub = summary[summary["setting"].isin(settings)]
    methods = methods or tuple(m for m in METHODS if m in set(sub["method"]))
    records = []
    for (exp, target, setting, k), grp in sub.groupby(["experiment", "target", "setting", "k"], sort=False):
        rec = {"experiment": exp, "target": target, "setting": setting if setting != "fine-tune" else f"fine-tune k={k}"}
        by_m = {r["method"]: r for _, r in grp.iterrows()}
        for m in methods:
            r = by_m.get(m)
            rec[m] = "—" if r is None else _cell(r, metric, decimals)
        records.append(rec)
    return pd.DataFrame(records)


def table3(summary: pd.DataFrame) -> pd.DataFrame:
    """In-family accuracy on each source's held-out rows: one row per (experiment, source, method)."""
    if summary.empty:
        return pd.DataFrame()
    sub = summary[summary["setting"] == "in-family"]
    records = []
    for _, r in sub.iterrows():
        records.append({"experiment": r["experiment"], "source": r["target"], "method": r["method"],
                        "n_test": int(r["n_eval"]),
                        "MAE [%]": fmt(r["mae_mean"], decimals=3), "SRCC": fmt(r["srcc_mean"]),
                        "Kendall τ": fmt(r["kendall_tau_mean"]), "NDCG@10": fmt(r["ndcg@10_mean"])})
    return pd.DataFrame(records)


def k_sweep_long(results: pd.DataFrame, experiment: str, targets: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Mean / std / defined-count per (target, method, k), pooling the fine-tune and k-sweep rows
    of the same k (k = 0: zero-shot).  ``targets``: the swept targets (default all)."""
    sub = results[(results["experiment"] == experiment)
                  & results["setting"].isin(("zero-shot", "fine-tune", "k-sweep"))]
    if targets:
        sub = sub[sub["target"].isin(targets)]
    if sub.empty:
        return pd.DataFrame()
    g = sub.groupby(["target", "method", "k"], sort=True)
    metrics = list(METRIC_COLUMNS)
    out = pd.concat([g[metrics].mean().add_suffix("_mean"), g[metrics].std(ddof=1).add_suffix("_std"),
                     g[metrics].count().add_suffix("_n")], axis=1)
    out["n_seeds"] = g.size()
    return out.reset_index()


def k_sweep_table(long: pd.DataFrame, metric: str = "srcc",
                  methods: tuple[str, ...] = ("GENNAPE", "CL+FCM+T", "CL+T", "CL+Pairwise", "k-GNN", "FLOPs")
                  ) -> pd.DataFrame:
    """Rows (target, method), columns k, cells ``mean ± std`` (from :func:`k_sweep_long`)."""
    if long.empty:
        return pd.DataFrame()
    ks = sorted(set(long["k"].astype(int)))
    records = []
    for target in dict.fromkeys(long["target"]):
        for m in methods:
            mg = long[(long["target"] == target) & (long["method"] == m)]
            if mg.empty:
                continue
            rec = {"target": target, "method": m}
            for k in ks:
                r = mg[mg["k"] == k]
                rec[f"k={k}"] = "—" if r.empty else _cell(r.iloc[0], metric, 4)
            records.append(rec)
    return pd.DataFrame(records)


def proxy_table(datasets: dict[str, Any]) -> pd.DataFrame:
    """Table 1: SRCC of each zero-cost proxy column (``zc_*``), FLOPs and params per dataset."""
    from engine.metrics import srcc

    records = []
    for name, ds in datasets.items():
        frame = ds.frame
        y = frame["label"].to_numpy(dtype=np.float64)
        rec: dict[str, Any] = {"dataset": name, "family": ds.family, "n": int(len(frame))}
        zc = [c[3:] for c in frame.columns if c.startswith("zc_")]
        for p in [p for p in PROXY_ORDER if p in zc] + sorted(p for p in zc if p not in PROXY_ORDER):
            v = frame[f"zc_{p}"].to_numpy(dtype=np.float64)
            ok = np.isfinite(v) & np.isfinite(y)
            rec[p] = srcc(y[ok], v[ok]) if ok.sum() >= 2 else float("nan")
        for col, label in (("flops", "FLOPs"), ("params", "params")):
            v = frame[col].to_numpy(dtype=np.float64)
            ok = np.isfinite(v) & np.isfinite(y)
            rec[label] = srcc(y[ok], v[ok]) if ok.sum() >= 2 else float("nan")
        records.append(rec)
    df = pd.DataFrame(records)
    front = ["dataset", "family", "n"] + [p for p in PROXY_ORDER if p in df.columns]
    rest = [c for c in df.columns if c not in front and c not in ("FLOPs", "params")]
    return df[front + rest + ["FLOPs", "params"]]


# ---------------------------------------------------------------------------------------------
# paper comparison
# ---------------------------------------------------------------------------------------------

def paper_comparison(summary: pd.DataFrame, proxies: pd.DataFrame | None, experiment: str | None,
                     target_family: dict[str, str], data_notes: dict[str, str]) -> pd.DataFrame:
    """Long table: paper table, family, method, setting, metric, paper value, ours, data note.

    ``experiment``: our experiment that follows the paper's protocol (NB-101 source);
    ``target_family``: our main (non-shift) target key -> paper family key."""
    paper = paper_numbers()
    recs: list[dict[str, Any]] = []

    def ours(target: str, setting: str, method: str, metric: str, k: int | None = None, dec: int = 4) -> str:
        if summary.empty or experiment is None:
            return "—"
        s = summary[(summary["experiment"] == experiment) & (summary["target"] == target)
                    & (summary["setting"] == setting) & (summary["method"] == method)]
        if k is not None:
            s = s[s["k"] == k]
        if s.empty:
            return "—"
        return _cell(s.iloc[0], metric, dec)

    fam_to_target = {v: k for k, v in target_family.items()}
    if experiment is None:
        fam_to_target = {}
    src = fam_to_target.get("nb101")
    # Table 3 (in-family NB-101)
    for method, vals in paper["table3"]["rows"].items():
        if method not in METHODS or src is None:
            continue
        for metric, dec in (("mae", 2), ("srcc", 3)):
            recs.append({"paper table": "Table 3", "family": "NB-101", "method": method, "setting": "in-family",
                         "metric": metric.upper(),
                         "paper": fmt(vals[metric], vals[f"{metric}_std"], 5, dec),
                         "ours": ours(src, "in-family", method, metric, dec=dec) if src else "—",
                         "data": data_notes.get("nb101", "")})
    # Table 4 (MAE; NB-101 in-family, others fine-tuned)
    for fam, row in paper["table4"]["rows"].items():
        tgt = fam_to_target.get(fam)
        if tgt is None:
            continue
        for method, v in row.items():
            setting = "in-family" if fam == "nb101" else "fine-tune"
            recs.append({"paper table": "Table 4", "family": PAPER_FAMILIES[fam], "method": method,
                         "setting": setting, "metric": "MAE", "paper": fmt(v, decimals=2),
                         "ours": ours(tgt, setting, method, "mae", dec=2), "data": data_notes.get(fam, "")})
    # Tables 5 / 6
    for tab, metric in (("table5", "srcc"), ("table6", "ndcg@10")):
        for fam, row in paper[tab]["rows"].items():
            tgt = fam_to_target.get(fam)
            if tgt is None:
                continue
            for method, v in row.items():
                for setting, pv in (("zero-shot", fmt(v["zero_shot"])), ("fine-tune", fmt(v["ft"], v["ft_std"], 5))):
                    recs.append({"paper table": "Table " + tab[-1], "family": PAPER_FAMILIES[fam], "method": method,
                                 "setting": setting, "metric": "SRCC" if metric == "srcc" else "NDCG@10",
                                 "paper": pv, "ours": ours(tgt, setting, method, metric),
                                 "data": data_notes.get(fam, "")})
    # Table 1
    if proxies is not None and not proxies.empty:
        for fam, row in paper["table1"]["rows"].items():
            match = proxies[(proxies["family"] == fam)]
            if match.empty:
                continue
            # prefer the CIFAR-10 dataset of a family (the paper's)
            if len(match) > 1:
                c10 = match[match["dataset"].str.contains("cifar10")]
                match = c10 if not c10.empty else match
            for proxy, v in row.items():
                col = "FLOPs" if proxy == "flops" else proxy
                val = "not available"
                if not match.empty and col in match.columns:
                    val = fmt(float(match.iloc[0][col]))
                recs.append({"paper table": "Table 1", "family": PAPER_FAMILIES[fam], "method": col,
                             "setting": "zero-shot", "metric": "SRCC", "paper": fmt(v, decimals=3), "ours": val,
                             "data": (f"{match.iloc[0]['dataset']} ({int(match.iloc[0]['n'])} archs)"
                                      if not match.empty else "no labelled data here")})
    df = pd.DataFrame(recs, columns=["paper table", "family", "method", "setting", "metric", "paper", "ours", "data"])
    order = {"Table 1": 1, "Table 3": 3, "Table 4": 4, "Table 5": 5, "Table 6": 6}
    df["_o"] = df["paper table"].map(order)
    df = df.sort_values(["_o"], kind="mergesort").drop(columns="_o").reset_index(drop=True)
    return df


if __name__ == "__main__":  # a module, not a command
    raise SystemExit("engine.evaluate.tables is a module; run `python -m engine evaluate` (see its --help)")
