"""``python -m engine cg`` and the ``engine.cg`` facade (load_any dispatch)."""

from __future__ import annotations

import io
import subprocess
import sys
import warnings

import pytest
import torch
from nets import SmallConvNet

from engine.__main__ import main
from engine.cg import CGError, detect_format, from_module, load_any, load_json

NB201 = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|nor_conv_1x1~0|avg_pool_3x3~1|nor_conv_3x3~2|"


@pytest.fixture(scope="module")
def onnx_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "small.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        buf = io.BytesIO()
        torch.onnx.export(SmallConvNet().eval(), (torch.randn(1, 3, 32, 32),), buf, dynamo=False)
    path.write_bytes(buf.getvalue())
    return path


def test_facade_exports():
    import engine.cg as facade

    for name in ("from_module", "from_onnx", "load_json", "load_gennape", "load_any", "CG", "CGError", "CGBuilder"):
        assert hasattr(facade, name)
    assert issubclass(facade.CGError, ValueError)


def test_cli_onnx_to_json(onnx_file, tmp_path, capsys):
    out = tmp_path / "cg.json"
    assert main(["cg", str(onnx_file), "--output", str(out)]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    cg = load_json(out)
    assert f"{cg.num_nodes} nodes, {cg.num_edges} edges" in line and "FLOPs" in line and "params" in line
    # and our JSON reads back through the CLI too
    assert main(["cg", str(out)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == line


def test_cli_gennape_pickle(shared_data, tmp_path, capsys):
    path = shared_data / "gennape_format" / "two_path_best_cg.pkl"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    out = tmp_path / "tp.json"
    assert main(["cg", str(path), "--output", str(out)]) == 0
    assert capsys.readouterr().out.startswith("TwoPathNet4860: 56 nodes, 58 edges")
    assert load_json(out).num_nodes == 56


@pytest.mark.parametrize("content,name", [(b"garbage that is no model", "bad.onnx"), (b"{not json", "bad.json"),
                                          (b"\x80\x04junk", "bad.pkl"), (b"", "empty.json"), (b"plain", "x.txt")])
def test_cli_bad_file_exits_2(tmp_path, capsys, content, name):
    path = tmp_path / name
    path.write_bytes(content)
    assert main(["cg", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and name in err


def test_cli_missing_and_conflicting_arguments(tmp_path, capsys):
    assert main(["cg", str(tmp_path / "nope.onnx")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["cg"]) == 2
    assert main(["cg", "x.onnx", "--family", "nb201", "--spec", NB201]) == 2
    assert main(["cg", "--family", "nb201"]) == 2
    assert main(["cg", "--family", "no_such_family", "--spec", "1"]) == 2
    assert "no_such_family" in capsys.readouterr().err


def test_cli_family_spec_and_check(tmp_path, capsys):
    from engine import families

    out = tmp_path / "nb201.json"
    assert main(["cg", "--family", "nb201", "--spec", NB201, "--check", "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "check: fingerprint equal, flops equal, params equal" in text
    assert load_json(out).fingerprint() == families.get("nb201").to_cg(NB201).fingerprint()
    assert main(["cg", "--family", "nb201", "--spec", "not-an-arch"]) == 2


def test_load_any_dispatch(onnx_file, tmp_path):
    cg = load_any(onnx_file)
    assert cg.op_counts()["conv"] == 2
    ours = tmp_path / "ours.json"
    ours.write_text(from_module(SmallConvNet(), (1, 3, 32, 32)).to_json())
    assert load_any(ours).op_counts()["batchnorm"] == 2
    assert load_any(ours.read_bytes()).num_nodes == 11
    assert detect_format(onnx_file.read_bytes()) == "onnx"
    assert detect_format(b'{"format_version": 1}') == "cg_json"
    assert detect_format(b'{"edge_pairs": []}') == "gennape_json"
    assert detect_format(b"\x80\x04...") == "gennape_pickle"
    with pytest.raises(CGError, match="unrecognised"):
        detect_format(b"hello", "x.txt")
    with pytest.raises(CGError, match="is a directory"):
        load_any(tmp_path)


def test_python_dash_m_entry_point(onnx_file):
    proc = subprocess.run([sys.executable, "-m", "engine", "cg", str(onnx_file)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0 and "nodes" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "engine", "cg", str(onnx_file) + ".missing"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error:")
