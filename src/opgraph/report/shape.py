"""Structure check of a parsed ``report.json``: a file of the wrong shape is one :class:`ReportError` line."""

from __future__ import annotations

import json
from pathlib import Path

from opgraph.report.page import REPORT_FORMAT, ReportError


def check_report_shape(path: Path) -> None:
    """Refuse a parseable ``report.json`` whose structure is not a report's (a list, a section without an id, ...).

    Missing or unparseable files are left to :func:`load_report`'s own messages.

    Raises:
        ReportError: naming the first part of the document that has the wrong type.
    """
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return

    def need(ok: bool, where: str, what: str) -> None:
        if not ok:
            raise ReportError(f"{path}: {where} must be {what}; re-run the job that wrote the report")

    need(isinstance(doc, dict), "the document", "a JSON object")
    if doc.get("format") != REPORT_FORMAT:
        return
    need(isinstance(doc.get("title", ""), str), "'title'", "a string")
    need(isinstance(doc.get("sections"), list), "'sections'", "a list")
    for i, s in enumerate(doc["sections"]):
        where = f"sections[{i}]"
        need(isinstance(s, dict), where, "an object")
        for key in ("id", "title"):
            need(isinstance(s.get(key), str), f"{where}.{key}", "a string")
        need(isinstance(s.get("summary", ""), str), f"{where}.summary", "a string")
        need(isinstance(s.get("data", {}), dict), f"{where}.data", "an object")
        need(isinstance(s.get("command", ""), str), f"{where}.command", "a string")
        links = s.get("links", {})
        need(
            isinstance(links, dict) and all(isinstance(v, str) for v in links.values()),
            f"{where}.links",
            "an object of strings",
        )
        notes = s.get("notes", [])
        need(isinstance(notes, list) and all(isinstance(n, str) for n in notes), f"{where}.notes", "a list of strings")
        figures = s.get("figures", [])
        need(isinstance(figures, list), f"{where}.figures", "a list")
        for j, f in enumerate(figures):
            fwhere = f"{where}.figures[{j}]"
            need(isinstance(f, dict), fwhere, "an object")
            for key in ("name", "path"):
                need(isinstance(f.get(key), str) and bool(f.get(key)), f"{fwhere}.{key}", "a non-empty string")
            need(isinstance(f.get("caption", ""), str), f"{fwhere}.caption", "a string")
        tables = s.get("tables", [])
        need(isinstance(tables, list), f"{where}.tables", "a list")
        for j, t in enumerate(tables):
            twhere = f"{where}.tables[{j}]"
            need(isinstance(t, dict), twhere, "an object")
            columns, rows = t.get("columns"), t.get("rows")
            need(
                isinstance(columns, list) and all(isinstance(c, str) for c in columns),
                f"{twhere}.columns",
                "a list of strings",
            )
            need(isinstance(rows, list) and all(isinstance(r, list) for r in rows), f"{twhere}.rows", "a list of lists")
            for k, r in enumerate(rows):
                need(len(r) == len(columns), f"{twhere}.rows[{k}]", f"a list of {len(columns)} cells")
            need(isinstance(t.get("caption", ""), str), f"{twhere}.caption", "a string")
