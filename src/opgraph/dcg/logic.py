"""Truth-valued ops: ``&``, ``|``, ``^``, ``~`` and ``np.logical_*`` of comparisons (``(x > a) | (y > b)``).

The engine holds a comparison's value as 0.0 / 1.0 (float64). The ``logical_*`` ops take any nonzero value as
true (NumPy's rule); the bitwise ops (``np.bitwise_or``, ``|``, ...) are defined here on truth values only (0 and
1, where they agree with the logical ops): on any other value NumPy's bitwise ops mean integer bit operations,
so the point rule raises, naming the node. Interval rule: the value is 1 (0) on a box where the operands decide
it, else ``[0, 1]`` with a jump (derivative enclosure ``[-inf, inf]``), as for a comparison; for a bitwise op an
operand enclosure outside ``[0, 1]`` gives ``[-inf, inf]``. These ops jump, so they have no polynomial growth
majorant and cell subdivision does not tighten them (:data:`opgraph.dcg.enclose.JUMP_OPS`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from opgraph.dcg.errors import DistError
from opgraph.graph import Graph

Interval = tuple[np.ndarray, np.ndarray]

#: Bitwise ops on truth values -> the logical op they equal there (NumPy's ufunc name in the error message).
BITWISE = {"and": "logical_and", "or": "logical_or", "xor": "logical_xor", "not": "logical_not"}
_UFUNC_NAME = {"and": "bitwise_and (&)", "or": "bitwise_or (|)", "xor": "bitwise_xor (^)", "not": "invert (~)"}
#: Every truth-valued op of this module.
OPS = ("and", "or", "xor", "not", "logical_and", "logical_or", "logical_xor", "logical_not")
#: Ops whose value is 0 or 1 wherever it is defined: the comparisons and the ops above.
TRUTH_VALUED = frozenset({"lt", "le", "gt", "ge", "eq", "ne", *OPS})
_INF = np.inf


def _combine(op: str, t: list[np.ndarray], f: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Where the result is surely true / surely false, from the operands' surely-true ``t`` / surely-false ``f``."""
    kind = BITWISE.get(op, op)
    if kind == "logical_not":
        return f[0], t[0]
    if kind == "logical_and":
        return t[0] & t[1], f[0] | f[1]
    if kind == "logical_or":
        return t[0] | t[1], f[0] & f[1]
    # logical_xor
    return (t[0] & f[1]) | (f[0] & t[1]), (t[0] & t[1]) | (f[0] & f[1])


def _interval_rule(op: str) -> Callable[[list[Interval], dict[str, Any]], tuple[Interval, list[Interval]]]:
    def rule(args: list[Interval], attrs: dict[str, Any]) -> tuple[Interval, list[Interval]]:
        t = [(lo > 0) | (hi < 0) for lo, hi in args]  # the box excludes 0: surely true (NaN: undecided)
        f = [(lo == 0) & (hi == 0) for lo, hi in args]
        true, false = _combine(op, t, f)
        v = (np.where(true, 1.0, 0.0), np.where(false, 0.0, 1.0))
        if op in BITWISE:
            # outside [0, 1] a bitwise op is not a truth op (NaN endpoints are outside too)
            outside = np.zeros(np.shape(v[0]), dtype=bool)
            for lo, hi in args:
                outside = outside | ~((lo >= 0) & (hi <= 1))
            v = (np.where(outside, -_INF, v[0]), np.where(outside, _INF, v[1]))
        decided = (true | false) & np.isfinite(v[0])
        d = (np.where(decided, 0.0, -_INF), np.where(decided, 0.0, _INF))
        return v, [d] * len(args)

    rule.__name__ = f"_{op}"
    return rule


#: Interval rules (value enclosure, per-operand derivative enclosures), merged into
#: :data:`opgraph.dcg.intervals.RULES`.
INTERVAL_RULES = {op: _interval_rule(op) for op in OPS}


def _point_rule(op: str) -> Callable[..., Any]:
    logical = getattr(np, BITWISE.get(op, op))

    def rule(node: Any, *values: Any) -> Any:
        if op in BITWISE:
            for v in values:
                a = np.asarray(v, dtype=float)
                if not np.all((a == 0.0) | (a == 1.0)):
                    where = getattr(node, "where", f"op {op!r}")
                    raise DistError(
                        f"{where}: np.{_UFUNC_NAME[op]} of a value other than 0 and 1 (an integer bit operation); "
                        "apply it to comparisons only, or use np.logical_and / np.logical_or / np.logical_not"
                    )
        return logical(*values).astype(float)

    rule.__name__ = f"_{op}"
    return rule


#: Point rules ``rule(node, *values)`` (float 0/1 values), which take precedence over the core's NumPy table
#: (whose bitwise ops reject float arrays).
POINT_RULES = {op: _point_rule(op) for op in OPS}


# ---------------------------------------------------------------------------------------------------------------
# Comparisons whose ties have probability 0
#: Order comparisons: where ``P(a == b) = 0`` their value at a tie does not matter (a null set).
ORDER_OPS = ("lt", "le", "gt", "ge")


def mark_null_ties(graph: Graph, dists: Mapping[str, Any]) -> Graph:
    """Mark order comparisons whose operands tie with probability 0 (``attrs["null_ties"] = True``).

    That holds for an input of an atomless law (:class:`~opgraph.dcg.distributions.Continuous`) against a constant,
    and for two different inputs (independent) of which one is atomless. The interval rule of such a comparison
    (:func:`opgraph.dcg.intervals._compare`) then decides a cell that touches the threshold only at its end:
    ``x > 0.5`` is 1 on the cell ``[0.5, 0.75]`` except at ``x = 0.5``, a null set, which no expectation over the
    cell sees (the cellwise W1 bound and the CDF band are expectations and probabilities). Without the mark, that
    cell straddles the jump and gets the hull of both branches (uqtestfuns' Genz discontinuous at 4 atoms: bound
    187.6 -> 14.3, true W1 about 4.0).

    Args:
        graph: The graph to evaluate.
        dists: Input law by input name.

    Returns:
        The graph with the marks (the same object where no comparison qualifies).
    """
    from opgraph.dcg.distributions import Continuous

    def kind(i: int) -> str:
        node = graph.nodes[i]
        if node.op == "const":
            v = np.asarray(node.attrs.get("value"), dtype=float)
            return "const" if v.ndim == 0 and np.isfinite(v) else "other"
        if node.op == "input":
            return "atomless" if isinstance(dists.get(node.attrs.get("name")), Continuous) else "input"
        return "other"

    nodes = list(graph.nodes)
    changed = False
    for n in graph.nodes:
        if n.op not in ORDER_OPS or len(n.inputs) != 2 or n.inputs[0] == n.inputs[1] or n.attrs.get("null_ties"):
            continue
        ka, kb = kind(n.inputs[0]), kind(n.inputs[1])
        pair = {ka, kb}
        if "atomless" in pair and pair <= {"atomless", "const", "input"} and pair != {"const"}:
            nodes[n.id] = dataclasses.replace(n, attrs={**n.attrs, "null_ties": True})
            changed = True
    if not changed:
        return graph
    return Graph(tuple(nodes), graph.inputs, graph.outputs, graph.meta)
