"""``python -m engine search`` / ``verify-search``: outputs and exit codes (params proxy scorer)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from engine.__main__ import main

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def test_search_spec_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["search", "--family", "nb201", "--start", ARCH, "--budget", "24", "--output", str(out),
               "--scorer", "params-proxy", "--quiet"])
    assert rc == 0
    names = {p.name for p in out.iterdir()}
    assert {"history.csv", "pareto.csv", "best.json", "best.onnx", "start.json", "summary.json"} <= names
    hist = pd.read_csv(out / "history.csv")
    assert len(hist) == 25 and hist["uid"].tolist() == list(range(25))
    s = json.loads((out / "summary.json").read_text())
    assert s["best"]["met_target"] and s["best"]["flops"] <= s["flops_target"]
    assert s["meta"]["score_column"] == "log10_params_proxy"
    assert "MFLOPs" in capsys.readouterr().err


def test_search_without_a_candidate_meeting_the_target_writes_no_best(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["search", "--family", "nb201", "--start", ARCH, "--budget", "8", "--output", str(out),
               "--scorer", "params-proxy", "--quiet", "--flops-target", "0.01"])
    assert rc == 0
    names = {p.name for p in out.iterdir()}
    assert "best.json" not in names and "best.onnx" not in names and "summary.json" in names
    s = json.loads((out / "summary.json").read_text())
    assert not s["best"]["met_target"] and s["files"] == {}
    assert "no candidate met the FLOPs target" in capsys.readouterr().err
    (tmp_path / "afile").write_text("x")
    assert main(["search", "--family", "nb201", "--start", ARCH, "--output", str(tmp_path / "afile"),
                 "--scorer", "params-proxy", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--output {tmp_path / 'afile'}: exists and is not a folder" in err


def test_search_from_cg_json(tmp_path):
    from engine import families

    start = tmp_path / "start.json"
    families.get("two_path").to_cg(families.get("two_path").sample(1, seed=2)[0]).to_json(start)
    out = tmp_path / "run"
    rc = main(["search", "--start", str(start), "--budget", "8", "--output", str(out), "--scorer", "params-proxy",
               "--quiet", "--operators", "separable,kernel"])
    assert rc == 0
    hist = pd.read_csv(out / "history.csv")
    assert set(hist["mutation"].str.split("@").str[0]) <= {"start", "separable", "kernel"}


@pytest.mark.parametrize("argv, needle", [
    (["--family", "nb201", "--start", "bogus"], "not recognised"),
    (["--start", "missing.json"], "not found"),
    (["--start", ARCH], "give a family"),
    (["--family", "nope", "--start", ARCH], "unknown family"),
    (["--family", "nb201", "--start", ARCH, "--budget", "0"], "budget"),
    (["--family", "nb201", "--start", ARCH, "--operators", "kernel"], "apply to CG mutations only"),
    (["--family", "nb201", "--start", ARCH, "--flops-target", "1.5"], "--flops-target 1.5: a value up to 1 is"),
    (["--family", "nb201", "--start", ARCH, "--checkpoint", "/nonexistent/ckpt"], ""),
])
def test_search_bad_input_exit_2(tmp_path, capsys, argv, needle):
    rc = main(["search", *argv, "--output", str(tmp_path / "o"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert err.startswith("error:") and len(err.splitlines()) == 1
    assert needle in err


def test_search_bad_json_file(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["search", "--start", str(bad), "--output", str(tmp_path / "o"), "--quiet"]) == 2
    assert str(bad) in capsys.readouterr().err


def test_verify_search_cli(tmp_path, capsys):
    out = tmp_path / "v"
    rc = main(["verify-search", "--space", "nb201", "--seeds", "1", "--budget", "6", "--limit", "60",
               "--starts", "median", "--output", str(out), "--scorer", "params-proxy", "--quiet"])
    assert rc == 0
    table = pd.read_csv(out / "table.csv")
    assert table["method"].tolist() == ["start", "search", "random", "oracle"]
    assert "| median | search |" in capsys.readouterr().out
    assert main(["verify-search", "--space", "nb201", "--starts", "worst", "--output", str(out)]) == 2
    (tmp_path / "afile").write_text("")
    capsys.readouterr()
    assert main(["verify-search", "--space", "nb201", "--output", str(tmp_path / "afile")]) == 2  # before any work
    assert "--output" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_exit_130(monkeypatch, capsys):
    import engine.cli.search as search_cli

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(search_cli, "run", interrupted)
    assert main(["search", "--family", "nb201", "--start", ARCH, "--output", "x", "--quiet"]) == 130
    assert capsys.readouterr().err.strip() == "interrupted: search stopped before it finished"
