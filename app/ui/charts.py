"""Pure Plotly figure builders (DataFrame / CG -> ``go.Figure``); no streamlit.

Scatter traces carry the architecture id as ``customdata[0]`` so a selection maps back to ids
whatever trace a point is in.  Large maps use WebGL (``go.Scattergl``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from engine.graphs.ops import OP_COLOURS

#: same order as chartCategoricalColors in .streamlit/config.toml
#: category colours (families sort hiaml, inception, nb101, nb201, nb301, ofa_mbv3, ofa_pn, ofa_resnet,
#: two_path): Okabe-Ito's colour-blind-safe set first, no red among the first nine (red marks the selection)
PALETTE = ["#E69F00", "#56B4E9", "#009E73", "#0072B2", "#CC79A7", "#B8A600", "#7209b7", "#555555",
           "#D55E00", "#264653", "#9ef01a", "#a0522d"]
MISSING_COLOUR = "#c8c8c8"

#: "colour by" choices of the map: label -> (frame column, kind)
COLOUR_OPTIONS: dict[str, tuple[str, str]] = {
    "Family": ("family", "category"),
    "Task": ("task", "category"),
    "FCM cluster": ("cluster", "category"),
    "GENNAPE score": ("score", "continuous"),
    "True label": ("label", "continuous"),
    "True label, percentile in its label set": ("label_pct", "continuous"),
    "FLOPs (log10)": ("flops", "log"),
    "Membership entropy": ("entropy", "continuous"),
    "Novelty": ("novelty", "continuous"),
}

_HOVER = ("<b>%{customdata[0]}</b><br>family %{customdata[1]}<br>score %{customdata[2]:.4f}"
          "<br>%{customdata[3]:.2f} MFLOPs<br>label %{customdata[4]:.2f}<br>cluster %{customdata[5]}<extra></extra>")


def _custom(frame: pd.DataFrame) -> np.ndarray:
    cd = np.empty((len(frame), 6), dtype=object)
    cd[:, 0] = frame["id"].to_numpy()
    cd[:, 1] = frame["family"].to_numpy()
    cd[:, 2] = frame["score"].to_numpy(dtype=float).round(4)  # what the hover shows: smaller payload
    cd[:, 3] = (frame["flops"].to_numpy(dtype=float) / 1e6).round(3)
    cd[:, 4] = frame["label"].to_numpy(dtype=float).round(3)
    cd[:, 5] = frame["cluster"].to_numpy()
    return cd


def _coord(values: pd.Series) -> np.ndarray:
    """Map coordinates rounded to 3 decimals (invisible on screen; a third less JSON for the browser)."""
    return values.to_numpy(dtype=float).round(3)


def _layout(fig: go.Figure, title: str = "", height: int = 560, **kw: Any) -> go.Figure:
    # the legend above the plot (below it, it covered the x axis's tick labels), under the toolbar
    fig.update_layout(title=title or None, height=height, margin=dict(l=10, r=10, t=90 if title else 64, b=10),
                      legend=dict(itemsizing="constant", orientation="h", yanchor="bottom", y=1.01, x=0), **kw)
    return fig


def category_colours(values: Iterable[Any]) -> dict[Any, str]:
    cats = sorted({v for v in values}, key=lambda v: (str(type(v)), v))
    return {c: PALETTE[i % len(PALETTE)] for i, c in enumerate(cats)}


def embedding_map(frame: pd.DataFrame, x: str, y: str, colour: str = "Family", *,
                  highlight: Sequence[str] = (), selected: str | None = None, title: str = "",
                  height: int = 600, marker_size: int = 4) -> go.Figure:
    """WebGL scatter of a 2-D map, coloured by one of :data:`COLOUR_OPTIONS`.

    Uploaded architectures (``source == "upload"``) and ``highlight`` ids get a black-outlined
    diamond on top; ``selected`` gets a red ring.
    """
    col, kind = COLOUR_OPTIONS.get(colour, ("family", "category"))
    f = frame[np.isfinite(frame[x].to_numpy(dtype=float)) & np.isfinite(frame[y].to_numpy(dtype=float))]
    fig = go.Figure()
    if kind == "category":
        cols = category_colours(f[col].tolist())
        groups = list(f.groupby(col, sort=True))
        # the largest groups are drawn first, so a family of 24 is not buried under 15,625 NB-201
        # cells; a group under 2 % of the points gets larger markers.  The legend stays sorted.
        for rank, (cat, grp) in sorted(enumerate(groups), key=lambda t: -len(t[1][1])):
            name = f"cluster {cat}" if col == "cluster" else str(cat)
            if col == "cluster" and int(cat) < 0:
                name = "no cluster"
            size = marker_size + 2 if len(grp) < 0.02 * len(f) else marker_size
            fig.add_trace(go.Scattergl(x=_coord(grp[x]), y=_coord(grp[y]), mode="markers", name=name,
                                       customdata=_custom(grp), hovertemplate=_HOVER, legendrank=1000 + rank,
                                       marker=dict(size=size, color=cols[cat], opacity=0.75)))
    else:
        vals = f[col].to_numpy(dtype=float) if col in f.columns else np.full(len(f), np.nan)  # older workspaces
        if kind == "log":
            vals = np.log10(np.where(vals > 0, vals, np.nan))
        ok = np.isfinite(vals)
        if (~ok).any():
            grp = f[~ok]
            fig.add_trace(go.Scattergl(x=_coord(grp[x]), y=_coord(grp[y]), mode="markers",
                                       name=f"no {colour.lower()}", customdata=_custom(grp), hovertemplate=_HOVER,
                                       marker=dict(size=marker_size, color=MISSING_COLOUR, opacity=0.5)))
        grp = f[ok]
        fig.add_trace(go.Scattergl(x=_coord(grp[x]), y=_coord(grp[y]), mode="markers", name=colour,
                                   customdata=_custom(grp), hovertemplate=_HOVER, showlegend=False,
                                   marker=dict(size=marker_size, color=vals[ok], colorscale="Viridis",
                                               colorbar=dict(title=colour, thickness=12), opacity=0.8)))
    hl = f[(f["source"] == "upload") | f["id"].isin(set(highlight))]
    if len(hl):
        fig.add_trace(go.Scattergl(x=_coord(hl[x]), y=_coord(hl[y]), mode="markers", name="your uploads",
                                   customdata=_custom(hl), hovertemplate=_HOVER,
                                   marker=dict(size=11, symbol="diamond", color="#ffffff",
                                               line=dict(color="#000000", width=2))))
    if selected is not None and selected in set(f["id"]):
        s = f[f["id"] == selected]
        fig.add_trace(go.Scattergl(x=_coord(s[x]), y=_coord(s[y]), mode="markers", name="selected",
                                   customdata=_custom(s), hovertemplate=_HOVER,
                                   marker=dict(size=18, symbol="circle-open", color="#d00000", line=dict(width=3))))
    fig.update_xaxes(showticklabels=False, title=None, zeroline=False)
    fig.update_yaxes(showticklabels=False, title=None, zeroline=False)
    return _layout(fig, title, height, dragmode="lasso")


def selected_ids(event: Any) -> list[str]:
    """Architecture ids of a ``st.plotly_chart`` selection event (``customdata[0]``), in order,
    without duplicates."""
    if event is None:
        return []
    sel = event.get("selection", {}) if isinstance(event, dict) else getattr(event, "selection", {})
    points = sel.get("points", []) if isinstance(sel, dict) else getattr(sel, "points", [])
    out: dict[str, None] = {}
    for p in points or []:
        cd = p.get("customdata") if isinstance(p, dict) else None
        if cd is None:
            continue
        out[str(cd[0] if isinstance(cd, list | tuple) else cd)] = None
    return list(out)


def score_distribution(frame: pd.DataFrame, title: str = "") -> go.Figure:
    """GENNAPE score per family (box plots)."""
    fig = go.Figure()
    f = frame[np.isfinite(frame["score"].to_numpy(dtype=float))]
    cols = category_colours(f["family"].tolist())
    for fam, grp in f.groupby("family", sort=True):
        fig.add_trace(go.Box(y=grp["score"].to_numpy(), name=str(fam), marker_color=cols[fam], boxpoints=False))
    fig.update_yaxes(title="GENNAPE score")
    return _layout(fig, title, 380, showlegend=False)


def pred_vs_true(frame: pd.DataFrame, title: str = "", height: int = 480) -> go.Figure:
    """Score against the true label, one colour per labelled dataset."""
    f = frame[np.isfinite(frame["label"].to_numpy(dtype=float)) & np.isfinite(frame["score"].to_numpy(dtype=float))]
    fig = go.Figure()
    cols = category_colours(f["dataset"].tolist())
    for ds, grp in f.groupby("dataset", sort=True):
        fig.add_trace(go.Scattergl(x=grp["label"].to_numpy(), y=grp["score"].to_numpy(), mode="markers", name=str(ds),
                                   customdata=_custom(grp), hovertemplate=_HOVER,
                                   marker=dict(size=4, color=cols[ds], opacity=0.6)))
    fig.update_xaxes(title="true label (accuracy %)")
    fig.update_yaxes(title="GENNAPE score")
    return _layout(fig, title, height)


def membership_heatmap(frame: pd.DataFrame, columns: Sequence[str], max_rows: int = 300,
                       title: str = "") -> go.Figure:
    """Architectures x clusters membership heatmap (rows sorted by cluster, then membership)."""
    f = frame
    if len(f) > max_rows:  # a readable, stratified subset: every cluster keeps its share
        rng = np.random.default_rng(0)
        clusters = f["cluster"].to_numpy()
        keep = []
        for c in np.unique(clusters):
            idx = np.flatnonzero(clusters == c)
            take = max(1, int(round(max_rows * len(idx) / len(f))))
            keep.append(rng.choice(idx, size=min(take, len(idx)), replace=False))
        f = f.iloc[np.sort(np.concatenate(keep))]
    u = f[list(columns)].to_numpy(dtype=float)
    order = np.lexsort((-u.max(axis=1) if len(u) else np.zeros(0), f["cluster"].to_numpy()))
    f, u = f.iloc[order], u[order]
    fig = go.Figure(go.Heatmap(z=u, x=[c.replace("membership_", "cluster ") for c in columns], y=f["id"].tolist(),
                               colorscale="Purples", zmin=0, zmax=1, colorbar=dict(title="membership"),
                               hovertemplate="%{y}<br>%{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(showticklabels=len(f) <= 60, autorange="reversed")
    return _layout(fig, title, 520)


def membership_bars(values: Sequence[float], title: str = "") -> go.Figure:
    vals = np.asarray(values, dtype=float)
    cols = [PALETTE[i % len(PALETTE)] for i in range(len(vals))]
    fig = go.Figure(go.Bar(x=[f"cluster {i}" for i in range(len(vals))], y=vals, marker_color=cols,
                           hovertemplate="%{x}: %{y:.3f}<extra></extra>"))
    fig.update_yaxes(range=[0, 1], title="membership")
    return _layout(fig, title, 300)


def cluster_composition(frame: pd.DataFrame, normalise: bool = False, title: str = "") -> go.Figure:
    """Stacked bars: architectures of each family in each FCM cluster."""
    f = frame[frame["cluster"] >= 0]
    tab = pd.crosstab(f["cluster"], f["family"])
    if normalise and len(tab):
        tab = tab.div(tab.sum(axis=1), axis=0)
    cols = category_colours(tab.columns.tolist())
    fig = go.Figure([go.Bar(x=[f"cluster {c}" for c in tab.index], y=tab[fam].to_numpy(), name=str(fam),
                            marker_color=cols[fam]) for fam in tab.columns])
    fig.update_yaxes(title="share" if normalise else "architectures")
    fig = _layout(fig, title, 380, barmode="stack")
    fig.update_layout(legend_traceorder="normal")  # families in the order of every other chart, not reversed
    return fig


def family_clusters(frame: pd.DataFrame, title: str = "") -> go.Figure:
    """Stacked bars, one per family: the share of its architectures in each FCM cluster (so a
    24-sample family reads as clearly as a 15,625-row one)."""
    f = frame[frame["cluster"] >= 0]
    tab = pd.crosstab(f["family"], f["cluster"])
    share = tab.div(tab.sum(axis=1).where(lambda v: v > 0, 1), axis=0)
    colours = category_colours([f"cluster {c}" for c in tab.columns])
    fig = go.Figure([go.Bar(x=share.index.astype(str).tolist(), y=share[c].to_numpy(), name=f"cluster {c}",
                            marker_color=colours[f"cluster {c}"], customdata=tab[c].to_numpy(),
                            hovertemplate="%{x}: %{y:.0%} (%{customdata})<extra>cluster " + str(c) + "</extra>")
                     for c in tab.columns])
    fig.update_yaxes(title="share of the family", tickformat=".0%", range=(0, 1))
    fig = _layout(fig, title, 380, barmode="stack")
    fig.update_layout(legend_traceorder="normal")
    return fig


def entropy_by_family(frame: pd.DataFrame, title: str = "") -> go.Figure:
    """Membership entropy per family (box), uploads as points on top."""
    return by_family(frame, "entropy", "entropy (0: one cluster, 1: all)", title, y_range=(0, 1.1))


def novelty_by_family(frame: pd.DataFrame, title: str = "") -> go.Figure:
    """Novelty per family (box) with the training-domain edge (novelty 1) marked."""
    fig = by_family(frame, "novelty", "novelty (> 1 = outside the training domain)", title)
    fig.add_hline(y=1.0, line_dash="dash", line_color="#d62828",
                  annotation_text="edge of the training domain", annotation_position="top left")
    return fig


def by_family(frame: pd.DataFrame, column: str, axis_title: str, title: str = "",
              y_range: tuple[float, float] | None = None) -> go.Figure:
    """``column`` per family (box), uploads as points on top."""
    f = frame[np.isfinite(frame[column].to_numpy(dtype=float))] if column in frame.columns else frame.iloc[:0]
    cols = category_colours(f["family"].tolist())
    fig = go.Figure()
    for fam, grp in f.groupby("family", sort=True):  # quartiles computed here: 5 numbers per box, not every point
        y = grp[column].to_numpy(dtype=float)
        q1, med, q3 = np.percentile(y, [25, 50, 75])
        iqr = q3 - q1
        lo = float(y[y >= q1 - 1.5 * iqr].min())
        hi = float(y[y <= q3 + 1.5 * iqr].max())
        fig.add_trace(go.Box(x=[str(fam)], q1=[q1], median=[med], q3=[q3], lowerfence=[lo], upperfence=[hi],
                             mean=[float(y.mean())], name=str(fam), marker_color=cols[fam], boxpoints=False,
                             showlegend=False))
    up = f[f["source"] == "upload"]
    if len(up):
        fig.add_trace(go.Scatter(x=up["family"], y=up[column], mode="markers", name="your uploads",
                                 text=up["id"], marker=dict(symbol="diamond", size=10, color="#000000")))
    fig.update_yaxes(title=axis_title, range=list(y_range) if y_range else None)
    return _layout(fig, title, 380)


def op_costs(cg: Any, title: str = "") -> go.Figure:
    """FLOPs and params of a CG by op type (two bar panels), ops coloured as in the graph view."""
    flops: dict[str, float] = {}
    params: dict[str, float] = {}
    counts: dict[str, int] = {}
    for nd in cg.nodes:
        flops[nd.op] = flops.get(nd.op, 0) + nd.flops
        params[nd.op] = params.get(nd.op, 0) + nd.params
        counts[nd.op] = counts.get(nd.op, 0) + 1
    ops = sorted(counts, key=lambda o: (-flops[o], -params[o], o))
    fig = make_subplots(rows=1, cols=3, subplot_titles=("nodes", "MFLOPs", "K params"))
    colours = [OP_COLOURS.get(o, "#6c757d") for o in ops]
    fig.add_trace(go.Bar(x=ops, y=[counts[o] for o in ops], marker_color=colours, showlegend=False), 1, 1)
    fig.add_trace(go.Bar(x=ops, y=[flops[o] / 1e6 for o in ops], marker_color=colours, showlegend=False), 1, 2)
    fig.add_trace(go.Bar(x=ops, y=[params[o] / 1e3 for o in ops], marker_color=colours, showlegend=False), 1, 3)
    return _layout(fig, title, 320).update_layout(margin_t=40)


def op_count_compare(cg_a: Any, cg_b: Any, name_a: str, name_b: str) -> go.Figure:
    """Grouped bars of node counts per op type for two CGs."""
    a, b = cg_a.op_counts(), cg_b.op_counts()
    ops = sorted(set(a) | set(b), key=lambda o: -(a.get(o, 0) + b.get(o, 0)))
    fig = go.Figure([go.Bar(x=ops, y=[a.get(o, 0) for o in ops], name=name_a, marker_color=PALETTE[0]),
                     go.Bar(x=ops, y=[b.get(o, 0) for o in ops], name=name_b, marker_color=PALETTE[1])])
    fig.update_yaxes(title="nodes")
    return _layout(fig, "", 320, barmode="group")


def finetune_scatter(predictions: pd.DataFrame, title: str = "") -> go.Figure:
    """Held-out true label against the score before and after fine-tuning."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("before fine-tuning", "after fine-tuning"))
    for j, col in enumerate(("before", "after"), start=1):
        fig.add_trace(go.Scattergl(x=predictions["label"], y=predictions[col], mode="markers", text=predictions["id"],
                                   marker=dict(size=5, color=PALETTE[j - 1], opacity=0.7), name=col,
                                   hovertemplate="%{text}<br>label %{x:.2f}<br>score %{y:.4f}<extra></extra>"),
                      1, j)
        fig.update_xaxes(title="true label (accuracy %)", row=1, col=j)
    fig.update_yaxes(title="score", row=1, col=1)
    return _layout(fig, title, 380, showlegend=False).update_layout(margin_t=40)


def loss_curve(history: Sequence[tuple[str, int, int, dict]], title: str = "") -> go.Figure | None:
    """Each numeric metric of the fine-tuning callbacks against the step (None without any)."""
    series: dict[str, tuple[list[int], list[float]]] = {}
    for stage, step, _total, metrics in history:
        for key, val in (metrics or {}).items():
            if isinstance(val, int | float) and not isinstance(val, bool) and np.isfinite(val):
                xs, ys = series.setdefault(f"{stage}: {key}", ([], []))
                xs.append(step)
                ys.append(float(val))
    if not series:
        return None
    fig = go.Figure([go.Scatter(x=xs, y=ys, mode="lines+markers", name=name) for name, (xs, ys) in series.items()])
    fig.update_xaxes(title="step")
    return _layout(fig, title, 320)
