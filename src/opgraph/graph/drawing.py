"""Drawing graphs: Graphviz DOT text and a matplotlib PNG with a layered (topological) layout."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from opgraph.graph.ir import Graph, Node

_SOURCE_COLOR = "#cfe8ff"
_OUTPUT_COLOR = "#ffd9b3"
_OP_COLOR = "#eeeeee"


def _label(node: Node) -> str:
    if node.op == "input":
        return str(node.attrs.get("name", "input"))
    if node.op == "const":
        value = node.attrs.get("value")
        text = f"{value:.4g}" if isinstance(value, float) else repr(value)
        return text if len(text) <= 12 else text[:11] + "…"
    return node.op


def to_dot(graph: Graph) -> str:
    """Return the graph in Graphviz DOT syntax (inputs blue, outputs orange)."""
    lines = [f'digraph "{graph.meta.get("name", "graph")}" {{', "  rankdir=TB;", "  node [style=filled];"]
    for node in graph.nodes:
        color = _SOURCE_COLOR if not node.inputs else _OP_COLOR
        if node.id in graph.outputs:
            color = _OUTPUT_COLOR
        label = _label(node).replace('"', r"\"")
        lines.append(f'  n{node.id} [label="%{node.id} {label}", fillcolor="{color}"];')
    for node in graph.nodes:
        for i in dict.fromkeys(node.inputs):
            lines.append(f"  n{i} -> n{node.id};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def layered_positions(graph: Graph) -> dict[int, tuple[float, float]]:
    """Positions with one row per longest-path depth from the sources (x spread evenly within a row)."""
    depth: dict[int, int] = {}
    for node in graph.nodes:
        depth[node.id] = 1 + max((depth[i] for i in node.inputs), default=-1)
    rows: dict[int, list[int]] = {}
    for nid, d in depth.items():
        rows.setdefault(d, []).append(nid)
    pos: dict[int, tuple[float, float]] = {}
    for d, ids in rows.items():
        for k, nid in enumerate(ids):
            pos[nid] = (k - (len(ids) - 1) / 2.0, -float(d))
    return pos


def draw(graph: Graph, path: str | None = None, *, highlight: Mapping[int, str] | None = None) -> Any:
    """Draw ``graph`` with matplotlib.

    Args:
        graph: The graph.
        path: If given, the figure is saved there as PNG (atomically).
        highlight: Optional ``{node_id: color}`` overriding node colours (e.g. dominators, chosen layouts).

    Returns:
        The matplotlib Figure.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    import networkx as nx

    from opgraph._base.fileio import atomic_open

    g = graph.to_networkx()
    pos = layered_positions(graph)
    width = max(
        4.0,
        1.3 * max((sum(1 for p in pos.values() if p[1] == y) for y in {p[1] for p in pos.values()}), default=1),
    )
    height = max(3.0, 0.9 * (1 + max((-p[1] for p in pos.values()), default=0)))
    fig, ax = plt.subplots(figsize=(min(width, 16), min(height, 20)))
    colors = []
    for nid in g.nodes:
        node = graph.nodes[nid]
        color = _SOURCE_COLOR if not node.inputs else _OP_COLOR
        if nid in graph.outputs:
            color = _OUTPUT_COLOR
        if highlight and nid in highlight:
            color = highlight[nid]
        colors.append(color)
    nx.draw_networkx(
        g,
        pos=pos,
        ax=ax,
        labels={nid: _label(graph.nodes[nid]) for nid in g.nodes},
        node_color=colors,
        node_size=900,
        font_size=8,
        edgecolors="#555555",
        arrows=True,
    )
    ax.set_axis_off()
    fig.tight_layout()
    if path is not None:
        with atomic_open(path, "wb") as fh:
            fig.savefig(fh, format="png", dpi=100)
    return fig
