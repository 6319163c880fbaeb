"""Plots of an evaluation run: static PNG (matplotlib, Agg) and interactive HTML (plotly, the
plotly.js bundle inlined so the files open offline).

* ``k_sweep``: SRCC / NDCG@10 against k per target (sample-efficiency curve), mean ± std band;
* ``transfer``: SRCC zero-shot vs fine-tuned per experiment / target / method (bars);
* ``scatter``: GENNAPE score against true accuracy per target (zero-shot and fine-tuned, seed 0).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SWEEP_METHODS = ("GENNAPE", "CL+FCM+T", "CL+T", "k-GNN", "CL+Pairwise", "FLOPs")
BAR_METHODS = ("GENNAPE", "CL+FCM+T", "CL+T", "CL+FCM", "CL", "CL+Pairwise", "CL+Pairwise+FCM", "k-GNN", "FLOPs",
               "params")


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save_png(fig, path: Path) -> None:
    fig.savefig(path, dpi=110, bbox_inches="tight", metadata={"Software": None})
    _plt().close(fig)


def _save_html(fig, path: Path) -> None:
    fig.write_html(str(path), include_plotlyjs=True, full_html=True, auto_open=False)


def k_sweep(long: pd.DataFrame, folder: Path, stem: str, title: str) -> list[Path]:
    """SRCC and NDCG@10 vs k, one panel per (metric, target)."""
    if long.empty:
        return []
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    plt = _plt()
    targets = list(dict.fromkeys(long["target"]))
    metrics = (("srcc", "SRCC"), ("ndcg@10", "NDCG@10"))
    fig, axes = plt.subplots(len(metrics), len(targets), figsize=(4.6 * len(targets), 3.8 * len(metrics)),
                             squeeze=False, layout="constrained")
    pfig = make_subplots(rows=len(metrics), cols=len(targets),
                         subplot_titles=[f"{t} — {lab}" for _, lab in metrics for t in targets])
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#7f7f7f"]
    for r, (metric, label) in enumerate(metrics):
        for c, target in enumerate(targets):
            ax = axes[r][c]
            for j, m in enumerate(SWEEP_METHODS):
                d = long[(long["target"] == target) & (long["method"] == m)].sort_values("k")
                if d.empty:
                    continue
                k = d["k"].to_numpy()
                mu = d[f"{metric}_mean"].to_numpy()
                sd = np.nan_to_num(d[f"{metric}_std"].to_numpy())
                ax.plot(k, mu, marker="o", label=m, color=colours[j % len(colours)])
                ax.fill_between(k, mu - sd, mu + sd, alpha=0.15, color=colours[j % len(colours)])
                pfig.add_trace(go.Scatter(x=k, y=mu, mode="lines+markers", name=m, legendgroup=m,
                                          showlegend=(r == 0 and c == 0), line={"color": colours[j % len(colours)]},
                                          error_y={"type": "data", "array": sd, "visible": True}),
                               row=r + 1, col=c + 1)
            ax.set_title(f"{target} — {label}", fontsize=10)
            ax.set_xlabel("k (fine-tuning samples)")
            ax.set_ylabel(label)
            ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title)
    pfig.update_layout(title=title, height=360 * len(metrics), width=max(700, 420 * len(targets)))
    png, html = folder / f"{stem}.png", folder / f"{stem}.html"
    _save_png(fig, png)
    _save_html(pfig, html)
    return [png, html]


def transfer_bars(summary: pd.DataFrame, folder: Path, stem: str = "transfer_srcc") -> list[Path]:
    """SRCC zero-shot vs fine-tuned per (experiment, target), bars per method."""
    sub = summary[summary["setting"].isin(("zero-shot", "fine-tune"))] if not summary.empty else summary
    if sub.empty:
        return []
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    plt = _plt()
    groups = list(dict.fromkeys(zip(sub["experiment"], sub["target"])))
    methods = [m for m in BAR_METHODS if m in set(sub["method"])]
    fig, axes = plt.subplots(len(groups), 1, figsize=(max(8, 0.9 * len(methods) + 2), 2.8 * len(groups)),
                             squeeze=False)
    pfig = make_subplots(rows=len(groups), cols=1, subplot_titles=[f"{e}: {t}" for e, t in groups])
    x = np.arange(len(methods))
    for i, (exp, target) in enumerate(groups):
        ax = axes[i][0]
        g = sub[(sub["experiment"] == exp) & (sub["target"] == target)]
        for j, (setting, colour) in enumerate((("zero-shot", "#9ecae1"), ("fine-tune", "#3182bd"))):
            d = g[g["setting"] == setting].set_index("method")
            mu = np.array([d["srcc_mean"].get(m, np.nan) for m in methods], dtype=float)
            sd = np.nan_to_num(np.array([d["srcc_std"].get(m, np.nan) for m in methods], dtype=float))
            ax.bar(x + (j - 0.5) * 0.4, mu, 0.4, yerr=sd, label=setting, color=colour, capsize=2)
            pfig.add_trace(go.Bar(x=methods, y=mu, name=setting, marker_color=colour, legendgroup=setting,
                                  showlegend=(i == 0), error_y={"type": "data", "array": sd}), row=i + 1, col=1)
        ax.set_xticks(x)
        ax.set_xticklabels(methods, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("SRCC")
        ax.set_title(f"{exp}: {target}", fontsize=10)
        ax.axhline(0, color="black", lw=0.5)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    pfig.update_layout(barmode="group", height=300 * len(groups), width=1000,
                       title="SRCC on target families: zero-shot vs fine-tuned")
    png, html = folder / f"{stem}.png", folder / f"{stem}.html"
    _save_png(fig, png)
    _save_html(pfig, html)
    return [png, html]


def scatter(points: dict[str, dict[str, np.ndarray]], folder: Path, stem: str, title: str) -> list[Path]:
    """GENNAPE score vs true accuracy; ``points[f"{target}|{setting}"] = {"y", "pred"}``."""
    if not points:
        return []
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    plt = _plt()
    keys = list(points)  # insertion order: per target, zero-shot then fine-tuned
    cols = min(3, len(keys))
    rows = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False)
    pfig = make_subplots(rows=rows, cols=cols, subplot_titles=keys)
    rng = np.random.default_rng(0)
    for i, key in enumerate(keys):
        y, p = points[key]["y"], points[key]["pred"]
        if y.size > 4000:  # keep the files small: a fixed random subsample
            sel = np.sort(rng.choice(y.size, 4000, replace=False))
            y, p = y[sel], p[sel]
        ax = axes[i // cols][i % cols]
        ax.scatter(y, p, s=4, alpha=0.4)
        ax.set_xlabel("true accuracy [%]")
        ax.set_ylabel("GENNAPE score")
        ax.set_title(key.replace("|", " — "), fontsize=9)
        pfig.add_trace(go.Scattergl(x=y, y=p, mode="markers", marker={"size": 3, "opacity": 0.5}, name=key),
                       row=i // cols + 1, col=i % cols + 1)
    for j in range(len(keys), rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(title)
    fig.tight_layout()
    pfig.update_layout(title=title, height=360 * rows, width=420 * cols, showlegend=False)
    png, html = folder / f"{stem}.png", folder / f"{stem}.html"
    _save_png(fig, png)
    _save_html(pfig, html)
    return [png, html]
