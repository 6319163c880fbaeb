"""Interactive CG view: a pyvis network rendered to self-contained HTML for ``st.iframe``.

pyvis's ``cdn_resources="in_line"`` inlines vis-network, but its template still links
Bootstrap from a CDN (and carries a commented-out local ``vis.js`` reference); :func:`strip_external`
removes every tag that would load something over the network, so the view works offline.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from engine.graphs.ops import OP_COLOURS, OP_DOCS

_COMMENT = re.compile(r"<!--.*?-->", re.S)
_EXT_LINK = re.compile(r"<link\b[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//[^>]*>", re.I | re.S)
_EXT_SCRIPT = re.compile(r"<script\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//[^>]*>\s*</script>", re.I | re.S)
_CENTER_H1 = re.compile(r"<center>\s*<h1>\s*</h1>\s*</center>", re.I)

#: most nodes shown before the view asks the user to confirm (vis gets slow beyond this)
MAX_NODES = 1500


def strip_external(doc: str) -> str:
    """Remove comments, ``<link href=http…>`` and ``<script src=http…></script>`` tags."""
    doc = _COMMENT.sub("", doc)
    doc = _EXT_LINK.sub("", doc)
    doc = _EXT_SCRIPT.sub("", doc)
    return _CENTER_H1.sub("", doc)


_UNSAFE = re.compile(r"[<>&\"'`\\]")


def safe_text(text: Any, limit: int = 120) -> str:
    """User-provided text (node names from uploads) without characters that could break out of
    the generated HTML / JSON, truncated to ``limit``."""
    return _UNSAFE.sub("", str(text))[:limit]


def _shape(s: Any) -> str:
    return "x".join(str(v) for v in s) if s is not None else "—"


def node_title(nd: Any) -> str:
    """Hover text of one node: op, shapes, weight, FLOPs, params."""
    lines = [f"{nd.op} (node {nd.id}){' — ' + safe_text(nd.name) if nd.name else ''}",
             f"in  {_shape(nd.in_shape)}  (H x W x C)", f"out {_shape(nd.out_shape)}"]
    if nd.weight is not None:
        lines.append(f"weight {_shape(nd.weight)}  (C_in x C_out x kH x kW)")
        lines.append(f"stride {_shape(nd.stride)}, groups {nd.groups}, bias {'yes' if nd.bias else 'no'}")
    lines.append(f"FLOPs {nd.flops:,}   params {nd.params:,}")
    lines.append(OP_DOCS.get(nd.op, ""))
    return "\n".join(ln for ln in lines if ln)


def node_label(nd: Any) -> str:
    if nd.weight is not None and nd.op in ("conv", "depthwise", "group_conv"):
        return f"{nd.op} {nd.weight[2]}x{nd.weight[3]}\n{nd.out_shape[2]}ch"
    if nd.op == "linear" and nd.weight is not None:
        return f"linear\n{nd.weight[1]}"
    if nd.op in ("maxpool", "avgpool") and nd.stride and max(nd.stride) > 1:
        return f"{nd.op}\n/{max(nd.stride)}"
    return nd.op


def depths(cg: Any) -> list[int]:
    """Longest-path depth of every node from the input (levels of the hierarchical layout)."""
    depth = [0] * cg.num_nodes
    preds = cg.predecessors()
    for v in cg.topological_order():
        if preds[v]:
            depth[v] = 1 + max(depth[u] for u in preds[v])
    return depth


def text_colour(background: str) -> str:
    """Black or white, whichever reads better on ``background`` (``#rrggbb``)."""
    r, g, b = (int(background[i:i + 2], 16) for i in (1, 3, 5))
    return "#111111" if 0.299 * r + 0.587 * g + 0.114 * b > 150 else "#ffffff"


def cg_network(cg: Any, height: int = 640, hierarchical: bool = True):
    """A pyvis ``Network`` of ``cg``: nodes coloured by op (``OP_COLOURS``), hover details,
    top-down hierarchical layout, physics off (stable, fast)."""
    from pyvis.network import Network

    net = Network(height=f"{height}px", width="100%", directed=True, cdn_resources="in_line", bgcolor="#ffffff")
    lv = depths(cg) if hierarchical else [0] * cg.num_nodes
    for nd in cg.nodes:
        kw = {"level": lv[nd.id]} if hierarchical else {}
        colour = OP_COLOURS.get(nd.op, "#6c757d")
        net.add_node(nd.id, label=node_label(nd), title=node_title(nd), color=colour,
                     shape="box" if nd.weight is not None else "ellipse",
                     font={"color": text_colour(colour), "size": 12}, **kw)
    for u, v in cg.edges:
        # an edge that skips levels (a residual shortcut) bows out sideways: drawn like the others it
        # can run straight down the column of the chain it bypasses, on top of it, and disappear
        bow = {"smooth": {"type": "curvedCW", "roundness": 0.35}} if hierarchical and lv[v] - lv[u] > 1 else {}
        net.add_edge(u, v, color="#999999", **bow)
    options = {
        "layout": {"hierarchical": {"enabled": hierarchical, "direction": "UD", "sortMethod": "directed",
                                    "levelSeparation": 70, "nodeSpacing": 110, "treeSpacing": 120}},
        "physics": {"enabled": False},
        "edges": {"arrows": {"to": {"enabled": True, "scaleFactor": 0.5}}, "smooth": {"type": "cubicBezier",
                                                                                    "forceDirection": "vertical"}},
        "interaction": {"hover": True, "tooltipDelay": 80, "navigationButtons": False, "zoomView": True},
    }
    net.set_options(json.dumps(options))
    return net


#: above this many nodes, or this many levels (a deep chain such as a ResNet), the view opens
#: zoomed in on the input instead of fitting the whole graph (which would make the nodes dots)
FOCUS_ABOVE = 80
FOCUS_ABOVE_LEVELS = 16


def cg_html(cg: Any, height: int = 640, hierarchical: bool = True) -> str:
    """Self-contained HTML (no network access) of the interactive CG view.  Large or deep graphs
    open at a readable zoom on the input node (fitting them would make the nodes dots)."""
    doc = strip_external(cg_network(cg, height, hierarchical).generate_html())
    if cg.num_nodes > FOCUS_ABOVE or (hierarchical and max(depths(cg)) > FOCUS_ABOVE_LEVELS):
        start = next((nd.id for nd in cg.nodes if nd.op == "input"), 0)
        focus = ("<script>(function () { if (typeof network === 'undefined' || !network) return;"
                 " var touched = false;"
                 " network.on('dragStart', function () { touched = true; });"
                 " network.on('zoom', function () { touched = true; });"
                 " function focusInput() { if (touched) return; var h = network.body.container.clientHeight || 600;"
                 f" network.moveTo({{position: network.getPosition({int(start)}), scale: 0.9,"
                 " offset: {x: 0, y: -0.38 * h}}); }"
                 " network.once('afterDrawing', function () { setTimeout(focusInput, 250); });"
                 " window.addEventListener('load', function () { setTimeout(focusInput, 600); });"
                 " })();</script>")
        doc = doc.replace("</body>", focus + "</body>", 1)
    return doc


def legend_html(ops: list[str]) -> str:
    """A small colour legend for the ops present in a CG."""
    items = "".join(
        f'<span style="display:inline-block;margin:2px 8px 2px 0"><span style="display:inline-block;width:12px;'
        f'height:12px;border-radius:3px;background:{OP_COLOURS.get(o, "#6c757d")};vertical-align:middle"></span> '
        f'{html.escape(o)}</span>' for o in ops)
    return f'<div style="font-size:13px">{items}</div>'
