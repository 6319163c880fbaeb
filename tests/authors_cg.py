"""The GENNAPE authors' pickled CGs, read independently of the engine's importer
(``engine.graphs.gennape_format``) so the family tests cross-check our CG builders against them."""

from __future__ import annotations

import collections
import pickle
import re


class _Stub:
    def __setstate__(self, state):
        self.__dict__.update(state)


class _StubUnpickler(pickle.Unpickler):
    """Reads the authors' pickled ComputeGraph into plain stand-in objects; refuses any other class."""

    def find_class(self, module, name):
        if module == "model_src.comp_graph.tf_comp_graph" and name in {"ComputeGraph", "RegularNode", "WeightedNode"}:
            return type(name, (_Stub,), {})
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def authors_summary(path):
    """``(conv signatures, op counts)`` of an authors' CG; a conv signature is (H_in, H_out, W_out,
    kH, kW, C_in, C_out, bias) from the activation resolution, so it is independent of how a depthwise
    kernel is stored."""
    with open(path, "rb") as fh:
        g = _StubUnpickler(fh).load()
    convs, ops = collections.Counter(), collections.Counter()
    for node in g.weighted_nodes + g.regular_nodes:
        d = node.__dict__
        label = re.sub(r"_\d+$", "", d["label"])
        ops[label] += 1
        if label in ("conv2d", "depthwise"):
            h_in, h_out, _, w_out, c_in, c_out = d["resolution"]
            bias = bool((d.get("metadata") or {}).get("use_bias"))
            convs[(h_in, h_out, w_out, d["shape"][2], d["shape"][3], c_in, c_out, bias)] += 1
    return convs, ops


def our_summary(cg):
    convs = collections.Counter(
        (n.in_shape[0], n.out_shape[0], n.out_shape[1], n.weight[2], n.weight[3], n.in_shape[2], n.out_shape[2], n.bias)
        for n in cg.nodes if n.op in ("conv", "depthwise"))
    preds = cg.predecessors()
    binary_adds = sum(len(preds[n.id]) - 1 for n in cg.nodes if n.op == "add")
    return convs, cg.op_counts(), binary_adds
