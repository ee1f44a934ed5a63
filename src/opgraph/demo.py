"""``opgraph demo``: run every available system's demo on built-in data and write one report page.

This module sits at the top layer with the CLI: it is the only place (with ``cli.py``) that imports the systems.
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from opgraph.graph import interpret, numpy_rules, trace
from opgraph.report import Figure, Section, Table, write_report

log = logging.getLogger(__name__)

SYSTEMS = ("dcg", "perf", "energy", "ffa")


def _example(x: Any, y: Any, z: Any) -> Any:
    """The graph-core demo function: shared inputs, a ufunc and a repeated subexpression."""
    s = x * y + np.sin(z)
    return s / (1 + x * y) + np.exp(-z * z)


def core_section() -> Section:
    """Trace a small function, draw its graph and list its dominators, separators and cut vertices."""
    g = trace(_example)
    idom = g.immediate_dominators()
    path = g.dominator_path()
    seps = g.separators()
    cuts = g.cut_vertices()
    highlight = {i: "#9ad19a" for i in path}
    fig = g.draw(highlight=highlight)
    (value,) = interpret(g, [1.0, 2.0, 0.5], numpy_rules())
    rows = [
        [
            f"%{n.id}",
            n.op,
            ", ".join(f"%{i}" for i in n.inputs),
            f"%{idom[n.id]}" if idom.get(n.id, n.id) != n.id else "(root)",
            "yes" if n.id in seps else "",
            "yes" if n.id in cuts else "",
            n.meta.get("source", ""),
        ]
        for n in g
    ]
    return Section(
        id="graph",
        title="Graph core: trace, interpret, dominators",
        summary=(
            "The function x*y + sin(z) over (1 + x*y) plus exp(-z*z) was traced into a graph. The repeated x*y "
            "is one node (common-subexpression merging), and every node records its source line.\n\n"
            f"Interpreting the graph with the NumPy rule table at (x, y, z) = (1, 2, 0.5) gives {value:.6f}, "
            f"the same as calling the function directly ({_example(1.0, 2.0, 0.5):.6f}). Green nodes lie on the "
            "dominator path of the output: every path from the inputs to the output passes through them."
        ),
        figures=[Figure.from_matplotlib(fig, "graph", "Traced graph; green: dominator path of the output.")],
        tables=[
            Table(
                ["node", "op", "inputs", "idom", "separator", "cut vertex", "source"],
                rows,
                "Nodes with their immediate dominator, whether they separate their inputs from the rest "
                "(a safe place to compress), and whether they are cut vertices.",
            )
        ],
        data={
            "nodes": len(g),
            "value": float(value),
            "dominator_path": list(path),
            "separators": sorted(seps),
            "cut_vertices": sorted(cuts),
            "graph": g.to_dict(),
        },
    )


# The extra that provides each system's optional dependencies (pyproject.toml [project.optional-dependencies]).
EXTRAS = {"dcg": "dcg", "perf": "perf", "energy": "energy", "ffa": "ffa"}


def _missing_extra(exc: BaseException) -> str | None:
    """The top-level module a demo lacks, if ``exc`` or an exception it was raised from is a missing dependency."""
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        if isinstance(seen, ModuleNotFoundError) and seen.name and not seen.name.startswith("opgraph"):
            return seen.name.split(".")[0]
        seen = seen.__cause__ or seen.__context__
    return None


def system_sections(work_dir: Path, *, quick: bool = True, only: tuple[str, ...] = SYSTEMS) -> list[Section]:
    """Run each available system's ``report_section``; a system that is not built or fails gets a note."""
    sections: list[Section] = []
    for name in only:
        try:
            mod = importlib.import_module(f"opgraph.{name}.demo")
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith(f"opgraph.{name}"):
                log.info("opgraph.%s has no demo yet", name)
                continue
            why = f"{exc.name} is not installed: pip install 'opgraph[{EXTRAS.get(name, 'all')}]'"
            log.warning("demo of opgraph.%s skipped: %s", name, why)
            sections.append(_failed(name, why))
            continue
        fn: Callable[..., Section] = mod.report_section
        t0 = time.perf_counter()
        try:
            section = fn(work_dir / name, quick=quick)
        except Exception as exc:  # one system's failure must not lose the others' results
            missing = _missing_extra(exc)
            if missing is not None:
                why = f"{missing} is not installed: pip install 'opgraph[{EXTRAS.get(name, 'all')}]'"
                log.warning("demo of opgraph.%s skipped: %s", name, why)
            else:
                why = f"{type(exc).__name__}: {exc}"
                log.exception("demo of opgraph.%s failed", name)
            sections.append(_failed(name, why))
            continue
        log.info("demo of opgraph.%s took %.1f s", name, time.perf_counter() - t0)
        sections.append(section)
    return sections


def _failed(name: str, why: str) -> Section:
    return Section(id=name, title=f"opgraph.{name}", summary=f"The {name} demo did not run: {why}", notes=[why])


def _docs_address(rel: str) -> str:
    """``file://`` URI of a repository page when this opgraph runs from a source checkout, else the repo path."""
    page = Path(__file__).resolve().parents[2] / rel
    return page.as_uri() if page.is_file() else rel


def with_provenance(section: Section, name: str, *, quick: bool) -> Section:
    """``section`` with the command that reproduces it and links to its system's docs and benchmark page."""
    if section.command or section.links:
        return section
    if name == "graph":
        command = "opgraph graph '(x*y + sin(z)) / (1 + x*y) + exp(-z*z)' --png graph.png"
        links = {"docs": _docs_address("docs/architecture.md")}
    else:
        command = f"opgraph demo --only {name}" + ("" if quick else " --full")
        links = {"docs": _docs_address(f"docs/{name}.md"), "benchmarks": _docs_address(f"docs/benchmarks/{name}.md")}
    return dataclasses.replace(section, command=command, links=links)


def run_demo(
    out_dir: str | Path,
    *,
    quick: bool = True,
    only: tuple[str, ...] = SYSTEMS,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Run the demos and write ``out_dir/index.html``; returns its path.

    Args:
        out_dir: The report folder (the systems' working files go to ``out_dir/work``).
        quick: Short demos (about a minute each at most).
        only: The systems to run.
        progress: Called with one line per finished section (``"[2/5] dcg: 3.1 s"``); the CLI prints them.
    """
    out = Path(out_dir)
    work = out / "work"
    work.mkdir(parents=True, exist_ok=True)
    total = 1 + len(only)
    t0 = time.perf_counter()
    sections = [with_provenance(core_section(), "graph", quick=quick)]
    if progress:
        progress(f"[1/{total}] graph core: {time.perf_counter() - t0:.1f} s")
    for k, name in enumerate(only, start=2):
        t0 = time.perf_counter()
        got = system_sections(work, quick=quick, only=(name,))
        sections.extend(with_provenance(sec, name, quick=quick) for sec in got)
        if progress:
            status = (
                "skipped (no demo)"
                if not got
                else ("failed" if got[-1].summary.startswith(f"The {name} demo did not run") else "done")
            )
            progress(f"[{k}/{total}] {name}: {status} in {time.perf_counter() - t0:.1f} s")
    return write_report(sections, out, title="opgraph demo")
