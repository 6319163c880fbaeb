"""The training-domain check (engine.evaluate.domain) on the shipped checkpoint."""

from __future__ import annotations

import json

import pytest

from engine.evaluate import domain
from engine.model import default_checkpoint_dir

pytestmark = pytest.mark.skipif(not (default_checkpoint_dir() / "weights.safetensors").exists(),
                                reason="no shipped checkpoint")


def test_auroc():
    assert domain.auroc([0, 1, 2], [3, 4]) == 1.0
    assert domain.auroc([3, 4], [0, 1, 2]) == 0.0
    assert domain.auroc([1, 1], [1, 1]) == 0.5
    assert domain.auroc([], [1]) != domain.auroc([], [1])  # NaN


def test_domain_check_end_to_end(tmp_path, capsys):
    out = tmp_path / "domain.json"
    assert domain.main(["--n", "12", "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    rows = {r["set"]: r for r in res["rows"]}
    assert set(rows) == {"NB-201 held out", "hand-designed", *domain.OTHER_FAMILIES}
    assert rows["NB-201 held out"]["n"] == 60 and "outside the checkpoint" in res["inside"]
    # held-out cells of a training family read as inside; ImageNet-sized networks as outside
    assert rows["NB-201 held out"]["share > 1"] < 0.2
    assert rows["hand-designed"]["share > 1"] > 0.8 and rows["hand-designed"]["AUROC novelty"] > 0.9
    assert "AUROC novelty" in capsys.readouterr().out


def test_domain_check_rejects_tiny_n(capsys):
    assert domain.main(["--n", "3"]) == 2
    assert "at least 10" in capsys.readouterr().err
