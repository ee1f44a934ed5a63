"""Figures of :mod:`opgraph.perf` (matplotlib, Agg; each function returns a ``matplotlib.figure.Figure``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from opgraph.perf.tpugraphs import GraphRecord


def _figure(w: float, h: float) -> Any:
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h))


def predicted_vs_measured(records: Sequence[GraphRecord], preds: Sequence[np.ndarray], *, max_graphs: int = 6) -> Any:
    """One panel per graph: model cost (x, standardised) against measured runtime (y, ms or normalised)."""
    from opgraph.perf.metrics import kendall_tau

    n = min(len(records), max_graphs)
    cols = min(3, n)
    rows = int(np.ceil(n / cols))
    fig = _figure(4 * cols, 3.2 * rows)
    for k in range(n):
        ax = fig.add_subplot(rows, cols, k + 1)
        r, p = records[k], np.asarray(preds[k])
        y = r.target_runtime()
        y_plot = y / 1e6 if r.kind == "layout" else y
        z = (p - p.mean()) / (p.std() + 1e-12)
        ax.scatter(z, y_plot, s=12, alpha=0.7)
        ax.set_title(f"{r.name}\ntau={kendall_tau(p, y):.2f}", fontsize=8)
        ax.set_xlabel("predicted cost (standardised)", fontsize=8)
        ax.set_ylabel("runtime (ms)" if r.kind == "layout" else "runtime / default", fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def tau_vs_ceiling(comparison: Any, *, models: Sequence[str] | None = None) -> Any:
    """Per held-out graph: Kendall tau of each model next to the graph's inter-round tau (noise ceiling)."""
    names = list(models or comparison.scores)
    first = comparison.scores[names[0]]
    graphs = [g.graph for g in first.graphs]
    x = np.arange(len(graphs))
    width = 0.8 / (len(names) + 1)
    fig = _figure(max(6, 0.6 * len(graphs) * (len(names) + 1) / 2), 3.8)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(x, [g.ceiling_tau for g in first.graphs], width, color="lightgray", label="noise ceiling")
    for k, name in enumerate(names):
        taus = [g.kendall_tau for g in comparison.scores[name].graphs]
        ax.bar(x + (k + 1) * width, taus, width, label=name)
    ax.set_xticks(x + width * len(names) / 2)
    ax.set_xticklabels(graphs, rotation=45, ha="right", fontsize=7)
    ax.set_ylabel("Kendall tau")
    ax.axhline(0, color="black", lw=0.5)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    return fig


def draw_layout_choice(record: GraphRecord, choice: np.ndarray, *, title: str = "") -> Any:
    """Draw a layout graph with its configurable nodes coloured by the chosen format (NCHW / channels-last)."""
    import networkx as nx

    from opgraph.perf.opcodes import opcode_names

    g = nx.DiGraph()
    g.add_nodes_from(range(record.n_nodes))
    g.add_edges_from((int(p), int(c)) for c, p in np.asarray(record.edge_index))
    n_cols, n_rows = 12, 1
    try:
        gen = list(nx.topological_generations(g))
        # One column per topological generation, wrapped every 12 columns so long chains stay readable.
        n_cols = min(len(gen), 12)
        n_rows = -(-len(gen) // n_cols)
        row_h = max(len(level) for level in gen) + 1.0
        pos = {
            v: (j % n_cols, -(j // n_cols) * row_h + i - len(level) / 2)
            for j, level in enumerate(gen)
            for i, v in enumerate(sorted(level))
        }
    except nx.NetworkXUnfeasible:
        pos = nx.spring_layout(g, seed=0)
    names = opcode_names()
    cfg = {int(v): int(c) for v, c in zip(record.node_config_ids, np.asarray(choice).reshape(-1))}
    colors = ["tab:blue" if cfg.get(v) == 0 else "tab:orange" if cfg.get(v) == 1 else "lightgray" for v in g]
    fig = _figure(max(6.0, 0.8 * n_cols), max(3.0, 1.6 * n_rows))
    ax = fig.add_subplot(1, 1, 1)
    nx.draw_networkx(
        g,
        pos,
        ax=ax,
        node_color=colors,
        node_size=180,
        labels={v: names.get(int(record.node_opcode[v]), "?")[:5] for v in g},
        font_size=5,
        arrowsize=6,
    )
    from matplotlib.patches import Patch

    ax.legend(
        handles=[
            Patch(color="tab:blue", label="NCHW"),
            Patch(color="tab:orange", label="channels-last"),
            Patch(color="lightgray", label="not configurable"),
        ],
        fontsize=7,
        loc="upper right",
    )
    ax.set_title(title or f"{record.name}: chosen layout", fontsize=9)
    ax.axis("off")
    fig.tight_layout()
    return fig
