"""AppTest suite of the Streamlit app: every page renders, and the main flows work.

The shared default model / workspace are replaced by a tiny deterministic stand-in
(``TinyPredictor``, ``tiny_workspace`` from ``test_app_engine``) injected through the app's own
session-state keys, so the suite needs no checkpoint and runs in seconds per page.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest
from test_app_engine import TinyPredictor, onnx_bytes, tiny_dataset, tiny_workspace

from app.ui import state
from app.ui.registry import PAGES
from engine import studio

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "streamlit_app.py")
TIMEOUT = 60


@pytest.fixture(scope="module")
def shared_ws():
    """One workspace object shared by every session (like the cached default); never mutated."""
    return tiny_workspace(40, with_upload=True)


def make_app(ws, predictor=None, **extra) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.session_state[state.WORKSPACE] = ws
    at.session_state[state.PREDICTOR] = predictor if predictor is not None else TinyPredictor()
    for key, value in extra.items():
        at.session_state[key] = value
    return at


def with_ofa(ws, rest: str | None = None, **changes):
    """``ws`` with every third row an unlabelled ``ofa_pn`` (ImageNet) sample, as the OFA samples
    of the default workspace; the other rows keep their family, or all get ``rest``."""
    f = ws.frame
    ofa = np.arange(len(ws)) % 3 == 0
    frame = f.assign(family=np.where(ofa, "ofa_pn", f["family"] if rest is None else rest),
                     label=np.where(ofa, np.nan, f["label"]), provenance=np.where(ofa, "", f["provenance"]))
    return dataclasses.replace(ws, frame=frame, **changes)


def goto(at: AppTest, script: str) -> AppTest:
    at.switch_page(f"app_pages/{script}")
    return at.run()


def table_with(at: AppTest, column: str):
    """The first ``st.dataframe`` value that has ``column`` (display-only tables have no key)."""
    for d in at.dataframe:
        if column in d.value.columns:
            return d.value
    raise AssertionError(f"no table with a {column!r} column; tables: {[list(d.value.columns) for d in at.dataframe]}")


@pytest.mark.parametrize("page", PAGES, ids=[p.url_path for p in PAGES])
def test_every_page_renders(page, shared_ws):
    selected = shared_ws.frame["id"].iloc[0]
    at = make_app(shared_ws, **{state.SELECTED: selected})
    at.run()
    assert not at.exception, at.exception
    goto(at, page.script)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert at.title and at.title[0].value == ("GENNAPE Studio" if page.url_path == "home" else page.title)


def test_map_select_then_cg_view(shared_ws):
    at = make_app(shared_ws)
    at.run()
    goto(at, "embedding_map.py")
    assert not at.exception
    # a box / lasso selection is an app-owned list of ids; one architecture is opened by id
    chosen = shared_ws.frame["id"].iloc[:5].tolist()
    at.session_state[state.MAP_SELECTION] = chosen
    at.session_state[state.SELECTED] = chosen[2]
    at.run()
    assert not at.exception
    assert any(s.value == "Selection (5)" for s in at.subheader)
    nn = table_with(at, "distance")
    assert len(nn) == 10 and chosen[2] not in set(nn["id"])
    expected = studio.nearest_neighbours(shared_ws, chosen[2], 10)["id"].tolist()
    assert nn["id"].tolist() == expected
    at.button(key="map_open_cg").click().run()
    assert not at.exception
    assert at.title[0].value == "Architecture"
    cg = studio.cg_of(shared_ws, chosen[2])
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["nodes"] == f"{cg.num_nodes:,}" and metrics["family"] == "custom"
    # compare view renders two graphs side by side
    at.switch_page("app_pages/architecture.py")
    at.segmented_control(key="arch_view").set_value("Compare").run()
    at.session_state[state.COMPARE] = chosen[3]
    at.run()
    assert not at.exception and table_with(at, chosen[3]).shape[1] == 3


def test_graph_html_is_offline(shared_ws):
    from app.ui.graph_view import cg_html
    from engine.report import external_references

    aid = shared_ws.frame["id"].iloc[1]
    cg = studio.cg_of(shared_ws, aid)
    doc = cg_html(cg)
    assert external_references(doc) == [] and "cdn.jsdelivr" not in doc
    assert "vis-network" in doc or "vis.Network" in doc
    for nd in cg.nodes:
        assert f'"id": {nd.id}' in doc


def test_data_page_lists_each_benchmarks_task(shared_ws):
    at = make_app(shared_ws)
    at.run()
    goto(at, "data.py")
    assert not at.exception, [e.value for e in at.exception]
    table = table_with(at, "in workspace").set_index("name")
    assert table.loc["nb201_cifar10", "task"] == "CIFAR-10" and table.loc["nb201_cifar100", "task"] == "CIFAR-100"
    assert table.loc["nb201_imagenet", "task"] == "ImageNet16-120" and table.loc["zoo_imagenet", "task"] == "ImageNet"


def test_upload_good_and_bad_files_keep_the_session(shared_ws):
    from engine.families import get

    at = make_app(shared_ws)
    at.run()
    goto(at, "data.py")
    n0 = len(shared_ws)
    specs = get("nb201").sample(3, seed=7)
    good = ("family,spec,label\n" + "".join(f"nb201,{s},{60 + i}\n" for i, s in enumerate(specs))
            + "nb201,broken,1\n").encode()
    at.file_uploader(key="data_uploader").set_value([("yours.csv", good, "text/csv"),
                                                      ("junk.onnx", b"\x00garbage", "application/octet-stream")])
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    ws = at.session_state[state.WORKSPACE]
    assert len(ws) == n0 + 3 and len(shared_ws) == n0  # the shared workspace is untouched
    added = ws.frame[ws.frame["id"].str.startswith("upload:yours.csv")]
    assert len(added) == 3 and np.isfinite(added["score"]).all() and np.isfinite(added["tsne_x"]).all()
    log = at.session_state[state.UPLOADS]
    assert [u.filename for u in log] == ["yours.csv", "junk.onnx"]
    assert list(log[0].errors["row"]) == [5] and log[1].dataset is None
    assert any("Nothing could be loaded from junk.onnx" in e.value for e in at.error)
    # a rerun does not read the same files again
    at.run()
    assert len(at.session_state[state.UPLOADS]) == 2 and len(at.session_state[state.WORKSPACE]) == n0 + 3
    # the uploads are highlighted on the map
    goto(at, "embedding_map.py")
    assert not at.exception



def test_onnx_files_uploaded_with_their_labels_csv_load_as_one_labelled_dataset(shared_ws):
    at = make_app(shared_ws)
    at.run()
    goto(at, "data.py")
    n0 = len(shared_ws)
    files = [("a.onnx", onnx_bytes(4), "application/octet-stream"), ("b.onnx", onnx_bytes(8), "application/octet-stream"),
             ("labels.csv", b"file,label\na.onnx,80\nb,90\n", "text/csv")]
    at.file_uploader(key="data_uploader").set_value(files).run()
    assert not at.exception, [e.value for e in at.exception]
    log = at.session_state[state.UPLOADS]
    assert [u.filename for u in log] == ["labels.csv + 2 ONNX file(s)"] and log[0].errors.empty
    frame = at.session_state[state.WORKSPACE].frame
    added = frame[frame["id"].str.startswith("upload:labels.csv:")].set_index("id")
    assert added["label"].to_dict() == {"upload:labels.csv:a.onnx": 80.0, "upload:labels.csv:b.onnx": 90.0}
    assert len(frame) == n0 + 2 and log[0].warnings == [w.value for w in at.warning]  # (the BN-folding note)
    assert not any("no label" in w for w in log[0].warnings)
    at.run()  # a rerun reads nothing again
    assert len(at.session_state[state.UPLOADS]) == 1 and len(at.session_state[state.WORKSPACE]) == n0 + 2
    at.file_uploader(key="data_uploader").set_value(files[:2]).run()  # labels.csv removed: its ONNX files were read
    assert len(at.session_state[state.UPLOADS]) == 1 and len(at.session_state[state.WORKSPACE]) == n0 + 2
    # a labels CSV without its ONNX files says where ONNX labels go, and names itself in the error
    at.file_uploader(key="data_uploader").set_value([("labels.csv", b"file,label\nc.onnx,70\n", "text/csv")]).run()
    reason = table_with(at, "reason")["reason"].iloc[0]
    assert "labels.csv" in reason and "uploaded together with the .onnx files (or zipped with them)" in reason


def test_labels_csv_added_after_its_onnx_files_replaces_their_unlabelled_rows(shared_ws):
    """The uploader keeps the files picked first: ONNX files read alone (unlabelled), then their
    labels.csv added, used to put every network in the workspace twice (unlabelled and labelled)."""
    at = make_app(shared_ws)
    at.run()
    goto(at, "data.py")
    n0 = len(shared_ws)
    onnx = [("a.onnx", onnx_bytes(4), "application/octet-stream"), ("b.onnx", onnx_bytes(8), "application/octet-stream")]
    at.file_uploader(key="data_uploader").set_value(onnx).run()
    assert len(at.session_state[state.WORKSPACE]) == n0 + 2 and len(at.session_state[state.UPLOADS]) == 2
    labels = ("labels.csv", b"file,label\na.onnx,80\nb.onnx,90\n", "text/csv")
    at.file_uploader(key="data_uploader").set_value([*onnx, labels]).run()
    assert not at.exception, [e.value for e in at.exception]
    frame = at.session_state[state.WORKSPACE].frame
    ups = frame[frame["id"].str.endswith(".onnx")].set_index("id")
    assert ups["label"].to_dict() == {"upload:labels.csv:a.onnx": 80.0, "upload:labels.csv:b.onnx": 90.0}
    assert len(frame) == n0 + 2
    log = at.session_state[state.UPLOADS]
    assert [u.filename for u in log] == ["labels.csv + 2 ONNX file(s)"]
    assert "Replaces what was read before from a.onnx, b.onnx" in log[0].warnings[0]
    # one more ONNX file in the same batch: the group is read again and replaces the smaller one
    more = [*onnx, ("c.onnx", onnx_bytes(12), "application/octet-stream"), labels]
    at.file_uploader(key="data_uploader").set_value(more).run()
    frame = at.session_state[state.WORKSPACE].frame
    assert sorted(frame.loc[frame["id"].str.endswith(".onnx"), "id"]) == [
        "upload:labels.csv:a.onnx", "upload:labels.csv:b.onnx", "upload:labels.csv:c.onnx"]
    assert len(frame) == n0 + 3 and len(at.session_state[state.UPLOADS]) == 1


def test_an_upload_run_stopped_between_two_files_logs_what_it_added(shared_ws, monkeypatch):
    """Streamlit stops a run at its next st.* call when the user clicks meanwhile.  Stopped while
    the second file was read, the first file's rows were in the workspace but not in the upload
    log, so the next run read it again and added every row twice."""
    import streamlit as st
    from streamlit.runtime.scriptrunner_utils.exceptions import RerunException
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    from app.ui import progress
    from engine.families import get

    original, fired = progress.StreamlitProgress.__call__, []

    def stop_once_file_one_is_in(self, *args, **kwargs):
        ws = st.session_state.get(state.WORKSPACE)
        if not fired and ws is not None and "upload:f1.csv:2" in ws:
            fired.append(True)
            raise RerunException(RerunData(page_script_hash=get_script_run_ctx().page_script_hash))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(progress.StreamlitProgress, "__call__", stop_once_file_one_is_in)
    at = make_app(shared_ws)
    at.run()
    goto(at, "data.py")
    files = [(f"f{k}.csv", ("family,spec,label\n" + "".join(f"nb201,{s},{60 + i}\n" for i, s in enumerate(
        get("nb201").sample(3, seed=k)))).encode(), "text/csv") for k in (1, 2)]
    at.file_uploader(key="data_uploader").set_value(files).run()
    at.run()
    assert fired and not at.exception, [e.value for e in at.exception]
    ids = at.session_state[state.WORKSPACE].frame["id"]
    assert sorted(ids[ids.str.match(r"upload:f\d")]) == [f"upload:f{k}.csv:{r}" for k in (1, 2) for r in (2, 3, 4)]
    assert [u.id_prefix for u in at.session_state[state.UPLOADS]] == ["upload:f1.csv", "upload:f2.csv"]


def test_a_benchmark_that_fails_to_load_says_why_after_the_rerun(shared_ws, monkeypatch):
    import engine.data

    def broken(name, *args, **kwargs):
        raise ValueError("labels.json: 1 of 2 label(s) are not accuracies")

    monkeypatch.setattr(engine.data, "load", broken)
    at = make_app(shared_ws)
    at.run()
    goto(at, "data.py")
    pick = at.multiselect(key="data_bench_pick")
    pick.set_value(pick.options[:1]).run()
    at.button(key="data_bench_add").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("could not be loaded: labels.json: 1 of 2 label(s)" in e.value for e in at.error)
    assert len(at.session_state[state.WORKSPACE]) == len(shared_ws)


def test_reset_forgets_the_files_still_in_the_uploader(shared_ws):
    at = make_app(shared_ws)
    at.run()
    goto(at, "data.py")
    raw = tiny_dataset(2, seed=11, labelled=False).cgs[0].to_json().encode()
    at.file_uploader(key="data_uploader").set_value(("mine.json", raw, "application/json")).run()
    assert len(at.session_state[state.WORKSPACE]) == len(shared_ws) + 1
    assert any(s.value.startswith("Added 1 architecture(s) from mine.json") for s in at.success)  # this run, not the next
    at.button(key="data_reset").click().run()
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state[state.WORKSPACE] is None or len(at.session_state[state.WORKSPACE]) == len(shared_ws)
    assert at.session_state[state.UPLOADS] == []
    assert at.file_uploader(key="data_uploader1").value in (None, [])


def test_two_sessions_do_not_share_uploads(shared_ws):
    a, b = make_app(shared_ws), make_app(shared_ws)
    a.run()
    b.run()
    goto(a, "data.py")
    raw = tiny_dataset(2, seed=11, labelled=False).cgs[0].to_json().encode()
    a.file_uploader(key="data_uploader").set_value(("only_a.json", raw, "application/json")).run()
    assert not a.exception
    assert any(i.startswith("upload:only_a.json") for i in a.session_state[state.WORKSPACE].frame["id"])
    goto(b, "data.py")
    assert b.session_state[state.WORKSPACE] is shared_ws
    assert not any(i.startswith("upload:only_a.json") for i in shared_ws.frame["id"])
    assert b.session_state[state.UPLOADS] == []


def test_finetune_k5_flow(shared_ws):
    base = TinyPredictor()
    w0 = base.w.copy()
    at = make_app(shared_ws, base)
    at.run()
    goto(at, "finetune.py")
    assert not at.exception
    at.slider(key="ft_k").set_value(5)
    at.slider(key="ft_epochs").set_value(2)
    at.button(key="ft_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    out = at.session_state[state.FINETUNE]
    assert len(out.train_ids) == 5 and len(out.eval_ids) == 35
    assert out.model is not base and np.array_equal(base.w, w0)  # the shared model is not modified
    assert [e for e in out.history if e[0] == "finetune"][-1][1:3] == (2, 2)
    table = table_with(at, "before")
    assert {"srcc", "kendall_tau", "ndcg@10", "precision@10"} <= set(table["metric"])
    assert at.get("download_button") and any(d.proto.label.startswith("Download the fine-tuned")
                                             for d in at.get("download_button"))
    # the fine-tuned scores show up on the Rankings page of this session
    goto(at, "rankings.py")
    assert not at.exception
    ranked = at.dataframe(key="rank_table").value
    assert ranked["fine-tuned score"].notna().sum() == 35


def test_finetune_uses_one_label_set_of_a_family(shared_ws):
    """A family labelled by two datasets (as NB-201 on CIFAR-10 and on ImageNet16-120) is fine-tuned
    and evaluated on one label set, never on a mix of the two."""
    f = shared_ws.frame
    labelled = np.isfinite(f["label"].to_numpy(dtype=float))
    other = labelled & (np.arange(len(f)) % 2 == 1)
    two = dataclasses.replace(shared_ws, frame=f.assign(
        dataset=np.where(other, "second_set", f["dataset"]), label=np.where(other, f["label"] - 50.0, f["label"])))
    fam = f.loc[labelled, "family"].iloc[0]
    at = make_app(two)
    at.run()
    goto(at, "finetune.py")
    at.selectbox(key="ft_family").set_value(fam).run()
    assert not at.exception, [e.value for e in at.exception]
    box = at.selectbox(key="ft_label_set")
    assert len(box.options) == 2 and any(o.startswith("second_set — ") for o in box.options)
    box.set_value("second_set").run()
    at.slider(key="ft_k").set_value(4)
    at.slider(key="ft_epochs").set_value(1)
    at.button(key="ft_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    out = at.session_state[state.FINETUNE]
    rows = two.frame.set_index("id")
    assert set(rows.loc[out.train_ids + out.eval_ids, "dataset"]) == {"second_set"}
    assert any("labels of second_set" in c.value for c in at.caption)


def test_finetune_cross_validated_with_the_real_model_shows_member_versions(shared_ws):
    import torch

    from engine.model.config import GennapeConfig
    from engine.model.predictor import GennapePredictor
    from engine.model.synthetic import synthetic_dataset

    torch.manual_seed(0)
    pred = GennapePredictor(GennapeConfig.tiny()).fit(*synthetic_dataset(24, seed=0))
    at = make_app(shared_ws, pred)
    at.run()
    goto(at, "finetune.py")
    assert at.radio(key="ft_selection").value == "auto"  # the model's own setting
    at.slider(key="ft_k").set_value(8)
    at.slider(key="ft_epochs").set_value(2)
    at.radio(key="ft_selection").set_value("cv")
    at.button(key="ft_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    out = at.session_state[state.FINETUNE]
    assert out.model.model_card["finetune"]["selection"] == "cv"
    assert pred.config.finetune.selection == "auto" and "finetune" not in pred.model_card
    members = table_with(at, "version")
    assert set(members["member"]) == set(out.model.weights)
    assert {"out-of-fold τ, pre-trained", "out-of-fold τ, fine-tuned"} <= set(members.columns)
    kept = set(out.model.model_card["finetune"]["kept_pretrained"])
    assert {m for m, v in zip(members["member"], members["version"]) if v == "pre-trained"} == kept & set(members["member"])
    assert any("held-out pairs" in c.value for c in at.caption)


def finetune_labels_form(ws) -> AppTest:
    """The Fine-tune page on family ``custom``, in the *Type or upload labels* mode."""
    at = make_app(ws)
    at.run()
    goto(at, "finetune.py")
    at.selectbox(key="ft_family").set_value("custom").run()
    at.segmented_control(key="ft_label_mode").set_value("Type or upload labels").run()
    assert not at.exception
    return at


def test_finetune_with_typed_labels(shared_ws):
    at = finetune_labels_form(shared_ws)
    at.file_uploader(key="ft_labels_csv").set_value(
        ("labels.csv", b"id,label\nsample:custom:a0,91.5\nnope,50\nsample:custom:a1,140\nsample:custom:a2,1,2\n",
         "text/csv")).run()
    assert not at.exception
    assert at.session_state["ft_typed_labels"] == {"sample:custom:a0": 91.5}
    problems = table_with(at, "reason")
    assert list(problems["row"]) == [3, 4, 5] and list(problems["field"]) == ["id", "label", ""]
    assert "no architecture 'nope'" in problems["reason"].iloc[0] and "outside 0-100" in problems["reason"].iloc[1]
    assert "has 3 fields" in problems["reason"].iloc[2]
    # the family's count already includes the uploaded label in the same interaction
    fam = at.selectbox(key="ft_family")
    assert fam.format_func("custom").startswith("custom — 41 labelled")  # 40 known + the uploaded one


def test_finetune_labels_csv_reads_fractions_and_other_label_columns(shared_ws):
    at = finetune_labels_form(shared_ws)
    rows = "".join(f"sample:custom:a{i},0.{90 - i}\n" for i in range(3))
    at.file_uploader(key="ft_labels_csv").set_value(("l.csv", ("id,val_acc\n" + rows).encode(), "text/csv")).run()
    assert not at.exception
    assert at.session_state["ft_typed_labels"] == pytest.approx({f"sample:custom:a{i}": 90.0 - i for i in range(3)})
    assert any("read as fractions" in w.value for w in at.warning)
    # a label cleared afterwards (in the table) stays cleared: the file, still in the uploader, is applied once
    del at.session_state["ft_typed_labels"]["sample:custom:a0"]
    at.run()
    assert "sample:custom:a0" not in at.session_state["ft_typed_labels"] and not at.exception


def test_finetune_with_two_labels_and_the_default_k_keeps_labels_back(shared_ws):
    f = shared_ws.frame
    two = dataclasses.replace(shared_ws, frame=f.assign(label=np.where(np.arange(len(f)) < 2, f["label"], np.nan)))
    at = make_app(two)
    at.run()
    goto(at, "finetune.py")
    assert not at.exception, [e.value for e in at.exception]
    assert {m.label: m.value for m in at.metric}["k"] == "2"
    assert any("none is left to measure" in c.value for c in at.caption)
    at.slider(key="ft_epochs").set_value(2)
    at.button(key="ft_run").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert len(at.session_state[state.FINETUNE].train_ids) == 2
    assert not any("labels are equal" in w.value for w in at.warning)
    same = dataclasses.replace(shared_ws, frame=f.assign(label=np.where(np.isfinite(f["label"]), 75.0, np.nan)))
    at = make_app(same)
    at.run()
    goto(at, "finetune.py")
    assert any("All 40 labels are equal (75 %)" in w.value for w in at.warning)
    # 40 labels: the proposed k leaves a third of them, rounded up (14), to evaluate on
    at = make_app(shared_ws)
    at.run()
    goto(at, "finetune.py")
    assert at.slider(key="ft_k").value == 26 and not any("none is left" in c.value for c in at.caption)


def test_report_download_contains_figures(shared_ws):
    from engine.report import external_references

    at = make_app(shared_ws)
    at.run()
    goto(at, "report.py")
    at.button(key="report_build").click().run()
    assert not at.exception and not at.error
    doc = at.session_state[state.REPORT][0].decode()
    assert doc.count('class="plotly-graph-div"') >= 5  # map, scores, pred-vs-true, composition, entropy
    assert doc.count("Plotly.newPlot") >= 5 and external_references(doc) == []
    assert doc.count("plotly.js v") == 1  # plotly.js embedded exactly once
    assert "Data and label provenance" in doc and "tinybench" in doc and "Glossary" in doc
    assert any(d.proto.label == "Download the report (HTML)" for d in at.get("download_button"))
    # the data change after the report was built: it is flagged as earlier, not offered as current
    at.session_state[state.WORKSPACE] = studio.without_prefixes(shared_ws, ["upload"])
    at.run()
    assert not at.exception and any("changed since this report was built" in w.value for w in at.warning)
    assert [d.proto.label for d in at.get("download_button")] == ["Download the earlier report (HTML)"]


def test_default_workspace_file_loads(tmp_path, monkeypatch, shared_ws):
    """Without a session workspace the app loads the shipped workspace file (here a tiny one)."""
    path = tmp_path / "default_workspace.npz"
    studio.save_workspace(shared_ws, path)
    monkeypatch.setenv("GENNAPE_STUDIO_WORKSPACE", str(path))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.run()
    assert not at.exception
    assert {m.label: m.value for m in at.metric}["architectures"] == f"{len(shared_ws):,}"
    goto(at, "embedding_map.py")
    assert not at.exception and not at.info


def test_embedding_map_colours_by_task(shared_ws):
    import base64
    import json

    mixed = with_ofa(shared_ws)
    at = make_app(mixed)
    at.run()
    goto(at, "embedding_map.py")
    at.selectbox(key="map_colour").set_value("Task").run()
    assert not at.exception, [e.value for e in at.exception]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    names = {tr.get("name") for tr in spec["data"]}
    assert {"ImageNet", "unknown"} <= names  # one legend entry per task (the tiny families have none)
    at.selectbox(key="map_colour").set_value("True label, percentile in its label set").run()
    assert not at.exception, [e.value for e in at.exception]
    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    colours = [(tr.get("marker") or {}).get("color") for tr in spec["data"]]
    coloured = [c for c in colours if isinstance(c, dict) and "bdata" in c]  # plotly's typed arrays
    values = np.concatenate([np.frombuffer(base64.b64decode(c["bdata"]), dtype=c["dtype"]) for c in coloured])
    assert values.size and 0 < values.min() and values.max() == 100.0  # percentiles of the labelled rows


def test_rankings_rank_by_a_member(shared_ws):
    at = make_app(shared_ws)
    at.run()
    goto(at, "rankings.py")
    assert not at.exception, [e.value for e in at.exception]
    box = at.selectbox(key="rank_by")
    assert box.options[0] == "score" and set(shared_ws.member_columns) >= set(box.options[1:]) and len(box.options) > 1
    member = box.options[-1]
    box.set_value(member).run()
    assert not at.exception, [e.value for e in at.exception]
    ranked = at.dataframe(key="rank_table").value
    vals = ranked[member].to_numpy(dtype=float)
    vals = vals[np.isfinite(vals)]
    assert np.all(np.diff(vals) <= 0)  # best first by the chosen member
    expected = studio.ranking_metrics(shared_ws, column=member)
    shown = table_with(at, "srcc")
    np.testing.assert_allclose(shown["srcc"].to_numpy(float), expected["srcc"].to_numpy(float))


def test_rankings_offer_the_reference_population_that_reproduces_their_scores(shared_ws):
    """The app scores every row on one fixed reference population; the page says so and offers it
    as JSONL for `python -m engine predict --reference` (without it the CLI ranks a file on itself)."""
    ids = shared_ws.frame["id"].tolist()[:10]
    ws = dataclasses.replace(shared_ws, meta={**shared_ws.meta, "reference_ids": ids})
    at = make_app(ws)
    at.run()
    goto(at, "rankings.py")
    assert not at.exception, [e.value for e in at.exception]
    assert any("--reference gennape_reference.jsonl" in m.value for m in at.markdown)
    assert any(d.proto.label == "Download the reference population (JSONL)" for d in at.get("download_button"))
    lines = [json.loads(x) for x in studio.reference_jsonl(ws).decode().splitlines()]
    assert [r["id"] for r in lines] == ids


def test_ranking_metrics_unknown_column(shared_ws):
    with pytest.raises(ValueError, match="no column 'member_nope'"):
        studio.ranking_metrics(shared_ws, column="member_nope")


def test_home_counts_architectures_by_task_and_family(shared_ws):
    mixed = with_ofa(shared_ws)
    at = make_app(mixed)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    counts = next(d.value for d in at.dataframe if d.value.index.nlevels == 2)  # (task, family) x source
    tasks = studio.row_tasks(mixed)
    assert counts.loc[("ImageNet", "ofa_pn")].sum() == int((tasks == "ImageNet").sum()) > 0
    assert int(counts.to_numpy().sum()) == len(mixed)


def test_home_shows_zero_shot_evidence_from_the_model_card(shared_ws):
    pred = TinyPredictor()
    lofo = [{"target": "famA", "method": m, "srcc": s, "ndcg@10": n}
            for m, s, n in (("score", 0.7, 0.95), ("flops_baseline", 0.6, 0.9), ("params_baseline", 0.65, 0.92))]
    pred.model_card = {"model": "tiny", "ensemble_selection": {"lofo_member_metrics": lofo},
                       "zoo_check": {"metrics": {"score": {"srcc": 0.4, "ndcg10": 0.8},
                                                 "FLOPs": {"srcc": 0.5, "ndcg10": 0.9},
                                                 "params": {"srcc": 0.3, "ndcg10": 0.7}}}}
    at = make_app(shared_ws, predictor=pred)
    at.run()
    assert not at.exception, at.exception
    table = table_with(at, "beats_both")
    assert list(table["target"]) == ["famA", "zoo"] and list(table["beats_both"]) == [True, False]
    assert list(table.columns[:3]) == ["check", "target", "beats_both"]  # the verdict next to the target
    assert any("rank by FLOPs as well" in c.value for c in at.caption)
    # how the score is made, in words, from the card's members and in-domain gate
    pred.model_card = {**pred.model_card, "members_in_score": ["graph_stats", "flops_baseline"],
                       "in_domain_gate": {"adopted": True, "in_domain_members": ["cl_fcm", "cl"]}}
    at = make_app(shared_ws, predictor=pred)
    at.run()
    text = " ".join(m.value for m in at.markdown)
    assert "**How the score is made.**" in text and "learned members cl_fcm, cl" in text
    assert "`members_in_score`" not in text and "`in_domain_gate`" not in text


@pytest.fixture(scope="module")
def zoo_ws(shared_ws):
    from engine.data import load

    ds = load("zoo_imagenet", with_cgs=False)
    part = studio.part_from_dataset(ds, source="benchmark", prefix="zoo_imagenet", predictor=TinyPredictor())
    return studio.extend(shared_ws, part)


@pytest.mark.parametrize("page", PAGES, ids=[p.url_path for p in PAGES])
def test_every_page_renders_with_the_hand_designed_zoo_selected(page, zoo_ws):
    """The zoo's family ("zoo") is not a search-space family: every page must cope with it."""
    rows = zoo_ws.frame[zoo_ws.frame["family"] == "zoo"]
    assert len(rows) == 31 and np.isfinite(rows["label"].to_numpy(dtype=float)).all()
    at = make_app(zoo_ws, **{state.SELECTED: rows["id"].iloc[11]})  # resnet50
    at.run()
    goto(at, page.script)
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_example_files_load_through_the_upload_path(shared_ws):
    assert list(studio.demo_files()) == list(studio.DEMO_FILES)  # every example ships
    at = make_app(shared_ws)
    at.run()
    goto(at, "data.py")
    assert at.button(key="data_example_go").disabled  # nothing chosen yet
    n0 = len(shared_ws)
    for name, rows in (("nb201_cifar10_60.csv", 60), ("small_cnn.onnx", 1)):
        at.selectbox(key="data_example_pick").set_value(name).run()
        at.button(key="data_example_go").click().run()
        assert not at.exception, [e.value for e in at.exception]
        added = at.session_state[state.WORKSPACE].frame
        added = added[added["id"].str.startswith(f"upload:{name}:")]
        assert len(added) == rows and np.isfinite(added["score"]).all()
    assert [u.filename for u in at.session_state[state.UPLOADS]] == ["nb201_cifar10_60.csv", "small_cnn.onnx"]
    assert len(at.session_state[state.WORKSPACE]) == n0 + 61


