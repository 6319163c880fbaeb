"""The Search page (AppTest): run a small search, see the Pareto plot, the diff and the downloads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app.ui import state
from engine import families

ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
APP = str(ROOT / "app" / "streamlit_app.py")


class AbsPredictor:
    """Deterministic stand-in exposing the absolute ``cl_fcm_t`` column the search reads."""

    model_card = {"name": "abs test predictor", "id": "abs-0"}

    def predict(self, cgs, callback=None):
        acc = np.array([80 + 2 * np.log10(c.params + 1) - 1e-9 * c.flops for c in cgs])
        return pd.DataFrame({"score": acc, "flops": [c.flops for c in cgs], "params": [c.params for c in cgs],
                             "cl_fcm_t": acc})


def search_app(predictor, with_upload: bool = True) -> AppTest:
    """The app on the Search page with a tiny workspace and ``predictor``."""
    from test_app_engine import tiny_workspace

    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[state.WORKSPACE] = tiny_workspace(12, with_upload=with_upload)
    at.session_state[state.PREDICTOR] = predictor
    at.run()
    at.switch_page("app_pages/search.py")
    return at.run()


@pytest.fixture()
def app():
    return search_app(AbsPredictor())


def test_search_page_runs_and_shows_results(app):
    at = app
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Search"
    at.number_input(key="search_budget").set_value(16)
    at.button(key="search_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["evaluated"] == "16"
    assert "nodes added" in metrics and "FLOPs change" in metrics
    assert len(at.get("plotly_chart")) == 1
    found = next(d.value for d in at.dataframe if "on_pareto" in d.value.columns)
    assert found["on_pareto"].any() and found["arch"].str.startswith("|").all()  # NB-201 arch strings
    assert any(b.label == "Prepare ONNX" for b in at.button)
    at.button(key="search_onnx").click().run()
    assert not at.exception
    assert not at.warning, [w.value for w in at.warning]


def test_search_page_session_upload_uses_cg_mutations(app):
    at = app
    at.segmented_control(key="search_source").set_value("Session architecture").run()
    assert not at.exception, [e.value for e in at.exception]
    at.number_input(key="search_budget").set_value(8)
    at.button(key="search_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("space: cg" in c.value for c in at.caption)


def test_bad_spec_is_a_warning_not_a_crash(app):
    at = app
    at.text_area(key="search_spec_nb201").set_value("not an arch").run()
    at.button(key="search_run").click().run()
    assert not at.exception
    assert any("not usable" in w.value for w in at.warning)


def test_predictor_without_cl_fcm_t_falls_back_to_score():
    from test_app_engine import TinyPredictor

    at = search_app(TinyPredictor(), with_upload=False)
    at.number_input(key="search_budget").set_value(8)
    at.button(key="search_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Scored by the base model, column `score`" in c.value for c in at.caption)


def test_search_notes_a_start_sized_for_another_task():
    """With CIFAR-10 labels, an NB-201 start gets no scale note; a 16x16 uploaded graph does."""

    class CifarPredictor(AbsPredictor):
        model_card = {**AbsPredictor.model_card, "label_provenance": [{"dataset": "CIFAR-10"}]}

    at = search_app(CifarPredictor())
    at.number_input(key="search_budget").set_value(8)
    at.button(key="search_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("scale of the checkpoint" in i.value for i in at.info)
    at.segmented_control(key="search_source").set_value("Session architecture").run()
    at.button(key="search_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    note = next(i.value for i in at.info if "scale of the checkpoint" in i.value)
    assert "1 network given as a graph takes 16×16 inputs and 10 outputs" in note and "read the scores as a ranking" in note


def test_search_from_a_session_row_keeps_its_dataset_network():
    """A session row of NB-201's ImageNet16-120 set is searched as that network (16x16 input): the
    start's FLOPs are the row's, not the CIFAR-10 network's."""
    from test_app_engine import tiny_workspace

    from engine import studio
    from engine.data.dataset import ArchDataset
    from engine.data.provenance import Provenance
    from engine.families import get

    prov = Provenance(dataset="ImageNet16-120", metric="validation accuracy", split="validation", source="unit test")
    ds = ArchDataset.from_specs("nb201_in16", "nb201", get("nb201").sample(2, seed=5), [30.0, 31.0], prov,
                                cg_options={"num_classes": 120, "input_hw": 16})
    ws = studio.concat_parts([tiny_workspace(12), studio.part_from_dataset(ds, source="benchmark", prefix="in16")])
    arch = ws.frame["id"].iloc[-1]
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state[state.WORKSPACE] = ws
    at.session_state[state.PREDICTOR] = AbsPredictor()
    at.session_state[state.SELECTED] = arch
    at.run()
    at.switch_page("app_pages/search.py")
    at.run()
    at.segmented_control(key="search_source").set_value("Session architecture").run()
    assert at.selectbox(key="search_ws_arch").value == arch
    at.number_input(key="search_budget").set_value(8)
    at.button(key="search_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["start MFLOPs"] == f"{ws.row(arch)['flops'] / 1e6:,.1f}"
    assert any("space: spec" in c.value for c in at.caption)


@pytest.mark.parametrize("fam", ["hiaml", "nb101"])
def test_each_familys_example_spec_runs(app, fam):
    """The spec box's example (JSON text) starts a search; NB-101's is not a bare input -> output cell."""
    at = app
    at.selectbox(key="search_family").set_value(fam).run()
    text = at.text_area(key=f"search_spec_{fam}").value
    assert families.get(fam).to_cg(families.get(fam).parse(text)).num_nodes > 10
    at.number_input(key="search_budget").set_value(8)
    at.button(key="search_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not any("not usable" in w.value for w in at.warning), [w.value for w in at.warning]
    assert {m.label: m.value for m in at.metric}["evaluated"] == "8"


RESULT = "search_page.result"  # the page's session-state key of its last run


def test_cg_operators_do_not_stop_a_spec_search_and_a_new_run_compares_its_own_best(app):
    """Unticking a CG operator refused every NB-201 spec search; after a second run the compare
    section kept the first run's choice instead of the new best."""
    at = app
    at.multiselect(key="search_ops").set_value(["kernel"]).run()
    at.number_input(key="search_budget").set_value(16)
    at.button(key="search_run").click().run()
    assert not at.exception and not at.warning, [w.value for w in at.warning]
    first = at.session_state[RESULT][0]
    pick = next(s for s in at.selectbox if s.key.startswith("search_pick"))
    pick.set_value(pick.options[-1]).run()  # look at another candidate of the first run
    at.slider(key="search_target").set_value(0.4)
    at.button(key="search_run").click().run()
    assert not at.exception
    result = at.session_state[RESULT][0]
    assert result is not first
    pick = next(s for s in at.selectbox if s.key.startswith("search_pick"))
    assert int(pick.value) == result.best().uid


def test_no_cg_operator_is_a_warning(app):
    at = app
    at.segmented_control(key="search_source").set_value("Session architecture").run()
    at.multiselect(key="search_ops").set_value([]).run()
    at.button(key="search_run").click().run()
    assert not at.exception
    assert any("at least one CG operator" in w.value for w in at.warning)
    assert not any(m.label == "evaluated" for m in at.metric)


class ShiftedPredictor(AbsPredictor):
    """AbsPredictor plus 5 points: tells which model scored a search."""

    def predict(self, cgs, callback=None):
        out = super().predict(cgs)
        out["cl_fcm_t"] += 5.0
        return out


def test_search_can_score_with_the_sessions_fine_tuned_model():
    from engine.studio import FinetuneOutcome

    at = search_app(AbsPredictor())
    assert not any(t.key == "search_use_finetuned" for t in at.toggle)  # no fine-tuned model yet
    empty = np.zeros(0)
    at.session_state[state.FINETUNE] = FinetuneOutcome(ShiftedPredictor(), ["a"] * 20, [], empty, empty, empty, {}, {},
                                                       [], {"family": "nb201"}, 1.0)
    at.run()
    at.number_input(key="search_budget").set_value(8)
    at.button(key="search_run").click().run()
    base_start = at.session_state["search_page.result"][0].start.score
    at.toggle(key="search_use_finetuned").set_value(True).run()
    assert at.toggle(key="search_use_finetuned").label.startswith("Score with the fine-tuned model (fine-tuned on 20 nb201")
    at.button(key="search_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["search_page.result"][0].start.score == pytest.approx(base_start + 5.0)
    assert any(c.value.startswith("Scored by the fine-tuned model") for c in at.caption)
