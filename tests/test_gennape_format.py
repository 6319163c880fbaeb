"""GENNAPE-format import: the authors' pickled fixtures, JSON state dicts, records, and the
restricted unpickler's refusals."""

from __future__ import annotations

import io
import json
import pickle
import sys
import types

import pytest

from engine.cg import CGError, load_any, load_json
from engine.graphs.gennape_format import (
    RestrictedUnpickler,
    UnsafePickleError,
    cg_from_state,
    load_gennape,
    load_gennape_records,
)

FIXTURES = {  # name -> (nodes, edges, weighted nodes) as stored in the authors' pickle
    "hiaml": (107, 118, 32), "inception": (403, 445, 139), "nb101": (225, 251, 65),
    "nb201": (306, 352, 83), "two_path": (56, 58, 21),
}
MODULE = "model_src.comp_graph.tf_comp_graph"


def _fixture(shared_data, name):
    path = shared_data / "gennape_format" / f"{name}_best_cg.pkl"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    return path


def _plain(obj):
    """Stand-in objects -> JSON-able dicts (what the authors' get_cg_state_dict writes)."""
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        return {k: _plain(v) for k, v in obj.__dict__.items()}
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# --- fixtures -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(FIXTURES))
def test_fixture_loads_into_valid_cg(shared_data, name):
    cg = load_gennape(_fixture(shared_data, name))
    nodes, edges, weighted = FIXTURES[name]
    assert cg.validate() is cg
    assert cg.num_nodes == nodes and cg.num_edges == edges
    counts = cg.op_counts()
    assert sum(counts.get(k, 0) for k in ("conv", "depthwise", "group_conv", "linear")) == weighted
    assert counts["input"] == counts["output"] == counts["linear"] == counts["mean"] == 1
    assert counts["batchnorm"] >= 20 and counts.get("other", 0) == 0
    assert cg.input_node.out_shape == (32, 32, 3) and cg.output_node.out_shape == (1, 1, 10)
    assert cg.flops > 1e7 and cg.params > 1e5
    fc = next(n for n in cg.nodes if n.op == "linear")
    assert fc.weight[1] == 10 and fc.bias and fc.params == fc.weight[0] * 10 + 10


def test_fixture_details(shared_data):
    inception = load_gennape(_fixture(shared_data, "inception"))
    dw = [n for n in inception.nodes if n.op == "depthwise"]
    assert dw and all(n.groups == n.weight[0] and n.weight[2] in (3, 5, 7) for n in dw)
    nb101 = load_gennape(_fixture(shared_data, "nb101"))  # weight shape stored as normalised floats
    stem = next(n for n in nb101.nodes if n.op == "conv")
    assert stem.weight == (3, 128, 3, 3) and stem.flops == 2 * 32 * 32 * 128 * 3 * 9
    hiaml = load_gennape(_fixture(shared_data, "hiaml"))
    assert next(n for n in hiaml.nodes if n.op == "conv").stride == (2, 2)
    assert hiaml.name == "HiAMLNet4153"


@pytest.mark.parametrize("name", ["nb201", "two_path"])
def test_json_round_trips(shared_data, name):
    path = _fixture(shared_data, name)
    cg = load_gennape(path)
    again = load_json(cg.to_json())
    assert again.to_dict() == cg.to_dict()
    # the same graph as the authors' JSON state dict (get_cg_state_dict) loads identically
    with open(path, "rb") as fh:
        state = _plain(RestrictedUnpickler(fh).load())
    via_json = load_gennape(json.dumps(state).encode())
    assert via_json.to_dict() == cg.to_dict()
    assert load_any(path).to_dict() == cg.to_dict()


def test_labelled_json_records(shared_data):
    with open(_fixture(shared_data, "two_path"), "rb") as fh:
        state = _plain(RestrictedUnpickler(fh).load())
    data = {"net_a": {"net_config": [1, 2], "cg": state, "max_perf": 93.5, "perfs": [80.0, 93.5]},
            "net_b": {"cg": state, "perfs": [70.0, 91.0]}}
    recs = load_gennape_records(json.dumps(data).encode())
    assert [r["acc"] for r in recs] == pytest.approx([0.935, 0.91])
    assert {r["name"] for r in recs} == {"TwoPathNet4860"}
    assert recs[0]["flops"] == recs[0]["cg"].flops > 0
    assert isinstance(load_gennape(json.dumps(data).encode()), list)