def test_finetune_on_the_hand_designed_zoo_with_few_held_out(zoo_ws):
    """31 labelled networks, k = 25: fewer held-out networks than the evaluation slider's minimum."""
    at = make_app(zoo_ws)
    at.run()
    goto(at, "finetune.py")
    at.selectbox(key="ft_family").set_value("zoo").run()
    at.slider(key="ft_k").set_value(25).run()
    at.slider(key="ft_epochs").set_value(2).run()
    at.button(key="ft_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    out = at.session_state[state.FINETUNE]
    assert len(out.train_ids) == 25 and len(out.eval_ids) == 6  # every other zoo network is held out
    assert not set(out.train_ids) & set(out.eval_ids)


@pytest.mark.parametrize("script", ["clusters.py", "architecture.py", "rankings.py", "embedding_map.py", "home.py"])
def test_pages_show_novelty_when_the_model_has_a_domain_reference(script, shared_ws):
    f = shared_ws.frame
    ws = dataclasses.replace(shared_ws, frame=f.assign(novelty=np.linspace(0.1, 2.5, len(f))))
    far = ws.frame["id"].iloc[-1]
    at = make_app(ws, **{state.SELECTED: far, "clusters_arch_id": far})
    at.run()
    goto(at, script)
    assert not at.exception, [e.value for e in at.exception]
    captions = " ".join(c.value for c in at.caption)
    if script == "clusters.py":
        assert any(m.label == "outside the training domain" for m in at.metric)
        assert table_with(at, "novelty")["id"].iloc[0] == far  # farthest first
        assert "Outside the training domain" in captions
    if script in ("architecture.py", "embedding_map.py"):
        assert "Outside the training domain" in captions  # the selected architecture's facts
    if script == "rankings.py":
        assert "novelty" in table_with(at, "score").columns
    if script == "home.py":
        outside = int((ws.frame["novelty"] > 1).sum())
        assert f"{outside:,} of {len(ws):,}" in " ".join(m.value for m in at.caption)


def test_rankings_explain_the_in_domain_gate_of_the_model_card(shared_ws):
    fam = shared_ws.frame["family"].iloc[0]
    card = {"source_families": [fam], "in_domain_gate": {"adopted": True, "in_domain_members": ["cl_fcm", "cl"]}}
    tiny = TinyPredictor()
    tiny.model_card = card  # the page reads the loaded model's card
    at = make_app(shared_ws, predictor=tiny)
    at.run()
    goto(at, "rankings.py")
    assert not at.exception, [e.value for e in at.exception]
    assert any("scored with its learned members (cl_fcm, cl)" in i.value for i in at.info)


def test_rankings_show_the_labels_task_first_when_tasks_are_mixed(shared_ws):
    """With CIFAR-10 labels and both CIFAR-10 and ImageNet families in the workspace (as in the
    shipped default), the ranking opens on the CIFAR-10 rows (before: 72 OFA networks, scored on
    the CIFAR-10 scale, headed it); *all tasks* brings the others back, with the warning."""
    tiny = TinyPredictor()
    tiny.model_card = {**tiny.model_card, "label_provenance": [{"dataset": "CIFAR-10"}]}
    mixed = with_ofa(shared_ws, "nb201")
    at = make_app(mixed, predictor=tiny)
    at.run()
    goto(at, "rankings.py")
    assert not at.exception, [e.value for e in at.exception]
    box = at.selectbox(key="rank_task")
    assert box.value == "CIFAR-10" and box.options == ["all tasks", "CIFAR-10", "ImageNet"]
    ranked = at.dataframe(key="rank_table").value
    assert set(ranked["family"]) == {"nb201"} and set(ranked["task"]) == {"CIFAR-10"}
    expected = ranked["score"].rank(ascending=False, method="min").astype(int)  # positions in this view (ties share)
    assert ranked["rank"].iloc[0] == 1 and list(ranked["rank"]) == list(expected)
    assert not any("ImageNet networks" in w.value for w in at.warning)
    box.set_value("all tasks").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.dataframe(key="rank_table").value) == len(mixed)
    assert any("ofa_pn are ImageNet networks" in w.value for w in at.warning)


