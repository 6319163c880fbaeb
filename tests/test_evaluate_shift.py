"""The input-size / class-count shift check: runs end to end and its invariances hold."""

from __future__ import annotations

import json

import pytest

from engine.evaluate import shift
from engine.model import default_checkpoint_dir

pytestmark = pytest.mark.skipif(not (default_checkpoint_dir() / "weights.safetensors").exists(),
                                reason="no shipped checkpoint")


def test_shift_check_end_to_end(tmp_path, capsys):
    out = tmp_path / "shift.json"
    assert shift.main(["--n", "60", "--output", str(out)]) == 0
    res = json.loads(out.read_text())
    rows = {r["method"]: r for r in res["rows"]}
    assert res["n"] == 60 and {"score", "flops_baseline", "params_baseline", "graph_stats"} <= set(rows)
    # the same cells: FLOPs and params rank them identically in every rendering
    for base in ("flops_baseline", "params_baseline"):
        assert rows[base]["agree 32 vs 224px/1000"] == pytest.approx(1.0)
        assert rows[base]["srcc 32px/10"] == pytest.approx(rows[base]["srcc 224px/1000"])
    # graph_stats standardises by the population's spread: nearly invariant too
    assert rows["graph_stats"]["agree 32 vs 224px/1000"] > 0.98
    assert "agree 32 vs 16px/120" in capsys.readouterr().out


def test_shift_check_rejects_tiny_n(capsys):
    assert shift.main(["--n", "3"]) == 2
    assert "at least 10" in capsys.readouterr().err