# --- pickled record caches (crafted with a throw-away module of the authors' class path) ------

def _make_pickle(monkeypatch, payload_fn) -> bytes:
    mod = types.ModuleType(MODULE)
    for cls_name in ("ComputeGraph", "RegularNode", "WeightedNode"):
        cls = type(cls_name, (), {"__module__": MODULE})
        setattr(mod, cls_name, cls)
    for name in ("model_src", "model_src.comp_graph"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, MODULE, mod)
    return pickle.dumps(payload_fn(mod), protocol=4)


def _tiny_state(mod=None, **over):
    """input -> conv -> bn -> relu6 -> mean -> fc -> output, in the authors' layout."""
    def node(kind, idx, label, res, **kw):
        d = {"str_id": f"{idx}|net/{label}", "label": label, "op_type_idx": idx, "resolution": res,
             "strides": kw.pop("strides", None), "metadata": kw.pop("metadata", None), **kw}
        if mod is None:
            return d
        obj = getattr(mod, kind)()
        obj.__dict__.update(d)
        return obj

    weighted = [node("WeightedNode", 3, "conv2d", [8, 8, 8, 8, 3, 4], strides=[1, 1, 1, 1], shape=[3, 4, 3, 3],
                     metadata={"use_bias": True}),
                node("WeightedNode", 8, "matmul", [1, 1, 1, 1, 4, 5], shape=[4, 5, 0, 0], metadata={"use_bias": True})]
    regular = [node("RegularNode", 1, "input", [8, 8, 8, 8, 3, 3]),
               node("RegularNode", 5, "fusedbatchnorm", [8, 8, 8, 8, 4, 4]),
               node("RegularNode", 7, "relu6", [8, 8, 8, 8, 4, 4]),
               node("RegularNode", 19, "mean", [8, 1, 8, 1, 4, 4]),
               node("RegularNode", 2, "output", [1, 1, 1, 1, 5, 5])]
    state = {"name": "Tiny", "input_shape": [1, 8, 8, 3], "weighted_nodes": weighted, "regular_nodes": regular,
             "edge_pairs": [[2, 0], [0, 3], [3, 4], [4, 5], [5, 1], [1, 6]], "max_hidden_size": 512,
             "max_kernel_size": 7, "max_derived_H": 256, "max_derived_W": 256, **over}
    if mod is None:
        return state
    cg = mod.ComputeGraph()
    cg.__dict__.update(state)
    return cg


def test_pickled_record_cache(monkeypatch):
    data = _make_pickle(monkeypatch, lambda mod: [
        {"compute graph": _tiny_state(mod), "acc": 0.91, "flops": 12.5, "n_params": 3, "original config": ("a", 1)},
        {"compute graph": _tiny_state(mod, name="Tiny2"), "acc": 0.88},
    ])
    recs = load_gennape_records(data)
    assert [r["name"] for r in recs] == ["Tiny", "Tiny2"] and [r["acc"] for r in recs] == [0.91, 0.88]
    assert recs[0]["source_flops"] == 12.5 and recs[0]["source_params"] == 3
    cg = recs[0]["cg"]
    assert [n.op for n in cg.nodes] == ["input", "conv", "batchnorm", "relu6", "mean", "linear", "output"]
    assert cg.params == (27 * 4 + 4) + 8 + (4 * 5 + 5) and cg.flops == 2 * 64 * 4 * 27 + 2 * 20
    assert cg.meta["acc"] == 0.91
    single = _make_pickle(monkeypatch, lambda mod: _tiny_state(mod))
    assert load_gennape(single).to_dict() == load_gennape(json.dumps(_tiny_state()).encode()).to_dict()


# --- the restricted unpickler ------------------------------------------------------------------

class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("touch /tmp/gennape_pwned",))


