"""Report pages: self-contained HTML (Jinja2, embedded PNG figures) with the numbers in JSON beside it.

Each system contributes :class:`Section` objects; :func:`write_report` assembles them into one page.
"""

from opgraph.report.page import ReportError, load_report, rebuild_report, render_html, write_report
from opgraph.report.sections import Figure, Section, Table

__all__ = [
    "Figure",
    "ReportError",
    "Section",
    "Table",
    "load_report",
    "rebuild_report",
    "render_html",
    "write_report",
]
