"""Writing and rebuilding self-contained HTML report pages (Jinja2, figures embedded as PNG, JSON beside)."""

from __future__ import annotations

import base64
import datetime as _dt
import json
import math
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2

from opgraph.graph.errors import OpgraphError
from opgraph.graph.io import atomic_write
from opgraph.report.sections import Figure, Section, Table

REPORT_FORMAT = "opgraph.report/1"


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
    return f"{platform.machine()} · {platform.system()} · Python {platform.python_version()}"


def _json_default(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, np.generic):
            return value.item()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return repr(value)


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

    Every file is written atomically (temp file + rename), so an interrupted run never leaves half a page.

    Returns:
        The path of ``index.html``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generated = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc: dict[str, Any] = {"format": REPORT_FORMAT, "title": title, "generated": generated, "sections": []}
    for s in sections:
        figs = []
        for f in s.figures:
            rel = Path("figures") / s.id / f"{f.name}.png"
            atomic_write(out / rel, f.png)
            figs.append({"name": f.name, "caption": f.caption, "path": rel.as_posix()})
        doc["sections"].append(
            {
                "id": s.id,
                "title": s.title,
                "summary": s.summary,
                "notes": list(s.notes),
                "figures": figs,
                "tables": [{"columns": t.columns, "rows": t.rows, "caption": t.caption} for t in s.tables],
                "data": s.data,
            }
        )
    atomic_write(out / "report.json", json.dumps(doc, indent=2, default=_json_default, allow_nan=True))
    return atomic_write(out / "index.html", render_html(sections, title, generated))


def load_report(out_dir: str | Path) -> tuple[str, list[Section]]:
    """Read ``out_dir/report.json`` (and its figures) back into sections; returns ``(title, sections)``."""
    from opgraph.report.shape import check_report_shape

    check_report_shape(Path(out_dir) / "report.json")
    out = Path(out_dir)
    path = out / "report.json"
    if not path.is_file():
        raise ReportError(f"{path} not found: pass a directory written by 'opgraph demo' or write_report()")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path} is not valid JSON ({exc}); re-run the job that wrote it") from exc
    if doc.get("format") != REPORT_FORMAT:
        raise ReportError(f"{path} is not an opgraph report (format {doc.get('format')!r}, want {REPORT_FORMAT!r})")
    sections = []
    for s in doc["sections"]:
        figures = []
        for f in s.get("figures", []):
            png_path = out / f["path"]
            if not png_path.is_file():
                raise ReportError(f"figure {png_path} listed in report.json is missing")
            figures.append(Figure(f["name"], png_path.read_bytes(), f.get("caption", "")))
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
            )
        )
    return str(doc.get("title", "opgraph report")), sections


def rebuild_report(out_dir: str | Path) -> Path:
    """Re-render ``out_dir/index.html`` from ``report.json`` and the saved figures."""
    title, sections = load_report(out_dir)
    return atomic_write(Path(out_dir) / "index.html", render_html(sections, title))
