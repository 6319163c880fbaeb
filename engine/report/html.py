"""A small self-contained HTML report writer (no streamlit, no network at view time).

A :class:`Report` is a title and a list of :class:`Section` s; each section holds blocks —
paragraphs, key/value facts, tables (pandas) and Plotly figures.  :func:`render_html` writes one
HTML file that opens offline: CSS is inline and plotly.js is embedded **once**, inline, with the
first figure (``include_plotlyjs=True``); later figures reuse it (``include_plotlyjs=False``).
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;color:#1d1d1f;background:#fafafa}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px}
header{background:#7209b7;color:#fff;padding:28px 32px}
header h1{margin:0 0 6px;font-size:28px}header p{margin:0;opacity:.9}
h2{border-bottom:2px solid #7209b7;padding-bottom:4px;margin-top:40px}
section p{line-height:1.5}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px;background:#fff}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0e6f7}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.caption{color:#555;font-size:13px;margin:2px 0 12px}
.facts td:first-child{font-weight:600;background:#f7f7f7}
.figure{background:#fff;border:1px solid #eee;margin:8px 0 4px;padding:4px}
nav ol{columns:2;font-size:14px}
footer{color:#777;font-size:12px;margin-top:48px}
"""


@dataclass
class Block:
    """One piece of a section: ``kind`` in text / facts / table / figure / html."""

    kind: str
    content: Any
    caption: str = ""


@dataclass
class Section:
    """A titled part of the report; add blocks with the helper methods (they return ``self``)."""

    title: str
    blocks: list[Block] = field(default_factory=list)

    def text(self, text: str) -> Section:
        self.blocks.append(Block("text", text))
        return self

    def facts(self, facts: Mapping[str, Any], caption: str = "") -> Section:
        self.blocks.append(Block("facts", dict(facts), caption))
        return self

    def table(self, frame: pd.DataFrame, caption: str = "", max_rows: int = 50) -> Section:
        self.blocks.append(Block("table", (frame, max_rows), caption))
        return self

    def figure(self, fig: Any, caption: str = "") -> Section:
        if fig is not None:
            self.blocks.append(Block("figure", fig, caption))
        return self

    def raw_html(self, fragment: str) -> Section:
        self.blocks.append(Block("html", fragment))
        return self


@dataclass
class Report:
    title: str
    subtitle: str = ""
    sections: list[Section] = field(default_factory=list)
    created: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))

    def section(self, title: str) -> Section:
        sec = Section(title)
        self.sections.append(sec)
        return sec

    @property
    def num_figures(self) -> int:
        return sum(b.kind == "figure" for s in self.sections for b in s.blocks)


# --- rendering -----------------------------------------------------------------------------------

def _inline(text: str) -> str:
    """Escape, then a tiny markdown subset: **bold**, `code`."""
    out = html.escape(text)
    out = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", out)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", out)


def _text_html(text: str) -> str:
    parts = []
    for para in re.split(r"\n\s*\n", text.strip()):
        lines = [ln.strip() for ln in para.splitlines() if ln.strip()]
        if lines and all(ln.startswith(("- ", "* ")) for ln in lines):
            parts.append("<ul>" + "".join(f"<li>{_inline(ln[2:])}</li>" for ln in lines) + "</ul>")
        elif lines:
            parts.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "\n".join(parts)


def format_value(v: Any) -> str:
    """Human formatting of a table cell: floats to 4 significant digits below 1,000, whole
    numbers with thousands separators from 1,000 to 10^9 (a column of MFLOPs reads 1,210 and
    39,260, never 3.926e+04), scientific notation beyond; NaN as '—'."""
    if v is None:
        return "—"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        f = float(v)
        if not np.isfinite(f):
            return "—"
        if f != 0 and (abs(f) >= 1e9 or abs(f) < 1e-3):
            return f"{f:.3g}"
        return f"{f:,.0f}" if abs(f) >= 1000 else f"{f:.4g}"
    if isinstance(v, list | tuple):
        return ", ".join(format_value(x) for x in v)
    if isinstance(v, Mapping):
        return "; ".join(f"{k}: {format_value(x)}" for k, x in v.items())
    return str(v)


def table_html(frame: pd.DataFrame, max_rows: int = 50) -> str:
    shown = frame.head(max_rows)
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in shown.columns)
    rows = []
    for rec in shown.itertuples(index=False):
        cells = []
        for v in rec:
            cls = ' class="num"' if isinstance(v, int | float | np.integer | np.floating) else ""
            cells.append(f"<td{cls}>{html.escape(format_value(v))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = (f'<p class="caption">Showing {len(shown):,} of {len(frame):,} rows.</p>'
            if len(frame) > len(shown) else "")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{more}"


def facts_html(facts: Mapping[str, Any]) -> str:
    rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(format_value(v))}</td></tr>"
                   for k, v in facts.items())
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def figure_html(fig: Any, include_plotlyjs: bool) -> str:
    """A Plotly figure as an HTML fragment; plotly.js inline only when asked (the first)."""
    return fig.to_html(full_html=False, include_plotlyjs=bool(include_plotlyjs),
                       config={"displaylogo": False, "responsive": True})


def _slug(text: str, i: int) -> str:
    return f"s{i}-" + re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def render_html(report: Report) -> str:
    """The whole report as one self-contained HTML document (see module docstring)."""
    plotly_done = False
    body = []
    toc = []
    for i, sec in enumerate(report.sections, start=1):
        sid = _slug(sec.title, i)
        toc.append(f'<li><a href="#{sid}">{html.escape(sec.title)}</a></li>')
        parts = [f'<section id="{sid}"><h2>{i}. {html.escape(sec.title)}</h2>']
        for b in sec.blocks:
            if b.kind == "text":
                parts.append(_text_html(b.content))
            elif b.kind == "facts":
                parts.append(facts_html(b.content))
            elif b.kind == "table":
                frame, max_rows = b.content
                parts.append(table_html(frame, max_rows))
            elif b.kind == "figure":
                parts.append(f'<div class="figure">{figure_html(b.content, not plotly_done)}</div>')
                plotly_done = True
            elif b.kind == "html":
                parts.append(b.content)
            else:
                raise ValueError(f"unknown report block kind {b.kind!r}")
            if b.caption:
                parts.append(f'<p class="caption">{_inline(b.caption)}</p>')
        parts.append("</section>")
        body.append("\n".join(parts))
    sub = f"<p>{_inline(report.subtitle)}</p>" if report.subtitle else ""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(report.title)}</title><style>{_CSS}</style></head><body>"
        f"<header><h1>{html.escape(report.title)}</h1>{sub}<p>Created {html.escape(report.created)}</p></header>"
        f"<main><nav><strong>Contents</strong><ol>{''.join(toc)}</ol></nav>{''.join(body)}"
        "<footer>Generated by GENNAPE Studio. This file is self-contained: it needs no network "
        "connection and no other files.</footer></main></body></html>"
    )


_EXTERNAL = re.compile(r"<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*[\"']?(?:https?:)?//", re.I)


def external_references(doc: str) -> list[str]:
    """Tags that would load something from the network (should be empty)."""
    return [m.group(0) for m in _EXTERNAL.finditer(doc)]