def test_architecture_suggests_the_top_of_the_labels_task(shared_ws):
    card = {**shared_ws.model_card, "label_provenance": [{"dataset": "CIFAR-10"}]}
    mixed = with_ofa(shared_ws, "nb201", model_card=card)
    f = mixed.frame
    at = make_app(mixed)
    at.run()
    goto(at, "architecture.py")
    assert not at.exception, [e.value for e in at.exception]
    best = f[f["family"] == "nb201"].nlargest(1, "score")["id"].iloc[0]
    button = at.button(key="arch_show_top")
    assert button.label == f"Show the top-scored CIFAR-10 architecture ({best})"
    button.click().run()
    assert not at.exception and at.session_state[state.SELECTED] == best
    # with novelty known, the suggestion is the top-scored one inside the training domain
    nb = f[f["family"] == "nb201"].sort_values("score", ascending=False)
    novelty = pd.Series(0.5, index=f.index)
    novelty[nb.index[0]] = 3.0  # the best-scored one lies outside
    at = make_app(dataclasses.replace(mixed, frame=f.assign(novelty=novelty)))
    at.run()
    goto(at, "architecture.py")
    assert at.button(key="arch_show_top").label == (f"Show the top-scored CIFAR-10 architecture inside the training "
                                                    f"domain ({nb['id'].iloc[1]})")


