"""Writing and rebuilding self-contained HTML report pages (Jinja2, figures embedded as PNG, JSON beside)."""

from __future__ import annotations

import base64
import datetime as _dt
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from opgraph._base.errors import OpgraphError
from opgraph._base.fileio import atomic_dir, atomic_write, folder_lock
from opgraph._base.jsonio import dumps, read_json
from opgraph._base.paths import check_name, inside
from opgraph._base.provenance import machine_line
from opgraph.report.sections import Figure, Section, Table

REPORT_FORMAT = "opgraph.report/1"
#: The entries of a report folder that belong to the report (everything else in the folder is left alone).
REPORT_ENTRIES = ("report.json", "index.html", "figures")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ReportError(OpgraphError):
    """A report directory is missing or its JSON is not an opgraph report."""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(Path(__file__).with_name("templates"))),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        undefined=jinja2.StrictUndefined,
    )
    env.filters["fmt"] = _fmt
    return env


def _machine() -> str:
    return machine_line()


def _href(address: str) -> str | None:
    """A link target for ``address``: URLs and ``file://`` URIs as they are; a bare path gets no link."""
    return address if address.split(":", 1)[0] in ("http", "https", "file") else None


def render_html(sections: Sequence[Section], title: str, generated: str | None = None) -> str:
    """Render the page for ``sections`` as one self-contained HTML string."""
    from opgraph import __version__

    ids = [s.id for s in sections]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise ReportError(f"report sections must have distinct ids; repeated: {dupes}")
    view = [
        {
            "id": s.id,
            "title": s.title,
            "notes": s.notes,
            "command": s.command,
            "links": [{"label": k, "href": _href(v), "text": v} for k, v in s.links.items()],
            "paragraphs": [p.strip() for p in s.summary.split("\n\n") if p.strip()],
            "tables": s.tables,
            "figures": [
                {"name": f.name, "caption": f.caption, "b64": base64.b64encode(f.png).decode("ascii")}
                for f in s.figures
            ],
        }
        for s in sections
    ]
    stamp = generated or _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        _env()
        .get_template("page.html.j2")
        .render(title=title, sections=view, version=__version__, generated=stamp, machine=_machine())
    )


def write_report(sections: Sequence[Section], out_dir: str | Path, title: str = "opgraph report") -> Path:
    """Write ``out_dir/index.html``, ``out_dir/report.json`` and ``out_dir/figures/<section>/<name>.png``.

    The page is built in a temporary folder beside ``out_dir`` and swapped into place in one step
    (:func:`opgraph._base.fileio.atomic_dir`): an interrupted run leaves the old report whole, a second writer of
    the same folder at the same time is refused, and other files in ``out_dir`` (a demo's ``work/``) are kept.
    ``report.json`` is strict JSON (NaN and infinities are written as the strings ``"NaN"``, ``"Infinity"``).

    Returns:
        The path of ``index.html``.

    Raises:
        UnsafeFileError: a section id or figure name is not a plain file name.
        ConcurrentWriteError: another process is writing ``out_dir``.
    """
    out = Path(out_dir)
    for s in sections:  # every name becomes a path: check them all before writing anything
        check_name(s.id, "section id")
        for f in s.figures:
            check_name(f.name, f"figure name in section {s.id!r}")
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    html = render_html(sections, title, generated)
    doc: dict[str, Any] = {"format": REPORT_FORMAT, "title": title, "generated": generated, "sections": []}
    with atomic_dir(out, owned=REPORT_ENTRIES) as tmp:
        for s in sections:
            figs = []
            for f in s.figures:
                rel = Path("figures") / s.id / f"{f.name}.png"
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(f.png)
                figs.append({"name": f.name, "caption": f.caption, "path": rel.as_posix()})
            doc["sections"].append(
                {
                    "id": s.id,
                    "title": s.title,
                    "summary": s.summary,
                    "notes": list(s.notes),
                    "command": s.command,
                    "links": dict(s.links),
                    "figures": figs,
                    "tables": [{"columns": t.columns, "rows": t.rows, "caption": t.caption} for t in s.tables],
                    "data": s.data,
                }
            )
        (tmp / "report.json").write_text(dumps(doc, indent=2) + "\n", encoding="utf-8")
        (tmp / "index.html").write_text(html, encoding="utf-8")
    return out / "index.html"


def load_report(out_dir: str | Path) -> tuple[str, list[Section]]:
    """Read ``out_dir/report.json`` (and its figures) back into sections; returns ``(title, sections)``."""
    from opgraph.report.shape import check_report_shape

    check_report_shape(Path(out_dir) / "report.json")
    out = Path(out_dir)
    path = out / "report.json"
    if not path.is_file():
        raise ReportError(f"{path} not found: pass a directory written by 'opgraph demo' or write_report()")
    doc = read_json(path, what="report", error=ReportError)
    if doc.get("format") != REPORT_FORMAT:
        raise ReportError(f"{path} is not an opgraph report (format {doc.get('format')!r}, want {REPORT_FORMAT!r})")
    sections = []
    for s in doc["sections"]:
        figures = []
        for f in s.get("figures", []):
            png_path = inside(out, f["path"], "figure path in report.json")
            if not png_path.is_file():
                raise ReportError(f"figure {png_path} listed in report.json is missing")
            png = png_path.read_bytes()
            if not png.startswith(PNG_SIGNATURE):
                raise ReportError(f"figure {png_path} listed in report.json is not a PNG file; refused")
            figures.append(Figure(f["name"], png, f.get("caption", "")))
        tables = [Table(t["columns"], t["rows"], t.get("caption", "")) for t in s.get("tables", [])]
        sections.append(
            Section(
                s["id"],
                s["title"],
                s.get("summary", ""),
                figures,
                tables,
                s.get("data", {}),
                s.get("notes", []),
                str(s.get("command", "")),
                {str(k): str(v) for k, v in dict(s.get("links", {})).items()},
            )
        )
    return str(doc.get("title", "opgraph report")), sections


def rebuild_report(out_dir: str | Path) -> Path:
    """Re-render ``out_dir/index.html`` from ``report.json`` and the saved figures."""
    with folder_lock(out_dir):  # not while another process rewrites the folder
        title, sections = load_report(out_dir)
        return atomic_write(Path(out_dir) / "index.html", render_html(sections, title))
