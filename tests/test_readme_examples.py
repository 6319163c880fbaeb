"""The README's runnable Python example runs as written (with the shipped checkpoint)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from engine.model import default_checkpoint_dir

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.skipif(not (default_checkpoint_dir() / "weights.safetensors").exists(), reason="no shipped checkpoint")
def test_ranking_example_runs_as_written():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    example = [b for b in blocks if "GennapePredictor.load(default_checkpoint_dir())" in b]
    assert len(example) == 1, "expected one runnable ranking example in the README"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(example[0], "README example", "exec"), {})  # noqa: S102 - our own README
    lines = out.getvalue().strip().splitlines()
    assert lines[0].split() == ["id", "score", "flops", "params"]
    assert sorted(line.split()[1] for line in lines[1:]) == ["mobilenet_v2", "resnet18", "resnet50", "vgg16"]
    assert lines[1].split()[1] == "vgg16"  # the README's text after the example says so
