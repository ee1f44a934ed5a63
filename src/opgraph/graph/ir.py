"""The graph records: :class:`Node` and :class:`Graph`, small frozen dataclasses validated on construction."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np

from opgraph.graph.errors import GraphError

if TYPE_CHECKING:
    import networkx as nx


@dataclass(frozen=True, eq=False)
class Node:
    """One operation in a graph.

    Attributes:
        id: Position of the node in its graph (ids are ``0 .. len(graph) - 1`` in topological order).
        op: Canonical op name (see :data:`opgraph.graph.ops.OPS`); ``"input"`` and ``"const"`` are sources.
        inputs: Ids of the nodes whose values this node consumes, in argument order.
        attrs: Constant arguments (``"name"`` of an input, ``"value"`` of a const, a stride, ...).
        meta: Open annotations (``"shape"``, ``"dtype"``, ``"source"`` = ``"file.py:LINE"``, timings, bounds...).
            ``"origin"`` is the id the node had in the graph the user built, set by rewrite passes
            (:mod:`opgraph.graph.passes`) and :func:`~opgraph.graph.algorithms.subgraph`.
    """

    id: int
    op: str
    inputs: tuple[int, ...] = ()
    attrs: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        """``"node N (op) from file:line"``: how error messages name this node.

        ``N`` is ``meta["origin"]`` when a pass or subgraph extraction made the node (the id the user can find in
        the graph they built), else the node's own id.
        """
        src = self.meta.get("source")
        return f"node {self.meta.get('origin', self.id)} ({self.op})" + (f" from {src}" if src else "")

    def __repr__(self) -> str:
        args = ", ".join(f"%{i}" for i in self.inputs)
        extra = ""
        if self.op == "input":
            extra = f" {self.attrs.get('name')!r}"
        elif self.op == "const":
            extra = f" {_short(self.attrs.get('value'))}"
        return f"%{self.id} = {self.op}({args}){extra}"


def _short(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array{value.shape}"
    text = repr(value)
    return text if len(text) < 40 else text[:37] + "..."


@dataclass(frozen=True, eq=False)
class Graph:
    """A topologically ordered tuple of nodes plus the ids of its inputs and outputs.

    Construction validates the graph: node ids equal their positions, every input of a node exists and comes
    earlier (so there is no cycle), the declared inputs are ``input`` nodes and the outputs exist. A violation
    raises :class:`GraphError` naming the bad node.

    Attributes:
        nodes: The nodes in topological order.
        inputs: Ids of the graph's ``input`` nodes, in argument order.
        outputs: Ids of the nodes whose values the graph returns.
        meta: Open annotations (``"name"``, ``"output_shape"``, ...).
    """

    nodes: tuple[Node, ...]
    inputs: tuple[int, ...] = ()
    outputs: tuple[int, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "inputs", tuple(int(i) for i in self.inputs))
        object.__setattr__(self, "outputs", tuple(int(i) for i in self.outputs))
        n = len(self.nodes)
        for pos, node in enumerate(self.nodes):
            if not isinstance(node, Node):
                raise GraphError(f"graph entry {pos} is {type(node).__name__}, not a Node")
            if node.id != pos:
                raise GraphError(f"{node.where}: id {node.id} does not match its position {pos}")
            for i in node.inputs:
                if not 0 <= i < n:
                    raise GraphError(f"{node.where}: input %{i} does not exist (graph has {n} nodes)")
                if i >= pos:
                    raise GraphError(
                        f"{node.where}: input %{i} comes at or after the node "
                        "(nodes must be in topological order; a cycle is not allowed)"
                    )
        for i in self.inputs:
            if not 0 <= i < n or self.nodes[i].op != "input":
                raise GraphError(f"graph input %{i} is not an 'input' node")
        for node in self.nodes:
            if node.op == "input" and node.id not in self.inputs:
                raise GraphError(f"{node.where}: input node is not listed in graph.inputs")
        for i in self.outputs:
            if not 0 <= i < n:
                raise GraphError(f"graph output %{i} does not exist (graph has {n} nodes)")

    # -- basic access ---------------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def node(self, i: int) -> Node:
        """Return node ``i``."""
        return self.nodes[i]

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of the graph inputs, in argument order."""
        return tuple(str(self.nodes[i].attrs.get("name", f"in{k}")) for k, i in enumerate(self.inputs))

    @cached_property
    def _users(self) -> dict[int, tuple[int, ...]]:
        users: dict[int, list[int]] = {node.id: [] for node in self.nodes}
        for node in self.nodes:
            for i in dict.fromkeys(node.inputs):
                users[i].append(node.id)
        return {k: tuple(v) for k, v in users.items()}

    def users(self) -> dict[int, tuple[int, ...]]:
        """Map every node id to the ids of the nodes that consume it (each consumer once, in order)."""
        return dict(self._users)

    def last_uses(self) -> dict[int, int]:
        """Map every node id to the id of its last consumer (outputs are never freed, so they are absent)."""
        last: dict[int, int] = {}
        for node in self.nodes:
            for i in node.inputs:
                last[i] = node.id
        for i in self.outputs:
            last.pop(i, None)
        return last

    def __repr__(self) -> str:
        name = self.meta.get("name", "graph")
        head = f"{name}({', '.join(self.input_names)}) -> ({', '.join(f'%{i}' for i in self.outputs)})"
        body = "\n".join(f"  {node!r}" for node in self.nodes)
        return f"{head}\n{body}"

    # -- algorithms (implemented in opgraph.graph.algorithms) ------------------------------------------------
    def ancestors(self, i: int) -> frozenset[int]:
        """Ids of every node that node ``i`` depends on (not including ``i``)."""
        from opgraph.graph import algorithms

        return algorithms.ancestors(self, i)

    def descendants(self, i: int) -> frozenset[int]:
        """Ids of every node that depends on node ``i`` (not including ``i``)."""
        from opgraph.graph import algorithms

        return algorithms.descendants(self, i)

    def source_inputs(self) -> tuple[frozenset[int], ...]:
        """For every node, the set of graph-input ids it depends on (an input depends on itself)."""
        from opgraph.graph import algorithms

        return algorithms.source_inputs(self)

    def immediate_dominators(self) -> dict[int, int]:
        """Immediate dominators from a virtual root feeding every graph input (inputs and constants map to themselves)."""
        from opgraph.graph import algorithms

        return algorithms.immediate_dominators(self)

    def immediate_postdominators(self) -> dict[int, int]:
        """Immediate post-dominators towards a virtual sink fed by every output (sink-adjacent map to self)."""
        from opgraph.graph import algorithms

        return algorithms.immediate_postdominators(self)

    def dominator_path(self, node: int | None = None) -> tuple[int, ...]:
        """Nodes that every path from the inputs to ``node`` (default: the single output) passes through."""
        from opgraph.graph import algorithms

        return algorithms.dominator_path(self, node)

    def cut_vertices(self) -> frozenset[int]:
        """Articulation points of the undirected graph (removing one disconnects the graph)."""
        from opgraph.graph import algorithms

        return algorithms.cut_vertices(self)

    def separators(self) -> frozenset[int]:
        """Nodes through which all downstream uses of their source inputs pass (safe places to compress).

        Computed once per graph (graphs are immutable).
        """
        return self._separators

    @cached_property
    def _separators(self) -> frozenset[int]:
        from opgraph.graph import algorithms

        return algorithms.separators(self)

    def subgraph(self, node_ids: Sequence[int], outputs: Sequence[int] | None = None) -> tuple[Graph, dict[int, int]]:
        """Extract the nodes ``node_ids`` as a graph; values entering from outside become new inputs."""
        from opgraph.graph import algorithms

        return algorithms.subgraph(self, node_ids, outputs)

    def to_networkx(self) -> nx.DiGraph:
        """A :class:`networkx.DiGraph` with an edge producer -> consumer for every data dependence."""
        from opgraph.graph import algorithms

        return algorithms.to_networkx(self)

    def to_dot(self) -> str:
        """The graph in Graphviz DOT syntax."""
        from opgraph.graph import drawing

        return drawing.to_dot(self)

    def draw(self, path: str | None = None, *, highlight: Mapping[int, str] | None = None) -> Any:
        """Draw the graph with matplotlib; save a PNG to ``path`` if given and return the Figure."""
        from opgraph.graph import drawing

        return drawing.draw(self, path, highlight=highlight)

    # -- serialisation ----------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dict (NumPy values become lists; :meth:`from_dict` restores NumPy arrays as lists)."""
        return {
            "format": "opgraph.graph/1",
            "nodes": [
                {
                    "id": n.id,
                    "op": n.op,
                    "inputs": list(n.inputs),
                    "attrs": _jsonable(n.attrs),
                    "meta": _jsonable(n.meta),
                }
                for n in self.nodes
            ],
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "meta": _jsonable(self.meta),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Graph:
        """Rebuild a graph written by :meth:`to_dict`; raises :class:`GraphError` on a malformed dict."""
        try:
            nodes = tuple(
                Node(
                    int(d["id"]),
                    str(d["op"]),
                    tuple(int(i) for i in d["inputs"]),
                    dict(d["attrs"]),
                    dict(d["meta"]),
                )
                for d in data["nodes"]
            )
            return cls(nodes, tuple(data["inputs"]), tuple(data["outputs"]), dict(data.get("meta", {})))
        except (KeyError, TypeError, ValueError) as exc:
            raise GraphError(f"not a graph dict (expected keys nodes/inputs/outputs): {exc}") from exc


def _jsonable(value: Any) -> Any:
    """Convert NumPy scalars/arrays, tuples and other objects into JSON-able values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float | int | str | bool) or value is None:
        return value
    return repr(value)
