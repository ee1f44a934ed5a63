"""User-facing errors shared by every opgraph system.

Subclass :class:`OpgraphError` for any error that a user can fix; give it a message that names the argument and
what to do. The ``opgraph`` CLI prints such errors on one line and exits with status 2.
"""

from __future__ import annotations

from opgraph.graph.errors import GraphError, InterpretError, OpgraphError, TraceError

__all__ = ["GraphError", "InterpretError", "OpgraphError", "TraceError"]
