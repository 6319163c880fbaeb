"""Mutation operators on CGs (paper: "Applying GENNAPE to NAS", Table 7).

Each operator takes a CG and a ``numpy.random.Generator`` and returns a *new* CG (the input is
never modified) plus a :class:`Mutation` record, or raises :class:`NoMutation` when the CG offers
no site for it.  Costs (FLOPs / params) of touched nodes are recomputed with
:func:`engine.graphs.cg.node_cost`; every result is validated and checked for feasibility by the
caller (:func:`mutate` does both).

Operators
---------
* ``separable``: a dense k x k conv (k > 1) -> depthwise k x k (same stride) + pointwise 1 x 1;
* ``kernel``: change the kernel size of a conv / depthwise conv among {1, 3, 5, 7} (shapes kept);
* ``width``: scale the output width of a conv by 0.5 / 0.75 / 1.25 / 1.5 (rounded to a multiple
  of 8), propagated through the BN / activation / depthwise chain up to the next dense conv;
* ``drop_skip``: remove one input edge of a residual ``add`` (collapsing a 1-input add);
* ``add_skip``: add a same-shape ancestor as a new input of an ``add`` (a new skip connection);
* ``drop_node``: remove a BN / activation / identity node (edge contraction);
* ``drop_branch``: remove a whole residual branch (a block): one input of an ``add`` together with
  every node that only feeds it, keeping the other inputs (e.g. the skip);
* ``insert_pool``: insert a stride-1 3 x 3 max / average pool (shape preserving) after a node.

``separable``, ``kernel`` (to smaller kernels), ``width`` (down) and ``drop_branch`` reduce FLOPs;
the others explore.  The input CG's node names are kept (new nodes get ``<name>.dw`` / ``.pw`` /
``.pool`` names), which :mod:`engine.search.diff` uses to match nodes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace

import numpy as np

from engine.graphs.cg import CG, CGError, Node, node_cost

PASS_THROUGH = frozenset({"batchnorm", "layernorm", "relu", "relu6", "hardswish", "hardsigmoid", "sigmoid",
                          "silu", "gelu", "tanh", "identity"})


class NoMutation(Exception):
    """The operator found no place in this CG where it applies."""


@dataclass(frozen=True)
class Mutation:
    kind: str
    node: int
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}@{self.node}: {self.detail}"


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def _recost(nd: Node) -> Node:
    flops, params = node_cost(nd.op, nd.in_shape, nd.out_shape, nd.weight, nd.groups, nd.bias)
    if nd.op in ("batchnorm", "layernorm"):
        params = 2 * nd.out_shape[2] if nd.params > 0 else 0
    elif nd.op not in ("conv", "depthwise", "group_conv", "linear"):
        flops, params = nd.flops, nd.params
    return replace(nd, flops=flops, params=params)


def _finish(cg: CG, nodes: list[Node], edges: list[tuple[int, int]]) -> CG:
    """Renumber (drop ``None`` nodes), dedupe edges, validate."""
    keep = [i for i, nd in enumerate(nodes) if nd is not None]
    remap = {old: new for new, old in enumerate(keep)}
    new_nodes = [replace(nodes[old], id=new) for new, old in enumerate(keep)]
    seen, new_edges = set(), []
    for u, v in edges:
        if u in remap and v in remap and remap[u] != remap[v]:
            e = (remap[u], remap[v])
            if e not in seen:
                seen.add(e)
                new_edges.append(e)
    out = CG(nodes=new_nodes, edges=new_edges, name=cg.name, meta=copy.deepcopy(cg.meta))
    return out.validate()


def _contract(nodes: list, edges: list[tuple[int, int]], nid: int) -> list[tuple[int, int]]:
    preds = [u for u, v in edges if v == nid]
    succs = [v for u, v in edges if u == nid]
    edges = [(u, v) for u, v in edges if nid not in (u, v)]
    edges += [(p, s) for p in preds for s in succs]
    nodes[nid] = None
    return edges


def _sites(cg: CG, pred) -> list[int]:
    return [nd.id for nd in cg.nodes if pred(nd)]


# ---------------------------------------------------------------------------------------------
# operators
# ---------------------------------------------------------------------------------------------

def op_separable(cg: CG, rng: np.random.Generator) -> tuple[CG, Mutation]:
    sites = _sites(cg, lambda n: n.op == "conv" and n.weight[2] > 1 and n.weight[0] > 1)
    if not sites:
        raise NoMutation("no dense k x k convolution to factorise")
    nid = int(rng.choice(sites))
    nd = cg.nodes[nid]
    cin, cout, kh, kw = nd.weight
    nodes = list(cg.nodes)
    dw = _recost(replace(nd, op="depthwise", weight=(cin, cin, kh, kw), groups=cin,
                         out_shape=(nd.out_shape[0], nd.out_shape[1], cin), bias=False, name=nd.name + ".dw"))
    pw_id = len(nodes)
    pw = _recost(Node(id=pw_id, op="conv", name=nd.name + ".pw", in_shape=dw.out_shape, out_shape=nd.out_shape,
                      weight=(cin, cout, 1, 1), bias=nd.bias))
    nodes[nid] = dw
    nodes.append(pw)
    edges = [(pw_id if u == nid else u, v) for u, v in cg.edges] + [(nid, pw_id)]
    return _finish(cg, nodes, edges), Mutation("separable", nid, f"conv {kh}x{kw} {cin}->{cout} -> dw + pw")


def op_kernel(cg: CG, rng: np.random.Generator) -> tuple[CG, Mutation]:
    sites = _sites(cg, lambda n: n.op in ("conv", "depthwise") and n.weight[2] == n.weight[3]
                   and n.weight[2] in (1, 3, 5, 7) and n.out_shape[0] > 1)
    if not sites:
        raise NoMutation("no square conv kernel to resize")
    nid = int(rng.choice(sites))
    nd = cg.nodes[nid]
    k = nd.weight[2]
    choices = [c for c in (1, 3, 5, 7) if c != k and (c > 1 or nd.op == "conv")]
    newk = int(rng.choice(choices))
    nodes = list(cg.nodes)
    nodes[nid] = _recost(replace(nd, weight=(nd.weight[0], nd.weight[1], newk, newk)))
    return _finish(cg, nodes, list(cg.edges)), Mutation("kernel", nid, f"{k}x{k} -> {newk}x{newk}")


def _width_chain(cg: CG, start: int, succ: list[list[int]]) -> list[int] | None:
    """Nodes from ``start``'s single consumer up to (incl.) the next dense conv / linear, or None."""
    chain = []
    cur = start
    while True:
        nxt = succ[cur]
        if len(nxt) != 1:
            return None
        cur = nxt[0]
        nd = cg.nodes[cur]
        if len(cg.predecessors()[cur]) != 1:
            return None
        chain.append(cur)
        if nd.op in ("conv", "linear") and nd.groups == 1:
            return chain
        if nd.op not in PASS_THROUGH and nd.op != "depthwise":
            return None


