"""Figures of the energy system (matplotlib, Agg; functions return a Figure)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opgraph.energy.result import DiffReport


def region_bars(report: DiffReport) -> Any:
    """Per-region cost of A and B (bars) and the A/B ratio with its 95% CI (points), flagged regions in red."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import numpy as np

    regs = report.regions
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(6.0, 0.5 * len(regs) + 3), 6), sharex=True)
    x = np.arange(len(regs))
    a = [r.pair.a.cost for r in regs]
    b = [r.pair.b.cost for r in regs]
    ax1.bar(x - 0.2, a, 0.4, label="A", color="#d62728")
    ax1.bar(x + 0.2, b, 0.4, label="B", color="#1f77b4")
    ax1.set_ylabel(report.cost_label + " per call")
    ax1.legend()
    ratios = [r.pair.ratio for r in regs]
    lo = [r.pair.ratio - r.pair.ci[0] for r in regs]
    hi = [r.pair.ci[1] - r.pair.ratio for r in regs]
    colors = ["#d62728" if r.flagged else "#555555" for r in regs]
    ax2.errorbar(x, ratios, yerr=[lo, hi], fmt="none", ecolor="#999999")
    ax2.scatter(x, ratios, c=colors, zorder=3)
    ax2.axhline(report.threshold, color="#d62728", ls="--", lw=0.8, label=f"threshold {report.threshold:.2f}")
    ax2.axhline(1 / report.threshold, color="#d62728", ls="--", lw=0.8)
    ax2.axhline(1.0, color="black", lw=0.5)
    ax2.set_yscale("log")
    ax2.set_ylabel("A / B (95% CI)")
    ax2.set_xticks(x, [str(r.region.id) for r in regs])
    ax2.set_xlabel("region")
    ax2.legend()
    est = " (energy estimated)" if report.backend_info.get("estimated") else ""
    fig.suptitle(f"opgraph energy diff, backend {report.backend}{est}")
    fig.tight_layout()
    return fig


def profile_bars(rows: list[dict[str, Any]], label: str, top: int = 15) -> Any:
    """Horizontal bars of the costliest ops of a profile."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    rows = sorted(rows, key=lambda r: -r["cost"])[:top][::-1]
    fig, ax = plt.subplots(figsize=(7, 0.3 * len(rows) + 1.5))
    ax.barh([f"{r['op'].replace('aten::', '')} @ {r['callsite']}" for r in rows], [r["cost"] for r in rows])
    ax.set_xlabel(label)
    fig.tight_layout()
    return fig
