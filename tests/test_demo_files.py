"""The example inputs in assets/demo: each loads without a problem, works with the CLI, and
``python -m engine demo-files`` reproduces the folder byte for byte."""

from __future__ import annotations

import pytest

from engine import studio
from engine.__main__ import main
from engine.model import default_checkpoint_dir


@pytest.mark.parametrize("name", list(studio.DEMO_FILES))
def test_example_parses_without_problems(name):
    path = studio.demo_files()[name]
    outcome = studio.parse_upload(path.read_bytes(), name)
    assert outcome.ok_rows > 0 and outcome.errors.empty, outcome.errors
    ds = outcome.dataset
    expect_labels = name in ("nb201_cifar10_60.csv", "hand_designed_cgs.jsonl")
    assert (ds.num_labelled == len(ds)) if expect_labels else ds.num_labelled == 0


def test_demo_files_command_reproduces_the_shipped_folder(tmp_path):
    assert main(["demo-files", "--output", str(tmp_path)]) == 0
    for name, path in studio.demo_files().items():
        assert (tmp_path / name).read_bytes() == path.read_bytes(), f"{name} differs from a fresh build"


@pytest.mark.skipif(not (default_checkpoint_dir() / "weights.safetensors").exists(), reason="no shipped checkpoint")
def test_cli_predict_on_the_examples(tmp_path):
    import pandas as pd

    for name, rows in (("mixed_specs.jsonl", 24), ("hand_designed_cgs.jsonl", 6), ("small_cnn.onnx", 1)):
        out = tmp_path / f"{name}.csv"
        assert main(["predict", "--input", str(studio.demo_files()[name]), "--output", str(out)]) == 0
        frame = pd.read_csv(out)
        assert len(frame) == rows and frame["score"].notna().all()


def test_demo_files_into_an_unwritable_place_is_a_one_line_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["demo-files", "--output", str(blocker / "sub")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1