def op_width(cg: CG, rng: np.random.Generator) -> tuple[CG, Mutation]:
    succ = cg.successors()
    sites = []
    for nd in cg.nodes:
        if nd.op == "conv" and nd.groups == 1:
            chain = _width_chain(cg, nd.id, succ)
            if chain:
                sites.append((nd.id, chain))
    if not sites:
        raise NoMutation("no conv whose width can change without touching a residual")
    nid, chain = sites[int(rng.integers(len(sites)))]
    nd = cg.nodes[nid]
    old = nd.out_shape[2]
    factor = float(rng.choice([0.5, 0.75, 1.25, 1.5]))
    new = max(8, int(round(old * factor / 8.0)) * 8)
    if new == old:
        new = old + 8 if factor > 1 else max(8, old - 8)
    if new == old:
        raise NoMutation("width already minimal")
    nodes = list(cg.nodes)
    nodes[nid] = _recost(replace(nd, out_shape=(*nd.out_shape[:2], new), weight=(nd.weight[0], new, *nd.weight[2:])))
    for cid in chain:
        c = nodes[cid]
        if c.op in ("conv", "linear"):  # the consumer: only its input side changes
            nodes[cid] = _recost(replace(c, in_shape=(*c.in_shape[:2], new), weight=(new, *c.weight[1:])))
        elif c.op == "depthwise":
            nodes[cid] = _recost(replace(c, in_shape=(*c.in_shape[:2], new), out_shape=(*c.out_shape[:2], new),
                                         weight=(new, new, *c.weight[2:]), groups=new))
        else:
            nodes[cid] = _recost(replace(c, in_shape=(*c.in_shape[:2], new), out_shape=(*c.out_shape[:2], new)))
    return _finish(cg, nodes, list(cg.edges)), Mutation("width", nid, f"{old} -> {new} channels")