def test_architecture_page_builds_a_rows_dataset_network(shared_ws):
    """An NB-201 ImageNet16-120 row is drawn as the 16x16, 120-class network it was scored as."""
    from engine.data.dataset import ArchDataset
    from engine.data.provenance import Provenance
    from engine.families import get

    prov = Provenance(dataset="ImageNet16-120", metric="validation accuracy", split="validation", source="unit test")
    ds = ArchDataset.from_specs("nb201_in16", "nb201", get("nb201").sample(2, seed=3), [30.0, 31.0], prov,
                                cg_options={"num_classes": 120, "input_hw": 16})
    ws = studio.concat_parts([shared_ws, studio.part_from_dataset(ds, source="benchmark", prefix="in16")])
    arch = ws.frame["id"].iloc[-1]
    at = make_app(ws, **{state.SELECTED: arch, "arch_id": arch})
    at.run()
    goto(at, "architecture.py")
    assert not at.exception, [e.value for e in at.exception]
    expected = studio.cg_of(ws, arch)
    assert studio.cg_io(expected) == ((16, 16), (1, 1, 120))
    assert {m.label: m.value for m in at.metric}["MFLOPs (CG)"] == f"{expected.flops / 1e6:,.2f}"
    assert expected.flops == ws.row(arch)["flops"]


