"""CG core: builder arithmetic, JSON round trip, validation errors, PyG features."""

from __future__ import annotations

import json

import pytest
import torch

from engine.graphs.cg import CGBuilder, CGError, feature_names, load_json


def _tiny():
    b = CGBuilder("tiny", input_hwc=(32, 32, 3))
    x = b.input()
    y = b.act(b.bn(b.conv(x, 16, 3)), "relu")
    z = b.conv(y, 16, 3, stride=2)
    r = b.pool(y, "avgpool", 3, 2)
    s = b.sum([z, r])
    return b.output(b.linear(b.mean(s), 10))


def test_builder_counts_match_torch():
    cg = _tiny()
    conv1 = torch.nn.Conv2d(3, 16, 3, padding=1, bias=False)
    conv2 = torch.nn.Conv2d(16, 16, 3, stride=2, padding=1, bias=False)
    bn = torch.nn.BatchNorm2d(16)
    fc = torch.nn.Linear(16, 10)
    expected = sum(p.numel() for m in (conv1, conv2, bn, fc) for p in m.parameters())
    assert cg.params == expected
    macs = 32 * 32 * 16 * 3 * 9 + 16 * 16 * 16 * 16 * 9 + 16 * 10
    assert cg.flops == 2 * macs
    assert cg.nodes[4].out_shape == (16, 16, 16)


def test_json_round_trip_exact():
    cg = _tiny()
    text = cg.to_json()
    again = load_json(text)
    assert again.to_json() == text
    assert again.fingerprint() == cg.fingerprint()


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("nodes"), r"missing required field\(s\) 'nodes'"),
    (lambda d: d["nodes"][2].pop("op"), "nodes[2]: missing required field 'op'"),
    (lambda d: d["nodes"][2].__setitem__("out", [1, "x", 3]), "nodes[2].out"),
    (lambda d: d["nodes"][2].__setitem__("op", "warp"), "unknown op 'warp'"),
    (lambda d: d["edges"].append([3, 1]), "cycle"),
    (lambda d: d["edges"].append([3, 99]), "does not exist"),
    (lambda d: d["edges"].append(["a", 1]), "edges["),
    (lambda d: d.__setitem__("format_version", 99), "format_version"),
    (lambda d: d["nodes"][1].__setitem__("id", 7), "nodes[1].id"),
    # values the int32 feature tables cannot hold, and counts beyond 2^53
    (lambda d: d["nodes"][2].__setitem__("in", [2**40, 32, 16]), "nodes[2].in: .*at most 2,147,483,647"),
    (lambda d: d["nodes"][1].__setitem__("weight", [3, 16, 2**31, 3]), "nodes[1].weight"),
    (lambda d: d["nodes"][1].__setitem__("stride", [2**31, 1]), "nodes[1].stride"),
    (lambda d: d["nodes"][1].__setitem__("params", 10**30), r"nodes[1].params: expected an int in 0..9,007,199,254,740,992"),
    (lambda d: d["nodes"][1].__setitem__("flops", 2**63), "nodes[1].flops"),
    (lambda d: d["nodes"][1].__setitem__("groups", 0), "nodes[1].groups: expected an int in 1.."),
    # values of the wrong JSON type (an unhashable op used to escape as a TypeError)
    (lambda d: d["nodes"][0].__setitem__("op", ["input"]), "nodes[0].op: unknown op ['input']"),
    (lambda d: d["nodes"][0].__setitem__("op", {"a": 1}), "nodes[0].op: unknown op {'a': 1}"),
    (lambda d: d.__setitem__("format_version", True), "format_version must be 1, got True"),
    (lambda d: d.__setitem__("format_version", 1.0), "format_version must be 1, got 1.0"),
    (lambda d: d["nodes"][1].__setitem__("id", 1.0), "nodes[1].id: expected 1"),
])
def test_validation_errors_are_precise(mutate, message):
    data = json.loads(_tiny().to_json())
    mutate(data)
    with pytest.raises(CGError, match=message.replace("[", r"\[").replace("]", r"\]")):
        load_json(json.dumps(data))


