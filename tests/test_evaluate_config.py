"""Evaluation config: loading, defaults, experiment expansion and path-precise errors."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from edits import DELETE, set_in

from engine.evaluate.config import ConfigError, EvalConfig, load_config

ROOT = Path(__file__).resolve().parents[1]

BASE = {
    "name": "t",
    "datasets": {
        "a": {"load": "nb101_naslib"},
        "b": {"load": "nb201_cifar10", "shifts": ["b2"]},
        "b2": {"load": "nb201_cifar100", "shift_of": "b"},
        "c": {"load": "nb301_naslib"},
    },
    "experiments": [{"name": "paper", "source": ["a"], "targets": ["b", "c"]}],
    "lofo": {"families": ["a", "b", "c"]},
    "k_sweep": {"experiment": "paper", "ks": [0, 10, 20], "seeds": [0, 1]},
}


def _with(path: str, value):
    return set_in(copy.deepcopy(BASE), path.split("."), value)


_DELETE = DELETE


def test_shipped_configs_load():
    for name in ("evaluate_default.json", "evaluate_smoke.json", "evaluate_pairs_across_families.json"):
        cfg = load_config(ROOT / "configs" / name)
        assert cfg.all_experiments(), name
        assert cfg.to_dict()["name"] == cfg.name
    default = load_config(ROOT / "configs" / "evaluate_default.json")
    names = [e.name for e in default.all_experiments()]
    assert names == ["paper", "lofo-nb101", "lofo-nb201", "lofo-nb301"]
    assert default.finetune.k == 50 and default.finetune.seeds == (0, 1, 2, 3, 4)
    assert default.k_sweep.ks == (0, 10, 20, 50, 100)
    paper = default.all_experiments()[0]
    assert default.targets_of(paper) == ["nb201", "nb201_c100", "nb201_in16", "nb301"]
    assert default.needs_shared_data() == ["nb101", "nb301"]
    smoke = load_config(ROOT / "configs" / "evaluate_smoke.json")
    assert smoke.needs_shared_data() == []  # the smoke run needs only embedded data
    assert smoke.model.build(0, 1).encoder.hidden == 16  # tiny preset


def test_lofo_expansion_and_targets():
    cfg = EvalConfig.from_dict(BASE)
    exps = {e.name: e for e in cfg.all_experiments()}
    assert exps["lofo-b"].source == ("a", "c") and exps["lofo-b"].targets == ("b",)
    assert cfg.targets_of(exps["lofo-b"]) == ["b", "b2"]
    assert cfg.targets_of(exps["lofo-a"]) == ["a"]
    assert exps["lofo-a"].protocol == "lofo" and exps["paper"].protocol == "paper"
    model = cfg.model.build(seed=7, threads=2)
    assert model.train.seed == 7 and model.train.threads == 2


@pytest.mark.parametrize("path,value,needle", [
    ("name", 3, "config.name: expected a non-empty string"),
    ("name", "../x", "config.name"),
    ("datasets.a.load", "nb999", "config.datasets.a.load: unknown dataset 'nb999'"),
    ("datasets.a.max_train", "10", "config.datasets.a.max_train: expected an integer"),
    ("datasets.a.bogus", 1, "config.datasets.a: unknown key 'bogus'"),
    ("datasets.b.shifts", ["zz"], "config.datasets.b.shifts: unknown dataset key 'zz'"),
    ("datasets.b2.shift_of", None, "listed as a shift of 'b'"),
    ("experiments.0.source", ["q"], "config.experiments[0].source[0]: unknown dataset key 'q'"),
    ("experiments.0.source", ["b2"], "is a shift dataset"),
    ("experiments.0.targets", ["a"], "both a source and a target"),
    ("experiments.0.targets", [], "expected a non-empty list"),
    ("experiments.0.protocol", "paperr", "config.experiments[0].protocol: 'paperr' is not a protocol"),
    ("lofo.families", ["a"], "at least 2 families"),
    ("k_sweep.experiment", "nope", "config.k_sweep.experiment: unknown experiment 'nope'"),
    ("k_sweep.ks", [0, 1], "k = 1 cannot fine-tune"),
    ("k_sweep.seeds", [0, 0], "duplicate entries"),
    ("finetune", {"k": 1}, "config.finetune.k: fine-tuning needs k >= 2"),
    ("finetune", {"k": "50"}, "config.finetune.k: expected an integer"),
    ("model", {"overrides": {"encoder.nope": 1}}, "config.model.overrides"),
    ("model", {"overrides": {"train.seed": 3}}, "set by the run"),
    ("model", {"preset": "huge"}, "config.model.preset"),
    ("source_test_fraction", 1.5, "config.source_test_fraction"),
    ("threads", 0, "config.threads: expected an integer >= 1"),
    ("plots", "yes", "config.plots: expected true or false"),
    ("table1", {"datasets": ["x"]}, "config.table1.datasets[0]: unknown dataset 'x'"),
    ("surprise", 1, "config: unknown key 'surprise'"),
    ("datasets", _DELETE, "config: missing required key 'datasets'"),
])
def test_bad_configs_name_the_path(path, value, needle):
    with pytest.raises(ConfigError) as err:
        EvalConfig.from_dict(_with(path, value))
    assert needle in str(err.value)


def test_duplicate_experiment_names_rejected():
    d = copy.deepcopy(BASE)
    d["experiments"].append({"name": "lofo-a", "source": ["c"], "targets": ["a"]})
    with pytest.raises(ConfigError, match="unique"):
        EvalConfig.from_dict(d)


def test_load_config_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_config(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{\"name\": ")
    with pytest.raises(ConfigError, match=r"bad.json: not valid JSON \(line 1"):
        load_config(bad)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(_with("finetune", {"seeds": "0"})))
    with pytest.raises(ConfigError, match=r"wrong.json: config.finetune.seeds: expected a list"):
        load_config(wrong)


def test_cli_reports_bad_config_with_exit_code_2(tmp_path, capsys):
    from engine.__main__ import main

    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(_with("datasets.a.load", "nope")))
    assert main(["evaluate", "--config", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert "config.datasets.a.load" in err and err.startswith("error:")
    assert main(["evaluate"]) == 2


def test_the_evaluate_package_runs_as_the_engine_evaluate_command():
    """`python -m engine.evaluate` failed with "is a package and cannot be directly executed"."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "engine.evaluate", "--help"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert out.returncode == 0 and "usage: python -m engine evaluate" in out.stdout
    # its modules are not commands: they say so instead of exiting silently with 0
    out = subprocess.run([sys.executable, "-m", "engine.evaluate.run"], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert out.returncode == 1 and "run `python -m engine evaluate`" in out.stderr
