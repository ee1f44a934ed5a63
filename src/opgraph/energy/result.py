"""Result records of a diff (:class:`Finding`, :class:`RegionResult`, :class:`DiffReport`) and their exports."""

from __future__ import annotations

import linecache
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from opgraph._base.fileio import atomic_write
from opgraph._base.jsonio import write_json

if TYPE_CHECKING:
    from opgraph.energy.matcher import Match, Region
    from opgraph.energy.recorder import Run
    from opgraph.energy.replay import PairResult


def _num(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    return x


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, float):
        return _num(obj)
    return obj


def source_line(callsite: str, run: Run | None = None) -> str:
    """The text of the source line behind a call site ``"file.py:LINE in func"`` (empty if unavailable).

    ``callsite`` may be a user's line (``meta["callsite"]``) or a library line (``meta["lib_callsite"]``).
    """
    path, line = source_path(callsite, run)
    return linecache.getline(path, line).strip() if path else ""


def source_path(callsite: str, run: Run | None = None) -> tuple[str, int]:
    """The file path and line number behind a call site or library site of ``run`` (``("", 0)`` if unknown)."""
    if run is None or not callsite:
        return "", 0
    for n in run.graph.nodes:
        meta = n.meta
        if meta.get("callsite") == callsite and meta.get("file"):
            return str(meta["file"]), int(meta.get("line", 0))
        if meta.get("lib_callsite") == callsite and meta.get("lib_file"):
            return str(meta["lib_file"]), int(meta.get("lib_line", 0))
    return "", 0


@dataclass
class Finding:
    """One region (or one redundant op) where one side spends clearly more.

    Attributes:
        region: Region id.
        category: ``"api_misuse"``, ``"redundant"`` or ``"misconfig"``.
        ratio: Costly side over cheap side (median of paired rounds, >= 1).
        ci: 95% confidence interval of ``ratio``.
        delta_energy_j: Extra energy per call of the costly side, joules (None with the time backend;
            estimated with the model backend, see ``estimated``).
        a_callsites: A's call sites in the region, ``"file.py:LINE in func"``.
        b_callsites: B's call sites.
        a_lib_sites: Where A's ops ran inside a library's model code (``torch/nn``, ``transformers``...): the
            innermost library line of each op, ``"file.py:LINE in func"``, costliest first (by recorded time);
            empty where the region's ops were called from the user's code directly.
        b_lib_sites: B's library lines.
        module_path: Module path of the costly side's ops (most common).
        config_diff: Differing settings and per-op attributes, ``{key: [value_a, value_b]}``.
        knob: The setting/attribute that reproduced the gap in config bisection (None if none did).
        costly_side: ``"a"`` or ``"b"``.
        verdict: ``"waste"`` (outputs agree and the cheaper side is not slower) or ``"trade-off"``.
        delta_cost: Extra cost per call in the backend's unit (summed over ``regions``).
        delta_wall_s: Extra wall time per call of the costly side.
        unit: ``"J"`` or ``"s"``.
        estimated: Whether the energy is modelled.
        kind: ``"region"`` or ``"redundant_op"``.
        regions: Every region merged into this finding (same costly side, category and call sites, e.g. one
            line inside a loop); ``region``, ``ratio`` and ``ci`` are those of the costliest of them.
    """

    region: int
    category: str
    ratio: float
    ci: tuple[float, float]
    delta_energy_j: float | None
    a_callsites: list[str]
    b_callsites: list[str]
    module_path: str
    config_diff: dict[str, Any]
    knob: str | None
    costly_side: str = "a"
    verdict: str = "waste"
    delta_cost: float = 0.0
    delta_wall_s: float = 0.0
    unit: str = "J"
    estimated: bool = False
    kind: str = "region"
    ops_a: dict[str, int] = field(default_factory=dict)
    ops_b: dict[str, int] = field(default_factory=dict)
    redundant_ops: list[dict[str, Any]] = field(default_factory=list)
    bisection: list[dict[str, Any]] = field(default_factory=list)
    op_table: list[dict[str, Any]] = field(default_factory=list)
    regions: list[int] = field(default_factory=list)
    a_lib_sites: list[str] = field(default_factory=list)
    b_lib_sites: list[str] = field(default_factory=list)

    @property
    def callsites(self) -> list[str]:
        """Call sites of the costly side (the user's lines)."""
        return self.a_callsites if self.costly_side == "a" else self.b_callsites

    @property
    def lib_sites(self) -> list[str]:
        """Library lines of the costly side, costliest first (see ``a_lib_sites``)."""
        return self.a_lib_sites if self.costly_side == "a" else self.b_lib_sites

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return _clean(dict(vars(self)))

    def __repr__(self) -> str:
        energy = (
            "n/a (time-only)"
            if self.delta_energy_j is None
            else f"{self.delta_energy_j * 1e3:.3g} mJ{' (estimated)' if self.estimated else ''}"
        )
        where = self.callsites[0] if self.callsites else "?"
        if self.lib_sites:
            where = f"{self.lib_sites[0]} (library; called from {where})"
        return (
            f"Finding(region {self.region}, {self.category}, {self.verdict}, side {self.costly_side.upper()} "
            f"{self.ratio:.2f}x [{self.ci[0]:.2f}, {self.ci[1]:.2f}], dE={energy}, at {where}"
            f"{', knob=' + self.knob if self.knob else ''})"
        )