def op_drop_skip(cg: CG, rng: np.random.Generator) -> tuple[CG, Mutation]:
    preds, succ = cg.predecessors(), cg.successors()
    sites = [(u, n.id) for n in cg.nodes if n.op == "add" for u in preds[n.id] if len(succ[u]) > 1]
    if not sites:
        raise NoMutation("no residual edge whose removal keeps the graph connected")
    u, v = sites[int(rng.integers(len(sites)))]
    nodes = list(cg.nodes)
    edges = [e for e in cg.edges if e != (u, v)]
    if len(preds[v]) == 2:  # the add keeps one input: contract it
        edges = _contract(nodes, edges, v)
    return _finish(cg, nodes, edges), Mutation("drop_skip", v, f"removed input {u} of add {v}")


def op_add_skip(cg: CG, rng: np.random.Generator) -> tuple[CG, Mutation]:
    preds = cg.predecessors()
    order = cg.topological_order()
    pos = {n: i for i, n in enumerate(order)}
    adds = [n for n in cg.nodes if n.op == "add"]
    rng.shuffle(adds)
    for v in adds:
        # ancestors of v with the same output shape that are not already inputs
        anc, stack = set(), list(preds[v.id])
        while stack:
            a = stack.pop()
            if a not in anc:
                anc.add(a)
                stack.extend(preds[a])
        cands = [a for a in anc if a not in preds[v.id] and cg.nodes[a].out_shape == v.out_shape
                 and cg.nodes[a].op != "input" and pos[a] < pos[v.id]]
        if cands:
            u = int(rng.choice(sorted(cands)))
            return _finish(cg, list(cg.nodes), list(cg.edges) + [(u, v.id)]), Mutation(
                "add_skip", v.id, f"new skip {u} -> add {v.id}")
    raise NoMutation("no same-shape ancestor to connect to an add")


def op_drop_node(cg: CG, rng: np.random.Generator) -> tuple[CG, Mutation]:
    preds = cg.predecessors()
    sites = _sites(cg, lambda n: n.op in PASS_THROUGH and len(preds[n.id]) == 1)
    if not sites:
        raise NoMutation("no BN / activation node to drop")
    nid = int(rng.choice(sites))
    nodes = list(cg.nodes)
    edges = _contract(nodes, list(cg.edges), nid)
    return _finish(cg, nodes, edges), Mutation("drop_node", nid, f"removed {cg.nodes[nid].op}")


def _exclusive_branch(cg: CG, u: int, v: int, succ: list[list[int]], preds: list[list[int]]) -> set[int]:
    """Nodes whose every path to the output goes through edge ``u -> v`` (u included), or empty."""
    if succ[u] != [v] or cg.nodes[u].op == "input":
        return set()
    branch, stack = {u}, list(preds[u])
    while stack:
        p = stack.pop()
        if p in branch or cg.nodes[p].op == "input":
            continue
        if all(s in branch for s in succ[p]):
            branch.add(p)
            stack.extend(preds[p])
    return branch


