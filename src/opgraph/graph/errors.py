"""Exceptions of the graph core.

:class:`OpgraphError` (the base of every error a user can act on) lives in :mod:`opgraph._base.errors`; it is
re-exported here so that ``from opgraph.graph.errors import OpgraphError`` keeps working.
"""

from __future__ import annotations

from opgraph._base.errors import OpgraphError

__all__ = ["GraphError", "InterpretError", "OpgraphError", "TraceError"]


class GraphError(OpgraphError):
    """A graph is malformed (missing input, wrong order, unknown op, wrong arity)."""


class TraceError(OpgraphError):
    """A Python function or torch module could not be turned into a graph."""


class InterpretError(OpgraphError):
    """Evaluating a node failed; the message names the node, its op and the user's source line."""