@dataclass
class RegionResult:
    """A matched region pair and its paired measurement."""

    region: Region
    pair: PairResult
    label: str
    flagged: bool = False

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        r = self.region
        return _clean(
            {
                "id": r.id,
                "a_nodes": list(r.a_nodes),
                "b_nodes": list(r.b_nodes),
                "a_cut": r.a_cut,
                "b_cut": r.b_cut,
                "level": r.level,
                "label": self.label,
                "flagged": self.flagged,
                **self.pair.to_dict(),
                "redundant": r.redundant,
            }
        )


@dataclass
class DiffReport:
    """The result of :func:`opgraph.energy.diff`.

    Attributes:
        findings: Ranked by extra cost, largest first.
        regions: Every measured region pair.
        backend: Name of the backend used (``"model"`` means the energy is estimated).
        backend_info: The backend's provenance (constants, notes, idle power...).
        threshold: Ratio threshold used (after calibration).
        calibration: The A-vs-A calibration measurement.
        outputs: Output comparison (``agree``, ``max_rel_error``, presets that match).
        tolerance: Relative tolerance used by the matcher.
        total: Whole-run paired measurement.
        settings_diff: Differing settings snapshot entries.
        notes: Caveats to show with every output.
    """

    findings: list[Finding]
    regions: list[RegionResult]
    backend: str
    backend_info: dict[str, Any]
    threshold: float
    calibration: dict[str, Any]
    outputs: dict[str, Any]
    tolerance: float
    total: PairResult
    settings_diff: dict[str, Any]
    notes: list[str]
    run_a: Run | None = field(default=None, repr=False)
    run_b: Run | None = field(default=None, repr=False)
    match: Match | None = field(default=None, repr=False)
    timings: dict[str, float] = field(default_factory=dict)

    # -- printing ----------------------------------------------------------------------------------------
    @property
    def cost_label(self) -> str:
        """Header for costs: energy (measured/estimated) or time."""
        if self.backend == "time":
            return "time (s)"
        return "energy (J, estimated)" if self.backend_info.get("estimated") else "energy (J, measured)"

    def __repr__(self) -> str:
        lines = [
            f"DiffReport(backend={self.backend}{' (energy ESTIMATED)' if self.backend_info.get('estimated') else ''}"
            f"{' (time only)' if self.backend == 'time' else ''}, {len(self.regions)} regions, "
            f"{len(self.findings)} findings, threshold {self.threshold:.2f}, "
            f"whole run A/B {self.total.ratio:.2f}x [{self.total.ci[0]:.2f}, {self.total.ci[1]:.2f}])"
        ]
        lines += [f"  {i + 1}. {f!r}" for i, f in enumerate(self.findings)]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of the whole report."""
        return _clean(
            {
                "format": "opgraph.energy.diff/1",
                "backend": self.backend,
                "backend_info": self.backend_info,
                "cost_label": self.cost_label,
                "threshold": self.threshold,
                "calibration": self.calibration,
                "outputs": self.outputs,
                "tolerance": self.tolerance,
                "total": self.total.to_dict(),
                "settings_diff": self.settings_diff,
                "notes": self.notes,
                "timings": self.timings,
                "findings": [f.to_dict() for f in self.findings],
                "regions": [r.to_dict() for r in self.regions],
            }
        )

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON; returns the path."""
        return write_json(path, self.to_dict())

    def table(self) -> Any:
        """A :class:`rich.table.Table` of the findings (or of the regions when nothing is flagged)."""
        from rich.table import Table as RichTable

        est = " est." if self.backend_info.get("estimated") else ""
        t = RichTable(title=f"opgraph energy diff ({self.backend}{est}; threshold {self.threshold:.2f})")
        for col in (
            "#",
            "region",
            "side",
            "category",
            "verdict",
            "ratio [95% CI]",
            f"dE ({self.backend_info.get('unit')}{est})",
            "costly call sites",
            "library line",
            "module",
            "knob",
        ):
            t.add_column(col)
        for i, f in enumerate(self.findings):
            t.add_row(
                str(i + 1),
                str(f.region),
                f.costly_side.upper(),
                f.category,
                f.verdict,
                f"{f.ratio:.2f} [{f.ci[0]:.2f}, {f.ci[1]:.2f}]",
                f"{f.delta_cost:.3g}",
                "\n".join(f.callsites[:3]),
                f.lib_sites[0] if f.lib_sites else "-",
                f.module_path or "-",
                f.knob or "-",
            )
        return t

    def region_table(self) -> Any:
        """A :class:`rich.table.Table` of every measured region."""
        from rich.table import Table as RichTable

        t = RichTable(title="regions (A | B ops)")
        for col in ("region", "ops A | ops B", "A/B ratio [95% CI]", "cost A", "cost B", "flagged"):
            t.add_column(col)
        for r in self.regions:
            p = r.pair
            t.add_row(
                str(r.region.id),
                r.label,
                f"{p.ratio:.2f} [{p.ci[0]:.2f}, {p.ci[1]:.2f}]",
                f"{p.a.cost:.3g}",
                f"{p.b.cost:.3g}",
                "yes" if r.flagged else "",
            )
        return t

    # -- exports ------------------------------------------------------------------------------------------
    def figure(self) -> Any:
        """Per-region bars of A and B cost with the ratio CI (matplotlib Figure)."""
        from opgraph.energy.plots import region_bars

        return region_bars(self)

    def to_html(self, path: str | os.PathLike[str]) -> Path:
        """Write an HTML page (through :func:`opgraph.report.write_report`) into directory ``path``."""
        from opgraph.report import write_report

        return write_report([self.section()], path, title="opgraph energy diff")

    def section(self) -> Any:
        """This report as a :class:`opgraph.report.Section`."""
        from opgraph.report import Figure, Section, Table

        rows = []
        for i, f in enumerate(self.findings):
            run = self.run_a if f.costly_side == "a" else self.run_b
            site = f.callsites[0] if f.callsites else ""
            rows.append(
                [
                    i + 1,
                    f.region,
                    f.costly_side.upper(),
                    f.category,
                    f.verdict,
                    round(f.ratio, 3),
                    f"[{f.ci[0]:.2f}, {f.ci[1]:.2f}]",
                    f"{f.delta_cost:.3g} {f.unit}",
                    site,
                    source_line(site, run),
                    f.lib_sites[0] if f.lib_sites else "",
                    source_line(f.lib_sites[0], run) if f.lib_sites else "",
                    f.module_path,
                    f.knob or "",
                ]
            )
        findings = Table(
            [
                "#",
                "region",
                "side",
                "category",
                "verdict",
                "ratio",
                "95% CI",
                "delta",
                "call site",
                "source line",
                "library line",
                "library source",
                "module",
                "knob",
            ],
            rows,
            caption=f"Findings ({self.cost_label}; backend {self.backend})",
        )
        reg_rows = [
            [
                r.region.id,
                r.label,
                round(r.pair.ratio, 3),
                f"[{r.pair.ci[0]:.2f}, {r.pair.ci[1]:.2f}]",
                f"{r.pair.a.cost:.3g}",
                f"{r.pair.b.cost:.3g}",
                "yes" if r.flagged else "",
            ]
            for r in self.regions
        ]
        regions = Table(
            ["region", "ops A | ops B", "A/B", "95% CI", "cost A", "cost B", "flagged"],
            reg_rows,
            caption="All matched regions",
        )
        import matplotlib.pyplot as plt

        fig = self.figure()
        figure = Figure.from_matplotlib(fig, "energy-regions", caption=f"Per-region cost, {self.cost_label}")
        plt.close(fig)
        return Section(
            id="energy-diff",
            title="Differential energy debugging",
            summary=(
                f"{len(self.findings)} finding(s) over {len(self.regions)} matched regions; whole run A/B = "
                f"{self.total.ratio:.2f}x; backend {self.backend}."
            ),
            figures=[figure],
            tables=[findings, regions],
            data={"report": self.to_dict()},
            notes=list(self.notes) or [f"backend {self.backend}: {self.backend_info.get('note', '')}"],
        )

    def _repr_html_(self) -> str:
        head = f"<p><b>opgraph energy diff</b> backend={self.backend} ({self.cost_label})</p>"
        rows = "".join(
            f"<tr><td>{i + 1}</td><td>{f.category}</td><td>{f.verdict}</td><td>{f.ratio:.2f}</td>"
            f"<td>{', '.join(f.callsites[:2])}</td><td>{f.lib_sites[0] if f.lib_sites else ''}</td>"
            f"<td>{f.knob or ''}</td></tr>"
            for i, f in enumerate(self.findings)
        )
        return (
            head
            + f"<table><tr><th>#</th><th>category</th><th>verdict</th><th>ratio</th><th>call sites</th><th>library line</th><th>knob</th></tr>{rows}</table>"
        )

    def to_perfetto(self, path: str | os.PathLike[str]) -> Path:
        """Chrome/Perfetto trace: A and B as two processes, ops and regions as spans, an energy counter track."""
        from opgraph.energy.exports import perfetto_trace

        return write_json(path, perfetto_trace(self), indent=None)

    def to_folded(self, path: str | os.PathLike[str]) -> Path:
        """Energy-weighted folded stacks ``stack value_a value_b`` (``flamegraph.pl`` differential input).

        Also writes ``<path>.a`` and ``<path>.b`` with one side each (``difffolded.pl`` input).
        """
        from opgraph.energy.exports import folded_stacks

        a, b = folded_stacks(self)
        keys = sorted(set(a) | set(b))
        p = Path(path)
        atomic_write(str(p) + ".a", "".join(f"{k} {a[k]}\n" for k in sorted(a)))
        atomic_write(str(p) + ".b", "".join(f"{k} {b[k]}\n" for k in sorted(b)))
        return atomic_write(p, "".join(f"{k} {a.get(k, 0)} {b.get(k, 0)}\n" for k in keys))