@pytest.mark.parametrize("payload,named", [
    (pickle.dumps(_Evil()), "system"),
    (b"cos\nsystem\n(S'echo hacked'\ntR.", "os.system"),
    (b"cbuiltins\neval\n(S'1+1'\ntR.", "builtins.eval"),
    (b"csubprocess\nPopen\n(S'ls'\ntR.", "subprocess.Popen"),
    (b"c" + MODULE.encode() + b"\nOP2I\n)R.", "OP2I"),
    (b"cnumpy\nndarray\n)R.", "numpy.ndarray"),
])
def test_restricted_unpickler_refuses_other_classes(tmp_path, payload, named):
    with pytest.raises(UnsafePickleError, match=f"refusing to unpickle .*{named}"):
        load_gennape(payload)
    path = tmp_path / "evil.pkl"
    path.write_bytes(payload)
    with pytest.raises(UnsafePickleError, match=str(path)):
        load_any(path)
    import os

    assert not os.path.exists("/tmp/gennape_pwned")
    with pytest.raises(UnsafePickleError):
        RestrictedUnpickler(io.BytesIO(payload)).load()


def test_allowlisted_containers_load():
    obj = RestrictedUnpickler(io.BytesIO(pickle.dumps({"s": {1, 2}, "f": frozenset({3}), "t": (1, 2)}))).load()
    assert obj == {"s": {1, 2}, "f": frozenset({3}), "t": (1, 2)}


# --- conversion rules on synthetic state dicts ---------------------------------------------------

def test_conversion_rules():
    st = _tiny_state()
    reg = st["regular_nodes"]
    reg[2]["label"], reg[2]["op_type_idx"] = "swish", 16  # relu6 -> swish
    reg[3]["label"], reg[3]["op_type_idx"] = "global_pool", 24
    reg.append({"str_id": "99|net/paddings", "label": "paddings", "op_type_idx": 18,
                "resolution": [8, 8, 8, 8, 3, 3], "strides": None, "metadata": None})
    # input -> paddings -> conv instead of input -> conv
    st["edge_pairs"] = [[2, 7], [7, 0]] + st["edge_pairs"][1:]
    cg = cg_from_state(st)
    assert [n.op for n in cg.nodes] == ["input", "conv", "batchnorm", "silu", "mean", "linear", "output"]
    assert (0, 1) in cg.edges


def test_dilated_conv_triplet_and_missing_output():
    def reg(i, label, idx, res):
        return {"str_id": f"{i}|{label}", "label": label, "op_type_idx": idx, "resolution": res, "strides": None,
                "metadata": None}

    st = {"name": "Dil",
          "weighted_nodes": [{"str_id": "1|dw", "label": "depthwise", "op_type_idx": 4, "resolution":
                              [10, 8, 10, 8, 4, 4], "strides": [1, 1, 1, 1], "shape": [4, 1, 3, 3], "metadata": {}}],
          "regular_nodes": [reg(0, "input", 1, [16, 16, 16, 16, 4, 4]),
                            reg(2, "spacetobatchnd", 20, [16, 10, 16, 10, 4, 4]),
                            reg(3, "batchtospacend", 21, [8, 16, 8, 16, 4, 4]),
                            reg(4, "relu", 6, [16, 16, 16, 16, 4, 4])],
          "edge_pairs": [[1, 2], [2, 0], [0, 3], [3, 4]]}
    cg = cg_from_state(st)
    assert [n.op for n in cg.nodes] == ["input", "depthwise", "relu", "output"]
    dw = cg.nodes[1]
    assert dw.in_shape == (16, 16, 4) and dw.out_shape == (16, 16, 4) and dw.dilation == (2, 2)
    assert dw.groups == 4 and dw.flops == 2 * 16 * 16 * 4 * 9


@pytest.mark.parametrize("mutate,match", [
    (lambda st: st.pop("edge_pairs"), "edge_pairs"),
    (lambda st: st["edge_pairs"].append([0, 99]), "outside"),
    (lambda st: st["regular_nodes"][1].update(resolution=[1, 2]), "resolution"),
    (lambda st: st["regular_nodes"][1].update(resolution=[8, 8, 8, 8, "x", 4]), "number"),
])
def test_bad_state_dicts(mutate, match):
    st = _tiny_state()
    mutate(st)
    with pytest.raises(CGError, match=match):
        cg_from_state(st)


@pytest.mark.parametrize("data,match", [(b"", "empty"), (b"\x80\x04\x95truncated", "not a readable"),
                                        (b"{\"a\": 1}", "without a GENNAPE graph"), (b"[1, 2]", "record 0"),
                                        (b"hello", "not a readable"), (b"{oops", "not valid JSON")])
def test_bad_files(data, match):
    with pytest.raises(CGError, match=match):
        load_gennape(data)
