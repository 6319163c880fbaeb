"""Pure UI helpers: page registry, figure builders, the pyvis graph view, the progress adapter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_app_engine import tiny_cgs, tiny_workspace

from app.ui import charts, graph_view
from app.ui.progress import StreamlitProgress
from app.ui.registry import PAGES, page
from engine import studio
from engine.graphs.cg import CGBuilder
from engine.report import external_references


def test_registry_pages_exist_and_are_unique():
    assert [p.url_path for p in PAGES][:8] == ["home", "data", "map", "clusters", "architecture", "rankings",
                                               "finetune", "report"]
    assert len({p.url_path for p in PAGES}) == len(PAGES) and sum(p.default for p in PAGES) == 1
    for p in PAGES:
        assert p.path.exists(), p.path
        assert "__main__" not in p.path.read_text()
    assert page("map").title == "Embedding map"
    with pytest.raises(KeyError, match="no page"):
        page("nope")


def _big_frame(n: int = 2000, k: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    u = rng.dirichlet(np.ones(k), size=n)
    f = pd.DataFrame({"id": [f"a{i}" for i in range(n)], "family": rng.choice(["nb201", "ofa_pn"], n),
                      "source": "benchmark", "score": rng.normal(size=n), "label": rng.normal(90, 2, n),
                      "flops": rng.uniform(1e6, 1e9, n), "cluster": u.argmax(1), "entropy": rng.uniform(0, 1, n),
                      "tsne_x": rng.normal(size=n), "tsne_y": rng.normal(size=n), "dataset": "d"})
    f["task"] = np.where(f["family"] == "nb201", "CIFAR-10", "ImageNet")  # added by the page (studio.row_tasks)
    f["label_pct"] = studio.label_percentile(f)  # added by the page
    for j in range(k):
        f[f"membership_{j}"] = u[:, j]
    f.loc[:4, "source"] = "upload"
    f.loc[10:20, "label"] = np.nan
    return f


@pytest.mark.parametrize("colour", list(charts.COLOUR_OPTIONS))
def test_embedding_map_traces_carry_ids(colour):
    f = _big_frame()
    fig = charts.embedding_map(f, "tsne_x", "tsne_y", colour, selected="a7")
    ids = [cd[0] for tr in fig.data for cd in tr.customdata]
    base = [tr for tr in fig.data if tr.name not in ("your uploads", "selected")]
    assert sum(len(tr.x) for tr in base) == len(f)  # every architecture drawn once in the base layer
    assert {"a0", "a4", "a7"} <= set(ids)
    assert all(tr.type == "scattergl" for tr in fig.data)
    names = [tr.name for tr in fig.data]
    assert "your uploads" in names and names[-1] == "selected"


def test_selected_ids_from_event():
    event = {"selection": {"points": [{"customdata": ["a1", "x"]}, {"customdata": ["a2"]}, {"customdata": ["a1"]},
                                      {"x": 1}]}}
    assert charts.selected_ids(event) == ["a1", "a2"]
    assert charts.selected_ids(None) == [] and charts.selected_ids({"selection": {}}) == []


def test_membership_heatmap_stratified_subset():
    f = _big_frame(3000)
    cols = [f"membership_{j}" for j in range(4)]
    fig = charts.membership_heatmap(f, cols, max_rows=200)
    z = np.asarray(fig.data[0].z)
    assert 190 <= z.shape[0] <= 210 and z.shape[1] == 4
    shown = pd.Series(fig.data[0].y).map(dict(zip(f["id"], f["cluster"])))
    share = shown.value_counts(normalize=True).sort_index()
    np.testing.assert_allclose(share.to_numpy(), f["cluster"].value_counts(normalize=True).sort_index(), atol=0.03)
    assert (np.diff(shown.to_numpy()) >= 0).all()  # grouped by cluster


def test_other_figures_build():
    f = _big_frame(300)
    assert len(charts.score_distribution(f).data) == 2
    assert len(charts.pred_vs_true(f).data[0].x) == 300 - 11
    assert len(charts.cluster_composition(f, normalise=True).data) == 2
    by_family = charts.family_clusters(f)
    shares = np.sum([np.asarray(t.y, dtype=float) for t in by_family.data], axis=0)
    np.testing.assert_allclose(shares, 1.0)  # each family's bar adds up to the whole family
    assert len(by_family.data) == f.loc[f["cluster"] >= 0, "cluster"].nunique()
    assert charts.entropy_by_family(f).data[-1].name == "your uploads"
    cg = tiny_cgs(1)[0]
    costs = charts.op_costs(cg)
    assert sum(costs.data[1].y) == pytest.approx(cg.flops / 1e6)
    assert sum(costs.data[2].y) == pytest.approx(cg.params / 1e3)
    assert charts.loss_curve([("finetune", 1, 2, {"loss": 1.0}), ("finetune", 2, 2, {"loss": 0.5})]) is not None
    assert charts.loss_curve([("finetune", 1, 2, {})]) is None
    pred = pd.DataFrame({"id": ["a", "b"], "label": [1.0, 2.0], "before": [0.1, 0.2], "after": [0.3, 0.1]})
    assert len(charts.finetune_scatter(pred).data) == 2


def test_graph_view_offline_and_sanitised():
    b = CGBuilder("net", (8, 8, 3))
    x = b.input()
    y = b.conv(x, 4, 3, name='</script><img src=x onerror="alert(1)">')
    z = b.act(y, "relu")
    cg = b.output(b.linear(b.mean(b.sum([y, z])), 10))
    doc = graph_view.cg_html(cg)
    assert external_references(doc) == [] and "<!--" not in doc
    assert "onerror" in doc and "<img src=x" not in doc and "</script><img" not in doc
    assert graph_view.depths(cg) == [0, 1, 2, 3, 4, 5, 6]
    assert '"direction": "UD"' in doc and "#d62828" in doc  # hierarchical layout, conv colour
    assert "conv 3x3" in graph_view.node_label(cg.nodes[1])
    assert "weight 3x4x3x3" in graph_view.node_title(cg.nodes[1])
    assert "focusInput" not in doc  # small and shallow: fitted whole


def test_graph_view_bows_shortcuts_and_opens_deep_graphs_zoomed_in():
    """A shortcut edge (skipping levels) is curved, so it is not drawn on the chain it bypasses;
    a deep chain (a ResNet: few nodes, many levels) opens zoomed in on its input."""
    b = CGBuilder("deep", (8, 8, 3))
    x = b.input()
    h = x = b.conv(x, 4, 3)
    for _ in range(9):
        h = b.sum([h, b.act(b.conv(h, 4, 3), "relu")])
    cg = b.output(b.linear(b.mean(h), 10))
    net = graph_view.cg_network(cg)
    lv = graph_view.depths(cg)
    bowed = {(e["from"], e["to"]) for e in net.edges if e.get("smooth", {}).get("type") == "curvedCW"}
    assert bowed and bowed == {(u, v) for u, v in cg.edges if lv[v] - lv[u] > 1}
    assert cg.num_nodes <= graph_view.FOCUS_ABOVE and max(lv) > graph_view.FOCUS_ABOVE_LEVELS
    assert "focusInput" in graph_view.cg_html(cg)


def test_strip_external_removes_cdn_tags():
    doc = ('<html><head><link href="https://cdn.x/b.css" rel="stylesheet"/><script src="https://cdn.x/b.js">'
           "</script><!-- <script src='../x.js'></script> --><script>var a = 1;</script></head></html>")
    out = graph_view.strip_external(doc)
    assert "cdn.x" not in out and "../x.js" not in out and "var a = 1;" in out


class _Bar:
    def __init__(self):
        self.calls = []

    def progress(self, value, text=""):
        self.calls.append((value, text))


def test_streamlit_progress_throttles_and_finishes():
    bar = _Bar()
    cb = StreamlitProgress(bar, min_interval=10.0)
    for i in range(1, 101):
        cb("score", i, 100, {"loss": 0.5})
    assert len(cb.events) == 100
    assert bar.calls[-1][0] == 1.0 and "scoring: 100/100" in bar.calls[-1][1] and "loss 0.5" in bar.calls[-1][1]
    assert len(bar.calls) <= 3  # throttled, but the last step always shows
    cb("finetune", 5, 0)  # a zero total never divides by zero
    assert 0.0 <= bar.calls[-1][0] <= 1.0


def test_workspace_map_figure_size_is_reasonable():
    ws = tiny_workspace(40, with_upload=True)
    fig = charts.embedding_map(ws.frame, "pca_x", "pca_y", "GENNAPE score")
    assert len(fig.to_json()) < 200_000


def test_embedding_map_draws_small_families_on_top_with_a_sorted_legend():
    f = _big_frame()
    f["family"] = np.where(np.arange(len(f)) < 3, "hiaml", "nb201")  # 3 rare points, sorted before nb201
    fig = charts.embedding_map(f, "tsne_x", "tsne_y", "Family")
    base = [tr for tr in fig.data if tr.name in ("hiaml", "nb201")]
    assert [tr.name for tr in base] == ["nb201", "hiaml"]  # drawn later = on top
    assert base[1].legendrank < base[0].legendrank  # legend still alphabetical
    assert base[1].marker.size > base[0].marker.size  # rare group: larger markers