@pytest.mark.parametrize("field, value, message", [
    ("in_shape", (2**31, 32, 3), "in_shape must be 3 ints in 1..2,147,483,647"),
    ("out_shape", (32, 0, 16), "out_shape must be 3 ints"),
    ("stride", (1, 2, 3), "stride must be 2 ints"),
    ("dilation", (1, 1.5), "dilation must be 2 ints"),
    ("groups", 0, "groups must be an int in 1.."),
    ("weight", (3, 16, 3, -1), "weighted op needs weight"),
    ("params", 2**60, "flops and params must lie in 0..2\\^53"),
])
def test_validate_bounds_code_built_cgs(field, value, message):
    """CGs built in code (importers, builders) get the same bounds as CG JSON, naming the node."""
    import dataclasses

    cg = _tiny()
    cg.nodes[1] = dataclasses.replace(cg.nodes[1], **{field: value})
    with pytest.raises(CGError, match="node 1 \\(conv\\): " + message):
        cg.validate()


def test_validate_rejects_weight_on_weightless_op():
    import dataclasses

    cg = _tiny()
    cg.nodes[2] = dataclasses.replace(cg.nodes[2], weight=(16, 16, 1, 1))
    with pytest.raises(CGError, match="node 2 \\(batchnorm\\): only weighted ops"):
        cg.validate()


def test_unreachable_node_rejected():
    data = json.loads(_tiny().to_json())
    extra = dict(data["nodes"][2], id=len(data["nodes"]))
    data["nodes"].append(extra)
    with pytest.raises(CGError, match="not reachable from the input"):
        load_json(json.dumps(data))


def test_oversized_json_rejected(monkeypatch):
    import engine.graphs.cg as cgmod

    monkeypatch.setattr(cgmod, "MAX_JSON_BYTES", 100)
    with pytest.raises(CGError, match="exceeds the limit"):
        load_json(_tiny().to_json())


def test_json_text_and_bytes_may_start_with_a_byte_order_mark():
    text = _tiny().to_json()
    assert load_json("\ufeff" + text).to_json() == text
    assert load_json(b"\xef\xbb\xbf" + text.encode()).to_json() == text
    from engine.cg import load_any

    assert load_any(b"\xef\xbb\xbf" + text.encode(), "net.json").to_json() == text
    with pytest.raises(CGError, match="top level must be an object, got list"):
        load_json("[]")  # JSON text, not a file name


def test_not_json():
    with pytest.raises(CGError, match="not valid JSON"):
        load_json(b"{nope")


def test_pyg_features_shape_and_relabel_invariance():
    cg = _tiny()
    data = cg.to_pyg(y=0.9)
    assert data.x.shape == (cg.num_nodes, len(feature_names()))
    assert data.edge_index.shape == (2, cg.num_edges)
    # relabel nodes: reverse ids, features must permute with them
    perm = list(reversed(range(cg.num_nodes)))
    d = json.loads(cg.to_json())
    new_nodes = [None] * cg.num_nodes
    for old, new in enumerate(perm):
        nd = dict(d["nodes"][old], id=new)
        new_nodes[new] = nd
    d["nodes"] = new_nodes
    d["edges"] = [[perm[u], perm[v]] for u, v in d["edges"]]
    cg2 = load_json(json.dumps(d))
    x2 = cg2.to_pyg().x
    assert torch.equal(x2[perm], data.x)
    assert cg2.fingerprint() == cg.fingerprint()


def test_importers_name_a_missing_directory_or_oversized_file(tmp_path):
    from engine.graphs.cg import read_file
    from engine.graphs.gennape_format import load_gennape
    from engine.graphs.onnx_import import from_onnx

    big = tmp_path / "big.json"
    big.write_bytes(b"{" + b" " * 99 + b"}")
    assert read_file(big, 200) == (big.read_bytes(), str(big))
    with pytest.raises(CGError, match=r"big.json: file is 101 bytes; the limit is 100"):
        read_file(big, 100)
    for load in (load_json, from_onnx, load_gennape):
        with pytest.raises(CGError, match=r"missing.bin: file not found"):
            load(tmp_path / "missing.bin")
        with pytest.raises(CGError, match=rf"{tmp_path.name}: not a file"):
            load(tmp_path)


def test_at_path_names_the_file_once():
    from engine.graphs.cg import at_path

    assert at_path("/d/x.csv", "x.csv: no data rows") == "/d/x.csv: no data rows"
    assert at_path("/d/x.csv", "/d/x.csv: bad") == "/d/x.csv: bad"
    assert at_path("/d/x.csv", "empty file") == "/d/x.csv: empty file"