def test_architecture_compare_table_is_formatted(shared_ws):
    f = shared_ws.frame
    a, b = f["id"].iloc[0], f.loc[~np.isfinite(f["label"]), "id"].iloc[0]  # b is unlabelled
    at = make_app(shared_ws, **{state.SELECTED: a, "arch_id": a, state.COMPARE: b})
    at.run()
    goto(at, "architecture.py")
    at.segmented_control(key="arch_view").set_value("Compare").run()
    assert not at.exception, [e.value for e in at.exception]
    stats = table_with(at, b).set_index("")
    assert stats.loc["true label", b] == "—" and stats.loc["true label", a] == f"{f['label'].iloc[0]:.4g}"
    assert stats.loc["GENNAPE score", a] == f"{f['score'].iloc[0]:.4g}"
    assert not stats.apply(lambda col: col.str.contains("nan|e\\+", case=False)).any().any()


def test_rankings_warn_when_families_of_another_task_are_ranked(shared_ws):
    tiny = TinyPredictor()
    tiny.model_card = {**tiny.model_card, "label_provenance": [{"dataset": "CIFAR-10"}]}
    at = make_app(shared_ws, predictor=tiny)
    at.run()
    goto(at, "rankings.py")
    assert not at.exception, [e.value for e in at.exception]
    assert not any("ImageNet networks" in w.value for w in at.warning)
    # the labelled rows (CIFAR-10 provenance) are shown first; with every task, the uploaded graphs,
    # which take 16x16 inputs (not CIFAR-10's 32x32), are noted
    assert at.selectbox(key="rank_task").value == "CIFAR-10" and not at.warning
    at.selectbox(key="rank_task").set_value("all tasks").run()
    assert any("given as graphs take 16×16 inputs and 10 outputs" in w.value for w in at.warning)
    mixed = with_ofa(shared_ws)
    at = make_app(mixed, predictor=tiny)
    at.run()
    goto(at, "rankings.py")
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="rank_task").set_value("all tasks").run()
    assert any("ofa_pn are ImageNet networks" in w.value for w in at.warning)


def test_a_bad_checkpoint_folder_is_a_message_not_a_crash(shared_ws, tmp_path, monkeypatch):
    from app.ui import cached

    monkeypatch.setenv("GENNAPE_STUDIO_CHECKPOINT", str(tmp_path / "missing"))
    cached.default_predictor.clear()
    try:
        pred, why = cached.default_predictor()
        assert pred is None and why.startswith(f"the checkpoint {tmp_path / 'missing'} could not be loaded")
        at = AppTest.from_file(APP, default_timeout=TIMEOUT)
        at.session_state[state.WORKSPACE] = shared_ws  # no injected model: the page asks the cache
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("No GENNAPE model is loaded: the checkpoint" in w.value for w in at.warning)
    finally:
        cached.default_predictor.clear()
