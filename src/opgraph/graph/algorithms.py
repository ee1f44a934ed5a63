"""Graph algorithms written once for every system: reachability, source sets, dominators, cuts, subgraphs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import networkx as nx

from opgraph.graph.errors import GraphError
from opgraph.graph.ir import Graph, Node

_ROOT = -1
_SINK = -2


def to_networkx(graph: Graph) -> nx.DiGraph:
    """Return a DiGraph with one edge producer -> consumer per data dependence; nodes carry ``op``."""
    g = nx.DiGraph()
    for node in graph.nodes:
        g.add_node(node.id, op=node.op)
        for i in node.inputs:
            g.add_edge(i, node.id)
    return g


def _check(graph: Graph, i: int) -> None:
    if not 0 <= i < len(graph):
        raise GraphError(f"node %{i} does not exist (graph has {len(graph)} nodes)")


def ancestors(graph: Graph, i: int) -> frozenset[int]:
    """Ids of every node that node ``i`` transitively consumes."""
    _check(graph, i)
    seen: set[int] = set()
    stack = list(graph.nodes[i].inputs)
    while stack:
        j = stack.pop()
        if j not in seen:
            seen.add(j)
            stack.extend(graph.nodes[j].inputs)
    return frozenset(seen)


def descendants(graph: Graph, i: int) -> frozenset[int]:
    """Ids of every node that transitively consumes node ``i``."""
    _check(graph, i)
    users = graph.users()
    seen: set[int] = set()
    stack = list(users[i])
    while stack:
        j = stack.pop()
        if j not in seen:
            seen.add(j)
            stack.extend(users[j])
    return frozenset(seen)


def source_inputs(graph: Graph) -> tuple[frozenset[int], ...]:
    """For every node, the graph-input ids it depends on; an input node depends on itself, a const on nothing."""
    out: list[frozenset[int]] = []
    for node in graph.nodes:
        if node.op == "input":
            out.append(frozenset((node.id,)))
        else:
            acc: frozenset[int] = frozenset()
            for i in node.inputs:
                acc = acc | out[i]
            out.append(acc)
    return tuple(out)


def _with_root(graph: Graph) -> nx.DiGraph:
    """The graph plus a virtual root feeding every graph input (every source node if there are no inputs).

    Constants and parameters carry no data from the inputs, so they are not fed by the root: a constant operand
    does not open a path around a node, and a straight-line computation has every node on its dominator path.
    """
    g = to_networkx(graph)
    g.add_node(_ROOT)
    sources = graph.inputs or tuple(node.id for node in graph.nodes if not node.inputs)
    for i in sources:
        g.add_edge(_ROOT, i)
    return g


def immediate_dominators(graph: Graph) -> dict[int, int]:
    """Immediate dominator of every node, from a virtual root feeding all graph inputs.

    A node ``d`` dominates ``n`` when every path from any graph input to ``n`` passes through ``d``. Inputs,
    and nodes that no input reaches (constants, parameters), map to themselves.
    """
    idom = nx.immediate_dominators(_with_root(graph), _ROOT)
    out = {node.id: node.id for node in graph.nodes}
    out.update({n: (n if d == _ROOT else d) for n, d in idom.items() if n != _ROOT})
    return out


def immediate_postdominators(graph: Graph) -> dict[int, int]:
    """Immediate post-dominator of every node that reaches an output, towards a virtual sink fed by the outputs.

    A node ``p`` post-dominates ``n`` when every path from ``n`` to any output passes through ``p``. Nodes whose
    only post-dominator is the virtual sink map to themselves; nodes that reach no output are absent.
    """
    g = to_networkx(graph).reverse(copy=True)
    g.add_node(_SINK)
    for o in graph.outputs:
        g.add_edge(_SINK, o)
    ipdom = nx.immediate_dominators(g, _SINK)
    return {n: (n if d == _SINK else d) for n, d in ipdom.items() if n != _SINK}


def dominator_path(graph: Graph, node: int | None = None) -> tuple[int, ...]:
    """The nodes that every path from the sources to ``node`` passes through, in topological order.

    Args:
        graph: The graph.
        node: Target node; by default the graph's outputs (all of them, through a virtual join).

    Returns:
        Node ids including ``node`` itself (the cut points of a straight-line graph).
    """
    g = _with_root(graph)
    if node is None:
        if not graph.outputs:
            raise GraphError("dominator_path: the graph has no outputs; pass node=")
        target: int = _SINK
        for o in graph.outputs:
            g.add_edge(o, _SINK)
    else:
        _check(graph, node)
        target = node
    idom = nx.immediate_dominators(g, _ROOT)
    if target not in idom:  # not reachable from any input (a constant expression)
        return (target,)
    chain: list[int] = []
    cur = target
    while cur != _ROOT:
        if cur >= 0:
            chain.append(cur)
        cur = idom[cur]
    return tuple(sorted(chain))


def cut_vertices(graph: Graph) -> frozenset[int]:
    """Articulation points of the undirected dependence graph (networkx)."""
    return frozenset(nx.articulation_points(to_networkx(graph).to_undirected()))


def separators(graph: Graph) -> frozenset[int]:
    """Nodes ``v`` that post-dominate every graph input in their source set.

    Downstream nodes see those inputs only through ``v``, so ``v``'s value may be replaced (for instance by a
    compressed distribution) without losing any dependence between ``v`` and the rest of the graph. Input nodes
    are trivially separators; nodes that depend on no input (constants) are not listed.
    """
    ipdom = immediate_postdominators(graph)
    chains: dict[int, set[int]] = {}
    for s in graph.inputs:
        chain: set[int] = set()
        cur = s
        while cur in ipdom:
            chain.add(cur)
            nxt = ipdom[cur]
            if nxt == cur:
                break
            cur = nxt
        chains[s] = chain
    srcs = source_inputs(graph)
    return frozenset(
        node.id for node in graph.nodes if srcs[node.id] and all(node.id in chains[s] for s in srcs[node.id])
    )


def subgraph(
    graph: Graph, node_ids: Sequence[int], outputs: Sequence[int] | None = None
) -> tuple[Graph, dict[int, int]]:
    """Extract ``node_ids`` as a new graph.

    Values that the chosen nodes consume from outside the set become new ``input`` nodes (named ``%i``, or the
    original input's name). Outputs default to the chosen nodes whose values are used outside the set or are
    outputs of ``graph`` (else the last chosen node).

    Every node records ``meta["origin"]``, the id it had in ``graph`` (or kept from an earlier pass), so error
    messages name the node the user knows.

    Returns:
        The subgraph and a map from old node ids (chosen and external) to new ids.
    """
    chosen = sorted(set(int(i) for i in node_ids))
    if not chosen:
        raise GraphError("subgraph: node_ids is empty")
    for i in chosen:
        _check(graph, i)
    chosen_set = set(chosen)
    mapping: dict[int, int] = {}
    nodes: list[Node] = []
    inputs: list[int] = []

    def add(op: str, ins: tuple[int, ...], attrs: dict[str, Any], meta: dict[str, Any], origin: int) -> int:
        nid = len(nodes)
        meta.setdefault("origin", origin)
        nodes.append(Node(nid, op, ins, attrs, meta))
        return nid

    for i in chosen:
        old = graph.nodes[i]
        for j in old.inputs:
            if j not in chosen_set and j not in mapping:
                src = graph.nodes[j]
                name = src.attrs.get("name", f"%{j}") if src.op == "input" else f"%{j}"
                mapping[j] = add("input", (), {"name": str(name)}, dict(src.meta), j)
                inputs.append(mapping[j])
        if old.op == "input":
            mapping[i] = add("input", (), dict(old.attrs), dict(old.meta), i)
            inputs.append(mapping[i])
        else:
            mapping[i] = add(old.op, tuple(mapping[j] for j in old.inputs), dict(old.attrs), dict(old.meta), i)
    if outputs is None:
        users = graph.users()
        outs = [i for i in chosen if i in graph.outputs or any(u not in chosen_set for u in users[i])] or [chosen[-1]]
    else:
        outs = list(outputs)
        for o in outs:
            if o not in chosen_set:
                raise GraphError(f"subgraph: output %{o} is not among node_ids")
    sub = Graph(tuple(nodes), tuple(inputs), tuple(mapping[o] for o in outs), {"parent_ids": chosen})
    return sub, mapping
