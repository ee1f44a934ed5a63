"""Rewrite passes: functions from a :class:`Graph` to a new :class:`Graph` that computes the same outputs.

A pass never edits its argument (graphs are frozen). Every node of the result records in ``meta["origin"]`` the id
of the node it came from in the graph the user built (kept through several passes and :func:`subgraph`), so error
messages (:attr:`Node.where`) keep naming the node the user can find in ``print(graph)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from opgraph.graph.errors import GraphError
from opgraph.graph.ir import Graph, Node


def _meta(node: Node) -> dict[str, Any]:
    meta = dict(node.meta)
    meta.setdefault("origin", node.id)
    return meta


def rebalance_sums(graph: Graph) -> Graph:
    """Rewrite every chain of ``add`` into sums of dependent groups combined by a balanced tree.

    A chain is a maximal tree of ``add`` nodes whose inner nodes have a single user (another ``add``) and are
    not outputs; its leaves are the non-absorbed operands, in left-to-right order. The leaves are grouped by
    shared graph inputs (two leaves that depend on a common input end up in one group, transitively), each group
    is summed by a balanced tree in leaf order, and the groups' sums are combined by a balanced tree in the order
    the groups appear (neighbours are paired level by level; an odd one out moves up a level).

    Why: a left-leaning chain ``((a + b) + c) + d`` makes every partial sum depend on all earlier inputs, so no
    partial sum separates its inputs from the rest of the graph; the grouped, balanced form makes each group's
    partial sum a separator (a safe place for :mod:`opgraph.dcg` to compress) and keeps every intermediate as small
    as possible. Floating-point sums may differ in the last bits from the original association.

    Every new node carries the ``meta`` of the chain's root (with ``"origin"`` set to the root's id).

    Args:
        graph: The graph to rewrite (not modified).

    Returns:
        A new graph with the same inputs (by name and order) and outputs; nodes other than ``add`` chains are kept
        in order with their ops, attrs and meta.
    """
    srcs = graph.source_inputs()
    # Sum leaves that share inputs first (so each group's partial sum separates its inputs), then combine the
    # independent groups in a balanced tree.
    return regroup_chains(graph, "add", lambda root, leaves: shared_input_groups(srcs, leaves))


def shared_input_groups(srcs: Sequence[frozenset[int]], leaves: Sequence[int]) -> list[list[int]]:
    """Positions of ``leaves`` grouped by shared inputs (transitively), groups in order of first appearance.

    ``srcs``: the graph's :meth:`Graph.source_inputs`. Within a group the positions keep their order, except that
    a leaf joining several groups appends the later groups' positions to the first one's.
    """
    groups: list[list[int]] = []
    gsrc: list[set[int]] = []
    for k, leaf in enumerate(leaves):
        s_leaf = set(srcs[leaf])
        hit = [g for g in range(len(groups)) if gsrc[g] & s_leaf]
        if not hit:
            groups.append([k])
            gsrc.append(s_leaf)
            continue
        base = hit[0]
        groups[base].append(k)
        gsrc[base] |= s_leaf
        for g in reversed(hit[1:]):
            groups[base].extend(groups[g])
            gsrc[base] |= gsrc[g]
            del groups[g], gsrc[g]
    return groups


def chains(graph: Graph, op: str) -> dict[int, list[int]]:
    """The maximal chains of the associative, commutative binary ``op`` (``"add"``, ``"mul"``): root -> leaves.

    A chain is a tree of ``op`` nodes whose inner nodes have a single user (another ``op`` node of the tree) and
    are not outputs; its leaves are the operands not absorbed, in left-to-right order (node ids; a value used
    twice by the chain is two leaves). Every ``op`` node that is not absorbed is a root (a lone ``op`` node is a
    chain of two leaves).
    """
    users = graph.users()
    outputs = set(graph.outputs)

    def absorbed(i: int) -> bool:
        n = graph.nodes[i]
        return n.op == op and len(users[i]) == 1 and i not in outputs and graph.nodes[users[i][0]].op == op

    out: dict[int, list[int]] = {}
    for n in graph.nodes:
        if n.op != op or absorbed(n.id):
            continue
        leaves: list[int] = []
        stack = list(reversed(n.inputs))
        while stack:
            i = stack.pop()
            if absorbed(i):
                stack.extend(reversed(graph.nodes[i].inputs))
            else:
                leaves.append(i)
        out[n.id] = leaves
    return out


def regroup_chains(graph: Graph, op: str, partition: Any) -> Graph:
    """Rewrite chains of the associative, commutative ``op`` (:func:`chains`) as groups combined by balanced trees.

    ``partition(root, leaves)`` receives a chain's root id and its leaves (node ids of ``graph``, in order) and
    returns the groups as lists of positions into ``leaves`` (each position once), or None to keep that chain as
    it is. Each group is combined by a balanced tree in the order given (neighbours paired level by level; an odd
    one out moves up a level), then the groups' values likewise, in the order of the groups. Every new node
    carries the ``meta`` of the chain's root (``"origin"`` set to the root's id). :func:`rebalance_sums` is this
    pass with the leaves grouped by shared inputs; :mod:`opgraph.dcg.exactlaw` groups the factors of a product
    whose exact law is known. Floating-point results may differ in the last bits from the original association.

    Args:
        graph: The graph to rewrite (not modified).
        op: The op name of the chains (``"add"`` or ``"mul"``: both operands' order is free).
        partition: The grouping per chain, as above.

    Returns:
        A new graph with the same inputs (by name and order) and outputs; other nodes are kept in order with
        their ops, attrs and meta.

    Raises:
        GraphError: a partition that does not use every leaf position exactly once.
    """
    found = chains(graph, op)
    plans: dict[int, list[list[int]]] = {}
    for root, leaves in found.items():
        groups = partition(root, list(leaves))
        if groups is None:
            continue
        if sorted(k for g in groups for k in g) != list(range(len(leaves))) or any(not g for g in groups):
            raise GraphError(f"regroup_chains: partition of chain {root} must use positions 0..{len(leaves) - 1} once")
        plans[root] = [list(g) for g in groups]
    inner: set[int] = set()
    for root in plans:  # the absorbed nodes of the regrouped chains (the others are copied as they are)
        stack = list(graph.nodes[root].inputs)
        leaf_set = set(found[root])
        while stack:
            i = stack.pop()
            if i in leaf_set or i in inner:
                continue
            inner.add(i)
            stack.extend(graph.nodes[i].inputs)

    out: list[Node] = []
    new_id: dict[int, int] = {}

    def emit(op_: str, inputs: tuple[int, ...], attrs: dict[str, Any], meta: dict[str, Any]) -> int:
        out.append(Node(len(out), op_, inputs, attrs, dict(meta)))
        return len(out) - 1

    def pairs(level: list[int], meta: dict[str, Any]) -> list[int]:
        nxt = [emit(op, (level[k], level[k + 1]), {}, meta) for k in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        return nxt

    for n in graph.nodes:
        if n.id in inner:
            continue
        meta = _meta(n)
        if n.id not in plans:
            new_id[n.id] = emit(n.op, tuple(new_id[i] for i in n.inputs), dict(n.attrs), meta)
            continue
        leaves = [new_id[i] for i in found[n.id]]
        level: list[int] = []
        for grp in plans[n.id]:
            part = [leaves[k] for k in grp]
            while len(part) > 1:
                part = pairs(part, meta)
            level.append(part[0])
        while len(level) > 2:
            level = pairs(level, meta)
        if len(level) == 1:
            new_id[n.id] = level[0]
        else:
            new_id[n.id] = emit(op, tuple(level), {}, meta)
    return Graph(
        tuple(out),
        tuple(new_id[i] for i in graph.inputs),
        tuple(new_id[o] for o in graph.outputs),
        dict(graph.meta),
    )


def square_powers(graph: Graph) -> Graph:
    """Rewrite ``x ** 2`` (``pow`` with the scalar constant exponent 2) into ``square(x)``.

    NumPy computes both as ``x * x`` (the same floats), but rules written per op see them differently: a ``pow`` rule
    must cover every exponent (its derivative in the exponent, ``x ** c * log x``, is undefined for ``x < 0``), while
    ``square`` has exact interval, derivative, envelope and second-order rules. So the rewrite gives :mod:`opgraph.dcg`
    the tighter rules for the most common power in real programs (``0.1 * (x - y) ** 2 + ...``: the certified W1
    bound of uqtestfuns' ConvexFailDomain at 8 atoms per input falls from 0.98 to 0.20).

    Args:
        graph: The graph to rewrite (not modified).

    Returns:
        A new graph with the same inputs and outputs; every ``pow`` node whose exponent is the constant 2 becomes a
        ``square`` node of its base (the constant stays, unused, if nothing else uses it), with its ``meta``.
        ``graph`` itself where there is none.
    """

    def squared(n: Node) -> bool:
        if n.op != "pow" or len(n.inputs) != 2:
            return False
        c = graph.nodes[n.inputs[1]]
        value = c.attrs.get("value") if c.op == "const" else None
        return value is not None and np.ndim(value) == 0 and float(value) == 2.0

    if not any(squared(n) for n in graph.nodes):
        return graph
    nodes = []
    for n in graph.nodes:
        if squared(n):
            nodes.append(Node(n.id, "square", (n.inputs[0],), {}, _meta(n)))
        else:
            nodes.append(Node(n.id, n.op, n.inputs, dict(n.attrs), _meta(n)))
    return Graph(tuple(nodes), graph.inputs, graph.outputs, dict(graph.meta))
