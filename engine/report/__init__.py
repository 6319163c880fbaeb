"""Self-contained HTML reports (figures embedded, opens offline); never imports streamlit.

>>> from engine.report import Report, render_html
>>> rep = Report("Demo"); _ = rep.section("Intro").text("Hello **world**")
>>> "<strong>world</strong>" in render_html(rep)
True
"""

from engine.report.html import Block, Report, Section, external_references, render_html
from engine.report.studio import GLOSSARY, report_html, studio_report

__all__ = ["GLOSSARY", "Block", "Report", "Section", "external_references", "render_html", "report_html",
           "studio_report"]