def op_drop_branch(cg: CG, rng: np.random.Generator) -> tuple[CG, Mutation]:
    preds, succ = cg.predecessors(), cg.successors()
    sites = []
    for nd in cg.nodes:
        if nd.op == "add" and len(preds[nd.id]) >= 2:
            for u in preds[nd.id]:
                branch = _exclusive_branch(cg, u, nd.id, succ, preds)
                if branch and any(cg.nodes[b].op in ("conv", "depthwise", "group_conv", "linear", "maxpool", "avgpool")
                                  for b in branch):
                    sites.append((u, nd.id, branch))
    if not sites:
        raise NoMutation("no residual branch that only feeds an add")
    u, v, branch = sites[int(rng.integers(len(sites)))]
    nodes = list(cg.nodes)
    edges = [(a, b) for a, b in cg.edges if a not in branch and b not in branch]
    for b in branch:
        nodes[b] = None
    if len(preds[v]) == 2:  # one input left: the add disappears
        edges = _contract(nodes, edges, v)
    flops = sum(cg.nodes[b].flops for b in branch)
    return _finish(cg, nodes, edges), Mutation("drop_branch", v, f"removed a {len(branch)}-node branch "
                                                                 f"({flops / 1e6:.2f} MFLOPs) into add {v}")


def op_insert_pool(cg: CG, rng: np.random.Generator) -> tuple[CG, Mutation]:
    succ = cg.successors()
    sites = _sites(cg, lambda n: n.op not in ("input", "output", "mean", "linear", "zero", "maxpool", "avgpool")
                   and n.out_shape[0] > 2 and n.out_shape[1] > 2 and succ[n.id])
    if not sites:
        raise NoMutation("no spatial feature map to pool")
    nid = int(rng.choice(sites))
    nd = cg.nodes[nid]
    kind = str(rng.choice(["maxpool", "avgpool"]))
    nodes = list(cg.nodes)
    pid = len(nodes)
    nodes.append(Node(id=pid, op=kind, name=(nd.name or f"n{nid}") + ".pool", in_shape=nd.out_shape,
                      out_shape=nd.out_shape))
    edges = [(pid if u == nid else u, w) for u, w in cg.edges] + [(nid, pid)]
    return _finish(cg, nodes, edges), Mutation("insert_pool", nid, f"{kind} 3x3 s1 after node {nid} ({nd.op})")


OPERATORS = {
    "separable": op_separable, "kernel": op_kernel, "width": op_width,
    "drop_skip": op_drop_skip, "add_skip": op_add_skip, "drop_node": op_drop_node,
    "drop_branch": op_drop_branch, "insert_pool": op_insert_pool,
}


def mutate(cg: CG, rng: np.random.Generator, operators: list[str] | None = None,
           max_tries: int = 20, check: bool = True, rejected: list[str] | None = None) -> tuple[CG, Mutation]:
    """Apply one random operator that yields a valid, buildable CG.

    ``check=True`` runs :func:`engine.search.interpret.check_feasible` (a forward pass);
    infeasible results are rejected and another operator / site is tried.  ``rejected``, when
    given, collects one ``"operator: reason"`` line per rejected (built but infeasible) result.
    """
    from engine.search.interpret import InfeasibleCG, check_feasible

    names = list(operators or OPERATORS)
    unknown = [n for n in names if n not in OPERATORS]
    if unknown:
        raise ValueError(f"unknown mutation operator(s) {unknown}; choose from {sorted(OPERATORS)}")
    reasons = []
    for _ in range(max_tries):
        name = names[int(rng.integers(len(names)))]
        try:
            new, record = OPERATORS[name](cg, rng)
            if check:
                check_feasible(new)
            return new, record
        except (NoMutation, InfeasibleCG, CGError) as exc:
            reasons.append(f"{name}: {exc}")
            if rejected is not None and not isinstance(exc, NoMutation):
                rejected.append(f"{name}: {exc}")
    raise NoMutation("no feasible mutation found; tried " + "; ".join(reasons[-5:]))
