"""Exceptions of the graph core.

:class:`OpgraphError` is the base of every error that a user can act on: the CLI prints its message on one line
and exits with status 2. It lives here because ``opgraph.graph`` imports nothing else of opgraph;
:mod:`opgraph.errors` re-exports it for the systems.
"""

from __future__ import annotations


class OpgraphError(Exception):
    """An error caused by the user's input, with a message that says what to change."""


class GraphError(OpgraphError):
    """A graph is malformed (missing input, wrong order, unknown op, wrong arity)."""


class TraceError(OpgraphError):
    """A Python function or torch module could not be turned into a graph."""


class InterpretError(OpgraphError):
    """Evaluating a node failed; the message names the node, its op and the user's source line."""
