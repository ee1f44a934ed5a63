"""User-facing errors shared by every opgraph system.

Subclass :class:`OpgraphError` for any error that a user can fix; give it a message that names the argument and
what to do. The ``opgraph`` CLI prints such errors on one line and exits with status 2.
"""

from __future__ import annotations

from opgraph._base.errors import MissingExtraError, OpgraphError, UnsafeFileError, require
from opgraph.graph.errors import GraphError, InterpretError, TraceError

__all__ = [
    "GraphError",
    "InterpretError",
    "MissingExtraError",
    "OpgraphError",
    "TraceError",
    "UnsafeFileError",
    "require",
]
