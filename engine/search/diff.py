"""Differences between two CGs: which nodes were added, removed or changed.

Matching (``a`` = the start / old CG, ``b`` = the new one), in two passes:

1. **Names.**  Nodes whose non-empty name occurs exactly once in each CG are paired.  Family
   builders, ``from_module`` and the mutation operators keep layer names, so after a mutation
   nearly every node pairs up by name (new nodes get new names: ``<name>.pw``, ``<name>.pool``).
2. **Topological alignment** of the rest: both CGs' unmatched nodes, in topological order,
   are aligned with :class:`difflib.SequenceMatcher` on a signature (op, shapes, weight, stride,
   groups).  Equal runs pair up; within a replaced run, nodes pair in order (they sit at the
   same place in the network) when they are unnamed or one name extends the other
   (``conv`` -> ``conv.dw``); the rest is removed / added.

A paired node is ``changed`` when its op, shapes, weight, stride, dilation, groups or bias
differ, or when its inputs differ (the set of its predecessors' partners); else ``same``.
Unpaired nodes of ``a`` are ``removed``, of ``b`` ``added``.  Edges are compared under the
pairing.  :func:`union_view` merges both graphs into one node / edge list for drawing.
"""

from __future__ import annotations

import difflib
from collections import Counter
from dataclasses import dataclass, field

import pandas as pd

from engine.graphs.cg import CG, Node

STATUS_COLOURS = {"same": "#c9ced6", "changed": "#f0ad4e", "added": "#2e9e44", "removed": "#d9534f"}
_FIELDS = ("op", "in_shape", "out_shape", "weight", "stride", "dilation", "groups", "bias")


def _signature(nd: Node) -> str:
    return f"{nd.op}|{nd.in_shape}|{nd.out_shape}|{nd.weight}|{nd.stride}|{nd.groups}"


@dataclass
class CGDiff:
    """Result of :func:`diff_cgs` (see the module docstring)."""

    a: CG
    b: CG
    pairs: dict[int, int]                                    # node of a -> node of b
    status_a: dict[int, str]                                 # same / changed / removed
    status_b: dict[int, str]                                 # same / changed / added
    changes: dict[int, list[str]] = field(default_factory=dict)  # node of b -> what changed
    edges_added: list[tuple[int, int]] = field(default_factory=list)    # in b's numbering
    edges_removed: list[tuple[int, int]] = field(default_factory=list)  # in a's numbering

    @property
    def added(self) -> list[int]:
        return [v for v, s in self.status_b.items() if s == "added"]

    @property
    def removed(self) -> list[int]:
        return [u for u, s in self.status_a.items() if s == "removed"]

    @property
    def changed(self) -> list[int]:
        return [v for v, s in self.status_b.items() if s == "changed"]

    def counts(self) -> dict[str, int]:
        c = Counter(self.status_b.values())
        return {"same": c.get("same", 0), "changed": c.get("changed", 0), "added": c.get("added", 0),
                "removed": len(self.removed), "edges_added": len(self.edges_added),
                "edges_removed": len(self.edges_removed), "flops_delta": self.b.flops - self.a.flops,
                "params_delta": self.b.params - self.a.params}

    @property
    def identical(self) -> bool:
        c = self.counts()
        return c["changed"] == c["added"] == c["removed"] == c["edges_added"] == c["edges_removed"] == 0

    def frame(self, include_same: bool = False) -> pd.DataFrame:
        """One row per added / removed / changed node (and unchanged ones with ``include_same``)."""
        rows = []
        inv = {v: u for u, v in self.pairs.items()}
        for v, s in self.status_b.items():
            if s == "same" and not include_same:
                continue
            nd = self.b.nodes[v]
            u = inv.get(v)
            old = self.a.nodes[u] if u is not None else None
            rows.append({"status": s, "node_a": u, "node_b": v, "name": nd.name, "op": nd.op,
                         "old": _describe(old) if old is not None else "", "new": _describe(nd),
                         "what": ", ".join(self.changes.get(v, [])), "flops_delta": nd.flops - (old.flops if old else 0)})
        for u in self.removed:
            nd = self.a.nodes[u]
            rows.append({"status": "removed", "node_a": u, "node_b": None, "name": nd.name, "op": nd.op,
                         "old": _describe(nd), "new": "", "what": "", "flops_delta": -nd.flops})
        cols = ["status", "node_a", "node_b", "name", "op", "old", "new", "what", "flops_delta"]
        return pd.DataFrame(rows, columns=cols)


def _describe(nd: Node) -> str:
    s = f"{nd.op} {'x'.join(map(str, nd.in_shape))}->{'x'.join(map(str, nd.out_shape))}"
    if nd.weight is not None:
        s += f" w{'x'.join(map(str, nd.weight))}"
        if max(nd.stride) > 1:
            s += f" s{nd.stride[0]}"
    return s


def _related(x: str, y: str) -> bool:
    """Two nodes at the same aligned place may pair when a name is missing or one name extends
    the other (``conv`` -> ``conv.dw``); differently named nodes (``bn1`` vs ``p1``) do not."""
    return not x or not y or x.startswith(y + ".") or y.startswith(x + ".")


def _unique_names(cg: CG) -> dict[str, int]:
    counts = Counter(nd.name for nd in cg.nodes if nd.name)
    return {nd.name: nd.id for nd in cg.nodes if nd.name and counts[nd.name] == 1}


def diff_cgs(a: CG, b: CG) -> CGDiff:
    """Match the nodes of ``a`` and ``b`` and classify them (see the module docstring)."""
    pairs: dict[int, int] = {}
    na, nb = _unique_names(a), _unique_names(b)
    for name, u in na.items():
        v = nb.get(name)
        if v is not None:
            pairs[u] = v
    # input / output always correspond
    pairs.setdefault(a.input_node.id, b.input_node.id)
    pairs.setdefault(a.output_node.id, b.output_node.id)
    used_b = set(pairs.values())
    if len(used_b) != len(pairs):  # a name clash with input/output: keep the first pairing of each b
        seen: set[int] = set()
        pairs = {u: v for u, v in pairs.items() if not (v in seen or seen.add(v))}
        used_b = set(pairs.values())
    rest_a = [u for u in a.topological_order() if u not in pairs]
    rest_b = [v for v in b.topological_order() if v not in used_b]
    sm = difflib.SequenceMatcher(a=[_signature(a.nodes[u]) for u in rest_a],
                                 b=[_signature(b.nodes[v]) for v in rest_b], autojunk=False)
    for tag, i1, i2, j1, j2 in sm.get_opcodes():
        if tag == "equal":
            for u, v in zip(rest_a[i1:i2], rest_b[j1:j2]):
                pairs[u] = v
        elif tag == "replace":
            free = list(rest_b[j1:j2])
            for u in rest_a[i1:i2]:
                v = next((v for v in free if _related(a.nodes[u].name, b.nodes[v].name)), None)
                if v is not None:
                    pairs[u] = v
                    free = free[free.index(v) + 1:]  # keep the order
    inv = {v: u for u, v in pairs.items()}
    pa, pb = a.predecessors(), b.predecessors()
    status_a = {u: "removed" for u in range(a.num_nodes)}
    status_b = {v: "added" for v in range(b.num_nodes)}
    changes: dict[int, list[str]] = {}
    for u, v in pairs.items():
        x, y = a.nodes[u], b.nodes[v]
        what = [f for f in _FIELDS if getattr(x, f) != getattr(y, f)]
        if sorted(pairs.get(p, -1 - p) for p in pa[u]) != sorted(pb[v]):
            what.append("inputs")
        status = "changed" if what else "same"
        status_a[u] = status_b[v] = status
        if what:
            changes[v] = what
    ea = {(pairs[u], pairs[v]) for u, v in a.edges if u in pairs and v in pairs}
    eb = set(b.edges)
    edges_added = sorted(e for e in eb if e not in ea)
    edges_removed = sorted((u, v) for u, v in a.edges
                           if u not in pairs or v not in pairs or (pairs[u], pairs[v]) not in eb)
    del inv
    return CGDiff(a, b, pairs, status_a, status_b, changes, edges_added, edges_removed)


def union_view(d: CGDiff) -> tuple[list[dict], list[dict]]:
    """Nodes and edges of ``b`` plus the removed nodes / edges of ``a``, each with a ``status``.

    Node dicts: ``id`` (``"b<i>"`` or ``"a<i>"`` for removed), ``node`` (the :class:`Node`),
    ``status``, ``what``; edge dicts: ``source``, ``target``, ``status`` (same / added / removed).
    """
    nodes = [{"id": f"b{v}", "node": d.b.nodes[v], "status": d.status_b[v], "what": d.changes.get(v, [])}
             for v in range(d.b.num_nodes)]
    nodes += [{"id": f"a{u}", "node": d.a.nodes[u], "status": "removed", "what": []} for u in d.removed]
    added = set(d.edges_added)
    edges = [{"source": f"b{u}", "target": f"b{v}", "status": "added" if (u, v) in added else "same"}
             for u, v in d.b.edges]

    def ref(u: int) -> str:
        return f"b{d.pairs[u]}" if u in d.pairs else f"a{u}"

    edges += [{"source": ref(u), "target": ref(v), "status": "removed"} for u, v in d.edges_removed]
    return nodes, edges
